"""Errors that say what and where, and counters of protocol violations.

Real recordings break their format's rules now and then; by default readers
keep decoding as the specification says and count each violation by kind
(``Violations``). In strict mode the first violation raises ``EventFormatError``
naming the file and the byte offset.
"""
from __future__ import annotations

from collections import Counter


class EventFormatError(ValueError):
    """Bad input: names the file (or stream) and, where known, the byte offset."""

    def __init__(self, message: str, path=None, offset: int | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.offset = offset
        where = []
        if self.path is not None:
            where.append(self.path)
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(": ".join(where + [message]))


class Violations:
    """Counts of protocol violations by kind, with the byte offset of the first of each.

    >>> v = Violations(); v.add("time_low_decrease", 3, offset=120); v.add("time_low_decrease")
    >>> v.counts, v.first_offset["time_low_decrease"]
    ({'time_low_decrease': 4}, 120)
    """

    def __init__(self):
        self._counts: Counter = Counter()
        self.first_offset: dict = {}

    def add(self, kind: str, n: int = 1, offset: int | None = None) -> None:
        n = int(n)
        if n <= 0:
            return
        self._counts[kind] += n
        if kind not in self.first_offset:
            self.first_offset[kind] = offset

    def sync(self, names, counts, first, base: int = 0, scale: int = 1) -> None:
        """Bring the counts up to a kernel's running totals ``counts[i]`` for ``names[i]``,
        whose first occurrence is at ``base + scale * first[i]`` (a byte offset)."""
        if not counts.any():
            return
        for i, name in enumerate(names):
            if counts[i]:
                self.add(name, int(counts[i]) - self._counts[name], base + scale * int(first[i]))

    @property
    def counts(self) -> dict:
        return dict(sorted(self._counts.items()))

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def __bool__(self) -> bool:
        return self.total > 0

    def __repr__(self) -> str:
        return f"Violations({self.counts})"


# Kinds of violation, shared by the decoders (names as OpenEB reports them where it has one).
OUT_OF_BOUNDS = "out_of_bounds"  # a coordinate outside the geometry: event dropped
NON_MONOTONIC_TIME_HIGH = "non_monotonic_time_high"
TIME_LOW_DECREASE = "time_low_decrease"  # a TIME_LOW smaller than the one before, no wrap
MISSING_ADDR_Y = "missing_addr_y"  # an event word before any ADDR_Y: event dropped
MISSING_TIME_HIGH = "missing_time_high"  # an event before any TIME_HIGH: event dropped
INVALID_VECT_BASE = "invalid_vect_base"  # a vector before any VECT_BASE_X: dropped
PARTIAL_VECT = "partial_vect"
UNKNOWN_TYPE = "unknown_type"  # a reserved word type: word skipped
TRUNCATED = "truncated"  # trailing bytes that do not form a whole record
NON_MONOTONIC_TIME = "non_monotonic_time"  # t smaller than the event before (record formats)
INVALID_EVENT = "invalid_event"  # AEDAT 3.1 event whose valid bit is 0: dropped
ECF_SURPLUS_EVENTS = "ecf_surplus_events"  # events past the extent in an ECF file's last chunk (not fill): not read
#: The kinds whose count is events a reader dropped (the others count words, bytes or events kept,
#: e.g. a time going back): a pipeline source reports these as rejected events.
DROPS_EVENTS = frozenset({OUT_OF_BOUNDS, MISSING_ADDR_Y, MISSING_TIME_HIGH, INVALID_VECT_BASE, INVALID_EVENT,
                          ECF_SURPLUS_EVENTS})
