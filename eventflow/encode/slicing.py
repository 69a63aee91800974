"""Where windows start and end: tonic's slicing rules, exactly, and a streaming slicer.

The functional forms return index bounds ``(starts, ends)`` into a whole array, as
tonic's ``SliceByTime``, ``SliceByEventCount`` and ``SliceByTimeBins`` compute them
(including their edge cases, so that encoders built on them equal tonic's):

- by time: windows ``[t0 + k*stride, t0 + k*stride + window)``, stride = window - overlap,
  t0 = the first event's time (or ``start_time``); ``n = floor((d - window) / stride) + 1``
  with d = t_last - t0 (``ceil`` with ``include_incomplete``), at least 1.
- by count: ``[k*stride, k*stride + count)``; ``n = floor((N - count) / stride) + 1``
  (``ceil`` with ``include_incomplete``), count capped at N.
- into n time bins: window = (t_last - t0) // n * (1 + overlap), stride = window * (1 - overlap).

``TimeSlicer`` cuts a stream that arrives in pieces into the same time windows, carrying
the open windows across calls (so the result does not depend on where the stream was cut).

>>> import numpy as np, eventflow
>>> ev = eventflow.from_fields([0, 1, 2, 3], [0, 0, 0, 0], [1, 1, 0, 0], [0, 5, 10, 25])
>>> time_windows(ev["t"], 10)
(array([0, 2]), array([2, 3]))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..events import concatenate, empty


def _check_window(window, overlap, what="time_window"):
    if window is None or window <= 0:
        raise ValueError(f"{what} must be > 0, got {window}")
    if overlap < 0 or overlap >= window:
        raise ValueError(f"overlap must be in [0, {what}), got {overlap}")


def n_time_windows(duration, time_window, stride, include_incomplete=False) -> int:
    """How many time windows tonic makes over a stream spanning ``duration`` us (at least 1)."""
    rounding = np.ceil if include_incomplete else np.floor
    return max(int(rounding((duration - time_window) / stride) + 1), 1)


def time_windows(t: np.ndarray, time_window, overlap=0, include_incomplete=False, start_time=None,
                 end_time=None):
    """Index bounds of tonic's ``SliceByTime`` windows over sorted times ``t``."""
    _check_window(time_window, overlap)
    if len(t) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    stride = time_window - overlap
    t0 = t[0] if start_time is None else start_time
    t1 = t[-1] if end_time is None else end_time
    n = n_time_windows(t1 - t0, time_window, stride, include_incomplete)
    starts_t = np.arange(n) * stride + t0
    return np.searchsorted(t, starts_t), np.searchsorted(t, starts_t + time_window)


def count_windows(n_events: int, event_count: int, overlap: int = 0, include_incomplete=False):
    """Index bounds of tonic's ``SliceByEventCount`` windows."""
    _check_window(event_count, overlap, "event_count")
    count = min(event_count, n_events)
    stride = event_count - overlap
    rounding = np.ceil if include_incomplete else np.floor
    n = int(rounding((n_events - count) / stride) + 1)
    starts = (np.arange(max(n, 0)) * stride).astype(np.int64)
    return starts, np.minimum(starts + count, n_events)  # tonic's last incomplete window runs past the end


def time_bin_windows(t: np.ndarray, n_time_bins: int, overlap: float = 0.0):
    """Index bounds of tonic's ``SliceByTimeBins``: ``n_time_bins`` windows over the whole span."""
    if n_time_bins is None or n_time_bins < 1:
        raise ValueError(f"n_time_bins must be >= 1, got {n_time_bins}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap for n_time_bins is a fraction in [0, 1), got {overlap}")
    if len(t) == 0:
        return np.zeros(n_time_bins, np.int64), np.zeros(n_time_bins, np.int64)
    window = (t[-1] - t[0]) // n_time_bins * (1 + overlap)
    stride = window * (1 - overlap)
    starts_t = np.arange(n_time_bins) * stride + t[0]
    return np.searchsorted(t, starts_t), np.searchsorted(t, starts_t + window)


@dataclass
class TimeSlicerState:
    """What a ``TimeSlicer`` carries between calls: the stream's origin, the events of the
    windows still open, how many windows were emitted, and the last time seen."""

    t0: int | None = None
    pending: np.ndarray = field(default_factory=lambda: empty(0))
    emitted: int = 0
    t_last: int | None = None


@dataclass(frozen=True)
class TimeSlicer:
    """Cut a stream arriving in pieces into tonic's time windows.

    ``step(events, state) -> (windows, state)`` returns the windows completed by these
    events (a window is complete once an event at or past its end has arrived);
    ``finish(state)`` returns the rest, by tonic's rule for the last windows. Together they
    give exactly ``time_windows`` over the whole stream, wherever it was cut. Events must
    arrive in time order.

    >>> import eventflow
    >>> s = TimeSlicer(time_window=10); st = TimeSlicerState()
    >>> ws, st = s.step(eventflow.from_fields([0, 1], [0, 0], [1, 1], [0, 12]), st)
    >>> [len(w) for w in ws], [len(w) for w in s.finish(st)]
    ([1], [])
    """

    time_window: int
    overlap: int = 0
    include_incomplete: bool = False
    start_time: int | None = None

    def __post_init__(self):
        _check_window(self.time_window, self.overlap)

    @property
    def stride(self) -> int:
        return self.time_window - self.overlap

    def step(self, events: np.ndarray, state: TimeSlicerState):
        if len(events) == 0:
            return [], state
        t0 = state.t0
        if t0 is None:
            t0 = int(events["t"][0]) if self.start_time is None else int(self.start_time)
        pending = concatenate([state.pending, events]) if len(state.pending) else events
        t_last = int(events["t"][-1])
        # windows k >= emitted whose end <= t_last are complete
        k_done = (t_last - t0 - self.time_window) // self.stride + 1 if t_last >= t0 + self.time_window else 0
        windows, pending = self._cut(pending, t0, state.emitted, max(k_done, state.emitted))
        return windows, TimeSlicerState(t0, pending, max(k_done, state.emitted), t_last)

    def finish(self, state: TimeSlicerState):
        if state.t0 is None:
            return []
        n = n_time_windows(state.t_last - state.t0, self.time_window, self.stride, self.include_incomplete)
        windows, _ = self._cut(state.pending, state.t0, state.emitted, max(n, state.emitted))
        return windows

    def _cut(self, pending, t0, first_k, end_k):
        """Windows first_k..end_k-1 from ``pending``; returns them and what later windows need."""
        t = pending["t"]
        ks = np.arange(first_k, end_k)
        starts_t = t0 + ks * self.stride
        lo = np.searchsorted(t, starts_t)
        hi = np.searchsorted(t, starts_t + self.time_window)
        windows = [pending[a:b] for a, b in zip(lo, hi)]
        keep_from = np.searchsorted(t, t0 + end_k * self.stride)
        return windows, pending[keep_from:].copy()


@dataclass
class CountSlicerState:
    """What a ``CountSlicer`` carries: events not yet in a complete window, and how many
    events came before them."""

    pending: np.ndarray = field(default_factory=lambda: empty(0))
    offset: int = 0
    emitted: int = 0


@dataclass(frozen=True)
class CountSlicer:
    """Cut a stream arriving in pieces into tonic's event-count windows.

    Window k holds events ``[k*stride, k*stride + event_count)`` of the whole stream;
    ``step`` returns the windows these events complete and ``finish`` the rest (by
    tonic's rule for the last, incomplete ones), so the result is ``count_windows``
    over the whole stream, wherever it was cut.
    """

    event_count: int
    overlap: int = 0
    include_incomplete: bool = False

    def __post_init__(self):
        _check_window(self.event_count, self.overlap, "event_count")

    @property
    def stride(self) -> int:
        return self.event_count - self.overlap

    def step(self, events: np.ndarray, state: CountSlicerState):
        if len(events) == 0:
            return [], state
        pending = concatenate([state.pending, events]) if len(state.pending) else events
        total = state.offset + len(pending)  # events seen so far
        windows, k = [], state.emitted
        while k * self.stride + self.event_count <= total:
            a = k * self.stride - state.offset
            windows.append(pending[a:a + self.event_count])
            k += 1
        drop = max(min(k * self.stride - state.offset, len(pending)), 0)
        return windows, CountSlicerState(pending[drop:].copy(), state.offset + drop, k)

    def finish(self, state: CountSlicerState):
        total = state.offset + len(state.pending)
        starts, ends = count_windows(total, self.event_count, self.overlap, self.include_incomplete)
        return [state.pending[max(a - state.offset, 0):max(b - state.offset, 0)]
                for a, b in zip(starts[state.emitted:], ends[state.emitted:])]
