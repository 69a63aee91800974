"""Prophesee DAT files: ``%`` header, then (version 2) an event-type byte and an
event-size byte, then 8-byte Event2d records (u32 t, u32 x|y|p).

Geometry comes from ``% Width`` / ``% Height`` header lines where present, else
from the caller (N-CARS crops carry none).
"""
from __future__ import annotations

import numpy as np

from ..errors import TRUNCATED, EventFormatError
from ..events import as_words, uninitialized
from ..kernels import dat as K
from .blocks import iter_blocks
from .raw_header import read_header
from .reader import NO_LIMIT, EventReader

RECORD_BYTES = 8
BLOCK_RECORDS = 1 << 16  # 512 KiB per step (interleaved runs, AMD Zen 4: 665 Mev/s; 1 << 15: 587, 1 << 17: 643)


class DatReader(EventReader):
    format = "dat"
    _checks_bounds = True

    def __init__(self, path, *, block_records: int = BLOCK_RECORDS, use_mmap: bool = True, **options):
        super().__init__(path, **options)
        self.use_mmap = bool(use_mmap)
        self.block_records = max(int(block_records), 1)
        with open(self.path, "rb") as f:
            hdr = read_header(f, self.path)  # leaves f at the data
            type_size = f.read(2)
        size = hdr.file_size
        self.header = hdr
        if hdr.width is not None:
            self._set_geometry(hdr.width, hdr.height, hdr.geometry_source)
        version = hdr.fields.get("Version", "").strip()
        self.data_offset = hdr.data_offset
        if version != "1" and len(type_size) == 2:
            ev_type, ev_size = type_size[0], type_size[1]
            if ev_type != 0 or ev_size != RECORD_BYTES:
                raise EventFormatError(
                    f"DAT event type {ev_type} of size {ev_size}: only Event2d (type 0, size 8) "
                    "is readable", self.path, hdr.data_offset)
            self.data_offset += 2
        self.n_records = max(size - self.data_offset, 0) // RECORD_BYTES
        self.trailing = max(size - self.data_offset, 0) % RECORD_BYTES

    def _max_events(self):
        return self.n_records

    def _decode(self):
        w = NO_LIMIT if self.width is None else self.width
        h = NO_LIMIT if self.height is None else self.height
        state = K.new_state()
        counts = np.zeros(len(K.VIOLATION_NAMES), np.int64)
        first = np.full(len(K.VIOLATION_NAMES), -1, np.int64)
        done = 0
        for _, block in iter_blocks(self.path, self.data_offset, self.block_records * RECORD_BYTES, self.use_mmap):
            n = min(len(block) // RECORD_BYTES, self.n_records - done)
            if n <= 0:
                break
            recs = np.frombuffer(block, "<u8", count=n)  # one record per word: t low, x|y|p high
            out = uninitialized(n)
            k = K.decode_dat(recs, as_words(out), state, counts, first, done, w, h)
            del recs
            self.violations.sync(K.VIOLATION_NAMES, counts, first, self.data_offset, RECORD_BYTES)
            done += n
            yield out[:k]
        if self.trailing:
            self.violations.add(TRUNCATED, 1, self.data_offset + self.n_records * RECORD_BYTES)
