"""Spike functions: Heaviside forward, smooth surrogate derivative backward.

Forward is always ``spike = (x >= 0)`` where ``x = v - threshold`` (SpikingJelly's convention;
snnTorch and Norse spike at ``x > 0``, which differs only when ``v`` equals the threshold
exactly). Backward replaces the Heaviside's derivative by a smooth bump of unit area whose
sharpness is ``alpha``:

=========  ==============================================  ===============
kind       surrogate derivative g'(x)                      default alpha
=========  ==============================================  ===============
atan       alpha / 2 / (1 + (pi / 2 * alpha * x) ** 2)     2.0
sigmoid    alpha * s * (1 - s),  s = sigmoid(alpha * x)    4.0
triangle   alpha * max(0, 1 - alpha * |x|)                 1.0
=========  ==============================================  ===============

atan and sigmoid are SpikingJelly's ``surrogate.ATan`` / ``surrogate.Sigmoid`` (atan with
alpha = 2 is also snnTorch's ``atan``); triangle peaks at ``alpha`` and is zero beyond
``|x| = 1 / alpha``.

>>> import torch
>>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
>>> spike(x, Surrogate("atan", 2.0))
tensor([0., 1., 1.], grad_fn=<_SurrogateSpikeBackward>)
>>> spike(x, Surrogate("triangle", 1.0)).sum().backward()
>>> x.grad
tensor([0.5000, 1.0000, 0.5000])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["KINDS", "Surrogate", "fire", "heaviside", "spike", "surrogate_grad"]

KINDS = ("atan", "sigmoid", "triangle")


@dataclass(frozen=True)
class Surrogate:
    """Which surrogate derivative to use and how sharp it is.

    >>> Surrogate()                      # the default of every neuron
    Surrogate(kind='atan', alpha=2.0)
    >>> Surrogate("sigmoid", 4.0).kind
    'sigmoid'
    """

    kind: str = "atan"
    alpha: float = 2.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"surrogate kind must be one of {KINDS}, got {self.kind!r}")
        if not self.alpha > 0:
            raise ValueError(f"surrogate alpha must be > 0, got {self.alpha!r}")


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """``1.0`` where ``x >= 0``, else ``0.0``, in ``x``'s dtype; no gradient.

    >>> heaviside(torch.tensor([-1.0, 0.0, 2.0]))
    tensor([0., 1., 1.])
    """
    return (x >= 0).to(x.dtype)


def surrogate_grad(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """The surrogate derivative g'(x) of the table above (what backward multiplies by).

    >>> surrogate_grad(torch.tensor([0.0]), Surrogate("sigmoid", 4.0))
    tensor([1.])
    """
    a = surrogate.alpha
    if surrogate.kind == "atan":
        return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)
    if surrogate.kind == "sigmoid":
        s = torch.sigmoid(a * x)
        return a * s * (1 - s)
    return a * torch.clamp(1 - a * x.abs(), min=0)


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward; the given surrogate's derivative backward."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.surrogate), None


def spike(x: torch.Tensor, surrogate: Surrogate = Surrogate()) -> torch.Tensor:
    """Heaviside ``x >= 0`` forward; ``surrogate``'s derivative backward.

    Without autograd (``torch.no_grad()`` or an input that needs no grad) this is the plain
    comparison, so inference pays nothing for the surrogate.

    >>> spike(torch.tensor([-0.1, 0.1]))
    tensor([0., 1.])
    """
    if not (torch.is_grad_enabled() and x.requires_grad):
        return heaviside(x)
    return _SurrogateSpike.apply(x, surrogate)


def fire(v: torch.Tensor, threshold, surrogate: Surrogate = Surrogate()) -> torch.Tensor:
    """``spike(v - threshold, surrogate)``; without autograd the plain comparison ``v >= threshold``
    (the same result for finite numbers, one pass fewer).

    >>> fire(torch.tensor([0.5, 1.0]), 1.0)
    tensor([0., 1.])
    """
    if not (torch.is_grad_enabled() and (v.requires_grad or getattr(threshold, "requires_grad", False))):
        return (v >= threshold).to(v.dtype)
    return spike(v - threshold, surrogate)
