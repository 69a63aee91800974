"""Windowed dense encodings (numba) beside plain references they must equal: the exponential
time surface and the hybrid rate + time-to-first-spike code.

Windows are ``[t0 + k*w, t0 + (k+1)*w)``, cut in stream order as ``EventReader.by_time``
cuts them: an event at or after the open window's end closes it (and any empty windows
after it); an event whose time went backwards stays in the open window. An event's window
is ``max(open window, (t - t0) // w)``. The kernels read events from ``words`` (an
EVENT_DTYPE array viewed as ``uint64[2n]``; polarity channel = ``p != 0``), update the
per-pixel state in place (callers pass copies), write one frame per closed window into
``out`` (zero-filled float32, ``[frames, channels, H, W]`` flattened to ``[frames, C * H * W]``),
and return -1, or the index of the first event outside ``width x height``.

State arrays are flat: index ``p * H * W + y * W + x``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .words import xyp

NEVER = np.iinfo(np.int64).min  # "this pixel has not fired"
NONE_YET = np.iinfo(np.int64).max  # hybrid ``first_t`` of a pixel with no event in the open window


@njit(cache=True, nogil=True)
def _decode(word, width, height):
    """(x, y, polarity channel (p != 0), inside the geometry) as int64 / bool."""
    xw, yw, pw = xyp(word)
    x, y = np.int64(xw), np.int64(yw)
    return x, y, np.int64(pw != 0), x < width and y < height


# -- time surface ---------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def surface_frame(last_t, sample_t, tau, frame):
    """frame[j] = exp((last_t[j] - sample_t) / tau), 0 where last_t[j] is NEVER."""
    for j in range(last_t.shape[0]):
        lt = last_t[j]
        frame[j] = np.exp((lt - sample_t) / tau) if lt != NEVER else 0.0


@njit(cache=True, nogil=True)
def time_surface_kernel(words, last_t, width, height, t0, window, time_window, tau, out):
    """Apply events to ``last_t`` (int64[2*H*W]); each closed window k gives the frame sampled at
    its end ``t0 + (k+1)*w`` into ``out[f]`` (float32[frames, 2*H*W])."""
    n = words.shape[0] // 2
    hw = width * height
    f = 0
    end = t0 + (window + 1) * time_window
    for i in range(n):
        x, y, p, inside = _decode(words[2 * i], width, height)
        if not inside:
            return i
        t = np.int64(words[2 * i + 1])
        if t >= end:  # (no division per event: only when a window closes)
            k = (t - t0) // time_window
            while window < k:
                surface_frame(last_t, t0 + (window + 1) * time_window, tau, out[f])
                f += 1
                window += 1
            end = t0 + (window + 1) * time_window
        last_t[p * hw + y * width + x] = t
    return -1


def time_surface_reference(x, y, p, t, sensor_size, t0, time_window, tau):
    """Plain numpy over a whole stream: frames float32[T, 2, H, W] of every window from the
    one holding t0 to the latest event's (none for no events); the encoder's window count
    rule may keep one fewer."""
    w, h = sensor_size
    win = np.maximum.accumulate(np.maximum((np.asarray(t, np.int64) - t0) // time_window, 0))
    last_t = np.full((2, h, w), NEVER, np.int64)
    frames = []
    for k in range(int(win[-1]) + 1 if len(t) else 0):
        for i in np.flatnonzero(win == k):  # in stream order: the latest event wins
            last_t[int(p[i] != 0), y[i], x[i]] = t[i]
        s = t0 + (k + 1) * time_window
        seen = last_t != NEVER
        frames.append(np.where(seen, np.exp(np.where(seen, last_t - s, 0) / tau), 0.0))
    return np.array(frames, np.float32).reshape(-1, 2, h, w)


# -- hybrid coding --------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def hybrid_frame(counts, first_t, window_start, time_window, count_clip, latency_bins, frame):
    """Write one window's code into ``frame`` (float32[C * H * W], zero-filled) and clear
    ``counts`` and ``first_t`` (to NONE_YET): channels [rate p0, rate p1, ttfs p0, ttfs p1, latency p0 bins.., p1 bins..]."""
    hw2 = counts.shape[0]
    hw = hw2 // 2
    for j in range(hw2):
        c = counts[j]
        if c > 0:
            p = j // hw
            pix = j - p * hw
            d = max(first_t[j] - window_start, 0)
            frame[j] = min(c, count_clip) / count_clip
            frame[hw2 + j] = 1.0 - d / time_window
            if latency_bins > 0:
                b = d * latency_bins // time_window
                frame[2 * hw2 + (p * latency_bins + b) * hw + pix] = 1.0
            counts[j] = 0
            first_t[j] = NONE_YET


@njit(cache=True, nogil=True)
def hybrid_kernel(words, counts, first_t, width, height, t0, window, dirty, time_window, count_clip,
                  latency_bins, out):
    """Count events per pixel and polarity (``counts`` int32[2*H*W]) and keep the earliest time
    (``first_t`` int64[2*H*W], NONE_YET where none) of the open window; each closed window
    that holds events is coded into ``out[f]``. ``dirty``: the open window already holds events."""
    n = words.shape[0] // 2
    hw = width * height
    f = 0
    end = t0 + (window + 1) * time_window
    for i in range(n):
        x, y, p, inside = _decode(words[2 * i], width, height)
        if not inside:
            return i
        t = np.int64(words[2 * i + 1])
        if t >= end:
            k = (t - t0) // time_window
            if dirty:
                hybrid_frame(counts, first_t, t0 + window * time_window, time_window, count_clip,
                             latency_bins, out[f])
                dirty = False
            f += k - window
            window = k
            end = t0 + (window + 1) * time_window
        j = p * hw + y * width + x
        first_t[j] = min(first_t[j], t)
        counts[j] += 1
        dirty = True
    return -1


def hybrid_reference(x, y, p, t, sensor_size, t0, time_window, count_clip, latency_bins):
    """Plain numpy over a whole stream (histograms with ``np.add.at``): float32[T, C, H, W] of
    every window from the one holding t0 to the latest event's (as ``time_surface_reference``)."""
    w, h = sensor_size
    t = np.asarray(t, np.int64)
    pc = (np.asarray(p) != 0).astype(np.int64)
    win = np.maximum.accumulate(np.maximum((t - t0) // time_window, 0))
    n_frames = int(win[-1]) + 1 if len(t) else 0
    out = np.zeros((n_frames, 4 + 2 * latency_bins, h, w))
    for k in range(n_frames):
        sel = win == k
        count = np.zeros((2, h, w), np.int64)
        np.add.at(count, (pc[sel], y[sel], x[sel]), 1)
        first = np.full((2, h, w), np.iinfo(np.int64).max)
        np.minimum.at(first, (pc[sel], y[sel], x[sel]), t[sel])
        d = np.maximum(first - (t0 + k * time_window), 0)
        hit = count > 0
        out[k, 0:2] = np.minimum(count, count_clip) / count_clip
        out[k, 2:4] = np.where(hit, 1.0 - d / time_window, 0.0)
        if latency_bins:
            for pol, yy, xx in zip(*np.nonzero(hit)):
                out[k, 4 + pol * latency_bins + d[pol, yy, xx] * latency_bins // time_window, yy, xx] = 1.0
    return out.astype(np.float32)
