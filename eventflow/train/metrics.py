"""NeuroBench-style efficiency figures of a network on its inputs.

- ``activation_sparsity``: 1 - (spikes / neuron-steps) over all spiking layers.
- ``synaptic_ops``: per sample, the multiplications a sparse engine actually does: for each
  Conv2d / Linear and each step, the (non-zero input, weight) pairs that reach an output;
  ``effective_acs`` where the layer's input is binary spikes (accumulates), ``effective_macs``
  where it is not (the count-valued first layer), and ``dense`` for every pair a dense engine does.
- ``params``: learnable numbers; ``footprint_bytes``: bytes of the weights (NeuroBench's
  footprint); ``state_bytes``: bytes of one stream's membranes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..snn import state as S
from ..snn.layers import Conv2d, Linear

__all__ = ["EfficiencyCounter"]


class EfficiencyCounter:
    """Accumulates the figures over batches: ``add(net, x [T, B, ...])`` then ``result()``."""

    def __init__(self, net):
        self.net = net
        self.spikes = 0.0
        self.neuron_steps = 0
        self.acs = 0.0
        self.macs = 0.0
        self.dense = 0.0
        self.samples = 0

    @torch.no_grad()
    def add(self, x_seq: torch.Tensor, spikes: dict | None = None):
        """Count ``x_seq [T, B, ...]`` from rest. ``spikes``: the spiking layers' outputs by name
        (``[T, B, ...]``, e.g. from ``FastNetwork.step(..., trace=True)``) to count instead of
        running the torch network; the pooling and flattening between them are recomputed."""
        net = self.net
        outs = None if spikes is not None else net.trace(x_seq, net.init_state(x_seq.shape[1], x_seq.dtype))[0]
        prev = x_seq
        for name, spec in net.spec.layers:
            if outs is not None:
                out = outs[name]
            elif name in spikes:
                out = spikes[name]
            elif isinstance(spec, (Conv2d, Linear)):
                out = None   # only its shape counts, and the spiking layer after it is given
            else:
                state = spec.init_state(prev.shape[1:], prev.dtype) if spec.stateful else None   # (a StepStack stem)
                out, _ = spec.run(prev, state, net.weights[name] if name in net.weights else {})
            if isinstance(spec, (Conv2d, Linear)):
                nz = (prev != 0).float().flatten(0, 1)
                if isinstance(spec, Conv2d):
                    ones = torch.ones(1, spec.in_channels, spec.kernel_size, spec.kernel_size)
                    eff = float(F.conv2d(nz, ones, stride=spec.stride, padding=spec.padding).sum()) * spec.out_channels
                    out_size = math.prod(spec.out_shape((1, *prev.shape[2:]))[1:])
                    dense = out_size * spec.in_channels * spec.kernel_size ** 2 * len(nz)
                else:
                    eff = float(nz.sum()) * spec.out_features
                    dense = spec.in_features * spec.out_features * len(nz)
                binary = bool(((prev == 0) | (prev == 1)).all())
                if binary:
                    self.acs += eff
                else:
                    self.macs += eff
                self.dense += dense
            elif spec.stateful and hasattr(spec, "v_threshold"):
                self.spikes += float(out.sum())
                self.neuron_steps += out.numel()
            prev = out
        self.samples += x_seq.shape[1]

    def result(self) -> dict:
        net = self.net
        params = sum(p.numel() for p in net.parameters())
        footprint = sum(p.numel() * p.element_size() for p in net.parameters())
        state = net.init_state(1)
        state_bytes = sum(t.numel() * t.element_size() for _, t in S.leaves(state))
        n = max(self.samples, 1)
        return {
            "activation_sparsity": 1.0 - self.spikes / max(self.neuron_steps, 1),
            "synaptic_ops": {"effective_macs": self.macs / n, "effective_acs": self.acs / n, "dense": self.dense / n},
            "params": int(params), "footprint_bytes": int(footprint), "state_bytes": int(state_bytes),
        }
