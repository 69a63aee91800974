"""Layer specs: frozen descriptions of layers, applied as pure functions of (x, state, weights).

A layer spec is an immutable value with

- ``stateful``: whether it keeps per-stream state (the neurons of ``neurons`` do);
- ``init_weights(generator)``: its learnable tensors, a (nested) dict, PyTorch's default init;
- ``out_shape(shape)`` and ``init_state(shape, dtype, device)`` for a batch-first input shape;
- ``step(x, state, weights) -> (y, state)``: one time step, ``state`` is ``None`` if stateless;
- ``run(x_seq, state, weights) -> (y_seq, state)``: ``T`` steps at once (stateless layers run
  on the merged ``[T * B]`` batch, neurons loop over time); equal to ``step`` in a loop.

``Sequential`` chains named specs and is itself a spec, and so is ``SEWBlock`` (SEW-ResNet's
residual block, Fang et al. 2021). ``fold_batch_norms`` merges each BatchNorm into the
Conv2d / Linear before it, for inference. ``eventflow.snn.network.Network`` owns the weights.

>>> import torch
>>> from .neurons import LIF
>>> net = Sequential([("conv", Conv2d(2, 4, 3, padding=1)), ("lif", LIF()), ("pool", MaxPool2d(2)),
...                   ("flat", Flatten()), ("fc", Linear(4 * 4 * 4, 3))])
>>> w = net.init_weights(torch.Generator().manual_seed(0))
>>> state = net.init_state((5, 2, 8, 8))
>>> y, state = net.step(torch.rand(5, 2, 8, 8), state, w)
>>> y.shape, sorted(state)
(torch.Size([5, 3]), ['lif'])
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AvgPool2d", "BatchNorm", "Conv2d", "Flatten", "Linear", "MaxPool2d", "PixelUnshuffle", "ReLU", "SEWBlock",
           "Sequential", "StackState", "StepStack", "SumPool2d", "batch_norm", "fold_batch_norm", "fold_batch_norms", "sew_block"]


def _default_init(weight: torch.Tensor, bias: torch.Tensor | None, generator) -> None:
    """PyTorch's default Conv / Linear initialisation, in the same order (same numbers for one seed)."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound, generator=generator)


class _Stateless:
    """Defaults of the stateless specs; ``run`` applies ``step`` to the merged time x batch axis."""

    stateful: ClassVar[bool] = False

    def init_weights(self, generator=None) -> dict[str, torch.Tensor]:
        return {}

    def init_state(self, shape, dtype=torch.float32, device=None):
        return None

    def run(self, x_seq, state, weights):
        y, _ = self.step(x_seq.flatten(0, 1), None, weights)
        return y.unflatten(0, x_seq.shape[:2]), None


def _bias(weights):
    return weights["bias"] if "bias" in weights else None


@dataclass(frozen=True)
class Conv2d(_Stateless):
    """2-D convolution, square kernel; weights ``weight [out, in, k, k]`` and ``bias [out]``."""

    in_channels: int
    out_channels: int
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0
    bias: bool = True

    def init_weights(self, generator=None):
        w = torch.empty(self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        b = torch.empty(self.out_channels) if self.bias else None
        _default_init(w, b, generator)
        return {"weight": w} if b is None else {"weight": w, "bias": b}

    def out_shape(self, shape):
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"{self} needs inputs [B, {self.in_channels}, H, W], got {shape}")
        size = [(n + 2 * self.padding - self.kernel_size) // self.stride + 1 for n in shape[2:]]
        return (shape[0], self.out_channels, *size)

    def step(self, x, state, weights):
        return F.conv2d(x, weights["weight"], _bias(weights), self.stride, self.padding), None


@dataclass(frozen=True)
class Linear(_Stateless):
    """Fully connected layer; weights ``weight [out, in]`` and ``bias [out]``."""

    in_features: int
    out_features: int
    bias: bool = True

    def init_weights(self, generator=None):
        w = torch.empty(self.out_features, self.in_features)
        b = torch.empty(self.out_features) if self.bias else None
        _default_init(w, b, generator)
        return {"weight": w} if b is None else {"weight": w, "bias": b}

    def out_shape(self, shape):
        if len(shape) != 2 or shape[1] != self.in_features:
            raise ValueError(f"{self} needs inputs [B, {self.in_features}], got {shape}")
        return (shape[0], self.out_features)

    def step(self, x, state, weights):
        return F.linear(x, weights["weight"], _bias(weights)), None


@dataclass(frozen=True)
class _Pool2d(_Stateless):
    kernel_size: int = 2
    stride: int | None = None

    def out_shape(self, shape):
        s = self.stride or self.kernel_size
        return (*shape[:2], *[(n - self.kernel_size) // s + 1 for n in shape[2:]])


@dataclass(frozen=True)
class MaxPool2d(_Pool2d):
    """Max pooling (stride defaults to the kernel size)."""

    def step(self, x, state, weights):
        return F.max_pool2d(x, self.kernel_size, self.stride or self.kernel_size), None


@dataclass(frozen=True)
class AvgPool2d(_Pool2d):
    """Average pooling (stride defaults to the kernel size)."""

    def step(self, x, state, weights):
        return F.avg_pool2d(x, self.kernel_size, self.stride or self.kernel_size), None


@dataclass(frozen=True)
class SumPool2d(_Pool2d):
    """Sum pooling: spike counts per window, exact (no division)."""

    def step(self, x, state, weights):
        return F.avg_pool2d(x, self.kernel_size, self.stride or self.kernel_size, divisor_override=1), None


@dataclass(frozen=True)
class Flatten(_Stateless):
    """``[B, ...] -> [B, prod(...)]``."""

    def out_shape(self, shape):
        return (shape[0], math.prod(shape[1:]))

    def step(self, x, state, weights):
        return x.flatten(1), None


@dataclass(frozen=True)
class PixelUnshuffle(_Stateless):
    """Space to depth: ``[B, C, H, W] -> [B, C * r * r, H / r, W / r]`` (``torch.nn.functional.pixel_unshuffle``:
    output channel ``(c * r + i) * r + j`` holds input pixel ``(y * r + i, x * r + j)`` of channel ``c``).
    A stem that keeps the input's full resolution in channels: a 3x3 conv after it sees the fine
    detail of a ``3r x 3r`` patch at the cost of a conv at ``1 / r`` of the resolution."""

    factor: int = 2

    MAX_FACTOR: ClassVar[int] = 16

    def __post_init__(self):
        if not (isinstance(self.factor, int) and not isinstance(self.factor, bool) and 1 <= self.factor <= self.MAX_FACTOR):
            raise ValueError(f"PixelUnshuffle.factor: expected a whole number in 1..{self.MAX_FACTOR}, got {self.factor!r}")

    def out_shape(self, shape):
        r = self.factor
        if len(shape) != 4 or shape[2] % r or shape[3] % r:
            raise ValueError(f"{self} needs inputs [B, C, H, W] with H and W multiples of {r}, got {tuple(shape)}")
        return (shape[0], shape[1] * r * r, shape[2] // r, shape[3] // r)

    def step(self, x, state, weights):
        return F.pixel_unshuffle(x, self.factor), None


class StackState(NamedTuple):
    past: torch.Tensor   # [B, (steps - 1) * C, H, W]: the previous steps' inputs, oldest first


@dataclass(frozen=True)
class StepStack:
    """The last ``steps`` steps' inputs side by side in channels, oldest first:
    ``[B, C, H, W] -> [B, steps * C, H, W]`` (zeros for the steps before a stream's first).

    A stem: a conv after it sees how its input changed over the last steps (where an edge moved:
    the direction of a motion) within one step, which a layer of leaky integrators, summing its
    input over time, cannot tell. Its state is the previous ``steps - 1`` inputs, kept between
    calls like the membranes.

    >>> s = StepStack(2)
    >>> y, st = s.run(torch.arange(3.0).view(3, 1, 1, 1, 1), s.init_state((1, 1, 1, 1)))
    >>> y.flatten(1).tolist(), st.past.flatten().tolist()
    ([[0.0, 0.0], [0.0, 1.0], [1.0, 2.0]], [2.0])
    """

    steps: int = 2

    stateful: ClassVar[bool] = True
    MAX_STEPS: ClassVar[int] = 64

    def __post_init__(self):
        if not (isinstance(self.steps, int) and not isinstance(self.steps, bool) and 1 <= self.steps <= self.MAX_STEPS):
            raise ValueError(f"StepStack.steps: expected a whole number in 1..{self.MAX_STEPS}, got {self.steps!r}")

    def init_weights(self, generator=None) -> dict[str, torch.Tensor]:
        return {}

    def out_shape(self, shape):
        return (shape[0], shape[1] * self.steps, *shape[2:])

    def init_state(self, shape, dtype=torch.float32, device=None) -> StackState:
        return StackState(torch.zeros((shape[0], shape[1] * (self.steps - 1), *shape[2:]), dtype=dtype, device=device))

    def step(self, x, state: StackState, weights=None):
        y, state = self.run(x[None], state)
        return y[0], state

    def run(self, x_seq, state: StackState, weights=None):
        T, B, C = x_seq.shape[:3]
        k = self.steps
        past = state.past.to(x_seq.dtype).reshape(B, k - 1, C, *x_seq.shape[3:]).transpose(0, 1)
        full = torch.cat([past, x_seq], 0)                                    # [k - 1 + T, B, C, ...]
        y = torch.cat([full[j:j + T] for j in range(k)], 2)                  # [T, B, k * C, ...]
        kept = full[T:].transpose(0, 1).reshape(B, (k - 1) * C, *x_seq.shape[3:])
        return y, StackState(kept.contiguous())


@dataclass(frozen=True)
class ReLU(_Stateless):
    """Rectifier, for the ANN part of a hybrid network."""

    def out_shape(self, shape):
        return tuple(shape)

    def step(self, x, state, weights):
        return F.relu(x), None


def batch_norm(x, running_mean, running_var, weight, bias, eps: float = 1e-5) -> torch.Tensor:
    """Inference batch norm over dim 1 with fixed statistics."""
    return F.batch_norm(x, running_mean, running_var, weight, bias, False, 0.0, eps)


@dataclass(frozen=True)
class BatchNorm(_Stateless):
    """Batch norm over channels (dim 1) of ``[B, C]`` or ``[B, C, H, W]`` inputs.

    The mode is the weights' module mode (``Network.train()`` / ``.eval()``, torch's convention):
    in training it normalises by the statistics of the batch it is given and moves the stored
    ``running_mean`` / ``running_var`` (not learnable) towards them by ``momentum``, as
    ``torch.nn.BatchNorm2d`` does; otherwise (and with plain-dict weights) it uses the stored
    statistics. ``Network.run`` hands it all T steps at once, so in training the statistics are
    those of the T x B samples together (threshold-dependent BN, Zheng et al. 2021, without the
    threshold scale); stepping one step at a time normalises each step's batch on its own.
    ``fold_batch_norms`` merges it into the Conv2d / Linear before it for inference.

    >>> import torch
    >>> from torch import nn
    >>> bn = BatchNorm(2)
    >>> w = nn.ParameterDict(bn.init_weights())   # a Network's weights are such modules
    >>> y, _ = bn.step(torch.randn(64, 2) * 3 + 5, None, w)
    >>> bool(y.mean(0).abs().max() < 1e-5), float(w["running_mean"].min()) > 0   # train mode by default
    (True, True)
    >>> _ = w.eval()
    >>> bool(torch.equal(bn.step(torch.ones(1, 2), None, w)[0], bn.step(torch.ones(1, 2), None, w)[0]))
    True
    """

    channels: int
    eps: float = 1e-5
    momentum: float = 0.1

    def init_weights(self, generator=None):
        c = self.channels
        return {"weight": torch.ones(c), "bias": torch.zeros(c),
                "running_mean": nn.Parameter(torch.zeros(c), requires_grad=False),
                "running_var": nn.Parameter(torch.ones(c), requires_grad=False)}

    def out_shape(self, shape):
        if shape[1] != self.channels:
            raise ValueError(f"BatchNorm({self.channels}) got {shape[1]} channels")
        return tuple(shape)

    def step(self, x, state, weights):
        w = weights
        if getattr(weights, "training", False):
            if x.numel() // max(x.shape[1], 1) < 2:
                raise ValueError(f"BatchNorm({self.channels}) in training mode needs more than one value per channel "
                                 f"(got input {tuple(x.shape)}); call .eval() on the network for inference")
            return F.batch_norm(x, w["running_mean"], w["running_var"], w["weight"], w["bias"], True,
                                self.momentum, self.eps), None
        return batch_norm(x, w["running_mean"], w["running_var"], w["weight"], w["bias"], self.eps), None


def fold_batch_norm(weight, bias, bn_weights, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` of a Conv2d / Linear that equals it followed by inference batch norm.

    >>> w, b = fold_batch_norm(torch.ones(2, 3), None, BatchNorm(2).init_weights())
    >>> torch.allclose(w, torch.ones(2, 3) / (1 + 1e-5) ** 0.5), b.tolist()
    (True, [0.0, 0.0])
    """
    scale = bn_weights["weight"] / torch.sqrt(bn_weights["running_var"] + eps)
    b = torch.zeros_like(bn_weights["running_mean"]) if bias is None else bias
    shape = (-1,) + (1,) * (weight.ndim - 1)
    return weight * scale.view(shape), (b - bn_weights["running_mean"]) * scale + bn_weights["bias"]


def _named(layers) -> tuple[tuple[str, Any], ...]:
    out = []
    for i, item in enumerate(layers):
        name, spec = item if isinstance(item, tuple) else (str(i), item)
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"layer names are non-empty strings without '.', got {name!r}")
        out.append((name, spec))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique, got {names}")
    return tuple(out)


@dataclass(frozen=True)
class Sequential:
    """Named layer specs applied in order; itself a layer spec. Items are specs or ``(name, spec)``.

    Its weights and states are dicts keyed by layer name (states only for stateful layers).
    """

    layers: tuple

    def __post_init__(self):
        object.__setattr__(self, "layers", _named(self.layers))

    @property
    def stateful(self) -> bool:
        return any(spec.stateful for _, spec in self.layers)

    def __getitem__(self, name: str):
        return dict(self.layers)[name]

    def init_weights(self, generator=None):
        return {name: spec.init_weights(generator) for name, spec in self.layers}

    def out_shape(self, shape):
        for _, spec in self.layers:
            shape = spec.out_shape(shape)
        return tuple(shape)

    def init_state(self, shape, dtype=torch.float32, device=None):
        state = {}
        for name, spec in self.layers:
            if spec.stateful:
                state[name] = spec.init_state(shape, dtype, device)
            shape = spec.out_shape(shape)
        return state

    def step(self, x, state, weights):
        new = {}
        for name, spec in self.layers:
            x, s = spec.step(x, state[name] if spec.stateful else None, weights[name])
            if spec.stateful:
                new[name] = s
        return x, new

    def run(self, x_seq, state, weights):
        new = {}
        for name, spec in self.layers:
            x_seq, s = spec.run(x_seq, state[name] if spec.stateful else None, weights[name])
            if spec.stateful:
                new[name] = s
        return x_seq, new

    def trace(self, x_seq, state, weights):
        """Like ``run``, also returning every layer's output sequence: ``(outputs by name, state)``."""
        outputs, new = {}, {}
        for name, spec in self.layers:
            x_seq, s = spec.run(x_seq, state[name] if spec.stateful else None, weights[name])
            outputs[name] = x_seq
            if spec.stateful:
                new[name] = s
        return outputs, new


_CONNECT = {"add": lambda a, s: a + s, "and": lambda a, s: a * s, "iand": lambda a, s: (1.0 - a) * s}


@dataclass(frozen=True)
class SEWBlock:
    """Spike-element-wise residual block: ``connect(body(x), shortcut(x))``.

    ``connect`` is ``"add"`` (SEW-ResNet's ADD, the default), ``"and"`` or ``"iand"``
    (``(1 - body) * shortcut``); ``shortcut=None`` is the identity. See ``sew_block``.
    """

    body: Sequential
    shortcut: Sequential | None = None
    connect: str = "add"

    def __post_init__(self):
        if self.connect not in _CONNECT:
            raise ValueError(f"connect must be one of {sorted(_CONNECT)}, got {self.connect!r}")

    def _parts(self):
        return (("body", self.body),) + ((("shortcut", self.shortcut),) if self.shortcut is not None else ())

    @property
    def stateful(self) -> bool:
        return any(p.stateful for _, p in self._parts())

    def init_weights(self, generator=None):
        return {name: part.init_weights(generator) for name, part in self._parts()}

    def out_shape(self, shape):
        out = self.body.out_shape(shape)
        other = self.shortcut.out_shape(shape) if self.shortcut is not None else tuple(shape)
        if out != other:
            raise ValueError(f"SEWBlock: body gives {out} but shortcut gives {other}")
        return out

    def init_state(self, shape, dtype=torch.float32, device=None):
        return {name: part.init_state(shape, dtype, device) for name, part in self._parts() if part.stateful}

    def _apply(self, method, x, state, weights):
        outs, new = {}, {}
        for name, part in self._parts():
            outs[name], s = getattr(part, method)(x, (state or {}).get(name), weights[name])
            if part.stateful:
                new[name] = s
        return _CONNECT[self.connect](outs["body"], outs.get("shortcut", x)), new

    def step(self, x, state, weights):
        return self._apply("step", x, state, weights)

    def run(self, x_seq, state, weights):
        return self._apply("run", x_seq, state, weights)


def sew_block(in_channels: int, out_channels: int, neuron, stride: int = 1, connect: str = "add") -> SEWBlock:
    """SEW-ResNet basic block: conv3x3-BN-SN-conv3x3-BN-SN, shortcut conv1x1-BN-SN when the shape changes.

    >>> from .neurons import LIF
    >>> blk = sew_block(4, 8, LIF(), stride=2)
    >>> blk.out_shape((1, 4, 8, 8))
    (1, 8, 4, 4)
    """
    body = Sequential([("conv1", Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)),
                       ("bn1", BatchNorm(out_channels)), ("sn1", neuron),
                       ("conv2", Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)),
                       ("bn2", BatchNorm(out_channels)), ("sn2", neuron)])
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = Sequential([("conv", Conv2d(in_channels, out_channels, 1, stride, 0, bias=False)),
                               ("bn", BatchNorm(out_channels)), ("sn", neuron)])
    return SEWBlock(body, shortcut, connect)


def fold_batch_norms(spec, weights):
    """``(spec, weights)`` with every BatchNorm right after a Conv2d / Linear merged into it.

    Recurses into ``Sequential`` and ``SEWBlock``; other specs pass through with copies of
    their weights. Weights come back as a nested dict of tensors (nothing shared with ``weights``).
    """
    if isinstance(spec, SEWBlock):
        folded = {name: fold_batch_norms(part, weights[name]) for name, part in spec._parts()}
        return (replace(spec, body=folded["body"][0],
                        shortcut=folded["shortcut"][0] if "shortcut" in folded else None),
                {name: w for name, (_, w) in folded.items()})
    if not isinstance(spec, Sequential):
        return spec, {k: nn.Parameter(v.detach().clone(), requires_grad=v.requires_grad) for k, v in weights.items()}
    layers, new_weights = [], {}
    items = list(spec.layers)
    i = 0
    while i < len(items):
        name, layer = items[i]
        nxt = items[i + 1][1] if i + 1 < len(items) else None
        if isinstance(layer, (Conv2d, Linear)) and isinstance(nxt, BatchNorm):
            with torch.no_grad():
                w, b = fold_batch_norm(weights[name]["weight"], _bias(weights[name]), weights[items[i + 1][0]], nxt.eps)
            layers.append((name, replace(layer, bias=True)))
            new_weights[name] = {"weight": w, "bias": b}
            i += 2
            continue
        layer, new_weights[name] = fold_batch_norms(layer, weights[name])
        layers.append((name, layer))
        i += 1
    return Sequential(tuple(layers)), new_weights
