"""Per-pixel event filters (numba) beside plain references they must equal.

Both filters walk the events in stream order over a per-pixel map of last
timestamps ``last_t`` (int64, ``y * width + x``, ``NEVER`` where a pixel has
not fired), which they update in place: the caller passes a copy to keep its
own state. Events are read from ``words``, an EVENT_DTYPE array viewed as
``uint64[2n]`` (word 0: x | y << 16 | p << 32, word 1: t); the kernels write
``keep[i] = 1`` for each event to keep and return -1, or, for the first event
outside ``width x height``, return its index (the map is then half-updated);
``compact`` then copies the kept events out.

- denoise (tonic's ``denoise_numpy``): ``last_t[pixel] = t`` first, for every
  event; then keep it if one of its 4 neighbours (left, right, up, down; not
  the pixel itself, not the diagonals) has ``t - last_t < filter_time``.
- refractory (tonic's ``refractory_period_numpy``): keep if the pixel's
  ``t - last_t > refractory_period`` (either polarity, and dropped events count
  too); then ``last_t[pixel] = t`` for every event.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .words import xyp

NEVER = np.iinfo(np.int64).min  # "this pixel has not fired"


@njit(cache=True, nogil=True)
def denoise_kernel(words, last_t, width, height, filter_time, keep):
    """Keep ``t - last_t[neighbour] < filter_time`` for a 4-neighbour; see the module docstring."""
    n = words.shape[0] // 2
    for i in range(n):
        xw, yw, _ = xyp(words[2 * i])
        x, y = np.int64(xw), np.int64(yw)
        if x >= width or y >= height:
            return i
        t = np.int64(words[2 * i + 1])
        j = y * width + x
        last_t[j] = t
        since = t - filter_time  # a neighbour is recent when last_t > since
        ok = (x > 0 and last_t[j - 1] > since) or (x < width - 1 and last_t[j + 1] > since) \
            or (y > 0 and last_t[j - width] > since) or (y < height - 1 and last_t[j + width] > since)
        keep[i] = ok
    return -1


@njit(cache=True, nogil=True)
def refractory_kernel(words, last_t, width, height, refractory_period, keep):
    """Keep ``t - last_t[pixel] > refractory_period``; see the module docstring."""
    n = words.shape[0] // 2
    for i in range(n):
        xw, yw, _ = xyp(words[2 * i])
        x, y = np.int64(xw), np.int64(yw)
        if x >= width or y >= height:
            return i
        t = np.int64(words[2 * i + 1])
        j = y * width + x
        keep[i] = last_t[j] < t - refractory_period
        last_t[j] = t
    return -1


@njit(cache=True, nogil=True)
def compact(words, keep, out):
    """Copy the events with ``keep[i]`` into ``out`` (uint64[2 * keep.sum()]), in order."""
    k = 0
    for i in range(keep.shape[0]):
        if keep[i]:
            out[2 * k] = words[2 * i]
            out[2 * k + 1] = words[2 * i + 1]
            k += 1


def denoise_reference(x, y, t, last_t, filter_time):
    """Plain-Python denoise: ``last_t`` int64[H, W] is updated in place; returns the keep mask."""
    height, width = last_t.shape
    keep = np.zeros(len(t), bool)
    for i, (xi, yi, ti) in enumerate(zip(x.tolist(), y.tolist(), t.tolist())):
        last_t[yi, xi] = ti
        near = [(xi + dx, yi + dy) for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1))]
        keep[i] = any(0 <= u < width and 0 <= v < height and last_t[v, u] != NEVER
                      and ti - int(last_t[v, u]) < filter_time for u, v in near)
    return keep


def refractory_reference(x, y, t, last_t, refractory_period):
    """Plain-Python refractory filter: ``last_t`` int64[H, W] updated in place; returns the keep mask."""
    keep = np.zeros(len(t), bool)
    for i, (xi, yi, ti) in enumerate(zip(x.tolist(), y.tolist(), t.tolist())):
        keep[i] = last_t[yi, xi] == NEVER or ti - int(last_t[yi, xi]) > refractory_period
        last_t[yi, xi] = ti
    return keep
