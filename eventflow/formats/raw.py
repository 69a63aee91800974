"""Prophesee RAW files: EVT 2.0 and EVT 3.0 readers, and an EVT 3.0 writer.

The reader streams the file in fixed-size blocks through a stateful decoder
(``Evt2Decoder`` / ``Evt3Decoder``), so memory stays bounded and any block size
yields identical events. The decoders also work on bytes from a socket:
``feed(data) -> events``.

>>> dec = Evt3Decoder(width=1280, height=720)
>>> ev = dec.feed(b"\\x00\\x80\\x05\\x00\\x0a\\x20")   # TIME_HIGH 0, ADDR_Y 5, ADDR_X 10
>>> ev[["x", "y", "p", "t"]].tolist()
[(10, 5, 0, 0)]
"""
from __future__ import annotations

import numpy as np

from ..errors import TRUNCATED, EventFormatError, Violations
from ..events import as_words, concatenate, uninitialized
from ..kernels import evt as K
from ..kernels import evt3_groups
from ..kernels.evt3_encode import ERROR_TEXT, encode_evt3, new_encoder_state
from .blocks import iter_blocks
from .raw_header import read_header
from .reader import NO_LIMIT, EventReader
from .writer import EventWriter

BLOCK_BYTES = 1 << 19  # input per step (interleaved runs, AMD Zen 4: 512 KiB beat 128 KiB-1 MiB for EVT 2.0 and 3.0)


class _WordDecoder:
    """Shared streaming logic: carry a partial word across feeds, count violations."""

    evt = "?"
    word_bytes = 4

    def __init__(self, width=None, height=None, byte_offset: int = 0):
        self.width = NO_LIMIT if width is None else int(width)
        self.height = NO_LIMIT if height is None else int(height)
        self.state = K.new_state(self.evt)
        self.counts = np.zeros(K.N_VIOLATIONS, np.int64)
        self.first = np.full(K.N_VIOLATIONS, -1, np.int64)
        self.offset = int(byte_offset)  # stream offset of the next byte fed
        self._tail = b""

    def feed(self, data) -> np.ndarray:
        buf = memoryview(data).cast("B")
        if self._tail:
            buf = memoryview(self._tail + bytes(buf))
        usable = len(buf) - len(buf) % self.word_bytes
        words = np.frombuffer(buf[:usable], dtype=f"<u{self.word_bytes}")
        start = self.offset - len(self._tail)
        self._tail = bytes(buf[usable:])
        self.offset += len(data)
        return self._decode_words(words, start)

    def pending_bytes(self) -> int:
        return len(self._tail)

    def violations_into(self, v: Violations) -> None:
        v.sync(K.VIOLATION_NAMES, self.counts, self.first)


class Evt2Decoder(_WordDecoder):
    evt = "evt2"
    word_bytes = 4

    def _decode_words(self, words, byte_offset):
        out = uninitialized(len(words))
        k = K.decode_evt2(words, as_words(out), self.state, self.counts,
                          self.first, byte_offset, self.width, self.height)
        return out[:k]


class Evt3Decoder(_WordDecoder):
    evt = "evt3"
    word_bytes = 2

    def __init__(self, *args, max_events: int = 1 << 20, kernel: str = "auto", **kw):
        """``kernel``: "plain" (one word at a time), "grouped" (32 words at a time in vector
        registers where the words allow, kernels/evt3_groups.py; needs LLVM 19 or newer) or
        "auto" (grouped where the CPU has AVX-512). All give the same events, violation counts,
        first offsets and decoder state."""
        super().__init__(*args, **kw)
        self.max_events = max(int(max_events), 64)
        if kernel not in ("auto", "plain", "grouped"):
            raise ValueError(f"kernel must be 'auto', 'plain' or 'grouped', not {kernel!r}")
        if kernel == "grouped" and not evt3_groups.COMPILES:
            raise ValueError("kernel='grouped' needs numba's LLVM 19 or newer (llvm.experimental.vector.compress)")
        grouped = kernel == "grouped" or (kernel == "auto" and evt3_groups.NATIVE)
        self._kernel = evt3_groups.decode_evt3_grouped if grouped else K.decode_evt3

    def _decode_words(self, words, byte_offset):
        parts = []
        i = 0
        while i < len(words):
            # the kernel needs room for one event per word plus 12 (a vector); it stops
            # early, and is called again, where vectors make the data denser
            step = min(self.max_events, len(words) - i)
            out = uninitialized(step + 12)
            k, used = self._kernel(words[i:i + step], as_words(out), self.state,
                                   self.counts, self.first, byte_offset + 2 * i, self.width, self.height)
            parts.append(out[:k])
            i += used
        if len(parts) == 1:
            return parts[0]
        return concatenate(parts)


class _RawReader(EventReader):
    _checks_bounds = True
    decoder_class = _WordDecoder

    def __init__(self, path, *, block_bytes: int = BLOCK_BYTES, use_mmap: bool = True, **options):
        super().__init__(path, **options)
        self.block_bytes = max(int(block_bytes), 16)
        self.use_mmap = bool(use_mmap)
        with open(self.path, "rb") as f:
            self.header = read_header(f, self.path)
        self.file_size = self.header.file_size
        if self.header.evt is not None and self.header.evt != self.format:
            raise EventFormatError(f"header says {self.header.evt}, not {self.format}", self.path, 0)
        if self.header.width is not None:
            self._set_geometry(self.header.width, self.header.height, self.header.geometry_source,
                               guessed=self.header.geometry_source.startswith("plugin"))

    def _decode(self):
        dec = self.decoder_class(self.width, self.height, byte_offset=self.header.data_offset)
        for _, block in iter_blocks(self.path, self.header.data_offset, self.block_bytes, self.use_mmap):
            ev = dec.feed(block)
            dec.violations_into(self.violations)
            yield ev
        if dec.pending_bytes():
            self.violations.add(TRUNCATED, 1, dec.offset - dec.pending_bytes())


class Evt2Reader(_RawReader):
    """Prophesee RAW EVT 2.0."""

    format = "evt2"
    decoder_class = Evt2Decoder

    def _max_events(self):
        return max(self.file_size - self.header.data_offset, 0) // 4  # at most one event per word


class Evt3Reader(_RawReader):
    """Prophesee RAW EVT 3.0."""

    format = "evt3"
    decoder_class = Evt3Decoder


class Evt3Writer(EventWriter):
    """Writes Prophesee RAW EVT 3.0 with a Metavision-style header.

    Times must be >= 0, and may go back by at most 2**23 us (a decoder sees such a
    step as a non-monotonic TIME_HIGH); x and y must be < 2048.
    """

    format = "evt3"

    def __init__(self, path, *, width=None, height=None, header_fields: dict | None = None):
        super().__init__(path, width=width, height=height)
        if self.width is None or self.height is None:
            raise EventFormatError("writing EVT 3.0 needs the geometry (width and height)", self.path)
        self._state = new_encoder_state()
        self._buf = np.empty(1 << 18, np.uint16)
        self._f = open(self.path, "wb")
        lines = ["% camera_integrator_name eventflow",
                 "% evt 3.0",
                 f"% format EVT3;height={self.height};width={self.width}",
                 f"% geometry {self.width}x{self.height}"]
        for k, v in (header_fields or {}).items():
            lines.append(f"% {k} {v}")
        lines.append("% end")
        self._f.write(("\n".join(lines) + "\n").encode("ascii"))

    def _write(self, ev):
        i = 0
        while i < len(ev):
            k, i_next, err = encode_evt3(ev["x"], ev["y"], ev["p"], ev["t"], i, self._buf, self._state)
            self._f.write(self._buf[:k].astype("<u2", copy=False).tobytes())
            if err:
                raise EventFormatError(f"event {self.count + i_next}: {ERROR_TEXT[err]}", self.path)
            i = i_next

    def _close(self):
        self._f.close()

