"""Anti-aliased rendering of textured shape layers (numba) beside the numpy references they must equal.

A scene is a stack of *layers* drawn back to front. Each layer is one row of a float64
table (columns named by the constants below): a shape in the layer's own coordinates
(u, v), the affine map from scene coordinates (X, Y) to (u, v), and a fill (``lo + (hi - lo)
* texture(u * tex_scale + tex_u, v * tex_scale + tex_v)``; a uniform fill has ``lo == hi``).
Scene coordinates put pixel (row, col) of a canvas whose corner is at (ox, oy) at
``X = ox + col + 0.5``, ``Y = oy + row + 0.5``: the image spans [0, W] x [0, H].

Coverage is ``clip(0.5 - d, 0, 1)`` with ``d`` the signed distance to the shape's edge in
pixels (layer units times ``px_per_unit``), so an edge moving by a fraction of a pixel changes
the image (the simulator needs that to make events). Layers are composited with
``out = out * (1 - coverage) + value * coverage``. The work of a layer is limited to its
scene bounding box (columns X0..X1, Y0..Y1 of the table).

Textures are a float32 stack (n, S, S) with S a power of two, sampled bilinearly with
wrap-around (periodic textures tile seamlessly).

Kernels: ``render_layers`` (composite a table into an image), ``place_layers`` (a table of
layers given in their groups' units, each group moved by its own map at some time) and
``layer_flow`` (forward flow of the front layer at each pixel and whether it is hidden later);
each has a ``*_reference`` in numpy. ``eventflow.sim.layers`` builds the tables.
"""
from __future__ import annotations

import numpy as np
from numba import literally, njit

# shape kinds
PLANE, BOX, ELLIPSE, CAPSULE = 0, 1, 2, 3
# columns of a layer table
KIND = 0
MAP = slice(1, 7)  # u = m0 X + m1 Y + m2, v = m3 X + m4 Y + m5
PX_PER_UNIT = 7
SHAPE = slice(8, 13)  # BOX: cu, cv, half_w, half_h, corner_r; ELLIPSE: cu, cv, a, b, -; CAPSULE: u0, v0, u1, v1, r
LO, HI, TEX_SCALE, TEX_U, TEX_V, TEX = 13, 14, 15, 16, 17, 18
X0, X1, Y0, Y1 = 19, 20, 21, 22
N_COLUMNS = 23
FAR = 1e9  # bounding box of a plane; distance of "inside" a plane


@njit(cache=True, nogil=True)
def signed_distance(kind, u, v, s0, s1, s2, s3, s4):
    """Signed distance (layer units, negative inside) from (u, v) to the edge of a shape of ``kind``.

    BOX: centre (s0, s1), half sizes (s2, s3), corner radius s4; ELLIPSE: centre (s0, s1), semi-axes
    (s2, s3) (distance to first order); CAPSULE: segment (s0, s1)-(s2, s3), radius s4.
    """
    if kind == PLANE:
        return -FAR
    if kind == BOX:
        dx = abs(u - s0) - (s2 - s4)
        dy = abs(v - s1) - (s3 - s4)
        ox = max(dx, 0.0)
        oy = max(dy, 0.0)
        return np.sqrt(ox * ox + oy * oy) + min(max(dx, dy), 0.0) - s4
    if kind == ELLIPSE:
        du = (u - s0) / s2
        dv = (v - s1) / s3
        g = np.sqrt(du * du + dv * dv)
        if g == 0.0:
            return -min(s2, s3)
        return (g - 1.0) * g / np.sqrt(du * du / (s2 * s2) + dv * dv / (s3 * s3))
    if kind == CAPSULE:
        eu, ev, pu, pv = s2 - s0, s3 - s1, u - s0, v - s1
        ll = eu * eu + ev * ev
        h = 0.0 if ll == 0.0 else min(max((pu * eu + pv * ev) / ll, 0.0), 1.0)
        qu, qv = pu - h * eu, pv - h * ev
        return np.sqrt(qu * qu + qv * qv) - s4
    return FAR


@njit(cache=True, nogil=True)
def texture_sample(textures, k, x, y):
    """Bilinear, wrapping sample of texture ``k`` of a stack (n, S, S) at texel coordinates (x, y)."""
    size = textures.shape[1]
    mask = size - 1
    xf = np.floor(x)
    yf = np.floor(y)
    fx = x - xf
    fy = y - yf
    ix = np.int64(xf) & mask
    iy = np.int64(yf) & mask
    ix1 = (ix + 1) & mask
    iy1 = (iy + 1) & mask
    top = (1.0 - fx) * textures[k, iy, ix] + fx * textures[k, iy, ix1]
    bottom = (1.0 - fx) * textures[k, iy1, ix] + fx * textures[k, iy1, ix1]
    return (1.0 - fy) * top + fy * bottom


@njit(cache=True, nogil=True)
def _coverage(layer, X, Y):
    u = layer[1] * X + layer[2] * Y + layer[3]
    v = layer[4] * X + layer[5] * Y + layer[6]
    kind = np.int64(layer[KIND])
    if kind == PLANE:
        return 1.0, u, v
    d = signed_distance(kind, u, v, layer[8], layer[9], layer[10], layer[11], layer[12]) * layer[PX_PER_UNIT]
    return min(max(0.5 - d, 0.0), 1.0), u, v


@njit(cache=True, nogil=True)
def _pixel_range(lo, hi, origin, n):
    a = max(np.int64(np.floor(max(lo - origin, -1.0))), 0)
    b = min(np.int64(np.ceil(min(hi - origin, n + 1.0))), n)
    return a, b


@njit(cache=True, nogil=True)
def _draw(out, L, textures, ox, oy, kind):
    """Composite one layer of shape ``kind`` (a literal: the kernel is compiled once per shape).

    Box and capsule distances are exact, so they change by at most ``step`` pixels from one
    column to the next: far inside (or outside) a shape the next columns are known to be fully
    covered (or empty) and their distances are not computed. The result is the same.
    """
    kind = literally(kind)
    H, W = out.shape
    c0, c1 = _pixel_range(L[X0], L[X1], ox, W)
    r0, r1 = _pixel_range(L[Y0], L[Y1], oy, H)
    m0, m1, m2, m3, m4, m5 = L[1], L[2], L[3], L[4], L[5], L[6]
    ppu = L[PX_PER_UNIT]
    s0, s1, s2, s3, s4 = L[8], L[9], L[10], L[11], L[12]
    lo = L[LO]
    span = L[HI] - lo
    ts, tu, tv = L[TEX_SCALE], L[TEX_U], L[TEX_V]
    k = np.int64(L[TEX])
    exact = kind == BOX or kind == CAPSULE
    step = np.sqrt(m0 * m0 + m3 * m3) * ppu * 1.0000001 + 1e-9
    for row in range(r0, r1):
        Y = oy + row + 0.5
        inside_until = -1
        col = c0
        while col < c1:
            X = ox + col + 0.5
            u = m0 * X + m1 * Y + m2
            v = m3 * X + m4 * Y + m5
            cov = 1.0
            if kind != PLANE and col > inside_until:
                d = signed_distance(kind, u, v, s0, s1, s2, s3, s4) * ppu
                cov = min(max(0.5 - d, 0.0), 1.0)
                if exact and d > 0.5:
                    col += max(np.int64((d - 0.5) / step), 1)
                    continue
                if exact and d < -0.5:
                    inside_until = col + np.int64((-0.5 - d) / step) - 1
                if cov <= 0.0:
                    col += 1
                    continue
            value = lo
            if span != 0.0:
                value = lo + span * texture_sample(textures, k, u * ts + tu, v * ts + tv)
            if cov >= 1.0:
                out[row, col] = value
            else:
                out[row, col] = out[row, col] * (1.0 - cov) + value * cov
            col += 1


@njit(cache=True, nogil=True)
def render_layers(out, layers, textures, ox, oy):
    """Composite every layer of the table, back to front, into ``out`` (float32 (H, W)) in place."""
    for i in range(layers.shape[0]):
        L = layers[i]
        kind = np.int64(L[KIND])
        if kind == PLANE:
            if L[HI] == L[LO]:
                out[:, :] = L[LO]
            else:
                _draw(out, L, textures, ox, oy, PLANE)
        elif kind == BOX:
            _draw(out, L, textures, ox, oy, BOX)
        elif kind == ELLIPSE:
            _draw(out, L, textures, ox, oy, ELLIPSE)
        elif kind == CAPSULE:
            _draw(out, L, textures, ox, oy, CAPSULE)


@njit(cache=True, nogil=True)
def _invert(m0, m1, m2, m3, m4, m5):
    det = m0 * m4 - m1 * m3
    return (m4 / det, -m1 / det, (m1 * m5 - m4 * m2) / det, -m3 / det, m0 / det, (m3 * m2 - m0 * m5) / det)


@njit(cache=True, nogil=True)
def _compose(o, i):
    return (o[0] * i[0] + o[1] * i[3], o[0] * i[1] + o[1] * i[4], o[0] * i[2] + o[1] * i[5] + o[2],
            o[3] * i[0] + o[4] * i[3], o[3] * i[1] + o[4] * i[4], o[3] * i[2] + o[4] * i[5] + o[5])


@njit(cache=True, nogil=True)
def place_layers(local, group, forward, margin, out):
    """Layer table ``out`` of layers given in their group's units, each group moved by its map.

    ``local``: layer table whose maps take group units to layer units; ``group[i]``: row of
    ``forward`` (n_groups, 6) mapping that group's units to the scene. ``out`` gets the maps
    from the scene, pixels per layer unit and scene bounding boxes grown by ``margin``.
    """
    for i in range(local.shape[0]):
        L = local[i]
        f = forward[group[i]]
        fwd = (f[0], f[1], f[2], f[3], f[4], f[5])
        lm = (L[1], L[2], L[3], L[4], L[5], L[6])
        to_layer = _compose(lm, _invert(f[0], f[1], f[2], f[3], f[4], f[5]))
        to_scene = _compose(fwd, _invert(L[1], L[2], L[3], L[4], L[5], L[6]))
        out[i, :] = L
        for j in range(6):
            out[i, 1 + j] = to_layer[j]
        out[i, PX_PER_UNIT] = L[PX_PER_UNIT] * np.sqrt(abs(f[0] * f[4] - f[1] * f[3]))
        kind = np.int64(L[KIND])
        if kind == PLANE:
            out[i, X0], out[i, X1], out[i, Y0], out[i, Y1] = -FAR, FAR, -FAR, FAR
            continue
        if kind == CAPSULE:
            r = L[12]
            u0, u1 = min(L[8], L[10]) - r, max(L[8], L[10]) + r
            v0, v1 = min(L[9], L[11]) - r, max(L[9], L[11]) + r
        else:
            u0, u1, v0, v1 = L[8] - L[10], L[8] + L[10], L[9] - L[11], L[9] + L[11]
        cu, cv, hu, hv = (u0 + u1) / 2, (v0 + v1) / 2, (u1 - u0) / 2, (v1 - v0) / 2
        X = to_scene[0] * cu + to_scene[1] * cv + to_scene[2]
        Y = to_scene[3] * cu + to_scene[4] * cv + to_scene[5]
        ex = abs(to_scene[0]) * hu + abs(to_scene[1]) * hv + margin
        ey = abs(to_scene[3]) * hu + abs(to_scene[4]) * hv + margin
        out[i, X0], out[i, X1], out[i, Y0], out[i, Y1] = X - ex, X + ex, Y - ey, Y + ey


def place_layers_reference(local, group, forward, margin):
    """numpy version of ``place_layers`` (returns the table)."""
    from eventflow.sim.layers import compose, invert, scene_bbox  # plain table helpers (they import this module)

    local = np.asarray(local, dtype=np.float64)
    f = np.asarray(forward, dtype=np.float64)[group]
    out = local.copy()
    out[:, MAP] = compose(local[:, MAP], invert(f))
    out[:, PX_PER_UNIT] = local[:, PX_PER_UNIT] * np.sqrt(np.abs(f[:, 0] * f[:, 4] - f[:, 1] * f[:, 3]))
    to_scene = compose(f, invert(local[:, MAP]))
    out[:, X0], out[:, X1], out[:, Y0], out[:, Y1] = scene_bbox(local[:, KIND], local[:, SHAPE], to_scene, margin)
    return out


def render_layers_reference(out, layers, textures, ox, oy):
    """Plain numpy version of ``render_layers`` (same arithmetic, layer by layer)."""
    H, W = out.shape
    size = textures.shape[1]
    for L in np.asarray(layers, dtype=np.float64):
        c0 = max(int(np.floor(max(L[X0] - ox, -1.0))), 0)
        c1 = min(int(np.ceil(min(L[X1] - ox, W + 1.0))), W)
        r0 = max(int(np.floor(max(L[Y0] - oy, -1.0))), 0)
        r1 = min(int(np.ceil(min(L[Y1] - oy, H + 1.0))), H)
        if c0 >= c1 or r0 >= r1:
            continue
        X, Y = np.meshgrid(ox + np.arange(c0, c1) + 0.5, oy + np.arange(r0, r1) + 0.5)
        cov, u, v = coverage_reference(L, X, Y)
        value = np.full_like(u, L[LO])
        if L[HI] != L[LO]:
            tx = u * L[TEX_SCALE] + L[TEX_U]
            ty = v * L[TEX_SCALE] + L[TEX_V]
            xf, yf = np.floor(tx), np.floor(ty)
            fx, fy = tx - xf, ty - yf
            ix, iy = xf.astype(np.int64) % size, yf.astype(np.int64) % size
            ix1, iy1 = (ix + 1) % size, (iy + 1) % size
            t = textures[int(L[TEX])].astype(np.float64)
            top = (1.0 - fx) * t[iy, ix] + fx * t[iy, ix1]
            bottom = (1.0 - fx) * t[iy1, ix] + fx * t[iy1, ix1]
            value = L[LO] + (L[HI] - L[LO]) * ((1.0 - fy) * top + fy * bottom)
        region = out[r0:r1, c0:c1]
        blended = region * (1.0 - cov) + value * cov
        out[r0:r1, c0:c1] = np.where(cov > 0.0, blended, region)


def coverage_reference(L, X, Y):
    """(coverage, u, v) of layer row ``L`` at scene points (X, Y)."""
    m = L[MAP]
    u = m[0] * X + m[1] * Y + m[2]
    v = m[3] * X + m[4] * Y + m[5]
    if int(L[KIND]) == PLANE:
        return np.ones_like(u), u, v
    return np.clip(0.5 - signed_distance_reference(int(L[KIND]), u, v, *L[SHAPE]) * L[PX_PER_UNIT], 0.0, 1.0), u, v


def signed_distance_reference(kind, u, v, s0, s1, s2, s3, s4):
    """numpy version of ``signed_distance`` over arrays of (u, v)."""
    if kind == BOX:
        dx = np.abs(u - s0) - (s2 - s4)
        dy = np.abs(v - s1) - (s3 - s4)
        outside = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0))
        return outside + np.minimum(np.maximum(dx, dy), 0.0) - s4
    if kind == ELLIPSE:
        du, dv = (u - s0) / s2, (v - s1) / s3
        g = np.sqrt(du * du + dv * dv)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (g - 1.0) * g / np.sqrt(du * du / (s2 * s2) + dv * dv / (s3 * s3))
        return np.where(g == 0.0, -min(s2, s3), d)
    if kind == CAPSULE:
        eu, ev = s2 - s0, s3 - s1
        pu, pv = u - s0, v - s1
        ll = eu * eu + ev * ev
        h = np.zeros_like(u) if ll == 0.0 else np.clip((pu * eu + pv * ev) / ll, 0.0, 1.0)
        return np.hypot(pu - h * eu, pv - h * ev) - s4
    raise ValueError(f"shape kind {kind} has no distance (known: BOX {BOX}, ELLIPSE {ELLIPSE}, CAPSULE {CAPSULE})")


@njit(cache=True, nogil=True)
def _top_layer(layers, X, Y):
    for i in range(layers.shape[0] - 1, -1, -1):
        L = layers[i]
        if X < L[X0] or X > L[X1] or Y < L[Y0] or Y > L[Y1]:
            continue
        cov, u, v = _coverage(L, X, Y)
        if cov >= 0.5:
            return i
    return -1


@njit(cache=True, nogil=True)
def layer_flow(flow, occluded, layers0, motion, layers1):
    """Forward flow of the top layer at each pixel, and whether that point is hidden at the end.

    ``layers0`` / ``layers1``: the layer tables at the window's start and end (same layers,
    same order); ``motion[i]``: the 2x3 affine map (m0..m5, row-major) taking a scene point of
    layer i at the start to where that point is at the end. The top layer of a pixel is the
    front-most one covering it at least half. ``flow`` (2, H, W) gets (dx, dy); ``occluded``
    (H, W) gets 1 where the point leaves the image or another layer is on top of it at the end.
    """
    H, W = occluded.shape
    for row in range(H):
        Y = row + 0.5
        for col in range(W):
            X = col + 0.5
            top = _top_layer(layers0, X, Y)
            if top < 0:
                flow[0, row, col] = 0.0
                flow[1, row, col] = 0.0
                occluded[row, col] = 1
                continue
            m = motion[top]
            X1 = m[0] * X + m[1] * Y + m[2]
            Y1 = m[3] * X + m[4] * Y + m[5]
            flow[0, row, col] = X1 - X
            flow[1, row, col] = Y1 - Y
            inside = 0.0 <= X1 < W and 0.0 <= Y1 < H
            occluded[row, col] = 0 if inside and _top_layer(layers1, X1, Y1) == top else 1


def layer_flow_reference(flow, occluded, layers0, motion, layers1):
    """numpy version of ``layer_flow``."""
    H, W = occluded.shape
    X, Y = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    top0 = top_layer_reference(layers0, X, Y)
    m = np.asarray(motion, dtype=np.float64)[np.maximum(top0, 0)]
    X1 = m[..., 0] * X + m[..., 1] * Y + m[..., 2]
    Y1 = m[..., 3] * X + m[..., 4] * Y + m[..., 5]
    flow[0] = np.where(top0 >= 0, X1 - X, 0.0)
    flow[1] = np.where(top0 >= 0, Y1 - Y, 0.0)
    inside = (X1 >= 0) & (X1 < W) & (Y1 >= 0) & (Y1 < H)
    same = top_layer_reference(layers1, X1, Y1) == top0
    occluded[...] = np.where((top0 >= 0) & inside & same, 0, 1)


def top_layer_reference(layers, X, Y):
    """Index of the front-most layer covering each point at least half (-1: none)."""
    top = np.full(X.shape, -1, dtype=np.int64)
    for i, L in enumerate(np.asarray(layers, dtype=np.float64)):
        cov = coverage_reference(L, X, Y)[0]
        in_box = (X >= L[X0]) & (X <= L[X1]) & (Y >= L[Y0]) & (Y <= L[Y1])
        top = np.where(in_box & (cov >= 0.5), i, top)
    return top
