"""Building the layer tables that ``eventflow.kernels.raster_shapes`` renders (plain numpy;
every argument broadcasts over layers): 2x3 affine maps (``similarity``, ``compose``,
``invert``), scene bounding boxes, tables from per-layer columns, and seamless textures; and
``LayerRendering``, the layer scenes' ``render`` and ``render_region``.

>>> from eventflow.kernels.raster_shapes import BOX
>>> fwd, inv = similarity(10.0, 5.0, 2.0)
>>> table = layer_table([BOX], inv[None], 2.0, [[0.0, 0.0, 3.0, 2.0, 0.0]], 0.2, 0.8, 1.0, 0.0, 0.0, 0,
...                     scene_bbox(np.array([BOX]), [[0.0, 0.0, 3.0, 2.0, 0.0]], fwd[None], 1.0))
>>> table.shape, table[0, X0:].tolist()
((1, 23), [3.0, 17.0, 0.0, 10.0])
"""
from __future__ import annotations

import numpy as np

from eventflow.kernels.raster_shapes import (CAPSULE, FAR, HI, KIND, LO, MAP, N_COLUMNS, PLANE, PX_PER_UNIT,
                                             SHAPE, TEX, TEX_SCALE, TEX_U, TEX_V, X0, X1, Y0, Y1, render_layers)

from .scene import check_region

__all__ = ["compose", "invert", "layer_table", "local_table", "periodic_texture", "LayerRendering", "scene_bbox",
           "similarity"]


def similarity(tx, ty, scale, angle=0.0, mirror=1.0):
    """Forward and inverse 2x3 maps (arrays (..., 6)) of ``X = t + scale * R(angle) * diag(mirror, 1) * u``.

    >>> fwd, inv = similarity(10.0, 5.0, 2.0)
    >>> (fwd + 0.0).tolist(), (inv + 0.0).tolist()
    ([2.0, 0.0, 10.0, 0.0, 2.0, 5.0], [0.5, 0.0, -5.0, 0.0, 0.5, -2.5])
    """
    tx, ty, scale, angle, mirror = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in
                                                         (tx, ty, scale, angle, mirror)))
    c, s = np.cos(angle), np.sin(angle)
    fwd = np.stack([scale * c * mirror, -scale * s, tx, scale * s * mirror, scale * c, ty], axis=-1)
    a, b = mirror * c / scale, mirror * s / scale
    d, e = -s / scale, c / scale
    inv = np.stack([a, b, -(a * tx + b * ty), d, e, -(d * tx + e * ty)], axis=-1)
    return fwd, inv


def compose(outer, inner):
    """The 2x3 map ``outer(inner(p))``."""
    o, i = np.asarray(outer, dtype=np.float64), np.asarray(inner, dtype=np.float64)
    o, i = np.broadcast_arrays(o, i)
    return np.stack([o[..., 0] * i[..., 0] + o[..., 1] * i[..., 3],
                     o[..., 0] * i[..., 1] + o[..., 1] * i[..., 4],
                     o[..., 0] * i[..., 2] + o[..., 1] * i[..., 5] + o[..., 2],
                     o[..., 3] * i[..., 0] + o[..., 4] * i[..., 3],
                     o[..., 3] * i[..., 1] + o[..., 4] * i[..., 4],
                     o[..., 3] * i[..., 2] + o[..., 4] * i[..., 5] + o[..., 5]], axis=-1)


def invert(maps):
    """Inverse of invertible 2x3 affine maps (..., 6)."""
    m = np.asarray(maps, dtype=np.float64)
    det = m[..., 0] * m[..., 4] - m[..., 1] * m[..., 3]
    return np.stack([m[..., 4], -m[..., 1], m[..., 1] * m[..., 5] - m[..., 4] * m[..., 2],
                     -m[..., 3], m[..., 0], m[..., 3] * m[..., 2] - m[..., 0] * m[..., 5]], axis=-1) / det[..., None]


def scene_bbox(kind, shape, forward, margin):
    """(x0, x1, y0, y1) of each shape mapped to the scene by ``forward``, grown by ``margin`` pixels.

    Exact for boxes, ellipses and capsules under maps without rotation; a bound otherwise.
    Planes get (-FAR, FAR, -FAR, FAR).
    """
    kind = np.asarray(kind)
    s = np.asarray(shape, dtype=np.float64)
    f = np.asarray(forward, dtype=np.float64)
    is_capsule = kind == CAPSULE
    r = np.where(is_capsule, s[..., 4], 0.0)
    u0 = np.where(is_capsule, np.minimum(s[..., 0], s[..., 2]) - r, s[..., 0] - s[..., 2])
    u1 = np.where(is_capsule, np.maximum(s[..., 0], s[..., 2]) + r, s[..., 0] + s[..., 2])
    v0 = np.where(is_capsule, np.minimum(s[..., 1], s[..., 3]) - r, s[..., 1] - s[..., 3])
    v1 = np.where(is_capsule, np.maximum(s[..., 1], s[..., 3]) + r, s[..., 1] + s[..., 3])
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    hu, hv = (u1 - u0) / 2, (v1 - v0) / 2
    X = f[..., 0] * cu + f[..., 1] * cv + f[..., 2]
    Y = f[..., 3] * cu + f[..., 4] * cv + f[..., 5]
    ex = np.abs(f[..., 0]) * hu + np.abs(f[..., 1]) * hv + margin
    ey = np.abs(f[..., 3]) * hu + np.abs(f[..., 4]) * hv + margin
    plane = kind == PLANE
    return (np.where(plane, -FAR, X - ex), np.where(plane, FAR, X + ex),
            np.where(plane, -FAR, Y - ey), np.where(plane, FAR, Y + ey))


def layer_table(kind, inverse, px_per_unit, shape, lo, hi, tex_scale, tex_u, tex_v, tex, bbox):
    """A layer table (n, N_COLUMNS) from per-layer arrays (``inverse``: (n, 6), ``shape``: (n, 5))."""
    inverse = np.asarray(inverse, dtype=np.float64)
    n = inverse.shape[0]
    table = np.empty((n, N_COLUMNS), dtype=np.float64)
    table[:, KIND] = kind
    table[:, MAP] = inverse
    table[:, PX_PER_UNIT] = px_per_unit
    table[:, SHAPE] = shape
    for col, value in ((LO, lo), (HI, hi), (TEX_SCALE, tex_scale), (TEX_U, tex_u), (TEX_V, tex_v), (TEX, tex)):
        table[:, col] = value
    table[:, X0], table[:, X1], table[:, Y0], table[:, Y1] = bbox
    return table


def periodic_texture(rng, size=256, wavelength=(4.0, 64.0), patchy=False):
    """A seamless float32 texture (size, size) in [0, 1]: 1/f noise between two wavelengths (texels).

    ``patchy`` pushes it through a steep sigmoid: blotches with soft but strong edges.
    """
    if size & (size - 1):
        raise ValueError(f"texture size {size} is not a power of two")
    k = np.fft.fftfreq(size)
    kr = np.hypot(k[:, None], k[None, :])
    shortest, longest = wavelength
    with np.errstate(divide="ignore"):
        gain = np.where(kr > 0, 1.0 / kr, 0.0)
    gain *= np.exp(-(kr * shortest) ** 2) * (1.0 - np.exp(-(kr * longest) ** 2))
    noise = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * gain))
    z = (noise - noise.mean()) / noise.std()
    if patchy:
        z = np.tanh(2.5 * z)
    lo, hi = z.min(), z.max()
    return ((z - lo) / (hi - lo)).astype(np.float32)


def local_table(kind, shape, lo, hi, tex_scale, tex_u, tex_v, tex):
    """A table of layers given in their own units: identity maps, one pixel per unit, no
    bounding box yet (``place_layers`` fills the maps and boxes at a given time).

    >>> local_table([1], [[0.0, 0.0, 3.0, 2.0, 0.0]], 0.2, 0.8, 1.0, 0.0, 0.0, 0)[0, MAP].tolist()
    [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """
    n = len(kind)
    return layer_table(np.asarray(kind), np.tile([1.0, 0, 0, 0, 1.0, 0], (n, 1)), 1.0,
                       np.asarray(shape, dtype=np.float64), lo, hi, tex_scale, tex_u, tex_v, tex, (0.0, 0.0, 0.0, 0.0))


class LayerRendering:
    """``render`` and ``render_region`` for a scene drawn from a layer table: the scene class
    provides ``layers(t_s)``, ``textures``, ``height``, ``width`` and ``scene_name``. A region
    is rendered as a canvas whose corner sits at (x0, y0), so each pixel gets exactly the value
    a whole-image render gives it; the other pixels are untouched."""

    scene_name = "layer scene"

    def render(self, t_s: float, out: np.ndarray) -> None:
        """Write the intensity at ``t_s`` into ``out`` (float32 (height, width))."""
        self.render_region(t_s, out, 0, self.height, 0, self.width)

    def render_region(self, t_s: float, out: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
        """``render`` of rows ``y0..y1-1``, columns ``x0..x1-1`` only: the simulator's refinement
        renders just where the image changes fast."""
        check_region(f"{self.scene_name} render", out, self.height, self.width, y0, y1, x0, x1)
        if y0 < y1 and x0 < x1:
            render_layers(out[y0:y1, x0:x1], self.layers(t_s), self.textures, float(x0), float(y0))
