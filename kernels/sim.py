"""Event-simulator kernels (numba) beside the plain references they must equal.

Pixels are flat indices ``y * width + x``. Log intensities are float32 frames; every other
quantity is float64 or int64, and both implementations do the same float64 operations in the same
order (and call the same libm ``log``), so they agree bit for bit.

- ``changes_faster_than``: whether some pixel's log intensity changed by more than a limit
  between two samples (the caller then halves the interval).
- ``crossings``: one sample interval ``(ta, tb]`` (float microseconds). Per pixel, with
  ``d = l1 - ref``: ``n = floor(|d| / thr + TOLERANCE)`` ON events (``d > 0``, ``thr_on``) or OFF
  events (``d < 0``, ``thr_off``); the c-th crosses ``ref +- c * thr``, at the time linearly
  interpolated between the two frames, rounded up to whole microseconds and kept after
  ``t_floor``; ``ref`` moves to ``ref +- n * thr`` (in place). Events are written from index
  ``start``, pixel by pixel. A pixel whose events do not fit is left untouched and the kernel
  returns there: the caller grows the buffers and resumes from that pixel.
- ``log_intensity``: ``log(I + eps)`` of a frame, in float64 then rounded to float32, recomputed
  only where the intensity differs from the previous frame's (static pixels cost a copy).
- ``refractory_pass``: walks candidate events in ``order`` (sorted by time); an event of a pixel
  less than ``refractory_us`` after that pixel's last kept event is dropped and counted in
  ``suppressed[kind]``; ``last_t`` (int64 per pixel) is updated in place by kept events.
- ``shift_reference``: a noise event that resets the pixel (shot noise) moves its reference by
  one threshold in its direction.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

ON, OFF = 1, 0
NEVER = -(2 ** 62)  # "this pixel has not fired": far enough back for any refractory period
#: a change within this fraction of a threshold of n thresholds counts as n crossings (so that going
#: back and forth over the same levels, with float64 rounding, gives as many OFF as ON events)
TOLERANCE = 1e-7


@njit(cache=True, nogil=True, inline="always")
def _event_time(a, b, level, ta, tb, t_floor):
    frac = 0.0 if b == a else (level - a) / (b - a)
    frac = min(max(frac, 0.0), 1.0)
    t = np.int64(math.ceil(ta + frac * (tb - ta)))
    return t if t > t_floor else t_floor + 1


@njit(cache=True, nogil=True)
def changes_faster_than(l0, l1, limit):
    """Whether some pixel's log intensity changed by more than ``limit`` (a branch-free scan)."""
    exceeded = False
    for i in range(l1.shape[0]):
        exceeded |= abs(np.float64(l1[i]) - np.float64(l0[i])) > limit
    return exceeded


@njit(cache=True, nogil=True)
def crossings(l0, l1, ref, thr_on, thr_off, ta, tb, t_floor, out_pix, out_t, out_p, start, first_pixel,
              mask):
    """Threshold crossings of pixels ``first_pixel..`` between two log frames; see the module docstring.

    ``mask`` is uint8 scratch of ``mask_size(len(l1))``. Returns ``(stop, end)``: pixels before
    ``stop`` are done (``stop == len(l1)`` when all are) and the events written end at ``end``.
    """
    n_pix = l1.shape[0]
    for i in range(n_pix):  # branch free, so it vectorises: candidates have |d| >= thr / 2
        d = np.float64(l1[i]) - ref[i]
        mask[i] = (d >= 0.5 * thr_on[i]) | (-d >= 0.5 * thr_off[i])
    words = mask.view(np.uint64)  # then skip 8 quiet pixels at a time
    cap = out_pix.shape[0]
    k = start
    for w in range(first_pixel // 8, (n_pix + 7) // 8):
        if words[w] == 0:
            continue
        for i in range(max(8 * w, first_pixel), min(8 * w + 8, n_pix)):
            if not mask[i]:
                continue
            b = np.float64(l1[i])
            r = ref[i]
            d = b - r
            if d > 0:
                th, pol, sign = thr_on[i], ON, 1.0
                n = np.int64(math.floor(d / th + TOLERANCE))
            else:
                th, pol, sign = thr_off[i], OFF, -1.0
                n = np.int64(math.floor(-d / th + TOLERANCE))
            if n <= 0:
                continue
            if k + n > cap:
                return i, k
            a = np.float64(l0[i])
            for c in range(1, n + 1):
                out_pix[k] = i
                out_t[k] = _event_time(a, b, r + sign * c * th, ta, tb, t_floor)
                out_p[k] = pol
                k += 1
            ref[i] = r + sign * n * th
    return n_pix, k


def mask_size(n_pixels: int) -> int:
    """Length of the ``mask`` scratch ``crossings`` needs (a whole number of 8-byte words)."""
    return (n_pixels + 7) // 8 * 8


@njit(cache=True, nogil=True)
def log_intensity(img, prev_img, prev_log, eps, out):
    """``out = float32(log(float64(img) + eps))``, copied from ``prev_log`` where ``img == prev_img``.

    Returns how many recomputed pixels had ``img + eps`` not positive and finite."""
    bad = 0
    for i in range(img.shape[0]):
        v = img[i]
        if v == prev_img[i]:
            out[i] = prev_log[i]
        else:
            x = np.float64(v) + eps
            bad += not (x > 0.0 and x < np.inf)
            out[i] = np.float32(math.log(x)) if x > 0.0 else np.float32(np.nan)
    return bad


@njit(cache=True, nogil=True)
def refractory_pass(order, pix, t, kind, last_t, refractory_us, keep, suppressed):
    """Drop events within ``refractory_us`` of their pixel's last kept one; see the module docstring."""
    for j in range(order.shape[0]):
        i = order[j]
        q = pix[i]
        if t[i] - last_t[q] < refractory_us:
            keep[j] = False
            suppressed[kind[i]] += 1
        else:
            keep[j] = True
            last_t[q] = t[i]


@njit(cache=True, nogil=True)
def shift_reference(ref, pix, p, thr_on, thr_off):
    """``ref[pix] += thr_on`` for ON events, ``-= thr_off`` for OFF ones, in order (in place)."""
    for j in range(pix.shape[0]):
        q = pix[j]
        if p[j] == ON:
            ref[q] = ref[q] + thr_on[q]
        else:
            ref[q] = ref[q] - thr_off[q]


# ---------------------------------------------------------------- plain references


def _event_time_reference(a, b, level, ta, tb, t_floor):
    frac = 0.0 if b == a else (level - a) / (b - a)
    frac = min(max(frac, 0.0), 1.0)
    t = int(math.ceil(ta + frac * (tb - ta)))
    return t if t > t_floor else t_floor + 1


def changes_faster_than_reference(l0, l1, limit):
    """Plain numpy ``changes_faster_than``."""
    return bool((np.abs(l1.astype(np.float64) - l0.astype(np.float64)) > limit).any())


def crossings_reference(l0, l1, ref_in, thr_on, thr_off, ta, tb, t_floor):
    """Plain-Python ``crossings`` of every pixel: ``(pix, t, p, ref_out)`` arrays."""
    pix, ts, ps = [], [], []
    ref_out = np.array(ref_in, dtype=np.float64)
    for i in range(len(l1)):
        a, b, r = float(l0[i]), float(l1[i]), float(ref_in[i])
        d = b - r
        sign, th, pol = (1.0, float(thr_on[i]), ON) if d > 0 else (-1.0, float(thr_off[i]), OFF)
        n = math.floor(sign * d / th + TOLERANCE)
        if n > 0:
            for c in range(1, n + 1):
                pix.append(i)
                ts.append(_event_time_reference(a, b, r + sign * c * th, ta, tb, t_floor))
                ps.append(pol)
            ref_out[i] = r + sign * n * th
    return (np.array(pix, np.int64), np.array(ts, np.int64), np.array(ps, np.int8), ref_out)


def log_intensity_reference(img, eps):
    """Plain-Python ``log_intensity`` (every pixel computed; libm's log, as numba's)."""
    def log(x):
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)

    return np.array([log(float(v) + eps) for v in img.tolist()], np.float32)


def refractory_reference(order, pix, t, kind, last_t, refractory_us, n_kinds):
    """Plain-Python ``refractory_pass``: ``last_t`` updated in place; returns (keep, suppressed)."""
    keep = np.zeros(len(order), bool)
    suppressed = np.zeros(n_kinds, np.int64)
    for j, i in enumerate(order.tolist()):
        q = int(pix[i])
        if int(t[i]) - int(last_t[q]) < refractory_us:
            suppressed[int(kind[i])] += 1
        else:
            keep[j] = True
            last_t[q] = t[i]
    return keep, suppressed


def shift_reference_reference(ref, pix, p, thr_on, thr_off):
    """Plain-Python ``shift_reference`` (in place)."""
    for q, pol in zip(pix.tolist(), p.tolist()):
        ref[q] = ref[q] + thr_on[q] if pol == ON else ref[q] - thr_off[q]
