"""Polarity histogram frames and voxel grids: functional forms equal to tonic's, and a
streaming frame encoder whose output does not depend on where the stream was cut.

Shapes are [T, C, H, W]: frames have C = 2 (OFF, ON counts, int16 as tonic's), the
voxel grid C = 1. Geometry is always passed in as ``sensor_size=(W, H)``; events outside
it (or with a polarity other than 0 / 1) are skipped and counted, never written out
of bounds. The caller's array is never modified.

>>> import eventflow
>>> ev = eventflow.from_fields([0, 1, 1], [0, 0, 1], [1, 0, 1], [0, 4, 12])
>>> to_frames(ev, (2, 2), time_window=10).shape
(1, 2, 2, 2)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kernels import binning as K
from .filters import _sensor_size
from .filters import _words as event_words
from .slicing import count_windows, n_time_windows, time_bin_windows, time_windows


def _words(events) -> np.ndarray:
    """The events' flat uint64 view (other layouts converted, as everywhere in encode)."""
    return event_words(events)[1]


def to_frames(events, sensor_size, time_window=None, event_count=None, n_time_bins=None, overlap=0,
              include_incomplete=False, binary=False) -> np.ndarray:
    """Frames of event counts per polarity, int16 [T, 2, H, W], sliced as tonic's ToFrame slices.

    Exactly one of ``time_window`` (us), ``event_count`` or ``n_time_bins`` is given;
    ``overlap`` is in us, events, or a fraction of a bin respectively. ``binary=True``
    gives spikes (1 where any event) instead of counts. Equal to
    ``tonic.transforms.ToFrame`` with the same parameters.
    """
    w, h = _sensor_size(sensor_size)
    if sum(v is not None for v in (time_window, event_count, n_time_bins)) != 1:
        raise ValueError("give exactly one of time_window, event_count, n_time_bins")
    if time_window is not None:
        starts, ends = time_windows(events["t"], time_window, overlap, include_incomplete)
    elif event_count is not None:
        starts, ends = count_windows(len(events), event_count, overlap, include_incomplete)
    else:
        starts, ends = time_bin_windows(events["t"], n_time_bins, overlap)
    frames = np.zeros(len(starts) * 2 * h * w, np.int16)
    K.frames_from_windows(_words(events), starts.astype(np.int64), ends.astype(np.int64), frames, w, h,
                          binary)
    return frames.reshape(len(starts), 2, h, w)


def to_voxel_grid(events, sensor_size, n_time_bins, dtype=np.float32) -> np.ndarray:
    """Voxel grid [n_time_bins, 1, H, W], bilinear in time, signed polarity (E-RAFT).

    With ``dtype=np.float64`` it equals ``tonic.transforms.ToVoxelGrid`` for signed polarity
    bit for bit (same operations in the same order); other dtypes take a one-pass float32
    kernel, equal within float32 rounding. (tonic maps a bool polarity wrongly: every event
    then counts +1, and its function also overwrites the caller's polarities.) All events at
    one time go to bin 0.
    """
    w, h = _sensor_size(sensor_size)
    if n_time_bins is None or n_time_bins < 1:
        raise ValueError(f"n_time_bins must be >= 1, got {n_time_bins}")
    if len(events) == 0:
        return np.zeros((n_time_bins, 1, h, w), dtype)
    words = _words(events)
    args = (words[0::2], words[1::2].view(np.int64), len(events), int(events["t"][0]), int(events["t"][-1]),
            n_time_bins)
    if np.dtype(dtype) != np.float64:
        grid = np.zeros((n_time_bins + 2) * h * w, np.float32)
        if K.voxel_grid_fast(*args, grid, w, h) >= 0:
            return grid[:n_time_bins * h * w].reshape(n_time_bins, 1, h, w).astype(dtype, copy=False)
    grid = np.zeros(n_time_bins * h * w, np.float64)  # exact (tonic's order), or times not sorted
    K.voxel_grid(*args, grid, w, h)
    return grid.reshape(n_time_bins, 1, h, w).astype(dtype, copy=False)


@dataclass
class FrameEncoderState:
    """The open window of a ``FrameEncoder``: where it ends, and its counts so far."""

    window_end: int | None = None
    partial: np.ndarray | None = None
    t_last: int | None = None
    windows_done: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class FrameEncoder:
    """Streaming frames over consecutive time windows (no overlap), one thread, no copies.

    ``step(events, state) -> (frames, state)`` returns the frames [k, 2, H, W] of the windows
    completed by these events (a window is complete once an event at or past its end has
    arrived); ``finish(state)`` returns the last ones by tonic's rule, so the concatenation
    equals ``to_frames`` of the whole stream with the same ``time_window`` and
    ``include_incomplete``, wherever the stream was cut. Events must be in time order.
    ``max_frames_per_step`` bounds the memory one call may take (a long gap in time makes
    many empty frames); a step that would exceed it raises.
    """

    sensor_size: tuple
    time_window: int
    include_incomplete: bool = False
    binary: bool = False
    max_frames_per_step: int = 100_000
    _hw: tuple = field(init=False, repr=False, default=(0, 0))

    def __post_init__(self):
        if self.time_window is None or self.time_window <= 0:
            raise ValueError(f"time_window must be > 0, got {self.time_window}")
        object.__setattr__(self, "_hw", _sensor_size(self.sensor_size))

    def init_state(self) -> FrameEncoderState:
        return FrameEncoderState()

    def step(self, events, state: FrameEncoderState):
        w, h = self._hw
        if len(events) == 0:
            return np.zeros((0, 2, h, w), np.int16), state
        t_first, t_last = int(events["t"][0]), int(events["t"][-1])
        end = state.window_end if state.window_end is not None else t_first + self.time_window
        n_new = 0 if t_last < end else (t_last - end) // self.time_window + 1
        if n_new > self.max_frames_per_step:
            raise ValueError(f"these events complete {n_new} windows (> max_frames_per_step="
                             f"{self.max_frames_per_step}); pass them in smaller pieces")
        frames = np.zeros((n_new + 1) * 2 * h * w, np.int16)
        if state.partial is not None:
            frames[:2 * h * w] = state.partial.ravel()
        words = _words(events)
        k, end, skipped = K.frames_streaming(words, words[1::2].view(np.int64), len(events), frames, end,
                                             self.time_window, w, h, self.binary)
        if skipped < 0:
            raise ValueError("FrameEncoder needs events in time order (an event lies past the last one)")
        frames = frames.reshape(n_new + 1, 2, h, w)
        new_state = FrameEncoderState(end, frames[k].copy(), t_last, state.windows_done + k,
                                      state.skipped + skipped)
        return frames[:k], new_state

    def new_buffer(self) -> np.ndarray:
        """A zeroed int16 frame [2, H, W] for ``step_into``."""
        w, h = self._hw
        return np.zeros((2, h, w), np.int16)

    def step_into(self, events, state: FrameEncoderState, buf: np.ndarray, on_frame) -> FrameEncoderState:
        """The allocation-free path: count into the caller's ``buf`` (from ``new_buffer()``),
        call ``on_frame(buf)`` for each completed window, then zero it for the next.

        ``buf`` holds the open window between calls (``state.partial`` is unused), so it must
        be the same buffer for the whole stream. ``on_frame`` must copy what it keeps.
        Frames equal ``step``'s, in order.
        """
        w, h = self._hw
        if len(events) == 0:
            return state
        words = _words(events)
        t_col = words[1::2].view(np.int64)
        flat = buf.reshape(-1)
        n = len(events)
        end = state.window_end if state.window_end is not None else int(events["t"][0]) + self.time_window
        t_last = int(events["t"][-1])
        n_new = 0 if t_last < end else (t_last - end) // self.time_window + 1
        if n_new > self.max_frames_per_step:
            raise ValueError(f"these events complete {n_new} windows (> max_frames_per_step="
                             f"{self.max_frames_per_step}); pass them in smaller pieces")
        done, skipped, i = state.windows_done, state.skipped, 0
        while True:
            i, sk = K.frame_until(words, t_col, i, n, flat, end, w, h, self.binary)
            skipped += sk
            if i == n:
                break
            t_next = int(events["t"][i])
            while t_next >= end:  # the window ends; empty ones follow across a gap
                on_frame(buf)
                flat[:] = 0
                done += 1
                end += self.time_window
        return FrameEncoderState(end, None, t_last, done, skipped)

    def finish_into(self, state: FrameEncoderState, buf: np.ndarray, on_frame) -> None:
        """``finish`` for ``step_into``: hands out the frames still owed, from ``buf``."""
        for _ in range(self._owed(state)):
            on_frame(buf)
            buf[:] = 0

    def _owed(self, state: FrameEncoderState) -> int:
        """Windows still to emit at the end of the stream, by tonic's count of windows."""
        if state.window_end is None:
            return 0
        t0 = state.window_end - (state.windows_done + 1) * self.time_window
        n = n_time_windows(state.t_last - t0, self.time_window, self.time_window, self.include_incomplete)
        return n - state.windows_done

    def finish(self, state: FrameEncoderState) -> np.ndarray:
        """Frames still owed at the end of the stream (tonic's count of windows)."""
        w, h = self._hw
        owed = self._owed(state)
        if owed <= 0:
            return np.zeros((0, 2, h, w), np.int16)
        # the open window, then (tonic's ceil may ask for one more) empty ones
        out = np.zeros((owed, 2, h, w), np.int16)
        out[0] = state.partial
        return out


@dataclass(frozen=True)
class WindowEncoder:
    """Any whole-slice encoder applied to the windows of a streaming slicer.

    ``slicer`` is a ``TimeSlicer`` or ``CountSlicer``; ``encode(window) -> array`` is
    applied to each window it completes, e.g. ``lambda w: to_voxel_grid(w, size, 16)``
    for a voxel grid per 50 ms, or ``to_frames(w, size, n_time_bins=T)`` for T frames per
    window (SNN time steps). Cut-point independent because the slicer is.

    >>> from eventflow.encode import TimeSlicer
    >>> enc = WindowEncoder(TimeSlicer(50_000), lambda w: to_voxel_grid(w, (346, 260), 5))
    """

    slicer: object
    encode: object

    def init_state(self):
        from .slicing import CountSlicerState, TimeSlicerState
        return TimeSlicerState() if hasattr(self.slicer, "time_window") else CountSlicerState()

    def step(self, events, state):
        windows, state = self.slicer.step(events, state)
        return [self.encode(w) for w in windows], state

    def finish(self, state):
        return [self.encode(w) for w in self.slicer.finish(state)]
