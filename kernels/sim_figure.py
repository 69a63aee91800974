"""The simulator's interval loop for a scene drawn as an articulated figure, in one numba call.

``eventflow.sim.Simulator`` steps a scene grid interval by grid interval in Python: render the
interval's end sample, refine where the log intensity changes fast (a mid sample of the
rectangle that does, halved again up to ``max_depth`` times), threshold crossings
(``eventflow.kernels.sim.interval_crossings``), then the reference shifts of the interval's
shot noise. For the gesture scene (a figure posed and drawn by ``eventflow.kernels.raster``)
each sample costs about as much in Python glue and kernel dispatch as in drawing, so
``figure_intervals`` runs the same loop, with the same kernels in the same order, for all the
intervals of an ``advance`` at once. Its reference is the Simulator's generic loop over the
scene's ``render_log_region``: the two give the same events, references and log frame bit for
bit (tests/test_sim_figure.py).

A figure scene is given as three tuples:

- ``figure``: the first twelve arguments of ``eventflow.kernels.raster.figure_log_kernel``
  (pose tables, drawing tables, background, light, image scratch);
- ``timing``: ``(starts, ends, ramp)``, the gestures' start and end times (float64 arrays,
  seconds, sorted) and the ease-in / ease-out time, for ``figure_envelope``;
- ``lighting``: ``(level, flicker, flicker_hz, flicker_phase)`` for ``figure_gain``.

``figure_envelope`` and ``figure_gain`` do the float64 operations of the gesture scene's
``_envelope`` and ``_gain`` (powers through libm's ``pow``, as Python's ``**`` on floats), so
they agree bit for bit (tested on dense grids of times).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .raster import figure_log, figure_scratch
from .sim import exceeding_box, interval_crossings, shift_reference


@njit(cache=True, nogil=True)
def figure_envelope(starts, ends, ramp, t):
    """(segment, tau, w, W) at ``t`` seconds: the gesture under way (0 at rest), the time since
    it began, its ease ``w`` (0 at rest, 1 in full swing) and ``W``, the integral of ``w``."""
    i = np.searchsorted(starts, t, side="right") - 1
    if i < 0 or t >= ends[i]:
        return 0, 0.0, 0.0, 0.0
    s, e, r = starts[i], ends[i], ramp
    tau = t - s
    if tau < r:
        x = tau / r
        return i, tau, x * x * (3.0 - 2.0 * x), r * (x ** 3.0 - x ** 4.0 / 2.0)
    if t > e - r:
        y = (e - t) / r
        return i, tau, y * y * (3.0 - 2.0 * y), (e - s - r) - r * (y ** 3.0 - y ** 4.0 / 2.0)
    return i, tau, 1.0, r / 2.0 + tau - r


@njit(cache=True, nogil=True)
def figure_gain(level, flicker, flicker_hz, flicker_phase, t):
    """The lighting's gain at ``t`` seconds: ``level * (1 + flicker * sin(2 pi hz t + phase))``."""
    return level * (1.0 + flicker * math.sin(2.0 * math.pi * flicker_hz * t + flicker_phase))


@njit(cache=True, nogil=True)
def _sample(figure, timing, lighting, scratch, t_us, eps, out, y0, y1, x0, x1):
    t = t_us * 1e-6
    segment, tau, w, big_w = figure_envelope(timing[0], timing[1], timing[2], t)
    gain = figure_gain(lighting[0], lighting[1], lighting[2], lighting[3], t)
    return figure_log(figure, scratch, segment, tau, w, big_w, t, gain, eps, out, y0, y1, x0, x1)


@njit(cache=True, nogil=True)
def figure_intervals(figure, timing, lighting, eps, k0, k1, dt, frames, ref, thr_on, thr_off, bounds, mask,
                     out_pix, out_t, out_p, start, shot_pix, shot_p, shots_by_interval, refine_limit, max_depth):
    """Grid intervals ``k0..k1-1`` (each ``(k dt, (k + 1) dt]`` us) of a figure scene.

    ``frames`` (float32[2 + max_depth, H * W]) holds the log frame at ``k0 dt`` in row 0; rows 1
    and up are scratch (the other end sample, then one mid sample per refinement depth).
    ``ref`` and ``bounds`` are updated in place; events are written from ``start`` into the
    buffers, which are replaced by longer ones when full; ``shots_by_interval[k - k0]`` ..
    ``shots_by_interval[k - k0 + 1]`` index the shot noise of interval ``k`` in ``shot_pix`` and
    ``shot_p``. Returns ``(out_pix, out_t, out_p, end, samples, row, bad, bad_t_us)``: ``row``
    is the frame holding the log frame at ``k1 dt``; ``bad > 0`` when a sample had that many
    pixels that are not positive and finite (at ``bad_t_us``; the loop stopped there).
    """
    height, width = figure[11].shape
    scratch = figure_scratch(figure)
    depth_limit = max(max_depth, 1)
    # one node per depth on the path being refined: times, frame rows, region, box, mid row, split, phase
    t_lo, t_hi = np.zeros(depth_limit), np.zeros(depth_limit)
    f_lo, f_hi, f_mid = np.zeros(depth_limit, np.int64), np.zeros(depth_limit, np.int64), np.zeros(depth_limit, np.int64)
    region, box = np.zeros((depth_limit, 4), np.int64), np.zeros((depth_limit, 4), np.int64)
    split, phase = np.zeros(depth_limit, np.bool_), np.zeros(depth_limit, np.int64)
    a, b, samples = 0, 1, 0
    for k in range(k0, k1):
        ta, tb = k * dt, (k + 1) * dt
        bad = _sample(figure, timing, lighting, scratch, float(tb), eps, frames[b], 0, height, 0, width)
        if bad:
            return out_pix, out_t, out_p, start, samples, a, bad, float(tb)
        samples += 1
        d = 0
        t_lo[0], t_hi[0], f_lo[0], f_hi[0], phase[0] = float(ta), float(tb), a, b, 0
        region[0, 0], region[0, 1], region[0, 2], region[0, 3] = 0, height, 0, width
        while d >= 0:
            if phase[d] == 0:  # entering: the box that changes fast, its mid sample, its halves first
                by0, by1, bx0, bx1 = 0, 0, 0, 0
                f_mid[d], split[d], phase[d] = f_hi[d], True, 2
                if d < max_depth:
                    by0, by1, bx0, bx1 = exceeding_box(frames[f_lo[d]], frames[f_hi[d]], refine_limit, width,
                                                       region[d, 0], region[d, 1], region[d, 2], region[d, 3])
                    if by0 < by1:
                        tm = 0.5 * (t_lo[d] + t_hi[d])
                        f_mid[d] = 2 + d
                        bad = _sample(figure, timing, lighting, scratch, tm, eps, frames[2 + d], by0, by1, bx0, bx1)
                        if bad:
                            return out_pix, out_t, out_p, start, samples, a, bad, tm
                        samples += 1
                        if d + 1 < max_depth:
                            split[d], phase[d] = False, 1
                box[d, 0], box[d, 1], box[d, 2], box[d, 3] = by0, by1, bx0, bx1
                if phase[d] == 1:
                    _enter(d + 1, t_lo[d], 0.5 * (t_lo[d] + t_hi[d]), f_lo[d], f_mid[d], box[d], t_lo, t_hi, f_lo,
                           f_hi, region, phase)
                    d += 1
                    continue
            elif phase[d] == 1:  # the first half is done: the second
                phase[d] = 2
                _enter(d + 1, 0.5 * (t_lo[d] + t_hi[d]), t_hi[d], f_mid[d], f_hi[d], box[d], t_lo, t_hi, f_lo, f_hi,
                       region, phase)
                d += 1
                continue
            out_pix, out_t, out_p, start = interval_crossings(
                frames[f_lo[d]], frames[f_mid[d]], frames[f_hi[d]], ref, thr_on, thr_off, t_lo[d], t_hi[d], ta,
                out_pix, out_t, out_p, start, width, region[d, 0], region[d, 1], region[d, 2], region[d, 3],
                box[d, 0], box[d, 1], box[d, 2], box[d, 3], split[d], bounds, mask)
            d -= 1
        i0, i1 = shots_by_interval[k - k0], shots_by_interval[k - k0 + 1]
        if i1 > i0:
            shift_reference(ref, shot_pix[i0:i1], shot_p[i0:i1], thr_on, thr_off, bounds)
        a, b = b, a
    return out_pix, out_t, out_p, start, samples, a, 0, 0.0


@njit(cache=True, nogil=True, inline="always")
def _enter(d, ta, tb, fa, fb, rect, t_lo, t_hi, f_lo, f_hi, region, phase):
    t_lo[d], t_hi[d], f_lo[d], f_hi[d], phase[d] = ta, tb, fa, fb, 0
    for j in range(4):
        region[d, j] = rect[j]
