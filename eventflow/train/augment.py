"""Training-time augmentation of encoded spike tensors ``x [T, B, C, H, W]`` (event counts).

Each function draws one set of parameters per sample from ``generator`` and applies it at every
step of the crop. It returns a new tensor, or the input itself when its strength is 0; the
input is never modified. They make a model trained on simulated recordings less sensitive to what
the simulator gets only approximately right: where and how large the object is (``random_shift``,
``random_affine``), how many events an edge makes (``random_thinning``) and the sensor's noise
(``random_noise``). Values stay whole counts no larger than the input's, as the encoder makes them.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.zeros(3, 2, 2, 8, 8); x[:, :, :, 3:5, 3:5] = 2.0
>>> y = augment(x, g, shift=1, scale=0.1, rotate=10.0, drop=0.5, noise=0.01)
>>> y.shape == x.shape, bool((y == y.round()).all()), float(y.max()) <= 2.0
(True, True, True)
"""
from __future__ import annotations

import math

import torch

__all__ = ["affine", "augment", "random_affine", "random_noise", "random_shift", "random_thinning"]


def random_shift(x: torch.Tensor, max_shift: int, generator) -> torch.Tensor:
    """``x [T, B, C, H, W]`` with each sample translated by its own random whole-pixel (dx, dy) in
    ``[-max_shift, max_shift]``, zeros shifted in."""
    if max_shift < 0:
        raise ValueError(f"augmentation shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return x
    T, B, C, H, W = x.shape
    s = max_shift
    padded = torch.nn.functional.pad(x, (s, s, s, s))
    d = torch.randint(0, 2 * s + 1, (B, 2), generator=generator)
    out = torch.empty_like(x)
    for b in range(B):
        dy, dx = int(d[b, 0]), int(d[b, 1])
        out[:, b] = padded[:, b, :, dy:dy + H, dx:dx + W]
    return out


def affine(x: torch.Tensor, zoom: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Sample ``b`` zoomed by ``zoom[b]`` and rotated by ``angle[b]`` radians about the image centre
    (pixel units equal along x and y, x right, y down: a positive angle turns the image
    counter-clockwise on screen, e.g. a point left of the centre to below it), nearest-neighbour sampled (counts stay whole), zeros where the source falls outside."""
    T, B, C, H, W = x.shape
    zoom, angle = zoom.to(torch.float64), angle.to(torch.float64)
    # output pixel -> source pixel, in grid_sample's normalised coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(B, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * H / W
    theta[:, 1, 0], theta[:, 1, 1] = sin * W / H, cos
    grid = torch.nn.functional.affine_grid(theta.to(x.dtype), [B, T * C, H, W], align_corners=False)
    planes = x.permute(1, 0, 2, 3, 4).reshape(B, T * C, H, W)
    out = torch.nn.functional.grid_sample(planes, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.reshape(B, T, C, H, W).permute(1, 0, 2, 3, 4).contiguous()


def random_affine(x: torch.Tensor, max_scale: float, max_rotate_deg: float, generator) -> torch.Tensor:
    """``affine`` with each sample's zoom drawn in ``[1 - max_scale, 1 + max_scale]`` and its angle in
    ``[-max_rotate_deg, max_rotate_deg]`` degrees."""
    if not (0 <= max_scale < 1 and 0 <= max_rotate_deg <= 180):
        raise ValueError(f"augmentation scale must be in [0, 1) and rotate in [0, 180] degrees, "
                         f"got {max_scale} and {max_rotate_deg}")
    if max_scale == 0 and max_rotate_deg == 0:
        return x
    B = x.shape[1]
    zoom = 1 + max_scale * (2 * torch.rand(B, generator=generator, dtype=torch.float64) - 1)
    angle = math.radians(max_rotate_deg) * (2 * torch.rand(B, generator=generator, dtype=torch.float64) - 1)
    return affine(x, zoom, angle)


def _applies(x: torch.Tensor, strength: float, what: str) -> bool:
    """Whether a thinning or noise ``strength`` (checked to be in [0, 1]) changes anything; where it
    does, ``x`` must hold whole event counts."""
    if not 0 <= strength <= 1:
        raise ValueError(f"augmentation {what} must be in [0, 1], got {strength}")
    if strength == 0:
        return False
    if not torch.equal(x, x.round()) or bool((x < 0).any()):
        raise ValueError(f"augmentation {what} needs whole event counts as input (an input encoding with "
                         "scale 1 and a whole clip, or binary)")
    return True


def random_thinning(x: torch.Tensor, max_drop: float, generator) -> torch.Tensor:
    """Each sample's events thinned: every count ``n`` becomes Binomial(n, keep), with ``keep`` drawn
    per sample in ``[1 - max_drop, 1]`` (a less sensitive sensor, or fewer events per edge)."""
    if not _applies(x, max_drop, "drop"):
        return x
    B = x.shape[1]
    keep = 1 - max_drop * torch.rand(B, generator=generator)
    prob = keep.to(x.dtype).view(1, B, 1, 1, 1).expand_as(x).contiguous()
    return torch.binomial(x.contiguous(), prob, generator=generator)


def random_noise(x: torch.Tensor, max_rate: float, generator) -> torch.Tensor:
    """Each sample given noise events: every empty (step, channel, pixel) gets one event with a
    probability drawn per sample in ``[0, max_rate]`` (background activity)."""
    if not _applies(x, max_rate, "noise"):
        return x
    B = x.shape[1]
    rate = (max_rate * torch.rand(B, generator=generator)).to(x.dtype).view(1, B, 1, 1, 1)
    hits = torch.rand(x.shape, generator=generator, dtype=x.dtype) < rate
    return x + (hits & (x == 0)).to(x.dtype)


def augment(x: torch.Tensor, generator, shift: int = 0, scale: float = 0.0, rotate: float = 0.0,
            drop: float = 0.0, noise: float = 0.0) -> torch.Tensor:
    """All of the above in a fixed order (geometry, then thinning, then noise); each one's
    parameters drawn from ``generator``; the identity when every strength is 0."""
    x = random_affine(x, scale, rotate, generator)
    x = random_shift(x, shift, generator)
    x = random_thinning(x, drop, generator)
    return random_noise(x, noise, generator)
