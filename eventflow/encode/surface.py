"""Exponential time surface, streaming, one frame per time window.

The state is each pixel's last event time per polarity, ``t_last[p, y, x]`` (channel
``p`` is 1 for ON events, ``p != 0``, else 0). Windows are ``[t0 + k*w, t0 + (k+1)*w)``
with ``t0 = t_start`` or the first event's time, cut in stream order like
``EventReader.by_time`` (an event whose time went backwards stays in the open window).
Frame k is sampled at its window's END, ``s_k = t0 + (k+1)*w``, after every event of
windows 0..k::

    surface[k, p, y, x] = exp(-(s_k - t_last[p, y, x]) / tau)    (0 where no event yet)

``time_surface_step`` returns the frames of the windows its events close (an event at or
after the open window's end closes it and any empty windows after it; at most
``max_frames_per_step`` per call, else a ValueError); ``time_surface_finish`` ends the
stream. How many windows a stream has follows tonic's rule, as the frame encoder's does:
with ``d = t_max - t0`` (``t_max``: the latest event time), ``T = max(d // w, 1)``, or
``max(ceil(d / w), 1)`` with ``include_incomplete`` (so the open window is dropped unless it
is the first or ``include_incomplete`` is set; as in tonic, a last event exactly at a window
boundary opens no window of its own). The frames of a whole stream, ``to_time_surface``,
are the same whatever the cut points.

tonic's ``to_timesurface_numpy(events, (W, H, 2), dt=w, tau=tau)`` on a time-sorted stream
equals ``to_time_surface(events, (W, H), tau, w)`` (float32 here, float64 there). tonic has
no streaming form, always starts at the first event, and has no ``include_incomplete``.

>>> import eventflow
>>> ev = eventflow.from_fields(x=[1, 2, 1], y=[0, 0, 0], p=[1, 0, 1], t=[0, 500, 1500])
>>> ts = TimeSurface(sensor_size=(3, 1), tau=1000, time_window=1000, include_incomplete=True)
>>> frames, state = time_surface_step(ev, init_time_surface_state(ts), ts)
>>> frames.shape                          # one window closed, by the event at t=1500
(1, 2, 1, 3)
>>> [round(v, 3) for v in frames[0, 1, 0].tolist()]     # ON channel at s=1000: exp(-1000/1000) at x=1
[0.0, 0.368, 0.0]
>>> [round(v, 3) for v in frames[0, 0, 0].tolist()]     # OFF channel: exp(-500/1000) at x=2
[0.0, 0.0, 0.607]
>>> [round(v, 3) for v in time_surface_finish(state, ts)[0, 1, 0].tolist()]  # s=2000, x=1 fired at 1500
[0.0, 0.607, 0.0]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..kernels.surface import NEVER, surface_frame, time_surface_kernel
from .filters import _frozen, _outside, _positive, _sensor_size, _words

__all__ = ["TimeSurface", "TimeSurfaceState", "init_time_surface_state", "time_surface_finish",
           "time_surface_step", "to_time_surface"]


def _time_window(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"time_window must be a positive integer number of microseconds, got {value!r}")
    return int(value)


def _check_windows(params):
    """Checks of the window parameters shared with ``HybridCoding``."""
    _sensor_size(params.sensor_size)
    _time_window(params.time_window)
    if isinstance(params.max_frames_per_step, bool) or not isinstance(params.max_frames_per_step, (int, np.integer)) \
            or params.max_frames_per_step < 1:
        raise ValueError(f"max_frames_per_step must be a positive integer, got {params.max_frames_per_step!r}")


def _plan(events, state, params):
    """(grid origin t0, number of windows these events close, latest time seen) for a chunk."""
    if not len(events):
        return state.t_start, 0, state.t_max
    t = events["t"]
    t_start = int(t[0]) if state.t_start is None else state.t_start
    t_max = int(t.max()) if state.t_max is None else max(int(t.max()), state.t_max)  # one pass over t
    n = max(state.window, (t_max - t_start) // params.time_window) - state.window
    if n > params.max_frames_per_step:
        raise ValueError(f"these events close {n} windows (> max_frames_per_step={params.max_frames_per_step}); "
                         f"pass them in smaller pieces")
    return t_start, n, t_max


def _last_window_wanted(state, params) -> bool:
    """Does the stream's end emit the open window? tonic's window count, ``max(d // w, 1)``
    (``ceil`` with ``include_incomplete``) with ``d = t_max - t0``, says how many windows a
    stream has; the steps have emitted ``state.window`` of them."""
    if state.t_max is None:
        return False
    d, w = state.t_max - state.t_start, params.time_window
    n = max(-(-d // w) if params.include_incomplete else d // w, 1)
    return n > state.window


@dataclass(frozen=True)
class TimeSurface:
    """Exponential time surface parameters: geometry (W, H), decay ``tau`` (us) and window
    length ``time_window`` (us); ``include_incomplete`` and ``max_frames_per_step`` as the
    frame encoder's. Callable on a whole stream: ``TimeSurface(...)(events)``; streaming:
    ``init_state``, ``step``, ``finish`` (the functions below)."""

    sensor_size: tuple[int, int]
    tau: float
    time_window: int
    include_incomplete: bool = False
    max_frames_per_step: int = 100_000

    def __post_init__(self):
        _check_windows(self)
        _positive(self.tau, "tau")

    def __call__(self, events: np.ndarray, t_start: int | None = None) -> np.ndarray:
        frames, state = time_surface_step(events, init_time_surface_state(self, t_start), self)
        return np.concatenate([frames, time_surface_finish(state, self)])

    def init_state(self, t_start: int | None = None) -> TimeSurfaceState:
        return init_time_surface_state(self, t_start)

    def step(self, events: np.ndarray, state: TimeSurfaceState):
        return time_surface_step(events, state, self)

    def finish(self, state: TimeSurfaceState) -> np.ndarray:
        return time_surface_finish(state, self)


class TimeSurfaceState(NamedTuple):
    last_t: np.ndarray       # int64[2, H, W], read-only; NEVER where no event yet
    t_start: int | None      # window grid origin t0; None: the first event's time
    window: int              # index k of the open window (= windows emitted so far)
    t_max: int | None        # the latest event time seen; None: no event yet


def init_time_surface_state(params: TimeSurface, t_start: int | None = None) -> TimeSurfaceState:
    """No event yet; windows start at ``t_start`` (or at the first event's time)."""
    w, h = params.sensor_size
    return TimeSurfaceState(_frozen(np.full((2, h, w), NEVER, np.int64)),
                            None if t_start is None else int(t_start), 0, None)


def time_surface_step(events: np.ndarray, state: TimeSurfaceState, params: TimeSurface):
    """``(frames float32[n, 2, H, W] of the windows these events close, new state)``;
    ``state`` is not modified."""
    events, words = _words(events)
    if not len(events):
        return np.zeros((0, 2, *params.sensor_size[::-1]), np.float32), state
    w, h = params.sensor_size
    t_start, n_closed, t_max = _plan(events, state, params)
    last_t = state.last_t.copy()
    frames = np.zeros((n_closed, 2, h, w), np.float32)
    bad = time_surface_kernel(words, last_t.reshape(-1), w, h, t_start, state.window, params.time_window,
                              float(params.tau), frames.reshape(n_closed, 2 * h * w))
    if bad >= 0:
        raise _outside(events, bad, params.sensor_size)
    return frames, TimeSurfaceState(_frozen(last_t), t_start, state.window + n_closed, t_max)


def time_surface_finish(state: TimeSurfaceState, params: TimeSurface) -> np.ndarray:
    """End of stream: the open window's frame sampled at its end (float32[1, 2, H, W]) where the
    window count rule wants it (see the module docstring), else no frame (``[0, 2, H, W]``)."""
    w, h = params.sensor_size
    if not _last_window_wanted(state, params):
        return np.zeros((0, 2, h, w), np.float32)
    frame = np.zeros((1, 2, h, w), np.float32)
    sample_t = state.t_start + (state.window + 1) * params.time_window
    surface_frame(state.last_t.reshape(-1), sample_t, float(params.tau), frame.reshape(-1))
    return frame


def to_time_surface(events: np.ndarray, sensor_size, tau, time_window, include_incomplete=False,
                    t_start=None) -> np.ndarray:
    """Time surfaces of a whole stream, float32[T, 2, H, W], one per window (see the module docstring)."""
    params = TimeSurface(sensor_size=tuple(sensor_size), tau=tau, time_window=time_window,
                         include_incomplete=include_incomplete)
    return params(events, t_start)
