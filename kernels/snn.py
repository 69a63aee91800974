"""Spiking-network kernels (numba, CPU) beside the plain references they must equal.

Event-driven inference of conv / linear SNNs: a layer's input current is built by scattering
the weights of its *active* (spiking) inputs only, so the work follows the spike count, not the
layer size. Layouts are chosen so that every inner loop runs over a contiguous run and vectorises:

- activations are channels last, one flat row per stream: ``[B, H * W * C]``;
- conv weights are flipped and laid out ``[C_in, k, k * C_out]``: an input spike at ``(y, x, c)``
  adds row ``i`` of its kernel slice to the ``k * C_out`` contiguous floats of the padded
  current buffer starting at pixel ``(y + i, x)``;
- the current buffer of a conv layer is padded to ``[H + k - 1, W + k - 1, C_out]`` so no
  bounds check is needed; the LIF pass reads its interior and writes the bias back, so the
  buffer holds the bias again at the start of each step;
- linear weights are transposed, ``[N_in, N_out]``: an active input adds one contiguous row.

Active inputs are lists of flat indices (``(y * W + x) * C + c`` for images), one row per
stream, with a count per stream; compaction is branch free (write always, advance by the spike),
so index arrays have one spare slot. Scalars (tau, thresholds) are float32 so the arithmetic is
the float32 arithmetic of the torch reference ``eventflow.snn.neurons.lif_step``, bit for bit;
the weighted sums equal torch's conv2d / linear up to float32 rounding (another summation order).

The ``*_parallel`` variants (numba ``parallel=True``) split the work into items that never write
the same element, (stream, band of buffer rows) or (stream, piece of the active list), and give
exactly the numbers of their serial twins whatever the thread count. The serial kernels run on
the calling thread only.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

F32 = np.float32

__all__ = ["active_chw", "active_chw_reference", "active_to_dense", "conv_scatter", "conv_scatter_parallel",
           "conv_scatter_reference", "conv_weight_layout", "lif_pool_conv", "lif_pool_conv_parallel",
           "lif_reset_flat", "lif_step", "lif_step_reference", "linear_scatter", "linear_scatter_reference",
           "linear_scatter_split", "linear_scatter_split_parallel", "maxpool2_spikes", "maxpool2_spikes_reference", "network_run", "network_step"]


# ---------------------------------------------------------------------------------------------
# LIF step (the reference is eventflow.snn.neurons.lif_step; lif_step_reference is its numpy twin)

@njit(cache=True, nogil=True, inline="always")
def _charge(v, x, tau, v_reset, decay_input):
    # Same operations, same order as eventflow.snn.neurons._leak (float32 throughout).
    if decay_input:
        if v_reset == 0:
            return v + (x - v) / tau
        return v + (v_reset - v + x) / tau
    if v_reset == 0:
        return v + (-v) / tau + x
    return v + (v_reset - v) / tau + x


@njit(cache=True, nogil=True, inline="always")
def _reset(h, fired, v_reset, threshold, soft):
    if soft:
        return h - threshold if fired else h
    return v_reset if fired else h


@njit(cache=True, nogil=True)
def lif_step(x, v, spikes, tau, v_reset, threshold, decay_input, soft):
    """One fused LIF step over flat float32 arrays: charge, fire, reset in one pass.

    ``v`` is updated in place, ``spikes`` (uint8 or float32, same length) receives 0 / 1;
    returns the number of spikes. Equals ``lif_step`` of ``eventflow.snn.neurons`` for
    ``LIF(tau, decay_input, v_reset, v_threshold, reset="soft" if soft else "hard")``.
    """
    tau = F32(tau)
    v_reset = F32(v_reset)
    threshold = F32(threshold)
    n = min(x.shape[0], v.shape[0], spikes.shape[0])
    count = 0
    for i in range(n):
        h = _charge(v[i], x[i], tau, v_reset, decay_input)
        fired = h >= threshold
        v[i] = _reset(h, fired, v_reset, threshold, soft)
        spikes[i] = fired
        count += fired
    return count


def lif_step_reference(x, v, tau, v_reset, threshold, decay_input, soft):
    """numpy reference: ``(spikes float32, new v)``, same float32 operations as the torch step."""
    x = np.asarray(x, np.float32)
    v = np.asarray(v, np.float32)
    tau, v_reset, threshold = F32(tau), F32(v_reset), F32(threshold)
    if decay_input:
        h = v + ((x - v) if v_reset == 0 else (v_reset - v + x)) / tau
    else:
        h = v + ((-v) if v_reset == 0 else (v_reset - v)) / tau + x
    fired = h >= threshold
    if soft:
        new_v = np.where(fired, h - threshold, h)
    else:
        new_v = np.where(fired, v_reset, h).astype(np.float32)
    return fired.astype(np.float32), new_v.astype(np.float32)


# DA-LIF: per-channel temporal decay kt and input scale ks (eventflow.snn.neurons.dalif_step:
# h = v_reset + kt * (v - v_reset) + ks * x, the same float32 operations in the same order)

@njit(cache=True, nogil=True, inline="always")
def _dalif_charge(v, x, kt, ks, v_reset):
    return (v_reset + kt * (v - v_reset)) + ks * x


@njit(cache=True, nogil=True)
def _check_factors(kt, ks, c):
    if kt is not None and (kt.shape[0] != c or ks.shape[0] != c):
        raise ValueError("DA-LIF: one temporal and one spatial factor per channel")


@njit(cache=True, nogil=True, inline="always")
def _list_spikes(sb, ib):
    # indices of the nonzero entries of sb written to ib (branch free: one spare slot); their number
    n = 0
    for i in range(sb.shape[0]):
        ib[n] = i
        n += sb[i]
    return n


@njit(cache=True, nogil=True)
def lif_reset_flat(cur, bias, v, spikes, idx, counts, tau, v_reset, threshold, decay_input, soft, kt=None, ks=None):
    """LIF over a linear layer's current ``cur [B, N]``: ``v``, ``spikes [B, N]`` updated, the
    active indices of each stream written to ``idx [B, N + 1]`` and ``counts [B]``; ``cur`` is
    set back to ``bias [N]`` for the next step. With ``kt``, ``ks`` (float32 ``[N]``) the neurons
    are DA-LIF instead (``_dalif_charge``; ``tau`` and ``decay_input`` unused)."""
    tau = F32(tau)
    v_reset = F32(v_reset)
    threshold = F32(threshold)
    B, N = v.shape
    _check_factors(kt, ks, N)
    for b in range(B):
        cb = cur[b]
        vb = v[b]
        sb = spikes[b]
        for i in range(N):
            if kt is None:
                h = _charge(vb[i], cb[i], tau, v_reset, decay_input)
            else:
                h = _dalif_charge(vb[i], cb[i], kt[i], ks[i], v_reset)
            fired = h >= threshold
            vb[i] = _reset(h, fired, v_reset, threshold, soft)
            sb[i] = fired
            cb[i] = bias[i]
        counts[b] = _list_spikes(sb, idx[b])


# ---------------------------------------------------------------------------------------------
# Active inputs

@njit(cache=True, nogil=True)
def active_chw(x, idx, vals, counts):
    """Nonzero entries of ``x [B, C, H, W]`` as channels-last flat indices ``(y * W + x) * C + c``
    (``idx [B, C * H * W + 1]``, ascending pixel, then channel) with their values (``vals``, float32)."""
    B, C, H, W = x.shape
    for b in range(B):
        ib = idx[b]
        vb = vals[b]
        n = 0
        for y in range(H):
            for xx in range(W):
                base = (y * W + xx) * C
                for c in range(C):
                    val = x[b, c, y, xx]
                    ib[n] = base + c
                    vb[n] = F32(val)
                    n += val != 0
        counts[b] = n


def active_chw_reference(x):
    """numpy reference of ``active_chw`` for one stream ``x [C, H, W]``: ``(indices, values)``."""
    hwc = np.ascontiguousarray(np.moveaxis(np.asarray(x), 0, -1)).reshape(-1)
    nz = np.flatnonzero(hwc)
    return nz.astype(np.int64), hwc[nz].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Event-driven accumulation

def conv_weight_layout(weight):
    """Torch conv weight ``[C_out, C_in, k, k]`` -> kernel layout ``[C_in, k, k * C_out]`` (flipped, float32).

    Entry ``[c, i, j * C_out + o]`` is ``weight[o, c, k - 1 - i, k - 1 - j]``: the weight linking
    input ``(y, x)`` to padded-buffer pixel ``(y + i, x + j)``.
    """
    w = np.asarray(weight, np.float32)
    c_out, c_in, k, k2 = w.shape
    if k != k2:
        raise ValueError(f"square kernels only, got {k}x{k2}")
    flipped = w[:, :, ::-1, ::-1]                          # [o, c, i, j]
    return np.ascontiguousarray(flipped.transpose(1, 2, 3, 0)).reshape(c_in, k, k * c_out)


@njit(cache=True, nogil=True)
def _conv_scatter_one(ib, vb, n, weighted, wl, bf, c_in, w_in, wp, c_out, r0, r1):
    # Only buffer rows r0..r1-1 are written: each element gets the same additions in the same order
    # whatever the split, so threads owning disjoint row bands give bit-identical results.
    # The active inputs of one pixel are consecutive (indices ascend, channel fastest); their
    # kernel rows are added four (then two, then one) at a time, ``seg += (w0 + w1) + (w2 + w3)``,
    # a quarter of the stores of one row at a time (the current buffer row is read-modify-written).
    k = wl.shape[1]
    run = k * c_out
    t = 0
    while t < n:
        pix = ib[t] // c_in
        t1 = t + 1
        while t1 < n and ib[t1] // c_in == pix:
            t1 += 1
        xx = pix % w_in
        y = pix // w_in
        for i in range(max(0, r0 - y), min(k, r1 - y)):
            start = ((y + i) * wp + xx) * c_out
            seg = bf[start:start + run]
            if weighted:
                for a in range(t, t1):
                    w = wl[ib[a] - pix * c_in, i]
                    val = vb[a]
                    for q in range(run):
                        seg[q] += val * w[q]
            else:
                a = t
                while a + 4 <= t1:
                    w0 = wl[ib[a] - pix * c_in, i]
                    w1 = wl[ib[a + 1] - pix * c_in, i]
                    w2 = wl[ib[a + 2] - pix * c_in, i]
                    w3 = wl[ib[a + 3] - pix * c_in, i]
                    for q in range(run):
                        seg[q] += (w0[q] + w1[q]) + (w2[q] + w3[q])
                    a += 4
                if a + 2 <= t1:
                    w0 = wl[ib[a] - pix * c_in, i]
                    w1 = wl[ib[a + 1] - pix * c_in, i]
                    for q in range(run):
                        seg[q] += w0[q] + w1[q]
                    a += 2
                if a < t1:
                    w0 = wl[ib[a] - pix * c_in, i]
                    for q in range(run):
                        seg[q] += w0[q]
        t = t1


@njit(cache=True, nogil=True)
def conv_scatter(idx, vals, counts, weighted, wl, buf, c_in, h_in, w_in):
    """Add each stream's active inputs' kernels into its padded current buffer.

    ``idx [B, >= n]``, ``counts [B]``: channels-last flat indices of the active inputs of an
    ``[h_in, w_in, c_in]`` image; ``vals`` their values if ``weighted`` (else each counts 1).
    ``wl`` from ``conv_weight_layout``; ``buf [B, (h_in + k - 1) * (w_in + k - 1) * C_out]``.
    Indices in any order; ascending (as the kernels here make them) groups each pixel's channels,
    whose kernel rows are then added four at a time. An index outside the image raises before
    anything is written.
    """
    B = buf.shape[0]
    k = wl.shape[1]
    c_out = wl.shape[2] // k
    wp = w_in + k - 1
    total = h_in * w_in * c_in
    if wl.shape[0] != c_in or buf.shape[1] != (h_in + k - 1) * wp * c_out:
        raise ValueError("conv_scatter: weight / buffer shapes do not match the image")
    for b in range(B):
        n = min(counts[b], idx.shape[1])
        ib = idx[b]
        ok = True
        for t in range(n):
            ok &= (ib[t] >= 0) & (ib[t] < total)
        if not ok:
            raise ValueError("conv_scatter: active index outside the image")
        _conv_scatter_one(ib, vals[b], n, weighted, wl, buf[b], c_in, w_in, wp, c_out, 0, h_in + k - 1)


@njit(cache=True, nogil=True, parallel=True)
def conv_scatter_parallel(idx, vals, counts, weighted, wl, buf, c_in, h_in, w_in, parts=1):
    """``conv_scatter`` over threads, bit-identical: work items are (stream, band of ``parts`` bands
    of buffer rows); a band's thread adds only the kernel rows that land in it, in the serial order.
    """
    B = buf.shape[0]
    k = wl.shape[1]
    c_out = wl.shape[2] // k
    wp = w_in + k - 1
    hp = h_in + k - 1
    total = h_in * w_in * c_in
    if wl.shape[0] != c_in or buf.shape[1] != hp * wp * c_out:
        raise ValueError("conv_scatter: weight / buffer shapes do not match the image")
    for b in range(B):
        n = min(counts[b], idx.shape[1])
        for t in range(n):
            if idx[b, t] < 0 or idx[b, t] >= total:
                raise ValueError("conv_scatter: active index outside the image")
    parts = max(1, min(parts, hp))
    for item in prange(B * parts):
        b = item // parts
        p = item % parts
        r0 = (hp * p) // parts
        r1 = (hp * (p + 1)) // parts
        n = min(counts[b], idx.shape[1])
        _conv_scatter_one(idx[b], vals[b], n, weighted, wl, buf[b], c_in, w_in, wp, c_out, r0, r1)


def conv_scatter_reference(active, values, weight, bias, shape, padding):
    """Dense reference: torch ``conv2d`` (stride 1) of the ``shape = (H, W, C)`` image that holds
    ``values`` at ``active`` (channels-last flat indices); ``weight`` is torch's ``[C_out, C_in, k, k]``.
    Returns ``[H_out, W_out, C_out]``."""
    import torch
    import torch.nn.functional as F
    h, w, c = shape
    img = np.zeros(h * w * c, np.float32)
    img[np.asarray(active, np.int64)] = values
    x = torch.from_numpy(img.reshape(h, w, c)).permute(2, 0, 1)[None]
    y = F.conv2d(x, torch.as_tensor(weight), torch.as_tensor(bias), 1, padding)
    return y[0].permute(1, 2, 0).numpy()


@njit(cache=True, nogil=True)
def linear_scatter(idx, counts, wt, out):
    """``out[b] += wt[j]`` for each active input ``j`` of stream ``b`` (``wt [N_in, N_out]``, the
    transposed torch weight); indices outside ``0..N_in-1`` raise."""
    n_in, n_out = wt.shape
    for b in range(out.shape[0]):
        n = min(counts[b], idx.shape[1])
        ib = idx[b]
        ob = out[b]
        for t in range(n):
            j = ib[t]
            if j < 0 or j >= n_in:
                raise ValueError("linear_scatter: active index outside the layer")
            w = wt[j]
            for o in range(n_out):
                ob[o] += w[o]


@njit(cache=True, nogil=True)
def _check_rows(idx, counts, n_in):
    for b in range(counts.shape[0]):
        for t in range(min(counts[b], idx.shape[1])):
            if idx[b, t] < 0 or idx[b, t] >= n_in:
                raise ValueError("linear_scatter: active index outside the layer")


@njit(cache=True, nogil=True)
def _linear_part(ib, lo, hi, wt, acc):
    acc[:] = 0
    for t in range(lo, hi):
        w = wt[ib[t]]
        for o in range(acc.shape[0]):
            acc[o] += w[o]


@njit(cache=True, nogil=True)
def linear_scatter_split(idx, counts, wt, out, partials):
    """``linear_scatter`` in ``P = partials.shape[1]`` parts: the active list of each stream is cut
    into P consecutive pieces, each summed from 0 in order into ``partials [B, P, N_out]``, then
    ``out[b] += partials[b, 0]``, ``+= partials[b, 1]``, ... (so ``linear_scatter_split_parallel``,
    which sums the pieces on different threads, gives the same bits)."""
    _check_rows(idx, counts, wt.shape[0])
    P = partials.shape[1]
    for b in range(out.shape[0]):
        n = min(counts[b], idx.shape[1])
        for p in range(P):
            _linear_part(idx[b], (n * p) // P, (n * (p + 1)) // P, wt, partials[b, p])
        for p in range(P):
            out[b] += partials[b, p]


@njit(cache=True, nogil=True, parallel=True)
def linear_scatter_split_parallel(idx, counts, wt, out, partials):
    """``linear_scatter_split`` with the (stream, piece) sums on threads: identical numbers."""
    _check_rows(idx, counts, wt.shape[0])
    B = out.shape[0]
    P = partials.shape[1]
    for item in prange(B * P):
        b = item // P
        p = item % P
        n = min(counts[b], idx.shape[1])
        _linear_part(idx[b], (n * p) // P, (n * (p + 1)) // P, wt, partials[b, p])
    for b in range(B):
        for p in range(P):
            out[b] += partials[b, p]


@njit(cache=True, nogil=True)
def active_to_dense(idx, counts, out):
    """0 / 1 rows ``out [B, N]`` from each stream's active indices (for a dense fallback); bad indices raise."""
    B, N = out.shape
    for b in range(B):
        ob = out[b]
        ob[:] = 0
        for t in range(min(counts[b], idx.shape[1])):
            j = idx[b, t]
            if j < 0 or j >= N:
                raise ValueError("active_to_dense: active index outside the layer")
            ob[j] = 1


def linear_scatter_reference(active, weight, bias):
    """``bias + weight[:, active].sum(1)`` in float64, as float32."""
    w = np.asarray(weight, np.float64)
    return (np.asarray(bias, np.float64) + w[:, np.asarray(active, np.int64)].sum(1)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Pooling and the fused conv-layer LIF + pool pass

@njit(cache=True, nogil=True)
def maxpool2_spikes(s, out):
    """2x2 max pool (OR) of binary spikes, channels last: ``s [B, H, W, C]`` -> ``out [B, H // 2, W // 2, C]``."""
    B, H, W, C = s.shape
    for b in range(B):
        for py in range(H // 2):
            for px in range(W // 2):
                a0 = s[b, 2 * py, 2 * px]
                a1 = s[b, 2 * py, 2 * px + 1]
                a2 = s[b, 2 * py + 1, 2 * px]
                a3 = s[b, 2 * py + 1, 2 * px + 1]
                o = out[b, py, px]
                for c in range(C):
                    o[c] = max(max(a0[c], a1[c]), max(a2[c], a3[c]))


def maxpool2_spikes_reference(s):
    """numpy reference of ``maxpool2_spikes``."""
    s = np.asarray(s)
    B, H, W, C = s.shape
    t = s[:, :H // 2 * 2, :W // 2 * 2].reshape(B, H // 2, 2, W // 2, 2, C)
    return t.max(axis=(2, 4))


@njit(cache=True, nogil=True)
def _lif_rows(bf, bias, vb, sb, oy0, oy1, w_out, c, k, off, tau, v_reset, threshold, decay_input, soft,
              kt=None, ks=None):
    # One output row at a time: its currents are w_out * c contiguous floats of the padded buffer.
    # The usual neuron (decay_input, v_reset 0, hard reset) has its own loop, free of the
    # per-neuron flags (same operations, same results), which LLVM vectorises. With kt, ks the
    # neurons are DA-LIF, with one pair of factors per channel.
    # Each loop also puts the bias back into the currents it read, from a row of biases built
    # once (a slice assignment per pixel cost more than the neurons themselves).
    wp = w_out + k - 1
    m = w_out * c
    usual = decay_input and v_reset == 0 and not soft
    zero = F32(0.0)
    brow = np.empty(m, np.float32)
    for ox in range(w_out):
        for q in range(c):
            brow[ox * c + q] = bias[q]
    for oy in range(oy0, oy1):
        start = ((oy + off) * wp + off) * c
        base = oy * m
        cur = bf[start:start + m]
        vv = vb[base:base + m]
        ss = sb[base:base + m]
        if kt is not None:
            for ox in range(w_out):
                o = ox * c
                for q in range(c):
                    h = _dalif_charge(vv[o + q], cur[o + q], kt[q], ks[q], v_reset)
                    fired = h >= threshold
                    vv[o + q] = _reset(h, fired, v_reset, threshold, soft)
                    ss[o + q] = fired
                    cur[o + q] = bias[q]
        elif usual:
            for q in range(m):
                h = vv[q] + (cur[q] - vv[q]) / tau
                fired = h >= threshold
                vv[q] = zero if fired else h
                ss[q] = fired
                cur[q] = brow[q]
        else:
            for q in range(m):
                h = _charge(vv[q], cur[q], tau, v_reset, decay_input)
                fired = h >= threshold
                vv[q] = _reset(h, fired, v_reset, threshold, soft)
                ss[q] = fired
                cur[q] = brow[q]


@njit(cache=True, nogil=True)
def _active_rows(sb, ib, r0, r1, w_out, c, pool):
    # Active indices of (pooled, if pool) rows r0..r1-1 written from ib[0]; returns their number.
    # Pooling first ORs a pooled row into a scratch row (vectorised), then lists its nonzeros.
    n = 0
    if pool:
        wq = w_out // 2
        row = np.empty(wq * c, np.uint8)
        for py in range(r0, r1):
            s0 = (2 * py) * w_out * c
            s1 = s0 + w_out * c
            top = sb[s0:s0 + w_out * c]
            bot = sb[s1:s1 + w_out * c]
            for px in range(wq):   # (offsets, not a slice per pixel: slices cost more than the ORs)
                a, o = 2 * px * c, px * c
                for q in range(c):
                    row[o + q] = (top[a + q] | top[a + c + q]) | (bot[a + q] | bot[a + c + q])
            out0 = py * wq * c
            for q in range(wq * c):
                ib[n] = out0 + q
                n += row[q]
    else:
        for i in range(r0 * w_out * c, r1 * w_out * c):
            ib[n] = i
            n += sb[i]
    return n


@njit(cache=True, nogil=True)
def _lif_pool_one(bf, bias, vb, sb, ib, h_out, w_out, c, k, off, pool,
                  tau, v_reset, threshold, decay_input, soft, kt, ks):
    _lif_rows(bf, bias, vb, sb, 0, h_out, w_out, c, k, off, tau, v_reset, threshold, decay_input, soft, kt, ks)
    return _active_rows(sb, ib, 0, h_out // 2 if pool else h_out, w_out, c, pool)


@njit(cache=True, nogil=True)
def _zero_border(bf, h_out, w_out, c, k, off):
    # The buffer rows / columns outside the conv output collect contributions nobody reads: zero them.
    hp = h_out + k - 1
    wp = w_out + k - 1
    for y in range(hp):
        if off <= y < off + h_out:   # an interior row: only its left and right margins
            s = y * wp * c
            bf[s:s + off * c] = 0.0
            bf[s + (off + w_out) * c:s + wp * c] = 0.0
        else:
            bf[y * wp * c:(y + 1) * wp * c] = 0.0


@njit(cache=True, nogil=True)
def lif_pool_conv(buf, bias, v, spikes, idx, counts, h_out, w_out, k, off, pool,
                  tau, v_reset, threshold, decay_input, soft, kt=None, ks=None):
    """LIF over a conv layer's padded current buffer, then (``pool``) the 2x2 OR pool, as active indices.

    ``buf [B, (h_out + k - 1) * (w_out + k - 1) * C]`` (conv output pixel ``(y, x)`` at buffer
    pixel ``(y + off, x + off)``, ``off = k - 1 - padding``), ``bias [C]``, ``v`` and ``spikes``
    ``[B, h_out * w_out * C]`` (channels last). Writes each stream's active pooled indices
    ``(py * (w_out // 2) + px) * C + c`` (or, without ``pool``, active LIF indices) to ``idx``
    (one spare slot) and their number to ``counts``; puts ``bias`` back into the buffer.
    With ``kt``, ``ks`` (float32 ``[C]``: each channel's ``sigmoid(w_temporal)``,
    ``sigmoid(w_spatial)``) the neurons are DA-LIF (``tau`` and ``decay_input`` unused).
    """
    tau = F32(tau)
    v_reset = F32(v_reset)
    threshold = F32(threshold)
    c = bias.shape[0]
    _check_factors(kt, ks, c)
    for b in range(buf.shape[0]):
        counts[b] = _lif_pool_one(buf[b], bias, v[b], spikes[b], idx[b], h_out, w_out, c, k, off, pool,
                                  tau, v_reset, threshold, decay_input, soft, kt, ks)
        _zero_border(buf[b], h_out, w_out, c, k, off)


@njit(cache=True, nogil=True, parallel=True)
def lif_pool_conv_parallel(buf, bias, v, spikes, idx, counts, h_out, w_out, k, off, pool,
                           tau, v_reset, threshold, decay_input, soft, parts=1, kt=None, ks=None):
    """``lif_pool_conv`` over threads, identical results: work items are (stream, band of rows),
    ``parts`` bands per stream; each band lists its active indices in its own part of ``idx``,
    then the parts are joined in order."""
    tau = F32(tau)
    v_reset = F32(v_reset)
    threshold = F32(threshold)
    c = bias.shape[0]
    _check_factors(kt, ks, c)
    B = buf.shape[0]
    rows = h_out // 2 if pool else h_out           # rows of the active-index image
    unit = 2 if pool else 1
    parts = max(1, min(parts, max(rows, 1)))
    part_n = np.zeros((B, parts), np.int64)
    row_len = (w_out // 2 if pool else w_out) * c
    for item in prange(B * parts):
        b = item // parts
        p = item % parts
        r0 = (rows * p) // parts
        r1 = (rows * (p + 1)) // parts
        oy1 = h_out if p == parts - 1 else unit * r1
        _lif_rows(buf[b], bias, v[b], spikes[b], unit * r0, oy1, w_out, c, k, off,
                  tau, v_reset, threshold, decay_input, soft, kt, ks)
        part_n[b, p] = _active_rows(spikes[b], idx[b, r0 * row_len:], r0, r1, w_out, c, pool)
    for b in prange(B):
        ib = idx[b]
        total = 0
        for p in range(parts):
            start = ((rows * p) // parts) * row_len
            for t in range(part_n[b, p]):
                ib[total + t] = ib[start + t]
            total += part_n[b, p]
        counts[b] = total
        _zero_border(buf[b], h_out, w_out, c, k, off)


# ---------------------------------------------------------------------------------------------
# A whole network step in one call

@njit(cache=True, nogil=True)
def network_step(x, in_idx, in_val, in_n, ones,
                 conv_w, conv_bias, conv_buf, conv_v, conv_spikes, conv_idx, conv_n, conv_geo, conv_neuron,
                 lin_w, lin_bias, lin_buf, lin_partials, lin_v, lin_spikes, lin_idx, lin_n, lin_neuron, y):
    """One step of a conv / linear LIF network with the serial kernels above, in one call (no
    Python between the layers): the same kernels, in the same order, as calling them one by one.

    Conv layers (tuples, one entry per layer): weights from ``conv_weight_layout``, biases,
    padded current buffers, membranes, spikes, active indices and counts as ``lif_pool_conv``
    takes them; ``conv_geo [L, 8]`` int64 rows ``(h_in, w_in, c_in, h_out, w_out, k, off, pool)``;
    ``conv_neuron [L, 5]`` float64 rows ``(tau, v_reset, threshold, decay_input, soft)``.
    Linear layers likewise (``linear_scatter_split``, then ``lif_reset_flat`` with the
    ``lin_neuron`` row's parameters), except the last one, which has no LIF: its currents are
    copied to ``y [B, N]`` and reset to its bias (its ``lin_v`` entry is a placeholder). The
    input ``x [B, C, H, W]`` is listed with ``active_chw``.
    """
    active_chw(x, in_idx, in_val, in_n)
    idx, vals, n, weighted = in_idx, in_val, in_n, True
    for i in range(len(conv_w)):
        g = conv_geo[i]
        p = conv_neuron[i]
        conv_scatter(idx, vals, n, weighted, conv_w[i], conv_buf[i], g[2], g[0], g[1])
        lif_pool_conv(conv_buf[i], conv_bias[i], conv_v[i], conv_spikes[i], conv_idx[i], conv_n[i], g[3], g[4],
                      g[5], g[6], g[7] != 0, p[0], p[1], p[2], p[3] != 0, p[4] != 0)
        idx, vals, n, weighted = conv_idx[i], ones, conv_n[i], False
    last = len(lin_w) - 1
    for i in range(len(lin_w)):
        linear_scatter_split(idx, n, lin_w[i], lin_buf[i], lin_partials[i])
        p = lin_neuron[i]
        if i == last:
            y[:] = lin_buf[i]
            for b in range(y.shape[0]):
                lin_buf[i][b] = lin_bias[i]
        else:
            lif_reset_flat(lin_buf[i], lin_bias[i], lin_v[i], lin_spikes[i], lin_idx[i], lin_n[i],
                           p[0], p[1], p[2], p[3] != 0, p[4] != 0)
            idx, n = lin_idx[i], lin_n[i]


@njit(cache=True, nogil=True)
def network_run(xs, in_idx, in_val, in_n, ones,
                conv_w, conv_bias, conv_buf, conv_v, conv_spikes, conv_idx, conv_n, conv_geo, conv_neuron,
                lin_w, lin_bias, lin_buf, lin_partials, lin_v, lin_spikes, lin_idx, lin_n, lin_neuron, y, ys):
    """``network_step`` for each ``xs[t]`` in turn (``xs [T, B, C, H, W]``), the output of step t
    into ``ys[t]`` (``[T, B, N]``): several consecutive windows in one call, the same numbers."""
    for t in range(xs.shape[0]):
        network_step(xs[t], in_idx, in_val, in_n, ones,
                     conv_w, conv_bias, conv_buf, conv_v, conv_spikes, conv_idx, conv_n, conv_geo, conv_neuron,
                     lin_w, lin_bias, lin_buf, lin_partials, lin_v, lin_spikes, lin_idx, lin_n, lin_neuron, y)
        ys[t] = y
