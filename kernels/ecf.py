"""ECF chunk codec (HDF5 filter 36559, Prophesee's "Event Compression Format").

One compressed chunk holds up to 65535 EventCD records: a u32 header
(``n << 2 | mode bits``), the first timestamp as u64, then variable-length
streams (timestamps; then packed y/x/p in mode 2, y runs + packed x/p in mode 1,
or y runs + masked x words + polarity runs in mode 0). See docs/ecf.md in the
shared documents for the byte layout; the encoder picks the mode exactly as
Prophesee's plugin does, so its output is byte-identical to the plugin's.

The numba kernels (``decode_chunk`` / ``encode_chunk``) sit beside plain
references (``decode_chunk_reference`` / ``encode_chunk_reference``) that they
must equal, errors included. Decoding bounds-checks every read: a truncated or
corrupt chunk raises ``EventFormatError`` whose ``offset`` is the byte offset,
within the chunk, of the entry that does not fit or does not make sense.

>>> from eventflow.events import from_fields
>>> ev = from_fields(x=[1], y=[2], p=[0], t=[4])
>>> encode_chunk(ev).hex()
'06000000040000000000000001000220000000000000000000'
>>> decode_chunk(encode_chunk(ev))[["x", "y", "p", "t"]].tolist()
[(1, 2, 0, 4)]
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import EventFormatError
from ..events import EVENT_DTYPE

FILTER_ID = 36559  # 0x8ECF
MAX_CHUNK_EVENTS = 65535
HEADER_BYTES = 12  # u32 header + u64 t0

# error codes of the decoder kernel (0 = success); the messages are shared with the reference
OK, E_HEADER, E_TOO_MANY, E_T_TRUNC, E_T_ESCAPE, E_T_RUN, E_Y_TRUNC, E_Y_RUN, E_X_TRUNC, \
    E_P_TRUNC, E_P_RUN, E_PACKED_TRUNC = range(12)
ERROR_TEXT = {
    E_HEADER: "chunk shorter than its 12-byte header",
    E_TOO_MANY: "header claims more events than a chunk can hold",
    E_T_TRUNC: "timestamp stream ends early",
    E_T_ESCAPE: "timestamp escape group longer than 16 nibbles",
    E_T_RUN: "timestamp run covers more events than remain",
    E_Y_TRUNC: "y run stream ends early",
    E_Y_RUN: "y run covers more events than remain",
    E_X_TRUNC: "masked x stream ends early",
    E_P_TRUNC: "polarity run stream ends early",
    E_P_RUN: "polarity run covers more events than remain",
    E_PACKED_TRUNC: "packed x/p (or y/x/p) groups end early",
}


def _fail(code, offset):
    raise EventFormatError(f"ECF: {ERROR_TEXT[code]}", None, int(offset))


def _chunk_bytes(chunk) -> np.ndarray:
    """A read-only uint8 view of bytes / bytearray / memoryview / uint8 array (no copy)."""
    if isinstance(chunk, np.ndarray):
        return chunk.reshape(-1).view(np.uint8)
    return np.frombuffer(chunk, dtype=np.uint8)


def read_header(chunk, max_events: int = MAX_CHUNK_EVENTS):
    """``(n, mode, t0)`` of a chunk, checked: raises unless 12 bytes exist and n <= max_events.

    >>> read_header(bytes.fromhex("06000000" "0400000000000000"))
    (1, 2, 4)
    """
    buf = _chunk_bytes(chunk)
    if len(buf) < HEADER_BYTES:
        _fail(E_HEADER, 0)
    hdr = int(buf[:4].view("<u4")[0])
    n = hdr >> 2
    if n > min(int(max_events), MAX_CHUNK_EVENTS):
        raise EventFormatError(f"ECF: header claims {n} events, more than the {min(max_events, MAX_CHUNK_EVENTS)} "
                               "a chunk can hold", None, 0)
    mode = 2 if hdr & 2 else hdr & 1
    return n, mode, int(buf[4:12].view("<i8")[0])


# ---------------------------------------------------------------------------- decoder (numba)
@njit(cache=True, nogil=True)
def _u16(buf, pos):
    return np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8)


@njit(cache=True, nogil=True)
def _decode_kernel(buf, n, mode, xyp, tt):
    """Decode the streams after the header into ``xyp[i, 0]`` (x | y << 16 | p << 32) and
    ``tt[i, 1]`` (t, unsigned). Returns (0, end offset) or (error code, offset)."""
    size = buf.shape[0]
    cur = np.uint64(0)
    for k in range(8):
        cur |= np.uint64(buf[4 + k]) << np.uint64(8 * k)
    pos = 12
    i = 0
    while i < n:  # timestamp stream
        start = pos
        if pos >= size:
            return E_T_TRUNC, start
        b = np.int64(buf[pos])
        if b >> 4 == 15:  # escape group: nibbles of a large increment, least significant first
            dt = np.uint64(0)
            shift = 0
            while True:
                if pos >= size:
                    return E_T_TRUNC, start
                b = np.int64(buf[pos])
                if b >> 4 != 15:
                    break
                if shift == 64:
                    return E_T_ESCAPE, start
                dt |= np.uint64(b & 15) << np.uint64(shift)
                shift += 4
                pos += 1
            cur += dt
        run_at = pos
        c = b & 15
        pos += 1
        if c == 15:
            if pos + 2 > size:
                return E_T_TRUNC, run_at
            c = _u16(buf, pos)
            pos += 2
        cur += np.uint64(b >> 4)
        if c > n - i:
            return E_T_RUN, run_at
        for k in range(i, i + c):
            tt[k, 1] = cur
        i += c
    if mode == 2:
        groups = (n + 3) // 4
        if pos + 12 * groups > size:
            return E_PACKED_TRUNC, pos
        for g in range(groups):
            q = pos + 12 * g
            w0 = _u16(buf, q) | (_u16(buf, q + 2) << 16)
            w1 = _u16(buf, q + 4) | (_u16(buf, q + 6) << 16)
            w2 = _u16(buf, q + 8) | (_u16(buf, q + 10) << 16)
            v0 = w0 >> 8
            v1 = (w0 & 0xFF) | ((w1 >> 16) << 8)
            v2 = (w1 & 0xFFFF) | ((w2 >> 24) << 16)
            v3 = w2 & 0xFFFFFF
            for j, v in ((0, v0), (1, v1), (2, v2), (3, v3)):
                e = 4 * g + j
                if e < n:
                    xyp[e, 0] = ((v >> 1) & 0x7FF) | (((v >> 12) & 0x7FF) << 16) | ((v & 1) << 32)
        return OK, pos + 12 * groups
    i = 0
    while i < n:  # y runs
        start = pos
        if pos + 2 > size:
            return E_Y_TRUNC, start
        w = _u16(buf, pos)
        pos += 2
        c = w & 31
        if c == 31:
            if pos + 2 > size:
                return E_Y_TRUNC, start
            c = _u16(buf, pos)
            pos += 2
        if c > n - i:
            return E_Y_RUN, start
        yv = (w >> 5) << 16
        for k in range(i, i + c):
            xyp[k, 0] = yv
        i += c
    if mode == 1:
        groups = (n + 3) // 4
        if pos + 6 * groups > size:
            return E_PACKED_TRUNC, pos
        for g in range(groups):
            q = pos + 6 * g
            w0 = _u16(buf, q)
            w1 = _u16(buf, q + 2)
            w2 = _u16(buf, q + 4)
            v0 = w0 >> 4
            v1 = (w0 & 0xF) | ((w1 >> 8) << 4)
            v2 = (w1 & 0xFF) | ((w2 >> 12) << 8)
            v3 = w2 & 0xFFF
            for j, v in ((0, v0), (1, v1), (2, v2), (3, v3)):
                e = 4 * g + j
                if e < n:
                    xyp[e, 0] |= (v >> 1) | ((v & 1) << 32)
        return OK, pos + 6 * groups
    i = 0
    while i < n:  # masked x words: base, then base + k where mask bit (5 - k) is set
        if pos + 2 > size:
            return E_X_TRUNC, pos
        w = _u16(buf, pos)
        pos += 2
        base = w >> 5
        xyp[i, 0] |= base
        i += 1
        for k in range(1, 6):
            if (w >> (5 - k)) & 1:
                if i < n:  # values beyond n are phantoms: discarded
                    xyp[i, 0] |= base + k
                i += 1
    i = 0
    while i < n:  # polarity runs
        start = pos
        if pos >= size:
            return E_P_TRUNC, start
        v = np.int64(buf[pos])
        pos += 1
        c = v & 127
        if c == 127:
            if pos + 2 > size:
                return E_P_TRUNC, start
            c = _u16(buf, pos)
            pos += 2
        if c > n - i:
            return E_P_RUN, start
        pv = (v >> 7) << 32
        for k in range(i, i + c):
            xyp[k, 0] |= pv
        i += c
    return OK, pos


def decode_chunk(chunk, max_events: int = MAX_CHUNK_EVENTS, *, with_end: bool = False):
    """Decode one ECF chunk into a new EVENT_DTYPE array (padding bytes zero).

    ``max_events`` bounds the header's n before anything is allocated (pass the
    dataset's chunk length). With ``with_end`` returns ``(events, bytes consumed)``;
    bytes after the last stream are ignored, as the reference plugin does.
    Raises EventFormatError (offset = byte within the chunk) on truncated or corrupt input.
    """
    buf = _chunk_bytes(chunk)
    n, mode, _ = read_header(buf, max_events)
    ev = np.empty(n, EVENT_DTYPE)
    code, pos = _decode_kernel(buf, n, mode, ev.view(np.int64).reshape(n, 2), ev.view(np.uint64).reshape(n, 2))
    if code != OK:
        _fail(code, pos)
    return (ev, int(pos)) if with_end else ev


# ---------------------------------------------------------------------------- decoder (reference)
def decode_chunk_reference(chunk, max_events: int = MAX_CHUNK_EVENTS, *, with_end: bool = False):
    """Plain Python/numpy decoder written from the specification; ``decode_chunk`` must equal it."""
    buf = bytes(_chunk_bytes(chunk))
    n, mode, _ = read_header(buf, max_events)
    size = len(buf)

    def u16(pos, code, start):
        if pos + 2 > size:
            _fail(code, start)
        return buf[pos] | buf[pos + 1] << 8

    def runs(pos, code_trunc, code_run, value_bits, count_mask):
        """Walk a run stream of entries (value, count) with a u16 escape count; returns (values, pos)."""
        out, i, width = [], 0, 2 if value_bits == 5 else 1
        while i < n:
            start = pos
            if pos + width > size:
                _fail(code_trunc, start)
            w = u16(pos, code_trunc, start) if width == 2 else buf[pos]
            pos += width
            c = w & count_mask
            if c == count_mask:
                c = u16(pos, code_trunc, start)
                pos += 2
            if c > n - i:
                _fail(code_run, start)
            out += [w >> value_bits] * c
            i += c
        return np.array(out, np.int64), pos

    t, cur, pos = [], int.from_bytes(buf[4:12], "little"), 12
    while len(t) < n:
        start = pos
        if pos >= size:
            _fail(E_T_TRUNC, start)
        dt, nibbles = 0, 0
        while buf[pos] >> 4 == 15:
            if nibbles == 16:
                _fail(E_T_ESCAPE, start)
            dt |= (buf[pos] & 15) << (4 * nibbles)
            nibbles += 1
            pos += 1
            if pos >= size:
                _fail(E_T_TRUNC, start)
        b, run_at = buf[pos], pos
        c = b & 15
        pos += 1
        if c == 15:
            c = u16(pos, E_T_TRUNC, run_at)
            pos += 2
        cur = (cur + dt + (b >> 4)) % (1 << 64)
        if c > n - len(t):
            _fail(E_T_RUN, run_at)
        t += [cur] * c
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.array(t, np.uint64).view(np.int64)
    groups = (n + 3) // 4
    if mode == 2:
        if pos + 12 * groups > size:
            _fail(E_PACKED_TRUNC, pos)
        w = np.frombuffer(buf, "<u4", 3 * groups, pos).reshape(groups, 3).astype(np.int64)
        v = np.stack([w[:, 0] >> 8, (w[:, 0] & 0xFF) | ((w[:, 1] >> 16) << 8),
                      (w[:, 1] & 0xFFFF) | ((w[:, 2] >> 24) << 16), w[:, 2] & 0xFFFFFF], 1).reshape(-1)[:n]
        ev["x"], ev["y"], ev["p"] = (v >> 1) & 0x7FF, (v >> 12) & 0x7FF, v & 1
        return (ev, pos + 12 * groups) if with_end else ev
    y, pos = runs(pos, E_Y_TRUNC, E_Y_RUN, 5, 31)
    ev["y"] = y
    if mode == 1:
        if pos + 6 * groups > size:
            _fail(E_PACKED_TRUNC, pos)
        w = np.frombuffer(buf, "<u2", 3 * groups, pos).reshape(groups, 3).astype(np.int64)
        v = np.stack([w[:, 0] >> 4, (w[:, 0] & 0xF) | ((w[:, 1] >> 8) << 4),
                      (w[:, 1] & 0xFF) | ((w[:, 2] >> 12) << 8), w[:, 2] & 0xFFF], 1).reshape(-1)[:n]
        ev["x"], ev["p"] = v >> 1, v & 1
        return (ev, pos + 6 * groups) if with_end else ev
    x = []
    while len(x) < n:
        w = u16(pos, E_X_TRUNC, pos)
        pos += 2
        x += [w >> 5] + [(w >> 5) + k for k in range(1, 6) if w >> (5 - k) & 1]
    ev["x"] = x[:n]
    p, pos = runs(pos, E_P_TRUNC, E_P_RUN, 7, 127)
    ev["p"] = p
    return (ev, pos) if with_end else ev
