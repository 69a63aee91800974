"""One training run from a config: data, network, epochs, checkpoints, curves, the exported model.

Files written under ``<out>/<name>/``: ``checkpoint.safetensors`` + ``checkpoint.json`` (after
every epoch; ``resume=True`` continues from them exactly: weights, optimiser moments, RNG,
history), ``curves.png`` (loss and accuracy per epoch), and ``model/`` (model.json +
model.safetensors of the best epoch by validation accuracy, ties to the lower validation loss
(``improves``), PLIF folded to LIF, ready for
``eventflow.model.load_model``).
"""
from __future__ import annotations

import json
import os
import time

import torch

from ..model import InputSpec, Model, save_model
from ..progress import terminal_bar
from . import arch
from .config import TrainConfig
from .data import Limited, batches, concat, encode_dataset
from .evaluate import open_eval_data
from .loop import evaluate, fit_epoch

__all__ = ["load_split", "train"]


def load_split(cfg: TrainConfig, split: str, spec: InputSpec, log=print):
    """The encoded recordings of ``cfg.data.<split>``, all its splits in one set (each simulated
    first when its ``make`` says so and its folder is missing)."""
    from .. import datasets as D

    sets = []
    for key, s in cfg.data.keyed_splits(split):
        root = cfg.resolve(s.root)
        if s.kind in ("gesture", "digits") and not os.path.exists(os.path.join(root, "manifest.json")):
            if not s.make:
                raise FileNotFoundError(f"{cfg.path}: {key}.root: no dataset at {root} (and no 'make' to simulate one)")
            log(f"simulating {s.kind} {split} split into {root}: {s.make}")
            D.make_dataset(s.kind, root, **s.make)
        ds, interval = open_eval_data(f"{s.kind}:{root}", train=(split == "train"))
        if s.limit is not None:
            ds = Limited(ds, s.limit)
        sets.append(encode_dataset(ds, spec, cfg.data.seconds, interval, desc=f"encode {split}"))
    return concat(sets)


def _save_checkpoint(folder, net, opt, gen, epoch, history, best):
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.weights.named_parameters()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    tensors["rng"] = gen.get_state()
    tmp = os.path.join(folder, "checkpoint.safetensors.tmp")
    save_file(tensors, tmp)
    os.replace(tmp, os.path.join(folder, "checkpoint.safetensors"))
    with open(os.path.join(folder, "checkpoint.json"), "w") as f:
        json.dump({"epoch": epoch, "history": history, "best": best}, f, indent=1)


def _load_checkpoint(folder, net, opt, gen):
    from safetensors.torch import load_file

    t = load_file(os.path.join(folder, "checkpoint.safetensors"))
    with open(os.path.join(folder, "checkpoint.json")) as f:
        meta = json.load(f)
    with torch.no_grad():
        for k, v in net.weights.named_parameters():
            v.copy_(t[f"net.{k}"])
    sd = opt.state_dict()
    for i in sd["state"] or range(len(list(net.parameters()))):
        keys = [k.split(".", 2)[2] for k in t if k.startswith(f"opt.{i}.")]
        sd["state"][i] = {k: t[f"opt.{i}.{k}"] for k in keys}
    opt.load_state_dict(sd)   # (moves the moments to the parameters' device)
    gen.set_state(t["rng"])
    return meta


def plot_curves(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(ep, [h["train_loss"] for h in history], label="train (crops)")
    a.plot(ep, [h["val_loss"] for h in history], label="validation")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend()
    b.plot(ep, [h["train_accuracy"] for h in history], label="train (crops)")
    b.plot(ep, [h["val_accuracy"] for h in history], label="validation")
    b.set_xlabel("epoch"), b.set_ylabel("accuracy"), b.set_ylim(0, 1), b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_device(name: str) -> torch.device:
    """``auto``: a CUDA GPU when torch sees one, else the CPU; ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r}, but torch sees no CUDA GPU here (use auto or cpu)")
    return torch.device(name)


def improves(row: dict, best: dict, history) -> bool:
    """Whether an epoch's ``row`` (``val_accuracy``, ``val_loss``) is a better model than ``best``:
    higher validation accuracy, or the same with a lower validation loss. Accuracy on a few
    hundred recordings ties often once training settles (one recording is 0.15%); the loss then
    still tells the later, better-settled epochs apart. ``best`` from a checkpoint written before
    it kept ``val_loss`` takes it from ``history``."""
    if row["val_accuracy"] != best["val_accuracy"]:
        return row["val_accuracy"] > best["val_accuracy"]
    loss = best.get("val_loss")
    if loss is None:
        loss = next((h["val_loss"] for h in history if h["epoch"] == best["epoch"]), float("inf"))
    return row["val_loss"] < loss


def train(cfg: TrainConfig, resume: bool = False, log=print, data=None, stop_after: int | None = None) -> str:
    """Train as ``cfg`` says; returns the folder of the exported best model.

    ``data``: ``(train_set, val_set)`` already encoded, instead of ``cfg.data``'s splits.
    ``stop_after``: stop after this many epochs in this call (continue later with ``resume``).
    The network trains on ``cfg.device`` (a GPU when present, by default); the data, the random
    draws and the checkpoints stay on the CPU, so a run resumes on either.
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    spec = cfg.input
    folder = os.path.join(cfg.resolve(cfg.out), cfg.name)
    os.makedirs(folder, exist_ok=True)
    if data is None:
        data = (load_split(cfg, "train", spec, log), load_split(cfg, "val", spec, log))
    train_set, val_set = data
    n_classes = int(max(train_set.y.max(), val_set.y.max())) + 1
    classes = tuple(cfg.classes) if cfg.classes else tuple(str(i) for i in range(n_classes))
    net = arch.conv_snn(spec.shape, len(classes), cfg.network.channels, cfg.network.hidden, cfg.network.neuron,
                        seed=cfg.seed, batch_norm=cfg.network.batch_norm, unshuffle=cfg.network.unshuffle,
                        stack=cfg.network.stack)
    x0 = next(iter(batches(train_set, min(64, len(train_set)), cfg.optim.steps,
                            torch.Generator().manual_seed(cfg.seed), 0)))[0]
    rates = arch.calibrate_init(net, x0, cfg.init_rate)
    log(f"initial firing rates after calibration: {rates}")
    device = training_device(cfg.device)
    if device.type != "cpu":
        log(f"training on {device} ({torch.cuda.get_device_name(device)})")
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    teacher = None
    if cfg.teacher is not None and cfg.optim.kd_alpha:
        from .teacher import train_teacher

        teacher = train_teacher(train_set, cfg.teacher, len(classes), cfg.seed, log).to(device)
    history, best, start = [], {"epoch": -1, "val_accuracy": -1.0}, 0
    if resume and os.path.exists(os.path.join(folder, "checkpoint.json")):
        meta = _load_checkpoint(folder, net, opt, gen)
        history, best, start = meta["history"], meta["best"], meta["epoch"] + 1
        log(f"resumed {folder} after epoch {meta['epoch'] + 1}")
    stop = cfg.optim.epochs if stop_after is None else min(cfg.optim.epochs, start + stop_after)
    for epoch in range(start, stop):
        t0 = time.perf_counter()
        bar = terminal_bar(len(train_set), f"epoch {epoch + 1}/{cfg.optim.epochs}", "rec")
        tr = fit_epoch(net, opt, train_set, cfg.optim, gen, epoch, teacher,
                       None if bar is None else lambda n, loss: (bar.update(n), bar.set_postfix(loss=f"{loss:.3f}")),
                       device)
        if bar is not None:
            bar.close()
        va = evaluate(net, val_set, device=device)
        row = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
               "val_loss": va["loss"], "val_accuracy": va["accuracy"], "seconds": time.perf_counter() - t0}
        history.append(row)
        log(json.dumps(row))
        if improves(row, best, history):
            best = {"epoch": epoch + 1, "val_accuracy": va["accuracy"], "val_loss": va["loss"]}
            export(net, cfg, spec, classes, os.path.join(folder, "model"), best, history)
        _save_checkpoint(folder, net, opt, gen, epoch, history, best)
        plot_curves(history, os.path.join(folder, "curves.png"))
    return os.path.join(folder, "model")


def export(net, cfg: TrainConfig, spec: InputSpec, classes, out: str, best: dict, history) -> str:
    """Write the inference model (PLIF as LIF) with what produced it in its meta."""
    inf = arch.inference_network(net)
    model = Model(name=cfg.name, task="classification", classes=tuple(classes), input=spec, network=inf,
                  decision=cfg.decision,
                  meta={"trained_epochs": len(history), "best": best, "seed": cfg.seed,
                        "config": os.path.basename(cfg.path or "")})
    return save_model(out, model)
