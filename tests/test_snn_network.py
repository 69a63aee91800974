"""Networks of eventflow.snn: step == run, resume, streams joining and leaving, BN folding, the reference net."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from eventflow.snn import (ALIF, LI, LIF, PLIF, AvgPool2d, BatchNorm, Conv2d, Flatten, HybridNet, Linear, MaxPool2d,
                           Network, ReLU, Sequential, SumPool2d, Surrogate, fold_batch_norm, reference_network,
                           sew_block)
from eventflow.snn import state as S

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "convsnn.py"
IN_SHAPE = (2, 8, 8)


def _spec(surrogate=Surrogate()):
    return Sequential([
        ("conv1", Conv2d(2, 4, 3, padding=1)), ("bn1", BatchNorm(4)), ("lif1", LIF(surrogate=surrogate)),
        ("pool1", SumPool2d(2)),
        ("block", sew_block(4, 4, PLIF(surrogate=surrogate))),
        ("down", sew_block(4, 6, LIF(reset="soft", surrogate=surrogate), stride=2)),
        ("pool2", AvgPool2d(2)), ("flatten", Flatten()),
        ("fc1", Linear(6, 10)), ("bn2", BatchNorm(10)), ("alif", ALIF(surrogate=surrogate)),
        ("fc2", Linear(10, 3)), ("readout", LI()),
    ])


def _randomise_batch_norms(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.weights.named_parameters():
            if name.endswith("running_mean"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith("running_var"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.split(".")[-2].startswith("bn"):
                p.copy_(p + 0.2 * torch.randn(p.shape, generator=g))


def _net(dtype=torch.float64, surrogate=Surrogate()):
    net = Network(_spec(surrogate), IN_SHAPE, seed=0)
    _randomise_batch_norms(net)
    with torch.no_grad():
        for name, p in net.weights.named_parameters():
            if name.endswith("weight") and p.ndim > 1:
                p.mul_(6.0)                                   # enough drive that every layer spikes
    # eval mode: the stream and step guarantees are inference ones (in training mode BatchNorm
    # normalises by the batch's statistics, which couples the streams of a batch)
    return net.to(dtype).eval()


def _x(T, B, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, *IN_SHAPE, generator=g) < 0.3).to(dtype)


def _steps(net, x_seq, state):
    out = []
    for x in x_seq:
        y, state = net.step(x, state)
        out.append(y)
    return torch.stack(out), state


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_network_is_active():
    net = _net()
    with torch.no_grad():
        outs, _ = net.trace(_x(6, 3), net.init_state(3))
    for name in ("lif1", "block", "down", "alif"):
        assert 0.02 < float(outs[name].mean()) < 0.9, name


def test_step_equals_run():
    net, x = _net(), _x(7, 3)
    y_run, st_run = net.run(x, net.init_state(3))
    y_step, st_step = _steps(net, x, net.init_state(3))
    _close(y_run, y_step)
    S.map_state(_close, st_run, st_step)
    assert net(x)[0].shape == (7, 3, 3)


def test_resume_equals_uninterrupted_run():
    net, x = _net(), _x(10, 2)
    y_all, st_all = net.run(x, net.init_state(2))
    y_a, st = net.run(x[:4], net.init_state(2))
    buf = io.BytesIO()
    torch.save(S.to_flat_dict(st), buf)
    buf.seek(0)
    restored = S.from_flat_dict(torch.load(buf, weights_only=True), like=_net().init_state(2))
    y_b, st_b = _net().run(x[4:], restored)                      # a fresh network with the same weights
    _close(torch.cat([y_a, y_b]), y_all)
    S.map_state(_close, st_b, st_all)


def test_from_flat_dict_checks_names_and_shapes():
    net = _net()
    flat = S.to_flat_dict(net.init_state(2))
    with pytest.raises(KeyError, match="missing"):
        S.from_flat_dict({k: v for k, v in list(flat.items())[1:]}, like=net.init_state(2))
    bad = dict(flat, **{"lif1.v": torch.zeros(2, 5, 8, 8)})
    with pytest.raises(ValueError, match="per-stream shape"):
        S.from_flat_dict(bad, like=net.init_state(2))


def test_streams_join_and_leave_without_disturbing_others():
    net = _net()
    x = _x(8, 3, seed=3)
    newcomer = _x(4, 1, seed=4)
    alone = [net.run(x[:, i:i + 1], net.init_state(1))[0] for i in range(3)]
    y_a, st = net.run(x[:4], net.init_state(3))
    st = S.concat([S.select(st, [0, 2]), net.init_state(1)])    # stream 1 leaves, a new one joins
    y_b, _ = net.run(torch.cat([x[4:, [0, 2]], newcomer], 1), st)
    for col, i in ((0, 0), (1, 2)):
        _close(torch.cat([y_a[:, i], y_b[:, col]]), alone[i][:, 0])
    _close(y_b[:, 2], net.run(newcomer, net.init_state(1))[0][:, 0])


def test_reset_streams_restarts_only_those():
    net, x = _net(), _x(6, 3, seed=5)
    _, st = net.run(x[:3], net.init_state(3))
    before = S.clone(st)
    st2 = net.reset_streams(st, [1])
    S.map_state(_close, st, before)                             # the argument is not modified
    S.map_state(_close, S.select(st2, [0, 2]), S.select(st, [0, 2]))
    S.map_state(_close, S.select(st2, [1]), net.init_state(1))
    y, _ = net.run(x[3:], st2)
    _close(y[:, 1], net.run(x[3:, 1:2], net.init_state(1))[0][:, 0])


def test_batch_size_mismatch_raises():
    net = _net()
    st = net.init_state(3)
    with pytest.raises(ValueError, match="2 streams but the state holds 3"):
        net.step(_x(1, 2)[0], st)
    with pytest.raises(ValueError, match="streams"):
        net.run(_x(4, 1), st)
    with pytest.raises(ValueError, match="input samples shaped"):
        net.step(torch.zeros(3, 2, 9, 9, dtype=torch.float64), st)
    with pytest.raises(ValueError, match="disagree"):
        S.batch_size({"a": torch.zeros(2), "b": torch.zeros(3)})


def test_fold_batch_norm_equals_conv_then_bn():
    g = torch.Generator().manual_seed(2)
    w, b, x = torch.randn(5, 3, 3, 3, generator=g), torch.randn(5, generator=g), torch.randn(2, 3, 6, 6, generator=g)
    bn = {"weight": torch.rand(5, generator=g) + 0.5, "bias": torch.randn(5, generator=g),
          "running_mean": torch.randn(5, generator=g), "running_var": torch.rand(5, generator=g) + 0.1}
    w, b, x, bn = w.double(), b.double(), x.double(), {k: v.double() for k, v in bn.items()}
    ref = F.batch_norm(F.conv2d(x, w, b, padding=1), bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"],
                       False, 0.0, 1e-5)
    wf, bf = fold_batch_norm(w, b, bn)
    _close(F.conv2d(x, wf, bf, padding=1), ref)
    wf, bf = fold_batch_norm(w, None, bn)
    ref = F.batch_norm(F.conv2d(x, w, None, padding=1), bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"],
                       False, 0.0, 1e-5)
    _close(F.conv2d(x, wf, bf, padding=1), ref)


def _kinds(spec):
    parts = [p for _, p in spec.layers] if isinstance(spec, Sequential) else [spec]
    out = []
    for p in parts:
        if isinstance(p, Sequential):
            out += _kinds(p)
        elif hasattr(p, "body"):
            out += _kinds(p.body) + (_kinds(p.shortcut) if p.shortcut is not None else [])
        else:
            out.append(type(p).__name__)
    return out


def test_network_with_batch_norms_folded_is_equal():
    net, x = _net(), _x(8, 2, seed=6)
    folded = net.fold_batch_norms()
    assert _kinds(net.spec).count("BatchNorm") == 7 and "BatchNorm" not in _kinds(folded.spec)
    y, _ = net.run(x, net.init_state(2))
    y_f, _ = folded.run(x, folded.init_state(2))
    _close(y_f, y)
    with torch.no_grad():                                        # the folded net shares no tensor with the original
        folded.weights["fc2"]["weight"].zero_()
    assert net.weights["fc2"]["weight"].abs().sum() > 0
    lone = Network(Sequential([("bn", BatchNorm(2)), ("lif", LIF())]), (2,), seed=0).fold_batch_norms()
    assert _kinds(lone.spec) == ["BatchNorm", "LIF"] and not lone.weights["bn"]["running_var"].requires_grad


def test_pooling_layers():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert SumPool2d(2).step(x, None, {})[0].flatten().tolist() == [10.0, 18.0, 42.0, 50.0]
    assert AvgPool2d(2).step(x, None, {})[0].flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert MaxPool2d(2).step(x, None, {})[0].flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    assert SumPool2d(2).out_shape((1, 1, 5, 5)) == (1, 1, 2, 2)


@pytest.mark.parametrize("kind", ["atan", "sigmoid", "triangle"])
def test_surrogate_gradients_flow_through_the_network(kind):
    alpha = {"atan": 2.0, "sigmoid": 4.0, "triangle": 1.0}[kind]
    net = _net(torch.float32, Surrogate(kind, alpha))
    y, _ = net.run(_x(6, 2, dtype=torch.float32), net.init_state(2))
    y.sum().backward()
    grads = {n: p.grad for n, p in net.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert "weights.block.body.sn1.w" in grads and "weights.bn2.bias" in grads
    assert all(g.abs().sum() > 0 for g in grads.values()), [n for n, g in grads.items() if g.abs().sum() == 0]


def test_hybrid_net_run_equals_steps_then_readout():
    backbone = Sequential([("conv", Conv2d(2, 4, 3, padding=1)), ("lif", LIF()), ("pool", MaxPool2d(4)),
                           ("flatten", Flatten())])
    head = Sequential([("fc1", Linear(16, 8)), ("relu", ReLU()), ("fc2", Linear(8, 3))])
    hy = HybridNet(backbone, head, IN_SHAPE, seed=0).double()
    x = _x(5, 3, seed=7)
    logits, st = hy.run(x, hy.init_state(3))
    st2 = hy.init_state(3)
    for xt in x:
        _, st2 = hy.step(xt, st2)
    assert st2["readout"].steps.tolist() == [5, 5, 5]
    logits2, st2 = hy.readout(st2)
    _close(logits2, logits)
    assert st2["readout"].steps.tolist() == [0, 0, 0] and logits.shape == (3, 3)
    _close(hy.run(x[:, 1:2], S.select(hy.init_state(3), [1]))[0], logits[1:2])
    with pytest.raises(ValueError, match="stateless"):
        HybridNet(backbone, Sequential([Linear(16, 3), LIF()]), IN_SHAPE)


# --- the reference network ------------------------------------------------------------

def _bench_module():
    if not BENCH.exists():
        pytest.skip(f"peer script {BENCH} not present")
    spec = importlib.util.spec_from_file_location("bench_convsnn_reference", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def reference():
    return reference_network()


def test_reference_network_smoke(reference):
    net = reference
    assert net.out_shape == (11,)
    assert sum(s.v[0].numel() for s in net.init_state(1).values()) == 917_760
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(6, 1, 2, 128, 128, generator=g) < 0.05).float()
    with torch.no_grad():
        outs, st = net.trace(x, net.init_state(1))
        y_step, _ = _steps(net, x, net.init_state(1))
    torch.testing.assert_close(outs["fc2"], y_step, rtol=1e-5, atol=1e-4)
    rates = [float(outs[f"lif{i}"][2:].mean()) for i in range(1, 5)]  # measured ~ 4.3, 13, 22, 26 %
    for r, (lo, hi) in zip(rates, [(0.02, 0.07), (0.07, 0.2), (0.12, 0.32), (0.12, 0.4)]):
        assert lo < r < hi, rates


def test_reference_network_equals_the_peer_script(reference):
    bench = _bench_module()
    layers = bench.reference_layers(0)
    for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
        assert torch.equal(reference.weights[name]["weight"], layers[name].weight), name
        assert torch.equal(reference.weights[name]["bias"], layers[name].bias), name
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(3, 1, 2, 128, 128, generator=g) < 0.05).float()
    baseline, state = bench.BaselineStep(layers), reference.init_state(1)
    vs = [torch.zeros(s) for s in bench.state_shapes(1)]
    with torch.no_grad():
        for xt in x:
            y_ref, *vs = baseline(xt, *vs)
            y, state = reference.step(xt, state)
            assert torch.equal(y, y_ref)
    for v_ref, name in zip(vs, ("lif1", "lif2", "lif3", "lif4")):
        assert torch.equal(state[name].v, v_ref), name


def test_batch_norm_in_training_mode_uses_the_batch_statistics_and_updates_the_stored_ones():
    net = Network(Sequential([("conv", Conv2d(2, 3, 3, padding=1)), ("bn", BatchNorm(3, momentum=0.5)),
                              ("lif", LIF())]), (2, 6, 6), seed=0)
    x = _x(4, 5, seed=2, dtype=torch.float32)[:, :, :2, :6, :6] * 3.0
    pre, _ = Network(Sequential([("conv", Conv2d(2, 3, 3, padding=1))]), (2, 6, 6), seed=0).run(x, None)
    flat = pre.flatten(0, 1)                                      # run: the T x B samples together
    mean, var = flat.mean((0, 2, 3)), flat.var((0, 2, 3), unbiased=True)
    spec = Sequential([("conv", Conv2d(2, 3, 3, padding=1)), ("bn", BatchNorm(3, momentum=0.5))])
    probe = Network(spec, (2, 6, 6), seed=0)
    y, _ = probe.run(x, None)
    bn_out = y.flatten(0, 1)
    torch.testing.assert_close(bn_out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(probe.weights["bn"]["running_mean"], 0.5 * mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probe.weights["bn"]["running_var"], 0.5 + 0.5 * var, atol=1e-5, rtol=1e-5)
    probe.eval()                                                  # eval: the stored statistics, nothing moves
    before = probe.weights["bn"]["running_mean"].clone()
    y_eval, _ = probe.run(x, None)
    assert torch.equal(probe.weights["bn"]["running_mean"], before)
    want = (pre - before[:, None, None]) / torch.sqrt(probe.weights["bn"]["running_var"][:, None, None] + 1e-5)
    torch.testing.assert_close(y_eval, want, atol=1e-5, rtol=1e-5)
    # the gradient reaches the conv through the normalisation, and in training mode through the
    # batch statistics too (it differs from eval mode's, where the statistics are constants)
    grads = {}
    for mode in ("train", "eval"):
        getattr(net, mode)()
        net.zero_grad()
        out, _ = net.run(x, net.init_state(5))
        out.sum().backward()
        grads[mode] = net.weights["conv"]["weight"].grad.clone()
    assert grads["train"].abs().sum() > 0 and not torch.allclose(grads["train"], grads["eval"])


def test_batch_norm_in_training_mode_with_one_value_per_channel_says_to_call_eval():
    net = Network(Sequential([("fc", Linear(3, 2)), ("bn", BatchNorm(2))]), (3,), seed=0)
    with pytest.raises(ValueError, match="eval"):
        net.step(torch.ones(1, 3), None)
    net.eval()
    y, _ = net.step(torch.ones(1, 3), None)
    assert y.shape == (1, 2)
