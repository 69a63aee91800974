"""Event-driven CPU inference of conv / linear LIF networks with the numba kernels of ``eventflow.kernels.snn``.

``FastNetwork.from_network(net)`` converts the weights of an ``eventflow.snn.Network`` (a
``Sequential`` of an optional ``StepStack`` stem (the last steps' inputs side by side in
channels; its state, the previous inputs, is ``FastState.past``), an optional ``PixelUnshuffle``
stem (applied to each input frame before the sparse kernels), ``Conv2d`` (stride 1) - ``LIF`` [- ``MaxPool2d(2)``] blocks, ``Flatten``,
``Linear`` - ``LIF`` blocks and an optional last ``Linear``; ``DALIF`` wherever ``LIF`` may be)
to the kernels' layouts. Each step
scatters only the weights of the inputs that spiked, so the cost follows the spike count.

State is explicit: ``FastState``, one membrane array per LIF layer, ``[B, N]`` channels last
(``to_torch_state`` / ``from_torch_state`` convert from and to the reference's state). The
current buffers are per-batch-size scratch owned by the ``FastNetwork``, holding the biases
between steps (so one ``FastNetwork`` steps one batch at a time, not from several threads).

Results equal the torch reference up to float32 summation order: identical when the sums are
exact (e.g. dyadic weights); on the reference net at 5% input, 100 steps, about 5e-7 of the
spikes differ (inputs within rounding of the threshold, mostly in the 256-neuron lif4), and a
membrane differs by more than 1e-4 only downstream of such a spike (~1e-4 of them).

Serially, at batch sizes up to ``DENSE_ROWS``, a network that ends in a Linear without LIF steps
in one call of ``kernels.snn.network_step`` (the same kernels in the same order, with no Python
between the layers: about a third less time per step for the shipped gesture model); with
``trace`` or otherwise, layer by layer.

``parallel=True`` spreads each step over numba's threads (streams, bands of rows, pieces of the
active list) with exactly the numbers of the serial path; ``NUMBA_NUM_THREADS`` sets the count.
A Linear layer whose active inputs are dense enough over the batch uses torch's matmul (``DENSE_ROWS``).

>>> import torch
>>> from eventflow import snn
>>> net = snn.reference_network()
>>> fast = FastNetwork.from_network(net)
>>> state = fast.init_state(batch=1)
>>> x = (torch.rand(1, 2, 128, 128) < 0.05).float()
>>> y, state = fast.step(x, state)
>>> y.shape
(1, 11)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
import torch

from ..kernels import snn as K
from .layers import Conv2d, Flatten, Linear, MaxPool2d, PixelUnshuffle, StackState, StepStack
from .neurons import DALIF, LIF, MembraneState, dalif_factors
from .neurons import kernel_args as _neuron_args

__all__ = ["DENSE_ROWS", "LINEAR_PARTS", "FastNetwork", "FastState"]

# A Linear layer switches to a dense matmul (torch) when its active inputs, summed over the
# batch, exceed DENSE_ROWS times its input size: measured on the reference net's fc1 (45% active),
# sparse wins at batch 1 (0.6-0.9 ms vs 3.2 ms), dense at batch 16 (3.9 ms vs 8-15 ms).
DENSE_ROWS = 2.0
# A sparse Linear sums its active rows in LINEAR_PARTS consecutive pieces (two threads read the
# weights at once: fc1 is memory bound), the serial and parallel variants alike, same bits.
LINEAR_PARTS = 2


class FastState(NamedTuple):
    """Membranes of a ``FastNetwork``'s LIF layers, each ``[B, N]`` float32 (channels last), and
    a ``StepStack`` stem's previous inputs ``[B, (steps - 1) * C * H * W]`` float32 (the
    reference's layout, flattened; None without one)."""

    v: tuple
    past: np.ndarray | None = None


@dataclass
class _Conv:
    name: str
    lif_name: str
    neuron: LIF
    wl: np.ndarray          # [C_in, k, k * C_out]
    bias: np.ndarray        # [C_out]
    in_hwc: tuple           # active-input image (H, W, C)
    out_hwc: tuple          # conv output (H, W, C)
    k: int
    off: int
    pool: bool
    factors: tuple = ()   # DA-LIF: per-channel (sigmoid(w_temporal), sigmoid(w_spatial)), float32

    def __post_init__(self):
        self.args = _neuron_args(self.neuron)


@dataclass
class _Linear:
    name: str
    lif_name: str | None
    neuron: LIF | None
    wt: np.ndarray          # [N_in, N_out], rows in the order of the active indices
    bias: np.ndarray
    factors: tuple = ()   # DA-LIF: per-neuron (sigmoid(w_temporal), sigmoid(w_spatial)), float32

    def __post_init__(self):
        self.wt_t, self.bias_t = torch.from_numpy(self.wt), torch.from_numpy(self.bias)
        self.args = _neuron_args(self.neuron) if self.neuron is not None else None


def _check_neuron(p, where):
    if type(p) not in (LIF, DALIF):
        raise NotImplementedError(f"FastNetwork: {where} must be followed by LIF or DALIF, got {p!r}")
    return p


def _dalif_factors(p, weights, n, where):
    """DA-LIF's per-channel factors ``(kt, ks)`` (``neurons.dalif_factors``) as float32 numpy
    arrays, or ``()`` for LIF: the kernels' optional last arguments."""
    if type(p) is not DALIF:
        return ()
    kt, ks = (f.numpy() for f in dalif_factors(weights))
    if kt.shape != (n,) or ks.shape != (n,):
        raise ValueError(f"FastNetwork: {where}'s DALIF has {kt.shape[0]} channels, the layer {n}")
    return np.ascontiguousarray(kt), np.ascontiguousarray(ks)


def _numpy(x) -> np.ndarray:
    """An input as numpy (a torch tensor detached and moved to the CPU)."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class FastNetwork:
    """The weights of a conv / linear LIF network in kernel layout, with ``init_state`` and ``step``."""

    def __init__(self, layers, in_shape, out_shape, parallel: bool = False, unshuffle: int = 1,
                 stack: int = 1, stack_name: str | None = None):
        self.layers = layers
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(out_shape)
        self.parallel = parallel
        self.stack = int(stack)            # a StepStack stem's steps (1: none)
        self.stack_name = stack_name       # its layer name in the reference network
        self.unshuffle = int(unshuffle)   # a PixelUnshuffle stem's factor (1: none)
        if self.stack < 1:
            raise ValueError(f"FastNetwork: a StepStack stem needs at least 1 step, got {stack}")
        if self.unshuffle < 1 or any(n % self.unshuffle for n in self.in_shape[1:]):
            raise ValueError(f"FastNetwork: a PixelUnshuffle stem of {unshuffle} needs an input whose height and width "
                             f"it divides, got {self.in_shape}")
        self._work = {}
        self._v_sizes = self._sizes()

    @classmethod
    def from_network(cls, net, parallel: bool = False) -> "FastNetwork":
        """Convert ``net`` (``eventflow.snn.Network``); ``parallel`` spreads batch streams over numba threads."""
        items = list(net.spec.layers)
        weights = net.weights
        c, h, w = net.in_shape
        flat_from = None   # (H, W, C) of the pooled image a Flatten came from, or None for a flat vector
        n_flat = None
        layers = []
        i, unshuffle, stack, stack_name = 0, 1, 1, None
        if items and isinstance(items[0][1], StepStack):
            stack_name, stack = items[0][0], items[0][1].steps
            c *= stack
            i = 1
        if i < len(items) and isinstance(items[i][1], PixelUnshuffle):
            unshuffle = items[i][1].factor
            _, c, h, w = items[i][1].out_shape((1, c, h, w))
            i += 1
        while i < len(items):
            name, spec = items[i]
            nxt = items[i + 1] if i + 1 < len(items) else (None, None)
            if isinstance(spec, Conv2d):
                if spec.stride != 1 or not 0 <= spec.padding <= spec.kernel_size - 1 or n_flat is not None:
                    raise NotImplementedError(f"FastNetwork: {spec} (stride 1, padding <= k - 1, before Flatten)")
                neuron = _check_neuron(nxt[1], name)
                k = spec.kernel_size
                wt = weights[name]["weight"].detach().cpu().float().numpy()
                b = (weights[name]["bias"].detach().cpu().float().numpy() if "bias" in weights[name]
                     else np.zeros(spec.out_channels, np.float32))
                ho, wo = h + 2 * spec.padding - k + 1, w + 2 * spec.padding - k + 1
                pool = i + 2 < len(items) and isinstance(items[i + 2][1], MaxPool2d)
                if pool:
                    mp = items[i + 2][1]
                    if mp.kernel_size != 2 or (mp.stride or 2) != 2:
                        raise NotImplementedError(f"FastNetwork: only MaxPool2d(2), got {mp}")
                layers.append(_Conv(name, nxt[0], neuron, K.conv_weight_layout(wt), np.ascontiguousarray(b),
                                    (h, w, c), (ho, wo, spec.out_channels), k, k - 1 - spec.padding, pool,
                                    _dalif_factors(neuron, weights[nxt[0]] if nxt[0] in weights else {},
                                                   spec.out_channels, nxt[0])))
                c, h, w = spec.out_channels, (ho // 2 if pool else ho), (wo // 2 if pool else wo)
                i += 3 if pool else 2
            elif isinstance(spec, Flatten):
                flat_from, n_flat = (h, w, c), h * w * c
                i += 1
            elif isinstance(spec, Linear):
                if n_flat is None or spec.in_features != n_flat:
                    raise NotImplementedError(f"FastNetwork: {spec} must follow Flatten or a Linear-LIF block")
                W = weights[name]["weight"].detach().cpu().float()
                if flat_from is not None:   # torch flattens (c, y, x); the active indices are (y, x, c)
                    fh, fw, fc = flat_from
                    wt = W.reshape(spec.out_features, fc, fh, fw).permute(2, 3, 1, 0).reshape(n_flat, -1)
                else:
                    wt = W.t()
                b = (weights[name]["bias"].detach().cpu().float().numpy() if "bias" in weights[name]
                     else np.zeros(spec.out_features, np.float32))
                if nxt[1] is not None:
                    neuron, lif_name = _check_neuron(nxt[1], name), nxt[0]
                    i += 2
                else:
                    neuron, lif_name = None, None
                    i += 1
                factors = (() if neuron is None else
                           _dalif_factors(neuron, weights[lif_name] if lif_name in weights else {},
                                          spec.out_features, lif_name))
                layers.append(_Linear(name, lif_name, neuron, np.ascontiguousarray(wt.numpy()),
                                      np.ascontiguousarray(b), factors))
                flat_from, n_flat = None, spec.out_features
                if neuron is None and i < len(items):
                    raise NotImplementedError("FastNetwork: a Linear without LIF must be the last layer")
            else:
                raise NotImplementedError(f"FastNetwork: unsupported layer {name}: {spec!r}")
        if not layers or not isinstance(layers[0], _Conv):
            raise NotImplementedError("FastNetwork: the first layer must be a Conv2d")
        return cls(layers, net.in_shape, net.out_shape, parallel, unshuffle, stack, stack_name)

    # ----- state

    def _sizes(self):
        out = []
        for L in self.layers:
            if isinstance(L, _Conv):
                out.append(int(np.prod(L.out_hwc)))
            elif L.neuron is not None:
                out.append(L.bias.shape[0])
        return out

    def init_state(self, batch: int) -> FastState:
        """Resting state for ``batch`` streams."""
        vs = []
        for L in self.layers:
            if L.neuron is not None:
                n = int(np.prod(L.out_hwc)) if isinstance(L, _Conv) else L.bias.shape[0]
                vs.append(np.full((batch, n), L.neuron.v_reset, np.float32))
        past = None if self.stack == 1 else np.zeros((batch, (self.stack - 1) * int(np.prod(self.in_shape))), np.float32)
        return FastState(tuple(vs), past)

    def to_torch_state(self, state: FastState) -> dict:
        """The reference network's state (``{lif name: MembraneState [B, C, H, W] or [B, N]}``, and
        ``{stem name: StackState [B, (steps - 1) * C, H, W]}`` with a StepStack stem)."""
        out, j = {}, 0
        for L in self.layers:
            if L.neuron is None:
                continue
            v = state.v[j]
            j += 1
            if isinstance(L, _Conv):
                h, w, c = L.out_hwc
                t = torch.from_numpy(v.reshape(-1, h, w, c)).permute(0, 3, 1, 2).contiguous()
            else:
                t = torch.from_numpy(v.copy())
            out[L.lif_name] = MembraneState(t)
        if self.stack > 1:
            c, h, w = self.in_shape
            out[self.stack_name] = StackState(torch.from_numpy(state.past.reshape(-1, (self.stack - 1) * c, h, w).copy()))
        return out

    def from_torch_state(self, tstate: dict) -> FastState:
        """Inverse of ``to_torch_state``."""
        vs = []
        for L in self.layers:
            if L.neuron is None:
                continue
            t = tstate[L.lif_name].v.detach().cpu().float()
            if isinstance(L, _Conv):
                t = t.permute(0, 2, 3, 1)
            vs.append(np.ascontiguousarray(t.reshape(t.shape[0], -1).numpy()))
        past = None
        if self.stack > 1:
            t = tstate[self.stack_name].past.detach().cpu().float()
            past = np.ascontiguousarray(t.reshape(t.shape[0], -1).numpy())
        return FastState(tuple(vs), past)

    # ----- scratch per batch size

    def _workspace(self, batch):
        ws = self._work.get(batch)
        if ws is not None:
            return ws
        c, h, w = self.in_shape
        n_in = self.stack * c * h * w
        ws = {"in_idx": np.zeros((batch, n_in + 1), np.int64), "in_val": np.zeros((batch, n_in + 1), np.float32),
              "in_n": np.zeros(batch, np.int64), "ones": np.ones((batch, 1), np.float32), "layers": []}
        for L in self.layers:
            if isinstance(L, _Conv):
                ho, wo, co = L.out_hwc
                buf = np.zeros((batch, ho + L.k - 1, wo + L.k - 1, co), np.float32)
                buf[:, L.off:L.off + ho, L.off:L.off + wo] = L.bias
                n_act = (ho // 2) * (wo // 2) * co if L.pool else ho * wo * co
                ws["layers"].append({"buf": buf.reshape(batch, -1), "spikes": np.zeros((batch, ho * wo * co), np.uint8),
                                     "idx": np.zeros((batch, n_act + 1), np.int64), "n": np.zeros(batch, np.int64)})
            else:
                n = L.bias.shape[0]
                ws["layers"].append({"buf": np.tile(L.bias, (batch, 1)),
                                     "dense": np.zeros((batch, L.wt.shape[0]), np.float32),
                                     "partials": np.zeros((batch, LINEAR_PARTS, n), np.float32),
                                     "spikes": np.zeros((batch, n), np.uint8),
                                     "idx": np.zeros((batch, n + 1), np.int64), "n": np.zeros(batch, np.int64)})
        self._work[batch] = ws
        return ws

    # ----- stepping

    def step(self, x, state: FastState, inplace: bool = False, trace: bool = False):
        """One time step for ``x [B, *in_shape]`` (numpy or torch): ``(y [B, *out_shape] numpy, new state)``.

        ``inplace`` updates ``state``'s arrays instead of copying them first; ``trace`` adds a
        third result, each LIF layer's spikes by name in the reference layout ``[B, C, H, W]`` / ``[B, N]``.
        """
        x = _numpy(x)
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"FastNetwork.step: input samples shaped {x.shape[1:]}, the network takes {self.in_shape}")
        batch = x.shape[0]
        self._check_state(state, batch, "step")
        x, past = self._stacked(x[None], state.past, inplace)
        out = self._checked_step(x[0], batch, list(state.v) if inplace else [v.copy() for v in state.v], trace)
        return (out[0], out[1]._replace(past=past), *out[2:])

    def _stacked(self, x_seq, past, inplace: bool = False):
        """``(x_seq [T, B, stack * C, H, W], the past after it)``: each step with the previous
        ``stack - 1`` inputs before it in channels (a StepStack stem); ``(x_seq, past)`` without one.
        ``inplace`` writes the new past into ``past`` (as the membranes are updated) instead of a new array."""
        k = self.stack
        if k == 1:
            return x_seq, past
        T, B = x_seq.shape[:2]
        c, h, w = self.in_shape
        full = np.concatenate([past.reshape(B, k - 1, c, h, w).transpose(1, 0, 2, 3, 4),
                               x_seq.astype(np.float32, copy=False)], 0)            # [k - 1 + T, B, C, H, W]
        y = np.concatenate([full[j:j + T] for j in range(k)], 2)
        kept = full[T:].transpose(1, 0, 2, 3, 4).reshape(B, -1)
        if inplace:
            past[:] = kept
            return y, past
        return y, np.ascontiguousarray(kept)

    def _stem(self, x):
        """``x [..., C, H, W]`` as the first conv takes it: the PixelUnshuffle stem applied
        (``[..., C * r * r, H / r, W / r]``, torch's channel order), C-contiguous (a copy where
        ``x`` is not: the kernels read one memory layout), its dtype kept."""
        r = self.unshuffle
        if r == 1:
            return np.ascontiguousarray(x)
        *lead, c, h, w = x.shape
        n = len(lead)
        x = x.reshape(*lead, c, h // r, r, w // r, r)
        axes = (*range(n), n, n + 2, n + 4, n + 1, n + 3)   # (c, i, j, y, x)
        return np.ascontiguousarray(x.transpose(axes)).reshape(*lead, c * r * r, h // r, w // r)

    def _checked_step(self, x, batch, vs, trace):
        """``_step`` of an input and state already checked (by ``step``, or once by ``run``)."""
        try:
            return self._step(self._stem(x), batch, vs, trace)
        except BaseException:
            # the scratch buffers hold the biases between steps; an interrupted step may have
            # left partial sums in them: rebuild them on the next call
            self._work.pop(batch, None)
            raise

    def _check_state(self, state, batch, where):
        sizes = self._v_sizes
        n_past = (self.stack - 1) * int(np.prod(self.in_shape))
        bad_past = (state.past is not None) if n_past == 0 else (
            state.past is None or state.past.shape != (batch, n_past))
        if len(state.v) != len(sizes) or any(v.shape != (batch, n) for v, n in zip(state.v, sizes)) or bad_past:
            raise ValueError(f"FastNetwork.{where}: the input has {batch} streams but the state holds "
                             f"{state.v[0].shape[0] if state.v else '?'} (or the state is not this network's); "
                             "streams join or leave explicitly")

    def _fused_args(self, ws, batch):
        """The workspace as ``kernels.snn.network_step`` takes it (built once per batch size), or
        None where that kernel does not apply: it runs conv layers then linear layers, the last
        one without LIF, serially, with no dense fallback (which needs a batch above DENSE_ROWS)."""
        if "fused" in ws:
            return ws["fused"]
        convs = [(L, lw) for L, lw in zip(self.layers, ws["layers"]) if isinstance(L, _Conv)]
        lins = [(L, lw) for L, lw in zip(self.layers, ws["layers"]) if isinstance(L, _Linear)]
        # (from_network allows a Linear without LIF only as the last layer)
        ok = (not self.parallel and batch <= DENSE_ROWS and lins and lins[-1][0].neuron is None
              and not any(L.factors for L in self.layers))   # LIF only
        fused = None
        if ok:
            def neuron_rows(items):
                return np.array([[*L.args[:3], float(L.args[3]), float(L.args[4])] if L.neuron is not None
                                 else [1.0, 0.0, 1.0, 0.0, 0.0] for L, _ in items], np.float64)
            dummy_v = np.zeros((batch, 1), np.float32)
            last = lins[-1][1]
            fused = {
                "conv": (tuple(L.wl for L, _ in convs), tuple(L.bias for L, _ in convs),
                         tuple(lw["buf"] for _, lw in convs)),
                "conv_rest": (tuple(lw["spikes"] for _, lw in convs), tuple(lw["idx"] for _, lw in convs),
                              tuple(lw["n"] for _, lw in convs),
                              np.array([[*L.in_hwc, *L.out_hwc[:2], L.k, L.off, int(L.pool)] for L, _ in convs],
                                       np.int64), neuron_rows(convs)),
                "lin": (tuple(L.wt for L, _ in lins), tuple(L.bias for L, _ in lins), tuple(lw["buf"] for _, lw in lins),
                        tuple(lw["partials"] for _, lw in lins)),
                "lin_rest": (tuple(lw["spikes"] for _, lw in lins), tuple(lw["idx"] for _, lw in lins),
                             tuple(lw["n"] for _, lw in lins), neuron_rows(lins)),
                "n_conv": len(convs), "dummy_v": dummy_v,
                "y": np.zeros((batch, last["buf"].shape[1]), np.float32),
            }
        ws["fused"] = fused
        return fused

    def _fused_call(self, ws, batch, vs):
        """The arguments of ``kernels.snn.network_step`` after the input, or None where it does not apply."""
        fused = self._fused_args(ws, batch)
        if fused is None or not all(v.flags.c_contiguous and v.dtype == np.float32 for v in vs):
            return None
        nc = fused["n_conv"]
        spikes, idx, n, geo, neuron = fused["conv_rest"]
        lspikes, lidx, ln, lneuron = fused["lin_rest"]
        return (ws["in_idx"], ws["in_val"], ws["in_n"], ws["ones"], *fused["conv"], tuple(vs[:nc]), spikes, idx, n,
                geo, neuron, *fused["lin"], (*vs[nc:], fused["dummy_v"]), lspikes, lidx, ln, lneuron, fused["y"])

    def _step(self, x, batch, vs, trace):
        ws = self._workspace(batch)
        call = None if trace else self._fused_call(ws, batch, vs)
        if call is not None:
            K.network_step(x, *call)   # (contiguous: _stem)
            return call[-1].reshape(batch, *self.out_shape).copy(), FastState(tuple(vs))
        par = self.parallel   # (stream, band of rows) work items; identical numbers to the serial kernels
        split = max(1, numba.get_num_threads() // batch) if par else 1   # one stream over several threads
        linear = K.linear_scatter_split_parallel if par else K.linear_scatter_split
        K.active_chw(x, ws["in_idx"], ws["in_val"], ws["in_n"])
        idx, vals, n, weighted = ws["in_idx"], ws["in_val"], ws["in_n"], True
        spikes, j, y = {}, 0, None
        for L, lw in zip(self.layers, ws["layers"]):
            if isinstance(L, _Conv):
                h, w, c = L.in_hwc
                ho, wo, _ = L.out_hwc
                if par:
                    K.conv_scatter_parallel(idx, vals, n, weighted, L.wl, lw["buf"], c, h, w, split)
                else:
                    K.conv_scatter(idx, vals, n, weighted, L.wl, lw["buf"], c, h, w)
                if par:
                    K.lif_pool_conv_parallel(lw["buf"], L.bias, vs[j], lw["spikes"], lw["idx"], lw["n"], ho, wo, L.k,
                                             L.off, L.pool, *L.args, split, *L.factors)
                else:
                    K.lif_pool_conv(lw["buf"], L.bias, vs[j], lw["spikes"], lw["idx"], lw["n"], ho, wo, L.k, L.off,
                                    L.pool, *L.args, *L.factors)
                if trace:
                    s_hwc = lw["spikes"].reshape(batch, *L.out_hwc)
                    spikes[L.lif_name] = s_hwc.transpose(0, 3, 1, 2).astype(np.float32)
            else:
                if int(n.sum()) > DENSE_ROWS * L.wt.shape[0]:   # each weight row needed DENSE_ROWS+ times: dense
                    K.active_to_dense(idx, n, lw["dense"])
                    torch.addmm(L.bias_t, torch.from_numpy(lw["dense"]), L.wt_t, out=torch.from_numpy(lw["buf"]))
                else:
                    linear(idx, n, L.wt, lw["buf"], lw["partials"])
                if L.neuron is None:
                    y = lw["buf"].copy()
                    lw["buf"][:] = L.bias
                    break
                K.lif_reset_flat(lw["buf"], L.bias, vs[j], lw["spikes"], lw["idx"], lw["n"], *L.args, *L.factors)
                if trace:
                    spikes[L.lif_name] = lw["spikes"].astype(np.float32)
            idx, vals, n, weighted = lw["idx"], ws["ones"], lw["n"], False
            j += 1
        if y is None:   # the network ends with a LIF layer: its spikes
            last, L = ws["layers"][-1], self.layers[-1]
            y = last["spikes"].astype(np.float32)
            if isinstance(L, _Conv):
                y = y.reshape(batch, *L.out_hwc).transpose(0, 3, 1, 2)
                if L.pool:
                    raise NotImplementedError("FastNetwork: a network ending in a pool")
        out = (y.reshape(batch, *self.out_shape), FastState(tuple(vs)))
        return (*out, spikes) if trace else out

    def run(self, x_seq, state: FastState, trace: bool = False, inplace: bool = False):
        """``step`` over ``x_seq``'s leading time axis: ``(y [T, B, ...], final state)``; ``state``
        itself is left as it was unless ``inplace``. ``trace`` adds a third result: each LIF
        layer's spikes by name, ``[T, B, ...]`` (``step``'s traced spikes, stacked). Where one
        step runs in one kernel call (``kernels.snn.network_step``), so do all T steps
        (``network_run``): the same numbers, without Python between the windows."""
        x_seq = _numpy(x_seq)
        if x_seq.ndim != len(self.in_shape) + 2 or x_seq.shape[2:] != self.in_shape:
            raise ValueError(f"FastNetwork.run: expected inputs [T, B, *{self.in_shape}], got {x_seq.shape}")
        batch = x_seq.shape[1]
        self._check_state(state, batch, "run")
        if not inplace:
            state = FastState(tuple(v.copy() for v in state.v), None if state.past is None else state.past.copy())
        if len(x_seq) == 0:
            empty = np.zeros((0, batch, *self.out_shape), np.float32)
            return (empty, state, {}) if trace else (empty, state)
        x_seq, past = self._stacked(x_seq, state.past, inplace=True)   # (the state's own arrays, or the copies)
        state = state._replace(past=past)
        if not trace:
            call = self._fused_call(self._workspace(batch), batch, list(state.v))
            if call is not None:
                ys = np.empty((len(x_seq), batch, call[-1].shape[1]), np.float32)
                try:
                    K.network_run(self._stem(x_seq), *call, ys)
                except BaseException:
                    self._work.pop(batch, None)   # (as step: partial sums may be left in the scratch)
                    raise
                return ys.reshape(len(x_seq), batch, *self.out_shape), state
        ys, traced = [], {}
        for x in x_seq:   # (each step's input goes through the stem in _checked_step)
            if trace:   # (checked once above: not again per step)
                y, st, spikes = self._checked_step(x, batch, list(state.v), True)
                for name, s in spikes.items():
                    traced.setdefault(name, []).append(s)
            else:
                y, st = self._checked_step(x, batch, list(state.v), False)
            state = st._replace(past=past)
            ys.append(y)
        if trace:
            return np.stack(ys), state, {name: np.stack(s) for name, s in traced.items()}
        return np.stack(ys), state
