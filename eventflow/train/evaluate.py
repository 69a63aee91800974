"""``eventflow eval``: accuracy and efficiency of a model on a dataset, through the sparse kernels.

DATA is ``gesture:DIR`` or ``digits:DIR`` (simulated sets made by ``eventflow dataset make``),
``nmnist:DIR`` (a folder of N-MNIST .bin/.bs2 files with one ``*.txt`` list of ``sample class``
lines, or the real N-MNIST layout with Test/<digit>/), or ``dvsgesture:DIR`` (DVS128 Gesture's test
trials: each labelled gesture a recording from its labelled start, the trial's clock before it dropped).
Each recording runs from rest over its whole length; the prediction is the class of the mean
output over its labelled steps (the gesture's interval; the whole recording otherwise).
``streaming_commits`` replays recordings step by step through the model's decision rule and
measures when it commits after a gesture's onset.
"""
from __future__ import annotations

import glob
import os

import numpy as np
import torch

from ..model import Model
from .data import EncodedSet, Limited, concat, encode_dataset, recording_name
from .metrics import EfficiencyCounter

__all__ = ["commit_summary", "encoded_data", "evaluate_model", "first_commits", "open_eval_data", "run_outputs",
           "streaming_commits"]


def open_eval_data(uri: str, train: bool = False):
    """``(dataset, interval function or None)`` for a DATA argument; ``train`` picks the real
    datasets' training part (N-MNIST Train/, DVS128 Gesture's training trials) instead of the test part."""
    from .. import datasets as D

    kind, sep, root = uri.partition(":")
    if not sep or not root:
        raise ValueError(f"DATA {uri!r}: expected KIND:DIR with KIND one of gesture, digits, nmnist, dvsgesture")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"DATA {uri!r}: no folder {root}")
    if kind == "gesture":
        ds = D.SimGesture(root)
        return ds, lambda i: first_interval(ds.ground_truth(i))
    if kind == "digits":
        return D.SimDigits(root), None
    if kind == "nmnist":
        lists = sorted(glob.glob(os.path.join(root, "*.txt")))
        if len(lists) == 1:
            return D.NMNIST.from_list(root, lists[0]), None
        part = "Train" if train else "Test"
        if os.path.isdir(os.path.join(root, part)):
            return D.NMNIST(root, train=train), None
        raise ValueError(f"DATA {uri!r}: expected one *.txt list of 'sample class' lines in {root} "
                         f"(found {len(lists)}) or a {part}/ folder")
    if kind == "dvsgesture":   # (each gesture a recording from its labelled start, not from the trial's)
        ds = D.DVSGesture(root, train=train, from_start=True)
        return ds, ds.interval
    raise ValueError(f"DATA {uri!r}: unknown kind {kind!r}; expected gesture, digits, nmnist or dvsgesture")


def first_interval(labels):
    """The first labelled gesture's (t_start, t_end) in us, or None."""
    return (int(labels["t_start"][0]), int(labels["t_end"][0])) if len(labels) else None


def run_outputs(model: Model, data: EncodedSet, fast: bool = True, batch_size: int = 32,
                counter: EfficiencyCounter | None = None) -> np.ndarray:
    """Per-step outputs ``[N, S, C]`` of every recording from rest (sparse kernels or torch reference);
    in a joined set (``data.concat``) the steps past a recording's ``lengths()`` are its padding.

    With ``counter``, each batch is also counted for the efficiency figures: through the sparse
    kernels step by step with their spikes traced (so the torch network does not run a second
    time), or, with the torch reference, by ``counter.add`` itself.
    """
    outs = []
    if fast:
        from ..snn.fast import FastNetwork

        net = FastNetwork.from_network(model.network)
    for b in range(0, len(data), batch_size):
        x = data.x[b:b + batch_size].float().transpose(0, 1).contiguous()   # [T, B, ...]
        if fast and counter is not None:
            y, _, traced = net.run(x.numpy(), net.init_state(x.shape[1]), trace=True)
            counter.add(x, {name: torch.from_numpy(sp) for name, sp in traced.items()})
        elif fast:
            y, _ = net.run(x.numpy(), net.init_state(x.shape[1]))
        else:
            with torch.no_grad():
                y, _ = model.network.run(x, model.network.init_state(x.shape[1]))
            y = y.numpy()
            if counter is not None:
                counter.add(x)
        outs.append(np.asarray(y).transpose(1, 0, 2))
    return np.concatenate(outs)


def _predictions(outputs, data: EncodedSet) -> np.ndarray:
    m = data.label_mask().numpy()
    mean = (outputs * m[..., None]).sum(1) / np.maximum(m.sum(1), 1)[:, None]
    return mean.argmax(1)


def first_commits(model: Model, outputs: np.ndarray, data: EncodedSet, onset_us, decision=None):
    """Replay each recording's outputs (encoded from t = 0), from rest, through the decision
    rule (``decision``, default the model's): the first window, from the one holding the
    gesture's onset ``onset_us[i]`` on, where the rule fires (``DecisionSpec.replay``; whatever
    it committed to before the onset does not count). Returns ``(delay_ms, correct, later)``,
    each ``[N]``: the delay from the onset to the end of that window (NaN where the rule never
    fires), whether it committed to the labelled class, and how many decisions the rule made
    after that, to the recording's end (``replay``'s ``decided``: each is a decision the pipeline
    prints: the rule changing its mind, mostly as the arms ease out of a gesture, or deciding the
    same class again after the output went undecided)."""
    decision = model.decision if decision is None else decision
    W = model.input.window_us
    lengths = data.lengths()   # (a set joined from splits of different lengths is padded after each recording)
    delay_ms = np.full(len(data), np.nan)
    correct = np.zeros(len(data), bool)
    later = np.zeros(len(data), np.int64)
    for i in range(len(data)):
        _, committed, fires, decided, _ = decision.replay(outputs[i, :int(lengths[i])], decision.init_state(outputs.shape[2]))
        start_us = int(onset_us[i])
        onset = start_us // W   # the window holding it
        at = np.flatnonzero(fires[onset:])
        if len(at):
            k = onset + int(at[0])
            delay_ms[i] = ((k + 1) * W - start_us) / 1000.0   # to the end of window k
            correct[i] = committed[k] == int(data.y[i])
            later[i] = int(np.count_nonzero(decided[k + 1:]))
    return delay_ms, correct, later


def commit_summary(delay_ms: np.ndarray, correct: np.ndarray, later: np.ndarray | None = None) -> dict:
    """The streaming figures of ``first_commits``' per-recording results: shares of first commits
    correct / wrong / never, of correct ones within 300 ms of the onset (``correct_within_300ms``)
    and of any within 300 ms (``committed_within_300ms``), the spread of the delays to correct
    first commits (``commit_latency_ms``) and to all first commits (``first_commit_latency_ms``),
    and (given ``later``) the mean number of later decisions per recording (``later_decisions``)."""
    n = len(delay_ms)
    fired = ~np.isnan(delay_ms)
    lat, first_lat = delay_ms[fired & correct], delay_ms[fired]

    def spread(x):
        return {"p50": float(np.percentile(x, 50)), "p90": float(np.percentile(x, 90)),
                "max": float(x.max())} if len(x) else None
    out = {"first_commit_correct": int((fired & correct).sum()) / n,
           "first_commit_wrong": int((fired & ~correct).sum()) / n,
           "never_committed": int((~fired).sum()) / n,
           "correct_within_300ms": float((lat <= 300.0).sum() / n),
           "committed_within_300ms": float((first_lat <= 300.0).sum() / n),
           "commit_latency_ms": spread(lat),            # onset to a correct first commit
           "first_commit_latency_ms": spread(first_lat)}   # onset to the first commit, right or wrong
    if later is not None:
        out["later_decisions"] = float(np.mean(later))
    return out


def streaming_commits(model: Model, outputs: np.ndarray, data: EncodedSet, onset_us, decision=None) -> dict:
    """``commit_summary`` of ``first_commits``: when (and how right) the decision rule first
    commits after each recording's onset, over the set."""
    return commit_summary(*first_commits(model, outputs, data, onset_us, decision))


def encoded_data(model: Model, uri, limit=None):
    """Every recording of DATA ``uri`` (or of each of a list of DATA, joined by ``data.concat``)
    encoded by the model's input spec: ``(data, onsets)``, ``onsets`` the labelled gestures'
    start times (us, ``[N]`` int64) or None (when any DATA has none)."""
    if not isinstance(uri, str):
        parts = [encoded_data(model, u, limit) for u in uri]
        onsets = [o for _, o in parts]
        return (concat([d for d, _ in parts]),
                None if any(o is None for o in onsets) else np.concatenate(onsets))
    ds, interval = open_eval_data(uri)
    check_fits(model, ds, uri)
    if limit is not None:
        ds = Limited(ds, limit)
    data = encode_dataset(ds, model.input, None, interval, desc="encode")
    onsets = None if interval is None else np.array([_onset(ds, interval, i, uri) for i in range(len(data))], np.int64)
    return data, onsets


def check_fits(model: Model, ds, uri: str) -> None:
    """Refuse DATA whose sensor is not the model's, or whose classes the model does not have (a 34x34
    model on 128x128 recordings would drop most events and score at chance, without a word)."""
    size = tuple(getattr(ds, "sensor_size", ())[:2])
    if size and size != tuple(model.input.sensor_size):
        raise ValueError(f"DATA {uri!r}: recordings from a {size[0]}x{size[1]} sensor, but model {model.name!r} "
                         f"takes {model.input.sensor_size[0]}x{model.input.sensor_size[1]} (input.sensor_size)")
    classes = getattr(ds, "classes", None)
    if classes is not None and len(classes) != len(model.classes):
        raise ValueError(f"DATA {uri!r}: {len(classes)} classes, but model {model.name!r} has {len(model.classes)}")


def _onset(ds, interval, i: int, uri: str) -> int:
    iv = interval(i)
    if iv is None:
        raise ValueError(f"{uri}: {recording_name(ds, i)}: its labels list no gesture (the streaming figures need one)")
    return int(iv[0])


def evaluate_model(model: Model, uri: str, fast: bool = True, check_reference: bool = False, limit=None) -> dict:
    if not isinstance(uri, str):   # (a joined set's padding would count in the efficiency figures)
        raise TypeError(f"evaluate_model: one DATA string, got {type(uri).__name__}")
    unavailable = None
    if fast:   # (as the pipeline's backend auto: a network the sparse kernels cannot run runs on the torch reference)
        from ..snn.fast import FastNetwork

        try:
            FastNetwork.from_network(model.network)
        except NotImplementedError as e:
            fast, unavailable = False, str(e)
            if check_reference:
                raise ValueError(f"model {model.name!r}: --check compares the sparse kernels with the torch "
                                 f"reference, but the sparse kernels cannot run this network ({e})") from None
    data, onsets = encoded_data(model, uri, limit)
    counter = EfficiencyCounter(model.network)
    outputs = run_outputs(model, data, fast, batch_size=8 if fast else 32, counter=counter)
    pred = _predictions(outputs, data)
    y = data.y.numpy()
    result = {"model": model.name, "data": uri, "n": int(len(y)), "accuracy": float((pred == y).mean()),
              "kernels": "sparse" if fast else "torch"}
    if unavailable is not None:
        result["sparse_kernels_unavailable"] = unavailable
    result.update(counter.result())
    if check_reference:
        ref = _predictions(run_outputs(model, data, not fast), data)
        result["reference_agreement"] = float((ref == pred).mean())
    if onsets is not None:
        result["streaming"] = streaming_commits(model, outputs, data, onsets)
    return result
