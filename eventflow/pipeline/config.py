"""A pipeline description: frozen dataclasses read from YAML, validated with precise errors.

The description is a value (``PipelineConfig``); ``eventflow.pipeline.build(config)`` turns it
into a running instance that owns sockets, files and threads. Every key has a type; an unknown
key, a wrong type or a missing file raises ``ValueError`` naming its path (``model.backend``)
and, where one is involved, the file.

``DEFAULT_CONFIG`` is the embedded default (``configs/default.yaml`` holds the same content):
replay the bundled sample through the shipped ``gesture-snn`` model, one JSON line per decision.

>>> cfg = from_dict({"source": {"uri": "sim:gesture"}, "runner": {"queue_windows": 4}})
>>> cfg.runner.queue_windows, cfg.model.name
(4, 'gesture-snn')
>>> with_overrides(cfg, ["source.realtime=2.5", "sinks=[jsonl:-]"]).source.realtime
2.5
>>> from_dict({"runner": {"drop": "x"}})
Traceback (most recent call last):
...
ValueError: runner.drop: unknown key (known: mode, drop_policy, queue_batches, queue_windows, stream, progress)
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field

from ..schema import from_mapping

__all__ = ["DEFAULT_CONFIG", "HeadConfig", "ModelConfig", "PipelineConfig", "RunnerConfig", "SourceConfig",
           "from_dict", "load_config", "with_overrides"]

DROP_POLICIES = ("none", "drop_oldest", "latest_only")
RUNNER_MODES = ("auto", "sync", "async")
BACKENDS = ("auto", "fast", "torch", "gpu")
EMIT = ("decisions", "windows")


@dataclass(frozen=True)
class SourceConfig:
    """Where events come from. ``uri``: a path / ``file:PATH``, ``sim:SCENE[?seed=..&seconds=..]``,
    ``-`` / ``stdin:`` (raw EventCD bytes), or a network URI (``zmq+tcp://``, ``udp://``,
    ``dv+tcp://``, ``camera:``). ``realtime``: pace file/sim replay at this factor of real time
    (None: as fast as possible). ``batch_us``: sensor time per paced batch. ``chunk_events``: the
    largest array a file is read in; an unpaced replay hands on batches of the reader's arrays
    joined up to this many events or 2 s of sensor time. ``width``/``height``:
    geometry where the source does not state it. ``origin_us``: the first window's start
    (None: the stream's first event). ``max_gap_us``: a gap in event time longer than this is a
    clock jump: a lone event that far ahead or behind is rejected (``time_jump``); a jump the next
    event confirms skips the gap's windows and restarts the stream's model and head from rest
    (None: no limit; every empty window of a gap is stepped). Until an event is accepted the gap
    is measured from the origin (the open window's start): a stream that starts more than this
    after ``origin_us``, or after a rejected first event, re-anchors there. ``options``: passed to
    network/camera sources."""

    uri: str = "sample"
    realtime: float | None = None
    batch_us: int = 1000
    chunk_events: int = 1 << 18
    width: int | None = None
    height: int | None = None
    origin_us: int | None = None
    max_gap_us: int | None = 10_000_000
    options: dict = field(default_factory=dict)

    @property
    def clocked(self) -> bool:
        """Whether events come on a clock: a live source (network, camera) or a paced replay
        (``realtime``); otherwise a replay as fast as possible."""
        from .sources import is_live_uri

        return is_live_uri(self.uri) or self.realtime is not None


@dataclass(frozen=True)
class ModelConfig:
    """``name``: a shipped model's name, a model folder or a model.json path. ``backend``:
    ``fast`` (numba event-driven kernels), ``torch`` (reference), ``auto`` (fast where the
    network's layers allow it), ``gpu`` (``GpuNetwork`` on the CUDA GPU: fused Triton neuron
    kernels, CUDA graphs; refused without one). ``threads``: numba/torch threads (None: leave as is)."""

    name: str = "gesture-snn"
    backend: str = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class HeadConfig:
    """``emit``: ``decisions`` (classification: a result where the decision rule decides: the
    committed class is first reached or changes, or the same class is committed again after the
    output went to rest, as a gesture made again after a rest; detection: a result for each
    window with a box) or ``windows`` (a result per window; classification's ``committed`` says
    whether the rule committed there). A flow model gives a result per window either way.
    Overrides of the model's head spec (None: the model's): ``smoothing_steps`` /
    ``commit_probability`` / ``switch_probability`` / ``release_probability`` (classification,
    its DecisionSpec), ``score_threshold`` / ``iou_threshold`` / ``max_boxes`` (detection, its DetectionSpec)."""

    emit: str = "decisions"
    smoothing_steps: int | None = None
    commit_probability: float | None = None
    switch_probability: float | None = None
    release_probability: float | None = None
    score_threshold: float | None = None
    iou_threshold: float | None = None
    max_boxes: int | None = None


@dataclass(frozen=True)
class RunnerConfig:
    """``mode``: ``sync`` (deterministic, no threads), ``async`` (threads, bounded queues),
    ``auto`` (async for network/camera sources and paced replay, else sync). ``drop_policy``
    (async only): ``none`` (lossless backpressure), ``drop_oldest``, ``latest_only``; None:
    ``none`` for replay, ``drop_oldest`` for live sources. ``stream``: the results' stream id."""

    mode: str = "auto"
    drop_policy: str | None = None
    queue_batches: int = 64
    queue_windows: int = 8
    stream: str = "0"
    progress: bool = False


@dataclass(frozen=True)
class PipelineConfig:
    source: SourceConfig = SourceConfig()
    model: ModelConfig = ModelConfig()
    head: HeadConfig = HeadConfig()
    sinks: tuple = ("jsonl:-",)
    runner: RunnerConfig = RunnerConfig()


DEFAULT_CONFIG = {
    "source": {"uri": "sample"},
    "model": {"name": "gesture-snn", "backend": "auto"},
    "head": {"emit": "decisions"},
    "sinks": ["jsonl:-"],
    "runner": {"mode": "auto"},
}

_CHOICES = {"model.backend": BACKENDS, "head.emit": EMIT, "runner.mode": RUNNER_MODES,
            "runner.drop_policy": DROP_POLICIES}


def _check_ranges(c: PipelineConfig):
    def need(ok, key, what, v):
        if not ok:
            raise ValueError(f"{key}: expected {what}, got {v!r}")
    for i, uri in enumerate(c.sinks):
        need(isinstance(uri, str), f"sinks[{i}]", "a sink URI (a string)", uri)
    need(c.source.realtime is None or c.source.realtime > 0, "source.realtime", "a factor > 0", c.source.realtime)
    need(c.source.batch_us > 0, "source.batch_us", "> 0", c.source.batch_us)
    need(c.source.chunk_events > 0, "source.chunk_events", "> 0", c.source.chunk_events)
    # (source.max_gap_us is checked by the window stage, which knows the model's window length)
    need(c.runner.queue_batches > 0, "runner.queue_batches", "> 0", c.runner.queue_batches)
    need(c.runner.queue_windows > 0, "runner.queue_windows", "> 0", c.runner.queue_windows)
    sp = c.head.smoothing_steps
    need(sp is None or sp > 0, "head.smoothing_steps", "> 0", sp)
    cp = c.head.commit_probability
    need(cp is None or 0 < cp <= 1, "head.commit_probability", "a probability in (0, 1]", cp)
    sw = c.head.switch_probability
    need(sw is None or 0 < sw <= 1, "head.switch_probability", "a probability in (0, 1]", sw)
    rp = c.head.release_probability
    need(rp is None or 0 <= rp <= 1, "head.release_probability", "a probability in [0, 1]", rp)
    st = c.head.score_threshold
    need(st is None or 0 < st <= 1, "head.score_threshold", "a score in (0, 1]", st)
    it = c.head.iou_threshold
    need(it is None or 0 <= it <= 1, "head.iou_threshold", "an IoU in [0, 1]", it)
    mb = c.head.max_boxes
    need(mb is None or 1 <= mb <= 10_000, "head.max_boxes", "1..10000", mb)
    need(len(c.sinks) > 0, "sinks", "at least one sink URI", list(c.sinks))
    if c.model.threads is not None:
        import numba

        most = numba.config.NUMBA_NUM_THREADS
        need(1 <= c.model.threads <= most, "model.threads", f"1..{most} (the threads numba started with here)",
             c.model.threads)


def from_dict(d: dict, where: str = "") -> PipelineConfig:
    """A validated ``PipelineConfig``; ``where`` (a file name) prefixes error messages."""
    try:
        cfg = from_mapping(PipelineConfig, d or {}, choices=_CHOICES)
        _check_ranges(cfg)
    except ValueError as e:
        raise ValueError(f"{where}: {e}" if where else str(e)) from None
    return cfg


def load_config(path: str | None) -> PipelineConfig:
    """The config in a YAML file; ``None``: the embedded default."""
    if path is None:
        return from_dict(DEFAULT_CONFIG)
    import yaml

    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            d = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({e})") from None
    return from_dict(d if d is not None else {}, path)


def to_dict(cfg) -> dict:
    """Plain data (lists for tuples) of a config, as YAML would hold it."""
    d = dataclasses.asdict(cfg)
    d["sinks"] = list(d["sinks"])
    return d


def with_overrides(cfg: PipelineConfig, assignments) -> PipelineConfig:
    """``cfg`` with ``key.sub=value`` assignments applied, values parsed as YAML scalars and
    checked against the schema (``source.realtime=2``, ``sinks=[jsonl:-, hdf5:out.h5]``)."""
    import yaml

    d = to_dict(cfg)
    for a in assignments:
        if "=" not in a:
            raise ValueError(f"--set {a!r}: expected key.sub=value")
        key, text = a.split("=", 1)
        path = key.strip().split(".")
        node, cls = d, PipelineConfig
        for i, part in enumerate(path):
            hints = typing.get_type_hints(cls)
            if part not in hints:
                raise ValueError(f"--set {key}: unknown key {'.'.join(path[:i + 1])!r}")
            if i == len(path) - 1:
                if dataclasses.is_dataclass(hints[part]):
                    raise ValueError(f"--set {key}: {key.strip()!r} is a section; set one of its keys, "
                                     f"e.g. {key.strip()}.{next(iter(typing.get_type_hints(hints[part])))}=...")
                if hints[part] is str or hints[part] == (str | None):
                    value = text.strip()  # strings are taken as typed, never parsed (a URI like 'sim:gesture'
                else:                     # or a path starting with '@' is not YAML)
                    try:
                        value = yaml.safe_load(text) if text.strip() else None
                    except yaml.YAMLError as e:
                        raise ValueError(f"--set {key}: cannot parse {text!r} ({e})") from None
                node[part] = value
            else:
                if not dataclasses.is_dataclass(hints[part]):
                    raise ValueError(f"--set {key}: {'.'.join(path[:i + 1])!r} has no sub-keys")
                node, cls = node[part], hints[part]
    return from_dict(d, "--set")
