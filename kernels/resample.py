"""An image moved by a sub-pixel offset and scaled, sampled bilinearly, and the lagged path that
moves it (numba), beside the plain references they must equal.

``shifted_image`` writes ``out[y, x] = black + (white - black) * s(y, x)`` (float32), where ``s``
samples the float32 ``image`` (zero outside it) bilinearly at the point that output pixel's
centre maps to: along each axis, output pixel ``n`` has its centre at field coordinate
``(n + 0.5 - corner) / scale``; minus ``shift`` (where the image's top-left corner is) and
0.5, that is the image index ``u``, whose taps are ``floor(u)`` (weight ``1 - frac(u)``) and
``floor(u) + 1`` (weight ``frac(u)``). Rows are combined first, then columns, in float64: the
order of the reference's matrix products ``wy @ image @ wx.T``.

``first_order_lag`` follows a commanded path through a first-order low-pass sampled at a fixed
step: ``y[0] = c[0] + a (c[0] - c[0])``, ``y[n] = y[n-1] + a (c[n] - y[n-1])``, per column.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _taps(n, scale, corner, shift):
    u = (n + 0.5 - corner) / scale - shift - 0.5
    i0 = math.floor(u)
    return np.int64(i0), u - i0


@njit(cache=True, nogil=True)
def shifted_image(image, scale, corner_x, corner_y, shift_x, shift_y, black, white, out):
    """Fill ``out`` (float32 (H, W)); see the module docstring."""
    size_y, size_x = image.shape
    height, width = out.shape
    row = np.empty(size_x, np.float64)
    gain = white - black
    for y in range(height):
        i0, fy = _taps(y, scale, corner_y, shift_y)
        # the row of the image at this output row's height (0.0 + a + b: the reference's sum, zeros included)
        top, bottom = 0 <= i0 < size_y, 0 <= i0 + 1 < size_y
        if top and bottom:
            a, b = image[i0], image[i0 + 1]
            for j in range(size_x):
                row[j] = (1.0 - fy) * a[j] + fy * b[j]
        elif top or bottom:
            a, w = (image[i0], 1.0 - fy) if top else (image[i0 + 1], fy)
            for j in range(size_x):
                row[j] = w * a[j]
        else:
            row[:] = 0.0
        for x in range(width):
            j0, fx = _taps(x, scale, corner_x, shift_x)
            s = 0.0
            if 0 <= j0 < size_x:
                s += (1.0 - fx) * row[j0]
            if 0 <= j0 + 1 < size_x:
                s += fx * row[j0 + 1]
            out[y, x] = black + gain * s


def sampling_weights(n_pixels: int, size: int, scale: float, corner: float, shift: float) -> np.ndarray:
    """The reference's bilinear sampling matrix ``(n_pixels, size)`` along one axis."""
    centre = (np.arange(n_pixels) + 0.5 - corner) / scale
    u = centre - shift - 0.5
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    w = np.zeros((n_pixels, size + 2))
    rows = np.arange(n_pixels)
    w[rows, np.clip(i0 + 1, 0, size + 1)] += 1.0 - f
    w[rows, np.clip(i0 + 2, 0, size + 1)] += f
    return w[:, 1:-1]   # columns 0 and size + 1 collect the taps outside the image: zero


def shifted_image_reference(image, scale, corner_x, corner_y, shift_x, shift_y, black, white, height, width):
    """Plain numpy ``shifted_image``: float32 (height, width)."""
    wx = sampling_weights(width, image.shape[1], scale, corner_x, shift_x)
    wy = sampling_weights(height, image.shape[0], scale, corner_y, shift_y)
    s = wy @ np.asarray(image, np.float64) @ wx.T
    return (black + (white - black) * s).astype(np.float32)


@njit(cache=True, nogil=True)
def first_order_lag(commanded, a, out):
    """``out`` (float64 (n, k)) = each column of ``commanded`` (n, k) through the low-pass above."""
    for col in range(commanded.shape[1]):
        y = commanded[0, col]
        for n in range(commanded.shape[0]):
            y += a * (commanded[n, col] - y)
            out[n, col] = y


def first_order_lag_reference(commanded, a):
    """Plain Python ``first_order_lag``."""
    out = []
    for cmd in np.asarray(commanded, np.float64).T:
        y, col = float(cmd[0]), []
        for c in cmd.tolist():
            y += a * (c - y)
            col.append(y)
        out.append(col)
    return np.array(out).T
