"""The reader protocol every file format implements, and what it gives users for free.

A format subclasses ``EventReader`` and implements one method, ``_decode()``: a
generator of event arrays (EVENT_DTYPE) in file order, from the start of the
file, with bounded memory, counting protocol violations in ``self.violations``.
The base class adds iteration, ``read_all()``, time and count slicing,
``seek()``, the geometry check (out-of-bounds events are dropped and counted),
strict mode and optional monotonic time.

>>> import eventflow
>>> r = eventflow.open(eventflow.sample_path())           # doctest: +SKIP
>>> for window in r.by_time(10_000): ...                  # doctest: +SKIP
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from ..errors import OUT_OF_BOUNDS, EventFormatError, Violations
from ..events import EVENT_DTYPE, as_words, concatenate
from ..kernels.bounds import out_of_bounds

MONOTONIC_MODES = (None, "clamp", "sort")
NO_LIMIT = 1 << 16  # a kernel's bound when the geometry is unknown: any 16-bit coordinate passes
DEFAULT_CHUNK_EVENTS = 1 << 20


class EventReader:
    """Streaming reader over one event file.

    Options shared by all formats:
      width, height: geometry, where the file does not carry it (the file wins
        otherwise; a conflict raises).
      strict: raise ``EventFormatError`` at the first protocol violation instead of
        counting it.
      monotonic: None (times exactly as decoded), "clamp" (a time below the running
        maximum becomes that maximum) or "sort" (each decoded chunk is sorted by time,
        stable, then clamped against the chunks before). Changed events are counted
        in ``time_adjusted``.
      chunk_events: the largest array that iteration yields (memory bound).
      check_bounds: False leaves events outside the geometry in, uncounted, for a
        consumer that validates every event anyway (the pipeline's window stage);
        saves a pass over the data. Formats whose decoder checks bounds still do.
    """

    format = "?"
    #: True where the format's decoder checks geometry itself (with byte offsets).
    _checks_bounds = False

    def __init__(self, path, *, width=None, height=None, strict=False, monotonic=None,
                 chunk_events=DEFAULT_CHUNK_EVENTS, check_bounds=True):
        if monotonic not in MONOTONIC_MODES:
            raise ValueError(f"monotonic must be one of {MONOTONIC_MODES}, got {monotonic!r}")
        if int(chunk_events) < 1:
            raise ValueError(f"chunk_events must be >= 1, got {chunk_events}")
        self.path = os.fspath(path)
        self.width = None if width is None else int(width)
        self.height = None if height is None else int(height)
        self.strict = bool(strict)
        self.monotonic = monotonic
        self.chunk_events = int(chunk_events)
        self.check_bounds = bool(check_bounds)
        self.violations = Violations()
        self.time_adjusted = 0
        self._seek_t = None

    # -- what a format implements -------------------------------------------------
    def _decode(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _decode_from(self, t_us) -> Iterator[np.ndarray]:
        """Decoding that may skip ahead to ``t_us`` (formats with an index override it)."""
        return self._decode()

    def _event_offset(self, index: int):
        """Byte offset of the index-th decoded event, where the format knows it."""
        return None

    def _set_geometry(self, width, height, source: str, guessed: bool = False) -> None:
        """Called by formats with the geometry the file states; a conflict with the caller raises.

        ``guessed`` marks geometry inferred rather than stated (e.g. from a RAW plugin
        name): the caller's values then win.
        """
        for name, have, got in (("width", self.width, width), ("height", self.height, height)):
            if got is None or have is None or have == int(got) or guessed:
                continue
            raise EventFormatError(f"{name}={have} was given but the {source} says {got}", self.path)
        if width is not None and (self.width is None or not guessed):
            self.width = int(width)
        if height is not None and (self.height is None or not guessed):
            self.height = int(height)

    # -- iteration ----------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        self.violations = Violations()
        self.time_adjusted = 0
        seek_t = self._seek_t
        src = self._decode() if seek_t is None else self._decode_from(seek_t)
        n_seen = 0
        t_max = None
        for ev in src:
            seen = len(ev)
            bounded = self.width is not None and self.height is not None
            if self.check_bounds and not self._checks_bounds and bounded and seen:
                ev = self._drop_out_of_bounds(ev, n_seen)
            n_seen += seen
            if self.strict and self.violations:
                self._raise_first_violation()
            if self.monotonic and len(ev):
                ev, t_max = self._make_monotonic(ev, t_max)
            if seek_t is not None and len(ev):
                ev = ev[ev["t"] >= seek_t]
            for i in range(0, len(ev), self.chunk_events):
                yield ev[i:i + self.chunk_events]
        if self.strict and self.violations:  # found after the last events (e.g. trailing bytes)
            self._raise_first_violation()

    def _drop_out_of_bounds(self, ev, first_index):
        count, first = out_of_bounds(as_words(np.ascontiguousarray(ev)), self.width, self.height)
        if count:
            self.violations.add(OUT_OF_BOUNDS, count, self._event_offset(first_index + first))
            ev = ev[(ev["x"] < self.width) & (ev["y"] < self.height)]
        return ev

    def _raise_first_violation(self):
        kind, offset = next(iter(self.violations.first_offset.items()))
        raise EventFormatError(f"protocol violation: {kind} (strict mode)", self.path, offset)

    def _make_monotonic(self, ev, t_max):
        t = ev["t"]
        if self.monotonic == "sort" and np.any(t[1:] < t[:-1]):
            ev = ev[np.argsort(t, kind="stable")]
            self.time_adjusted += len(ev)  # order changed: counted as adjusted chunk-wide
            t = ev["t"]
        run = np.maximum.accumulate(t)
        if t_max is not None:
            np.maximum(run, t_max, out=run)
        changed = run != t
        if changed.any():
            ev = ev.copy()
            ev["t"] = run
            if self.monotonic == "clamp":
                self.time_adjusted += int(changed.sum())
        return ev, int(run[-1])

    # -- conveniences -------------------------------------------------------------
    def _max_events(self):
        """An upper bound on the events the file can hold, where the format knows one cheaply."""
        return None

    def read_all(self) -> np.ndarray:
        """Every event (from the seek position) in one array.

        Where the format bounds the count (fixed-size records or words), the chunks are
        copied into one array as they come and dropped, so memory peaks at the result
        (plus one chunk) instead of twice the result.
        """
        bound = self._max_events()
        if bound is None:
            return concatenate(list(self))
        out = np.empty(bound, dtype=EVENT_DTYPE)
        words = out.view(np.uint64)
        pos = 0
        for ev in self:
            if pos + len(ev) > bound:  # the bound was wrong: keep going the general way
                return concatenate([out[:pos], ev, *self._rest_after(pos + len(ev))])
            if ev.flags.c_contiguous:
                words[2 * pos:2 * (pos + len(ev))] = ev.view(np.uint64)
            else:
                out[pos:pos + len(ev)] = ev
            pos += len(ev)
        return out[:pos] if 8 * pos >= 7 * bound else out[:pos].copy()  # keep at most 1/8 unused

    def _rest_after(self, n_events):
        """Events after the first ``n_events`` of a fresh iteration (a slow path, never expected)."""
        seen = 0
        for ev in self:
            if seen + len(ev) > n_events:
                yield ev[max(n_events - seen, 0):]
            seen += len(ev)

    def seek(self, t_us: int | None) -> "EventReader":
        """Start later iteration and reads at the first event with ``t >= t_us`` (None: the start)."""
        self._seek_t = None if t_us is None else int(t_us)
        return self

    def read_time(self, t_start: int, t_end: int) -> np.ndarray:
        """Events with ``t_start <= t < t_end``."""
        out = []
        saved = self._seek_t
        self._seek_t = int(t_start) if saved is None else max(saved, int(t_start))
        try:
            for ev in self:
                t = ev["t"]
                out.append(ev[t < t_end])
                if len(t) and t.min() >= t_end:
                    break
        finally:
            self._seek_t = saved
        return concatenate(out)

    def by_count(self, n: int) -> Iterator[np.ndarray]:
        """Consecutive arrays of exactly ``n`` events (the last one may be shorter)."""
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        pending, have = [], 0
        for ev in self:
            while len(ev):
                take = min(n - have, len(ev))
                pending.append(ev[:take])
                have += take
                ev = ev[take:]
                if have == n:
                    yield concatenate(pending)
                    pending, have = [], 0
        if have:
            yield concatenate(pending)

    def by_time(self, window_us: int, t_start: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive windows ``[t0 + k*w, t0 + (k+1)*w)``, empty ones included.

        ``t0`` is ``t_start`` or the first event's time. Windows are cut in stream
        order: an event whose time went backwards stays in the current window.
        """
        w = int(window_us)
        if w < 1:
            raise ValueError(f"window_us must be >= 1, got {w}")
        t0 = None if t_start is None else int(t_start)
        pending = []
        for ev in self:
            if not len(ev):
                continue
            if t0 is None:
                t0 = int(ev["t"][0])
            run = np.maximum.accumulate(ev["t"])  # sorted even where time went backwards
            i = 0
            while i < len(ev):
                end = t0 + w
                k = int(np.searchsorted(run, end, side="left"))
                pending.append(ev[i:k])
                if k == len(ev):
                    break
                yield concatenate(pending)
                pending = []
                t0 = end
                i = k
        if t0 is not None:
            yield concatenate(pending)


def count_events(reader: EventReader, progress=None) -> dict:
    """One streaming pass: event count, first/last/min/max time, and violations.

    ``progress``, if given, is called with the size of each chunk read.
    """
    n = 0
    t_first = t_last = t_min = t_max = None
    for ev in reader:
        if progress is not None:
            progress(len(ev))
        if not len(ev):
            continue
        t = ev["t"]
        if t_first is None:
            t_first = int(t[0])
            t_min, t_max = int(t.min()), int(t.max())
        else:
            t_min, t_max = min(t_min, int(t.min())), max(t_max, int(t.max()))
        t_last = int(t[-1])
        n += len(ev)
    return {"events": n, "t_first_us": t_first, "t_last_us": t_last, "t_min_us": t_min,
            "t_max_us": t_max, "violations": reader.violations.counts}
