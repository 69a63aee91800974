"""numba SNN kernels (eventflow.kernels.snn) and FastNetwork against the torch reference."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eventflow import snn
from eventflow.kernels import snn as K
from eventflow.snn.fast import FastNetwork, FastState
from eventflow.snn.layers import Conv2d, Flatten, Linear, MaxPool2d, PixelUnshuffle, Sequential
from eventflow.snn.neurons import DALIF, LIF, MembraneState, lif_step


# ----- fused LIF step: bit-exact against the torch step, every parameter combination

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 300), tau=st.sampled_from([1.0, 2.0, 3.0, 7.5]),
       v_reset=st.sampled_from([0.0, -0.3, 0.2]), threshold=st.sampled_from([1.0, 0.7]),
       decay_input=st.booleans(), soft=st.booleans(), out_dtype=st.sampled_from([np.uint8, np.float32]))
def test_lif_step_equals_torch(seed, n, tau, v_reset, threshold, decay_input, soft, out_dtype):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 2).astype(np.float32)
    v = (rng.standard_normal(n)).astype(np.float32)
    p = LIF(tau=tau, v_reset=v_reset, v_threshold=threshold, decay_input=decay_input,
            reset="soft" if soft else "hard")
    s_ref, st_ref = lif_step(torch.from_numpy(x), MembraneState(torch.from_numpy(v.copy())), p)
    s = np.zeros(n, out_dtype)
    v_k = v.copy()
    count = K.lif_step(x, v_k, s, tau, v_reset, threshold, decay_input, soft)
    np.testing.assert_array_equal(s.astype(np.float32), s_ref.numpy())
    np.testing.assert_array_equal(v_k, st_ref.v.numpy())
    assert count == int(s_ref.sum())
    s_np, v_np = K.lif_step_reference(x, v, tau, v_reset, threshold, decay_input, soft)
    np.testing.assert_array_equal(s_np, s_ref.numpy())
    np.testing.assert_array_equal(v_np, st_ref.v.numpy())


def test_lif_reset_flat_restores_bias_and_lists_spikes():
    rng = np.random.default_rng(0)
    B, N = 3, 50
    bias = rng.standard_normal(N).astype(np.float32)
    cur = rng.standard_normal((B, N)).astype(np.float32) * 3
    v = rng.standard_normal((B, N)).astype(np.float32)
    s_ref, v_ref = K.lif_step_reference(cur, v, 2.0, 0.0, 1.0, True, False)
    spikes, idx, counts = np.zeros((B, N), np.uint8), np.zeros((B, N + 1), np.int64), np.zeros(B, np.int64)
    K.lif_reset_flat(cur, bias, v, spikes, idx, counts, 2.0, 0.0, 1.0, True, False)
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_array_equal(cur, np.broadcast_to(bias, (B, N)))
    for b in range(B):
        np.testing.assert_array_equal(idx[b, :counts[b]], np.flatnonzero(s_ref[b]))


# ----- active inputs, scatter, pooling

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9),
       density=st.floats(0.0, 1.0))
def test_active_chw(seed, c, h, w, density):
    rng = np.random.default_rng(seed)
    x = ((rng.random((2, c, h, w)) < density) * rng.integers(1, 4, (2, c, h, w))).astype(np.float32)
    n = c * h * w
    idx, vals, counts = np.zeros((2, n + 1), np.int64), np.zeros((2, n + 1), np.float32), np.zeros(2, np.int64)
    K.active_chw(x, idx, vals, counts)
    for b in range(2):
        ri, rv = K.active_chw_reference(x[b])
        np.testing.assert_array_equal(idx[b, :counts[b]], ri)
        np.testing.assert_array_equal(vals[b, :counts[b]], rv)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c_in=st.integers(1, 3), c_out=st.integers(1, 5), h=st.integers(1, 8),
       w=st.integers(1, 8), k=st.sampled_from([1, 3, 5]), pad_frac=st.floats(0, 1), density=st.floats(0, 1),
       weighted=st.booleans())
def test_conv_scatter_equals_conv2d(seed, c_in, c_out, h, w, k, pad_frac, density, weighted):
    rng = np.random.default_rng(seed)
    padding = int(round(pad_frac * (k - 1)))
    weight = rng.standard_normal((c_out, c_in, k, k)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    active = np.flatnonzero(rng.random(h * w * c_in) < density)
    values = (rng.integers(1, 4, active.size) if weighted else np.ones(active.size)).astype(np.float32)
    ho, wo = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    if ho < 1 or wo < 1:
        return
    off = k - 1 - padding
    buf = np.zeros((1, h + k - 1, w + k - 1, c_out), np.float32)
    buf[:, off:off + ho, off:off + wo] = bias
    idx = np.zeros((1, active.size + 1), np.int64)
    idx[0, :active.size] = active
    vals = np.zeros((1, active.size + 1), np.float32)
    vals[0, :active.size] = values
    K.conv_scatter(idx, vals, np.array([active.size]), weighted, K.conv_weight_layout(weight), buf.reshape(1, -1),
                   c_in, h, w)
    ref = K.conv_scatter_reference(active, values, weight, bias, (h, w, c_in), padding)
    np.testing.assert_allclose(buf[0, off:off + ho, off:off + wo], ref, rtol=1e-5, atol=1e-5)
    for parts in (1, 2, 3):
        buf2 = np.zeros_like(buf)
        buf2[:, off:off + ho, off:off + wo] = bias
        K.conv_scatter_parallel(idx, vals, np.array([active.size]), weighted, K.conv_weight_layout(weight),
                                buf2.reshape(1, -1), c_in, h, w, parts)
        np.testing.assert_array_equal(buf2, buf)


def test_conv_scatter_rejects_out_of_range_indices():
    wl = K.conv_weight_layout(np.ones((2, 1, 3, 3), np.float32))
    buf = np.zeros((1, 6 * 6 * 2), np.float32)
    idx = np.array([[16, 0]], np.int64)                       # 4x4x1 image: 16 is outside
    with pytest.raises(ValueError):
        K.conv_scatter(idx, np.ones((1, 2), np.float32), np.array([1]), False, wl, buf, 1, 4, 4)
    assert not buf.any()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_in=st.integers(1, 40), n_out=st.integers(1, 20), density=st.floats(0, 1))
def test_linear_scatter(seed, n_in, n_out, density):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n_out, n_in)).astype(np.float32)
    bias = rng.standard_normal(n_out).astype(np.float32)
    active = np.flatnonzero(rng.random(n_in) < density)
    idx = np.zeros((1, n_in + 1), np.int64)
    idx[0, :active.size] = active
    out = bias[None].copy()
    K.linear_scatter(idx, np.array([active.size]), np.ascontiguousarray(weight.T), out)
    np.testing.assert_allclose(out[0], K.linear_scatter_reference(active, weight, bias), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        K.linear_scatter(np.array([[n_in]]), np.array([1]), np.ascontiguousarray(weight.T), out)
    # in P pieces: each piece summed sequentially in float32 from 0, then added in order; parallel: same bits
    wt = np.ascontiguousarray(weight.T)
    for parts in (1, 2, 3):
        expect = bias.copy()
        n = active.size
        for p in range(parts):
            rows = wt[active[n * p // parts:n * (p + 1) // parts]]
            piece = np.cumsum(rows, axis=0, dtype=np.float32)[-1] if len(rows) else np.zeros(n_out, np.float32)
            expect = expect + piece
        for fn in (K.linear_scatter_split, K.linear_scatter_split_parallel):
            out = bias[None].copy()
            fn(idx, np.array([active.size]), wt, out, np.zeros((1, parts, n_out), np.float32))
            np.testing.assert_array_equal(out[0], expect)
            with pytest.raises(ValueError):  # both variants reject a bad index
                fn(np.array([[-1]]), np.array([1]), wt, out, np.zeros((1, parts, n_out), np.float32))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 5))
def test_maxpool2_spikes(seed, h, w, c):
    s = (np.random.default_rng(seed).random((2, h, w, c)) < 0.2).astype(np.uint8)
    out = np.zeros((2, h // 2, w // 2, c), np.uint8)
    K.maxpool2_spikes(s, out)
    np.testing.assert_array_equal(out, K.maxpool2_spikes_reference(s))
    ref = torch.nn.functional.max_pool2d(torch.from_numpy(s).permute(0, 3, 1, 2).float(), 2)
    np.testing.assert_array_equal(out, ref.permute(0, 2, 3, 1).numpy())


def test_lif_pool_conv_equals_lif_then_pool():
    rng = np.random.default_rng(3)
    B, ho, wo, c, k, off = 2, 7, 6, 5, 3, 1
    bias = rng.standard_normal(c).astype(np.float32)
    buf = rng.standard_normal((B, ho + k - 1, wo + k - 1, c)).astype(np.float32) * 2
    cur = buf[:, off:off + ho, off:off + wo].copy()
    v = rng.standard_normal((B, ho * wo * c)).astype(np.float32)
    s_ref, v_ref = K.lif_step_reference(cur.reshape(B, -1), v, 2.0, 0.0, 1.0, True, False)
    pooled = K.maxpool2_spikes_reference(s_ref.reshape(B, ho, wo, c)).reshape(B, -1)
    fns = (K.lif_pool_conv, K.lif_pool_conv_parallel, partial(K.lif_pool_conv_parallel, parts=2),
           partial(K.lif_pool_conv_parallel, parts=3))
    for fn in fns:
        b2, v2 = buf.copy().reshape(B, -1), v.copy()
        spikes, idx, counts = np.zeros((B, ho * wo * c), np.uint8), np.zeros((B, pooled.shape[1] + 1), np.int64), \
            np.zeros(B, np.int64)
        fn(b2, bias, v2, spikes, idx, counts, ho, wo, k, off, True, 2.0, 0.0, 1.0, True, False)
        np.testing.assert_array_equal(v2, v_ref)
        np.testing.assert_array_equal(spikes, s_ref)
        for b in range(B):
            np.testing.assert_array_equal(idx[b, :counts[b]], np.flatnonzero(pooled[b]))
        b2 = b2.reshape(buf.shape)
        np.testing.assert_array_equal(b2[:, off:off + ho, off:off + wo], np.broadcast_to(bias, cur.shape))
        b2[:, off:off + ho, off:off + wo] = 0
        assert not b2.any()


# ----- FastNetwork against the torch Network

def _small_net(dyadic: bool, neuron=LIF()):
    spec = Sequential((("conv1", Conv2d(2, 4, 3, padding=1)), ("lif1", neuron), ("pool1", MaxPool2d(2)),
                       ("conv2", Conv2d(4, 8, 3, padding=1)), ("lif2", neuron), ("pool2", MaxPool2d(2)),
                       ("flatten", Flatten()), ("fc1", Linear(8 * 4 * 4, 16)), ("lif3", neuron),
                       ("fc2", Linear(16, 3))))
    net = snn.Network(spec, (2, 16, 16), seed=0).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0)
            if dyadic:   # multiples of 1/64: every sum is exact in float32, in any order
                p.copy_(torch.round(p * 64) / 64)
    return net


def _compare(net, fast, batch, steps, density, seed):
    g = torch.Generator().manual_seed(seed)
    state, fstate = net.init_state(batch), fast.init_state(batch)
    same = total = close = n_v = 0
    worst = 0.0
    with torch.no_grad():
        for _ in range(steps):
            x = (torch.rand(batch, *net.in_shape, generator=g) < density).float()
            outs, state = net.trace(x[None], state)
            y, fstate, spikes = fast.step(x, fstate, trace=True)
            for name, s in spikes.items():
                ref = outs[name][0].numpy()
                same += int((s == ref).sum())
                total += s.size
            for name, m in fast.to_torch_state(fstate).items():
                d = (m.v - state[name].v).abs()
                worst = max(worst, float(d.max()))
                close += int((d <= 1e-4).sum())
                n_v += d.numel()
            yield y, outs["fc2"][0].numpy(), same, total, worst, close, n_v


@pytest.mark.parametrize("neuron", [LIF(), LIF(tau=3.0, reset="soft", v_threshold=0.75),
                                    LIF(tau=4.0, decay_input=False, v_reset=-0.25)])
def test_fast_small_net_exact(neuron):
    _assert_exact(_small_net(dyadic=True, neuron=neuron))


def _assert_exact(net):
    """FastNetwork equals the torch reference bit for bit over 20 steps at batch 2 (dyadic
    weights: every sum exact in any order), and every spiking layer fires (not silent nets).
    Returns the FastNetwork."""
    fast = FastNetwork.from_network(net)
    steps = 0
    for y, y_ref, same, total, worst, _, _ in _compare(net, fast, batch=2, steps=20, density=0.2, seed=1):
        np.testing.assert_array_equal(y, y_ref)
        assert same == total and worst == 0.0
        steps += 1
    assert steps == 20
    x = (torch.rand(20, 2, 2, 16, 16, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    _, _, spikes = fast.run(x, fast.init_state(2), trace=True)
    assert all(s.sum() > 0 for s in spikes.values()), {k: s.sum() for k, s in spikes.items()}
    return fast


def test_fast_small_net_random_weights_and_parallel():
    net = _small_net(dyadic=False)
    fast, fast_par = FastNetwork.from_network(net), FastNetwork.from_network(net, parallel=True)
    for y, y_ref, same, total, worst, close, n_v in _compare(net, fast, batch=3, steps=20, density=0.2, seed=2):
        assert np.mean(np.abs(y - y_ref) <= 1e-4) >= 0.9
    assert same >= 0.999 * total and close >= 0.999 * n_v
    # parallel variant: identical numbers
    x = (torch.rand(10, 3, 2, 16, 16, generator=torch.Generator().manual_seed(5)) < 0.2).float()
    _assert_runs_equal(fast, fast_par, x)


def _assert_runs_equal(a, b, x):
    """Two FastNetworks give identical outputs and final membranes over ``x [T, B, ...]``."""
    ya, sa = a.run(x, a.init_state(x.shape[1]))
    yb, sb = b.run(x, b.init_state(x.shape[1]))
    np.testing.assert_array_equal(ya, yb)
    for va, vb in zip(sa.v, sb.v):
        np.testing.assert_array_equal(va, vb)


def test_fast_step_is_pure_and_equals_run_and_split():
    net = _small_net(dyadic=False)
    fast = FastNetwork.from_network(net)
    x = (torch.rand(12, 2, 2, 16, 16, generator=torch.Generator().manual_seed(7)) < 0.3).float()
    y_all, s_all = fast.run(x, fast.init_state(2))
    s0 = fast.init_state(2)
    y_a, s_mid = fast.run(x[:5], s0)
    assert not any(v.any() for v in s0.v)          # the caller's state is not touched
    y_b, s_end = fast.run(x[5:].numpy(), fast.from_torch_state(fast.to_torch_state(s_mid)))
    np.testing.assert_array_equal(np.concatenate([y_a, y_b]), y_all)
    for a, b in zip(s_all.v, s_end.v):
        np.testing.assert_array_equal(a, b)
    # traced: the same outputs and state, and each step's spikes as step(trace=True) gives them
    y_tr, s_tr, traced = fast.run(x, s0, trace=True)
    np.testing.assert_array_equal(y_tr, y_all)
    state = s0
    for t in range(len(x)):
        _, state, spikes = fast.step(x[t], state, trace=True)
        assert spikes.keys() == traced.keys()
        for name, sp in spikes.items():
            np.testing.assert_array_equal(traced[name][t], sp)
    for a, b in zip(s_tr.v, state.v):
        np.testing.assert_array_equal(a, b)
    assert not any(v.any() for v in s0.v) and sum(sp.sum() for sp in traced.values()) > 0
    with pytest.raises(ValueError):
        fast.step(x[0, :1], s_all)
    with pytest.raises(ValueError):
        fast.step(x[0, :, :1], fast.init_state(2))
    for dtype in (torch.bool, torch.uint8, torch.float64):    # any 0 / 1 input gives the same step
        y_d, _ = fast.step(x[0].to(dtype), fast.init_state(2))
        np.testing.assert_array_equal(y_d, y_all[0])


def test_fast_reference_net_agrees():
    """The issue's reference net, batch 1, 20 steps at 5% input: >= 99.9% of the spikes equal and of the
    membranes within 1e-4. (Summation order differs from torch's: a neuron whose input lands within
    rounding of the threshold can fire in one and not the other, its membrane then differs by ~1;
    over 100 steps about 5e-7 of the spikes differ, mostly in lif4.)"""
    net = snn.reference_network()
    fast = FastNetwork.from_network(net)
    for y, y_ref, same, total, worst, close, n_v in _compare(net, fast, batch=1, steps=20, density=0.05, seed=0):
        assert same >= 0.999 * total, (same, total)
        assert close >= 0.999 * n_v, (close, n_v)
        assert np.mean(np.abs(y - y_ref) <= 1e-3) >= 0.9


def test_a_step_interrupted_midway_leaves_no_partial_sums_behind(monkeypatch):
    # batch 3: the layer-by-layer path (network_step, one call, serves batches up to DENSE_ROWS)
    net = _small_net(dyadic=True)
    fast, fresh = FastNetwork.from_network(net), FastNetwork.from_network(net)
    x = (torch.rand(2, 3, 2, 16, 16, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    state = fast.init_state(3)
    _, state = fast.step(x[0], state)  # the scratch buffers exist now

    def interrupted(*args):
        raise KeyboardInterrupt

    real_lif = K.lif_reset_flat
    monkeypatch.setattr(K, "lif_reset_flat", interrupted)  # after the conv layers have summed
    with pytest.raises(KeyboardInterrupt):
        fast.step(x[1], state)
    monkeypatch.setattr(K, "lif_reset_flat", real_lif)
    y, _ = fast.step(x[1], state)
    _, fstate = fresh.step(x[0], fresh.init_state(3))
    y_ref, _ = fresh.step(x[1], fstate)
    np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("neuron", [LIF(), LIF(tau=3.0, reset="soft", v_threshold=0.75),
                                    LIF(tau=4.0, decay_input=False, v_reset=-0.25)])
def test_whole_step_in_one_call_equals_layer_by_layer(batch, neuron, monkeypatch):
    # network_step (small batches, serial, no trace) against the per-layer kernels (trace=True)
    calls = []
    whole_step = K.network_step
    monkeypatch.setattr(K, "network_step", lambda *a: calls.append(1) or whole_step(*a))
    net = _small_net(dyadic=False, neuron=neuron)
    one, layered = FastNetwork.from_network(net), FastNetwork.from_network(net)
    x = (torch.rand(15, batch, 2, 16, 16, generator=torch.Generator().manual_seed(11)) < 0.3).float()
    sa, sb = one.init_state(batch), layered.init_state(batch)
    fired = 0
    for t in range(15):
        ya, sa = one.step(x[t], sa)
        yb, sb, spikes = layered.step(x[t], sb, trace=True)
        np.testing.assert_array_equal(ya, yb)
        for a, b in zip(sa.v, sb.v):
            np.testing.assert_array_equal(a, b)
        fired += sum(int(s.sum()) for s in spikes.values())
    assert fired > 0 and len(calls) == 15       # every step of `one` ran in network_step, none of `layered`



@pytest.mark.parametrize("batch", [1, 3])
def test_fast_net_with_a_pixel_unshuffle_stem_equals_the_reference(batch):
    # the stem (2, 32, 32) -> (8, 16, 16) is applied to each input frame before the sparse kernels
    spec = Sequential((("unshuffle", PixelUnshuffle(2)),
                       ("conv1", Conv2d(8, 4, 3, padding=1)), ("lif1", LIF()), ("pool1", MaxPool2d(2)),
                       ("conv2", Conv2d(4, 8, 3, padding=1)), ("lif2", LIF()), ("pool2", MaxPool2d(2)),
                       ("flatten", Flatten()), ("fc1", Linear(8 * 4 * 4, 16)), ("lif3", LIF()),
                       ("fc2", Linear(16, 3))))
    net = snn.Network(spec, (2, 32, 32), seed=0).eval()
    with torch.no_grad():
        for p in net.parameters():   # dyadic: every sum exact, in any order
            p.copy_(torch.round(p * 8 * 64) / 64)
    fast = FastNetwork.from_network(net)
    assert fast.in_shape == (2, 32, 32) and fast.unshuffle == 2
    steps = 0
    for y, y_ref, same, total, worst, _, _ in _compare(net, fast, batch=batch, steps=12, density=0.2, seed=3):
        np.testing.assert_array_equal(y, y_ref)
        assert same == total and worst == 0.0
        steps += 1
    assert steps == 12
    # a whole run (in one kernel call at batch 1) equals the reference run, and every layer fires
    x = (torch.rand(12, batch, 2, 32, 32, generator=torch.Generator().manual_seed(8)) < 0.2).float()
    y_fast, s_fast = fast.run(x, fast.init_state(batch))
    with torch.no_grad():
        y_ref, s_ref = net.run(x, net.init_state(batch))
    np.testing.assert_array_equal(y_fast, y_ref.numpy())
    for name, m in fast.to_torch_state(s_fast).items():
        np.testing.assert_array_equal(m.v.numpy(), s_ref[name].v.numpy())
    _, _, spikes = fast.run(x, fast.init_state(batch), trace=True)
    assert all(s.sum() > 0 for s in spikes.values()), {k: s.sum() for k, s in spikes.items()}
    for dtype in (torch.bool, torch.uint8):   # 0 / 1 inputs of other dtypes, and a non-contiguous one
        np.testing.assert_array_equal(fast.run(x.to(dtype), fast.init_state(batch))[0], y_fast)
    xt = x.transpose(3, 4).contiguous().transpose(3, 4)
    assert not xt.is_contiguous()
    np.testing.assert_array_equal(fast.step(xt[0], fast.init_state(batch))[0], y_fast[0])


def _dalif_net(reset="hard", v_reset=0.0):
    def neuron(c):
        return DALIF(channels=c, init_tau=3.0, reset=reset, v_reset=v_reset)
    spec = Sequential((("conv1", Conv2d(2, 4, 3, padding=1)), ("sn1", neuron(4)), ("pool1", MaxPool2d(2)),
                       ("conv2", Conv2d(4, 8, 3, padding=1)), ("sn2", neuron(8)), ("pool2", MaxPool2d(2)),
                       ("flatten", Flatten()), ("fc1", Linear(8 * 4 * 4, 16)), ("sn3", neuron(16)),
                       ("fc2", Linear(16, 3))))
    net = snn.Network(spec, (2, 16, 16), seed=0).eval()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("w_spatial", "w_temporal")):   # a different decay per channel
                p.add_(0.7 * torch.randn(p.shape, generator=g))
            else:                                             # dyadic: every sum exact, in any order
                p.copy_(torch.round(p * 4 * 64) / 64)
    return net


@pytest.mark.parametrize("reset, v_reset", [("hard", 0.0), ("soft", 0.0), ("hard", -0.25)])
def test_fast_dalif_net_exact(reset, v_reset):
    net = _dalif_net(reset, v_reset)
    fast = _assert_exact(net)
    x = (torch.rand(20, 2, 2, 16, 16, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    _assert_runs_equal(fast, FastNetwork.from_network(net, parallel=True), x)   # the parallel kernels too
    assert fast._work[2]["fused"] is None                    # (the one-call step is LIF only)


@pytest.mark.parametrize("batch", [1, 2])
def test_run_in_one_call_equals_step_by_step(batch, monkeypatch):
    # network_run (all T windows in one kernel call) against T calls of step, bit for bit
    calls = []
    whole_run = K.network_run
    monkeypatch.setattr(K, "network_run", lambda *a: calls.append(1) or whole_run(*a))
    net = _small_net(dyadic=False, neuron=LIF(tau=3.0, reset="soft", v_threshold=0.75))
    fast = FastNetwork.from_network(net)
    x = (torch.rand(12, batch, 2, 16, 16, generator=torch.Generator().manual_seed(5)) < 0.3).float().numpy()
    s0 = fast.init_state(batch)
    s0 = FastState(tuple(v + 0.1 for v in s0.v))   # not at rest
    before = [v.copy() for v in s0.v]
    ys, s_run = fast.run(x, s0)
    assert len(calls) == 1 and all(np.array_equal(a, b) for a, b in zip(s0.v, before))   # state left alone
    st = s0
    for t in range(12):
        y, st = fast.step(x[t], st)
        np.testing.assert_array_equal(ys[t], y)
    for a, b in zip(s_run.v, st.v):
        np.testing.assert_array_equal(a, b)
    ys2, s_in = fast.run(x[:5], s0, inplace=True)   # inplace: the caller's arrays are the new state
    assert all(a is b for a, b in zip(s_in.v, s0.v)) and np.array_equal(ys2, ys[:5])
    empty, _ = fast.run(x[:0], s0)
    assert empty.shape == (0, batch, *fast.out_shape)


def test_run_checks_the_state_even_for_no_steps():
    fast = FastNetwork.from_network(_small_net(dyadic=False, neuron=LIF()))
    x = np.zeros((0, 2, 2, 16, 16), np.float32)
    with pytest.raises(ValueError, match="2 streams but the state holds 1"):
        fast.run(x, fast.init_state(1))
    y, _, traced = fast.run(x, fast.init_state(2), trace=True)
    assert y.shape == (0, 2, *fast.out_shape) and traced == {}
