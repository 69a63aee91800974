"""Neuron models of eventflow.snn: hand-computed trajectories, the peers' dynamics, surrogate gradients."""
from __future__ import annotations

import math

import pytest
import torch

from eventflow.snn import (ALIF, DALIF, IF, LI, LIF, PLIF, ALIFState, MembraneState, NeuronCell, Surrogate,
                           alif_step, dalif_step, heaviside, if_step, li_step, lif_step, plif_step, spike,
                           surrogate_grad)

T, SHAPE = 60, (4, 3, 5)


def _inputs(seed=0, low=-0.5, high=1.5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(T, *SHAPE, generator=g, dtype=dtype)


def _trajectory(neuron, x_seq, weights=None):
    state, spikes, membranes = neuron.init_state(x_seq.shape[1:], x_seq.dtype), [], []
    for x in x_seq:
        s, state = neuron.step(x, state, weights or {})
        spikes.append(s)
        membranes.append(state.v)
    return torch.stack(spikes), torch.stack(membranes)


def _values(seq):
    return [round(float(v), 6) for v in seq]


# --- hand-computed sequences ---------------------------------------------------------------

def test_reference_lif_by_hand():
    # h = v + (x - v) / 2; spike at h >= 1; hard reset to 0
    s, v = _trajectory(LIF(), torch.tensor([[1.5], [0.5], [2.0], [0.4], [1.6], [1.2], [0.0]]))
    assert _values(s) == [0, 0, 1, 0, 0, 1, 0]
    assert _values(v) == [0.75, 0.625, 0.0, 0.2, 0.9, 0.0, 0.0]


def test_threshold_is_inclusive():
    s, v = _trajectory(LIF(), torch.tensor([[2.0]]))         # h = 1.0 exactly: fires (SpikingJelly's >=)
    assert _values(s) == [1] and _values(v) == [0.0]


def test_lif_no_decay_input_soft_reset_by_hand():
    p = LIF(tau=4.0, decay_input=False, reset="soft")          # h = v - v/4 + x; v = h - s
    s, v = _trajectory(p, torch.tensor([[0.8], [0.6], [0.9], [-0.5]]))
    assert _values(s) == [0, 1, 1, 0]
    assert _values(v) == [0.8, 0.2, 0.05, -0.4625]


def test_lif_nonzero_reset_potential_by_hand():
    p = LIF(tau=2.0, v_reset=-0.5, v_threshold=0.5)             # h = v + (v_reset - v + x)/2
    s, v = _trajectory(p, torch.tensor([[1.0], [2.0], [0.0]]))
    assert _values(s) == [0, 1, 0]
    assert _values(v) == [0.0, -0.5, -0.5]


def test_if_by_hand():
    s, v = _trajectory(IF(), torch.tensor([[0.4], [0.4], [0.4], [0.4]]))
    assert _values(s) == [0, 0, 1, 0]
    assert _values(v) == [0.4, 0.8, 0.0, 0.4]
    s, v = _trajectory(IF(reset="soft"), torch.tensor([[0.75], [0.75], [0.75]]))
    assert _values(s) == [0, 1, 1] and _values(v) == [0.75, 0.5, 0.25]


def test_alif_by_hand():
    p = ALIF(tau=2.0, tau_adapt=2.0, beta=0.5)                  # threshold 1 + a/2; a' = a - a/2 + s
    state, out = p.init_state((1,), torch.float64), []
    for x in (2.5, 2.5, 2.5, 0.0):
        s, state = alif_step(torch.tensor([x], dtype=torch.float64), state, p)
        out.append((float(s), float(state.v), float(state.a)))
    assert out == [(1.0, 0.0, 1.0), (0.0, 1.25, 0.5), (1.0, 0.0, 1.25), (0.0, 0.0, 0.625)]


def test_alif_without_adaptation_is_lif():
    x = _inputs(1)
    s_lif, v_lif = _trajectory(LIF(tau=3.0), x)
    s_alif, v_alif = _trajectory(ALIF(tau=3.0, beta=0.0), x)
    assert torch.equal(s_lif, s_alif) and torch.equal(v_lif, v_alif)


def test_leaky_integrator_by_hand():
    y, v = _trajectory(LI(), torch.tensor([[1.0], [1.0], [1.0], [0.0]]))
    assert _values(y) == [0.5, 0.75, 0.875, 0.4375] and torch.equal(y, v)
    y, _ = _trajectory(LI(tau=4.0, decay_input=False), torch.tensor([[1.0], [1.0]]))
    assert _values(y) == [1.0, 1.75]


def test_plif_at_init_equals_lif():
    x = _inputs(2)
    for decay_input in (True, False):
        p = PLIF(init_tau=2.0, decay_input=decay_input)
        s, v = _trajectory(p, x, p.init_weights())
        s_ref, v_ref = _trajectory(LIF(tau=2.0, decay_input=decay_input), x)
        assert torch.equal(s, s_ref) and torch.equal(v, v_ref)


def test_dalif_at_init_equals_lif_and_is_per_channel():
    x = _inputs(3)
    p = DALIF(channels=SHAPE[1], init_tau=2.0)
    w = p.init_weights()
    s, v = _trajectory(p, x, w)
    s_ref, v_ref = _trajectory(LIF(tau=2.0), x)
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(v, v_ref, rtol=0, atol=1e-12)
    w2 = {"w_spatial": w["w_spatial"].clone(), "w_temporal": w["w_temporal"].clone()}
    w2["w_spatial"][1] += 1.0                                   # only channel 1 changes
    s2, _ = _trajectory(p, x, w2)
    assert torch.equal(s2[:, :, [0, 2]], s[:, :, [0, 2]]) and not torch.equal(s2[:, :, 1], s[:, :, 1])


def test_shape_mismatch_raises_instead_of_broadcasting():
    with pytest.raises(ValueError, match="streams join or leave"):
        lif_step(torch.zeros(3, 4), MembraneState(torch.zeros(1, 4)), LIF())
    for step, st, p in ((if_step, MembraneState(torch.zeros(2)), IF()), (li_step, MembraneState(torch.zeros(2)), LI()),
                        (alif_step, ALIFState(torch.zeros(2), torch.zeros(2)), ALIF())):
        with pytest.raises(ValueError):
            step(torch.zeros(3), st, p)
    with pytest.raises(ValueError):
        plif_step(torch.zeros(3), MembraneState(torch.zeros(2)), PLIF(), torch.tensor(0.0))
    with pytest.raises(ValueError):
        w = torch.zeros(3)
        dalif_step(torch.zeros(2, 4), MembraneState(torch.zeros(2, 4)), DALIF(channels=3), w, w)


def test_invalid_parameters_raise():
    for make in (lambda: LIF(reset="zero"), lambda: LIF(tau=0.5), lambda: PLIF(init_tau=1.0),
                 lambda: Surrogate("relu"), lambda: Surrogate("atan", 0.0), lambda: DALIF(channels=0)):
        with pytest.raises(ValueError):
            make()


def test_neuron_cell_run_equals_steps_and_owns_weights():
    cell = NeuronCell(PLIF(init_tau=3.0))
    x = _inputs(4, dtype=torch.float32)
    s_run, st_run = cell.run(x)
    state, outs = None, []
    for xt in x:
        s, state = cell(xt, state)
        outs.append(s)
    assert torch.equal(s_run, torch.stack(outs)) and torch.equal(st_run.v, state.v)
    assert [n for n, _ in cell.named_parameters()] == ["weights.w"]


# --- surrogate gradients ---------------------------------------------------------------------

@pytest.mark.parametrize("surrogate", [Surrogate("atan", 2.0), Surrogate("sigmoid", 4.0), Surrogate("triangle", 1.5)])
def test_surrogate_forward_is_heaviside_backward_is_the_formula(surrogate):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    y = spike(x, surrogate)
    assert torch.equal(y.detach(), heaviside(x.detach()))
    y.sum().backward()
    torch.testing.assert_close(x.grad, surrogate_grad(x.detach(), surrogate))
    # each surrogate derivative integrates to 1, as the Heaviside's does
    grid = torch.linspace(-60, 60, 600001, dtype=torch.float64)
    area = torch.trapezoid(surrogate_grad(grid, surrogate), grid)
    assert abs(float(area) - 1) < (0.02 if surrogate.kind == "atan" else 1e-6)


def test_known_surrogate_values():
    assert math.isclose(float(surrogate_grad(torch.tensor(0.0), Surrogate("atan", 2.0))), 1.0)
    assert math.isclose(float(surrogate_grad(torch.tensor(0.0), Surrogate("sigmoid", 4.0))), 1.0)
    assert float(surrogate_grad(torch.tensor(0.7), Surrogate("triangle", 2.0))) == 0.0


@pytest.mark.parametrize("neuron", [LIF(), IF(v_threshold=2.0), PLIF(), DALIF(channels=3), ALIF(),
                                    LIF(detach_reset=True)], ids=["lif", "if", "plif", "dalif", "alif", "lif-detach"])
def test_gradients_flow_through_time(neuron):
    cell = NeuronCell(neuron)
    x = _inputs(5, dtype=torch.float32).requires_grad_(True)
    s, _ = cell.run(x)
    (s * torch.linspace(0, 1, T).view(T, 1, 1, 1)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert x.grad[0].abs().sum() > 0                           # the first step gets gradient from later ones
    for name, p in cell.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# --- the peers: SpikingJelly, snnTorch, Norse --------------------------------------------------

LIF_CASES = [(2.0, True, 0.0, "hard"), (3.7, True, -0.2, "hard"), (2.0, False, 0.0, "hard"),
             (5.0, True, 0.0, "soft"), (4.0, False, 0.0, "soft")]


@pytest.mark.parametrize("tau,decay_input,v_reset,reset", LIF_CASES)
def test_lif_equals_spikingjelly_lifnode(tau, decay_input, v_reset, reset):
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")
    node = sj.LIFNode(tau=tau, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset if reset == "hard" else None)
    x = _inputs(6, high=3.0 if decay_input else 1.5)
    s, v = _trajectory(LIF(tau=tau, decay_input=decay_input, v_reset=v_reset, reset=reset), x)
    theirs_s, theirs_v = [], []
    with torch.no_grad():
        for xt in x:
            theirs_s.append(node(xt))
            theirs_v.append(node.v.clone())
    assert s.sum() > 0.05 * s.numel()
    assert torch.equal(s, torch.stack(theirs_s))
    torch.testing.assert_close(v, torch.stack(theirs_v), rtol=0, atol=1e-12)


def test_if_and_plif_equal_spikingjelly():
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")
    x = _inputs(7)
    for ours, node, w in ((IF(reset="soft"), sj.IFNode(v_reset=None), None),
                          (PLIF(init_tau=3.0), sj.ParametricLIFNode(init_tau=3.0), PLIF(init_tau=3.0).init_weights())):
        s, v = _trajectory(ours, x, w)
        with torch.no_grad():
            theirs = [(node(xt), node.v.clone()) for xt in x]
        assert torch.equal(s, torch.stack([a for a, _ in theirs]))
        torch.testing.assert_close(v, torch.stack([b for _, b in theirs]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("tau,reset_mechanism,reset_delay", [(2.0, "zero", False), (4.0, "zero", False),
                                                             (4.0, "subtract", False), (2.0, "zero", True)])
def test_lif_equals_snntorch_leaky(tau, reset_mechanism, reset_delay):
    """snnTorch: mem = beta * mem + x, spike at mem > threshold. It is our LIF without
    decay_input, v_reset 0 and beta = 1 - 1/tau. With reset_delay=False its stored mem is
    ours after reset; with the default reset_delay=True it is ours before reset (so the spikes
    are the same, and membranes agree where no spike). 'subtract' equals our soft reset while
    the membrane stays below twice the threshold (inputs within +-1 keep it there)."""
    snn = pytest.importorskip("snntorch")
    beta = 1.0 - 1.0 / tau
    leaky = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    x = _inputs(8, low=-1.0, high=1.0) if reset_mechanism == "subtract" else _inputs(8)
    ours = LIF(tau=tau, decay_input=False, reset="hard" if reset_mechanism == "zero" else "soft")
    s, v = _trajectory(ours, x)
    mem, theirs_s, theirs_v = torch.zeros_like(x[0]), [], []
    with torch.no_grad():
        for xt in x:
            spk, mem = leaky(xt, mem)
            theirs_s.append(spk)
            theirs_v.append(mem.clone())
    theirs_s, theirs_v = torch.stack(theirs_s), torch.stack(theirs_v)
    assert s.sum() > 0.05 * s.numel()
    assert torch.equal(s, theirs_s)
    if reset_delay:
        torch.testing.assert_close(v[s == 0], theirs_v[s == 0], rtol=0, atol=1e-12)
    else:
        torch.testing.assert_close(v, theirs_v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("tau,v_reset,reset", [(2.0, 0.0, "hard"), (4.0, -0.25, "hard"), (2.0, 0.0, "soft")])
def test_lif_equals_norse_lifbox(tau, v_reset, reset):
    """Norse LIFBox, dt = 1: v += tau_mem_inv * (x + v_leak - v) is our decay_input LIF with v_leak = v_reset."""
    norse = pytest.importorskip("norse.torch")
    from norse.torch.functional.reset import reset_subtract, reset_value
    p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / tau), v_leak=torch.as_tensor(v_reset),
                               v_th=torch.as_tensor(1.0), v_reset=torch.as_tensor(v_reset),
                               reset_method=reset_value if reset == "hard" else reset_subtract)
    cell = norse.LIFBoxCell(p, dt=1.0)
    x = _inputs(9, high=3.0)
    s, v = _trajectory(LIF(tau=tau, v_reset=v_reset, reset=reset), x)
    state, theirs_s, theirs_v = norse.LIFBoxFeedForwardState(v=torch.full_like(x[0], v_reset)), [], []
    with torch.no_grad():
        for xt in x:
            z, state = cell(xt, state)
            theirs_s.append(z)
            theirs_v.append(state.v)
    assert s.sum() > 0.05 * s.numel()
    assert torch.equal(s, torch.stack(theirs_s))
    torch.testing.assert_close(v, torch.stack(theirs_v), rtol=0, atol=1e-12)
