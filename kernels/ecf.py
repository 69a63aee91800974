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

import sys

import numpy as np
from numba import njit

from eventflow.errors import EventFormatError  # absolute: this file is also importable as kernels.ecf
from eventflow.events import EVENT_DTYPE, as_events

FILTER_ID = 36559  # 0x8ECF
MAX_CHUNK_EVENTS = 65535
HEADER_BYTES = 12  # u32 header + u64 t0

# error codes of the decoder kernel (0 = success); the messages are shared with the reference
OK, E_HEADER, E_T_TRUNC, E_T_ESCAPE, E_T_RUN, E_Y_TRUNC, E_Y_RUN, E_X_TRUNC, E_P_TRUNC, E_P_RUN, \
    E_PACKED_TRUNC = range(11)
ERROR_TEXT = {
    E_HEADER: "chunk shorter than its 12-byte header",
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
LITTLE_ENDIAN = sys.byteorder == "little"  # mode 2 reads packed groups as host uint32 words


@njit(cache=True, nogil=True)
def _u16(buf, pos):
    return np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8)


@njit(cache=True, nogil=True, inline="always")
def _packed_xyp(v):
    """Mode 2's 24-bit value (p | x << 1 | y << 12) as the event word x | y << 16 | p << 32."""
    return ((v >> 1) & 0x7FF) | (((v >> 12) & 0x7FF) << 16) | ((v & 1) << 32)


@njit(cache=True, nogil=True)
def _put_xp(xyp, e, v, cur_y):
    """Event e of mode 1 from its packed value v = x << 1 | p and its y mark; returns y."""
    mark = xyp[e, 0] >> 16
    cur_y = mark - 1 if mark != 0 else cur_y
    xyp[e, 0] = (v >> 1) | (cur_y << 16) | ((v & 1) << 32)
    return cur_y


@njit(cache=True, nogil=True)
def _decode_kernel(buf, n, mode, xyp, tt):
    """Decode the streams after the header into ``xyp[i, 0]`` (x | y << 16 | p << 32) and
    ``tt[i, 1]`` (t, unsigned). Returns (0, end offset) or (error code, offset)."""
    size = buf.shape[0]
    cur = np.uint64(0)
    for k in range(8):
        cur |= np.uint64(buf[4 + k]) << np.uint64(8 * k)
    if mode != 2:  # modes 0 / 1 mark run starts in zeroed words; mode 2 writes every word whole
        for k in range(n):
            xyp[k, 0] = 0  # also zeroes the padding bytes
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
        if c <= 16 and i + 16 <= n:  # short run: 16 stores whatever its length (no mispredicted
            for k in range(16):      # loop exit); the next runs overwrite the extra ones
                tt[i + k, 1] = cur
        else:
            for k in range(i, i + c):
                tt[k, 1] = cur
        i += c
    if mode == 2:
        groups = (n + 3) // 4
        if pos + 12 * groups > size:
            return E_PACKED_TRUNC, pos
        full = n // 4 if LITTLE_ENDIAN else 0   # (a big-endian host takes the byte path below)
        words = buf[pos:pos + 12 * full].view(np.uint32)  # little-endian words, read unaligned
        for g in range(full):
            w0 = np.int64(words[3 * g])
            w1 = np.int64(words[3 * g + 1])
            w2 = np.int64(words[3 * g + 2])
            e = 4 * g
            xyp[e, 0] = _packed_xyp(w0 >> 8)
            xyp[e + 1, 0] = _packed_xyp((w0 & 0xFF) | ((w1 >> 16) << 8))
            xyp[e + 2, 0] = _packed_xyp((w1 & 0xFFFF) | ((w2 >> 24) << 16))
            xyp[e + 3, 0] = _packed_xyp(w2 & 0xFFFFFF)
        for g in range(full, groups):  # the last, partial group
            q = pos + 12 * g
            w0 = _u16(buf, q) | (_u16(buf, q + 2) << 16)
            w1 = _u16(buf, q + 4) | (_u16(buf, q + 6) << 16)
            w2 = _u16(buf, q + 8) | (_u16(buf, q + 10) << 16)
            v0 = w0 >> 8
            v1 = (w0 & 0xFF) | ((w1 >> 16) << 8)
            v2 = (w1 & 0xFFFF) | ((w2 >> 24) << 16)
            v3 = w2 & 0xFFFFFF
            vs = (v0, v1, v2, v3)
            for j in range(min(4, n - 4 * g)):  # slots beyond n in the last group are don't-care
                xyp[4 * g + j, 0] = _packed_xyp(vs[j])
        return OK, pos + 12 * groups
    # Modes 0 and 1. Run streams only mark where a run starts (y + 1 in bits 16..31, p + 1 in
    # bits 32..33 of the zeroed word); one last pass per event turns marks into values. This
    # keeps the byte walks free of per-run store loops, whose mispredicted exits dominated.
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
        if c > 0:
            xyp[i, 0] = ((w >> 5) + 1) << 16
        i += c
    if mode == 1:
        groups = (n + 3) // 4
        if pos + 6 * groups > size:
            return E_PACKED_TRUNC, pos
        cur_y = 0
        for g in range(groups):
            q = pos + 6 * g
            w0 = _u16(buf, q)
            w1 = _u16(buf, q + 2)
            w2 = _u16(buf, q + 4)
            e = 4 * g
            if e + 4 <= n:
                cur_y = _put_xp(xyp, e, w0 >> 4, cur_y)
                cur_y = _put_xp(xyp, e + 1, (w0 & 0xF) | ((w1 >> 8) << 4), cur_y)
                cur_y = _put_xp(xyp, e + 2, (w1 & 0xFF) | ((w2 >> 12) << 8), cur_y)
                cur_y = _put_xp(xyp, e + 3, w2 & 0xFFF, cur_y)
            else:  # the last group's slots beyond n are don't-care
                vs = (w0 >> 4, (w0 & 0xF) | ((w1 >> 8) << 4), (w1 & 0xFF) | ((w2 >> 12) << 8))
                for j in range(n - e):
                    cur_y = _put_xp(xyp, e + j, vs[j], cur_y)
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
            bit = (w >> (5 - k)) & 1
            if i < n:  # values beyond n are phantoms: discarded
                xyp[i, 0] |= (base + k) * bit
            i += bit
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
        if c > 0:
            xyp[i, 0] |= ((v >> 7) + 1) << 32
        i += c
    cur_y = 0
    cur_p = 0
    for e in range(n):
        word = xyp[e, 0]
        mark_y = (word >> 16) & 0xFFFF
        mark_p = word >> 32
        cur_y = mark_y - 1 if mark_y != 0 else cur_y
        cur_p = mark_p - 1 if mark_p != 0 else cur_p
        xyp[e, 0] = (word & 0xFFFF) | (cur_y << 16) | (cur_p << 32)
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

    def runs(pos, width, value_bits, count_mask, code_trunc, code_run):
        """Walk a run stream of (value, count) entries, 1 or 2 bytes wide, whose count
        ``count_mask`` means "the count is the next u16"; returns (values, end)."""
        out, i = [], 0
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
    y, pos = runs(pos, 2, 5, 31, E_Y_TRUNC, E_Y_RUN)
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
    p, pos = runs(pos, 1, 7, 127, E_P_TRUNC, E_P_RUN)
    ev["p"] = p
    return (ev, pos) if with_end else ev


# ---------------------------------------------------------------------------- encoder
def _encoder_inputs(events):
    """Fields x, y, p and t (as unsigned) of at most 65535 events (strided views, no copy)."""
    ev = np.asarray(events)
    if ev.dtype != EVENT_DTYPE:
        ev = as_events(ev)
    if len(ev) > MAX_CHUNK_EVENTS:
        raise ValueError(f"an ECF chunk holds at most {MAX_CHUNK_EVENTS} events, got {len(ev)}")
    return ev["x"], ev["y"], ev["p"], ev["t"].view(np.uint64)


def _unstorable(x, y, p, i):
    return ValueError(f"event {i} (x={x[i]}, y={y[i]}, p={p[i]}) cannot be stored in ECF: "
                      "x and y must be below 2048 and p 0 or 1")


def encoded_size_bound(n: int) -> int:
    """Bytes an n-event chunk can take at most: 17 per timestamp entry (16-nibble escape and
    a run byte), 5 per event of y/x/p streams, 9 of packing slack, the 12-byte header."""
    return 12 + 22 * int(n) + 16


@njit(cache=True, nogil=True)
def _put16(out, pos, v):
    out[pos] = v & 0xFF
    out[pos + 1] = (v >> 8) & 0xFF
    return pos + 2


@njit(cache=True, nogil=True)
def _packed(x, y, p, i, with_y):
    """Slot i of a packed group: (y << 12 |) x << 1 | p, and 0 past the last event (as the plugin)."""
    if i >= x.shape[0]:
        return 0
    v = (np.int64(x[i]) << 1) | np.int64(p[i])
    return v | (np.int64(y[i]) << 12) if with_y else v


@njit(cache=True, nogil=True)
def _choose_mode(x, y, n):
    """The plugin's choice from the first m events: few repeated y -> mode 2; else many
    short ascending x stretches -> mode 0; else mode 1."""
    m = n if n < 16 else (n + 2) // 4
    repeats = 0
    for i in range(1, m):
        if y[i] == y[i - 1]:
            repeats += 1
    if repeats <= (2 * m + 5) // 10:
        return 2
    steps = 0
    base = np.int64(x[0])
    for i in range(1, m):
        xi = np.int64(x[i])
        if xi > np.int64(x[i - 1]) and xi <= base + 5:
            steps += 1
        else:
            base = xi
    return 0 if steps > (4 * m + 25) // 50 else 1


@njit(cache=True, nogil=True)
def _encode_kernel(x, y, p, t, out):
    """Encode n events into ``out`` (at least encoded_size_bound(n) bytes); returns the size,
    or -1 - i where event i cannot be stored."""
    n = x.shape[0]
    for i in range(n):
        if x[i] >= 2048 or y[i] >= 2048 or (p[i] != 0 and p[i] != 1):
            return -1 - i  # not storable: 11-bit x and y, 1-bit p
    mode = _choose_mode(x, y, n)
    hdr = (n << 2) | mode
    for k in range(4):
        out[k] = (hdr >> (8 * k)) & 0xFF
    t0 = t[0] if n > 0 else np.uint64(0)
    for k in range(8):
        out[4 + k] = (t0 >> np.uint64(8 * k)) & np.uint64(0xFF)
    pos = 12
    cur = t0
    i = 0
    while i < n:  # timestamps: escape groups for increments >= 15 (unsigned, wrapping), runs
        ti = t[i]
        if ti >= cur + np.uint64(15):
            d = ti - cur
            while d > np.uint64(0):
                out[pos] = np.uint64(0xF0) | (d & np.uint64(15))
                pos += 1
                d >>= np.uint64(4)
            cur = ti
        h = 0
        if ti >= cur:  # a time below cur (went backwards) is stored as cur
            h = np.int64(ti - cur)
            cur = ti
        c = 1
        while i + c < n and t[i + c] == cur:
            c += 1
        if c >= 15:
            out[pos] = (h << 4) | 15
            pos = _put16(out, pos + 1, c)
        else:
            out[pos] = (h << 4) | c
            pos += 1
        i += c
    if mode == 2:
        for g in range(0, n, 4):
            v0, v1 = _packed(x, y, p, g, True), _packed(x, y, p, g + 1, True)
            v2, v3 = _packed(x, y, p, g + 2, True), _packed(x, y, p, g + 3, True)
            pos = _put16(out, _put16(out, pos, (v0 << 8) & 0xFFFF | (v1 & 0xFF)), v0 >> 8)
            pos = _put16(out, _put16(out, pos, v2 & 0xFFFF), v1 >> 8)
            pos = _put16(out, _put16(out, pos, v3 & 0xFFFF), (v2 >> 16) << 8 | v3 >> 16)
        return pos
    i = 0
    while i < n:  # y runs
        c = 1
        while i + c < n and y[i + c] == y[i]:
            c += 1
        yw = (np.int64(y[i]) & 0x7FF) << 5
        if c >= 31:
            pos = _put16(out, _put16(out, pos, yw | 31), c)
        else:
            pos = _put16(out, pos, yw | c)
        i += c
    if mode == 1:
        for g in range(0, n, 4):
            v0, v1 = _packed(x, y, p, g, False), _packed(x, y, p, g + 1, False)
            v2, v3 = _packed(x, y, p, g + 2, False), _packed(x, y, p, g + 3, False)
            pos = _put16(out, pos, (v0 << 4) | (v1 & 0xF))
            pos = _put16(out, pos, ((v1 >> 4) << 8) | (v2 & 0xFF))
            pos = _put16(out, pos, ((v2 >> 8) << 12) | v3)
        return pos
    i = 0
    while i < n:  # masked x words, greedy
        b = np.int64(x[i])
        i += 1
        mask = 0
        for k in range(1, 6):
            if i < n and np.int64(x[i]) == b + k:
                mask |= 1 << (5 - k)
                i += 1
        pos = _put16(out, pos, ((b & 0x7FF) << 5) | mask)
    i = 0
    while i < n:  # polarity runs
        c = 1
        while i + c < n and p[i + c] == p[i]:
            c += 1
        pb = (np.int64(p[i]) & 1) << 7
        if c >= 127:
            out[pos] = pb | 127
            pos = _put16(out, pos + 1, c)
        else:
            out[pos] = pb | c
            pos += 1
        i += c
    return pos


def encode_chunk(events) -> bytes:
    """Encode up to 65535 events into one ECF chunk, byte-identical to Prophesee's plugin.

    x and y must be below 2048 and p 0 or 1 (ValueError otherwise: ECF cannot store them).
    Times are stored exactly where they do not decrease (as unsigned 64-bit) within the
    chunk; a time below the running maximum is stored as that maximum.
    """
    x, y, p, t = _encoder_inputs(events)
    out = np.empty(encoded_size_bound(len(x)), np.uint8)
    size = _encode_kernel(x, y, p, t, out)
    if size < 0:
        raise _unstorable(x, y, p, -1 - size)
    return out[:size].tobytes()


def encode_chunk_reference(events) -> bytes:
    """Plain Python encoder written from the specification; ``encode_chunk`` must equal it."""
    x, y, p, t = (np.asarray(a).tolist() for a in _encoder_inputs(events))
    n = len(x)
    for i in range(n):
        if not (x[i] < 2048 and y[i] < 2048 and p[i] in (0, 1)):
            raise _unstorable(x, y, p, i)
    m = n if n < 16 else (n + 2) // 4
    if sum(y[i] == y[i - 1] for i in range(1, m)) <= (2 * m + 5) // 10:
        mode = 2
    else:
        steps, base = 0, x[0]
        for i in range(1, m):
            if base + 5 >= x[i] > x[i - 1]:
                steps += 1
            else:
                base = x[i]
        mode = 0 if steps > (4 * m + 25) // 50 else 1
    out = bytearray((n << 2 | mode).to_bytes(4, "little") + (t[0] if n else 0).to_bytes(8, "little"))

    def u16(v):
        out.extend(v.to_bytes(2, "little"))

    def run_length(values, i):
        c = 1
        while i + c < n and values[i + c] == values[i]:
            c += 1
        return c

    mask64, cur, i = (1 << 64) - 1, (t[0] if n else 0), 0
    while i < n:
        if t[i] >= (cur + 15) & mask64:
            d = (t[i] - cur) & mask64
            while d:
                out.append(0xF0 | d & 15)
                d >>= 4
            cur = t[i]
        h = 0
        if t[i] >= cur:
            h, cur = t[i] - cur, t[i]
        c = 1
        while i + c < n and t[i + c] == cur:
            c += 1
        out.append(h << 4 | min(c, 15))
        if c >= 15:
            u16(c)
        i += c
    if mode == 2:
        v = [y[i] << 12 | x[i] << 1 | p[i] for i in range(n)] + [0] * (-n % 4)
        for v0, v1, v2, v3 in np.reshape(v, (-1, 4)).tolist():
            for w in (v0 << 8 | v1 & 0xFF, v1 >> 8 << 16 | v2 & 0xFFFF, v2 >> 16 << 24 | v3):
                out.extend(w.to_bytes(4, "little"))
        return bytes(out)
    i = 0
    while i < n:
        c = run_length(y, i)
        u16(y[i] << 5 | min(c, 31))
        if c >= 31:
            u16(c)
        i += c
    if mode == 1:
        v = [x[i] << 1 | p[i] for i in range(n)] + [0] * (-n % 4)
        for v0, v1, v2, v3 in np.reshape(v, (-1, 4)).tolist():
            u16(v0 << 4 | v1 & 0xF)
            u16(v1 >> 4 << 8 | v2 & 0xFF)
            u16(v2 >> 8 << 12 | v3)
        return bytes(out)
    i = 0
    while i < n:
        b, mask = x[i], 0
        i += 1
        for k in range(1, 6):
            if i < n and x[i] == b + k:
                mask |= 1 << (5 - k)
                i += 1
        u16(b << 5 | mask)
    i = 0
    while i < n:
        c = run_length(p, i)
        out.append(p[i] << 7 | min(c, 127))
        if c >= 127:
            u16(c)
        i += c
    return bytes(out)
