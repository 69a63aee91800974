"""DVS128 Gesture, simulated: one subject performing a sequence of the 11 gesture classes.

The subject faces a DVS128 (128 x 128) with the upper body filling most of the frame (so the
subject's right hand is on the image's left). Classes and ids are DVS128 Gesture's: 1 hand
clap, 2 right hand wave, 3 left hand wave, 4 right arm clockwise, 5 right arm
counter-clockwise, 6 left arm clockwise, 7 left arm counter-clockwise, 8 arm roll, 9 air
drums, 10 air guitar, 11 other (clockwise as the subject sees it: see ``gesture_moves``).
One recording holds the gestures one after the other, each eased in from and out to a rest
pose with a short rest between. Body, clothes, room, lighting, speed, amplitude and phase
are drawn from the seed (``gesture_figure``, ``gesture_moves``); the figure is drawn by the
numba rasteriser in ``eventflow.kernels.raster``.

Ground truth: a structured array (class i4, t_start i8, t_end i8 in us), one row per gesture,
written beside an event file as ``<stem>_labels.csv`` exactly as DVS128 Gesture writes it
(header ``class,startTime_usec,endTime_usec``); ``eventflow.formats.aedat.read_gesture_labels`` reads it back.

>>> import numpy as np
>>> scene = make_scene(128, 128, seed=1, gestures=[2, 4])
>>> frame = np.empty((128, 128), np.float32)
>>> scene.render(0.5, frame)
>>> [int(c) for c in scene.ground_truth()["class"]]
[2, 4]
"""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from eventflow.kernels import raster

from ..scene import check_region
from .gesture_figure import JOINT_NAMES, N_CHANNELS, Subject, draw_subject, figure_tables, room_images
from .gesture_moves import CLASS_NAMES, HARMONICS, class_motion, idle_motion, rest_pose

__all__ = ["CLASS_NAMES", "DEFAULT_SECONDS", "DEFAULT_SENSOR", "GestureScene", "LABEL_DTYPE",
           "LABELS_HEADER", "SENSOR_OVERRIDES", "VARIATION", "make_scene", "write_labels_csv"]

DEFAULT_SENSOR = "dvs128"
DEFAULT_SECONDS = 2.0  # per gesture, rests included
# DVS128-like: thresholds near 15 % contrast; ~0.1 Hz background activity per pixel (a few Hz
# is far too much), a few hot pixels. One refinement level: the rectangle around fast-moving
# edges is sampled at 2 kHz (the 1 kHz grid elsewhere): about 40 % fewer frames than two levels
# on 2 s of seeds 0-3, with event counts within 1 % of theirs.
SENSOR_OVERRIDES = {"contrast_on": 0.15, "contrast_off": 0.15, "background_rate_hz": 0.1,
                    "hot_pixel_fraction": 0.0005, "hot_pixel_rate_hz": 5.0, "shot_noise_rate_hz": 0.02,
                    "max_refine_levels": 1}
# the same rows as eventflow.formats.aedat.GESTURE_LABEL_DTYPE (what the DVS128 Gesture readers give)
LABEL_DTYPE = np.dtype([("class", "<i4"), ("t_start", "<i8"), ("t_end", "<i8")])
LABELS_HEADER = "class,startTime_usec,endTime_usec"
LABELS_SUFFIX = "_labels.csv"
VARIATION = ("scale", "offset_x", "offset_y", "contrast", "light_level", "light_gradient", "flicker", "clutter",
             "distractor", "speed", "amplitude", "sway", "rest_s")
_SUBJECT_KEYS = ("scale", "offset_x", "offset_y", "contrast", "light_level", "light_gradient", "flicker", "clutter",
                 "distractor")  # the ones draw_subject takes


@dataclass(frozen=True, eq=False)
class GestureScene:
    """A rendered gesture recording; build it with ``make_scene``. ``render`` reuses scratch
    buffers held here, so one scene renders in one thread at a time."""

    width: int
    height: int
    duration_s: float
    subject: Subject
    classes: np.ndarray     # u1[n]
    starts: tuple           # seconds, per gesture (including its ease-in)
    ends: tuple
    ramp_s: float           # ease-in / ease-out time
    rest: np.ndarray        # float64[K]
    g0: np.ndarray          # float64[n, K]
    rate: np.ndarray        # float64[n, K] rad/s of rotating channels
    harm: np.ndarray        # float64[n, K, HARMONICS, 2]
    omega: np.ndarray       # float64[n]
    idle: np.ndarray        # float64[K, 3]
    joint_index: np.ndarray
    joint_value: np.ndarray
    shapes: np.ndarray
    background: np.ndarray  # float32[H, W]
    light: np.ndarray       # float32[H, W]
    _q: np.ndarray = field(init=False, repr=False)
    _pos: np.ndarray = field(init=False, repr=False)
    _angle: np.ndarray = field(init=False, repr=False)
    _prims: np.ndarray = field(init=False, repr=False)
    _figure: tuple = field(init=False, repr=False)  # figure_log_kernel's first arguments

    def __post_init__(self):
        object.__setattr__(self, "_figure", (self.rest, self.g0, self.rate, self.harm, self.omega, self.idle,
                                             self.joint_index, self.joint_value, self.shapes, self.background,
                                             self.light, np.empty((self.height, self.width), np.float32)))
        object.__setattr__(self, "_q", np.zeros(N_CHANNELS))
        object.__setattr__(self, "_pos", np.zeros((len(JOINT_NAMES), 2)))
        object.__setattr__(self, "_angle", np.zeros(len(JOINT_NAMES)))
        object.__setattr__(self, "_prims", np.zeros((len(self.shapes), raster.PRIM_COLUMNS)))

    def _envelope(self, t_s: float) -> tuple[int, float, float, float]:
        """(segment, tau, w, W) at ``t_s``: w the ease (0 at rest), W its integral since the start."""
        i = bisect.bisect_right(self.starts, t_s) - 1
        if i < 0 or t_s >= self.ends[i]:
            return 0, 0.0, 0.0, 0.0
        s, e, r = self.starts[i], self.ends[i], self.ramp_s
        tau = t_s - s
        if tau < r:
            x = tau / r
            return i, tau, x * x * (3 - 2 * x), r * (x ** 3 - x ** 4 / 2)
        if t_s > e - r:
            y = (e - t_s) / r
            return i, tau, y * y * (3 - 2 * y), (e - s - r) - r * (y ** 3 - y ** 4 / 2)
        return i, tau, 1.0, r / 2 + tau - r

    def _pose(self, t_s: float) -> None:
        i, tau, w, big_w = self._envelope(t_s)
        raster.pose_figure_kernel(self.rest, self.g0[i], self.rate[i], self.harm[i], self.omega[i], tau, w, big_w,
                                  self.idle, t_s, self._q, self.joint_index, self.joint_value, self.shapes, self._pos,
                                  self._angle, self._prims)

    def render(self, t_s: float, out: np.ndarray) -> None:
        """Write the linear intensity at ``t_s`` seconds into ``out`` (float32, (height, width))."""
        self.render_region(t_s, out, 0, self.height, 0, self.width)

    def render_region(self, t_s: float, out: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
        """``render`` of rows ``y0..y1-1``, columns ``x0..x1-1`` only (the same values; other
        pixels untouched): the simulator's refinement renders just where the image changes fast."""
        check_region("gesture render", out, self.height, self.width, y0, y1, x0, x1)
        t_s = float(t_s)
        self._pose(t_s)
        raster.rasterise_region_kernel(self._prims, self.background, self.light, self._gain(t_s), out, y0, y1, x0, x1)

    def render_log_region(self, t_s: float, eps: float, out: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> int:
        """``log(I + eps)`` of ``render_region``'s intensity, as ``eventflow.kernels.sim.log_region``
        computes it, into rows ``y0..y1-1``, columns ``x0..x1-1`` of the flat float32 frame ``out``
        (the simulator's fast path: one numba call per sample); returns the bad pixels' count."""
        t_s = float(t_s)
        bad = raster.figure_log_kernel(*self._figure, *self._envelope(t_s), t_s, self._gain(t_s), eps, out,
                                       y0, y1, x0, x1)
        if bad < 0:
            raise ValueError(f"gesture render_log_region: region rows {y0}..{y1}, columns {x0}..{x1} is not inside "
                             f"{self.width}x{self.height}, or out is not a flat frame of {self.width * self.height}")
        return bad

    def figure_sampler(self) -> tuple:
        """``(figure, timing, lighting)``: this scene as ``eventflow.kernels.sim_figure`` takes it (the
        simulator then runs its interval loop in one numba call; the same events as through
        ``render_log_region``). The figure's image scratch is shared with ``render_log_region``."""
        s = self.subject
        timing = (np.array(self.starts, np.float64), np.array(self.ends, np.float64), float(self.ramp_s))
        lighting = (float(s.light_level), float(s.flicker), float(s.flicker_hz), float(s.flicker_phase))
        return self._figure, timing, lighting

    def _gain(self, t_s: float) -> float:
        s = self.subject
        return s.light_level * (1.0 + s.flicker * math.sin(2 * math.pi * s.flicker_hz * t_s + s.flicker_phase))

    def pose(self, t_s: float) -> np.ndarray:
        """Joint positions at ``t_s`` (float64[J, 2], (x, y) pixels, rows as ``JOINT_NAMES``)."""
        self._pose(float(t_s))
        return self._pos.copy()

    def ground_truth(self) -> np.ndarray:
        """One row per gesture: class (1..11), t_start, t_end (microseconds from t = 0)."""
        gt = np.empty(len(self.classes), LABEL_DTYPE)
        gt["class"] = self.classes
        gt["t_start"] = np.round(np.array(self.starts) * 1e6)
        gt["t_end"] = np.round(np.array(self.ends) * 1e6)
        return gt

    def save_ground_truth(self, stem: str) -> list[str]:
        """Write ``stem + "_labels.csv"`` (DVS128 Gesture's layout); return ``[path]``."""
        path = os.fspath(stem) + LABELS_SUFFIX
        write_labels_csv(path, self.ground_truth())
        return [path]


def write_labels_csv(path: str, labels: np.ndarray) -> None:
    """Write labels (``LABEL_DTYPE`` rows) as a DVS128 Gesture labels file."""
    rows = zip(labels["class"], labels["t_start"], labels["t_end"])
    lines = [LABELS_HEADER] + [f"{int(c)},{int(s)},{int(e)}" for c, s, e in rows]
    with open(path, "w", newline="") as f:
        f.write("\n".join(lines) + "\n")


def _class_list(gestures, rng) -> list[int]:
    if gestures is None:
        return [int(rng.integers(1, 12))]
    items = [gestures] if np.ndim(gestures) == 0 else list(gestures)
    if not items:
        raise ValueError("gesture scene: gestures is empty; give a class id 1..11 or a sequence of them")
    for g in items:
        if isinstance(g, (bool, np.bool_)) or not isinstance(g, (int, np.integer)) or not 1 <= g <= 11:
            raise ValueError(f"gesture scene: gesture {g!r} is not a class id 1..11 "
                             f"({', '.join(f'{k} {v}' for k, v in CLASS_NAMES.items())})")
    return [int(g) for g in items]


def make_scene(width: int = 128, height: int = 128, seed: int = 0, gestures: int | Sequence[int] | None = None,
               duration_s: float | None = None, **variation) -> GestureScene:
    """A subject drawn from ``seed`` performing ``gestures`` (a class id or a sequence, one after
    the other; default one random class) over ``duration_s`` seconds (default
    ``DEFAULT_SECONDS`` per gesture). ``variation`` fixes any of ``VARIATION`` instead of drawing
    it: scale, offset_x, offset_y, contrast, light_level, light_gradient, flicker, clutter,
    distractor (see ``draw_subject``), speed and amplitude (factors, 1 = typical), sway (pixels
    at 128 high), rest_s (rest before and after each gesture)."""
    unknown = sorted(set(variation) - set(VARIATION))
    if unknown:
        raise ValueError(f"gesture scene: unknown variation {', '.join(unknown)}; known: {', '.join(VARIATION)}")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"gesture scene: width and height must be positive, got {width}x{height}")
    width, height = int(width), int(height)
    streams = np.random.SeedSequence(seed).spawn(4)  # independent: fixing one draw leaves the others
    subject_rng, room_rng, motion_rng, time_rng = (np.random.default_rng(s) for s in streams)
    classes = _class_list(gestures, time_rng)
    n = len(classes)
    duration = float(duration_s) if duration_s is not None else DEFAULT_SECONDS * n
    if not duration > 0:
        raise ValueError(f"gesture scene: duration_s must be positive, got {duration_s}")
    subject = draw_subject(subject_rng, width, height, **{k: v for k, v in variation.items() if k in _SUBJECT_KEYS})
    background, light = room_images(subject, room_rng)
    tables = figure_tables(subject)

    slot = duration / n
    rest_s = variation.get("rest_s", min(0.25, 0.15 * slot))
    if not 0 <= 2 * rest_s < slot:
        raise ValueError(f"gesture scene: rest_s {rest_s} leaves no time for a gesture in {slot:.3f} s")
    starts, ends = [], []
    for k in range(n):
        jitter = time_rng.uniform(0.7, 1.3, 2) * rest_s
        starts.append(k * slot + jitter[0])
        ends.append((k + 1) * slot - jitter[1])
    ramp = min(0.25, min(e - s for s, e in zip(starts, ends)) / 4)

    speed = variation.get("speed", motion_rng.uniform(0.8, 1.25))
    amplitude = variation.get("amplitude", motion_rng.uniform(0.8, 1.2))
    rest = rest_pose(motion_rng)
    idle = idle_motion(motion_rng, width, height, variation.get("sway"))
    g0, rate, omega = np.zeros((n, N_CHANNELS)), np.zeros((n, N_CHANNELS)), np.zeros(n)
    harm = np.zeros((n, N_CHANNELS, HARMONICS, 2))
    for k, c in enumerate(classes):
        m = class_motion(c, motion_rng, rest, speed, amplitude)
        swing = ends[k] - starts[k] - ramp  # the envelope's integral over the gesture
        cycles = max(1, round(m.omega / (2 * math.pi) * swing))  # whole turns, so rotations end at rest
        g0[k], harm[k], omega[k] = m.g0, m.harm, m.omega
        rate[k] = m.turns * 2 * math.pi * cycles / swing
    return GestureScene(width, height, duration, subject, np.array(classes, np.uint8), tuple(starts), tuple(ends),
                        ramp, rest, g0, rate, harm, omega, idle, tables.joint_index, tables.joint_value, tables.shapes,
                        background, light)
