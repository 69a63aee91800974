"""How soon after a gesture's onset its class can be told at all: a frame-stack ANN beside the SNN.

usage: python tools/early_evidence.py MODEL --train DATA [DATA ...] --val DATA [DATA ...]
                                      [--epochs 12] [--history 16] [--after-onset 50 100 150 200 250 300]
                                      [--seed 0] [--threads 2] [--json OUT]

The SNN sees a stream one window at a time and must carry what it saw in its membranes. This
asks how much of the delay is the scene's: a conventional conv net (not spiking, not streaming)
gets the last ``--history`` windows (of the MODEL's input encoding: same windows, input size and
clip) stacked as channels, ending at the last window that ends by onset + delay, and is trained
on the training splits with delays drawn from 0-400 ms after the onset (and the SNN's crop
shift). On the validation splits, per delay: the share of recordings whose class it names, beside
the SNN's own output at the same window (``tools/tune_decision.py``'s "window's own output").

The ANN is an estimate, not a bound: another network could do better. Where it does no better
than the SNN, the evidence itself, not the SNN, is what is missing so soon after the onset.
Train only on training splits; the validation splits are not used to choose anything here.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eventflow.model import load_model
from eventflow.progress import progress
from eventflow.train.augment import random_shift
from eventflow.train.evaluate import encoded_data, run_outputs

MAX_DELAY_MS = 400


def stack_net(channels: int, classes: int) -> nn.Module:
    layers, c = [], channels
    for out in (64, 128, 128):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        c = out
    return nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, classes))


def clips(x: torch.Tensor, last: torch.Tensor, history: int) -> torch.Tensor:
    """``[B, history * 2, h, w]``: for each recording b, windows ``last[b] - history + 1 .. last[b]``
    of ``x [B, S, 2, h, w]`` (zeros before the recording's start), stacked as channels."""
    B, S = x.shape[:2]
    t = last[:, None] - torch.arange(history - 1, -1, -1)[None, :]          # [B, history]
    got = x[torch.arange(B)[:, None], t.clamp(0, S - 1)].float()             # [B, history, 2, h, w]
    got = got * (t >= 0).float()[:, :, None, None, None]
    return got.flatten(1, 2)


def last_window(onset_us, delay_ms, window_us: int):
    """The last window ending by onset + delay (as ``tools/tune_decision.py``)."""
    return (onset_us + (delay_ms * 1000).astype(np.int64)) // window_us - 1


def train_epoch(net, opt, sched, train, train_on, lengths, a, gen, rng, window_us, bar) -> float:
    """One epoch over the training recordings, each at a delay drawn from 0-400 ms; its accuracy."""
    net.train()
    order = torch.randperm(len(train), generator=gen)
    correct = 0
    for b in range(0, len(train), 64):
        idx = order[b:b + 64]
        delay = rng.uniform(0, MAX_DELAY_MS, len(idx))
        last = np.minimum(last_window(train_on[idx.numpy()], delay, window_us), lengths[idx.numpy()] - 1)
        x = random_shift(clips(train.x[idx], torch.from_numpy(last), a.history)[None], a.shift, gen)[0]
        out = net(x)
        loss = F.cross_entropy(out, train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        correct += int((out.argmax(-1) == train.y[idx]).sum())
        if bar is not None:
            bar.update(1)
    return correct / len(train)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--val", nargs="+", required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--history", type=int, default=16, help="windows the ANN sees at once")
    ap.add_argument("--after-onset", type=float, nargs="+", default=[50, 100, 150, 200, 250, 300], metavar="MS")
    ap.add_argument("--shift", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--save", metavar="PT", help="save the ANN's state_dict there")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = load_model(a.model)
    W = model.input.window_us
    train, train_on = encoded_data(model, a.train)
    val, val_on = encoded_data(model, a.val)
    if train_on is None or val_on is None:
        raise SystemExit("early_evidence: DATA without labelled onsets")
    classes = len(model.classes)
    net = stack_net(a.history * 2, classes)
    net(torch.zeros(1, a.history * 2, *train.x.shape[-2:]))   # (sizes the lazy layer)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = a.epochs * ((len(train) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    tr_len = train.lengths().numpy()
    with progress(steps, "train ANN", "batch", unit_scale=False) as bar:
        for epoch in range(a.epochs):
            acc = train_epoch(net, opt, sched, train, train_on, tr_len, a, gen, rng, W, bar)
            print(f"epoch {epoch + 1}/{a.epochs}: train accuracy {acc:.3f} (delays 0-{MAX_DELAY_MS} ms)", flush=True)
    net.eval()
    if a.save:
        torch.save(net.state_dict(), a.save)
    snn = run_outputs(model, val)
    y = val.y.numpy()
    va_len = val.lengths().numpy()
    rows = []
    for d in a.after_onset:
        k = last_window(val_on, np.full(len(val), d), W)
        first = val_on // W if d > 0 else 0   # (a delay <= 0: the windows before the onset, a check for cues there)
        idx = np.flatnonzero((k >= first) & (k < va_len))
        with torch.no_grad():
            ann = torch.cat([net(clips(val.x[torch.from_numpy(idx[b:b + 128])],
                                       torch.from_numpy(k[idx[b:b + 128]]), a.history)).argmax(-1)
                             for b in range(0, len(idx), 128)]).numpy()
        rows.append({"ms_after_onset": d, "n": int(len(idx)), "ann": float((ann == y[idx]).mean()),
                     "snn_own_output": float((snn[idx, k[idx]].argmax(-1) == y[idx]).mean())})
    print(f"| ms after onset | ANN, last {a.history} windows stacked | SNN, its own output | n |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['ms_after_onset']:g} | {r['ann']:.3f} | {r['snn_own_output']:.3f} | {r['n']} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "train": a.train, "val": a.val, "epochs": a.epochs,
                       "history": a.history, "seed": a.seed, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
