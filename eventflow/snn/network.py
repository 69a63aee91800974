"""Networks: a layer-spec recipe plus the module that owns its weights; the issue's reference net.

``Network(spec, in_shape)`` holds the weights of a ``Sequential`` spec (an ``nn.Module``, so
``.to()``, ``state_dict()`` and optimisers work) and nothing per stream: the state is an
explicit argument and result, made by ``init_state(batch)``, so one set of weights serves
any number of streams and a paused stream resumes exactly (see ``eventflow.snn.state``).
``step(x_t, state)`` and ``run(x[T], state)`` give the same results.

``reference_network()`` is the issue's benchmark network (the one of the peer script
``bench/convsnn.py``, same weights for the same seed); ``HybridNet`` puts an ANN head on an SNN
backbone.

>>> import torch
>>> from .layers import Linear, Sequential
>>> from .neurons import LIF
>>> net = Network(Sequential([("fc", Linear(3, 2)), ("lif", LIF())]), in_shape=(3,), seed=0)
>>> state = net.init_state(batch=4)
>>> y, state = net.step(torch.rand(4, 3), state)
>>> y_seq, state = net.run(torch.rand(10, 4, 3), state)
>>> y_seq.shape
torch.Size([10, 4, 2])
>>> net.step(torch.rand(5, 3), state)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: Network.step: the input has 5 streams but the state holds 4; use eventflow.snn.state.select / ...
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from . import state as S
from .layers import Conv2d, Flatten, Linear, MaxPool2d, Sequential, fold_batch_norms
from .neurons import LIF

__all__ = ["REFERENCE_IN_SHAPE", "HybridNet", "Network", "ReadoutState", "reference_network", "reference_spec"]

REFERENCE_IN_SHAPE = (2, 128, 128)


def _as_module(tree) -> nn.Module:
    """A nested dict of tensors as nested ``ModuleDict`` / ``ParameterDict`` (leaves stay indexable by name)."""
    if all(isinstance(v, torch.Tensor) for v in tree.values()):
        return nn.ParameterDict(tree)
    if all(isinstance(v, dict) for v in tree.values()):
        return nn.ModuleDict({k: _as_module(v) for k, v in tree.items()})
    raise TypeError(f"weights mix tensors and sub-dicts at one level: {sorted(tree)}")


class Network(nn.Module):
    """The weights of a layer-spec recipe and the stepping functions; no per-stream state inside.

    ``in_shape`` is one sample's input shape (no batch); ``seed`` or ``generator`` fix the
    initial weights (PyTorch's default initialisation, drawn layer by layer in order).
    Like any torch module it starts in training mode, where BatchNorm layers normalise by the
    batch's statistics (coupling the streams of a batch): call ``.eval()`` for inference
    (``load_model`` returns models in eval mode).
    """

    def __init__(self, spec: Sequential, in_shape, seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__()
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.spec = spec
        self.in_shape = tuple(in_shape)
        self.out_shape = spec.out_shape((1, *self.in_shape))[1:]  # checks the shapes fit, layer by layer
        self.weights = _as_module(spec.init_weights(generator))

    def _dtype_device(self, dtype, device):
        p = next(iter(self.weights.parameters()), None)
        return (dtype or (p.dtype if p is not None else torch.float32),
                device if device is not None else (p.device if p is not None else None))

    def init_state(self, batch: int, dtype: torch.dtype | None = None, device=None):
        """Resting state for ``batch`` streams (weights' dtype and device unless given)."""
        dtype, device = self._dtype_device(dtype, device)
        return self.spec.init_state((batch, *self.in_shape), dtype, device)

    def _check(self, batch, sample_shape, where, state):
        if tuple(sample_shape) != self.in_shape:
            raise ValueError(f"{where}: input samples shaped {tuple(sample_shape)}, the network takes {self.in_shape}")
        S.check_batch(state, batch, where)

    def step(self, x: torch.Tensor, state):
        """One time step for ``x [B, *in_shape]``: ``(y [B, *out_shape], new state)``."""
        self._check(x.shape[0], x.shape[1:], "Network.step", state)
        return self.spec.step(x, state, self.weights)

    def run(self, x_seq: torch.Tensor, state):
        """``T`` steps for ``x_seq [T, B, *in_shape]``: ``(y [T, B, *out_shape], final state)``."""
        self._check(x_seq.shape[1], x_seq.shape[2:], "Network.run", state)
        return self.spec.run(x_seq, state, self.weights)

    def trace(self, x_seq: torch.Tensor, state):
        """Like ``run``, returning every layer's output sequence by name (to measure firing rates)."""
        self._check(x_seq.shape[1], x_seq.shape[2:], "Network.trace", state)
        return self.spec.trace(x_seq, state, self.weights)

    def forward(self, x_seq: torch.Tensor, state=None):
        """``run`` from rest when ``state`` is None."""
        if state is None:
            state = self.init_state(x_seq.shape[1], x_seq.dtype, x_seq.device)
        return self.run(x_seq, state)

    def reset_streams(self, state, indices):
        """``state`` with streams ``indices`` back at rest; the others untouched."""
        dtype, device = None, None
        for _, t in S.leaves(state)[:1]:
            dtype, device = t.dtype, t.device
        return S.reset_streams(state, indices, self.init_state(1, dtype, device))

    def fold_batch_norms(self) -> "Network":
        """A new network with every BatchNorm merged into the Conv2d / Linear before it (inference)."""
        spec, weights = fold_batch_norms(self.spec, self.weights)
        net = Network(spec, self.in_shape, generator=torch.Generator())  # placeholder init, replaced below
        net.weights = _as_module(weights)
        return net.train(self.training)


def reference_spec(neuron=LIF()) -> Sequential:
    """The issue's reference conv SNN (input 2x128x128, 11 outputs), ``neuron`` after each hidden layer.

    >>> reference_spec().out_shape((1, 2, 128, 128))
    (1, 11)
    """
    return Sequential((
        ("conv1", Conv2d(2, 32, 3, padding=1)), ("lif1", neuron), ("pool1", MaxPool2d(2)),
        ("conv2", Conv2d(32, 64, 3, padding=1)), ("lif2", neuron), ("pool2", MaxPool2d(2)),
        ("conv3", Conv2d(64, 128, 3, padding=1)), ("lif3", neuron), ("pool3", MaxPool2d(2)),
        ("flatten", Flatten()), ("fc1", Linear(128 * 16 * 16, 256)), ("lif4", neuron), ("fc2", Linear(256, 11)),
    ))


def reference_network(seed: int = 0, weight_scale: float = 8.0, neuron=LIF()) -> Network:
    """The reference network with the peer benchmark's weights: PyTorch's default init from
    ``seed`` (conv1, conv2, conv3, fc1, fc2 in order), weights (not biases) times ``weight_scale``.

    At 5% active input pixels per step the hidden layers fire at about 4%, 12%, 18% and 20%.
    Equal to ``bench/convsnn.py``'s ``reference_layers(seed)``, without touching torch's global RNG.
    """
    net = Network(reference_spec(neuron), REFERENCE_IN_SHAPE, seed=seed)
    with torch.no_grad():
        for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
            net.weights[name]["weight"].mul_(weight_scale)
    return net.eval()


class ReadoutState(NamedTuple):
    """Per-stream accumulator of a hybrid net: summed backbone outputs and how many steps were summed."""

    total: torch.Tensor
    steps: torch.Tensor


class HybridNet(nn.Module):
    """SNN backbone stepped in time, an ANN head (stateless specs, e.g. Linear-ReLU-Linear) on the
    mean of the backbone's outputs since the last readout.

    State: ``{"snn": backbone state, "readout": ReadoutState}``, every tensor batch-first, so
    ``eventflow.snn.state`` functions apply. ``run(x[T])`` equals ``step`` T times then ``readout``.

    >>> from .layers import Linear, ReLU, Sequential
    >>> from .neurons import LIF
    >>> backbone = Sequential([Linear(3, 8), LIF()])
    >>> hy = HybridNet(backbone, Sequential([Linear(8, 8), ReLU(), Linear(8, 2)]), in_shape=(3,), seed=0)
    >>> logits, state = hy.run(torch.rand(6, 4, 3), hy.init_state(4))
    >>> logits.shape, state["readout"].steps.tolist()
    (torch.Size([4, 2]), [0, 0, 0, 0])
    """

    def __init__(self, backbone: Sequential, head: Sequential, in_shape, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if head.stateful:
            raise ValueError("the ANN head of a HybridNet must be stateless (no neurons)")
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.snn = Network(backbone, in_shape, generator=generator)
        self.head = Network(head, self.snn.out_shape, generator=generator)

    def init_state(self, batch: int, dtype: torch.dtype | None = None, device=None):
        snn = self.snn.init_state(batch, dtype, device)
        dtype, device = self.snn._dtype_device(dtype, device)
        total = torch.zeros((batch, *self.snn.out_shape), dtype=dtype, device=device)
        return {"snn": snn, "readout": ReadoutState(total, torch.zeros(batch, dtype=torch.long, device=device))}

    def step(self, x: torch.Tensor, state):
        """One backbone step; returns ``(backbone output, state)`` with the output accumulated."""
        y, snn = self.snn.step(x, state["snn"])
        acc = state["readout"]
        return y, {"snn": snn, "readout": ReadoutState(acc.total + y, acc.steps + 1)}

    def readout(self, state):
        """``(head(mean backbone output), state with the accumulator cleared)``; a stream with no step reads zeros."""
        acc = state["readout"]
        steps = acc.steps.clamp(min=1).to(acc.total.dtype).view(-1, *([1] * (acc.total.ndim - 1)))
        out, _ = self.head.step(acc.total / steps, {})
        cleared = ReadoutState(torch.zeros_like(acc.total), torch.zeros_like(acc.steps))
        return out, {"snn": state["snn"], "readout": cleared}

    def run(self, x_seq: torch.Tensor, state):
        """``T`` backbone steps then ``readout``: ``(head output [B, ...], state)``."""
        y_seq, snn = self.snn.run(x_seq, state["snn"])
        acc = state["readout"]
        return self.readout({"snn": snn, "readout": ReadoutState(acc.total + y_seq.sum(0), acc.steps + len(y_seq))})

    def forward(self, x_seq: torch.Tensor, state=None):
        if state is None:
            state = self.init_state(x_seq.shape[1], x_seq.dtype, x_seq.device)
        return self.run(x_seq, state)
