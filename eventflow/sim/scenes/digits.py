"""N-MNIST-like scene: a handwritten digit on a monitor, seen by a sensor making three saccades.

The N-MNIST set-up (Orchard et al. 2015, and measured on the real recordings in
``shared/data/real/README.md``): an MNIST digit (28x28, white on black) is shown on a screen and
an ATIS camera (cropped to 34x34) makes three saccades of ``SACCADE_PERIOD_S`` = 0.1 s each.
Relative to where it starts, the image sits at ``SACCADE_WAYPOINTS_PX``: it moves to
(+1.4, +4.8) px (x to the right, y down) in the first saccade, to (+4.8, +0.6) in the second,
and back to (0, 0) in the third. Within each 100 ms window the commanded motion runs from
``MOTION_WINDOW_S[0]`` = 10 ms to ``MOTION_WINDOW_S[1]`` = 75 ms (speed: a smoothed trapezoid,
``motion_fraction``, its ramp drawn per saccade from ``RAMP_RANGE``), and the image follows it
through a first-order lag drawn per recording from ``LAG_RANGE_S`` (0-12 ms), then holds still.
The lag and the ramps are there because the real recordings' events come later and spread
wider than a rigid trapezoid gives: in the one N-MNIST recording that is not part of the test
set (``nmnist_4325.bin``) the median event of each saccade falls 46-58 ms and the 90th
percentile 73-84 ms into its 100 ms window, against 43 and 62 ms without lag; drawing both
over a range (domain randomisation) rather than fitting one recording. The image is sampled
bilinearly at its sub-pixel offset, so slow sub-pixel motion changes the intensity and makes
events.

Variation, drawn from the seed (each has a keyword to pin it): the digit's image
(``eventflow.sim.digit_images.digit_image``), where it starts (``origin_px``), the monitor's
black and white levels (``black_level``, ``white_level``), optical blur (``blur_px``), and small
changes of the saccade timing and amplitude (``timing_jitter_s``, ``amplitude_jitter``; zero
for the exact documented schedule).

At another geometry the 34x34 field is scaled by ``min(width, height) / 34`` and centred.

Ground truth: the class (int). ``save_ground_truth(stem)`` writes ``stem + "_label.txt"``
holding the class digit on one line.

>>> scene = make_scene(34, 34, seed=1, digit=4)
>>> frame = np.empty((34, 34), np.float32); scene.render(0.05, frame)
>>> scene.ground_truth(), frame.shape, bool(0 < frame.min() and frame.max() <= 1)
(4, (34, 34), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventflow.kernels.resample import first_order_lag, shifted_image

from ..digit_images import IMAGE_SIZE, digit_image
from ..scene import check_region

__all__ = [
    "DEFAULT_SECONDS", "DEFAULT_SENSOR", "SENSOR_OVERRIDES", "FIELD_SIZE", "SACCADE_PERIOD_S",
    "MOTION_WINDOW_S", "MOTION_RAMP", "SACCADE_WAYPOINTS_PX", "DigitsScene", "Saccade", "make_scene",
    "motion_fraction", "RAMP_RANGE", "LAG_RANGE_S",
]

DEFAULT_SENSOR = "nmnist"
#: Fields of the "nmnist" preset replaced when this scene is simulated on it. Calibrated so that
#: the event count matches the real recordings (3,856 +- 1,109 per recording, 1,069..6,326):
#: 30 simulated recordings (seeds 0-29) gave 3,798 +- 1,211 (1,471..6,795), ON fraction 0.50-0.52.
SENSOR_OVERRIDES: dict = dict(contrast_on=0.23, contrast_off=0.23, contrast_sigma=0.05, background_rate_hz=0.5)
DEFAULT_SECONDS = 0.3
FIELD_SIZE = 34
SACCADE_PERIOD_S = 0.1
MOTION_WINDOW_S = (0.010, 0.075)
MOTION_RAMP = 0.3
#: Ranges drawn per recording (``make_scene``): the speed ramp of each saccade, and the lag of
#: the image behind the commanded motion (see the module docstring).
RAMP_RANGE = (0.2, 0.5)
LAG_RANGE_S = (0.0, 0.012)
MAX_LAG_S = 0.05
LAG_STEP_S = 1e-4
SACCADE_WAYPOINTS_PX = ((0.0, 0.0), (1.4, 4.8), (4.8, 0.6), (0.0, 0.0))
_PAD = 3  # blank border around the 28x28 image, so blur and interpolation see the background


def motion_fraction(s, ramp: float = MOTION_RAMP):
    """Fraction of the way travelled at fraction ``s`` of the motion time (0 -> 0, 1 -> 1).

    The speed rises along a raised cosine over the first ``ramp`` of the time, stays constant,
    and falls symmetrically over the last ``ramp`` (a smoothed trapezoid, as a pan-tilt unit
    moves; the real recordings' event rate is flat-topped over the motion).

    >>> [round(float(motion_fraction(s)), 3) for s in (0.0, 0.5, 1.0, 2.0)]
    [0.0, 0.5, 1.0, 1.0]
    """
    if not 0 < ramp <= 0.5:
        raise ValueError(f"motion_fraction: ramp must be in (0, 0.5], got {ramp}")
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    v_max = 1.0 / (1.0 - ramp)

    def rising(u):
        return v_max * (u / 2 - ramp / (2 * np.pi) * np.sin(np.pi * u / ramp))

    middle = v_max * (ramp / 2 + s - ramp)
    return np.where(s < ramp, rising(s), np.where(s > 1 - ramp, 1.0 - rising(1.0 - s), middle))


@dataclass(frozen=True)
class Saccade:
    """One commanded move of the image: from ``start_px`` to ``end_px`` (x, y) between ``t0_s``
    and ``t1_s``, its speed a smoothed trapezoid with this ``ramp`` (``motion_fraction``)."""

    t0_s: float
    t1_s: float
    start_px: tuple[float, float]
    end_px: tuple[float, float]
    ramp: float = MOTION_RAMP


@dataclass(frozen=True, eq=False)
class DigitsScene:
    """A digit image on a monitor, moved by saccades; see the module docstring.

    ``ink``: the digit image padded by 3 blank pixels and blurred, float32 (34, 34), in [0, 1].
    ``origin_px``: where the top-left corner of the 28x28 image is at t = 0, in 34x34-field pixels.
    ``lag_s``: the image follows the commanded saccades through a first-order low-pass of this
    time constant (0: exactly), sampled every ``LAG_STEP_S``.
    """

    width: int
    height: int
    duration_s: float
    digit: int
    ink: np.ndarray
    origin_px: tuple[float, float]
    black_level: float
    white_level: float
    saccades: tuple[Saccade, ...]
    lag_s: float = 0.0

    def __post_init__(self):
        if not 0 <= self.lag_s <= MAX_LAG_S:
            raise ValueError(f"digits scene: lag_s must be in [0, {MAX_LAG_S}] s, got {self.lag_s}")
        if self.lag_s > 0:   # the lagged path, tabulated once: x[n] = x[n-1] + a (commanded - x[n-1])
            t = np.arange(0.0, self.duration_s + 2 * LAG_STEP_S, LAG_STEP_S)
            a = 1.0 - np.exp(-LAG_STEP_S / self.lag_s)
            commanded = np.ascontiguousarray(self.commanded_path(t))
            path = np.empty_like(commanded)
            first_order_lag(commanded, float(a), path)
            object.__setattr__(self, "_lag_table", (t, path))

    def commanded_path(self, t_s) -> np.ndarray:
        """Where the saccades put the image at times ``t_s`` (before the lag): ``[len(t_s), 2]``
        (x, y), field pixels."""
        t = np.asarray(t_s, dtype=np.float64)
        position = np.broadcast_to(np.asarray(self.saccades[0].start_px), (*t.shape, 2)).copy()
        for s in self.saccades:   # in time order: each later one moves on from where this one ends
            f = motion_fraction((t - s.t0_s) / (s.t1_s - s.t0_s), s.ramp)[..., None]
            moved = np.asarray(s.start_px) + f * (np.asarray(s.end_px) - np.asarray(s.start_px))
            position = np.where((t > s.t0_s)[..., None], moved, position)
        return position

    def commanded_px(self, t_s: float) -> tuple[float, float]:
        """Where the saccades put the image at ``t_s`` (before the lag), field pixels."""
        x, y = self.commanded_path(float(t_s))
        return float(x), float(y)

    def offset_px(self, t_s: float) -> tuple[float, float]:
        """Displacement (x, y) of the image from its starting place at time ``t_s``, field pixels."""
        if self.lag_s == 0:
            return self.commanded_px(t_s)
        t, path = self._lag_table
        return float(np.interp(t_s, t, path[:, 0])), float(np.interp(t_s, t, path[:, 1]))

    def render(self, t_s: float, out: np.ndarray) -> None:
        """Write the linear intensity at ``t_s`` seconds into ``out`` (float32, (height, width))."""
        check_region("digits render", out, self.height, self.width, 0, self.height, 0, self.width)
        scale = min(self.width, self.height) / FIELD_SIZE
        dx, dy = self.offset_px(t_s)
        corner_x = (self.width - FIELD_SIZE * scale) / 2
        corner_y = (self.height - FIELD_SIZE * scale) / 2
        shifted_image(self.ink, scale, corner_x, corner_y, self.origin_px[0] - _PAD + dx,
                      self.origin_px[1] - _PAD + dy, self.black_level, self.white_level, out)

    def ground_truth(self) -> int:
        """The class of the digit shown (0-9)."""
        return self.digit

    def save_ground_truth(self, stem: str) -> list[str]:
        """Write ``stem + "_label.txt"`` (the class, one line); return ``[that path]``."""
        path = f"{stem}_label.txt"
        with open(path, "w") as f:
            f.write(f"{self.digit}\n")
        return [path]


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image.copy()
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    rows = np.apply_along_axis(np.convolve, 1, image, k, mode="same")
    return np.apply_along_axis(np.convolve, 0, rows, k, mode="same")


def _schedule(rng, timing_jitter_s: float, amplitude_jitter: float) -> list[Saccade]:
    gain = 1.0 + amplitude_jitter * rng.uniform(-1.0, 1.0, size=2)
    points = [tuple(float(v) for v in np.multiply(p, gain)) for p in SACCADE_WAYPOINTS_PX]
    out = []
    for k in range(len(points) - 1):
        t0, t1 = (k * SACCADE_PERIOD_S + w + timing_jitter_s * rng.uniform(-1.0, 1.0) for w in MOTION_WINDOW_S)
        out.append(Saccade(float(t0), float(t1), points[k], points[k + 1]))
    return out


def make_scene(width: int = FIELD_SIZE, height: int = FIELD_SIZE, seed: int = 0, digit: int | None = None, *,
               image: np.ndarray | None = None, font_fraction: float = 0.15, origin_px=None,
               black_level: float | None = None, white_level: float | None = None, blur_px: float | None = None,
               timing_jitter_s: float = 0.006, amplitude_jitter: float = 0.08, ramp: float | None = None,
               lag_s: float | None = None) -> DigitsScene:
    """An N-MNIST-like scene of ``digit`` (drawn from the seed when None) at the given geometry.

    image: a 28x28 intensity image in [0, 1] to show instead of a generated one (copied).
    Unpinned levels are drawn: black_level in [0.15, 0.35], white_level in [0.7, 1.0],
    blur_px (Gaussian sigma, field pixels) in [0.2, 0.5], origin_px (x, y) 1.2 +- 0.6 each,
    each saccade's ramp in ``RAMP_RANGE`` (``ramp`` pins all three), lag_s in ``LAG_RANGE_S``.

    >>> make_scene(34, 34, seed=0, digit=8, timing_jitter_s=0.0).saccades[1].t0_s
    0.11
    """
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ValueError(f"digits scene: width and height must be positive integers, got {width}x{height}")
    rng = np.random.default_rng(seed)
    if digit is None:
        digit = int(rng.integers(10))
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"digits scene: digit must be an int in 0..9, got {digit!r}")
    image_rng, rng = rng.spawn(2)
    if image is None:
        image = digit_image(int(digit), image_rng, font_fraction=font_fraction)
    image = np.asarray(image, dtype=np.float32)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE) or not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise ValueError(f"digits scene: image must be {IMAGE_SIZE}x{IMAGE_SIZE} with values in [0, 1]")
    drawn = dict(black_level=rng.uniform(0.15, 0.35), white_level=rng.uniform(0.7, 1.0),
                 blur_px=rng.uniform(0.2, 0.5), origin_px=tuple(1.2 + rng.uniform(-0.6, 0.6, size=2)))
    black = drawn["black_level"] if black_level is None else float(black_level)
    white = drawn["white_level"] if white_level is None else float(white_level)
    blur = drawn["blur_px"] if blur_px is None else float(blur_px)
    origin = drawn["origin_px"] if origin_px is None else tuple(float(v) for v in origin_px)
    if not 0 < black < white <= 1:
        raise ValueError(f"digits scene: need 0 < black_level < white_level <= 1, got {black}, {white}")
    if not 0 <= blur <= 3:
        raise ValueError(f"digits scene: blur_px must be in [0, 3], got {blur}")
    if timing_jitter_s < 0 or timing_jitter_s > 0.009 or amplitude_jitter < 0 or amplitude_jitter >= 1:
        raise ValueError("digits scene: timing_jitter_s must be in [0, 0.009] s and amplitude_jitter in [0, 1)")
    padded = np.pad(image, _PAD)
    ink = np.clip(_gaussian_blur(padded, blur), 0.0, 1.0).astype(np.float32)
    saccades = _schedule(rng, timing_jitter_s, amplitude_jitter)
    # drawn after everything above, so that a seed's digit, levels and schedule stay as they were
    ramps = rng.uniform(*RAMP_RANGE, size=len(saccades))
    drawn_lag = rng.uniform(*LAG_RANGE_S)
    if ramp is not None:
        if not 0 < ramp <= 0.5:
            raise ValueError(f"digits scene: ramp must be in (0, 0.5], got {ramp}")
        ramps[:] = ramp
    saccades = tuple(Saccade(s.t0_s, s.t1_s, s.start_px, s.end_px, float(r)) for s, r in zip(saccades, ramps))
    return DigitsScene(
        width=int(width), height=int(height), duration_s=DEFAULT_SECONDS,
        digit=int(digit), ink=ink, origin_px=(float(origin[0]), float(origin[1])), black_level=float(black),
        white_level=float(white), saccades=saccades, lag_s=float(drawn_lag if lag_s is None else lag_s))
