"""Streaming window binning for the pipeline: validate, map to the model's grid, count per window.

One pass over a batch of events (the flat uint64 view of EventCD: word 0 = x | y << 16 |
p << 32, word 1 = t) is the window stage, and the only validation of the events:

- rejects, and counts by reason, events outside the sensor (``oob``), with a polarity other
  than 0 / 1 (``pol``), or earlier than the latest accepted time (``back``);
- drops (counts) events before the stream's origin ``t0``;
- with a gap limit ``max_gap_us > 0``, treats an event more than ``max_gap_us`` after (or
  before) the latest accepted time (before any event is accepted: the open window's start, so
  that a stream whose origin came from an outlier does not walk window by window towards its
  first real event) as a clock jump: the first such event is held as a
  candidate (counted as rejected, ``jump``, while it waits); when the next event of valid
  position and polarity is a jump too, at or after the candidate, the clock has really jumped:
  the open window is closed, the windows of the gap are skipped (counted in ``A_SKIPPED``, never
  emitted), windows start again at the candidate's time with the candidate in the first one
  (no longer rejected), and ``A_GAPS`` counts the re-anchor (``A_T0`` moves so that window ``k``
  still starts at ``A_T0 + k * window_us``; the call returns right after, so one call's windows
  never span a jump). Any other event of valid position and polarity (accepted, or behind the
  running time) leaves the candidate rejected: an isolated outlier costs its own event and never
  moves the clock; a real jump, or a camera whose clock restarts, loses nothing; two outliers in
  a row move the clock, and the stream's next two events move it back. Timestamps beyond
  ``TIME_LIMIT`` (2**61 us, about 73,000 years) are rejected as jumps outright (so no time
  arithmetic overflows);
- adds each accepted event to the open window's frame ``partial [2, h, w]`` at
  ``(p, ymap[y], xmap[x])`` (float32 counts), and when an event falls at or past the open
  window's end, copies the frame out as a completed window (empty windows of a time gap too).

The completed windows go to ``out [cap, 2, h, w]``; when ``cap`` windows are out the kernel
stops and reports where, so the caller drains ``out`` and calls again: no allocation follows a
timestamp. Everything the kernel carries between calls is in ``acc`` (int64) and ``partial``,
so a stream cut anywhere gives the same windows. ``bin_windows_reference`` is the plain-Python
definition the kernel must equal.

acc layout (int64[ACC_SIZE]): see the ``A_*`` constants.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .words import xyp

A_T0, A_K, A_T_END, A_T_LAST, A_N_OPEN, A_OOB, A_POL, A_BACK, A_BEFORE, A_DONE = range(10)
A_JUMP, A_JUMP_T, A_JUMP_XYP, A_SKIPPED, A_GAPS = range(10, 15)
ACC_SIZE = 15
NO_TIME = np.iinfo(np.int64).min
TIME_LIMIT = 2**61


def new_acc(t0: int, window_us: int) -> np.ndarray:
    """Accumulators for a stream whose first window starts at ``t0``."""
    acc = np.zeros(ACC_SIZE, np.int64)
    acc[A_T0] = t0
    acc[A_T_END] = t0 + window_us
    acc[A_T_LAST] = NO_TIME
    acc[A_JUMP_T] = NO_TIME
    return acc


@njit(cache=True, nogil=True, inline="always")
def _is_jump(t, t_ref, max_gap_us):
    # more than max_gap_us after or before t_ref (the latest accepted time, or the open window's
    # start); the caller has checked |t| <= TIME_LIMIT, and an origin beyond it makes every event
    # a jump, so nothing overflows
    if t_ref > TIME_LIMIT or t_ref < -TIME_LIMIT:
        return True
    return t - t_ref > max_gap_us or t_ref - t > max_gap_us


@njit(cache=True, nogil=True, inline="always")
def _unpack(words, i):
    """(x, y, p, t) of event ``i`` of the flat uint64 view, as int64 (inlined where it is called)."""
    x, y, p = xyp(words[2 * i])
    return np.int64(x), np.int64(y), np.int64(p), np.int64(words[2 * i + 1])


@njit(cache=True, nogil=True)
def _add_run(words, i, n, width, height, xmap, ymap, flat, hw, pw, t_last, t_end):
    """Add events from ``i`` on to ``flat`` while they are valid and before ``t_end``; the
    caller has checked that event ``i`` is at or past the origin, so every later event at or
    past the running time is too. Returns the first index not added and the running time."""
    while i < n:
        x, y, p, t = _unpack(words, i)
        if x >= width or y >= height or p > 1 or t < t_last or t >= t_end:
            break
        t_last = t
        flat[p * hw + ymap[y] * pw + xmap[x]] += 1.0
        i += 1
    return i, t_last


@njit(cache=True, nogil=True, inline="always")
def _emit_open(out, out_counts, out_touched, n_out, partial, n_open, touched, acc):
    """Copy the open window out as completed window ``n_out`` and clear it; returns n_out + 1."""
    out[n_out] = partial
    out_counts[n_out] = n_open
    out_touched[n_out] = touched
    acc[A_DONE] += n_open
    partial[:] = 0
    return n_out + 1


@njit(cache=True, nogil=True)
def bin_windows(words, start, width, height, xmap, ymap, window_us, acc, partial, out, out_counts, out_touched,
                max_gap_us=0):
    """Process events from index ``start``; returns ``(next index, windows written to out)``.

    ``out_counts[i]``: events in completed window i; ``out_touched[i]``: 1 if an event of
    window i arrived in this call (for the latency of the window's last event).
    ``max_gap_us``: the clock-jump limit (module docstring); 0: none.
    """
    n = words.shape[0] // 2
    cap = out.shape[0]
    n_out = 0
    hw = partial.shape[1] * partial.shape[2]
    pw = partial.shape[2]
    flat = partial.reshape(-1)
    touched = 0
    t_end = acc[A_T_END]
    t_last = acc[A_T_LAST]
    t0 = acc[A_T0]
    n_open = acc[A_N_OPEN]
    i = start
    while i < n:
        x, y, p, t = _unpack(words, i)
        if x < width and y < height and p <= 1 and t >= t_last and t >= t0 and t < t_end:
            # the common case, in a tight loop: valid events inside the open window
            j, t_last = _add_run(words, i, n, width, height, xmap, ymap, flat, hw, pw, t_last, t_end)
            n_open += j - i
            touched = 1
            i = j
            acc[A_JUMP_T] = NO_TIME   # accepted events: a pending jump candidate was an outlier
            continue
        if x >= width or y >= height:
            acc[A_OOB] += 1
        elif p > 1:
            acc[A_POL] += 1
        elif max_gap_us > 0 and (t > TIME_LIMIT or t < -TIME_LIMIT):
            acc[A_JUMP] += 1            # no clock: rejected outright
        elif max_gap_us > 0 and _is_jump(t, t_last if t_last != NO_TIME else t_end - window_us, max_gap_us):
            tc = acc[A_JUMP_T]
            if tc == NO_TIME or t < tc:
                acc[A_JUMP_T] = t       # a new candidate: held (rejected while it waits)
                acc[A_JUMP_XYP] = x | (y << 16) | (p << 32)
                acc[A_JUMP] += 1
            else:
                # confirmed: close the open window, skip the gap, start again at the candidate
                # (in the first window); this event is looked at again on the next call
                if n_out == cap:
                    break
                n_out = _emit_open(out, out_counts, out_touched, n_out, partial, n_open, touched, acc)
                k_next = acc[A_K] + 1
                if tc > t_last and -TIME_LIMIT <= t0 <= TIME_LIMIT:   # (an absurd origin: no count)
                    acc[A_SKIPPED] += max(np.int64(0), (tc - t0) // window_us - k_next)
                acc[A_K] = k_next
                acc[A_T0] = tc - k_next * window_us
                acc[A_GAPS] += 1
                acc[A_JUMP] -= 1
                acc[A_JUMP_T] = NO_TIME
                c = acc[A_JUMP_XYP]
                flat[(c >> 32) * hw + ymap[(c >> 16) & 0xFFFF] * pw + xmap[c & 0xFFFF]] += 1.0
                n_open = 1
                touched = 1
                t_end = tc + window_us
                t_last = tc
                break
        elif t < t_last:
            acc[A_JUMP_T] = NO_TIME
            acc[A_BACK] += 1
        elif t < t0:
            acc[A_JUMP_T] = NO_TIME
            t_last = t
            acc[A_BEFORE] += 1
        else:
            acc[A_JUMP_T] = NO_TIME
            if t >= t_end:
                # close the open window, then any empty ones, until t is inside the open window
                if n_out == cap:
                    break
                n_out = _emit_open(out, out_counts, out_touched, n_out, partial, n_open, touched, acc)
                acc[A_K] += 1
                n_open = 0
                touched = 0
                t_end += window_us
                while t >= t_end and n_out < cap:
                    out[n_out] = 0
                    out_counts[n_out] = 0
                    out_touched[n_out] = 0
                    n_out += 1
                    acc[A_K] += 1
                    t_end += window_us
                if t >= t_end:
                    break   # out is full of empty windows; this event is looked at again next call
            t_last = t
            flat[p * hw + ymap[y] * pw + xmap[x]] += 1.0
            n_open += 1
            touched = 1
        i += 1
    acc[A_T_END] = t_end
    acc[A_T_LAST] = t_last
    acc[A_N_OPEN] = n_open
    # whether the open window got an event in this call is returned through out_touched[cap]
    out_touched[cap] = touched
    return i, n_out


def _is_jump_reference(t, t_ref, max_gap_us):
    return abs(t_ref) > TIME_LIMIT or abs(t - t_ref) > max_gap_us


def bin_windows_reference(events, width, height, input_size, window_us, t0, max_gap_us=0):
    """Plain definition over a whole stream: ``(windows [n, 2, h, w] float32 counts of the
    completed windows, open window, counts of reasons, clock)``; ``clock`` holds the windows
    skipped and the re-anchors at clock jumps. An event in the open window, in time order, is
    accepted before any other check. The kernel over any cuts equals this."""
    w, h = input_size
    ev = np.asarray(events)
    x, y, t = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"].astype(np.int64)
    p = ev["p"].astype(np.int64) & 0xFFFF
    counts = {"oob": 0, "pol": 0, "back": 0, "before": 0, "jump": 0}
    clock = {"skipped": 0, "gaps": 0}
    frames = {}
    t_last, cand = NO_TIME, None    # cand: (t, x, y, p) of the held candidate
    k_max = 0     # the open window

    def add(k, xi, yi, pi):
        f = frames.setdefault(k, np.zeros((2, h, w), np.float32))
        f[pi, yi * h // height, xi * w // width] += 1

    i = 0
    while i < len(ev):
        ti = int(t[i])
        if x[i] >= width or y[i] >= height:
            counts["oob"] += 1
        elif p[i] > 1:
            counts["pol"] += 1
        elif ti >= t_last and t0 + k_max * window_us <= ti < t0 + (k_max + 1) * window_us:
            cand = None                 # in the open window, in time order: accepted
            t_last = ti
            add(k_max, x[i], y[i], p[i])
        elif max_gap_us > 0 and abs(ti) > TIME_LIMIT:
            counts["jump"] += 1
        elif max_gap_us > 0 and _is_jump_reference(ti, t_last if t_last != NO_TIME else t0 + k_max * window_us,
                                                   max_gap_us):
            if cand is None or ti < cand[0]:
                cand = (ti, int(x[i]), int(y[i]), int(p[i]))
                counts["jump"] += 1
            else:                       # confirmed: windows start again at the candidate, in the first
                tc = cand[0]
                k_next = k_max + 1
                if tc > t_last and abs(t0) <= TIME_LIMIT:
                    clock["skipped"] += max(0, (tc - t0) // window_us - k_next)
                t0, k_max, t_last = tc - k_next * window_us, k_next, tc
                add(k_next, *cand[1:])
                counts["jump"] -= 1
                clock["gaps"] += 1
                cand = None
                continue                # this event again, against the new time
        elif ti < t_last:
            cand = None
            counts["back"] += 1
        elif ti < t0:
            cand = None
            t_last = ti
            counts["before"] += 1
        else:
            cand = None
            t_last = ti
            k = (ti - t0) // window_us
            k_max = max(k_max, k)
            add(k, x[i], y[i], p[i])
        i += 1
    blank = np.zeros((2, h, w), np.float32)
    done = np.stack([frames.get(k, blank) for k in range(k_max)]) if k_max else np.zeros((0, 2, h, w), np.float32)
    return done, frames.get(k_max, blank), counts, clock
