"""Neuron models with explicit state: frozen parameters, NamedTuple state, pure step functions.

Every neuron is a frozen dataclass of its (non-learnable) parameters, ``IF``, ``LIF``,
``PLIF``, ``DALIF``, ``ALIF`` or ``LI``; one step is a pure function
``xxx_step(x, state, params[, learnable tensors]) -> (out, new_state)``. The dataclass is also
a layer spec for ``eventflow.snn.layers.Sequential``: ``init_state(shape)``, ``init_weights()``
(the learnable tensors, ``{}`` for most), ``step(x, state, weights)`` and
``run(x_seq, state, weights)`` over a leading time axis. ``NeuronCell`` is the thin
``nn.Module`` that owns the learnable tensors and makes the first state from the input.

Dynamics per step (SpikingJelly's conventions; ``x`` the input, ``v`` the membrane):

- charge, LIF with ``decay_input``:  ``h = v + (v_reset - v + x) / tau``
- charge, LIF without:               ``h = v + (v_reset - v) / tau + x``
- charge, IF:                        ``h = v + x``
- fire: ``s = (h - threshold >= 0)`` (surrogate gradient backward, see ``surrogate``)
- reset ``"hard"``: ``v = (1 - s) * h + s * v_reset``; ``"soft"``: ``v = h - s * threshold``

The issue's reference LIF is ``LIF()``: tau 2, decay_input, v_reset 0, threshold 1, hard reset.
Changing the batch size is never implicit: a state whose shape differs from the input's raises
(``eventflow.snn.state.select`` / ``concat`` move streams in and out).

>>> import torch
>>> p = LIF()
>>> s, st = lif_step(torch.tensor([1.5, 3.0]), p.init_state((2,)), p)
>>> s, st.v                        # h = (0.75, 1.5): the second neuron fires and resets to 0
(tensor([0., 1.]), tensor([0.7500, 0.0000]))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from .surrogate import Surrogate, fire

__all__ = ["ALIF", "ALIFState", "DALIF", "IF", "LI", "LIF", "MembraneState", "NeuronCell", "PLIF", "alif_step",
           "dalif_factors", "dalif_step", "if_step", "kernel_args", "li_step", "lif_step", "plif_step"]


class MembraneState(NamedTuple):
    """State of IF, LIF, PLIF, DA-LIF and LI neurons: the membrane potential after reset."""

    v: torch.Tensor


class ALIFState(NamedTuple):
    """State of an adaptive LIF neuron: membrane ``v`` and adaptation ``a`` (threshold ``b0 + beta * a``)."""

    v: torch.Tensor
    a: torch.Tensor


def _check_shape(x: torch.Tensor, v: torch.Tensor, name: str) -> None:
    if x.shape != v.shape:
        raise ValueError(f"{name}: input shape {tuple(x.shape)} differs from state shape {tuple(v.shape)}; "
                         "streams join or leave with eventflow.snn.state.select / concat, never implicitly")


@dataclass(frozen=True, kw_only=True)
class _Spiking:
    """Fields and layer-spec methods shared by the spiking neurons."""

    v_threshold: float = 1.0
    v_reset: float = 0.0
    reset: str = "hard"
    surrogate: Surrogate = Surrogate()
    detach_reset: bool = False
    stateful: ClassVar[bool] = True

    def __post_init__(self):
        if self.reset not in ("hard", "soft"):
            raise ValueError(f"reset must be 'hard' (to v_reset) or 'soft' (subtract threshold), got {self.reset!r}")
        for name in ("tau", "v_threshold", "v_reset"):
            v = getattr(self, name, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a finite number, got {v!r}")
        if getattr(self, "tau", 1.0) < 1.0:
            raise ValueError(f"tau must be >= 1 (a decay of at most 1 per step), got {self.tau!r}")

    def init_weights(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {}

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape)

    def init_state(self, shape, dtype=torch.float32, device=None) -> MembraneState:
        """Resting state, every membrane at ``v_reset``, for an input of ``shape`` (batch first)."""
        return MembraneState(torch.full(tuple(shape), self.v_reset, dtype=dtype, device=device))

    def run(self, x_seq, state, weights=None):
        """``step`` over ``x_seq``'s leading time axis: ``(out[T, ...], final state)``."""
        out = []
        for x in x_seq:
            y, state = self.step(x, state, weights)
            out.append(y)
        return torch.stack(out), state


# The ``v_reset == 0`` branches below skip additions of zero: same numbers, fewer passes over memory.

def _fire_and_reset(h: torch.Tensor, threshold, p: _Spiking) -> tuple[torch.Tensor, torch.Tensor]:
    s = fire(h, threshold, p.surrogate)
    r = s.detach() if p.detach_reset else s
    if p.reset == "soft":
        return s, h - r * threshold
    return s, ((1.0 - r) * h if p.v_reset == 0 else (1.0 - r) * h + r * p.v_reset)


def _leak(v: torch.Tensor, x: torch.Tensor, tau, v_reset: float, decay_input: bool) -> torch.Tensor:
    if decay_input:
        return v + ((x - v) if v_reset == 0 else (v_reset - v + x)) / tau
    return v + ((-v) if v_reset == 0 else (v_reset - v)) / tau + x


@dataclass(frozen=True, kw_only=True)
class IF(_Spiking):
    """Integrate-and-fire: ``h = v + x``.

    >>> s, st = if_step(torch.tensor([0.6]), MembraneState(torch.tensor([0.5])), IF(reset="soft"))
    >>> s, st.v
    (tensor([1.]), tensor([0.1000]))
    """

    def step(self, x, state, weights=None):
        return if_step(x, state, self)


def if_step(x: torch.Tensor, state: MembraneState, p: IF) -> tuple[torch.Tensor, MembraneState]:
    """One IF step: ``(spikes, new state)``."""
    _check_shape(x, state.v, "IF")
    s, v = _fire_and_reset(state.v + x, p.v_threshold, p)
    return s, MembraneState(v)


@dataclass(frozen=True, kw_only=True)
class LIF(_Spiking):
    """Leaky integrate-and-fire with membrane time constant ``tau`` (in steps).

    ``LIF()`` is the issue's reference neuron (``h = v + (x - v) / 2``, fire at 1, reset to 0),
    equal to SpikingJelly's ``LIFNode(tau=2.0)``. Without ``decay_input`` and with
    ``beta = 1 - 1 / tau`` it is snnTorch's ``Leaky(beta)`` (see the module docstring).

    >>> LIF(tau=4.0, decay_input=False, reset="soft").tau
    4.0
    """

    tau: float = 2.0
    decay_input: bool = True

    def step(self, x, state, weights=None):
        return lif_step(x, state, self)


def lif_step(x: torch.Tensor, state: MembraneState, p: LIF) -> tuple[torch.Tensor, MembraneState]:
    """One LIF step: ``(spikes, new state)``."""
    _check_shape(x, state.v, "LIF")
    s, v = _fire_and_reset(_leak(state.v, x, p.tau, p.v_reset, p.decay_input), p.v_threshold, p)
    return s, MembraneState(v)


@dataclass(frozen=True, kw_only=True)
class PLIF(_Spiking):
    """Parametric LIF (Fang et al. 2021): one learnable ``w`` per layer, ``1 / tau = sigmoid(w)``.

    ``init_tau`` sets ``w = -log(init_tau - 1)``, as SpikingJelly's ``ParametricLIFNode``.

    >>> round(float(torch.sigmoid(PLIF(init_tau=4.0).init_weights()["w"])), 4)
    0.25
    """

    init_tau: float = 2.0
    decay_input: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.init_tau > 1.0:
            raise ValueError(f"init_tau must be > 1, got {self.init_tau!r}")

    def init_weights(self, generator=None):
        return {"w": torch.tensor(-math.log(self.init_tau - 1.0))}

    def step(self, x, state, weights):
        return plif_step(x, state, self, weights["w"])


def plif_step(x: torch.Tensor, state: MembraneState, p: PLIF, w: torch.Tensor) -> tuple[torch.Tensor, MembraneState]:
    """One PLIF step with learnable ``w``: ``h = v + (x - (v - v_reset)) * sigmoid(w)`` (decay_input)."""
    _check_shape(x, state.v, "PLIF")
    v, k = state.v, torch.sigmoid(w)
    h = v + (x - (v - p.v_reset)) * k if p.decay_input else v - (v - p.v_reset) * k + x
    s, v = _fire_and_reset(h, p.v_threshold, p)
    return s, MembraneState(v)


@dataclass(frozen=True, kw_only=True)
class DALIF(_Spiking):
    """Dual-adaptive LIF: learnable per-channel temporal and spatial decays (channel = dim 1).

    ``h = v_reset + sigmoid(w_temporal) * (v - v_reset) + sigmoid(w_spatial) * x``; initialised
    so that ``sigmoid(w_temporal) = 1 - 1 / init_tau`` and ``sigmoid(w_spatial) = 1 / init_tau``,
    i.e. equal to ``LIF(tau=init_tau)`` before training.

    >>> sorted(DALIF(channels=3).init_weights())
    ['w_spatial', 'w_temporal']
    """

    channels: int
    init_tau: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        if not self.init_tau > 1.0 or self.channels < 1:
            raise ValueError(f"DALIF needs init_tau > 1 and channels >= 1, got {self.init_tau!r}, {self.channels!r}")

    def init_weights(self, generator=None):
        k_t, k_s = 1.0 - 1.0 / self.init_tau, 1.0 / self.init_tau
        return {"w_spatial": torch.full((self.channels,), math.log(k_s / (1.0 - k_s))),
                "w_temporal": torch.full((self.channels,), math.log(k_t / (1.0 - k_t)))}

    def step(self, x, state, weights):
        return dalif_step(x, state, self, weights["w_spatial"], weights["w_temporal"])


def kernel_args(p) -> tuple:
    """A LIF's or DA-LIF's arguments as the fused kernels take them (``eventflow.kernels.snn`` on
    the CPU, ``eventflow.kernels.snn_gpu``): ``(tau, v_reset, threshold, decay_input, soft)``. A
    DA-LIF has no tau (its per-channel factors, ``dalif_factors``, follow) and scales its input
    instead of decaying it.

    >>> kernel_args(LIF(tau=4.0, reset="soft"))
    (4.0, 0.0, 1.0, True, True)
    """
    if type(p) is DALIF:
        return (1.0, float(p.v_reset), float(p.v_threshold), False, p.reset == "soft")
    return (float(p.tau), float(p.v_reset), float(p.v_threshold), bool(p.decay_input), p.reset == "soft")


def dalif_factors(weights) -> tuple[torch.Tensor, torch.Tensor]:
    """A DA-LIF's per-channel ``(sigmoid(w_temporal), sigmoid(w_spatial))`` as ``dalif_step``
    computes them on the CPU: float32 CPU tensors (the kernels' ``kt, ks``)."""
    return tuple(torch.sigmoid(weights[k].detach().cpu().float()) for k in ("w_temporal", "w_spatial"))


def dalif_step(x: torch.Tensor, state: MembraneState, p: DALIF, w_spatial: torch.Tensor,
               w_temporal: torch.Tensor) -> tuple[torch.Tensor, MembraneState]:
    """One DA-LIF step: ``(spikes, new state)``; ``w_*`` have one entry per channel (``x.shape[1]``)."""
    _check_shape(x, state.v, "DALIF")
    if x.ndim < 2 or x.shape[1] != w_spatial.shape[0]:
        raise ValueError(f"DALIF: input {tuple(x.shape)} must have {w_spatial.shape[0]} channels in dim 1")
    per_channel = (-1,) + (1,) * (x.ndim - 2)
    k_s, k_t = torch.sigmoid(w_spatial).view(per_channel), torch.sigmoid(w_temporal).view(per_channel)
    h = p.v_reset + k_t * (state.v - p.v_reset) + k_s * x
    s, v = _fire_and_reset(h, p.v_threshold, p)
    return s, MembraneState(v)


@dataclass(frozen=True, kw_only=True)
class ALIF(_Spiking):
    """Adaptive-threshold LIF: fires at ``v_threshold + beta * a``; ``a`` decays with
    ``tau_adapt`` and jumps by 1 on each spike: ``a' = a - a / tau_adapt + s``.

    The membrane follows ``LIF`` (``tau``, ``decay_input``); a soft reset subtracts the
    adapted threshold. With ``beta = 0`` it is ``LIF``.

    >>> st = ALIF().init_state((2,))
    >>> st.a
    tensor([0., 0.])
    """

    tau: float = 2.0
    decay_input: bool = True
    tau_adapt: float = 20.0
    beta: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.tau_adapt < 1.0:
            raise ValueError(f"tau_adapt must be >= 1, got {self.tau_adapt!r}")

    def init_state(self, shape, dtype=torch.float32, device=None) -> ALIFState:
        v = torch.full(tuple(shape), self.v_reset, dtype=dtype, device=device)
        return ALIFState(v, torch.zeros_like(v))

    def step(self, x, state, weights=None):
        return alif_step(x, state, self)


def alif_step(x: torch.Tensor, state: ALIFState, p: ALIF) -> tuple[torch.Tensor, ALIFState]:
    """One ALIF step: ``(spikes, new state)``."""
    _check_shape(x, state.v, "ALIF")
    threshold = p.v_threshold + p.beta * state.a
    s, v = _fire_and_reset(_leak(state.v, x, p.tau, p.v_reset, p.decay_input), threshold, p)
    return s, ALIFState(v, state.a - state.a / p.tau_adapt + s)


@dataclass(frozen=True, kw_only=True)
class LI:
    """Non-spiking leaky integrator (readout): output = membrane ``h`` (LIF's charge, no reset).

    >>> y, st = li_step(torch.tensor([1.0]), LI().init_state((1,)), LI())
    >>> y, st.v
    (tensor([0.5000]), tensor([0.5000]))
    """

    tau: float = 2.0
    v_rest: float = 0.0
    decay_input: bool = True
    stateful: ClassVar[bool] = True
    init_weights = _Spiking.init_weights
    out_shape = _Spiking.out_shape
    run = _Spiking.run

    def __post_init__(self):
        if self.tau < 1.0:
            raise ValueError(f"tau must be >= 1, got {self.tau!r}")

    def init_state(self, shape, dtype=torch.float32, device=None) -> MembraneState:
        return MembraneState(torch.full(tuple(shape), self.v_rest, dtype=dtype, device=device))

    def step(self, x, state, weights=None):
        return li_step(x, state, self)


def li_step(x: torch.Tensor, state: MembraneState, p: LI) -> tuple[torch.Tensor, MembraneState]:
    """One leaky-integrator step: ``(membrane, new state)``."""
    _check_shape(x, state.v, "LI")
    h = _leak(state.v, x, p.tau, p.v_rest, p.decay_input)
    return h, MembraneState(h)


class NeuronCell(nn.Module):
    """Thin module around a neuron: owns its learnable tensors, makes the first state.

    >>> cell = NeuronCell(PLIF())
    >>> x = torch.ones(3, 4)
    >>> s, state = cell(x)                     # state None: resting state shaped like x
    >>> s_seq, state = cell.run(torch.ones(5, 3, 4), state)
    >>> s_seq.shape, [n for n, _ in cell.named_parameters()]
    (torch.Size([5, 3, 4]), ['weights.w'])
    """

    def __init__(self, neuron, generator: torch.Generator | None = None):
        super().__init__()
        self.neuron = neuron
        self.weights = nn.ParameterDict(neuron.init_weights(generator))

    def initial_state(self, x: torch.Tensor):
        """The resting state for one step's input ``x`` (batch first)."""
        return self.neuron.init_state(x.shape, x.dtype, x.device)

    def forward(self, x: torch.Tensor, state=None):
        """One step: ``(out, new state)``; ``state=None`` starts from rest."""
        return self.neuron.step(x, self.initial_state(x) if state is None else state, self.weights)

    def run(self, x_seq: torch.Tensor, state=None):
        """All steps of ``x_seq`` (time first): ``(out[T, ...], final state)``."""
        return self.neuron.run(x_seq, self.initial_state(x_seq[0]) if state is None else state, self.weights)

    def extra_repr(self) -> str:
        return repr(self.neuron)
