"""N-MNIST / N-Caltech101 ``.bin`` (and slayerPytorch's ``.bs2``): 40-bit ATIS records.

Each 5-byte record: byte 0 = x, byte 1 = y, byte 2 bit 7 = polarity bit, and
``(byte2 & 0x7F) << 16 | byte3 << 8 | byte4`` = t in microseconds (23 bits). A record
with y = 240 is a time-overflow marker, not an event: as in the dataset authors'
reader (and tonic's ``read_mnist_file``), it adds 2**13 us to every later time.
Geometry is 34x34 unless the caller gives another (N-Caltech101: up to 240x180).

Polarity: the authors' reader calls bit 7 = 1 "on", and tonic keeps the bit as is.
In the recordings, though, the bit-7 = 1 events sit on the trailing edges of the
moving white digits, where the scene darkens (and bit 7 = 0 on the leading edges), so
by default ``p = 1 - bit7`` (p = 1 is a brightness increase, as in every other
format here). ``bit7_means_on=True`` gives tonic's convention.

>>> r = NmnistReader("00004.bin")                     # doctest: +SKIP
>>> ev = r.read_all(); r.width, r.height, len(ev)     # doctest: +SKIP
(34, 34, 4325)
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import OUT_OF_BOUNDS, TRUNCATED, EventFormatError
from ..events import empty
from .reader import EventReader

RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
NMNIST_SIZE = (34, 34)
NMNIST_LABEL_DTYPE = np.dtype([("sample", "<i8"), ("class", "<i8")])


def decode_records(rec: np.ndarray, *, bit7_means_on: bool = False, overflows_before: int = 0):
    """Decode an (n, 5) uint8 array of records.

    Returns (x, y, p, t, is_event, overflows): int arrays for every record, a mask of
    the records that are events (not overflow markers), and the overflow count so far.

    >>> rec = np.array([[3, 4, 0x81, 0x02, 0x03]], np.uint8)
    >>> x, y, p, t, is_event, n = decode_records(rec)
    >>> int(x[0]), int(y[0]), int(p[0]), int(t[0]), bool(is_event[0])
    (3, 4, 0, 66051, True)
    """
    r = rec.astype(np.int64)
    x, y = r[:, 0], r[:, 1]
    bit7 = r[:, 2] >> 7
    p = bit7 if bit7_means_on else 1 - bit7
    t = ((r[:, 2] & 0x7F) << 16) | (r[:, 3] << 8) | r[:, 4]
    marker = y == OVERFLOW_Y
    overflows = overflows_before + np.cumsum(marker)
    t = t + overflows * OVERFLOW_US
    return x, y, p, t, ~marker, int(overflows[-1]) if len(rec) else overflows_before


class NmnistReader(EventReader):
    """Events of one N-MNIST sample file; see the module docstring for the conventions.

    Option beyond ``EventReader``'s: ``bit7_means_on`` (False: p = 1 - bit7).
    """

    format = "nmnist"
    _checks_bounds = True

    def __init__(self, path, *, bit7_means_on: bool = False, **options):
        super().__init__(path, **options)
        if not os.path.isfile(self.path):
            raise EventFormatError("no such file", self.path)
        self.bit7_means_on = bool(bit7_means_on)
        self.width = NMNIST_SIZE[0] if self.width is None else self.width
        self.height = NMNIST_SIZE[1] if self.height is None else self.height
        self.file_size = os.path.getsize(self.path)
        self.time_overflows = 0

    def _decode(self):
        self.time_overflows = 0
        step = RECORD_BYTES * self.chunk_events
        pos = 0
        with open(self.path, "rb") as f:
            while True:
                buf = f.read(step)
                n = len(buf) // RECORD_BYTES
                if n:
                    rec = np.frombuffer(buf, np.uint8, count=RECORD_BYTES * n).reshape(n, RECORD_BYTES)
                    x, y, p, t, is_event, self.time_overflows = decode_records(
                        rec, bit7_means_on=self.bit7_means_on, overflows_before=self.time_overflows)
                    ok = is_event & (x < self.width) & (y < self.height)
                    bad = is_event & ~ok
                    if bad.any():
                        first = pos + RECORD_BYTES * int(np.argmax(bad))
                        self.violations.add(OUT_OF_BOUNDS, int(bad.sum()), first)
                    ev = empty(int(ok.sum()))
                    ev["x"], ev["y"], ev["p"], ev["t"] = x[ok], y[ok], p[ok], t[ok]
                    yield ev
                if len(buf) < step:
                    if len(buf) % RECORD_BYTES:
                        self.violations.add(TRUNCATED, len(buf) % RECORD_BYTES, pos + RECORD_BYTES * n)
                        yield empty(0)  # lets strict mode see the violation
                    return
                pos += len(buf)


def read_nmnist_labels(path) -> np.ndarray:
    """A ``sample class`` list (slayerPytorch's ``test100.txt``): ``#`` lines are comments.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "labels.txt")
    >>> _ = open(p, "w").write("#sample #class\\n60001\\t7\\r\\n60002\\t2\\r\\n")
    >>> read_nmnist_labels(p).tolist()
    [(60001, 7), (60002, 2)]
    """
    rows, offset = [], 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            text = line.decode("latin-1").strip()
            if text and not text.startswith("#"):
                cells = text.split()
                if len(cells) != 2 or not all(c.isdigit() for c in cells):
                    raise EventFormatError(f"line {number} is not 'sample class': {text[:60]!r}", path, offset)
                rows.append((int(cells[0]), int(cells[1])))
            offset += len(line)
    return np.array(rows, dtype=NMNIST_LABEL_DTYPE)
