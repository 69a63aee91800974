"""The StepStack stem (the last steps' inputs side by side in channels): the torch layer, the
sparse kernels' FastNetwork and the pipeline's model stage carry its past between calls alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eventflow import snn
from eventflow.pipeline.stages import ModelStage
from eventflow.snn.fast import FastNetwork, FastState
from eventflow.snn.layers import Conv2d, Flatten, Linear, MaxPool2d, PixelUnshuffle, Sequential, StepStack
from eventflow.snn.neurons import LIF
from eventflow.snn.spec_io import spec_from_dict, spec_to_dict


def _net(steps=3, unshuffle=False):
    stem = [("stack", StepStack(steps))] + ([("unshuffle", PixelUnshuffle(2))] if unshuffle else [])
    c = 2 * steps * (4 if unshuffle else 1)
    side = 8 if unshuffle else 16
    spec = Sequential((*stem, ("conv1", Conv2d(c, 4, 3, padding=1)), ("lif1", LIF()), ("pool1", MaxPool2d(2)),
                       ("conv2", Conv2d(4, 8, 3, padding=1)), ("lif2", LIF()), ("pool2", MaxPool2d(2)),
                       ("flatten", Flatten()), ("fc1", Linear(8 * (side // 4) ** 2, 16)), ("lif3", LIF()),
                       ("fc2", Linear(16, 3))))
    net = snn.Network(spec, (2, 16, 16), seed=0).eval()
    with torch.no_grad():
        for p in net.parameters():   # dyadic: every sum exact, in any order
            p.copy_(torch.round(p * 8 * 64) / 64)
    return net


def _inputs(T, batch, seed, density=0.2):
    return (torch.rand(T, batch, 2, 16, 16, generator=torch.Generator().manual_seed(seed)) < density).float()


def test_the_layer_puts_the_previous_steps_before_the_current_one():
    s = StepStack(3)
    x = torch.arange(1.0, 6.0).view(5, 1, 1, 1, 1)             # 5 steps, 1 stream, 1 channel, 1 pixel
    y, state = s.run(x, s.init_state((1, 1, 1, 1)))
    assert y.flatten(1).tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert state.past.flatten().tolist() == [4.0, 5.0]
    assert s.out_shape((7, 2, 16, 16)) == (7, 6, 16, 16)
    # step by step, and a run cut in two, give the same
    st_, ys = s.init_state((1, 1, 1, 1)), []
    for t in range(5):
        yt, st_ = s.step(x[t], st_)
        ys.append(yt)
    assert torch.equal(torch.stack(ys), y) and torch.equal(st_.past, state.past)
    y1, mid = s.run(x[:2], s.init_state((1, 1, 1, 1)))
    y2, end = s.run(x[2:], mid)
    assert torch.equal(torch.cat([y1, y2]), y) and torch.equal(end.past, state.past)


@pytest.mark.parametrize("steps", [0, 65, 2.0, True])
def test_the_layer_refuses_a_bad_step_count(steps):
    with pytest.raises(ValueError, match="StepStack.steps"):
        StepStack(steps)


def test_the_layer_round_trips_through_a_model_file_description():
    spec = _net().spec
    assert spec_from_dict(spec_to_dict(spec)) == spec


@pytest.mark.parametrize("unshuffle", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_fast_network_equals_the_reference_with_the_stem(batch, unshuffle):
    net = _net(unshuffle=unshuffle)
    fast = FastNetwork.from_network(net)
    assert fast.stack == 3 and fast.in_shape == (2, 16, 16)
    x = _inputs(12, batch, seed=5)
    y_fast, s_fast = fast.run(x, fast.init_state(batch))
    with torch.no_grad():
        y_ref, s_ref = net.run(x, net.init_state(batch))
    np.testing.assert_array_equal(y_fast, y_ref.numpy())
    t_state = fast.to_torch_state(s_fast)
    assert torch.equal(t_state["stack"].past, s_ref["stack"].past)
    for name in ("lif1", "lif2", "lif3"):
        np.testing.assert_array_equal(t_state[name].v.numpy(), s_ref[name].v.numpy())
    back = fast.from_torch_state(t_state)
    np.testing.assert_array_equal(back.past, s_fast.past)
    # step by step (with and without the traced path) equals the run, and every layer fires
    state, fired = fast.init_state(batch), 0
    for t in range(12):
        y, state, spikes = fast.step(x[t], state, trace=True)
        np.testing.assert_array_equal(y, y_fast[t])
        fired += sum(int(s.sum()) for s in spikes.values())
    np.testing.assert_array_equal(state.past, s_fast.past)
    assert fired > 0
    state = fast.init_state(batch)
    for t in range(12):
        y, state = fast.step(x[t], state)
        np.testing.assert_array_equal(y, y_fast[t])


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(0, 12))
def test_fast_network_run_cut_anywhere_equals_the_whole_run(cut):
    net = _net()
    fast = FastNetwork.from_network(net)
    x = _inputs(12, 2, seed=9)
    y_all, s_all = fast.run(x, fast.init_state(2))
    s0 = fast.init_state(2)
    past0 = s0.past.copy()
    y1, mid = fast.run(x[:cut], s0)
    np.testing.assert_array_equal(s0.past, past0)         # the caller's state is not modified
    y2, end = fast.run(x[cut:], mid)
    np.testing.assert_array_equal(np.concatenate([y1, y2]), y_all)
    np.testing.assert_array_equal(end.past, s_all.past)
    for a, b in zip(end.v, s_all.v):
        np.testing.assert_array_equal(a, b)


def test_fast_network_in_place_updates_the_stems_past_with_the_membranes():
    # inplace: the state passed in holds the state after the call, its past as well as its membranes
    fast = FastNetwork.from_network(_net())
    x = _inputs(6, 2, seed=6)
    _, after = fast.run(x, fast.init_state(2))
    state = fast.init_state(2)
    arrays = [state.past, *state.v]
    _, got = fast.run(x[:3], state, inplace=True)
    for t in range(3, 6):
        fast.step(x[t], state, inplace=True)
    assert got.past is arrays[0] and all(a is b for a, b in zip(got.v, arrays[1:]))
    np.testing.assert_array_equal(state.past, after.past)
    for a, b in zip(state.v, after.v):
        np.testing.assert_array_equal(a, b)


def test_fast_network_refuses_a_state_without_the_stems_past():
    fast = FastNetwork.from_network(_net())
    good = fast.init_state(1)
    with pytest.raises(ValueError, match="not this network's"):
        fast.step(_inputs(1, 1, seed=1)[0], FastState(good.v))
    plain = FastNetwork.from_network(snn.Network(Sequential(tuple(_net().spec.layers[1:])), (6, 16, 16), seed=0))
    with pytest.raises(ValueError, match="not this network's"):   # and one with a past where there is no stem
        plain.step(torch.zeros(1, 6, 16, 16), FastState(plain.init_state(1).v, good.past))


@pytest.mark.parametrize("backend", ["fast", "torch"])
def test_model_stage_state_saved_mid_stream_resumes_the_stems_past(backend):
    net = _net()
    x = _inputs(10, 1, seed=2).numpy()
    whole = ModelStage(net, backend=backend)
    assert whole.backend == backend
    y_whole = np.concatenate([whole.step(x[:4]), whole.step(x[4:])])
    first = ModelStage(net, backend=backend)
    first.step(x[:4])
    saved = first.get_state()
    first.step(np.zeros_like(x[4:]))                      # (the saved state is a copy)
    resumed = ModelStage(net, backend=backend)
    resumed.reset(saved)
    y_resumed = resumed.step(x[4:])
    np.testing.assert_array_equal(y_resumed, y_whole[4:])


def test_gpu_network_steps_the_stem_as_the_reference():
    # (on the CPU device: the same code path as on a GPU, without CUDA graphs or Triton)
    from eventflow.snn.gpu import GpuNetwork

    net = _net()
    gpu = GpuNetwork(net, device="cpu")
    x = _inputs(8, 2, seed=4)
    with torch.no_grad():
        y_ref, s_ref = net.run(x, net.init_state(2))
    state = gpu.init_state(2)
    for t in range(8):
        y, state = gpu.step(x[t], state, inplace=True)
        np.testing.assert_array_equal(y.numpy(), y_ref[t].numpy())
    assert torch.equal(state["stack"].past, s_ref["stack"].past)
