"""Handwritten-looking digit images, 28x28 like MNIST, made from strokes and bundled fonts.

``digit_image(digit, rng_or_seed)`` draws one image: white (1.0) ink on black (0.0),
float32, shape (28, 28), row 0 at the top, normalised as MNIST is: the ink is scaled,
keeping its aspect ratio, so that its bounding box fits a 20x20 box, then shifted so that
its centre of mass sits at the centre of the 28x28 field (pixel index 13.5, 13.5).

Most images come from a stroke synthesiser: each digit has one or more skeletons (Catmull-Rom
splines through control points, with variants: a 1 with or without a flag, an open or closed
4, a 7 with or without a crossbar, a 2 with or without a loop, ...). The control points are
jittered, the whole digit is rotated, slanted, squeezed and elastically warped, then drawn
with an anti-aliased pen of random width and edge softness. A fraction (``font_fraction``)
come instead from glyphs of the fonts matplotlib ships (DejaVu, STIX, Computer Modern), with
the same affine and elastic distortions. Everything random is drawn from the generator, so a
seed gives the same image on any machine.

>>> img = digit_image(7, 3)
>>> img.shape, img.dtype, float(img.max()) <= 1.0
((28, 28), dtype('float32'), True)
>>> bool((digit_image(7, 3) == img).all())
True
"""
from __future__ import annotations

import functools
import os

import numpy as np

__all__ = ["IMAGE_SIZE", "BOX_SIZE", "FONT_FILES", "digit_image", "digit_images", "centre_of_mass"]

IMAGE_SIZE = 28
BOX_SIZE = 20
CENTRE = (IMAGE_SIZE - 1) / 2.0
#: Font files inside matplotlib's ``mpl-data/fonts/ttf`` used for glyph digits.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
    "STIXGeneralItalic.ttf", "cmss10.ttf", "cmr10.ttf",
)


def _pts(*xy) -> np.ndarray:
    return np.array(xy, dtype=np.float64).reshape(-1, 2)


def _ellipse(cx, cy, rx, ry, a0, a1, n) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.sin(a), cy - ry * np.cos(a)], axis=1)


# Skeletons in a unit box, x to the right and y down. Each returns a list of strokes; a stroke
# is an (n, 2) array of control points of a Catmull-Rom spline. Corners are stroke ends.
def _zero(rng):
    start = rng.uniform(-0.6, 0.4)
    sweep = 2 * np.pi + rng.uniform(-0.5, 0.6)   # a gap or an overlap where the pen closes
    return [_ellipse(0.5, 0.5, rng.uniform(0.24, 0.42), 0.48, start, start - sweep, 11)]


def _one(rng):
    bend = rng.normal(0, 0.04)
    strokes = [_pts(0.5, 0.02, 0.5 + bend, 0.5, 0.5, 0.98)]
    if rng.random() < 0.3:
        strokes.append(_pts(0.5 - rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.3), 0.5, 0.02))
        if rng.random() < 0.3:
            strokes.append(_pts(0.3, 0.98, 0.7, 0.98))
    return strokes


def _two(rng):
    top = _pts(0.12, 0.3, 0.3, 0.06, 0.6, 0.03, 0.85, 0.22, 0.78, 0.48, 0.4, 0.78)
    if rng.random() < 0.3:
        return [np.vstack([top, _pts(0.12, 0.97, 0.06, 0.86, 0.2, 0.82, 0.5, 0.93, 0.92, 0.95)])]
    return [np.vstack([top, _pts(0.1, 0.97)]), _pts(0.1, 0.97, 0.5, 0.96, 0.92, 0.97 - rng.uniform(0, 0.08))]


def _three(rng):
    mid = _pts(0.42 + rng.uniform(-0.1, 0.05), 0.48)
    lower = np.vstack([mid, _pts(0.82, 0.62, 0.85, 0.85, 0.5, 0.99, 0.12, 0.86)])
    if rng.random() < 0.2:   # flat-topped 3
        return [_pts(0.12, 0.04, 0.85, 0.04), np.vstack([_pts(0.85, 0.04), mid]), lower]
    return [np.vstack([_pts(0.14, 0.16, 0.45, 0.02, 0.8, 0.12, 0.78, 0.36), mid]), lower]


def _four(rng):
    if rng.random() < 0.5:   # open top, as most people write it
        corner = _pts(0.1, 0.58)
        return [np.vstack([_pts(0.24, 0.0), corner]), np.vstack([corner, _pts(0.92, 0.56)]),
                _pts(0.72, 0.12, 0.7, 0.55, 0.68, 1.0)]
    apex = _pts(0.68, 0.0)
    corner = _pts(0.05, 0.66)
    return [np.vstack([apex, corner]), np.vstack([corner, _pts(0.95, 0.66)]), np.vstack([apex, _pts(0.68, 1.0)])]


def _five(rng):
    join = _pts(0.22, 0.04)
    belly_start = _pts(0.18, 0.46)
    belly = np.vstack([belly_start, _pts(0.5, 0.36, 0.82, 0.52, 0.82, 0.8, 0.5, 0.98, 0.12, 0.88)])
    return [np.vstack([_pts(0.88, 0.03 + rng.uniform(-0.03, 0.03)), join]), np.vstack([join, belly_start]), belly]


def _six(rng):
    r = rng.uniform(0.7, 1.1)
    loop = _pts(0.2, 0.62, 0.45, 0.5, 0.76, 0.58, 0.8, 0.82, 0.5, 0.98, 0.2, 0.82)
    loop[:, 1] = 0.98 - (0.98 - loop[:, 1]) * r
    return [np.vstack([_pts(0.78, 0.02, 0.45, 0.2, 0.2, 0.52), loop[::-1]])]


def _seven(rng):
    top = _pts(0.08, 0.05, 0.92, 0.05)
    strokes = [top, _pts(0.92, 0.05, 0.62 + rng.normal(0, 0.05), 0.5, 0.42, 0.98)]
    if rng.random() < 0.2:
        strokes.append(_pts(0.35, 0.52, 0.88, 0.5))
    if rng.random() < 0.2:
        strokes.append(_pts(0.08, 0.2, 0.08, 0.05))
    return strokes


def _eight(rng):
    return [_pts(0.78, 0.13, 0.5, 0.02, 0.2, 0.18, 0.32, 0.38, 0.5, 0.5, 0.8, 0.68, 0.76, 0.92, 0.45, 0.98,
                 0.18, 0.84, 0.28, 0.63, 0.5, 0.5, 0.72, 0.36, 0.8, 0.16)]


def _nine(rng):
    loop = _ellipse(0.5, 0.3, rng.uniform(0.24, 0.34), rng.uniform(0.22, 0.3), 2.2, 2.2 - 2 * np.pi - 0.5, 10)
    foot = rng.uniform(0.45, 0.75)
    return [np.vstack([loop, _pts(0.78, 0.6, foot, 0.99)])]


SKELETONS = (_zero, _one, _two, _three, _four, _five, _six, _seven, _eight, _nine)


def _catmull_rom(points: np.ndarray, samples_per_span: int = 8) -> np.ndarray:
    """A dense polyline through ``points`` (n, 2) along a uniform Catmull-Rom spline."""
    if len(points) < 3:
        return points.copy()
    p = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    s = np.linspace(0.0, 1.0, samples_per_span, endpoint=False)[:, None, None]
    p0, p1, p2, p3 = p[:-3], p[1:-2], p[2:-1], p[3:]
    curve = 0.5 * (2 * p1 + (p2 - p0) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2
                   + (3 * p1 - p0 - 3 * p2 + p3) * s**3)
    return np.vstack([curve.transpose(1, 0, 2).reshape(-1, 2), points[-1:]])


def _distortion(rng):
    """A random affine matrix and a smooth elastic displacement, both on unit-box coordinates."""
    angle = np.deg2rad(rng.normal(0.0, 9.0))
    slant = rng.normal(0.18, 0.18)               # top to the right, as most hands slant
    aspect = np.exp(rng.normal(-0.1, 0.15))      # a little narrower than the skeletons, as most hands
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) @ np.array([[aspect, -slant], [0.0, 1.0]])
    k = 3
    freq = rng.normal(0.0, 4.0, size=(k, 2))
    phase = rng.uniform(0, 2 * np.pi, size=k)
    amp = rng.normal(0.0, rng.uniform(0.0, 0.035), size=(k, 2))
    return matrix, (freq, phase, amp)


def _warp(points: np.ndarray, matrix: np.ndarray, elastic) -> np.ndarray:
    freq, phase, amp = elastic
    centred = points - 0.5
    waves = np.sin(centred @ freq.T + phase)
    return (centred + waves @ amp) @ matrix.T


def _hand_strokes(digit: int, rng) -> list[np.ndarray]:
    jitter = rng.uniform(0.015, 0.045)
    matrix, elastic = _distortion(rng)
    out = []
    for control in SKELETONS[digit](rng):
        moved = control + rng.normal(0.0, jitter, size=control.shape)
        out.append(_warp(_catmull_rom(moved), matrix, elastic))
    return out


def _segment_distance(pixels: np.ndarray, strokes: list[np.ndarray]) -> np.ndarray:
    """Distance from each pixel (m, 2) to the nearest point of the polylines (float32)."""
    a = np.vstack([s[:-1] if len(s) > 1 else s for s in strokes]).astype(np.float32)
    b = np.vstack([s[1:] if len(s) > 1 else s for s in strokes]).astype(np.float32)
    abx, aby = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    inv_len2 = 1.0 / np.maximum(abx * abx + aby * aby, np.float32(1e-12))
    apx = pixels[:, 0:1].astype(np.float32) - a[:, 0]
    apy = pixels[:, 1:2].astype(np.float32) - a[:, 1]
    u = np.clip((apx * abx + apy * aby) * inv_len2, 0.0, 1.0)
    dx = apx - u * abx
    dy = apy - u * aby
    return np.sqrt((dx * dx + dy * dy).min(axis=1))


@functools.lru_cache(maxsize=None)
def _pixel_grid(size: int, supersample: int) -> np.ndarray:
    c = (np.arange(size * supersample) + 0.5) / supersample - 0.5
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def _draw_strokes(strokes, width_px: float, softness: float) -> np.ndarray:
    d = _segment_distance(_pixel_grid(IMAGE_SIZE, 1), strokes)
    ink = np.clip(0.5 + (width_px / 2 - d) / softness, 0.0, 1.0)
    return ink.reshape(IMAGE_SIZE, IMAGE_SIZE)


@functools.lru_cache(maxsize=None)
def _glyph_polygons(font_file: str, digit: int) -> tuple[np.ndarray, ...]:
    """The outline polygons of ``digit`` in a font matplotlib ships, unit height, y down."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", font_file)
    if not os.path.isfile(path):
        raise OSError(f"font file {path} not found (needed for glyph digits)")
    glyph = TextPath((0, 0), str(digit), size=1.0, prop=FontProperties(fname=path))
    polys = [np.asarray(p, dtype=np.float64) * (1.0, -1.0) for p in glyph.to_polygons(closed_only=True)]
    return tuple(p for p in polys if len(p) >= 3)


def _fill_polygons(polygons, supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage of the polygons under the even-odd rule (glyph holes stay open)."""
    from matplotlib.path import Path

    grid = _pixel_grid(IMAGE_SIZE, supersample)
    inside = np.zeros(len(grid), dtype=bool)
    for p in polygons:
        inside ^= Path(p).contains_points(grid)
    s = supersample
    return inside.reshape(IMAGE_SIZE, s, IMAGE_SIZE, s).mean(axis=(1, 3))


def _glyph_shapes(digit: int, rng) -> list[np.ndarray]:
    polygons = _glyph_polygons(FONT_FILES[rng.integers(len(FONT_FILES))], digit)
    lo = np.min([p.min(axis=0) for p in polygons], axis=0)
    hi = np.max([p.max(axis=0) for p in polygons], axis=0)
    matrix, elastic = _distortion(rng)
    scale = 1.0 / (hi[1] - lo[1])
    return [_warp((p - lo) * scale, matrix, elastic) for p in polygons]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of mass of an image in pixel-index coordinates (column, row).

    >>> centre_of_mass(np.pad(np.ones((2, 2)), ((1, 3), (0, 4))))
    (0.5, 1.5)
    """
    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    if total <= 0:
        raise ValueError("centre_of_mass: the image is blank")
    rows, cols = np.indices(image.shape)
    return float((cols * image).sum() / total), float((rows * image).sum() / total)


def _normalised(shapes, draw, margin_px: float) -> np.ndarray:
    """Scale the shapes so that the ink box is 20 px on its long side, centre by centre of mass.

    The centring shift is refined (at most 3 renders) until the centre of mass is within 0.05 px
    of the field's centre: anti-aliased coverage moves a little unevenly with sub-pixel shifts.
    """
    lo = np.min([s.min(axis=0) for s in shapes], axis=0)
    hi = np.max([s.max(axis=0) for s in shapes], axis=0)
    scale = (BOX_SIZE - margin_px) / max(float((hi - lo).max()), 1e-6)
    placed = [(s - (lo + hi) / 2) * scale + CENTRE for s in shapes]
    shift = np.zeros(2)
    for _ in range(3):
        image = draw([s + shift for s in placed])
        error = np.array([CENTRE, CENTRE]) - centre_of_mass(image)
        if np.abs(error).max() < 0.05:
            break
        shift += error
        image = None
    if image is None:
        image = draw([s + shift for s in placed])
    return image.astype(np.float32)


def digit_image(digit: int, rng_or_seed, *, font_fraction: float = 0.15) -> np.ndarray:
    """One MNIST-like image of ``digit`` (0-9): float32 (28, 28), white ink on black, in [0, 1].

    ``rng_or_seed``: a ``numpy.random.Generator`` (advanced) or an int seed. A fraction
    ``font_fraction`` of the images are distorted font glyphs, the rest handwriting strokes.

    >>> a = digit_image(3, 0); b = digit_image(3, np.random.default_rng(0))
    >>> bool((a == b).all()), round(sum(centre_of_mass(a)) / 2, 1)
    (True, 13.5)
    """
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"digit must be an int in 0..9, got {digit!r}")
    if not 0.0 <= font_fraction <= 1.0:
        raise ValueError(f"font_fraction must be in [0, 1], got {font_fraction}")
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    if rng.random() < font_fraction:
        shapes = _glyph_shapes(int(digit), rng)
        pen_px = rng.uniform(0.0, 1.8)   # thickens thin fonts towards MNIST's pen widths

        def draw(polygons):
            fill = _fill_polygons(polygons)
            outline = [np.vstack([p, p[:1]]) for p in polygons]
            return np.maximum(fill, _draw_strokes(outline, pen_px, 1.0)) if pen_px > 0.3 else fill

        return _normalised(shapes, draw, margin_px=pen_px)
    strokes = _hand_strokes(int(digit), rng)
    width_px = rng.uniform(1.5, 3.2)
    softness = rng.uniform(0.7, 1.4)
    return _normalised(strokes, lambda s: _draw_strokes(s, width_px, softness), margin_px=width_px + softness / 2)


def digit_images(digits, seed: int, *, font_fraction: float = 0.15) -> np.ndarray:
    """Images (n, 28, 28) for a sequence of digits, all drawn from one generator seeded with ``seed``.

    >>> digit_images([0, 1, 2], seed=5).shape
    (3, 28, 28)
    """
    rng = np.random.default_rng(seed)
    digits = list(digits)
    out = np.empty((len(digits), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for i, d in enumerate(digits):
        out[i] = digit_image(d, rng, font_fraction=font_fraction)
    return out
