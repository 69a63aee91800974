"""Training: TET loss, crops, a tiny net that learns, checkpoints that resume exactly, export, metrics."""
import json
import math
import os
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

import eventflow
from eventflow.model import DecisionSpec, InputSpec, load_model
from eventflow.snn.fast import FastNetwork
from eventflow.snn.layers import StepStack
from eventflow.train import arch
from eventflow.train.config import DataConfig, NetConfig, SplitConfig, TrainConfig, load_config
from eventflow.train.data import EncodedSet, batches, concat, label_steps
from eventflow.train.loop import OptimConfig, rest_loss, tet_loss
from eventflow.train.metrics import EfficiencyCounter
from eventflow.train.session import load_split, train


def moving_dot_set(n, seed, steps=12, size=8):
    """Class 0: a horizontal bar moving right; class 1: a vertical bar moving down. Labelled from step 2."""
    g = np.random.default_rng(seed)
    x = torch.zeros(n, steps, 2, size, size, dtype=torch.float16)
    y = torch.arange(n) % 2
    for i in range(n):
        r, c = g.integers(0, size, 2)
        for k in range(2, steps):
            for d in range(3):
                if y[i] == 0:
                    x[i, k, 1, r, (c + k + d) % size] = 1
                else:
                    x[i, k, 1, (r + k + d) % size, c] = 1
            x[i, k, 0, g.integers(0, size), g.integers(0, size)] = 1   # noise
    return EncodedSet(x, y, torch.full((n,), 2), torch.full((n,), steps))


def test_tet_loss_is_the_mean_step_cross_entropy():
    out = torch.randn(4, 3, 5)
    y = torch.tensor([0, 4, 2])
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0] = False
    want = torch.stack([torch.nn.functional.cross_entropy(out[t], y) for t in range(1, 4)]).mean()
    assert torch.allclose(tet_loss(out, y, mask), want, atol=1e-6)
    lam = 0.1
    mse = ((out[1:] - 1.0) ** 2).mean()
    assert torch.allclose(tet_loss(out, y, mask, lam, 1.0), (1 - lam) * want + lam * mse, atol=1e-6)


def test_label_steps():
    assert label_steps(None, 10, 7) == (0, 7)
    assert label_steps((15, 61), 10, 100) == (2, 6)       # steps 2..5 lie inside [15, 61)
    assert label_steps((0, 10_000), 10, 5) == (0, 5)


def test_crops_cover_labelled_steps_and_mask_them():
    data = moving_dot_set(6, 0, steps=12)
    g = torch.Generator().manual_seed(0)
    seen = 0
    for x, y, mask in batches(data, 4, 5, g, lead_in=2):
        assert x.shape[0] == 5 and x.shape[2:] == (2, 8, 8) and x.dtype == torch.float32
        assert mask.shape == (5, len(y))
        # labelled from step 2 of 12, crops may start from step 0 (lead_in 2): a crop starting
        # at s masks its steps s..s+4 that are >= 2; all five steps when s >= 2
        n_masked = mask.sum(0)
        assert ((n_masked >= 3) & (n_masked <= 5)).all()
        assert (mask[-1]).all()                                # the last step is always labelled
        seen += len(y)
    assert seen == 6
    x, y, mask = next(batches(data, 6, 5, g, lead_in=2, shuffle=False))
    assert mask.all()                                          # evaluation crops start at the label
    assert torch.equal(x, data.x[:, 2:7].float().transpose(0, 1))


def test_rest_steps_are_the_unlabelled_steps_inside_the_recording():
    data = moving_dot_set(6, 0, steps=12)                      # labelled from step 2 on
    data = EncodedSet(data.x, data.y, data.first, torch.full_like(data.end, 9))   # and up to step 8
    g = torch.Generator().manual_seed(1)
    seen = 0
    for x, y, mask, rest in batches(data, 6, 8, g, lead_in=2, rest=True):
        # crops of 8 start at step 0 or 1: their first step is rest, the others labelled or rest
        assert not (mask & rest).any() and (mask | rest).all()
        assert rest[0].all() and mask[-1].all()
        seen += len(y)
    assert seen == 6
    with_rest = next(batches(data, 6, 8, torch.Generator().manual_seed(1), lead_in=2, rest=True))
    without = next(batches(data, 6, 8, torch.Generator().manual_seed(1), lead_in=2))
    assert all(torch.equal(a, b) for a, b in zip(with_rest, without))   # same crops either way


def test_onset_crops_start_at_or_before_the_onset():
    data = moving_dot_set(64, 0, steps=40)
    x = torch.arange(40, dtype=torch.float16).view(1, 40, 1, 1, 1).expand_as(data.x).contiguous()  # x = step index
    onsets = torch.arange(64) % 20 + 4                          # onsets at steps 4..23
    data = EncodedSet(x, data.y, onsets, data.end)

    def lags(onset, seed=3):
        # each crop's start (read from its first input) minus its recording's onset
        out = []
        for b, (x, y, mask) in enumerate(batches(data, 16, 6, torch.Generator().manual_seed(seed), lead_in=3,
                                                  onset=onset)):
            order = torch.randperm(64, generator=torch.Generator().manual_seed(seed))   # (the batches' order)
            out.append(x[0, :, 0, 0, 0].long() - onsets[order[b * 16:(b + 1) * 16]])
        return torch.cat(out)

    # every crop of onset=1 starts 0..3 steps (lead_in) before its recording's onset
    early = lags(1.0)
    assert len(early) == 64 and ((early >= -3) & (early <= 0)).all()
    # with onset=0.5 about half the crops may start anywhere up to 6 steps before the end
    half = lags(0.5)
    assert 8 <= int((half > 0).sum()) <= 48 and ((half >= -3) & (half <= 40)).all()
    # onset=0 draws nothing extra: the crops are those of a call without the argument
    plain = next(batches(data, 16, 6, torch.Generator().manual_seed(5), lead_in=3))
    zero = next(batches(data, 16, 6, torch.Generator().manual_seed(5), lead_in=3, onset=0.0))
    assert all(torch.equal(a, b) for a, b in zip(plain, zero))


def test_optim_onset_crops_is_a_share():
    assert OptimConfig(onset_crops=0.5).onset_crops == 0.5
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="onset_crops"):
            OptimConfig(onset_crops=bad)


def test_rest_loss_is_zero_for_undecided_outputs_and_grows_with_confidence():
    out = torch.zeros(3, 2, 5)
    rest = torch.tensor([[True, False], [True, True], [False, False]])
    assert rest_loss(out, rest).item() == 0.0
    confident = out.clone()
    confident[:, :, 1] = 4.0
    assert rest_loss(confident, rest).item() > rest_loss(confident * 0.5, rest).item() > 0
    outside = out.clone()
    outside[2] = 9.0 * torch.arange(5.0)                      # not a rest step: does not count
    assert rest_loss(outside, rest).item() == 0.0


def _cfg(tmp_path, epochs, neuron="PLIF"):
    return TrainConfig(name="dots", data=DataConfig(SplitConfig("digits", "-"), SplitConfig("digits", "-")),
                       input=InputSpec((8, 8), (8, 8), 1000),
                       network=NetConfig(channels=(4,), hidden=(16,), neuron={"type": neuron, "init_tau": 2.0}),
                       optim=OptimConfig(lr=0.02, epochs=epochs, batch_size=8, steps=8, lead_in=2, tet_lambda=0.05),
                       decision=DecisionSpec(smoothing_steps=3, commit_probability=0.6),
                       classes=("right", "down"), seed=3, threads=1, out=str(tmp_path))


def _assert_kernels_equal_reference(model, data):
    """The exported model on the sparse kernels gives the torch reference's outputs."""
    fast = FastNetwork.from_network(model.network)
    x = data.x[:8].float().transpose(0, 1).contiguous()
    ref, _ = model.network.run(x, model.network.init_state(8))
    got, _ = fast.run(x.numpy(), fast.init_state(8))
    np.testing.assert_allclose(got, ref.detach().numpy(), atol=1e-4)


def test_tiny_net_learns_and_exports_to_the_sparse_kernels(tmp_path):
    tr, va = moving_dot_set(64, 1), moving_dot_set(32, 2)
    folder = train(_cfg(tmp_path, 20), data=(tr, va), log=lambda m: None)
    hist = json.load(open(os.path.join(tmp_path, "dots", "checkpoint.json")))["history"]
    assert len(hist) == 20 and max(h["val_accuracy"] for h in hist) >= 0.9
    assert os.path.getsize(os.path.join(tmp_path, "dots", "curves.png")) > 1000
    model = load_model(folder)
    assert model.classes == ("right", "down") and model.decision == DecisionSpec(3, 0.6)
    assert type(model.network.spec["sn1"]).__name__ == "LIF"      # PLIF exported as LIF
    _assert_kernels_equal_reference(model, va)
    top = max(h["val_accuracy"] for h in hist)   # the exported epoch: best accuracy, ties to the lowest loss
    chosen = min((h for h in hist if h["val_accuracy"] == top), key=lambda h: h["val_loss"])
    assert model.meta["best"] == {"epoch": chosen["epoch"], "val_accuracy": top, "val_loss": chosen["val_loss"]}


def test_a_later_epoch_with_the_same_accuracy_and_a_lower_loss_is_better():
    from eventflow.train.session import improves

    hist = [{"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.30}, {"epoch": 2, "val_accuracy": 0.95, "val_loss": 0.20}]
    best = {"epoch": 2, "val_accuracy": 0.95, "val_loss": 0.20}
    assert improves({"val_accuracy": 0.96, "val_loss": 0.50}, best, hist)       # higher accuracy wins
    assert not improves({"val_accuracy": 0.94, "val_loss": 0.01}, best, hist)   # whatever the loss
    assert improves({"val_accuracy": 0.95, "val_loss": 0.19}, best, hist)       # a tie: the lower loss
    assert not improves({"val_accuracy": 0.95, "val_loss": 0.20}, best, hist)   # not an equal one
    old = {"epoch": 2, "val_accuracy": 0.95}   # a checkpoint from before best kept its loss: read from history
    assert improves({"val_accuracy": 0.95, "val_loss": 0.19}, old, hist)
    assert not improves({"val_accuracy": 0.95, "val_loss": 0.21}, old, hist)
    assert improves({"val_accuracy": 0.0, "val_loss": 9.0}, {"epoch": -1, "val_accuracy": -1.0}, [])   # the first epoch


def test_resume_equals_an_uninterrupted_run(tmp_path):
    tr, va = moving_dot_set(32, 1), moving_dot_set(16, 2)
    train(_cfg(tmp_path / "a", 3), data=(tr, va), log=lambda m: None)
    train(_cfg(tmp_path / "b", 3), data=(tr, va), log=lambda m: None, stop_after=2)   # interrupted
    train(_cfg(tmp_path / "b", 3), data=(tr, va), resume=True, log=lambda m: None)
    ha = json.load(open(tmp_path / "a" / "dots" / "checkpoint.json"))["history"]
    hb = json.load(open(tmp_path / "b" / "dots" / "checkpoint.json"))["history"]
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(ha) == strip(hb)
    from safetensors.torch import load_file
    wa = load_file(tmp_path / "a" / "dots" / "checkpoint.safetensors")
    wb = load_file(tmp_path / "b" / "dots" / "checkpoint.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_inference_network_keeps_outputs_of_plif():
    net = arch.conv_snn((2, 8, 8), 3, channels=(4,), hidden=(8,), neuron={"type": "PLIF", "init_tau": 3.0}, seed=0)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3)
    x = (torch.rand(10, 2, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    a, _ = net.run(x, net.init_state(2))
    inf = arch.inference_network(net)
    b, _ = inf.run(x, inf.init_state(2))
    torch.testing.assert_close(a.detach(), b, atol=1e-5, rtol=0)


def test_inference_network_folds_the_batch_norms_trained_statistics():
    net = arch.conv_snn((2, 8, 8), 3, channels=(4,), hidden=(8,), neuron={"type": "PLIF", "init_tau": 3.0}, seed=0,
                        batch_norm=True)
    assert [n for n, _ in net.spec.layers][:3] == ["conv1", "bn1", "sn1"]
    x = (torch.rand(10, 2, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    with torch.no_grad():
        net.train()
        net.run(x * 3, net.init_state(2))            # training mode: the stored statistics move
    assert net.weights["bn1"]["running_mean"].abs().sum() > 0
    net.eval()
    a, _ = net.run(x, net.init_state(2))
    inf = arch.inference_network(net)
    assert "BatchNorm" not in [type(layer).__name__ for _, layer in inf.spec.layers]
    b, _ = inf.run(x, inf.init_state(2))
    torch.testing.assert_close(a.detach(), b, atol=1e-5, rtol=0)


def test_a_net_with_batch_norms_trains_and_exports_to_the_sparse_kernels(tmp_path):
    tr, va = moving_dot_set(32, 1), moving_dot_set(16, 2)
    cfg = _cfg(tmp_path, 3)
    cfg = replace(cfg, network=replace(cfg.network, batch_norm=True))
    model = load_model(train(cfg, data=(tr, va), log=lambda m: None))
    assert "BatchNorm" not in [type(layer).__name__ for _, layer in model.network.spec.layers]
    _assert_kernels_equal_reference(model, va)


def test_efficiency_counts_by_hand():
    from eventflow.snn.layers import Linear, Sequential
    from eventflow.snn.network import Network
    from eventflow.snn.neurons import LIF
    net = Network(Sequential([("fc", Linear(4, 3)), ("lif", LIF()), ("out", Linear(3, 2))]), (4,), seed=0)
    with torch.no_grad():
        net.weights["fc"]["weight"].fill_(2.0)
        net.weights["fc"]["bias"].zero_()
    x = torch.tensor([[[1.0, 0, 0, 0]], [[0, 0, 0, 0]]])      # T=2, B=1: one active input once
    c = EfficiencyCounter(net)
    c.add(x)
    r = c.result()
    # fc: 1 nonzero input x 3 outputs, counted as ACs (binary input); lif: h = 2/2 = 1 -> all 3 fire at t=0
    assert r["synaptic_ops"]["effective_acs"] == 3 + 3 * 2
    assert r["synaptic_ops"]["effective_macs"] == 0
    assert r["synaptic_ops"]["dense"] == 2 * 4 * 3 + 2 * 3 * 2
    assert r["activation_sparsity"] == pytest.approx(1 - 3 / 6)
    assert r["params"] == 4 * 3 + 3 + 3 * 2 + 2 and r["footprint_bytes"] == 4 * r["params"]


def test_decision_rule_commits_and_holds():
    d = DecisionSpec(smoothing_steps=2, commit_probability=0.9)
    st = d.init_state(3)
    _, c, st = d.step([[0.0, 0.0, 0.0]], st)
    assert c[0] == -1
    _, c, st = d.step([[10.0, 0.0, 0.0]], st)     # mean of the two: class 0 at ~0.99
    assert c[0] == 0
    _, c, st = d.step([[0.0, 0.0, 0.0]], st)      # mean (10, 0, 0)/2 still commits 0
    assert c[0] == 0
    _, c, st = d.step([[0.0, 0.0, 0.0]], st)      # uniform: no new commit, holds 0
    assert c[0] == 0
    _, c, st = d.step([[0.0, 20.0, 0.0]], st)
    assert c[0] == 1


def test_a_committed_class_gives_way_only_at_the_switch_probability_until_released():
    d = DecisionSpec(smoothing_steps=1, commit_probability=0.6, switch_probability=0.9, release_probability=0.3)
    seq = [[3.0, 0.0, 0.0],    # class 0 at ~0.91: commits
           [0.0, 1.5, 0.0],    # class 1 at ~0.69: enough to commit, not to replace class 0
           [0.0, 4.0, 0.0],    # class 1 at ~0.96: replaces it (a confident correction)
           [1.6, 0.0, 0.0],    # class 0 at ~0.71: held back again
           [0.0, 0.0, 0.0],    # undecided, but 1/3 of three classes stays above the release at 0.3
           [0.0, 0.0, 0.0],
           [-1.0, -1.0, 1.0]]  # class 2 at ~0.79: not released, so held back
    _, committed, fired, decided, st = d.replay(np.array(seq, np.float32), d.init_state(3))
    assert committed.tolist() == [0, 0, 1, 1, 1, 1, 1] and fired.tolist() == [1, 0, 1, 0, 0, 0, 0]
    assert decided.tolist() == [1, 0, 1, 0, 0, 0, 0]
    assert not st.released[0]
    # four classes: the uniform output (0.25) falls below 0.3 and releases the stream; then 0.6 commits again
    d4 = DecisionSpec(smoothing_steps=1, commit_probability=0.6, switch_probability=0.9, release_probability=0.3)
    seq4 = [[3.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 0], [0, 2.0, 0, 0]]   # 0 at 0.87; 1 at 0.71; rest; 1 at 0.71
    _, committed, fired, decided, st = d4.replay(np.array(seq4, np.float32), d4.init_state(4))
    assert committed.tolist() == [0, 0, 0, 1] and fired.tolist() == [1, 0, 0, 1] and decided.tolist() == [1, 0, 0, 1]
    # the same class again after a release is a new decision (a gesture made twice with a rest
    # between); held, it fires every step but is decided once
    again = np.array([[3.0, 0, 0, 0], [3.0, 0, 0, 0], [0, 0, 0, 0], [3.0, 0, 0, 0], [3.0, 0, 0, 0]], np.float32)
    _, committed, fired, decided, _ = d4.replay(again, d4.init_state(4))
    assert committed.tolist() == [0] * 5 and fired.tolist() == [1, 1, 0, 1, 1] and decided.tolist() == [1, 0, 0, 1, 0]
    # the plain rule (no hold) tracks the release too; with no release probability, nothing releases
    plain_again = DecisionSpec(smoothing_steps=1, commit_probability=0.6, release_probability=0.3)
    _, _, fired, decided, st = plain_again.replay(again, plain_again.init_state(4))
    assert fired.tolist() == [1, 1, 0, 1, 1] and decided.tolist() == [1, 0, 0, 1, 0] and not st.released[0]
    never = DecisionSpec(smoothing_steps=1, commit_probability=0.6)
    assert never.replay(again, never.init_state(4))[3].tolist() == [1, 0, 0, 0, 0]
    # without a switch probability (as before it existed) the 0.71 replaces class 0 at once
    plain = DecisionSpec(smoothing_steps=1, commit_probability=0.6)
    assert plain.run(np.array(seq4, np.float32), plain.init_state(4))[1].tolist() == [0, 1, 1, 1]
    # a switch probability at or below the commit one holds nothing: the plain rule
    for low in (0.6, 0.5):
        d_low = DecisionSpec(smoothing_steps=1, commit_probability=0.6, switch_probability=low, release_probability=0.3)
        assert not d_low.holds
        assert d_low.run(np.array(seq4, np.float32), d_low.init_state(4))[1].tolist() == [0, 1, 1, 1]
    # the background class releases the stream as an undecided output does
    bg = DecisionSpec(smoothing_steps=1, commit_probability=0.6, background=3, switch_probability=0.9,
                      release_probability=0.1)
    seq_bg = [[3.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 5.0], [0, 2.0, 0, 0]]   # 0; 1 held; background; 1 commits
    _, committed, fired, _, _ = bg.replay(np.array(seq_bg, np.float32), bg.init_state(4))
    assert committed.tolist() == [0, 0, 0, 1] and fired.tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="decision.switch_probability: expected a number in \\(0, 1\\], got 1.5"):
        DecisionSpec(switch_probability=1.5)
    with pytest.raises(ValueError, match="decision.release_probability: expected a number in \\[0, 1\\], got -0.1"):
        DecisionSpec(release_probability=-0.1)


def test_input_spec_matches_frames_of_downsampled_events():
    from eventflow.encode import to_frames
    from eventflow.encode.filters import downsample
    g = np.random.default_rng(0)
    n = 5000
    ev = eventflow.from_fields(g.integers(0, 128, n), g.integers(0, 128, n), g.integers(0, 2, n),
                               np.sort(g.integers(0, 100_000, n)))
    spec = InputSpec((128, 128), (32, 32), 10_000)
    t0 = int(ev["t"][0])
    got = spec.encode(ev, t0, 9)
    want = to_frames(downsample(ev, (128, 128), (32, 32)), (32, 32), time_window=10_000)
    np.testing.assert_array_equal(got, want[:9].astype(np.float32))


_DATA = "data: {train: {kind: digits, root: a}, val: {kind: digits, root: b}}\n"
_INPUT = "input: {sensor_size: [34, 34], input_size: [34, 34], window_us: 1000}\n"


@pytest.mark.parametrize("body, message", [
    (_DATA + _INPUT + "optim: {lr: fast}\n", r"optim\.lr: expected a number, got str 'fast'"),
    (_DATA.replace("kind: digits, root: a", "kind: digits") + _INPUT, r"data\.train\.root: missing key"),
    (_DATA + _INPUT.replace("1000", "soon"), r"input\.window_us: expected an integer, got str 'soon'"),  # at load
    (_DATA + _INPUT + "network: {channels: [4, eight]}\n",
     r"network\.channels\[1\]: expected an integer, got str 'eight'"),
    (_DATA + _INPUT + "network: {chanels: [4]}\n", r"network\.chanels: unknown key"),
    (_DATA + _INPUT + "network: {channels: [1000000000]}\n", r"network\.channels: expected whole numbers in 1\.\.65536"),
    (_DATA + _INPUT + "network: {hidden: [-5]}\n", r"network\.hidden: expected whole numbers in 1\.\.65536"),
    (_DATA + _INPUT + "network: {unshuffle: 4}\n", r"network\.unshuffle: 4 does not divide input\.input_size \[34, 34\]"),
    (_DATA + _INPUT + "network: {unshuffle: 0}\n", r"network\.unshuffle: expected a whole number in 1\.\.16, got 0"),
    (_DATA + _INPUT + "network: {stack: 0}\n", r"network\.stack: expected a whole number in 1\.\.64, got 0"),
    (_DATA + _INPUT + "network: {stack: 65}\n", r"network\.stack: expected a whole number in 1\.\.64, got 65"),
    (_DATA + _INPUT + "threads: 0\n", r"threads: expected at least 1, got 0"),
    (_DATA + _INPUT + "device: gpu\n", r"device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    (_DATA + _INPUT + "optim: {batch_size: 0}\n", r"optim\.batch_size: expected at least 1, got 0"),
    (_DATA.replace("root: a", "root: a, make: {n: 4, sed: 1}") + _INPUT, r"data\.train\.make: unknown key\(s\) sed"),
    (_DATA.replace("root: b", "root: b, make: {n: 4, seed: 1, vary: {contrast_on: [0.3, 0.1]}}") + _INPUT,
     r"data\.val\.make\.vary: sensor range contrast_on: expected finite lo <= hi"),
    (_DATA.replace("root: b", "root: b, make: {n: 4, seed: 1, vary: [0.1, 0.3]}") + _INPUT,
     r"data\.val\.make\.vary: sensor ranges: expected a mapping of field to \[lo, hi\]"),
    (_DATA.replace("root: b", "root: b, make: {n: 4, seed: 1, vary: {contrast_on: '05'}}") + _INPUT,
     r"data\.val\.make\.vary: sensor range contrast_on: expected two numbers"),
    (_DATA.replace("{kind: digits, root: a}", "[{kind: digits, root: a}, {kind: digit, root: c}]") + _INPUT,
     r"data\.train\[1\]\.kind: expected one of gesture, digits"),
    (_DATA.replace("{kind: digits, root: a}", "[{kind: digits, root: a}, {kind: digits}]") + _INPUT,
     r"data\.train\[1\]\.root: missing key"),
    (_DATA.replace("{kind: digits, root: a}", "[]") + _INPUT, r"data\.train: expected at least one split"),
    # values torch would take and train wrongly with (a negative clip flips the gradient), or fail on late
    (_DATA + _INPUT + "optim: {lr: -0.001}\n", r"optim\.lr: expected a number in \(0, inf\], got -0\.001"),
    (_DATA + _INPUT + "optim: {lr: .nan}\n", r"optim\.lr: expected a number in \(0, inf\], got nan"),
    (_DATA + _INPUT + "optim: {grad_clip: -1}\n", r"optim\.grad_clip: expected a number in \[0, inf\), got -1"),
    (_DATA + _INPUT + "optim: {tet_lambda: 2}\n", r"optim\.tet_lambda: expected a number in \[0, 1\], got 2"),
    (_DATA + _INPUT + "optim: {weight_decay: -1}\n", r"optim\.weight_decay: expected a number in \[0, inf\)"),
    (_DATA + _INPUT + "optim: {kd_temperature: 0}\n", r"optim\.kd_temperature: expected a number in \(0, inf\], got 0"),
    (_DATA + _INPUT + "optim: {kd_alpha: 0.5}\n", r"optim\.kd_alpha: 0\.5 distils from a teacher, but the config has no"),
    (_DATA + _INPUT + "optim: {kd_alpha: 0.5}\nteacher: {epochs: 0}\n", r"teacher\.epochs: expected an integer in 1\.\.10000, got 0"),
    (_DATA + _INPUT + "teacher: {lr: -1}\n", r"teacher\.lr: expected a number in \(0, inf\], got -1"),
    (_DATA + _INPUT + "init_rate: 5\n", r"init_rate: expected a number in \(0, 1\], got 5"),
    (_DATA + _INPUT + "teacher: {channels: [0]}\n", r"teacher\.channels: expected whole numbers in 1\.\.65536"),
    (_DATA.replace("}}", "}, seconds: -1}") + _INPUT, r"data\.seconds: expected a number in \(0, inf\], got -1"),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, body, message):
    refused(tmp_path, "name: x\n" + body, message)


@pytest.mark.parametrize("name", ["", "..", "../escaped", "a/b"])
def test_a_config_name_must_be_a_folder_name_inside_out(tmp_path, name):
    refused(tmp_path, f"name: '{name}'\n" + _DATA + _INPUT, "name: expected a folder name")


def refused(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}: {message}"):
        load_config(str(p))


def test_random_shift_moves_each_sample_within_bounds():
    from eventflow.train.augment import random_shift
    x = torch.zeros(3, 4, 2, 9, 9)
    x[:, :, :, 4, 4] = 1.0                      # one pixel in the middle of every sample
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out.sum((2, 3, 4)), x.sum((2, 3, 4)))   # nothing lost
    for b in range(4):
        ys, xs = torch.nonzero(out[0, b, 0], as_tuple=True)
        assert abs(int(ys) - 4) <= 2 and abs(int(xs) - 4) <= 2
        assert torch.equal(out[:, b], out[0:1, b].expand_as(out[:, b]))             # same shift at every step
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)


def test_distillation_from_an_ann_teacher_runs_and_learns(tmp_path):
    from dataclasses import replace

    from eventflow.train.config import TeacherConfig
    from eventflow.train.loop import kd_loss
    # the KD term is zero when student and teacher agree, positive otherwise
    z = torch.randn(4, 3)
    assert float(kd_loss(z, z)) == pytest.approx(0.0, abs=1e-6) and float(kd_loss(z, -z)) > 0
    tr, va = moving_dot_set(64, 1), moving_dot_set(32, 2)
    cfg = _cfg(tmp_path, 20)
    cfg = replace(cfg, optim=replace(cfg.optim, kd_alpha=0.5), teacher=TeacherConfig(epochs=3, channels=(4, 8)))
    logs = []
    train(cfg, data=(tr, va), log=logs.append)
    assert any(m.startswith("teacher epoch 3/3") for m in logs)
    hist = json.load(open(os.path.join(tmp_path, "dots", "checkpoint.json")))["history"]
    assert max(h["val_accuracy"] for h in hist) >= 0.9


def test_streaming_commits_time_the_first_commit_after_onset():
    from types import SimpleNamespace

    from eventflow.train.evaluate import first_commits, streaming_commits

    W = 25_000
    model = SimpleNamespace(decision=DecisionSpec(smoothing_steps=1, commit_probability=0.9),
                            input=SimpleNamespace(window_us=W))
    out = np.zeros((3, 10, 2), np.float32)
    out[0, 1] = (9, 0)          # a commit to class 0 before the onset: does not count
    out[0, 6] = (0, 9)          # first commit after the onset (60 ms, in window 2): class 1 at step 6
    out[1, 3] = (9, 0)          # wrong class first
    out[1, 5] = (0, 9)
    data = EncodedSet(torch.zeros(3, 10, 2, 1, 1), torch.tensor([1, 1, 1]), torch.tensor([3, 3, 3]),
                      torch.tensor([10, 10, 10]))
    r = streaming_commits(model, out, data, [60_000, 60_000, 60_000])
    assert (r["first_commit_correct"], r["first_commit_wrong"], r["never_committed"]) == (1 / 3, 1 / 3, 1 / 3)
    assert r["commit_latency_ms"]["p50"] == (7 * W - 60_000) / 1000 == 115.0   # onset to the end of window 6
    assert r["correct_within_300ms"] == 1 / 3
    # the wrong first commit (window 3: 40 ms after the onset) counts among all first commits
    assert r["committed_within_300ms"] == 2 / 3
    assert r["first_commit_latency_ms"]["max"] == 115.0 and r["first_commit_latency_ms"]["p50"] == 77.5
    # recording 1 committed to class 0 at step 3, then changed to class 1 at step 5: one later decision;
    # recording 0's commit before the onset is not one (its first commit after the onset is at step 6)
    assert r["later_decisions"] == 1 / 3
    _, _, later = first_commits(model, out, data, [60_000, 60_000, 60_000])
    assert later.tolist() == [0, 1, 0]
    # the same class committed again after the output went to rest is a later decision too, with or
    # without the hold (three classes: the uniform output, 1/3, is below the release probability 0.4)
    again = np.full((1, 10, 3), -9.0, np.float32)
    again[0, :, 0] = 0.0
    again[0, 5] = 0.0           # at rest in step 5, between two runs of class 0
    one = EncodedSet(torch.zeros(1, 10, 2, 1, 1), torch.tensor([0]), torch.tensor([3]), torch.tensor([10]))
    for switch in (0.95, None):
        model.decision = DecisionSpec(1, 0.9, None, switch, 0.4)
        delay, correct, later = first_commits(model, again, one, [60_000])
        assert correct.tolist() == [True] and later.tolist() == [1]
    model.decision = DecisionSpec(1, 0.9, None, 0.95, 0.0)   # no release: one decision
    assert first_commits(model, again, one, [60_000])[2].tolist() == [0]


def test_calibration_leaves_layers_before_a_batch_norm_alone():
    # in training mode the BatchNorm undoes any scale of the weights before it: nothing to calibrate
    net = arch.conv_snn((2, 8, 8), 3, channels=(4,), hidden=(8,), neuron={"type": "LIF"}, seed=0, batch_norm=True)
    x = (torch.rand(6, 4, 2, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith("weight")}
    out_a, _ = net.run(x, net.init_state(4))
    with torch.no_grad():
        net.weights["conv1"]["weight"].mul_(3.0)
    out_b, _ = net.run(x, net.init_state(4))
    torch.testing.assert_close(out_a, out_b, atol=1e-4, rtol=0)     # the scale is undone
    with torch.no_grad():
        net.weights["conv1"]["weight"].copy_(before["weights.conv1.weight"])
    assert arch.calibrate_init(net, x) == {}
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items() if k in before)


def test_a_dalif_net_trains_and_exports_to_the_sparse_kernels(tmp_path):
    tr, va = moving_dot_set(32, 1), moving_dot_set(16, 2)
    cfg = _cfg(tmp_path, 3)
    cfg = replace(cfg, network=replace(cfg.network, neuron={"type": "DALIF", "init_tau": 2.0}))
    model = load_model(train(cfg, data=(tr, va), log=lambda m: None))
    kinds = {type(layer).__name__ for _, layer in model.network.spec.layers}
    assert "DALIF" in kinds and model.network.spec["sn1"].channels == 4 and model.network.spec["sn2"].channels == 16
    _assert_kernels_equal_reference(model, va)


def test_a_net_with_a_step_stack_stem_trains_and_exports_to_the_sparse_kernels(tmp_path):
    tr, va = moving_dot_set(32, 1), moving_dot_set(16, 2)
    cfg = _cfg(tmp_path, 3)
    cfg = replace(cfg, network=replace(cfg.network, stack=3))
    model = load_model(train(cfg, data=(tr, va), log=lambda m: None))
    net = model.network
    assert net.spec.layers[0] == ("stack", StepStack(3)) and net.spec["conv1"].in_channels == 6
    assert net.in_shape == (2, *va.x.shape[-2:])              # the model still takes one window per step
    _assert_kernels_equal_reference(model, va)
    # the efficiency figures count it (the past it keeps is state, the first conv sees 3 windows)
    counter = EfficiencyCounter(net)
    x = va.x[:4].float().transpose(0, 1).contiguous()
    counter.add(x)
    r = counter.result()
    rest = net.init_state(1)
    past = rest.pop("stack").past
    assert past.shape == (1, 2 * 2, *x.shape[-2:])            # the 2 windows before the current one
    membranes = sum(m.v.numel() for m in rest.values())
    assert r["state_bytes"] == 4 * (past.numel() + membranes)
    assert r["synaptic_ops"]["effective_macs"] + r["synaptic_ops"]["effective_acs"] > 0


def test_conv_snn_with_an_unshuffle_stem_keeps_every_input_pixel():
    net = arch.conv_snn((2, 16, 16), 3, channels=(4, 8), hidden=(16,), neuron={"type": "LIF"}, seed=0, unshuffle=2)
    assert net.spec.layers[0][0] == "unshuffle" and net.spec["conv1"].in_channels == 8
    # a spike moved by one input pixel reaches the first conv in another channel: the stem loses nothing
    x = torch.zeros(1, 1, 2, 16, 16)
    x[0, 0, 1, 4, 4] = 1.0
    y = torch.zeros_like(x)
    y[0, 0, 1, 4, 5] = 1.0
    stem = net.spec["unshuffle"]
    a, b = stem.step(x[0], None, {})[0], stem.step(y[0], None, {})[0]
    assert a.shape == (1, 8, 8, 8) and torch.nonzero(a).tolist() == [[0, 4, 2, 2]] and torch.nonzero(b).tolist() == [[0, 5, 2, 2]]
    out, _ = net.run(x.repeat(3, 2, 1, 1, 1), net.init_state(2))
    assert out.shape == (3, 2, 3)
    with pytest.raises(ValueError, match="multiples of 2"):
        arch.conv_snn((2, 15, 16), 3, channels=(4,), hidden=(8,), unshuffle=2)
    # it is saved and loaded with a model like any layer
    from eventflow.snn.spec_io import spec_from_dict, spec_to_dict
    assert spec_from_dict(spec_to_dict(net.spec)) == net.spec


def test_efficiency_counted_from_the_kernels_trace_equals_the_torch_count():
    net = arch.conv_snn((2, 16, 16), 3, channels=(4, 8), hidden=(16,), neuron={"type": "LIF"}, seed=0).eval()
    with torch.no_grad():
        for p in net.parameters():   # dyadic weights: every sum exact, so both runs spike alike
            p.copy_(torch.round(p * 4 * 64) / 64)
    x = (torch.rand(12, 3, 2, 16, 16, generator=torch.Generator().manual_seed(4)) < 0.3).float() * 2   # counts
    by_torch = EfficiencyCounter(net)
    by_torch.add(x)
    fast = FastNetwork.from_network(net)
    _, _, traced = fast.run(x, fast.init_state(3), trace=True)
    by_trace = EfficiencyCounter(net)
    by_trace.add(x, {name: torch.from_numpy(s) for name, s in traced.items()})
    assert by_trace.result() == by_torch.result()
    assert 0 < by_torch.result()["activation_sparsity"] < 1 and by_torch.result()["synaptic_ops"]["effective_macs"] > 0


def _blob_batch(B=6, T=3):
    x = torch.zeros(T, B, 2, 16, 12)
    x[:, :, 0, 6:9, 5:7] = 3.0
    x[:, :, 1, 7, 6] = 1.0
    x[:, :, 1, 2, 1:11] = 1.0                   # a bar off the centre, which any rotation or zoom moves
    return x


def test_affine_turns_and_zooms_about_the_centre_of_a_non_square_image():
    from eventflow.train.augment import affine
    x = torch.zeros(2, 3, 1, 16, 12)                 # H 16, W 12: centre at row 7.5, column 5.5
    x[:, :, 0, 7, 2] = 1.0
    quarter = torch.full((3,), math.pi / 2)
    out = affine(x, torch.ones(3), quarter)          # a quarter turn: counter-clockwise on screen
    assert torch.nonzero(out[0, 0, 0]).tolist() == [[11, 5]]
    assert torch.equal(affine(x, torch.ones(3), torch.zeros(3)), x)
    bar = torch.zeros(1, 1, 1, 16, 12)
    bar[0, 0, 0, 7:9, 4:8] = 1.0                     # 2 x 4 about the centre
    assert int(affine(bar, torch.tensor([1.5]), torch.zeros(1)).sum()) > 8 > int(affine(bar, torch.tensor([0.6]),
                                                                                       torch.zeros(1)).sum())


def test_random_affine_moves_whole_counts_about_the_centre_the_same_at_every_step():
    from eventflow.train.augment import random_affine
    x = _blob_batch()
    before = x.clone()
    out = random_affine(x, 0.2, 30.0, torch.Generator().manual_seed(1))
    assert torch.equal(x, before)                                            # the input is not modified
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= {0.0, 1.0, 3.0}                    # nearest sampling: input values only
    assert torch.equal(out, out[0:1].expand_as(out))                         # one transform per sample, all steps
    ys, xs = torch.nonzero(out[0, :, 0].sum(0) > 0, as_tuple=True)           # the central blob stays central
    assert ys.float().mean().sub(7.5).abs() < 3 and xs.float().mean().sub(5.5).abs() < 3
    assert not all(torch.equal(out[:, 0], out[:, b]) for b in range(1, x.shape[1]))   # drawn per sample
    assert torch.equal(random_affine(x, 0.0, 0.0, torch.Generator()), x)
    with pytest.raises(ValueError, match="scale must be in"):
        random_affine(x, -0.1, 0.0, torch.Generator())


def test_random_thinning_keeps_whole_counts_at_most_the_input_and_thins_by_the_drawn_rate():
    from eventflow.train.augment import random_thinning
    x = torch.full((4, 8, 2, 10, 10), 2.0)
    out = random_thinning(x, 0.6, torch.Generator().manual_seed(2))
    assert torch.equal(out, out.round()) and bool((out >= 0).all()) and bool((out <= x).all())
    kept = out.sum((0, 2, 3, 4)) / x.sum((0, 2, 3, 4))                     # per sample
    assert bool((kept > 0.35).all()) and bool((kept < 1.05).all()) and kept.std() > 0.02
    assert torch.equal(random_thinning(x, 0.0, torch.Generator()), x)
    with pytest.raises(ValueError, match="drop must be in"):
        random_thinning(x, 1.5, torch.Generator())


def test_random_noise_adds_single_events_to_empty_pixels_only():
    from eventflow.train.augment import random_noise
    x = _blob_batch(B=8, T=20)
    out = random_noise(x, 0.05, torch.Generator().manual_seed(3))
    added = out - x
    assert bool((added[x > 0] == 0).all())                                 # occupied pixels untouched
    assert set(added.unique().tolist()) <= {0.0, 1.0}
    rate = added.sum() / (x == 0).sum()
    assert 0.005 < float(rate) < 0.05
    assert torch.equal(random_noise(x, 0.0, torch.Generator()), x)


def test_augment_with_everything_off_is_the_identity_and_shift_alone_draws_as_before():
    from eventflow.train.augment import augment, random_shift
    x = _blob_batch()
    g = torch.Generator().manual_seed(4)
    assert torch.equal(augment(x, g), x)
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(4).get_state())     # nothing drawn
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(augment(x, g1, shift=2), random_shift(x, 2, g2))                 # what training did before
    assert torch.equal(g1.get_state(), g2.get_state())


def test_thinning_and_noise_refuse_inputs_that_are_not_whole_counts():
    from eventflow.train.augment import random_noise, random_thinning
    x = _blob_batch() * 0.5
    with pytest.raises(ValueError, match="drop needs whole event counts"):
        random_thinning(x, 0.5, torch.Generator())
    with pytest.raises(ValueError, match="noise needs whole event counts"):
        random_noise(x, 0.01, torch.Generator())


@pytest.mark.parametrize("body, message", [
    ("optim: {scale: 1.0}", r"optim\.scale: expected a number in \[0, 1\), got 1\.0"),
    ("optim: {drop: -0.1}", r"optim\.drop: expected a number in \[0, 1\]"),
    ("optim: {rotate: -5}", r"optim\.rotate: expected a number in \[0, 180\], got -5"),
    ("optim: {shift: -1}", r"optim\.shift: expected a number in \[0, inf\), got -1"),
    ("optim: {rest_weight: .inf}", r"optim\.rest_weight: expected a number in \[0, inf\), got inf"),
    ("optim: {drop: 0.3}\ninput: {sensor_size: [34, 34], input_size: [34, 34], window_us: 10000, scale: 0.5}",
     r"optim\.drop and optim\.noise thin and add whole events, but input\.scale 0\.5"),
])
def test_augmentation_settings_out_of_range_name_the_key(tmp_path, body, message):
    p = tmp_path / "c.yaml"
    spec = "" if "input:" in body else "input: {sensor_size: [34, 34], input_size: [34, 34], window_us: 10000}\n"
    p.write_text("name: x\ndata: {train: {kind: digits, root: a}, val: {kind: digits, root: b}}\n" + spec + body + "\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}: {message}"):
        load_config(str(p))


def test_training_device():
    """``device: auto`` trains where a GPU is (the CPU here); ``cuda`` without one is a clear error."""
    from eventflow.train.session import training_device
    assert training_device("cpu").type == "cpu"
    assert training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            training_device("cuda:0")


def test_concat_pads_shorter_recordings_and_crops_never_count_the_padding_as_rest():
    short, long = moving_dot_set(4, 0, steps=6), moving_dot_set(3, 1, steps=10)
    short = EncodedSet(short.x, short.y, torch.full((4,), 4), torch.full((4,), 6))   # labelled 4..5, rest 0..3
    data = concat([short, long])
    assert data.x.shape[:2] == (7, 10) and data.lengths().tolist() == [6] * 4 + [10] * 3
    assert torch.equal(data.x[:4, :6], short.x) and not data.x[:4, 6:].any() and torch.equal(data.x[4:], long.x)
    assert torch.equal(data.y, torch.cat([short.y, long.y])) and data.first.tolist() == [4] * 4 + [2] * 3
    assert data.subset([0, 5]).lengths().tolist() == [6, 10]
    # crops of 8 steps: a short recording (6 steps) cannot hold one, so its crops start at step 0 and
    # run 2 steps into the padding, which is neither labelled nor rest
    g = torch.Generator().manual_seed(2)
    for x, y, mask, rest in batches(data, 7, 8, g, lead_in=4, rest=True):
        order = torch.randperm(7, generator=torch.Generator().manual_seed(2))
        short_rows = order < 4
        assert (mask | rest)[:, ~short_rows].all()          # a 10-step recording: every step is inside
        assert ((mask | rest)[:, short_rows].sum(0) == 6).all()   # a short one: its 6 steps
        assert not x[:, short_rows][(mask | rest)[:, short_rows] == 0].any()   # what is left out is padding
    with pytest.raises(ValueError, match="step shapes differ"):
        concat([short, EncodedSet(torch.zeros(1, 6, 2, 4, 4), torch.tensor([0]), torch.tensor([0]), torch.tensor([6]))])


def test_a_list_of_splits_loads_all_of_them_in_order(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "name: x\ndata:\n  train: [{kind: digits, root: a, make: {n: 2, seed: 5, seconds: 0.05}},\n"
        "          {kind: digits, root: b, make: {n: 3, seed: 6, seconds: 0.08}}]\n"
        "  val: {kind: digits, root: a}\n" + _INPUT)
    cfg = load_config(str(tmp_path / "c.yaml"))
    assert [s.root for s in cfg.data.splits("train")] == ["a", "b"] and len(cfg.data.splits("val")) == 1
    train = load_split(cfg, "train", cfg.input, log=lambda *_: None)
    val = load_split(cfg, "val", cfg.input, log=lambda *_: None)
    assert len(train) == 5 and train.x.shape[1] == 80 and train.lengths().tolist() == [50, 50, 80, 80, 80]
    assert torch.equal(train.x[:2, :50], val.x) and not train.x[:2, 50:].any()   # split a, then b


def test_a_recording_gives_the_same_crops_alone_and_joined_to_longer_ones():
    # crops of 4 steps of a 6-step recording labelled from step 5: alone, a crop starting at the label
    # would run past the end and is pulled back inside; joined to 10-step recordings it must be too
    short = moving_dot_set(3, 0, steps=6)
    short = EncodedSet(short.x, short.y, torch.full((3,), 5), torch.full((3,), 6))
    joined = concat([short, moving_dot_set(2, 1, steps=10)])
    for shuffle in (False, True):
        alone = next(batches(short, 3, 4, torch.Generator().manual_seed(0), lead_in=1, shuffle=shuffle, rest=True))
        both = next(batches(joined.subset([0, 1, 2]), 3, 4, torch.Generator().manual_seed(0), lead_in=1,
                            shuffle=shuffle, rest=True))
        assert all(torch.equal(a, b) for a, b in zip(alone, both))
        assert alone[2][-1].all() and alone[3][:-1].all()   # 3 rest steps, then the labelled one


def test_streaming_replay_stops_at_each_recordings_end():
    from types import SimpleNamespace

    from eventflow.train.evaluate import streaming_commits

    model = SimpleNamespace(decision=DecisionSpec(smoothing_steps=1, commit_probability=0.6),
                            input=SimpleNamespace(window_us=1000))
    short = EncodedSet(torch.zeros(1, 4, 2, 1, 1), torch.tensor([1]), torch.tensor([1]), torch.tensor([4]))
    long = EncodedSet(torch.zeros(1, 8, 2, 1, 1), torch.tensor([1]), torch.tensor([1]), torch.tensor([8]))
    data = concat([short, long])
    outputs = np.zeros((2, 8, 3), np.float32)
    outputs[:, 4:, 1] = 10.0     # class 1 from step 4: the long recording's steps, the short one's padding
    r = streaming_commits(model, outputs, data, np.array([1000, 1000]))
    assert r["never_committed"] == 0.5 and r["first_commit_correct"] == 0.5


def test_a_net_trains_on_joined_sets_of_different_lengths(tmp_path):
    tr = concat([moving_dot_set(16, 1, steps=8), moving_dot_set(16, 3, steps=12)])
    folder = train(_cfg(tmp_path, 2), data=(tr, moving_dot_set(8, 2)), log=lambda m: None)
    hist = json.load(open(os.path.join(tmp_path, "dots", "checkpoint.json")))["history"]
    assert len(hist) == 2 and all(math.isfinite(h["train_loss"]) for h in hist)
    _assert_kernels_equal_reference(load_model(folder), moving_dot_set(8, 2))


def test_tail_crops_run_into_the_rest_after_the_gesture():
    data = moving_dot_set(64, 0, steps=20)
    x = torch.arange(20, dtype=torch.float16).view(1, 20, 1, 1, 1).expand_as(data.x).contiguous()  # x = step index
    data = EncodedSet(x, data.y, torch.full((64,), 4), torch.full((64,), 12))   # labelled 4..11, rest after

    def crops(tail):
        x, _, mask, rest = next(batches(data, 64, 8, torch.Generator().manual_seed(5), lead_in=2, rest=True, tail=tail))
        return x[:, :, 0, 0, 0].long(), mask, rest             # [T, B] step numbers

    t, mask, rest = crops(0)
    assert t.max() == 11 and t.min() == 2                      # from lead_in before the onset to the labelled end
    t, mask, rest = crops(4)
    assert t.max() == 15 and t.min() == 2                      # up to 4 steps into the rest after the gesture
    assert (rest[t >= 12]).all() and not mask[t >= 12].any() and (mask[(t >= 4) & (t < 12)]).all()
    with pytest.raises(ValueError, match="optim.tail_steps"):
        OptimConfig(tail_steps=-1)


def test_onset_weight_marks_the_first_labelled_steps_and_weighs_them_in_the_loss():
    data = moving_dot_set(64, 0, steps=20)
    x = torch.arange(20, dtype=torch.float16).view(1, 20, 1, 1, 1).expand_as(data.x).contiguous()  # x = step index
    data = EncodedSet(x, data.y, torch.full((64,), 4), torch.full((64,), 12))   # labelled 4..11
    xb, _, mask, rest, early = next(batches(data, 64, 8, torch.Generator().manual_seed(5), lead_in=2, rest=True,
                                            early_steps=3))
    t = xb[:, :, 0, 0, 0].long()
    assert (early == ((t >= 4) & (t < 7))).all() and (mask[early]).all()      # steps 4, 5, 6 of each crop
    out = torch.zeros(2, 1, 3)
    out[0, 0, 0] = 5.0                                                         # step 0 right, step 1 undecided
    y, both = torch.tensor([0]), torch.ones(2, 1, dtype=torch.bool)
    even = tet_loss(out, y, both)
    early_heavy = tet_loss(out, y, both.float() + 3.0 * torch.tensor([[1.0], [0.0]]))
    assert early_heavy < even                                                  # the right early step weighs 4x
    with pytest.raises(ValueError, match="optim.onset_weight"):
        OptimConfig(onset_weight=-1.0)
    with pytest.raises(ValueError, match="optim.onset_steps"):
        OptimConfig(onset_steps=2.5)
    with pytest.raises(ValueError, match="needs rest=True"):
        next(batches(data, 64, 8, torch.Generator(), early_steps=3))


def test_onset_steps_stop_at_the_labelled_end_and_are_absent_from_later_crops():
    data = moving_dot_set(64, 0, steps=20)
    x = torch.arange(20, dtype=torch.float16).view(1, 20, 1, 1, 1).expand_as(data.x).contiguous()  # x = step index
    short = EncodedSet(x, data.y, torch.full((64,), 4), torch.full((64,), 6))    # labelled 4, 5 only
    xb, _, mask, _, early = next(batches(short, 64, 8, torch.Generator().manual_seed(1), lead_in=3, rest=True,
                                         early_steps=5))
    t = xb[:, :, 0, 0, 0].long()
    assert (early == ((t >= 4) & (t < 6))).all()                     # 5 asked, the gesture has 2
    long = EncodedSet(x, data.y, torch.full((64,), 2), torch.full((64,), 20))    # labelled 2..19
    xb, _, mask, _, early = next(batches(long, 64, 8, torch.Generator().manual_seed(2), rest=True, early_steps=3))
    t = xb[:, :, 0, 0, 0].long()
    later = t[0] >= 5                                                # crops that start after the early steps
    assert later.any() and not early[:, later].any()
    assert (early[:, ~later] == ((t[:, ~later] >= 2) & (t[:, ~later] < 5))).all()


def test_fit_epoch_weighs_the_onset_steps_in_the_loss(monkeypatch):
    """The weight that reaches the TET loss: 1 on labelled steps, 1 + onset_weight on the first
    onset_steps of each gesture, 0 elsewhere; onset_weight 0 leaves the plain mask."""
    import eventflow.train.loop as loop
    data = moving_dot_set(16, 0, steps=12)
    data = EncodedSet(data.x, data.y, torch.full((16,), 3), torch.full((16,), 12))   # labelled 3..11
    seen = []
    real = loop.tet_loss

    def spy(out, y, weight, *args):
        seen.append(weight.clone())
        return real(out, y, weight, *args)

    monkeypatch.setattr(loop, "tet_loss", spy)
    net = arch.conv_snn((2, 8, 8), 3, channels=(4,), hidden=(8,), neuron={"type": "PLIF", "init_tau": 3.0}, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for w in (0.0, 2.0):
        cfg = OptimConfig(epochs=1, batch_size=16, steps=8, lead_in=3, onset_weight=w, onset_steps=4)
        loop.fit_epoch(net, opt, data, cfg, torch.Generator().manual_seed(0), 0)
    plain, weighted = seen
    assert set(plain.float().unique().tolist()) <= {0.0, 1.0}
    assert set(weighted.unique().tolist()) == {0.0, 1.0, 3.0}
    _, _, mask, _, early = next(batches(data, 16, 8, torch.Generator().manual_seed(0), 3, rest=True,
                                        early_steps=4))
    assert torch.equal(weighted, mask.float() + 2.0 * early.float())    # the same crops, drawn first


def test_predict_runs_to_the_last_labelled_step_and_gives_the_whole_runs_means():
    """Validation stops each batch at its last labelled step (the rest after a gesture and the
    padding of joined sets cannot change a causal net's labelled outputs)."""
    from eventflow.train.loop import masked_mean, predict
    net = arch.conv_snn((2, 8, 8), 3, channels=(4,), hidden=(8,), neuron={"type": "PLIF", "init_tau": 3.0}, seed=0)
    short, long = moving_dot_set(5, 1, steps=8), moving_dot_set(6, 2, steps=14)
    long = EncodedSet(long.x, long.y, torch.full((6,), 2), torch.tensor([5, 6, 7, 9, 10, 4]))   # labelled ends vary
    data = concat([short, long])
    x = data.x.float().transpose(0, 1)
    arch.calibrate_init(net, x)                                        # spiking, so outputs vary by step
    with torch.no_grad():
        out, _ = net.eval().run(x, net.init_state(x.shape[1]))         # every step of the padded set
        whole = masked_mean(out, data.label_mask().transpose(0, 1))
    assert out.std(0).min() > 0
    for batch in (2, 4, 64):
        assert torch.allclose(predict(net, data, batch_size=batch), whole, atol=1e-6)


GPU = "cuda" if torch.cuda.is_available() else None


@pytest.mark.skipif(GPU is None, reason="needs a CUDA GPU (tools/gpu_check.sh runs it on one)")
def test_a_tiny_net_trains_on_a_gpu_as_on_the_cpu_and_its_checkpoint_resumes_on_the_cpu(tmp_path, device=GPU):
    """`device: cuda` trains there (the data, the random draws and the checkpoints stay on the CPU):
    it learns as the CPU run does, its checkpoint resumes on the CPU, and the model it exports runs on
    the sparse kernels with the torch reference's outputs."""
    tr, va = moving_dot_set(64, 1), moving_dot_set(32, 2)
    train(replace(_cfg(tmp_path / "cpu", 20), device="cpu"), data=(tr, va), log=lambda m: None)
    logs = []
    train(replace(_cfg(tmp_path / "gpu", 20), device=device), data=(tr, va), log=logs.append, stop_after=12)
    assert device == "cpu" or any(m.startswith(f"training on {device}") for m in logs)
    folder = train(replace(_cfg(tmp_path / "gpu", 20), device="cpu"), data=(tr, va), resume=True, log=lambda m: None)
    hc = json.load(open(tmp_path / "cpu" / "dots" / "checkpoint.json"))["history"]
    hg = json.load(open(tmp_path / "gpu" / "dots" / "checkpoint.json"))["history"]
    assert len(hg) == len(hc) == 20
    assert hg[0]["train_loss"] == pytest.approx(hc[0]["train_loss"], rel=0.02)   # (float32 sums in another order)
    assert max(h["val_accuracy"] for h in hg) >= 0.9 and max(h["val_accuracy"] for h in hc) >= 0.9
    _assert_kernels_equal_reference(load_model(folder), va)
