"""Inference of an ``eventflow.snn.Network`` on a GPU: dense cuDNN / cuBLAS sums, one fused
Triton kernel per LIF or DA-LIF layer, and the whole step replayed as one CUDA graph.

``GpuNetwork(net, device="cuda")`` runs the network's top-level layers in order. A ``LIF`` or
``DALIF`` layer is one kernel of ``eventflow.kernels.snn_gpu`` that charges, fires and resets the
layer in one pass, updating its membrane in place, and, when a ``MaxPool2d(2)`` follows, writes
the pooled spikes directly. Every other layer (convolutions, linear layers, pooling, flatten, other
neurons, residual blocks) runs its own torch step, as in the reference.

State is the reference network's state: ``{layer name: MembraneState, ...}``, tensors on the
device, streams on dim 0; so ``eventflow.snn.state`` (select, concat, reset_streams,
to_flat_dict) and ``Network.reset_streams`` apply, and a state moves between ``Network.step``
and ``GpuNetwork.step`` with ``.to(device)``. ``step(x, state)`` never modifies ``state``;
``step(..., inplace=True)`` updates its tensors instead of copying them first.

Numbers: the sums run in float32 (TF32 off, deterministic cuDNN algorithms), so a step differs
from the CPU reference only by float32 summation order, as ``FastNetwork`` does; the neuron
kernels equal their references bit for bit. Where Triton cannot run (no CUDA device), the
neuron layers run their torch references instead, so the class works, slowly, on any device.

With ``graph=True`` (the default on CUDA) the first step of each batch size records the step as
a CUDA graph (static input and state buffers); later steps copy the input and the state in, replay
it and copy the state out: a handful of launches per step instead of a few per layer. A state
stepped in place twice in a row (``y, state = gpu.step(x, state, inplace=True)`` in a loop, and
``run``) gets a graph recorded on its own tensors, one per batch size, so the loop copies only
its input: the membranes are never copied.

>>> import torch
>>> from eventflow import snn
>>> net = snn.reference_network()
>>> gpu = GpuNetwork(net, device="cpu")         # "cuda" on a GPU
>>> state = gpu.init_state(batch=1)
>>> y, state = gpu.step((torch.rand(1, 2, 128, 128) < 0.05).float(), state)
>>> tuple(y.shape)
(1, 11)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..kernels import snn_gpu as K
from . import state as S
from .layers import MaxPool2d
from .network import Network
from .neurons import DALIF, LIF, dalif_factors, kernel_args

__all__ = ["GpuNetwork"]


@dataclass(frozen=True)
class _NeuronOp:
    name: str
    args: tuple            # (tau, v_reset, threshold, decay_input, soft)
    factors: tuple         # DA-LIF: (sigmoid(w_temporal), sigmoid(w_spatial)) on the device, else ()
    pool: bool             # a MaxPool2d(2) follows and is fused
    out_name: str          # the layer whose output this op's output is (the pool's when fused)


@dataclass(frozen=True)
class _TorchOp:
    name: str
    spec: object


def _plain(tree, device):
    """A copy of the weights as plain nested dicts of float32 tensors on ``device`` (no autograd)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to(device=device, dtype=torch.float32, memory_format=torch.contiguous_format, copy=True)
    return {k: _plain(v, device) for k, v in tree.items()}


def _is_pool2(spec):
    return type(spec) is MaxPool2d and spec.kernel_size == 2 and (spec.stride or 2) == 2


@contextlib.contextmanager
def _float32_sums():
    """Full float32 convolutions and matmuls (no TF32) with deterministic cuDNN algorithms."""
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


class GpuNetwork:
    """A copy of a ``Network``'s weights on ``device`` and its step with fused neuron kernels (see
    the module doc)."""

    #: graphs recorded on callers' states (stepped in place), at most this many, the oldest dropped
    MAX_BOUND_GRAPHS = 4

    def __init__(self, net, device="cuda", graph: bool | None = None):
        if not isinstance(net, Network):
            raise TypeError(f"GpuNetwork runs an eventflow.snn.Network (a layer-spec Sequential), got "
                            f"{type(net).__name__}; a HybridNet's backbone is its .snn")
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.in_shape, self.out_shape = tuple(net.in_shape), tuple(net.out_shape)
        self.fused = K.available(self.device)
        self.graph = self.device.type == "cuda" if graph is None else bool(graph)
        if self.graph and self.device.type != "cuda":
            raise ValueError(f"GpuNetwork: CUDA graphs need a CUDA device, not {self.device}")
        self._net = net
        self._weights = _plain(dict(net.weights.items()), self.device)
        self._ops = self._plan(net)
        self._template = [(n, t.shape[1:]) for n, t in S.leaves(net.init_state(1, torch.float32, "cpu"))]
        self._graphs = {}        # batch -> graph on its own static state (copied in and out)
        self._bound = {}         # (batch, tensor addresses) -> graph recorded on a caller's state
        self._last_inplace = {}  # batch -> the addresses of the last state stepped in place
        self._run_state = {}     # batch -> the state run() steps (so its graph is recorded once)

    def _plan(self, net):
        items, ops, i = list(net.spec.layers), [], 0
        while i < len(items):
            name, spec = items[i]
            if type(spec) in (LIF, DALIF):
                pool = i + 1 < len(items) and _is_pool2(items[i + 1][1])
                factors = ()
                if type(spec) is DALIF:
                    factors = tuple(f.to(self.device).contiguous() for f in dalif_factors(net.weights[name]))
                ops.append(_NeuronOp(name, kernel_args(spec), factors, pool, items[i + 1][0] if pool else name))
                i += 2 if pool else 1
            else:
                ops.append(_TorchOp(name, spec))
                i += 1
        return tuple(ops)

    def _on_device(self):
        return torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()

    # ----- state

    def init_state(self, batch: int):
        """Resting state for ``batch`` streams, on the device."""
        return self._net.init_state(batch, torch.float32, self.device)

    def _check(self, x, state, where):
        """Refuse an input or state this network cannot step; returns the state's leaves."""
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"{where}: input samples shaped {tuple(x.shape[1:])}, the network takes {self.in_shape}")
        S.check_batch(state, x.shape[0], where)
        leaves = S.leaves(state)
        if [n for n, _ in leaves] != [n for n, _ in self._template]:
            raise ValueError(f"{where}: the state is not this network's: it holds {[n for n, _ in leaves]}, the "
                             f"network {[n for n, _ in self._template]}")
        for (name, t), (_, shape) in zip(leaves, self._template):
            if t.shape[1:] != shape or t.dtype != torch.float32 or t.device != self.device or not t.is_contiguous():
                raise ValueError(f"{where}: state {name} is {t.dtype} {tuple(t.shape)} on {t.device}; this network "
                                 f"needs contiguous float32 [B, {', '.join(map(str, shape))}] on {self.device}")
        return leaves

    # ----- stepping

    def _forward(self, x, state, outputs=None):
        """One step; ``state``'s tensors are updated in place. Returns the output; ``outputs``, if
        a dict, receives each stateful layer's output by layer name (a fused pool's by the pool's)."""
        for op in self._ops:
            if isinstance(op, _NeuronOp):
                v = state[op.name].v
                cur = x.contiguous()
                if self.fused:
                    x = (K.lif_pool2 if op.pool else K.lif_flat)(cur, v, op.args, op.factors)
                else:
                    ref = K.lif_pool2_reference if op.pool else K.lif_flat_reference
                    x, v_new = ref(cur, v, op.args, op.factors)
                    v.copy_(v_new)
                if outputs is not None:
                    outputs[op.out_name] = x
            else:
                spec = op.spec
                x, new = spec.step(x, state[op.name] if spec.stateful else None, self._weights.get(op.name, {}))
                if spec.stateful:
                    S.map_state(lambda dst, src: dst.copy_(src), state[op.name], new)
                    if outputs is not None:
                        outputs[op.name] = x
        return x

    def step(self, x, state, inplace: bool = False, trace: bool = False):
        """One time step for ``x [B, *in_shape]`` (torch or numpy, any device): ``(y [B, *out_shape]
        on the device, new state)``. ``inplace`` updates ``state``'s tensors instead of copying;
        ``trace`` adds a third result, each stateful layer's output (spikes) by layer name, as
        ``Network.trace`` names them (a fused pool's output by the pool's name); it steps without
        the graph."""
        x = torch.as_tensor(x)   # (a graph copies it straight into its input buffer)
        leaves = self._check(x, state, "GpuNetwork.step")
        with torch.no_grad(), self._on_device():
            if trace or not self.graph:
                x = x.to(device=self.device, dtype=torch.float32, non_blocking=True)
                work = state if inplace else S.clone(state)
                outputs = {} if trace else None
                with _float32_sums():
                    y = self._forward(x, work, outputs)
                return (y, work, outputs) if trace else (y, work)
            # (a replay launches what was recorded: the flags only matter while recording)
            batch, mine = x.shape[0], [t for _, t in leaves]
            if inplace and all(t.data_ptr() % 16 == 0 for t in mine):   # (the alignment the kernels were built for)
                g = self._bound_graph(batch, state, mine)
                if g is not None:   # the graph reads and writes this state's own tensors: no copies
                    g["x"].copy_(x, non_blocking=True)
                    g["graph"].replay()
                    return g["y"].clone(), state
            g = self._graphs.get(batch)
            if g is None:
                g = self._graphs[batch] = self._record(batch)
            g["x"].copy_(x, non_blocking=True)
            torch._foreach_copy_(g["v"], mine)
            g["graph"].replay()
            if inplace:
                torch._foreach_copy_(mine, g["v"])
                return g["y"].clone(), state
            return g["y"].clone(), S.clone(g["state"])

    def _bound_graph(self, batch, state, mine):
        """The graph recorded on ``state``'s own tensors, recorded when the same tensors are stepped
        in place a second time in a row; None before that."""
        key = (batch, tuple(t.data_ptr() for t in mine))
        g = self._bound.get(key)
        if g is None and self._last_inplace.get(batch) == key:
            if len(self._bound) >= self.MAX_BOUND_GRAPHS:
                self._bound.pop(next(iter(self._bound)))
            g = self._bound[key] = self._record(batch, state)
        self._last_inplace[batch] = key
        return g

    def _record(self, batch, state=None):
        """Record the step for ``batch`` streams as a CUDA graph on ``state``'s tensors (new static
        ones if None; recording does not run the step, so ``state`` is left as it is). Two warm-up
        steps on a copy, on a side stream, first compile the kernels and pick the cuDNN algorithms."""
        x = torch.zeros((batch, *self.in_shape), device=self.device)
        if state is None:
            state = self.init_state(batch)
        scratch = S.clone(state)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with _float32_sums():
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._forward(x, scratch)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=torch.cuda.Stream(self.device)):
                y = self._forward(x, state)
        return {"graph": graph, "x": x, "state": state, "v": [t for _, t in S.leaves(state)], "y": y}

    def run(self, x_seq, state):
        """``step`` over ``x_seq``'s leading time axis: ``(y [T, B, *out_shape], final state)``;
        ``state`` itself is left as it was."""
        if len(x_seq) == 0:
            return torch.zeros((0, S.batch_size(state) or 0, *self.out_shape), device=self.device), S.clone(state)
        batch = len(x_seq[0])
        if self.graph:   # one state per batch size, stepped in place: its graph is recorded once
            work = self._run_state.get(batch)
            if work is None:
                work = self._run_state[batch] = self.init_state(batch)
            self._check(torch.as_tensor(x_seq[0]), state, "GpuNetwork.run")
            with torch.no_grad():
                torch._foreach_copy_([t for _, t in S.leaves(work)], [t for _, t in S.leaves(state)])
        else:
            work = S.clone(state)
        ys = []
        for x in x_seq:
            y, work = self.step(x, work, inplace=True)
            ys.append(y)
        return torch.stack(ys), S.clone(work)
