"""Exponential time surface, streaming, one frame per time window.

The state is each pixel's last event time per polarity, ``t_last[p, y, x]`` (channel
``p`` is 1 for ON events, ``p != 0``, else 0). Windows are ``[t0 + k*w, t0 + (k+1)*w)``
with ``t0 = t_start`` or the first event's time, cut in stream order like
``EventReader.by_time`` (an event whose time went backwards stays in the open window).
Frame k is sampled at its window's END, ``s_k = t0 + (k+1)*w``, after every event of
windows 0..k::

    surface[k, p, y, x] = exp(-(s_k - t_last[p, y, x]) / tau)    (0 where no event yet)

``time_surface_step`` returns the frames of the windows that its events close (an event
at or after the open window's end closes it and any empty windows after it);
``time_surface_finish`` returns the frame of the open window at the end of the stream.
The frames of a whole stream, ``to_time_surface``, are those of every window from the
one holding ``t0`` to the one holding the last event, whatever the cut points.

tonic's ``to_timesurface_numpy(events, (W, H, 2), dt=w, tau=tau)`` on a time-sorted
stream equals ``to_time_surface(events, (W, H), tau, w)[:n]`` with
``n = max((t_last - t_first) // w, 1)`` (tonic drops the last, incomplete window and
returns float64); tonic has no streaming form and always starts at the first event.

>>> import eventflow
>>> ev = eventflow.from_fields(x=[1, 2, 1], y=[0, 0, 0], p=[1, 0, 1], t=[0, 500, 1500])
>>> ts = TimeSurface(sensor_size=(3, 1), tau=1000, time_window=1000)
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


def _plan(events, t_start, window, time_window):
    """(grid origin, number of windows these events close) for a chunk."""
    if not len(events):
        return t_start, 0
    t = events["t"]
    if t_start is None:
        t_start = int(t[0])
    return t_start, max(window, (int(t.max()) - t_start) // time_window) - window


@dataclass(frozen=True)
class TimeSurface:
    """Exponential time surface parameters: geometry (W, H), decay ``tau`` and window length
    ``time_window`` (us). Callable on a whole stream: ``TimeSurface(...)(events)``."""

    sensor_size: tuple[int, int]
    tau: float
    time_window: int

    def __post_init__(self):
        _sensor_size(self.sensor_size)
        _positive(self.tau, "tau")
        _time_window(self.time_window)

    def __call__(self, events: np.ndarray, t_start: int | None = None) -> np.ndarray:
        state = init_time_surface_state(self, t_start)
        frames, state = time_surface_step(events, state, self)
        return np.concatenate([frames, time_surface_finish(state, self)])


class TimeSurfaceState(NamedTuple):
    last_t: np.ndarray       # int64[2, H, W], read-only; NEVER where no event yet
    t_start: int | None      # window grid origin t0; None: the first event's time
    window: int              # index k of the open window
    events_seen: int         # events consumed so far


def init_time_surface_state(params: TimeSurface, t_start: int | None = None) -> TimeSurfaceState:
    """No event yet; windows start at ``t_start`` (or at the first event's time)."""
    w, h = params.sensor_size
    return TimeSurfaceState(_frozen(np.full((2, h, w), NEVER, np.int64)),
                            None if t_start is None else int(t_start), 0, 0)


def time_surface_step(events: np.ndarray, state: TimeSurfaceState, params: TimeSurface):
    """``(frames float32[n, 2, H, W] of the windows these events close, new state)``;
    ``state`` is not modified."""
    events, words = _words(events)
    w, h = params.sensor_size
    t_start, n_closed = _plan(events, state.t_start, state.window, params.time_window)
    last_t = state.last_t.copy()
    frames = np.zeros((n_closed, 2, h, w), np.float32)
    if len(events):
        bad = time_surface_kernel(words, last_t.reshape(-1), w, h, t_start, state.window, params.time_window,
                                  float(params.tau), frames.reshape(n_closed, 2 * h * w))
        if bad >= 0:
            raise _outside(events, bad, params.sensor_size)
    new = TimeSurfaceState(_frozen(last_t), t_start, state.window + n_closed, state.events_seen + len(events))
    return frames, new


def time_surface_finish(state: TimeSurfaceState, params: TimeSurface) -> np.ndarray:
    """End of stream: the open window's frame, sampled at its end (float32[1, 2, H, W]), or no
    frame (``[0, 2, H, W]``) when no event was seen."""
    w, h = params.sensor_size
    if not state.events_seen:
        return np.zeros((0, 2, h, w), np.float32)
    frame = np.zeros((1, 2, h, w), np.float32)
    sample_t = state.t_start + (state.window + 1) * params.time_window
    surface_frame(state.last_t.reshape(-1), sample_t, float(params.tau), frame.reshape(-1))
    return frame


def to_time_surface(events: np.ndarray, sensor_size, tau, time_window, t_start=None) -> np.ndarray:
    """Time surfaces of a whole stream, float32[T, 2, H, W], one per window from ``t_start``
    (default: the first event's time) to the last event's window (see the module docstring)."""
    return TimeSurface(sensor_size=tuple(sensor_size), tau=tau, time_window=time_window)(events, t_start)
