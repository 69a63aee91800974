"""An ANN teacher for knowledge distillation: a small conv net on each recording's mean input frame.

It sees the average of the labelled steps' inputs (what a frame-based network would get) and
is trained with plain cross-entropy; ``loop.fit_epoch`` then distils its softened outputs into
the SNN's mean output (``loop.kd_loss``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import EncodedSet

__all__ = ["mean_frames", "teacher_net", "train_teacher"]


def teacher_net(in_shape, classes: int, channels=(32, 64, 128)) -> nn.Module:
    c, h, w = in_shape
    layers = []
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(), nn.Linear(256, classes)]
    return nn.Sequential(*layers)


def mean_frames(data: EncodedSet) -> torch.Tensor:
    """``[N, 2, h, w]``: each recording's input averaged over its labelled steps."""
    S = data.x.shape[1]
    m = data.label_mask().float()
    out = torch.empty((len(data), *data.x.shape[2:]))
    for i in range(len(data)):
        out[i] = (data.x[i].float() * m[i].view(S, 1, 1, 1)).sum(0) / m[i].sum().clamp(min=1)
    return out


def train_teacher(data: EncodedSet, cfg, classes: int, seed: int, log=print, batch_size: int = 64) -> nn.Module:
    torch.manual_seed(seed)
    x, y = mean_frames(data), data.y
    net = teacher_net(x.shape[1:], classes, cfg.channels)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        total, correct = 0.0, 0
        for b in range(0, len(y), batch_size):
            idx = order[b:b + batch_size]
            out = net(x[idx])
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(-1) == y[idx]).sum())
        log(f"teacher epoch {epoch + 1}/{cfg.epochs}: loss {total / len(y):.4f}, train accuracy {correct / len(y):.3f}")
    return net.eval()
