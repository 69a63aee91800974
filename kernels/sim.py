"""Event-simulator kernels (numba) beside the plain references they must equal.

Pixels are flat indices ``y * width + x``. Log intensities are float32 frames; every other
quantity is float64 or int64, and both implementations do the same floating-point operations in
the same order (numba does not contract them into fused multiply-adds without fastmath), so they
agree bit for bit. Hot loops index slices from 0 (``s = a[start:stop]; s[j]``): numba checks
``a[start + j]`` for a negative index to wrap, and that check keeps LLVM from vectorising.

- ``log_region``: ``log(I + eps)`` of the pixels of a rectangle of a frame, in float32 with
  Cephes' ``logf`` formula (exponent and mantissa split from the bits as musl does, a degree-9
  polynomial;
  within 2 float32 ulp of the true log), written so that numba vectorises it; the reference does
  the same float32 operations in numpy, so the two agree bit for bit. Counts the pixels whose
  ``I + eps`` is not a positive, finite, normal float32.
- ``exceeding_box``: the bounding rectangle, within a rectangle, of the pixels whose log
  intensity changed by more than a limit between two samples (the caller refines only there).
- ``crossings``: one sample interval ``(ta, tb]`` (float microseconds), for the pixels of a
  rectangle ``region`` outside a rectangle ``hole`` (rectangles are ``(y0, y1, x0, x1)``, ends
  excluded). Per pixel, with
  ``d = l1 - ref``: ``n = floor(|d| / thr + TOLERANCE)`` ON events (``d > 0``, ``thr_on``) or OFF
  events (``d < 0``, ``thr_off``); the c-th crosses ``ref +- c * thr``, at the time linearly
  interpolated between the two frames, rounded up to whole microseconds and kept after
  ``t_floor``; ``ref`` moves to ``ref +- n * thr`` (in place). Events are written from index
  ``start``, pixel by pixel (increasing flat index). A pixel whose events do not fit is left
  untouched and the kernel returns there: the caller grows the buffers and resumes from that pixel.
- ``interval_crossings``: the ``crossings`` of a sample interval whose fast rectangle was
  refined (its halves, then the rest), in one call, growing the buffers itself.
- ``refractory_pass``: walks candidate events in ``order`` (sorted by time); an event of a pixel
  less than ``refractory_us`` after that pixel's last kept event is dropped and counted in
  ``suppressed[kind]``; ``last_t`` (int64 per pixel) is updated in place by kept events.
- ``shift_reference``: a noise event that resets the pixel (shot noise) moves its reference by
  one threshold in its direction.
- ``candidate_bounds``: per pixel, the float32 levels ``ref -+ CANDIDATE * thr`` outside which
  ``crossings`` looks at a pixel closely; ``crossings`` and ``shift_reference`` keep them in step
  with the references they move.
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
#: ``crossings`` looks closely only at pixels whose log intensity is outside ``candidate_bounds``,
#: ``ref -+ CANDIDATE * thr`` rounded to float32: a superset of those that fire (which need
#: ``|d| / thr >= 1 - TOLERANCE``; float32 rounding, ~1e-6, is far below the 1 % margin), found
#: for every pixel with two float32 comparisons
CANDIDATE = 0.99


@njit(cache=True, nogil=True, inline="always")
def _event_time(a, b, level, ta, tb, t_floor):
    frac = 0.0 if b == a else (level - a) / (b - a)
    frac = min(max(frac, 0.0), 1.0)
    t = np.int64(math.ceil(ta + frac * (tb - ta)))
    return t if t > t_floor else t_floor + 1


# Cephes logf: log(m 2^e) = e ln 2 + log(m), m in [sqrt(1/2), sqrt(2)), ln 2 split in two parts
_LOG_POLY = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
             -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)
_LN2_LO, _LN2_HI = -2.12194440e-4, 0.693359375
_FLT_MIN_NORMAL = 1.1754943508222875e-38
_SQRT_HALF_BITS = 0x3F3504F3  # float32(sqrt(1/2))
_MIN_NORMAL_BITS, _INF_BITS = 0x00800000, 0x7F800000  # as int32: negative floats are negative


@njit(cache=True, nogil=True, inline="always")
def _log_poly(f):
    c = _LOG_POLY
    p = np.float32(c[0]) * f + np.float32(c[1])
    p = p * f + np.float32(c[2])
    p = p * f + np.float32(c[3])
    p = p * f + np.float32(c[4])
    p = p * f + np.float32(c[5])
    p = p * f + np.float32(c[6])
    p = p * f + np.float32(c[7])
    p = p * f + np.float32(c[8])
    return p


@njit(cache=True, nogil=True)
def _log_span(img, start, n, eps32, out, xs, expo, mant_bits):
    """``log_region`` of the flat pixels ``start..start+n-1``: three branch-free passes, each vectorised."""
    one = np.float32(1.0)
    ln2_lo, ln2_hi, half = np.float32(_LN2_LO), np.float32(_LN2_HI), np.float32(0.5)
    x_bits, mant = xs.view(np.int32), mant_bits.view(np.float32)
    src, dst = img[start:start + n], out[start:start + n]  # indexed from 0: no wraparound checks, so it vectorises
    for j in range(n):
        xs[j] = src[j] + eps32
    good = 0
    for j in range(n):  # x = m 2^e with m in [sqrt(1/2), sqrt(2)), from the bits (as musl's logf)
        bits = x_bits[j]
        good += (bits >= _MIN_NORMAL_BITS) & (bits < _INF_BITS)  # positive, normal and finite
        b = bits - _SQRT_HALF_BITS
        expo[j] = b >> 23
        mant_bits[j] = (b & 0x007FFFFF) + _SQRT_HALF_BITS
    for j in range(n):
        e = np.float32(expo[j])
        f = mant[j] - one
        z = f * f
        r = _log_poly(f) * f * z
        r = r + ln2_lo * e
        r = r - half * z
        r = f + r
        dst[j] = r + ln2_hi * e
    return n - good


@njit(cache=True, nogil=True)
def log_region(img, eps, width, y0, y1, x0, x1, out, xs, expo, mant_bits):
    """``out = log(img + eps)`` (float32, see the module docstring) over rows ``y0..y1-1``,
    columns ``x0..x1-1`` of flat frames; other pixels are untouched. ``xs`` (float32), ``expo``
    and ``mant_bits`` (int32) are scratch as long as the frame. Returns how many pixels were not
    positive, finite and normal."""
    eps32 = np.float32(eps)
    if x0 == 0 and x1 == width:  # whole rows: one span
        return _log_span(img, y0 * width, (y1 - y0) * width, eps32, out, xs, expo, mant_bits)
    # part rows: packed into one span and back (span by span, short rows ran mostly in the loops' ends)
    w, n = x1 - x0, max(y1 - y0, 0) * max(x1 - x0, 0)
    if n == 0:
        return 0
    packed, logs = np.empty(n, np.float32), np.empty(n, np.float32)
    for y in range(y0, y1):
        _copy(img[y * width + x0:y * width + x1], packed[(y - y0) * w:(y - y0 + 1) * w])
    bad = _log_span(packed, 0, n, eps32, logs, xs, expo, mant_bits)
    for y in range(y0, y1):
        _copy(logs[(y - y0) * w:(y - y0 + 1) * w], out[y * width + x0:y * width + x1])
    return bad


@njit(cache=True, nogil=True, inline="always")
def _copy(src, dst):
    for j in range(src.shape[0]):
        dst[j] = src[j]


@njit(cache=True, nogil=True)
def exceeding_box(l0, l1, limit, width, y0, y1, x0, x1):
    """``(by0, by1, bx0, bx1)``: the bounding rectangle of the pixels of rows ``y0..y1-1``,
    columns ``x0..x1-1`` with ``|l1 - l0| > limit`` (in float64); ``by0 == by1`` when none is."""
    by0, by1, bx0, bx1 = y1, y1, x1, x0
    for y in range(y0, y1):
        row = y * width
        a, b = l0[row + x0:row + x1], l1[row + x0:row + x1]  # indexed from 0, so the count vectorises
        count = 0
        for j in range(b.shape[0]):
            count += abs(np.float64(b[j]) - np.float64(a[j])) > limit
        if count:
            by0 = min(by0, y)
            by1 = y + 1
            # the row's first and last such column matter only outside the columns found so far:
            # look from each end inwards, no further than those
            for j in range(bx0 - x0):
                if abs(np.float64(b[j]) - np.float64(a[j])) > limit:
                    bx0 = x0 + j
                    break
            for j in range(b.shape[0] - 1, bx1 - x0 - 1, -1):
                if abs(np.float64(b[j]) - np.float64(a[j])) > limit:
                    bx1 = x0 + j + 1
                    break
    if by0 == y1:
        return y1, y1, x1, x1
    return by0, by1, bx0, bx1


@njit(cache=True, nogil=True)
def crossings(l0, l1, ref, thr_on, thr_off, ta, tb, t_floor, out_pix, out_t, out_p, start, first_pixel,
              width, y0, y1, x0, x1, hy0, hy1, hx0, hx1, bounds, mask):
    """Threshold crossings of pixels ``first_pixel..`` of the region ``(y0, y1, x0, x1)`` outside
    the hole ``(hy0, hy1, hx0, hx1)`` between two log frames; see the module docstring.

    ``bounds`` (float32[2, n]) is ``candidate_bounds`` of ``ref``, kept so for the pixels that
    fire. ``mask`` is uint8 scratch of ``mask_size(width)``. Returns ``(stop, end)``: pixels before
    ``stop`` are done (``stop == len(l1)`` when all are) and the events written end at ``end``.
    """
    n_pix = l1.shape[0]
    has_hole = hy0 < hy1 and hx0 < hx1
    words = mask.view(np.uint64)
    k = start
    for y in range(max(y0, first_pixel // width), y1):
        in_hole = has_hole and hy0 <= y < hy1
        for seg in range(2 if in_hole else 1):
            a, b = x0, x1
            if in_hole:
                a, b = (x0, hx0) if seg == 0 else (hx1, x1)
            row = y * width + a
            n_seg = b - a
            l1s = l1[row:row + n_seg]  # indexed from 0: no wraparound checks, so it vectorises
            lows, highs = bounds[0, row:row + n_seg], bounds[1, row:row + n_seg]
            for j in range(n_seg):  # branch free, in float32; most rows have no candidate
                mask[j] = (l1s[j] >= highs[j]) | (l1s[j] <= lows[j])
            n_words = (n_seg + 7) // 8
            for j in range(n_seg, n_words * 8):
                mask[j] = 0
            candidates = np.uint64(0)
            for w in range(n_words):  # any candidate, 8 pixels at a time (a count in the loop above
                candidates |= words[w]  # would keep it from vectorising well)
            if candidates == 0:
                continue
            for w in range(n_words):  # then skip 8 quiet pixels at a time
                if words[w] == 0:
                    continue
                for j in range(8 * w, min(8 * w + 8, n_seg)):
                    i = row + j
                    if mask[j] and i >= first_pixel:
                        k = _pixel_crossings(i, l0, l1, ref, thr_on, thr_off, ta, tb, t_floor, out_pix, out_t, out_p, k,
                                             bounds)
                        if k < 0:
                            return i, -k - 1
    return n_pix, k


@njit(cache=True, nogil=True)
def interval_crossings(l0, lm, l1, ref, thr_on, thr_off, ta, tb, t_floor, out_pix, out_t, out_p, start, width,
                       y0, y1, x0, x1, by0, by1, bx0, bx1, split, bounds, mask):
    """The crossings of one sample interval ``(ta, tb]`` of region ``(y0, y1, x0, x1)`` whose
    rectangle ``box = (by0, by1, bx0, bx1)`` was refined: with ``split``, the box's pixels over
    ``(ta, tm]`` then ``(tm, tb]`` (``tm = 0.5 * (ta + tb)``, the mid frame ``lm`` holding them),
    then the other pixels of the region over ``(ta, tb]``; without, the box's pixels are left out
    (done by the caller) and ``lm`` is not read. The same events, in the same order, as the
    ``crossings`` calls for those parts; an empty box is the whole region. Events are written from
    ``start``; a full buffer is replaced by one twice as long (64 at least). Returns
    ``(out_pix, out_t, out_p, end)``."""
    tm = 0.5 * (ta + tb)
    n_pix = l1.shape[0]
    for part in range(0 if split and by0 < by1 and bx0 < bx1 else 2, 3):  # one call site: one compilation
        a, b, t0, t1 = (l0, lm, ta, tm) if part == 0 else (lm, l1, tm, tb) if part == 1 else (l0, l1, ta, tb)
        ry0, ry1, rx0, rx1 = (by0, by1, bx0, bx1) if part < 2 else (y0, y1, x0, x1)
        hy0, hy1, hx0, hx1 = (by1, by1, bx1, bx1) if part < 2 else (by0, by1, bx0, bx1)  # part < 2: no hole
        stop = 0
        while True:
            stop, start = crossings(a, b, ref, thr_on, thr_off, t0, t1, t_floor, out_pix, out_t, out_p, start, stop,
                                    width, ry0, ry1, rx0, rx1, hy0, hy1, hx0, hx1, bounds, mask)
            if stop == n_pix:
                break
            out_pix, out_t, out_p = _doubled(out_pix, start), _doubled(out_t, start), _doubled(out_p, start)
    return out_pix, out_t, out_p, start


@njit(cache=True, nogil=True)
def _doubled(a, used):
    b = np.empty(max(2 * a.shape[0], 64), a.dtype)
    for j in range(used):
        b[j] = a[j]
    return b


@njit(cache=True, nogil=True, inline="always")
def _pixel_crossings(i, l0, l1, ref, thr_on, thr_off, ta, tb, t_floor, out_pix, out_t, out_p, k, bounds):
    """Pixel ``i``'s events written from ``k``; returns the new end, or ``-k - 1`` when they do not fit."""
    bl = np.float64(l1[i])
    r = ref[i]
    d = bl - r
    if d > 0:
        th, pol, sign = thr_on[i], ON, 1.0
        n = np.int64(math.floor(d / th + TOLERANCE))
    else:
        th, pol, sign = thr_off[i], OFF, -1.0
        n = np.int64(math.floor(-d / th + TOLERANCE))
    if n <= 0:
        return k
    if k + n > out_pix.shape[0]:
        return -k - 1
    al = np.float64(l0[i])
    for c in range(1, n + 1):
        out_pix[k] = i
        out_t[k] = _event_time(al, bl, r + sign * c * th, ta, tb, t_floor)
        out_p[k] = pol
        k += 1
    ref[i] = r + sign * n * th
    _set_bounds(i, ref, thr_on, thr_off, bounds)
    return k


@njit(cache=True, nogil=True, inline="always")
def _set_bounds(i, ref, thr_on, thr_off, bounds):
    bounds[0, i] = np.float32(ref[i] - CANDIDATE * thr_off[i])
    bounds[1, i] = np.float32(ref[i] + CANDIDATE * thr_on[i])


@njit(cache=True, nogil=True)
def candidate_bounds(ref, thr_on, thr_off, bounds):
    """``bounds[0] = float32(ref - CANDIDATE * thr_off)``, ``bounds[1] = float32(ref + CANDIDATE * thr_on)``."""
    for i in range(ref.shape[0]):
        _set_bounds(i, ref, thr_on, thr_off, bounds)


def mask_size(width: int) -> int:
    """Length of the ``mask`` scratch ``crossings`` needs (a whole number of 8-byte words)."""
    return (width + 7) // 8 * 8


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
def shift_reference(ref, pix, p, thr_on, thr_off, bounds):
    """``ref[pix] += thr_on`` for ON events, ``-= thr_off`` for OFF ones, in order (in place);
    their ``candidate_bounds`` follow."""
    for j in range(pix.shape[0]):
        q = pix[j]
        if p[j] == ON:
            ref[q] = ref[q] + thr_on[q]
        else:
            ref[q] = ref[q] - thr_off[q]
        _set_bounds(q, ref, thr_on, thr_off, bounds)


# ---------------------------------------------------------------- plain references


def _event_time_reference(a, b, level, ta, tb, t_floor):
    frac = 0.0 if b == a else (level - a) / (b - a)
    frac = min(max(frac, 0.0), 1.0)
    t = int(math.ceil(ta + frac * (tb - ta)))
    return t if t > t_floor else t_floor + 1


def log_region_reference(img, eps):
    """Plain numpy ``log_region`` of a whole array (the same float32 operations): float32 logs
    (bad pixels, see ``log_region_bad_reference``, get unspecified values)."""
    f32 = np.float32
    x = np.asarray(img, np.float32) + f32(eps)
    b = x.view(np.int32).astype(np.int64) - _SQRT_HALF_BITS
    e = (b >> 23).astype(np.float32)
    f = ((b & 0x007FFFFF) + _SQRT_HALF_BITS).astype(np.int32).view(np.float32) - f32(1.0)
    z = f * f
    p = f32(_LOG_POLY[0]) * f + f32(_LOG_POLY[1])
    for c in _LOG_POLY[2:]:
        p = p * f + f32(c)
    r = p * f * z
    r = r + f32(_LN2_LO) * e
    r = r - f32(0.5) * z
    r = f + r
    return r + f32(_LN2_HI) * e


def log_region_bad_reference(img, eps):
    """How many pixels ``log_region`` counts as bad: ``img + eps`` (float32) not a positive,
    finite, normal number."""
    x = np.asarray(img, np.float32) + np.float32(eps)
    return int((~((x >= np.float32(_FLT_MIN_NORMAL)) & (x < np.float32(np.inf)))).sum())


def exceeding_box_reference(l0, l1, limit, width, y0, y1, x0, x1):
    """Plain numpy ``exceeding_box``."""
    height = len(l1) // width
    over = np.abs(l1.astype(np.float64) - l0.astype(np.float64)).reshape(height, width) > limit
    inside = np.zeros_like(over)
    inside[y0:y1, x0:x1] = True
    ys, xs = np.nonzero(over & inside)
    if len(ys) == 0:
        return y1, y1, x1, x1
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def crossings_reference(l0, l1, ref_in, thr_on, thr_off, ta, tb, t_floor, width=None, region=None, hole=None):
    """Plain-Python ``crossings`` of every pixel of ``region`` (default all) outside ``hole``
    (default none): ``(pix, t, p, ref_out)`` arrays."""
    pix, ts, ps = [], [], []
    ref_out = np.array(ref_in, dtype=np.float64)
    width = len(l1) if width is None else width

    def inside(rect, y, x):
        return rect is not None and rect[0] <= y < rect[1] and rect[2] <= x < rect[3]

    for i in range(len(l1)):
        y, x = divmod(i, width)
        if (region is not None and not inside(region, y, x)) or inside(hole, y, x):
            continue
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


def candidate_bounds_reference(ref, thr_on, thr_off):
    """Plain numpy ``candidate_bounds``: float32[2, n]."""
    return np.stack([(ref - CANDIDATE * thr_off).astype(np.float32), (ref + CANDIDATE * thr_on).astype(np.float32)])


def shift_reference_reference(ref, pix, p, thr_on, thr_off):
    """Plain-Python ``shift_reference`` (in place)."""
    for q, pol in zip(pix.tolist(), p.tolist()):
        ref[q] = ref[q] + thr_on[q] if pol == ON else ref[q] - thr_off[q]
