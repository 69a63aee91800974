"""EVT 3.0 encoder (numba) beside a plain reference; both decode back to their input.

The fast encoder packs runs of events that share (t, y, p) with rising x into
VECT_BASE_X + VECT_12 words, as sensors do; the reference writes one ADDR_X per
event. Time: TIME_HIGH is written whenever t >> 12 changes, TIME_LOW whenever
t & 0xFFF changes; a jump of more than 2047 TIME_HIGH units is written as steps
of 2047 so that a decoder sees every 2**24 us wrap. The state carried between
calls (``state``): [time_high_abs, time_low, y, started].
"""
from __future__ import annotations

import numpy as np
from numba import njit

ERR_NONE, ERR_COORD, ERR_NEGATIVE_T, ERR_BACKWARDS = 0, 1, 2, 3
ERROR_TEXT = {ERR_COORD: "x or y >= 2048 cannot be stored in EVT 3.0",
              ERR_NEGATIVE_T: "negative timestamp cannot be stored in EVT 3.0",
              ERR_BACKWARDS: "timestamp goes back by more than 2**23 us"}
MAX_STEP = 2047


def new_encoder_state() -> np.ndarray:
    return np.array([0, -1, -1, 0], np.int64)


@njit(cache=True, nogil=True)
def encode_evt3(x, y, p, t, start, out, state):
    """Encode events ``start..`` into ``out`` (u16) until it is nearly full.

    Returns ``(words written, next event index, error code)``; on an error the
    index is the offending event.
    """
    th = state[0]
    tl = state[1]
    cy = state[2]
    started = state[3]
    n = x.shape[0]
    k = 0
    i = start
    cap = out.shape[0] - 8
    while i < n and k <= cap:
        if x[i] >= 2048 or y[i] >= 2048:
            return k, i, 1
        ti = t[i]
        if ti < 0:
            return k, i, 2
        want = ti >> 12
        if started == 0:
            out[k] = 0x8000
            k += 1
            th = 0
            started = 1
        if want > th + 2047:
            th += 2047
            out[k] = 0x8000 | (th & 0xFFF)
            k += 1
            continue
        if want != th:
            if want < th - 2047:
                return k, i, 3
            th = want
            out[k] = 0x8000 | (th & 0xFFF)
            k += 1
        low = ti & 0xFFF
        if low != tl:
            tl = low
            out[k] = 0x6000 | low
            k += 1
        yi = np.int64(y[i])
        if yi != cy:
            cy = yi
            out[k] = yi
            k += 1
        xi = np.int64(x[i])
        pi = np.int64(p[i]) & 1
        j = i + 1
        if j < n and t[j] == ti and y[j] == y[i] and (p[j] & 1) == pi and xi < x[j] <= xi + 11:
            out[k] = 0x3000 | (pi << 11) | xi
            k += 1
            base = xi
            last = xi - 1
            while k <= cap + 6:
                mask = 0
                while (i < n and t[i] == ti and y[i] == yi and (np.int64(p[i]) & 1) == pi
                       and last < x[i] <= base + 11):
                    mask |= 1 << (np.int64(x[i]) - base)
                    last = np.int64(x[i])
                    i += 1
                out[k] = 0x4000 | mask
                k += 1
                base += 12
                if not (i < n and t[i] == ti and y[i] == yi and (np.int64(p[i]) & 1) == pi
                        and base <= x[i] <= base + 11 and x[i] > last):
                    break
        else:
            out[k] = 0x2000 | (pi << 11) | xi
            k += 1
            i += 1
    state[0] = th
    state[1] = tl
    state[2] = cy
    state[3] = started
    return k, i, ERR_NONE


def encode_evt3_reference(events) -> np.ndarray:
    """One ADDR_X per event; TIME_HIGH steps as the fast encoder. Raises ValueError on bad input."""
    words = []
    th, tl, cy, started = 0, -1, -1, False
    for i, (x, y, p, t) in enumerate(zip(events["x"].tolist(), events["y"].tolist(),
                                         events["p"].tolist(), events["t"].tolist())):
        if x >= 2048 or y >= 2048 or t < 0:
            raise ValueError(f"event {i} cannot be stored in EVT 3.0")
        if not started:
            words.append(0x8000)
            started = True
        want = t >> 12
        while want > th + MAX_STEP:
            th += MAX_STEP
            words.append(0x8000 | (th & 0xFFF))
        if want != th:
            if want < th - MAX_STEP:
                raise ValueError(f"event {i}: timestamp goes back too far")
            th = want
            words.append(0x8000 | (th & 0xFFF))
        if (t & 0xFFF) != tl:
            tl = t & 0xFFF
            words.append(0x6000 | tl)
        if y != cy:
            cy = y
            words.append(y)
        words.append(0x2000 | ((p & 1) << 11) | x)
    return np.array(words, dtype="<u2")
