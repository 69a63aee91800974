"""Hybrid coding: a rate (direct) code and a temporal (time-to-first-spike) code of each window.

After He et al., "Adaptive Spiking Neural Networks with Hybrid Coding" (2024), which mixes
direct coding with temporal coding of the input; here both codes of the same window are
concatenated along the channel axis and the network sees one frame per window. Windows are
``[s_k, s_k + w)`` with ``s_k = t0 + k*w``, ``t0 = t_start`` or the first event's time, cut
in stream order like ``EventReader.by_time`` (an event whose time went backwards stays in
the open window). For pixel (x, y), polarity channel p (1 for ON, ``p != 0``, else 0), with
``n`` its events in window k and ``t_first`` the earliest of their times::

    rate[p]            = min(n, count_clip) / count_clip                       channels 0, 1
    ttfs[p]            = 1 - (max(t_first, s_k) - s_k) / w   in (0, 1]; 0 if n = 0     2, 3
    latency[p, b]      = 1 if n > 0 and b = floor((max(t_first, s_k) - s_k) * B / w)
                                                          4 + p*B + b, b < B = latency_bins

so a frame has ``C = 4 + 2 * latency_bins`` channels (float32[T, C, H, W]); the optional
latency group is the first spike as a one-hot spike train of B steps.

Streaming: ``hybrid_step`` carries the open (partial) window in its state and returns the
codes of the windows its events close (empty windows give zero codes; at most
``max_frames_per_step`` per call); ``hybrid_finish`` ends the stream. How many windows a
stream has follows tonic's rule, as the frame encoder's and the time surface's do (see
``eventflow.encode.surface``): the last, incomplete window is coded only when it is the
first or with ``include_incomplete``. Any cut points give the codes of the whole stream,
``to_hybrid``.

>>> import eventflow
>>> ev = eventflow.from_fields(x=[0, 0, 1, 1], y=[0, 0, 0, 0], p=[1, 1, 0, 1], t=[250, 900, 500, 1200])
>>> codes = to_hybrid(ev, (2, 1), time_window=1000, count_clip=4, include_incomplete=True, t_start=0)
>>> codes.shape
(2, 4, 1, 2)
>>> codes[0, :, 0].tolist()   # window [0, 1000): rate OFF, rate ON, ttfs OFF, ttfs ON (x = 0, 1)
[[0.0, 0.25], [0.5, 0.0], [0.0, 0.5], [0.75, 0.0]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..kernels.surface import NONE_YET, hybrid_frame, hybrid_kernel
from .filters import _frozen, _outside, _words
from .surface import _check_windows, _last_window_wanted, _plan

__all__ = ["HybridCoding", "HybridState", "hybrid_finish", "hybrid_step", "init_hybrid_state", "to_hybrid"]


@dataclass(frozen=True)
class HybridCoding:
    """Hybrid-coding parameters: geometry (W, H), window length (us), the event count that
    saturates the rate code, the number of latency bins (0: no latency channels);
    ``include_incomplete`` and ``max_frames_per_step`` as the frame encoder's. Callable on a
    whole stream; streaming: ``init_state``, ``step``, ``finish`` (the functions below)."""

    sensor_size: tuple[int, int]
    time_window: int
    count_clip: int = 1
    latency_bins: int = 0
    include_incomplete: bool = False
    max_frames_per_step: int = 100_000

    def __post_init__(self):
        _check_windows(self)
        for name, low in (("count_clip", 1), ("latency_bins", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v < 1 << 31:
                raise ValueError(f"{name} must be an integer in {low}..2**31-1, got {v!r}")

    @property
    def channels(self) -> int:
        return 4 + 2 * self.latency_bins

    def __call__(self, events: np.ndarray, t_start: int | None = None) -> np.ndarray:
        frames, state = hybrid_step(events, init_hybrid_state(self, t_start), self)
        return np.concatenate([frames, hybrid_finish(state, self)])

    def init_state(self, t_start: int | None = None) -> HybridState:
        return init_hybrid_state(self, t_start)

    def step(self, events: np.ndarray, state: HybridState):
        return hybrid_step(events, state, self)

    def finish(self, state: HybridState) -> np.ndarray:
        return hybrid_finish(state, self)


class HybridState(NamedTuple):
    counts: np.ndarray       # int32[2, H, W] events of the open window, read-only
    first_t: np.ndarray      # int64[2, H, W] their earliest time (NONE_YET where none), read-only
    t_start: int | None      # window grid origin t0; None: the first event's time
    window: int              # index k of the open window (= windows emitted so far)
    t_max: int | None        # the latest event time seen; None: no event yet


def init_hybrid_state(params: HybridCoding, t_start: int | None = None) -> HybridState:
    """An empty open window 0; windows start at ``t_start`` (or at the first event's time)."""
    w, h = params.sensor_size
    return HybridState(_frozen(np.zeros((2, h, w), np.int32)), _frozen(np.full((2, h, w), NONE_YET, np.int64)),
                       None if t_start is None else int(t_start), 0, None)


def _codes(n, params):
    w, h = params.sensor_size
    return np.zeros((n, params.channels, h, w), np.float32)


def hybrid_step(events: np.ndarray, state: HybridState, params: HybridCoding):
    """``(codes float32[n, C, H, W] of the windows these events close, new state)``;
    ``state`` is not modified."""
    events, words = _words(events)
    if not len(events):
        return _codes(0, params), state
    w, h = params.sensor_size
    t_start, n_closed, t_max = _plan(events, state, params)
    counts, first_t = state.counts.copy(), state.first_t.copy()
    codes = _codes(n_closed, params)
    # the open window holds events iff any was seen: the latest window always holds its opener
    bad = hybrid_kernel(words, counts.reshape(-1), first_t.reshape(-1), w, h, t_start, state.window,
                        state.t_max is not None, params.time_window, params.count_clip, params.latency_bins,
                        codes.reshape(n_closed, params.channels * h * w))
    if bad >= 0:
        raise _outside(events, bad, params.sensor_size)
    return codes, HybridState(_frozen(counts), _frozen(first_t), t_start, state.window + n_closed, t_max)


def hybrid_finish(state: HybridState, params: HybridCoding) -> np.ndarray:
    """End of stream: the code of the open window (float32[1, C, H, W]) where the window count
    rule wants it, else none (``[0, C, H, W]``)."""
    if not _last_window_wanted(state, params):
        return _codes(0, params)
    code = _codes(1, params)
    hybrid_frame(state.counts.reshape(-1).copy(), state.first_t.reshape(-1).copy(),
                 state.t_start + state.window * params.time_window, params.time_window, params.count_clip,
                 params.latency_bins, code.reshape(-1))
    return code


def to_hybrid(events: np.ndarray, sensor_size, time_window, count_clip=1, latency_bins=0,
              include_incomplete=False, t_start=None) -> np.ndarray:
    """Hybrid codes of a whole stream, float32[T, C, H, W], one per window (see the module docstring)."""
    params = HybridCoding(sensor_size=tuple(sensor_size), time_window=time_window, count_clip=count_clip,
                          latency_bins=latency_bins, include_incomplete=include_incomplete)
    return params(events, t_start)
