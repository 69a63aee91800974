"""Network recipes for training, and the conversion of a trained network for inference.

``conv_snn(in_shape, classes, channels, hidden, neuron, batch_norm, unshuffle, stack)``: [a step-stack
stem,] [a pixel-unshuffle stem, then] blocks of conv 3x3 (pad 1) [- batch norm] - neuron - maxpool 2, flatten, linear [- batch
norm] - neuron layers, and a last linear readout: the pattern that the event-driven kernels
(``eventflow.snn.fast``) run. ``unshuffle=r`` moves each r x r patch of the input into channels
(space to depth) before the first conv: the input's full resolution at the cost of 1 / r of it.
``stack=k`` gives the first conv the last k steps' inputs side by side in channels (``StepStack``).
``inference_network`` folds every batch norm into the layer before it (with the statistics
gathered in training) and turns every PLIF into the LIF with its learned time constant, so the
trained net runs on those kernels.

>>> net = conv_snn((2, 32, 32), 11, channels=(8, 16), hidden=(32,), neuron={"type": "PLIF"}, seed=0)
>>> [name for name, _ in net.spec.layers][:4]
['conv1', 'sn1', 'pool1', 'conv2']
>>> type(inference_network(net).spec["sn1"]).__name__
'LIF'
"""
from __future__ import annotations

import torch

from ..snn.layers import BatchNorm, Conv2d, Flatten, Linear, MaxPool2d, PixelUnshuffle, Sequential, StepStack
from ..snn.network import Network
from ..snn.neurons import LIF, PLIF
from ..snn.spec_io import spec_from_dict

__all__ = ["conv_snn", "inference_network"]


def _neuron(neuron: dict | None, channels: int):
    """The spiking layer of a block of ``channels`` channels from a config's ``neuron`` mapping
    (DALIF's per-channel decays take the block's channel count)."""
    d = dict(neuron or {"type": "LIF"})
    if d.get("type") == "DALIF":
        d.setdefault("channels", channels)
    return spec_from_dict(d, "neuron")


def conv_snn(in_shape, classes: int, channels=(16, 32, 64), hidden=(128,), neuron=None, seed: int = 0,
             batch_norm: bool = False, unshuffle: int = 1, stack: int = 1) -> Network:
    c, h, w = in_shape
    layers = []
    if stack != 1:
        layers.append(("stack", StepStack(stack)))
        c *= stack
    if unshuffle != 1:
        stem = PixelUnshuffle(unshuffle)
        _, c, h, w = stem.out_shape((1, c, h, w))
        layers.append(("unshuffle", stem))
    for i, out in enumerate(channels, 1):
        bn = [(f"bn{i}", BatchNorm(out))] if batch_norm else []
        layers += [(f"conv{i}", Conv2d(c, out, 3, padding=1)), *bn, (f"sn{i}", _neuron(neuron, out)),
                   (f"pool{i}", MaxPool2d(2))]
        c, h, w = out, h // 2, w // 2
    layers.append(("flatten", Flatten()))
    n = c * h * w
    for j, out in enumerate(hidden, len(channels) + 1):
        bn = [(f"bn{j}", BatchNorm(out))] if batch_norm else []
        layers += [(f"fc{j}", Linear(n, out)), *bn, (f"sn{j}", _neuron(neuron, out))]
        n = out
    layers.append(("out", Linear(n, classes)))
    return Network(Sequential(layers), in_shape, seed=seed)


def inference_network(net: Network) -> Network:
    """``net`` with its batch norms folded (stored statistics) and each PLIF replaced by the LIF
    of its learned tau (other layers, weights unchanged); in eval mode."""
    net = net.fold_batch_norms()
    layers, weights = [], {}
    for name, spec in net.spec.layers:
        w = {k: v.detach().clone() for k, v in net.weights[name].items()} if name in net.weights else {}
        if isinstance(spec, PLIF):
            tau = float(1.0 / torch.sigmoid(w["w"].float()))
            spec = LIF(tau=tau, decay_input=spec.decay_input, v_threshold=spec.v_threshold, v_reset=spec.v_reset,
                       reset=spec.reset, surrogate=spec.surrogate, detach_reset=spec.detach_reset)
            w = {}
        layers.append((name, spec))
        weights[name] = w
    out = Network(Sequential(layers), net.in_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name, params in out.weights.named_parameters():
            layer, key = name.split(".", 1)
            params.copy_(weights[layer][key])
    return out.eval()


@torch.no_grad()
def calibrate_init(net: Network, x_seq: torch.Tensor, target_rate: float = 0.1, tries: int = 30) -> dict:
    """Scale each Conv2d / Linear (in order) until the spiking layer after it fires near ``target_rate``
    on ``x_seq [T, B, ...]`` (LSUV-style data-driven init, so that no layer starts silent or saturated).
    A layer followed by a BatchNorm is left as it is: in training mode the normalisation undoes any
    scale. Returns the firing rate reached per calibrated spiking layer."""
    names = [n for n, _ in net.spec.layers]
    rates = {}
    for i, (name, spec) in enumerate(net.spec.layers):
        if not (isinstance(spec, (Conv2d, Linear)) and i + 1 < len(names)):
            continue
        nxt_name, nxt = net.spec.layers[i + 1]
        if not (nxt.stateful and hasattr(nxt, "v_threshold")):
            continue   # (e.g. a BatchNorm, which sets the scale itself: scaling the weights before it does nothing)
        w = net.weights[name]["weight"]
        for _ in range(tries):
            outs, _ = net.trace(x_seq, net.init_state(x_seq.shape[1]))
            rate = float(outs[nxt_name].mean())
            if target_rate / 2 <= rate <= target_rate * 2:
                break
            w.mul_(1.5 if rate < target_rate / 2 else 1 / 1.5)
        rates[nxt_name] = rate
    return rates
