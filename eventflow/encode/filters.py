"""Event filters: denoise, refractory period, crop, downsample.

Each takes and returns EVENT_DTYPE arrays (other layouts with x, y, p, t are
converted); the caller's array is never modified. Geometry is always passed in
as ``sensor_size=(W, H)``; an event outside it is a ``ValueError``.

The two stateful filters keep a per-pixel map of last timestamps and come in
three forms: a frozen parameter dataclass (callable on a whole stream), a
state (``init_*_state``), and a pure step ``*_step(events, state, params) ->
(kept, new_state)`` that never modifies ``state`` (also as the dataclass's
``init_state`` and ``step`` methods). The kept events are a
subset of the input in input order, so the number dropped is
``len(events) - len(kept)``. Cutting a stream anywhere and carrying the state
across gives the same events as one call on the whole stream.

>>> import eventflow
>>> ev = eventflow.from_fields(x=[5, 6, 9], y=[5, 5, 1], p=[1, 1, 0], t=[100, 200, 300])
>>> params = Denoise(sensor_size=(16, 16), filter_time=1000)
>>> kept, state = denoise_step(ev[:2], init_denoise_state(params), params)
>>> kept2, state = denoise_step(ev[2:], state, params)
>>> kept["x"].tolist() + kept2["x"].tolist()   # (5, 5) had no neighbour yet; (9, 1) never has one
[6]
>>> denoise(ev, (16, 16), 1000)["x"].tolist()
[6]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..events import as_events, empty, uninitialized
from ..kernels.filters import NEVER, compact, denoise_kernel, refractory_kernel

__all__ = [
    "Crop", "Denoise", "DenoiseState", "Downsample", "Refractory", "RefractoryState", "crop", "denoise",
    "denoise_step", "downsample", "init_denoise_state", "init_refractory_state", "refractory",
    "refractory_step",
]


# -- checks shared with surface.py and hybrid.py ----------------------------------------------

def _sensor_size(size, name="sensor_size") -> tuple[int, int]:
    """(W, H) as two positive ints, or a ValueError that says what was wrong."""
    try:
        w, h = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height) (no polarity count), got {size!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 < v <= 1 << 16 for v in (w, h)):
        raise ValueError(f"{name} must be two integers in 1..65536, got {size!r}")
    return int(w), int(h)


def _positive(value, name):
    """A positive finite number (int or float), or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of microseconds, got {value!r}")
    return value


def _words(events):
    """Contiguous EVENT_DTYPE events (the caller's array if it already is one) and their uint64 view."""
    events = np.ascontiguousarray(as_events(events))
    return events, events.view(np.uint64)


def _outside(events, index, sensor_size):
    x, y = int(events["x"][index]), int(events["y"][index])
    w, h = sensor_size
    return ValueError(f"event {index} at ({x}, {y}) lies outside the {w}x{h} sensor")


def _kept(words, keep):
    """The kept events as a new, exactly sized array."""
    out = uninitialized(np.count_nonzero(keep))
    compact(words, keep, out.view(np.uint64))
    return out


def _frozen(a):
    a.setflags(write=False)
    return a


# -- denoise ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Denoise:
    """Background-activity filter, as tonic's ``Denoise``: keep an event when one of its 4
    neighbours (left, right, up, down; not itself) fired less than ``filter_time`` us before it.

    Every event, kept or dropped, updates its pixel's timestamp. A pixel that has not fired
    is never recent (tonic instead treats every pixel as having fired at t=0:
    ``init_denoise_state(params, fired_at=0)`` reproduces that).
    """

    sensor_size: tuple[int, int]
    filter_time: float

    def __post_init__(self):
        _sensor_size(self.sensor_size)
        _positive(self.filter_time, "filter_time")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return denoise_step(events, init_denoise_state(self), self)[0]

    def init_state(self, fired_at: int | None = None) -> DenoiseState:
        return init_denoise_state(self, fired_at)

    def step(self, events: np.ndarray, state: DenoiseState):
        return denoise_step(events, state, self)


class DenoiseState(NamedTuple):
    last_t: np.ndarray  # int64[H, W], read-only; NEVER where a pixel has not fired


def init_denoise_state(params: Denoise, fired_at: int | None = None) -> DenoiseState:
    """No pixel has fired (or, with ``fired_at``, every pixel fired at that time)."""
    w, h = params.sensor_size
    return DenoiseState(_frozen(np.full((h, w), NEVER if fired_at is None else int(fired_at), np.int64)))


def denoise_step(events: np.ndarray, state: DenoiseState, params: Denoise):
    """Filter one chunk: ``(kept events, new state)``; ``state`` is not modified."""
    events, words = _words(events)
    last_t = state.last_t.copy()
    keep = np.zeros(len(events), bool)
    # t - last < filter_time  <=>  t - last < ceil(filter_time) for integer times
    bad = denoise_kernel(words, last_t.reshape(-1), *params.sensor_size, math.ceil(params.filter_time), keep)
    if bad >= 0:
        raise _outside(events, bad, params.sensor_size)
    return _kept(words, keep), DenoiseState(_frozen(last_t))


def denoise(events: np.ndarray, sensor_size, filter_time) -> np.ndarray:
    """The events of a whole stream that pass the background-activity filter (see ``Denoise``)."""
    return Denoise(sensor_size=tuple(sensor_size), filter_time=filter_time)(events)


# -- refractory period ----------------------------------------------------------------------

@dataclass(frozen=True)
class Refractory:
    """Drop an event when its pixel (either polarity) fired at most ``refractory_period`` us
    before it, as tonic's ``RefractoryPeriod``: keep when ``t - t_last > refractory_period``.

    Dropped events also reset the pixel's clock. A pixel that has not fired keeps its first
    event (tonic treats every pixel as having fired at ``-refractory_period``, which drops
    events at t <= 0: ``init_refractory_state(params, fired_at=-refractory_period)``).
    """

    sensor_size: tuple[int, int]
    refractory_period: float

    def __post_init__(self):
        _sensor_size(self.sensor_size)
        _positive(self.refractory_period, "refractory_period")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return refractory_step(events, init_refractory_state(self), self)[0]

    def init_state(self, fired_at: int | None = None) -> RefractoryState:
        return init_refractory_state(self, fired_at)

    def step(self, events: np.ndarray, state: RefractoryState):
        return refractory_step(events, state, self)


class RefractoryState(NamedTuple):
    last_t: np.ndarray  # int64[H, W], read-only; NEVER where a pixel has not fired


def init_refractory_state(params: Refractory, fired_at: int | None = None) -> RefractoryState:
    """No pixel has fired (or, with ``fired_at``, every pixel fired at that time)."""
    w, h = params.sensor_size
    return RefractoryState(_frozen(np.full((h, w), NEVER if fired_at is None else int(fired_at), np.int64)))


def refractory_step(events: np.ndarray, state: RefractoryState, params: Refractory):
    """Filter one chunk: ``(kept events, new state)``; ``state`` is not modified."""
    events, words = _words(events)
    last_t = state.last_t.copy()
    keep = np.zeros(len(events), bool)
    # t - last > period  <=>  t - last > floor(period) for integer times
    bad = refractory_kernel(words, last_t.reshape(-1), *params.sensor_size,
                            math.floor(params.refractory_period), keep)
    if bad >= 0:
        raise _outside(events, bad, params.sensor_size)
    return _kept(words, keep), RefractoryState(_frozen(last_t))


def refractory(events: np.ndarray, sensor_size, refractory_period) -> np.ndarray:
    """The events of a whole stream that pass the refractory filter (see ``Refractory``)."""
    return Refractory(sensor_size=tuple(sensor_size), refractory_period=refractory_period)(events)


# -- crop and downsample (stateless) ---------------------------------------------------------

def _check_inside(events, sensor_size):
    w, h = sensor_size
    if len(events):
        out = np.flatnonzero((events["x"] >= w) | (events["y"] >= h))
        if len(out):
            raise _outside(events, int(out[0]), sensor_size)


@dataclass(frozen=True)
class Crop:
    """Keep the events inside ``box = (x0, y0, width, height)`` and move them to the box's
    origin: ``x' = x - x0``, ``y' = y - y0``. The output geometry is ``output_size``.

    tonic's ``CenterCrop(sensor_size, size)`` equals ``Crop`` with ``x0 = (W - w) // 2``,
    ``y0 = (H - h) // 2`` when the box fits; a box reaching outside the sensor (which tonic
    pads) is a ValueError here.
    """

    sensor_size: tuple[int, int]
    box: tuple[int, int, int, int]

    def __post_init__(self):
        W, H = _sensor_size(self.sensor_size)
        try:
            x0, y0, w, h = (int(v) for v in self.box)
        except (TypeError, ValueError):
            raise ValueError(f"box must be (x0, y0, width, height), got {self.box!r}") from None
        if x0 < 0 or y0 < 0 or w < 1 or h < 1 or x0 + w > W or y0 + h > H:
            raise ValueError(f"box {tuple(self.box)} (x0, y0, width, height) is not inside the {W}x{H} sensor")

    @property
    def output_size(self) -> tuple[int, int]:
        return int(self.box[2]), int(self.box[3])

    def __call__(self, events: np.ndarray) -> np.ndarray:
        events, words = _words(events)
        _check_inside(events, self.sensor_size)
        x0, y0, w, h = (int(v) for v in self.box)
        x, y = events["x"], events["y"]
        out = _kept(words, (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h))
        out["x"] -= x0
        out["y"] -= y0
        return out


def crop(events: np.ndarray, sensor_size, box) -> np.ndarray:
    """The events inside ``box = (x0, y0, width, height)``, shifted to its origin (see ``Crop``).

    >>> import eventflow
    >>> ev = eventflow.from_fields(x=[1, 5], y=[2, 6], p=[1, 0], t=[0, 1])
    >>> crop(ev, (8, 8), (4, 4, 4, 4))[["x", "y"]].tolist()
    [(1, 2)]
    """
    return Crop(sensor_size=tuple(sensor_size), box=tuple(box))(events)


@dataclass(frozen=True)
class Downsample:
    """Map events to a coarser grid: ``x' = floor(x * target_W / W)``, ``y' = floor(y * target_H / H)``
    in exact integer arithmetic (non-integer factors allowed). No event is dropped or merged.

    tonic's ``Downsample(sensor_size=(W, H, 2), target_size=(w, h))`` computes the same in
    float64 (``x * (w / W)`` truncated), which can round one pixel low where ``x * w / W`` is
    an integer and ``w / W`` is not exact in binary.
    """

    sensor_size: tuple[int, int]
    target_size: tuple[int, int]

    def __post_init__(self):
        W, H = _sensor_size(self.sensor_size)
        w, h = _sensor_size(self.target_size, "target_size")
        if w > W or h > H:
            raise ValueError(f"target_size {self.target_size} is larger than the {W}x{H} sensor")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        events = as_events(events)
        _check_inside(events, self.sensor_size)
        (W, H), (w, h) = self.sensor_size, self.target_size
        out = empty(len(events))
        out["x"] = events["x"].astype(np.uint32) * np.uint32(w) // np.uint32(W)  # < 2**32: no overflow
        out["y"] = events["y"].astype(np.uint32) * np.uint32(h) // np.uint32(H)
        out["p"] = events["p"]
        out["t"] = events["t"]
        return out


def downsample(events: np.ndarray, sensor_size, target_size) -> np.ndarray:
    """Events mapped from ``sensor_size`` to ``target_size`` (see ``Downsample``).

    >>> import eventflow
    >>> ev = eventflow.from_fields(x=[0, 639, 1279], y=[0, 360, 719], p=[1, 0, 1], t=[0, 1, 2])
    >>> downsample(ev, (1280, 720), (128, 128))[["x", "y"]].tolist()
    [(0, 0), (63, 64), (127, 127)]
    """
    return Downsample(sensor_size=tuple(sensor_size), target_size=tuple(target_size))(events)
