"""Prophesee DAT (Event2d, 8-byte records) decoder (numba) beside a numpy reference.

Record: u32 timestamp, u32 data with x = bits 0-13, y = bits 14-27, p = bits 28-31.
The 32-bit timestamp wraps every 2**32 us; a step back of more than 2**31 us is a
wrap. ``state`` = [wraps, last t32] carries across calls.
"""
from __future__ import annotations

import numpy as np
from numba import njit

V_OUT_OF_BOUNDS = 0
V_NON_MONOTONIC = 1
VIOLATION_NAMES = ("out_of_bounds", "non_monotonic_time")


def new_state() -> np.ndarray:
    return np.array([0, -1], np.int64)


@njit(cache=True, nogil=True)
def decode_dat(words, out, state, counts, first, first_index, width, height):
    """words: u32[2n] (t, data pairs). Writes kept events to ``out`` (uint64[n, 2]).

    ``first`` receives the record index of the first violation of each kind.
    Returns the number of events written.
    """
    wraps = state[0]
    last = state[1]
    k = 0
    for i in range(words.shape[0] // 2):
        t32 = np.int64(words[2 * i])
        d = np.int64(words[2 * i + 1])
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
        out[k, 0] = np.uint64(x | (y << 16) | (((d >> 28) & 0xF) << 32))
        out[k, 1] = np.uint64((wraps << 32) + t32)
        k += 1
    state[0] = wraps
    state[1] = last
    return k


def decode_dat_reference(records: np.ndarray, width=1 << 16, height=1 << 16, wraps=0, last=-1):
    """records: structured/u32 array shaped (n, 2). Returns (x, y, p, t, out_of_bounds)."""
    r = np.asarray(records, dtype="<u4").reshape(-1, 2)
    t32 = r[:, 0].astype(np.int64)
    prev = np.concatenate([[last], t32[:-1]])
    wrap_steps = (prev >= 0) & (prev - t32 > 0x80000000)
    t = t32 + ((wraps + np.cumsum(wrap_steps)) << 32)
    d = r[:, 1].astype(np.int64)
    x, y, p = d & 0x3FFF, (d >> 14) & 0x3FFF, (d >> 28) & 0xF
    keep = (x < width) & (y < height)
    return x[keep], y[keep], p[keep], t[keep], int((~keep).sum())
