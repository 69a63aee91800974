"""Drawing an articulated figure (numba) beside plain references they must equal.

Three steps per frame, each a kernel and a reference:

- ``pose_channels``: the pose at time ``t`` as a vector of K channels (joint angles in
  radians, bone length scales, root offsets in pixels)::

      q[k] = rest[k] + w * (g0[k] - rest[k] + sum_h C[k,h] cos((h+1) omega tau) + S[k,h] sin((h+1) omega tau))
             + rate[k] * W + idle_amp[k] * sin(idle_omega[k] * t + idle_phase[k])

  ``harm[k, h] = (C, S)``; ``w`` is the gesture's envelope (0 at rest, 1 in full swing), ``W``
  its integral (so a rotation accelerates from rest and stops where it started), ``tau`` the
  time since the gesture began; ``idle[k] = (amp, omega, phase)`` is motion present always.
- ``figure_primitives``: forward kinematics of a joint tree (joints in topological order), then
  one drawing primitive per shape. Joint ``j``: absolute angle
  ``angle[ref] + offset + sign * q[angle_ch]`` (no ``angle[ref]`` for ``ref < 0``, no channel
  for ``angle_ch < 0``); a root (``parent < 0``) sits at ``base + (q[dx_ch], q[dy_ch])``, any
  other joint at ``pos[parent] + length * scale * (cos, sin)(angle)``, ``scale`` being
  ``q[length_ch]`` clipped to [0.1, 1.5] (1 without a channel). Shapes: a capsule from joint a
  to joint b of radius p0, or an ellipse centred at ``a + p0 (b - a)``, its semi-axis p1 along
  ``angle[b]`` (``-p1`` times |b - a| when p1 < 0, at least 0.5) and p2 across.
- ``rasterise``: ``out = background * gain``, then each primitive (rows of ``PRIM_*``
  columns, pixel centres at integer coordinates, x right, y down) composited in order over
  the pixels of its bounding box (its extent plus one pixel; nothing outside it changes):
  ``out += coverage * (colour - out)`` with an anti-aliased coverage
  ``clip(0.5 - signed distance, 0, 1)`` and colour
  ``value * (1 + tex_amp * (tri(u / period) + tri(v / period) - 1)) * (1 - shade * r^2) * light * gain``
  clipped to [1e-4, 1] (period > 0): (u, v) the pixel in the primitive's own frame (so the
  pattern moves with it), ``tri(s) = |2 frac(s) - 1|``, ``r`` the normalised distance from its axis.

``figure_log_kernel`` chains the three with ``eventflow.kernels.sim.log_region`` in one call (a
simulator sample of the gesture scene: numba dispatch and Python glue cost as much as drawing).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .sim import log_region

CAPSULE, ELLIPSE = 0, 1
# primitive columns
(PRIM_KIND, PRIM_X0, PRIM_Y0, PRIM_X1, PRIM_Y1, PRIM_RADIUS, PRIM_VALUE, PRIM_TEX_AMP, PRIM_TEX_PERIOD,
 PRIM_SHADE) = range(10)
PRIM_COLUMNS = 10
# joint_index columns (int64) and joint_value columns (float64)
J_PARENT, J_REF, J_ANGLE_CH, J_LENGTH_CH, J_DX_CH, J_DY_CH = range(6)
J_OFFSET, J_SIGN, J_LENGTH, J_BASE_X, J_BASE_Y = range(5)
# shape columns: kind, joint a, joint b, p0, p1, p2, value, tex_amp, tex_period, shade
S_KIND, S_A, S_B, S_P0, S_P1, S_P2, S_VALUE, S_TEX_AMP, S_TEX_PERIOD, S_SHADE = range(10)
MIN_COLOUR = 1e-4


# -- pose ------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def pose_channels_kernel(rest, g0, rate, harm, omega, tau, w, big_w, idle, t, q):
    """Fill ``q`` (float64[K]); see the module docstring."""
    n_h = harm.shape[1]
    cos_h, sin_h = np.empty(n_h), np.empty(n_h)  # the harmonics' phases are the same for every channel
    for h in range(n_h):
        ph = (h + 1) * omega * tau
        cos_h[h], sin_h[h] = math.cos(ph), math.sin(ph)
    for k in range(q.shape[0]):
        s = g0[k] - rest[k]
        for h in range(n_h):
            s += harm[k, h, 0] * cos_h[h] + harm[k, h, 1] * sin_h[h]
        q[k] = rest[k] + w * s + rate[k] * big_w + idle[k, 0] * math.sin(idle[k, 1] * t + idle[k, 2])


@njit(cache=True, nogil=True)
def pose_figure_kernel(rest, g0, rate, harm, omega, tau, w, big_w, idle, t, q, joint_index, joint_value, shapes, pos,
                       angle, prims):
    """``pose_channels_kernel`` then ``figure_primitives_kernel`` in one call (a frame's pose)."""
    pose_channels_kernel(rest, g0, rate, harm, omega, tau, w, big_w, idle, t, q)
    figure_primitives_kernel(q, joint_index, joint_value, shapes, pos, angle, prims)


def pose_channels_reference(rest, g0, rate, harm, omega, tau, w, big_w, idle, t):
    """Plain numpy: the channel vector q (float64[K])."""
    h = np.arange(1, harm.shape[1] + 1) * omega * tau
    s = g0 - rest + (harm[:, :, 0] * np.cos(h)).sum(1) + (harm[:, :, 1] * np.sin(h)).sum(1)
    return rest + w * s + rate * big_w + idle[:, 0] * np.sin(idle[:, 1] * t + idle[:, 2])


# -- kinematics ------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def figure_primitives_kernel(q, joint_index, joint_value, shapes, pos, angle, prims):
    """Joint positions into ``pos`` (float64[J, 2]), angles into ``angle`` (float64[J]), one
    primitive per shape into ``prims`` (float64[S, PRIM_COLUMNS])."""
    for j in range(joint_index.shape[0]):
        ref = joint_index[j, J_REF]
        a = joint_value[j, J_OFFSET]
        if ref >= 0:
            a += angle[ref]
        ch = joint_index[j, J_ANGLE_CH]
        if ch >= 0:
            a += joint_value[j, J_SIGN] * q[ch]
        angle[j] = a
        parent = joint_index[j, J_PARENT]
        if parent < 0:
            x, y = joint_value[j, J_BASE_X], joint_value[j, J_BASE_Y]
            if joint_index[j, J_DX_CH] >= 0:
                x += q[joint_index[j, J_DX_CH]]
            if joint_index[j, J_DY_CH] >= 0:
                y += q[joint_index[j, J_DY_CH]]
        else:
            length = joint_value[j, J_LENGTH]
            lc = joint_index[j, J_LENGTH_CH]
            if lc >= 0:
                length *= min(max(q[lc], 0.1), 1.5)
            x = pos[parent, 0] + length * math.cos(a)
            y = pos[parent, 1] + length * math.sin(a)
        pos[j, 0] = x
        pos[j, 1] = y
    for i in range(shapes.shape[0]):
        ja, jb = int(shapes[i, S_A]), int(shapes[i, S_B])
        ax, ay, bx, by = pos[ja, 0], pos[ja, 1], pos[jb, 0], pos[jb, 1]
        prims[i, PRIM_KIND] = shapes[i, S_KIND]
        if shapes[i, S_KIND] == CAPSULE:
            prims[i, PRIM_X0], prims[i, PRIM_Y0], prims[i, PRIM_X1], prims[i, PRIM_Y1] = ax, ay, bx, by
        else:
            f = shapes[i, S_P0]
            cx, cy = ax + f * (bx - ax), ay + f * (by - ay)
            along = shapes[i, S_P1]
            if along < 0:
                along = max(-along * math.sqrt((bx - ax) ** 2 + (by - ay) ** 2), 0.5)
            prims[i, PRIM_X0], prims[i, PRIM_Y0] = cx, cy
            prims[i, PRIM_X1] = cx + along * math.cos(angle[jb])
            prims[i, PRIM_Y1] = cy + along * math.sin(angle[jb])
        prims[i, PRIM_RADIUS] = shapes[i, S_P0] if shapes[i, S_KIND] == CAPSULE else shapes[i, S_P2]
        prims[i, PRIM_VALUE] = shapes[i, S_VALUE]
        prims[i, PRIM_TEX_AMP] = shapes[i, S_TEX_AMP]
        prims[i, PRIM_TEX_PERIOD] = shapes[i, S_TEX_PERIOD]
        prims[i, PRIM_SHADE] = shapes[i, S_SHADE]


def figure_primitives_reference(q, joint_index, joint_value, shapes):
    """Plain Python: (pos float64[J, 2], angle float64[J], prims float64[S, PRIM_COLUMNS])."""
    n = len(joint_index)
    pos, angle = np.zeros((n, 2)), np.zeros(n)
    for j, (parent, ref, ach, lch, dxc, dyc) in enumerate(joint_index.tolist()):
        offset, sign, length, bx, by = joint_value[j].tolist()
        angle[j] = (angle[ref] if ref >= 0 else 0.0) + offset + (sign * q[ach] if ach >= 0 else 0.0)
        if parent < 0:
            pos[j] = (bx + (q[dxc] if dxc >= 0 else 0.0), by + (q[dyc] if dyc >= 0 else 0.0))
        else:
            scale = float(np.clip(q[lch], 0.1, 1.5)) if lch >= 0 else 1.0
            pos[j] = pos[parent] + length * scale * np.array([math.cos(angle[j]), math.sin(angle[j])])
    prims = np.zeros((len(shapes), PRIM_COLUMNS))
    for i, (kind, ja, jb, p0, p1, p2, value, amp, period, shade) in enumerate(shapes.tolist()):
        a, b = pos[int(ja)], pos[int(jb)]
        if kind == CAPSULE:
            ends, radius = [*a, *b], p0
        else:
            c = a + p0 * (b - a)
            along = p1 if p1 >= 0 else max(-p1 * float(np.hypot(*(b - a))), 0.5)
            ends, radius = [*c, c[0] + along * math.cos(angle[int(jb)]), c[1] + along * math.sin(angle[int(jb)])], p2
        prims[i] = [kind, *ends, radius, value, amp, period, shade]
    return pos, angle, prims


# -- rasterisation ---------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _linear_span(c, k, lo, hi):
    """The dx with lo <= c * dx + k <= hi, as (first, last); first > last when empty."""
    if abs(c) < 1e-12:
        return (-1e30, 1e30) if lo <= k <= hi else (1.0, -1.0)
    a, b = (lo - k) / c, (hi - k) / c
    return (a, b) if a <= b else (b, a)


@njit(cache=True, nogil=True, inline="always")
def _disc_span(dy, reach):
    if dy * dy >= reach * reach:
        return 1.0, -1.0
    h = math.sqrt(reach * reach - dy * dy)
    return -h, h


@njit(cache=True, nogil=True, inline="always")
def _shade(u, v, cover, rr, value, amp, inv_period, shade, light, gain, o):
    """The pixel after compositing: ``o + cover * (colour - o)`` (branch-free, so the row loops vectorise)."""
    su, sv = u * inv_period, v * inv_period
    tri = abs(2.0 * (su - np.floor(su)) - 1.0) + abs(2.0 * (sv - np.floor(sv)) - 1.0)
    colour = value * (1.0 + amp * (tri - 1.0)) * (1.0 - shade * rr) * light * gain
    colour = min(max(colour, MIN_COLOUR), 1.0)
    return o + cover * (colour - o)


@njit(cache=True, nogil=True, error_model="numpy")
def _draw_capsule(out, light, cols, gain, x0, y0, x1, y1, r, value, amp, inv_period, shade, r0, r1, c0, c1):
    ex, ey = x1 - x0, y1 - y0
    length = math.sqrt(ex * ex + ey * ey)
    ux, uy = (ex / length, ey / length) if length > 1e-9 else (1.0, 0.0)
    reach = r + 0.5
    inner = (r - 0.5) * (r - 0.5) if r > 0.5 else -1.0
    inv_r2 = 1.0 / (r * r) if r > 0 else 0.0
    rr_fixed = 0.0 if r > 0 else 1.0
    for y in range(r0, r1 + 1):
        dy = y - y0
        # the row's span: hull of the two end discs and the band between them
        lo, hi = _disc_span(dy, reach)
        l1, h1 = _disc_span(y - y1, reach)
        if l1 <= h1:
            lo, hi = (l1 + ex, h1 + ex) if lo > hi else (min(lo, l1 + ex), max(hi, h1 + ex))
        su0, su1 = _linear_span(ux, dy * uy, 0.0, length)
        sv0, sv1 = _linear_span(-uy, dy * ux, -reach, reach)
        s0, s1 = max(su0, sv0), min(su1, sv1)
        if s0 <= s1:
            lo, hi = (s0, s1) if lo > hi else (min(lo, s0), max(hi, s1))
        if lo > hi:
            continue
        xs = max(c0, int(math.floor(x0 + lo)) - 1)
        xe = min(c1, int(math.ceil(x0 + hi)) + 1)
        orow, lrow, ccols = out[y, xs:xe + 1], light[y, xs:xe + 1], cols[xs:xe + 1]
        for k in range(orow.shape[0]):
            dx = ccols[k] - x0
            u = dx * ux + dy * uy
            v = dy * ux - dx * uy
            h = min(max(u, 0.0), length)
            d2 = (u - h) * (u - h) + v * v
            cover = min(max(reach - math.sqrt(d2), 0.0), 1.0)
            cover = 1.0 if d2 <= inner else cover
            rr = min(v * v * inv_r2 + rr_fixed, 1.0)
            orow[k] = _shade(u, v, cover, rr, value, amp, inv_period, shade, lrow[k], gain, orow[k])


@njit(cache=True, nogil=True, error_model="numpy")
def _draw_ellipse(out, light, cols, gain, x0, y0, x1, y1, r, value, amp, inv_period, shade, r0, r1, c0, c1):
    ex, ey = x1 - x0, y1 - y0
    length = math.sqrt(ex * ex + ey * ey)
    ux, uy = (ex / length, ey / length) if length > 1e-9 else (1.0, 0.0)
    a, b = max(length, 1e-9), max(r, 1e-9)
    limit = (1.0 + 0.5 / min(a, b)) ** 2
    inner = (1.0 - 0.5 / min(a, b)) ** 2 if min(a, b) > 0.5 else -1.0
    ia2, ib2 = 1.0 / (a * a), 1.0 / (b * b)
    alpha = ux * ux * ia2 + uy * uy * ib2
    centre_sd = -min(a, b)
    for y in range(r0, r1 + 1):
        dy = y - y0
        # the row's span: f2(dx) = alpha dx^2 + beta dx + gamma < limit
        beta = 2.0 * ux * uy * dy * (ia2 - ib2)
        gamma = dy * dy * (uy * uy * ia2 + ux * ux * ib2) - limit
        disc = beta * beta - 4.0 * alpha * gamma
        if disc < 0:
            continue
        sq = math.sqrt(disc)
        xs = max(c0, int(math.floor(x0 + (-beta - sq) / (2.0 * alpha))) - 1)
        xe = min(c1, int(math.ceil(x0 + (-beta + sq) / (2.0 * alpha))) + 1)
        orow, lrow, ccols = out[y, xs:xe + 1], light[y, xs:xe + 1], cols[xs:xe + 1]
        for k in range(orow.shape[0]):
            dx = ccols[k] - x0
            u = dx * ux + dy * uy
            v = dy * ux - dx * uy
            f2 = u * u * ia2 + v * v * ib2
            f = math.sqrt(f2)
            g = math.sqrt(u * u * ia2 * ia2 + v * v * ib2 * ib2)
            sd = (f - 1.0) * f / (g if g > 0 else 1.0)
            sd = sd if g > 0 else centre_sd
            cover = min(max(0.5 - sd, 0.0), 1.0)
            cover = 1.0 if f2 <= inner else cover
            cover = 0.0 if f2 >= limit else cover
            orow[k] = _shade(u, v, cover, min(f2, 1.0), value, amp, inv_period, shade, lrow[k], gain, orow[k])


@njit(cache=True, nogil=True)
def rasterise_kernel(prims, background, light, gain, out):
    """``out`` (float32[H, W]) = background * gain with the primitives composited over it.

    Each primitive visits, per row of its bounding box, only the span its shape can reach (one
    pixel beyond the analytic extent). The row loops are branch-free and index from 0 (column
    numbers are read as floats from ``cols``, not converted), so that they vectorise.
    """
    rasterise_region_kernel(prims, background, light, gain, out, 0, out.shape[0], 0, out.shape[1])


@njit(cache=True, nogil=True)
def rasterise_region_kernel(prims, background, light, gain, out, ry0, ry1, rx0, rx1):
    """``rasterise_kernel`` on rows ``ry0..ry1-1``, columns ``rx0..rx1-1`` only: those pixels get
    exactly the values a whole-image rasterisation gives them (each pixel's arithmetic is its
    own); the others are untouched."""
    height, width = out.shape
    ry0, ry1, rx0, rx1 = max(ry0, 0), min(ry1, height), max(rx0, 0), min(rx1, width)
    for y in range(ry0, ry1):
        orow, brow = out[y, rx0:rx1], background[y, rx0:rx1]  # indexed from 0, so it vectorises
        for k in range(orow.shape[0]):
            orow[k] = brow[k] * gain
    cols = np.arange(width).astype(np.float64)
    for i in range(prims.shape[0]):
        x0, y0, x1, y1 = prims[i, PRIM_X0], prims[i, PRIM_Y0], prims[i, PRIM_X1], prims[i, PRIM_Y1]
        r = prims[i, PRIM_RADIUS]
        xa, xb, ya, yb = _bounding_box(prims[i, PRIM_KIND], x0, y0, x1, y1, r)
        c0, c1 = max(int(math.ceil(xa)), rx0), min(int(math.floor(xb)), rx1 - 1)
        r0, r1 = max(int(math.ceil(ya)), ry0), min(int(math.floor(yb)), ry1 - 1)
        if c0 > c1 or r0 > r1:
            continue
        args = (prims[i, PRIM_VALUE], prims[i, PRIM_TEX_AMP], 1.0 / prims[i, PRIM_TEX_PERIOD], prims[i, PRIM_SHADE])
        if prims[i, PRIM_KIND] == CAPSULE:
            _draw_capsule(out, light, cols, gain, x0, y0, x1, y1, r, *args, r0, r1, c0, c1)
        else:
            _draw_ellipse(out, light, cols, gain, x0, y0, x1, y1, r, *args, r0, r1, c0, c1)


@njit(cache=True, nogil=True)
def figure_log_kernel(rest, g0, rate, harm, omega, idle, joint_index, joint_value, shapes, background, light, image,
                      segment, tau, w, big_w, t, gain, eps, out, ry0, ry1, rx0, rx1):
    """A figure's log intensity over a rectangle in one call (what a simulator sample needs):
    ``pose_figure_kernel`` at ``t`` with row ``segment`` of ``g0``, ``rate``, ``harm`` and
    ``omega``, then ``rasterise_region_kernel`` (with ``gain``) of rows ``ry0..ry1-1``, columns ``rx0..rx1-1``
    into ``image`` (float32[H, W], scratch), then ``eventflow.kernels.sim.log_region`` of that
    rectangle into the flat float32 frame ``out`` (its other pixels untouched). The same values
    as those three calls. Returns how many pixels ``log_region`` counts as bad, or -1 (nothing
    written) when the rectangle is not inside the image or ``out`` is not H * W long."""
    figure = (rest, g0, rate, harm, omega, idle, joint_index, joint_value, shapes, background, light, image)
    return figure_log(figure, figure_scratch(figure), segment, tau, w, big_w, t, gain, eps, out, ry0, ry1, rx0, rx1)


@njit(cache=True, nogil=True)
def figure_scratch(figure):
    """Scratch for ``figure_log``: (q, pos, angle, prims, log scratch x3)."""
    rest, joint_index, shapes, image = figure[0], figure[6], figure[8], figure[11]
    n, n_joints = image.shape[0] * image.shape[1], joint_index.shape[0]
    return (np.zeros(rest.shape[0]), np.zeros((n_joints, 2)), np.zeros(n_joints),
            np.zeros((shapes.shape[0], PRIM_COLUMNS)), np.empty(n, np.float32), np.empty(n, np.int32),
            np.empty(n, np.int32))


@njit(cache=True, nogil=True)
def figure_log(figure, scratch, segment, tau, w, big_w, t, gain, eps, out, ry0, ry1, rx0, rx1):
    """``figure_log_kernel`` with its arrays as tuples: ``figure`` is its first twelve arguments,
    ``scratch`` what ``figure_scratch(figure)`` returns (reused from call to call)."""
    rest, g0, rate, harm, omega, idle, joint_index, joint_value, shapes, background, light, image = figure
    q, pos, angle, prims, xs, expo, mant_bits = scratch
    height, width = image.shape
    n = height * width
    if not (0 <= ry0 <= ry1 <= height and 0 <= rx0 <= rx1 <= width) or out.shape[0] != n:
        return -1
    pose_figure_kernel(rest, g0[segment], rate[segment], harm[segment], omega[segment], tau, w, big_w, idle, t, q,
                       joint_index, joint_value, shapes, pos, angle, prims)
    rasterise_region_kernel(prims, background, light, gain, image, ry0, ry1, rx0, rx1)
    return log_region(image.reshape(n), eps, width, ry0, ry1, rx0, rx1, out, xs, expo, mant_bits)


@njit(cache=True, nogil=True)
def _bounding_box(kind, x0, y0, x1, y1, r):
    """(x min, x max, y min, y max) of a primitive, one pixel beyond its extent."""
    if kind == CAPSULE:
        reach = r + 1.0
        return min(x0, x1) - reach, max(x0, x1) + reach, min(y0, y1) - reach, max(y0, y1) + reach
    ex, ey = x1 - x0, y1 - y0
    length = math.sqrt(ex * ex + ey * ey)
    ux, uy = (ex / length, ey / length) if length > 1e-9 else (1.0, 0.0)
    b = max(r, 1e-9)
    hx, hy = math.sqrt(ex * ex + (b * uy) ** 2) + 1.0, math.sqrt(ey * ey + (b * ux) ** 2) + 1.0
    return x0 - hx, x0 + hx, y0 - hy, y0 + hy


def rasterise_reference(prims, background, light, gain):
    """Plain numpy over the whole image, one primitive at a time: float32[H, W]."""
    height, width = background.shape
    out = (background.astype(np.float64) * gain).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for kind, x0, y0, x1, y1, r, value, amp, period, shade in prims.tolist():
        ex, ey = x1 - x0, y1 - y0
        length = math.sqrt(ex * ex + ey * ey)
        ux, uy = (ex / length, ey / length) if length > 1e-9 else (1.0, 0.0)
        u = (xs - x0) * ux + (ys - y0) * uy
        v = (ys - y0) * ux - (xs - x0) * uy
        if kind == CAPSULE:
            d2 = (u - np.clip(u, 0.0, length)) ** 2 + v * v
            inner = (r - 0.5) * (r - 0.5) if r > 0.5 else -1.0
            cover = np.where(d2 <= inner, 1.0, np.clip(r + 0.5 - np.sqrt(d2), 0.0, 1.0))
            rr = np.minimum(v * v * (1.0 / (r * r)) + 0.0, 1.0) if r > 0 else np.ones_like(v)
            reach = r + 1.0
            box = (min(x0, x1) - reach, max(x0, x1) + reach, min(y0, y1) - reach, max(y0, y1) + reach)
        else:
            a, b = max(length, 1e-9), max(r, 1e-9)
            ia2, ib2 = 1.0 / (a * a), 1.0 / (b * b)
            f2 = u * u * ia2 + v * v * ib2
            f = np.sqrt(f2)
            g = np.sqrt(u * u * ia2 * ia2 + v * v * ib2 * ib2)
            sd = np.where(g > 0, (f - 1.0) * f / np.where(g > 0, g, 1.0), -min(a, b))
            inner = (1.0 - 0.5 / min(a, b)) ** 2 if min(a, b) > 0.5 else -1.0
            limit = (1.0 + 0.5 / min(a, b)) ** 2
            cover = np.where(f2 >= limit, 0.0, np.where(f2 <= inner, 1.0, np.clip(0.5 - sd, 0.0, 1.0)))
            rr = np.minimum(f2, 1.0)
            hx, hy = math.sqrt(ex * ex + (b * uy) ** 2) + 1.0, math.sqrt(ey * ey + (b * ux) ** 2) + 1.0
            box = (x0 - hx, x0 + hx, y0 - hy, y0 + hy)
        cover = np.where((xs >= box[0]) & (xs <= box[1]) & (ys >= box[2]) & (ys <= box[3]), cover, 0.0)
        su, sv = u * (1.0 / period), v * (1.0 / period)
        tri = np.abs(2.0 * (su - np.floor(su)) - 1.0) + np.abs(2.0 * (sv - np.floor(sv)) - 1.0)
        colour = np.clip(value * (1.0 + amp * (tri - 1.0)) * (1.0 - shade * rr) * light * gain, MIN_COLOUR, 1.0)
        out = (out + cover * (colour - out)).astype(np.float32)
    return out
