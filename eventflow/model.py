"""Trained models as files: architecture and input encoding as JSON, weights as safetensors.

A model folder holds ``model.json`` (what the network is, what input it takes, what its
outputs mean), ``model.safetensors`` (the weights, flat ``layer.param`` keys) and a card
(``README.md``). Loading never unpickles: the JSON names only known layer types
(``eventflow.snn.spec_io``) and the weights are plain tensors.

``load_model(NAME_OR_PATH)`` accepts a shipped model's name (a folder of ``models/``,
installed as ``eventflow.models``), a model folder, or a ``model.json`` path.

``InputSpec`` is the one definition of how events become the network's input, used alike by
training, evaluation and the pipeline: events from a ``sensor_size`` camera, mapped to
``input_size`` (integer-exact downsampling), binned per ``window_us`` window into 2 channels
(0: OFF, 1: ON) of counts, optionally binary, scaled and clipped.

>>> spec = InputSpec(sensor_size=(128, 128), input_size=(32, 32), window_us=10_000)
>>> import eventflow
>>> ev = eventflow.from_fields(x=[0, 127, 127], y=[0, 127, 127], p=[1, 0, 0], t=[5, 15_000, 15_001])
>>> x = spec.encode(ev, t_start_us=0, n_steps=2)
>>> x.shape, float(x[0, 1, 0, 0]), float(x[1, 0, 31, 31])
((2, 2, 32, 32), 1.0, 2.0)
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from .events import as_events
from .heads import MAX_DETECTION_CLASSES, TASKS, DetectionSpec, FlowSpec
from .schema import check_count, check_number, from_mapping
from .snn.network import Network
from .snn.spec_io import spec_from_dict, spec_to_dict

__all__ = ["FORMAT", "DecisionSpec", "DecisionState", "InputSpec", "Model", "list_models", "load_model", "model_dir", "save_model"]

FORMAT = "eventflow-model/1"
#: safetensors dtypes a model's weights may be stored in (cast to the network's float32 on load)
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


#: a sensor's side at most (event coordinates are u16) and an input's pixels at most (2048 x 2048):
#: one step's input, two channels of float32, takes at most 32 MiB
MAX_SENSOR_SIDE = 65536
MAX_INPUT_PIXELS = 1 << 22


def _pair(v, key):
    if not (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_SENSOR_SIDE for i in v)):
        raise ValueError(f"{key}: expected [width, height] as two integers in 1..{MAX_SENSOR_SIDE}, got {v!r}")
    return (int(v[0]), int(v[1]))


@dataclass(frozen=True)
class InputSpec:
    """How events become one network input per time step (see the module docstring)."""

    sensor_size: tuple[int, int]
    input_size: tuple[int, int]
    window_us: int
    encoding: str = "counts"       # "counts" or "binary"
    scale: float = 1.0             # counts times scale ...
    clip: float | None = None      # ... then clipped at clip

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", _pair(list(self.sensor_size), "input.sensor_size"))
        object.__setattr__(self, "input_size", _pair(list(self.input_size), "input.input_size"))
        if not (isinstance(self.window_us, int) and self.window_us > 0):
            raise ValueError(f"input.window_us: expected a positive integer, got {self.window_us!r}")
        if self.encoding not in ("counts", "binary"):
            raise ValueError(f"input.encoding: expected 'counts' or 'binary', got {self.encoding!r}")
        if self.input_size[0] * self.input_size[1] > MAX_INPUT_PIXELS:
            raise ValueError(f"input.input_size {list(self.input_size)}: {self.input_size[0] * self.input_size[1]:,} "
                             f"pixels, more than the {MAX_INPUT_PIXELS:,} an input may have")
        if any(i > s for i, s in zip(self.input_size, self.sensor_size)):
            raise ValueError(f"input.input_size {self.input_size} is larger than input.sensor_size {self.sensor_size}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"input.scale: expected a finite number > 0, got {self.scale!r}")
        if self.clip is not None and not (isinstance(self.clip, (int, float)) and math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"input.clip: expected a finite number > 0 or null, got {self.clip!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """One step's input shape: (2, height, width)."""
        return (2, self.input_size[1], self.input_size[0])

    def encode(self, events, t_start_us: int, n_steps: int) -> np.ndarray:
        """float32 ``[n_steps, 2, h, w]``: step k holds the events with
        ``t_start_us + k * window_us <= t < t_start_us + (k + 1) * window_us``; others are ignored."""
        ev = as_events(events)
        (W, H), (w, h) = self.sensor_size, self.input_size
        k = (ev["t"] - int(t_start_us)) // self.window_us
        keep = (k >= 0) & (k < n_steps) & (ev["x"] < W) & (ev["y"] < H)
        x = ev["x"][keep].astype(np.int64) * w // W
        y = ev["y"][keep].astype(np.int64) * h // H
        p = (ev["p"][keep].astype(np.int64) & 0xFFFF) != 0
        flat = ((k[keep] * 2 + p) * h + y) * w + x
        out = np.bincount(flat, minlength=n_steps * 2 * h * w).astype(np.float32).reshape(n_steps, 2, h, w)
        return self._finish(out)

    def _finish(self, out):
        if self.encoding == "binary":
            return (out > 0).astype(np.float32)
        if self.scale != 1.0:
            out *= np.float32(self.scale)
        if self.clip is not None:
            np.minimum(out, np.float32(self.clip), out=out)
        return out


@dataclass(frozen=True)
class DecisionSpec:
    """When a stream of per-step class scores becomes a decision: the softmax of the mean
    logits over the last ``smoothing_steps`` steps, committed once its top probability
    reaches ``commit_probability``; ``background`` names a class index that never commits.

    Once committed, the stream holds its class until another one reaches
    ``switch_probability`` (None: ``commit_probability``), unless it has been released since:
    its top probability fell below ``release_probability`` (the output went undecided, as at
    rest between gestures) or its top class was the background class, after which
    ``commit_probability`` is enough again. With a switch
    probability above the commit one, a gesture's own class is committed as soon as before,
    while the weaker evidence of the arms easing out of it back to rest does not change it; a
    confident correction of a wrong commit still does. A commit after a release is a new
    decision even in the class held (``replay``'s ``decided``): the same gesture made again
    after a rest is told again. The release is tracked with or without the hold.
    """

    smoothing_steps: int = 10
    commit_probability: float = 0.8
    background: int | None = None
    switch_probability: float | None = None
    release_probability: float = 0.0

    MAX_SMOOTHING_STEPS = 10_000   # (a ring of this many steps' outputs is kept per stream)
    STEPWISE_MAX = 4               # (replay: up to this many steps, step by step even without the hold)

    def __post_init__(self):
        def whole(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

        check_count(self.smoothing_steps, "decision.smoothing_steps", self.MAX_SMOOTHING_STEPS)
        check_number(self.commit_probability, "decision.commit_probability", 0, 1)
        if self.background is not None and not (whole(self.background) and self.background >= 0):
            raise ValueError(f"decision.background: expected a class index >= 0 or null, got {self.background!r}")
        if self.switch_probability is not None:   # (at or below the commit probability: no hold)
            check_number(self.switch_probability, "decision.switch_probability", 0, 1)
        check_number(self.release_probability, "decision.release_probability", 0, 1, lo_open=False)

    @property
    def holds(self) -> bool:
        """Whether a committed class is harder to replace than to commit to (``switch_probability``
        above ``commit_probability``; at or below it, or None, the rule is the plain one): the rule
        then depends on the stream's past, not only on the current probabilities."""
        return self.switch_probability is not None and self.switch_probability > self.commit_probability

    def init_state(self, n_classes: int, batch: int = 1) -> "DecisionState":
        return DecisionState(np.zeros((batch, self.smoothing_steps, n_classes), np.float32),
                             np.zeros(batch, np.int64), np.full(batch, -1, np.int64), np.ones(batch, bool))

    def fires(self, prob: np.ndarray):
        """``(top class, whether it reaches commit_probability)`` per row of probabilities ``[n, C]``
        (never for the background class): where a stream with nothing committed, or released,
        commits (a committed, unreleased one needs ``switch_probability`` to change; ``replay``)."""
        top = prob.argmax(1)
        ok = prob[np.arange(len(top)), top] >= self.commit_probability
        if self.background is not None:
            ok &= top != self.background
        return top, ok

    def _softmax_of_means(self, rings, steps):
        mean = rings.sum(-2) / steps
        z = np.exp(mean - mean.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)

    def _rest(self, prob, top):
        """Where the output is at rest: its top probability below ``release_probability``, or the
        background class on top."""
        rest = prob[np.arange(len(top)), top] < self.release_probability
        if self.background is not None:
            rest |= top == self.background
        return rest

    def _commit(self, prob, committed, released):
        """One step of the commit rule for a batch: ``(fired, committed, released)``."""
        top, ok = self.fires(prob)
        if self.holds:
            p_top = prob[np.arange(len(top)), top]
            ok &= (committed < 0) | released | (top == committed) | (p_top >= self.switch_probability)
        released = np.where(ok, False, released | self._rest(prob, top))
        return ok, np.where(ok, top, committed), released

    def step(self, logits, state: "DecisionState"):
        """One step's ``logits [B, C]``: ``(probabilities [B, C], committed class [B] or -1, state)``.

        Pure: the state (a ring of the last logits, steps seen, committed class, whether
        released) is returned new. A stream commits to class c when the softmax of its mean
        logits over the last ``smoothing_steps`` steps (fewer at the start) gives c at least
        ``commit_probability``; it keeps that class until another one takes over (see the class).
        """
        logits = np.asarray(logits, np.float32)
        ring = state.ring.copy()
        seen = state.seen + 1
        ring[:, (seen - 1) % self.smoothing_steps] = logits
        n = np.minimum(seen, self.smoothing_steps).astype(np.float32)[:, None]
        prob = self._softmax_of_means(ring, n)
        _, committed, released = self._commit(prob, state.committed, state.released)
        return prob, committed, DecisionState(ring, seen, committed, released)

    def run(self, logits, state: "DecisionState"):
        """``step`` over consecutive steps of one stream at once: ``logits [n, C]`` ->
        ``(probabilities [n, C], committed class [n] (-1: none yet), state after the last)``,
        the same numbers as n calls of ``step``.

        >>> d = DecisionSpec(smoothing_steps=2, commit_probability=0.6)
        >>> prob, committed, st = d.run(np.array([[0, 0], [3, 0], [0, 9]], np.float32), d.init_state(2))
        >>> committed.tolist(), int(st.seen[0])
        ([-1, 0, 1], 3)
        """
        prob, committed, _, _, state = self.replay(logits, state)
        return prob, committed, state

    def replay(self, logits, state: "DecisionState"):
        """``run``, also giving where the rule fired and where it decided: ``(probabilities [n, C],
        committed [n], fired [n] bool, decided [n] bool, state)``. ``fired[k]``: step k committed
        (a new class, or the one held). ``decided[k]``: step k made a decision, one a user is told
        of: the first commit, a change of class, or a commit after the stream was released (its
        output at rest since the last commit: below ``release_probability``, or the background
        class on top), so that the same gesture made again after a rest is decided again."""
        logits = np.asarray(logits, np.float32)
        n, size = len(logits), self.smoothing_steps
        if n == 0:
            none = np.zeros(0, bool)
            return np.zeros((0, logits.shape[1]), np.float32), np.zeros(0, np.int64), none, none, state
        seen0 = int(state.seen[0])
        # each step's ring is built, then the softmax of the means is taken for all steps together.
        # Window i's ring: slot s holds the latest step j <= seen0 + i with j = s (mod size), which is
        # logits[j - seen0] if j >= seen0, else what the state's ring holds in slot s
        slot = np.arange(size)
        last = seen0 + np.arange(n)[:, None]
        j = last - (last - slot) % size
        src = np.concatenate([state.ring[0], logits])
        rings = src[np.where(j >= seen0, size + j - seen0, slot)]
        ring = rings[-1].copy()
        steps = np.minimum(seen0 + 1 + np.arange(n), size).astype(np.float32)[:, None]
        prob = self._softmax_of_means(rings, steps)
        if self.holds or n <= self.STEPWISE_MAX:   # (with the hold each step's rule depends on the last;
            # without it, one step at a time is also the quicker way for the few windows of a live call)
            committed, fired, decided = np.empty(n, np.int64), np.empty(n, bool), np.empty(n, bool)
            c, r = state.committed[:1], state.released[:1]
            for k in range(n):
                c0, r0 = c[0], r[0]
                f, c, r = self._commit(prob[k:k + 1], c, r)
                committed[k], fired[k] = c[0], f[0]
                decided[k] = f[0] and (r0 or c[0] != c0)
            released = r.copy()
        else:   # (the rule fires on the current probabilities alone: all steps at once)
            top, fired = self.fires(prob)
            k = np.arange(n)
            last_ok = np.maximum.accumulate(np.where(fired, k, -1))
            committed = np.where(last_ok >= 0, top[np.maximum(last_ok, 0)], state.committed[0]).astype(np.int64)
            # released after step k: a rest since the last step that fired (or, with none, the state's)
            last_rest = np.maximum.accumulate(np.where(self._rest(prob, top) & ~fired, k, -1))
            after = np.where(last_ok >= 0, last_rest > last_ok, state.released[0] | (last_rest >= 0))
            before = np.concatenate((state.released[:1], after[:-1]))
            decided = (committed != np.concatenate((state.committed[:1], committed[:-1]))) | (fired & before)
            released = after[-1:].copy()
        return prob, committed, fired, decided, DecisionState(ring[None], np.array([seen0 + n], np.int64),
                                                              committed[-1:].copy(), released)


class DecisionState(NamedTuple):
    ring: np.ndarray        # [B, smoothing_steps, C] last logits
    seen: np.ndarray        # [B] steps seen
    committed: np.ndarray   # [B] committed class, -1 before the first commit
    released: np.ndarray    # [B] bool: the output was at rest (below release_probability, or background) since the last commit


@dataclass(frozen=True)
class Model:
    name: str
    task: str
    classes: tuple[str, ...]
    input: InputSpec
    network: Network
    decision: DecisionSpec = field(default_factory=DecisionSpec)
    meta: dict = field(default_factory=dict, compare=False)
    path: str | None = None
    detection: DetectionSpec = field(default_factory=DetectionSpec)   # (task "detection")
    flow: FlowSpec = field(default_factory=FlowSpec)                  # (task "flow")

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"model {self.name!r}: task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        _check_outputs(f"model {self.name!r}", self.task, tuple(self.network.out_shape), len(self.classes))

    def describe(self) -> dict:
        """The ``model.json`` content of this model."""
        d = {"format": FORMAT, "name": self.name, "task": self.task, "classes": list(self.classes),
             "input": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.input).items()},
             "decision": asdict(self.decision)}
        if self.task in ("detection", "flow"):
            d[self.task] = asdict(getattr(self, self.task))
        d.update({"network": spec_to_dict(self.network.spec), "meta": self.meta})
        return d


def model_dir(name_or_path: str) -> str:
    """The folder of a shipped model name, a model folder, or the folder of a model.json path."""
    p = os.fspath(name_or_path)
    if os.path.isfile(p):
        return os.path.dirname(os.path.abspath(p))
    if os.path.isdir(p):
        return p
    from .models import MODELS_DIR

    shipped = os.path.join(MODELS_DIR, p)
    if os.sep not in p and os.path.isfile(os.path.join(shipped, "model.json")):
        return shipped
    raise FileNotFoundError(f"no model {p!r}: not a model folder or model.json, and not a shipped model "
                            f"(shipped: {', '.join(list_models()) or 'none'})")


def list_models() -> list[str]:
    """Names of the shipped models."""
    from .models import MODELS_DIR

    return sorted(d for d in os.listdir(MODELS_DIR) if os.path.isfile(os.path.join(MODELS_DIR, d, "model.json")))


def _require(d, key, where, kind):
    if key not in d:
        raise ValueError(f"{where}: missing key {key!r}")
    if not isinstance(d[key], kind):
        raise ValueError(f"{where}.{key}: expected {kind.__name__ if isinstance(kind, type) else kind}, "
                         f"got {type(d[key]).__name__}")
    return d[key]


def load_model(name_or_path: str) -> Model:
    """The model in a folder (``model.json`` + ``model.safetensors``), in eval mode."""
    from safetensors import SafetensorError, safe_open

    folder = model_dir(name_or_path)
    jpath = os.path.join(folder, "model.json")
    try:
        with open(jpath, encoding="utf-8") as f:
            d = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{jpath}: not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{jpath}: expected a JSON object at the top, got {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise ValueError(f"{jpath}: format {d.get('format')!r} is not {FORMAT!r}")
    task = d.get("task", "classification")
    if task not in TASKS:   # (before the network is built; Model checks it again)
        raise ValueError(f"{jpath}: task: expected one of {', '.join(TASKS)}, got {task!r}")
    ispec = from_mapping(InputSpec, _require(d, "input", jpath, dict), jpath, key="input")
    decision = from_mapping(DecisionSpec, d.get("decision", {}), jpath, key="decision")
    detection = from_mapping(DetectionSpec, d.get("detection", {}), jpath, key="detection")
    flow = from_mapping(FlowSpec, d.get("flow", {}), jpath, key="flow")
    classes = tuple(_require(d, "classes", jpath, list))
    for i, c in enumerate(classes):
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"{jpath}: classes[{i}]: expected a class name (a non-empty string), got {c!r}")
    if decision.background is not None and decision.background >= len(classes):
        raise ValueError(f"{jpath}: decision.background: {decision.background} is not a class index "
                         f"(there are {len(classes)} classes)")
    try:
        spec = spec_from_dict(_require(d, "network", jpath, dict), f"{jpath}: network")
    except (TypeError, AttributeError, KeyError) as e:   # (ValueErrors name their place themselves)
        raise ValueError(f"{jpath}: network: not a valid network description ({type(e).__name__}: {e})") from None

    def build():
        try:
            return Network(spec, ispec.shape, generator=torch.Generator().manual_seed(0))
        except (ValueError, TypeError, AttributeError, ZeroDivisionError, RuntimeError) as e:
            raise ValueError(f"{jpath}: network cannot be built ({type(e).__name__}: {e})") from None

    # The network is built without memory (torch's meta device) and checked against the weights
    # file's header before any storage is allocated: model.json's sizes never allocate more than
    # the weights file holds. Then the storage is allocated once and filled from the one open file.
    wpath = os.path.join(folder, "model.safetensors")
    with torch.device("meta"):
        net = build()
    needed = dict(net.weights.named_parameters())
    try:
        with safe_open(wpath, "pt") as f:
            slices = {k: f.get_slice(k) for k in f.keys()}
            for k, s in slices.items():
                if s.get_dtype() not in FLOAT_DTYPES:
                    raise ValueError(f"{wpath}: {k} is stored as {s.get_dtype()}; weights are "
                                     f"floating point ({', '.join(FLOAT_DTYPES)})")
            stored = {k: tuple(s.get_shape()) for k, s in slices.items()}
            if set(stored) != set(needed):
                missing, extra = sorted(set(needed) - set(stored)), sorted(set(stored) - set(needed))
                raise ValueError(f"{wpath}: weights do not match {jpath}'s network (missing {missing[:3]}, "
                                 f"unexpected {extra[:3]})")
            for k, shape in stored.items():
                if shape != tuple(needed[k].shape):
                    raise ValueError(f"{wpath}: {k} is shaped {shape}, the network needs {tuple(needed[k].shape)}")
            net.weights.to_empty(device="cpu")
            with torch.no_grad():
                for k, p in net.weights.named_parameters():
                    p.copy_(f.get_tensor(k))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{wpath}: not a readable safetensors file ({e})") from None
    try:   # (Model checks the task against the network's outputs)
        return Model(name=d.get("name", os.path.basename(folder)), task=task, classes=classes, input=ispec,
                     network=net.eval(), decision=decision, meta=d.get("meta", {}), path=folder,
                     detection=detection, flow=flow)
    except ValueError as e:
        raise ValueError(f"{jpath}: {e}") from None


def _check_outputs(where: str, task: str, out: tuple, n_classes: int) -> None:
    """The network's output shape fits the task (see ``eventflow.heads``)."""
    if task == "classification" and out != (n_classes,):
        raise ValueError(f"{where}: the network outputs {out} but {n_classes} classes are named")
    if task == "detection":
        if not 1 <= n_classes <= MAX_DETECTION_CLASSES:
            raise ValueError(f"{where}: a detection model names 1..{MAX_DETECTION_CLASSES} classes, got {n_classes}")
        if len(out) != 3 or out[0] != 5 + n_classes:
            raise ValueError(f"{where}: a detection network outputs a grid [5 + classes, height, width] = "
                             f"[{5 + n_classes}, h, w] for {n_classes} classes, this one {out}")
    if task == "flow" and (len(out) != 3 or out[0] != 2):
        raise ValueError(f"{where}: a flow network outputs [2, height, width] (dx, dy), this one {out}")


def save_model(folder: str, model: Model) -> str:
    """Write ``model.json`` and ``model.safetensors`` into ``folder`` (created); returns the folder."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.json"), "w", encoding="utf-8") as f:
        json.dump(model.describe(), f, indent=1)
        f.write("\n")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.network.weights.named_parameters()}
    save_file(tensors, os.path.join(folder, "model.safetensors"))
    return folder
