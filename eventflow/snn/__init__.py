"""Stateful spiking networks, torch reference: neurons, layers, networks, explicit per-stream state.

Everything is a pure function of ``(x, state, parameters)``; modules only own weights. The
state of a whole network is a nested dict of NamedTuples of tensors, streams on dim 0
(``eventflow.snn.state``), so streams join, leave, pause and resume without disturbing
each other. This package imports neither ``eventflow.encode`` nor ``eventflow.formats``.

>>> import torch
>>> from eventflow import snn
>>> net = snn.reference_network()                 # the issue's reference conv SNN
>>> state = net.init_state(batch=1)
>>> x = (torch.rand(1, 2, 128, 128) < 0.05).float()
>>> y, state = net.step(x, state)
>>> y.shape
torch.Size([1, 11])
"""
from . import state
from .layers import (AvgPool2d, BatchNorm, Conv2d, Flatten, Linear, MaxPool2d, PixelUnshuffle, ReLU, SEWBlock, Sequential,
                     StackState, StepStack, SumPool2d, batch_norm, fold_batch_norm, fold_batch_norms, sew_block)
from .network import REFERENCE_IN_SHAPE, HybridNet, Network, ReadoutState, reference_network, reference_spec
from .neurons import (ALIF, DALIF, IF, LI, LIF, PLIF, ALIFState, MembraneState, NeuronCell, alif_step, dalif_step,
                      if_step, li_step, lif_step, plif_step)
from .surrogate import Surrogate, fire, heaviside, spike, surrogate_grad

__all__ = [
    "ALIF", "ALIFState", "AvgPool2d", "BatchNorm", "Conv2d", "DALIF", "Flatten", "HybridNet", "IF", "LI", "LIF",
    "Linear", "MaxPool2d", "MembraneState", "Network", "NeuronCell", "PLIF", "PixelUnshuffle", "REFERENCE_IN_SHAPE",
    "ReLU", "ReadoutState", "SEWBlock", "Sequential", "StackState", "StepStack", "SumPool2d", "Surrogate", "alif_step", "batch_norm", "dalif_step",
    "fire", "fold_batch_norm", "fold_batch_norms", "heaviside", "if_step", "li_step", "lif_step", "plif_step",
    "reference_network", "reference_spec", "sew_block", "spike", "state", "surrogate_grad",
]
