"""Surrogate-gradient BPTT with the TET loss, optional knowledge distillation, checkpoints.

``tet_loss`` (Deng et al. 2022, "Temporal Efficient Training"): the cross-entropy of every
time step's output, averaged over the labelled steps, plus ``lam`` times the mean squared
distance of the outputs to ``phi``. ``rest_loss`` (optional): the unlabelled steps' outputs
towards the uniform distribution. ``kd_loss``: Hinton's distillation from a teacher's logits
to the student's mean output. ``fit`` runs epochs of random crops (``data.batches``) and calls
back after each with the epoch's numbers; ``evaluate`` scores whole recordings from rest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..schema import check_number
from .augment import augment
from .data import EncodedSet, batches

__all__ = ["OptimConfig", "evaluate", "fit_epoch", "kd_loss", "predict", "rest_loss", "tet_loss"]


def tet_loss(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, lam: float = 0.0, phi: float = 1.0):
    """``out [T, B, C]``, ``y [B]``, ``mask [T, B]`` (steps that count, bool, or their float weights)."""
    T, B, C = out.shape
    ce = F.cross_entropy(out.reshape(T * B, C), y.repeat(T), reduction="none").view(T, B)
    m = mask.float()
    loss = (ce * m).sum() / m.sum().clamp(min=1)
    if lam:
        mse = ((out - phi) ** 2).mean(-1)
        loss = (1 - lam) * loss + lam * (mse * m).sum() / m.sum().clamp(min=1)
    return loss


def rest_loss(out: torch.Tensor, rest: torch.Tensor):
    """KL divergence from the uniform distribution to the softmax of the outputs ``out [T, B, C]``,
    averaged over the ``rest [T, B]`` steps (no gesture): ``logsumexp(z) - mean(z) - log C``, 0
    when every class scores the same. Teaches the network to stay undecided at rest, so that a
    streaming decision rule is not pulled towards a class before a gesture starts."""
    r = rest.float()
    u = torch.logsumexp(out, -1) - out.mean(-1) - math.log(out.shape[-1])
    return (u * r).sum() / r.sum().clamp(min=1)


def kd_loss(student_mean: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0):
    """KL(teacher || student) on temperature-softened distributions, times temperature**2."""
    t = temperature
    return F.kl_div(F.log_softmax(student_mean / t, -1), F.softmax(teacher_logits / t, -1),
                    reduction="batchmean") * t * t


def masked_mean(out, mask):
    m = mask.float().unsqueeze(-1)
    return (out * m).sum(0) / m.sum(0).clamp(min=1)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 20
    batch_size: int = 32
    steps: int = 30          # T: steps per crop (truncated BPTT length)
    lead_in: int = 10        # crops may start this many steps before the labelled interval
    tet_lambda: float = 0.05
    tet_phi: float = 1.0
    kd_alpha: float = 0.0    # weight of the distillation term (0: none)
    kd_temperature: float = 4.0
    grad_clip: float = 1.0
    # augmentation of each crop (eventflow.train.augment; 0 = off): translation by up to `shift` whole
    # pixels, zoom by up to +-`scale`, rotation by up to +-`rotate` degrees, up to `drop` of the events
    # thinned away, noise events with a probability up to `noise` per empty pixel, channel and step
    shift: int = 0
    scale: float = 0.0
    rotate: float = 0.0
    drop: float = 0.0
    noise: float = 0.0
    rest_weight: float = 0.0  # weight of rest_loss on the crops' unlabelled steps (0: none)
    onset_crops: float = 0.0  # share of crops made to start at or before the first labelled step (data.batches)
    tail_steps: int = 0       # crops may end this many steps after the labelled end (the rest after a gesture)
    onset_weight: float = 0.0  # the first onset_steps labelled steps weigh 1 + onset_weight in the TET loss (0: even)
    onset_steps: int = 12

    def __post_init__(self):
        for name in ("epochs", "batch_size", "steps"):   # (also a `--epochs` override, checked on replace)
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"optim.{name}: expected at least 1, got {v!r}")
        for name in ("lead_in", "shift", "tail_steps", "onset_steps"):   # counts of steps or pixels
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"optim.{name}: expected a whole number, got {v!r}")
        for name, lo, hi, closed in (("scale", 0.0, 1.0, False), ("rotate", 0.0, 180.0, True), ("drop", 0.0, 1.0, True),
                                     ("noise", 0.0, 1.0, True), ("shift", 0, math.inf, False),
                                     ("onset_crops", 0.0, 1.0, True), ("rest_weight", 0.0, math.inf, False),
                                     ("tail_steps", 0, math.inf, False), ("onset_weight", 0.0, math.inf, False),
                                     ("onset_steps", 1, math.inf, False), ("lead_in", 0, math.inf, False),
                                     ("weight_decay", 0.0, math.inf, False), ("tet_lambda", 0.0, 1.0, True),
                                     ("kd_alpha", 0.0, 1.0, True), ("grad_clip", 0.0, math.inf, False)):
            v = getattr(self, name)
            if not (lo <= v <= hi if closed else lo <= v < hi):
                end = "]" if closed else ")"
                raise ValueError(f"optim.{name}: expected a number in [{lo:g}, {hi:g}{end}, got {v!r}")
        if not math.isfinite(self.tet_phi):
            raise ValueError(f"optim.tet_phi: expected a finite number, got {self.tet_phi!r}")
        for name in ("lr", "kd_temperature"):   # (grad_clip 0: no clipping; a negative one would flip the gradient)
            check_number(getattr(self, name), f"optim.{name}", 0, math.inf)


def lr_at(cfg: OptimConfig, epoch: int) -> float:
    """Cosine schedule from ``lr`` to ``lr / 100`` over the epochs."""
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1))))


def fit_epoch(net, opt, data: EncodedSet, cfg: OptimConfig, generator, epoch: int, teacher=None, progress=None,
              device="cpu"):
    """One epoch over random crops; returns ``{"loss", "accuracy"}`` on the training crops.
    Crops are drawn and augmented on the CPU (the same draws whatever the device), then moved to
    ``device``, where ``net`` (and ``teacher``) live."""
    for g in opt.param_groups:
        g["lr"] = lr_at(cfg, epoch)
    net.train()
    total, correct, n = 0.0, 0, 0
    early_steps = cfg.onset_steps if cfg.onset_weight else 0
    for x, y, mask, rest, *early in batches(data, cfg.batch_size, cfg.steps, generator, cfg.lead_in, rest=True,
                                             onset=cfg.onset_crops, tail=cfg.tail_steps, early_steps=early_steps):
        x = augment(x, generator, cfg.shift, cfg.scale, cfg.rotate, cfg.drop, cfg.noise)
        x, y, mask, rest = (t.to(device, non_blocking=True) for t in (x, y, mask, rest))
        out, _ = net.run(x, net.init_state(x.shape[1]))
        weight = mask.float() + cfg.onset_weight * early[0].to(device).float() if early else mask
        loss = tet_loss(out, y, weight, cfg.tet_lambda, cfg.tet_phi)
        if cfg.rest_weight:
            loss = loss + cfg.rest_weight * rest_loss(out, rest)
        mean = masked_mean(out, mask)
        if teacher is not None and cfg.kd_alpha:
            with torch.no_grad():
                t_logits = teacher(masked_mean(x.flatten(2), mask).view(x.shape[1:]))
            loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * kd_loss(mean, t_logits, cfg.kd_temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        total += float(loss.detach()) * len(y)
        correct += int((mean.argmax(-1) == y).sum())
        n += len(y)
        if progress is not None:
            progress(len(y), float(loss.detach()))
    return {"loss": total / max(n, 1), "accuracy": correct / max(n, 1)}


@torch.no_grad()
def predict(net, data: EncodedSet, batch_size: int = 64, device="cpu"):
    """Mean output over each recording's labelled steps, run from rest up to the batch's last
    labelled step (the net is causal: later steps, the rest after a gesture and the padding of
    joined sets, cannot change them): ``[N, C]`` on the CPU (run on ``device``, where ``net`` lives)."""
    net.eval()
    outs = []
    labelled = data.label_mask().transpose(0, 1)   # [S, N]
    for b in range(0, len(data), batch_size):
        sl = slice(b, b + batch_size)
        stop = max(int(data.end[sl].max()), 1)
        x = data.x[sl, :stop].float().transpose(0, 1).to(device, non_blocking=True)
        out, _ = net.run(x, net.init_state(x.shape[1]))
        outs.append(masked_mean(out, labelled[:stop, sl].to(device)).cpu())
    return torch.cat(outs)


def evaluate(net, data: EncodedSet, batch_size: int = 64, device="cpu") -> dict:
    logits = predict(net, data, batch_size, device)
    loss = F.cross_entropy(logits, data.y).item()
    return {"loss": loss, "accuracy": float((logits.argmax(-1) == data.y).float().mean())}
