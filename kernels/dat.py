"""Prophesee DAT (Event2d, 8-byte records) decoder (numba) beside a numpy reference.

Record: u32 timestamp, u32 data with x = bits 0-13, y = bits 14-27, p = bits 28-31.
The 32-bit timestamp wraps every 2**32 us; a step back of more than 2**31 us is a
wrap. ``state`` = [wraps, last t32] carries across calls.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from eventflow import errors as E

V_OUT_OF_BOUNDS = 0
V_NON_MONOTONIC = 1
VIOLATION_NAMES = (E.OUT_OF_BOUNDS, E.NON_MONOTONIC_TIME)


def new_state() -> np.ndarray:
    return np.array([0, -1], np.int64)


U = np.uint64
FAST_BLOCK = 64


@njit(cache=True, nogil=True)
def _dat_records(recs, lo, hi, out, k, wraps, last, counts, first, first_index, width, height):
    """The general loop over records lo..hi; returns the updated (k, wraps, last)."""
    for i in range(lo, hi):
        r = recs[i]
        t32 = np.int64(r & U(0xFFFFFFFF))
        d = np.int64(r >> U(32))
        if last >= 0 and t32 < last:
            if last - t32 > 0x80000000:
                wraps += 1
            else:
                if counts[V_NON_MONOTONIC] == 0:
                    first[V_NON_MONOTONIC] = first_index + i
                counts[V_NON_MONOTONIC] += 1
        last = t32
        x = d & 0x3FFF
        y = (d >> 14) & 0x3FFF
        if x >= width or y >= height:
            if counts[V_OUT_OF_BOUNDS] == 0:
                first[V_OUT_OF_BOUNDS] = first_index + i
            counts[V_OUT_OF_BOUNDS] += 1
            continue
        out[2 * k] = U(x | (y << 16) | (((d >> 28) & 0xF) << 32))
        out[2 * k + 1] = U((wraps << 32) + t32)
        k += 1
    return k, wraps, last


@njit(cache=True, nogil=True)
def decode_dat(recs, out, state, counts, first, first_index, width, height):
    """recs: uint64[n], one little-endian record each (t in the low 32 bits, x|y|p in the high).
    Writes kept events to ``out`` (uint64[2n]).

    Each block of FAST_BLOCK records is converted into ``out`` in one branch-free
    (vectorised) pass that also takes the block's maxima of x and y; a second pass over the
    block, in L1, checks that its times do not go back. A block with a violation, or the
    first one (no time before it), is then written again by the general loop, which counts
    each violation (one fused pass instead of three: 0.99-1.13x in alternated runs, AMD Zen 4).
    ``first`` receives the record index of the first violation of each kind.
    Returns the number of events written.
    """
    wraps = state[0]
    last = state[1]
    W = U(width)
    H = U(height)
    M32 = U(0xFFFFFFFF)
    n = min(recs.shape[0], out.shape[0] // 2)  # never write past ``out``
    k = 0
    i = 0
    while i + FAST_BLOCK <= n:
        # (a plain if/else: a `continue` here stops LLVM from vectorising the inner loops)
        src = recs[i:i + FAST_BLOCK]  # slices with zero-based indices: LLVM vectorises these
        dst = out[2 * k:2 * k + 2 * FAST_BLOCK]
        tw = U(wraps << 32)
        xm = U(0)
        ym = U(0)
        for j in range(FAST_BLOCK):
            r = src[j]
            x = (r >> U(32)) & U(0x3FFF)
            y = (r >> U(46)) & U(0x3FFF)
            xm = max(xm, x)
            ym = max(ym, y)
            dst[2 * j] = x | (y << U(16)) | ((r >> U(60)) << U(32))
            dst[2 * j + 1] = tw + (r & M32)
        down = (src[0] & M32) < U(max(last, 0))
        for j in range(1, FAST_BLOCK):
            down |= (src[j] & M32) < (src[j - 1] & M32)
        if last >= 0 and not down and xm < W and ym < H:
            k += FAST_BLOCK
            last = np.int64(src[FAST_BLOCK - 1] & M32)
        else:
            k, wraps, last = _dat_records(recs, i, i + FAST_BLOCK, out, k, wraps, last, counts, first,
                                          first_index, width, height)
        i += FAST_BLOCK
    k, wraps, last = _dat_records(recs, i, n, out, k, wraps, last, counts, first, first_index, width, height)
    state[0] = wraps
    state[1] = last
    return k


def decode_dat_reference(records: np.ndarray, width=1 << 16, height=1 << 16, wraps=0, last=-1):
    """records: u32 pairs (t, data) shaped (n, 2). Returns (x, y, p, t, out_of_bounds)."""
    r = np.asarray(records, dtype="<u4").reshape(-1, 2)
    t32 = r[:, 0].astype(np.int64)
    prev = np.concatenate([[last], t32[:-1]])
    wrap_steps = (prev >= 0) & (prev - t32 > 0x80000000)
    t = t32 + ((wraps + np.cumsum(wrap_steps)) << 32)
    d = r[:, 1].astype(np.int64)
    x, y, p = d & 0x3FFF, (d >> 14) & 0x3FFF, (d >> 28) & 0xF
    keep = (x < width) & (y < height)
    return x[keep], y[keep], p[keep], t[keep], int((~keep).sum())
