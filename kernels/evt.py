"""Prophesee EVT 2.0 / EVT 3.0 word decoders (numba) beside plain references they must equal.

Decoders are streaming: all decoder state lives in a small int64 array
``state`` that the caller keeps between calls, so any split of the word stream
gives identical events. Events are written into ``out``, an EVENT_DTYPE array
viewed as ``uint64[n, 2]`` (word 0: x | y << 16 | p << 32, word 1: t).
Protocol violations are counted by kind in ``counts`` with the byte offset of
the first of each in ``first``; the names of the kinds are ``VIOLATION_NAMES``.

EVT 3.0 time: t = overflows * 2**24 + (time_high << 12 | time_low); the latest
TIME_LOW / TIME_HIGH word wins (the specification). A TIME_HIGH that goes back
by more than half its range is a wrap (overflow); by less, a violation
("non_monotonic_time_high") that is still applied.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from eventflow import errors as E

# violation kinds, indices into ``counts`` / ``first``
V_OUT_OF_BOUNDS, V_NON_MONOTONIC_TIME_HIGH, V_TIME_LOW_DECREASE, V_MISSING_ADDR_Y, \
    V_MISSING_TIME_HIGH, V_INVALID_VECT_BASE, V_UNKNOWN_TYPE = range(7)
VIOLATION_NAMES = (E.OUT_OF_BOUNDS, E.NON_MONOTONIC_TIME_HIGH, E.TIME_LOW_DECREASE, E.MISSING_ADDR_Y,
                   E.MISSING_TIME_HIGH, E.INVALID_VECT_BASE, E.UNKNOWN_TYPE)
N_VIOLATIONS = len(VIOLATION_NAMES)

# EVT 3.0 state slots
S3_TIME_HIGH, S3_TIME_LOW, S3_OVERFLOWS, S3_Y, S3_BASE_X, S3_POL, S3_HAVE_TIME_HIGH, S3_LOW_UNDER = range(8)
S3_SIZE = S3_LOW_UNDER + 1
# EVT 2.0 state slots
S2_TIME_HIGH, S2_OVERFLOWS, S2_HAVE_TIME_HIGH = range(3)
S2_SIZE = S2_HAVE_TIME_HIGH + 1
EVT2_TIME_HIGH_RANGE = 1 << 28
EVT3_TIME_HIGH_RANGE = 1 << 12


def new_state(evt: str) -> np.ndarray:
    st = np.zeros(S3_SIZE if evt == "evt3" else S2_SIZE, np.int64)
    if evt == "evt3":
        st[S3_Y] = -1
        st[S3_BASE_X] = -1
        st[S3_LOW_UNDER] = -1
    return st


U = np.uint64
FAST_BLOCK = 32


@njit(cache=True, nogil=True)
def _flag(counts, first, kind, offset):
    if counts[kind] == 0:
        first[kind] = offset
    counts[kind] += 1


@njit(cache=True, nogil=True)
def _evt2_words(words, lo, hi, out, k, th, ovf, have, counts, first, byte_offset, width, height):
    """The general EVT 2.0 loop over words[lo:hi]; returns the updated (k, th, ovf, have)."""
    for i in range(lo, hi):
        w = np.int64(words[i])
        typ = w >> 28
        if typ <= 1:
            if have == 0:
                _flag(counts, first, V_MISSING_TIME_HIGH, byte_offset + 4 * i)
                continue
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            if x >= width or y >= height:
                _flag(counts, first, V_OUT_OF_BOUNDS, byte_offset + 4 * i)
                continue
            out[2 * k] = U(x | (y << 16) | (typ << 32))
            out[2 * k + 1] = U(((ovf * EVT2_TIME_HIGH_RANGE + th) << 6) | ((w >> 22) & 63))
            k += 1
        elif typ == 8:
            new = w & 0x0FFFFFFF
            if have and new < th:
                if th - new > EVT2_TIME_HIGH_RANGE // 2:
                    ovf += 1
                else:
                    _flag(counts, first, V_NON_MONOTONIC_TIME_HIGH, byte_offset + 4 * i)
            th = new
            have = 1
        elif typ != 0xA and typ != 0xE and typ != 0xF:
            _flag(counts, first, V_UNKNOWN_TYPE, byte_offset + 4 * i)
    return k, th, ovf, have


@njit(cache=True, nogil=True)
def decode_evt2(words, out, state, counts, first, byte_offset, width, height):
    """Decode EVT 2.0 words into ``out`` (uint64[2 * capacity]; callers give capacity >= len(words),
    words beyond the capacity are left undecoded).

    Blocks of FAST_BLOCK words that are all in-bounds CD events (the common case)
    take a branch-free path that LLVM vectorises; any other block takes the
    general loop. Returns the number of events written.
    """
    th = state[S2_TIME_HIGH]
    ovf = state[S2_OVERFLOWS]
    have = state[S2_HAVE_TIME_HIGH]
    W = U(width)
    H = U(height)
    n = min(words.shape[0], out.shape[0] // 2)  # never write past ``out``
    k = 0
    i = 0
    while i + FAST_BLOCK <= n:
        # (a plain if/else: a `continue` here stops LLVM from vectorising the inner loops)
        hi = U(0)
        xm = U(0)
        ym = U(0)
        for j in range(FAST_BLOCK):
            w = U(words[i + j])
            hi |= w >> U(29)
            xm = max(xm, (w >> U(11)) & U(0x7FF))
            ym = max(ym, w & U(0x7FF))
        if have != 0 and hi == U(0) and xm < W and ym < H:
            tbase = U((ovf * EVT2_TIME_HIGH_RANGE + th) << 6)
            src = words[i:i + FAST_BLOCK]  # slices with zero-based indices: LLVM vectorises these
            dst = out[2 * k:2 * k + 2 * FAST_BLOCK]
            for j in range(FAST_BLOCK):
                w = U(src[j])
                dst[2 * j] = ((w >> U(11)) & U(0x7FF)) | ((w & U(0x7FF)) << U(16)) | ((w >> U(28)) << U(32))
                dst[2 * j + 1] = tbase | ((w >> U(22)) & U(63))
            k += FAST_BLOCK
        else:
            k, th, ovf, have = _evt2_words(words, i, i + FAST_BLOCK, out, k, th, ovf, have, counts, first,
                                           byte_offset, width, height)
        i += FAST_BLOCK
    k, th, ovf, have = _evt2_words(words, i, n, out, k, th, ovf, have, counts, first, byte_offset, width, height)
    state[S2_TIME_HIGH] = th
    state[S2_OVERFLOWS] = ovf
    state[S2_HAVE_TIME_HIGH] = have
    return k


@njit(cache=True, nogil=True)
def decode_evt3(words, out, state, counts, first, byte_offset, width, height):
    """Decode EVT 3.0 words into ``out`` (uint64[2 * capacity], capacity >= len(words) + 12).

    The common words (ADDR_X, ADDR_Y, TIME_LOW) come first in one lean branch chain;
    a vector word stops the loop early when the events it may add could overflow
    ``out``. Returns ``(events written, words consumed)``.
    """
    th = state[S3_TIME_HIGH]
    tl = state[S3_TIME_LOW]
    ovf = state[S3_OVERFLOWS]
    y = state[S3_Y]
    bx = state[S3_BASE_X]
    pol = state[S3_POL]
    have = state[S3_HAVE_TIME_HIGH]
    low_under = state[S3_LOW_UNDER]
    under = ovf * EVT3_TIME_HIGH_RANGE + th
    W = U(width)
    ready = have != 0 and y >= 0 and y < height
    ylo = U(max(y, 0)) << U(16)
    t = U((under << 12) | tl)
    cap = out.shape[0] // 2
    n = min(words.shape[0], cap - 12)  # never write past ``out``, whatever the caller passed
    k = 0
    i = 0
    while i < n:
        w = U(words[i])
        typ = w >> U(12)
        if typ == U(2):  # ADDR_X: one event
            x = w & U(0x7FF)
            if ready and x < W:
                out[2 * k] = ylo | x | ((w & U(0x800)) << U(21))
                out[2 * k + 1] = t
                k += 1
            else:
                _flag(counts, first, V_MISSING_ADDR_Y if y < 0 else V_MISSING_TIME_HIGH if have == 0
                      else V_OUT_OF_BOUNDS, byte_offset + 2 * i)
        elif typ == U(0):  # ADDR_Y
            y = np.int64(w & U(0x7FF))
            ylo = U(y) << U(16)
            ready = have != 0 and y < height
        elif typ == U(6):  # TIME_LOW
            new = np.int64(w & U(0xFFF))
            if new < tl and low_under == under:
                _flag(counts, first, V_TIME_LOW_DECREASE, byte_offset + 2 * i)
            tl = new
            low_under = under
            t = U((under << 12) | tl)
        else:
            if typ == U(4) or typ == U(5):  # VECT_12 / VECT_8
                if k + 12 + (n - i) > cap:
                    break
                bits = 12 if typ == U(4) else 8
                mask = np.int64(w & U(0xFFF if typ == U(4) else 0xFF))
                if bx < 0 or not ready:   # every event of the word is dropped, and counted
                    kind = V_INVALID_VECT_BASE if bx < 0 else V_MISSING_ADDR_Y if y < 0 else \
                        V_MISSING_TIME_HIGH if have == 0 else V_OUT_OF_BOUNDS
                    while mask:
                        mask &= mask - 1
                        _flag(counts, first, kind, byte_offset + 2 * i)
                elif bx + bits <= width:
                    lo = ylo | (U(pol) << U(32)) | U(bx)
                    dst = out[2 * k:2 * k + 24]
                    for b in range(12):
                        dst[2 * b] = lo + U(b)
                        dst[2 * b + 1] = t
                    j = 0
                    for b in range(bits):
                        if (mask >> b) & 1:
                            dst[2 * j] = lo + U(b)
                            j += 1
                    k += j
                else:
                    lo = ylo | (U(pol) << U(32))
                    for b in range(bits):
                        if (mask >> b) & 1:
                            x = bx + b
                            if x < width:
                                out[2 * k] = lo | U(x)
                                out[2 * k + 1] = t
                                k += 1
                            else:
                                _flag(counts, first, V_OUT_OF_BOUNDS, byte_offset + 2 * i)
                if bx >= 0:
                    bx += bits
            elif typ == U(3):  # VECT_BASE_X
                bx = np.int64(w & U(0x7FF))
                pol = np.int64((w >> U(11)) & U(1))
            elif typ == U(8):  # TIME_HIGH
                new = np.int64(w & U(0xFFF))
                if have and new < th:
                    if th - new > EVT3_TIME_HIGH_RANGE // 2:
                        ovf += 1
                    else:
                        _flag(counts, first, V_NON_MONOTONIC_TIME_HIGH, byte_offset + 2 * i)
                th = new
                have = 1
                under = ovf * EVT3_TIME_HIGH_RANGE + th
                ready = y >= 0 and y < height
                t = U((under << 12) | tl)
            elif typ != U(7) and typ != U(0xA) and typ != U(0xE) and typ != U(0xF):
                _flag(counts, first, V_UNKNOWN_TYPE, byte_offset + 2 * i)
        i += 1
    state[S3_TIME_HIGH] = th
    state[S3_TIME_LOW] = tl
    state[S3_OVERFLOWS] = ovf
    state[S3_Y] = y
    state[S3_BASE_X] = bx
    state[S3_POL] = pol
    state[S3_HAVE_TIME_HIGH] = have
    state[S3_LOW_UNDER] = low_under
    return k, i


# ---------------------------------------------------------------------------------------
# Plain references: one word at a time, Python ints, a dict of named state. Slow; tests only.

def _ref_state():
    return {"time_high": 0, "time_low": 0, "overflows": 0, "y": None, "base_x": None,
            "pol": 0, "have_time_high": False, "low_under": None}


def decode_evt2_reference(words, width=2048, height=2048, st=None):
    """Returns (list of (x, y, p, t), {kind: count}, state)."""
    st = st or _ref_state()
    events, viol = [], {}
    for w in (int(v) for v in words):
        typ = w >> 28
        if typ in (0, 1):
            if not st["have_time_high"]:
                viol["missing_time_high"] = viol.get("missing_time_high", 0) + 1
                continue
            x, y = (w >> 11) & 0x7FF, w & 0x7FF
            if x >= width or y >= height:
                viol["out_of_bounds"] = viol.get("out_of_bounds", 0) + 1
                continue
            t = ((st["overflows"] << 28) + st["time_high"]) * 64 + ((w >> 22) & 63)
            events.append((x, y, typ, t))
        elif typ == 8:
            new = w & 0x0FFFFFFF
            if st["have_time_high"] and new < st["time_high"]:
                if st["time_high"] - new > (1 << 27):
                    st["overflows"] += 1
                else:
                    viol["non_monotonic_time_high"] = viol.get("non_monotonic_time_high", 0) + 1
            st["time_high"], st["have_time_high"] = new, True
        elif typ not in (0xA, 0xE, 0xF):
            viol["unknown_type"] = viol.get("unknown_type", 0) + 1
    return events, viol, st


def decode_evt3_reference(words, width=2048, height=2048, st=None):
    """Returns (list of (x, y, p, t), {kind: count}, state)."""
    st = st or _ref_state()
    events, viol = [], {}

    def bump(kind, n=1):
        if n:
            viol[kind] = viol.get(kind, 0) + n

    def emit(xs, p):   # a dropped event counts once (a vector word's events each)
        if st["y"] is None:
            bump("missing_addr_y", len(xs))
            return
        if not st["have_time_high"]:
            bump("missing_time_high", len(xs))
            return
        t = (st["overflows"] << 24) + (st["time_high"] << 12) + st["time_low"]
        for x in xs:
            if x >= width or st["y"] >= height:
                bump("out_of_bounds")
            else:
                events.append((x, st["y"], p, t))

    for w in (int(v) for v in words):
        typ, payload = w >> 12, w & 0xFFF
        if typ == 0x0:
            st["y"] = payload & 0x7FF
        elif typ == 0x2:
            emit([payload & 0x7FF], payload >> 11)
        elif typ == 0x3:
            st["base_x"], st["pol"] = payload & 0x7FF, payload >> 11
        elif typ in (0x4, 0x5):
            n = 12 if typ == 0x4 else 8
            if st["base_x"] is None:
                bump("invalid_vect_base", bin(payload & ((1 << n) - 1)).count("1"))
                continue
            base = st["base_x"]
            st["base_x"] = base + n
            emit([base + b for b in range(n) if (payload >> b) & 1], st["pol"])
        elif typ == 0x6:
            under = (st["overflows"], st["time_high"])
            if payload < st["time_low"] and st["low_under"] == under:
                bump("time_low_decrease")
            st["time_low"], st["low_under"] = payload, under
        elif typ == 0x8:
            if st["have_time_high"] and payload < st["time_high"]:
                if st["time_high"] - payload > 2048:
                    st["overflows"] += 1
                else:
                    bump("non_monotonic_time_high")
            st["time_high"], st["have_time_high"] = payload, True
        elif typ not in (0x7, 0xA, 0xE, 0xF):
            bump("unknown_type")
    return events, viol, st
