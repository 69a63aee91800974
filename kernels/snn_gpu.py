"""Spiking-network GPU kernels (Triton) beside the torch references they must equal.

On a GPU the weighted sums of a conv / linear SNN are dense cuDNN / cuBLAS calls; what the
framework peers do next is a chain of elementwise torch kernels per neuron layer (leak, fire,
reset, then a pooling pass), each reading and writing the whole layer. Here each LIF or DA-LIF
layer is **one** kernel: it reads the layer's input current and membrane once, writes the
membrane back in place and writes the spikes, and where a ``MaxPool2d(2)`` follows, writes the
pooled spikes directly (the full-resolution spikes are never stored).

- ``lif_flat(cur, v, args, factors)``: contiguous tensors of any shape; DA-LIF factors are per
  channel of dim 1, channel = ``(i // inner) % channels`` of the flat index ``i``.
- ``lif_pool2(cur, v, args, factors)``: ``cur`` and ``v`` are ``[B, C, H, W]``; returns
  ``max_pool2d(spikes, 2)`` (``[B, C, H // 2, W // 2]``); an odd last row / column is stepped
  but, as in ``max_pool2d``, not pooled.

``args`` is ``(tau, v_reset, threshold, decay_input, soft)`` as in ``eventflow.kernels.snn`` (a
DA-LIF passes ``tau = 1`` and ``decay_input = False`` and its factors ``(kt, ks)``, per channel,
float32). The arithmetic is the float32 arithmetic of the torch references below (the operations
of ``eventflow.snn.neurons``, in the same order): divisions are IEEE-rounded (``div_rn``) and the
kernels are compiled without fused multiply-add and without flushing subnormals to zero, so
results equal the references bit for bit (the references divide by a tensor on the data's
device: torch on CUDA computes ``tensor / python_float`` as a product with the reciprocal).

Triton is imported lazily: this module imports without it, and ``available(device)`` says whether
the kernels can run there (a CUDA device, or any device under ``TRITON_INTERPRET=1``, Triton's
CPU interpreter, which the tests use where Triton is installed but no GPU is present).
"""
from __future__ import annotations

import contextlib
import math
import os

import torch

__all__ = ["available", "lif_flat", "lif_flat_reference", "lif_pool2", "lif_pool2_reference"]

BLOCK = 1024
_INT32_LIMIT = 2 ** 31 - 1

_kernels = None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def available(device) -> bool:
    """Whether the Triton kernels run on ``device``: CUDA with Triton importable (or the interpreter)."""
    device = torch.device(device)
    if device.type != "cuda" and not _interpreting():
        return False
    try:
        _load()
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# references (torch; any device): the operations of eventflow.snn.neurons in the same order

def _charge_reference(v, x, args, factors, channel_view):
    tau, v_reset, threshold, decay_input, soft = args
    if factors:
        kt, ks = (f.view(channel_view) for f in factors)
        return (v_reset + kt * (v - v_reset)) + ks * x
    tau = torch.tensor(tau, dtype=v.dtype, device=v.device)   # an IEEE division on CUDA too
    if decay_input:
        return v + ((x - v) if v_reset == 0 else (v_reset - v + x)) / tau
    return v + ((-v) if v_reset == 0 else (v_reset - v)) / tau + x


def _fire_reset_reference(h, args):
    tau, v_reset, threshold, decay_input, soft = args
    fired = h >= threshold
    v_new = torch.where(fired, h - threshold, h) if soft else torch.where(fired, torch.full_like(h, v_reset), h)
    return fired.to(h.dtype), v_new


def lif_flat_reference(cur, v, args, factors=(), inner: int = 1):
    """``(spikes, new v)``; ``cur`` and ``v`` are left as they are. Factors are per channel of
    dim 1 (``inner`` = the product of the dims after it)."""
    view = (1, -1) + (1,) * (cur.dim() - 2) if factors else None
    h = _charge_reference(v, cur, args, factors, view)
    return _fire_reset_reference(h, args)


def lif_pool2_reference(cur, v, args, factors=()):
    """``(max_pool2d(spikes, 2), new v)`` for ``[B, C, H, W]`` inputs; the arguments are left as they are."""
    s, v_new = lif_flat_reference(cur, v, args, factors)
    b, c, h, w = s.shape
    if h < 2 or w < 2:   # no whole 2x2 block (max_pool2d refuses an empty output)
        return s.new_zeros((b, c, h // 2, w // 2)), v_new
    return torch.nn.functional.max_pool2d(s, 2), v_new


# ---------------------------------------------------------------------------------------------
# the Triton kernels (kernels/snn_triton.py) and their wrappers

def _load():
    """``(triton, lif_flat_kernel, lif_pool2_kernel)``, imported on first use (Triton is optional)."""
    global _kernels
    if _kernels is None:
        import triton

        from . import snn_triton
        _kernels = (triton, snn_triton.lif_flat_kernel, snn_triton.lif_pool2_kernel)
    return _kernels


def _check(cur, v, factors, where):
    if cur.dtype != torch.float32 or v.dtype != torch.float32:
        raise TypeError(f"{where}: float32 current and membrane, got {cur.dtype} and {v.dtype}")
    if cur.shape != v.shape or cur.device != v.device:
        raise ValueError(f"{where}: current {tuple(cur.shape)} on {cur.device} and membrane {tuple(v.shape)} "
                         f"on {v.device} must match")
    if not (cur.is_contiguous() and v.is_contiguous()):
        raise ValueError(f"{where}: contiguous current and membrane")
    if cur.numel() > _INT32_LIMIT:
        raise ValueError(f"{where}: {cur.numel()} neurons, the kernels index with int32 (at most {_INT32_LIMIT})")
    if factors:
        c = cur.shape[1] if cur.dim() >= 2 else None
        if c is None or any(f.shape != (c,) or f.dtype != torch.float32 or f.device != cur.device
                            or not f.is_contiguous() for f in factors):
            raise ValueError(f"{where}: DA-LIF factors must be contiguous float32 [{c}] on {cur.device}, for a "
                             f"current with channels in dim 1")


def _out(out, shape, like, where):
    if out is None:
        return like.new_empty(shape)
    if out.shape != shape or out.dtype != torch.float32 or out.device != like.device or not out.is_contiguous():
        raise ValueError(f"{where}: out must be contiguous float32 {tuple(shape)} on {like.device}, got "
                         f"{out.dtype} {tuple(out.shape)} on {out.device}")
    return out


def _flags(args, factors):
    tau, v_reset, threshold, decay_input, soft = args
    return dict(DECAY_INPUT=bool(decay_input) and not factors, RESET_ZERO=float(v_reset) == 0.0, SOFT=bool(soft),
                DALIF=bool(factors), BLOCK=BLOCK, enable_fp_fusion=False, enable_reflect_ftz=False)


def _on(device):
    """The kernels launch on the current CUDA device: make it ``device``'s."""
    if device.type == "cuda" and device.index != torch.cuda.current_device():
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def lif_flat(cur, v, args, factors=(), out=None):
    """One LIF / DA-LIF step over ``cur`` and ``v`` (same shape, contiguous float32): ``v`` is
    updated in place; returns the spikes (0 / 1 float32, ``out`` if given)."""
    _check(cur, v, factors, "lif_flat")
    triton, flat, _ = _load()
    out = _out(out, cur.shape, cur, "lif_flat")
    n = cur.numel()
    inner = math.prod(cur.shape[2:])
    channels = cur.shape[1] if cur.dim() > 1 else 1
    kt, ks = factors if factors else (v, v)   # unread placeholders without DA-LIF
    tau, v_reset, threshold = (float(a) for a in args[:3])
    with _on(cur.device):
        flat[(triton.cdiv(n, BLOCK),)](cur, v, out, kt, ks, n, inner, channels, tau, v_reset, threshold,
                                       **_flags(args, factors))
    return out


def lif_pool2(cur, v, args, factors=(), out=None):
    """One LIF / DA-LIF step over ``[B, C, H, W]`` ``cur`` and ``v`` (``v`` updated in place) and a
    2x2 max pool of the spikes: returns ``[B, C, H // 2, W // 2]`` float32 (``out`` if given)."""
    if cur.dim() != 4:
        raise ValueError(f"lif_pool2: [B, C, H, W] current, got {tuple(cur.shape)}")
    _check(cur, v, factors, "lif_pool2")
    triton, _, pool = _load()
    b, c, h, w = cur.shape
    hb, wb, ho, wo = (h + 1) // 2, (w + 1) // 2, h // 2, w // 2
    out = _out(out, (b, c, ho, wo), cur, "lif_pool2")
    n_blocks = b * c * hb * wb
    kt, ks = factors if factors else (v, v)
    tau, v_reset, threshold = (float(a) for a in args[:3])
    with _on(cur.device):
        pool[(triton.cdiv(n_blocks, BLOCK),)](cur, v, out, kt, ks, n_blocks, c, h, w, hb, wb, ho, wo,
                                              tau, v_reset, threshold, **_flags(args, factors))
    return out
