"""The running pipeline built from a description, and the two runners that drive it.

``build(config)`` makes a ``Pipeline``: the stages (source, decode, window, model, head, sinks)
of one stream, owning their resources. Two runners drive it:

- ``SyncRunner``: deterministic, no threads. ``step(events)`` pushes one array through and
  returns the results of the windows those events complete: its work is bounded by
  ``len(events)`` (decode, binning) plus one model step per completed window, i.e.
  ``(t_last - t_previous_last) / window_us + 1`` steps. ``run()`` replays the source to its
  end; ``finish()`` emits the last, incomplete window. Results do not depend on how the
  stream is cut into ``step`` calls.
- ``AsyncRunner`` (``eventflow.pipeline.runner_async``): a source thread and a window thread
  (or one thread doing both: ``window_thread=False``, what ``make_runner`` picks for live and
  paced sources) feed the model, head and sinks through bounded queues, with a drop policy
  for live sources.

Both warm up before they run (``warm_up``: every numba kernel loaded, on throwaway state), so
the first windows of a live stream are not late or dropped while kernels load.

Accounting (``runner.accounting()``, any time): events received = processed + dropped +
rejected + in flight, where in flight (queued, or waiting for their window to end) is counted
separately and is 0 once the run is over; ``balanced`` says whether the sums agree.
"""
from __future__ import annotations

import threading
import time

from .metrics import StageTimes
from .heads import DetectionHeadStage, FlowHeadStage
from .sinks import CallbackSink, Hdf5Sink, open_sink
from .sources import is_live_uri, open_source
from .stage import EndOfStream
from .stages import DecodeStage, HeadStage, ModelStage, WindowStage

__all__ = ["Pipeline", "SyncRunner", "build", "make_runner"]

STAGE_NAMES = ("decode", "window", "model", "head", "sink")


def _merge(*dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + int(v)
    return out


class Pipeline:
    """The stages of one stream (see ``build``); ``shutdown()`` releases them all."""

    def __init__(self, source, model, sinks, config):
        c = config
        self.config = config
        self.source = source
        self.model_info = model
        geom = source.geometry() if source is not None else None
        if geom is None and c.source.width is not None:
            geom = (c.source.width, c.source.height)
        if geom is None:
            geom = model.input.sensor_size
        if tuple(geom) != tuple(model.input.sensor_size):
            raise ValueError(f"source {c.source.uri!r} is {geom[0]}x{geom[1]} but model {model.name!r} takes "
                             f"{model.input.sensor_size[0]}x{model.input.sensor_size[1]} (input.sensor_size)")
        self.geometry = tuple(geom)
        self.decode = DecodeStage()
        self.window = WindowStage(model.input, c.source.origin_us, c.source.max_gap_us)
        self.model = ModelStage(model.network, c.model.backend)
        self.head = _head(model, c)
        self.sinks = list(sinks)

    def stages(self):
        return [self.decode, self.window, self.model, self.head]

    def shutdown(self):
        errors = []
        for s in ([self.source] if self.source is not None else []) + self.stages() + self.sinks:
            try:
                s.shutdown()
            except Exception as e:  # every stage gets its shutdown; the first error is raised after
                errors.append(e)
        if errors:
            raise errors[0]


_HEAD_KEYS = {"classification": ("smoothing_steps", "commit_probability", "switch_probability", "release_probability"),
              "detection": ("score_threshold", "iou_threshold", "max_boxes"), "flow": ()}


def _head(model, c):
    """The head stage of the model's task, with the config's ``head.*`` overrides of its spec."""
    from dataclasses import replace

    for task, keys in _HEAD_KEYS.items():
        for k in keys:
            if task != model.task and getattr(c.head, k) is not None:
                raise ValueError(f"head.{k}: applies to {task} models; model {model.name!r} is a {model.task} model")
    if model.task == "flow":
        return FlowHeadStage(model.flow, model.input.input_size, model.input.sensor_size, c.runner.stream)
    spec = model.detection if model.task == "detection" else model.decision
    overrides = {k: getattr(c.head, k) for k in _HEAD_KEYS[model.task] if getattr(c.head, k) is not None}
    spec = replace(spec, **overrides) if overrides else spec
    if model.task == "detection":
        return DetectionHeadStage(spec, model.classes, model.input.sensor_size, c.head.emit, c.runner.stream)
    return HeadStage(spec, model.classes, c.head.emit, c.runner.stream)


def build(config, *, model=None, source=None, sinks=None, callback=None) -> Pipeline:
    """A running ``Pipeline`` from a ``PipelineConfig``: loads the model (unless given), opens the
    source (unless given; ``source=False`` for a ``SyncRunner`` fed by ``step`` only) and the
    config's sinks (unless ``sinks`` is given), adding ``CallbackSink(callback)`` if given."""
    from ..model import load_model

    c = config
    if c.model.threads is not None:
        import numba
        import torch

        numba.set_num_threads(c.model.threads)
        torch.set_num_threads(c.model.threads)
    if model is None:
        model = load_model(c.model.name)
    if source is None:
        source = open_source(c.source.uri, realtime=c.source.realtime, batch_us=c.source.batch_us,
                             chunk_events=c.source.chunk_events, width=c.source.width, height=c.source.height,
                             geometry=model.input.sensor_size, options=c.source.options)
    elif source is False:
        source = None
    opened = []
    try:
        if sinks is None:
            for uri in c.sinks:
                opened.append(open_sink(uri, class_names=model.classes, task=model.task))
        else:
            opened = list(sinks)
        if callback is not None:
            opened.append(CallbackSink(callback))
        for s in opened:
            if isinstance(s, Hdf5Sink) and s.task != model.task:
                raise ValueError(f"sink {s.name} is opened for {s.task} results; model {model.name!r} gives "
                                 f"{model.task} results")
        return Pipeline(source, model, opened, c)
    except BaseException:
        for s in opened:
            s.shutdown()
        if source is not None:
            source.shutdown()
        raise


class _Core:
    """What both runners share: counters, timing, the model/head/sink half, accounting."""

    def __init__(self, pipeline: Pipeline):
        self.p = pipeline
        self.times = StageTimes(STAGE_NAMES)
        self.direct_received = 0
        self.processed = 0
        self.windows = 0
        self.results = 0
        self.dropped = {}
        self._epoch = 0   # the window epoch (clock jumps before it) the model and head are in
        self.clock = None
        self.t_wall0 = None
        self.wall_s = 0.0
        self._lock = threading.Lock()

    def _note_batch(self, events, t_host_ns):
        if len(events) == 0:
            return
        host_us = time.time_ns() // 1000 - (time.monotonic_ns() - t_host_ns) // 1000
        off = host_us - int(events["t"][-1])
        if self.clock is None:
            self.clock = {"offset_us": off, "drift_us": 0}
        else:
            self.clock["drift_us"] = off - self.clock["offset_us"]

    def _ingest(self, events, t_host_ns):
        """decode + window: the windows these events complete, as chunks of consecutive windows
        (an iterator: each chunk is binned as it is taken)."""
        self._note_batch(events, t_host_ns)
        t = time.perf_counter()
        good = self.p.decode.step(events)
        t1 = time.perf_counter()
        self.times.stages["decode"].add((t1 - t) * 1e3)
        chunks, spent = self.p.window.step(good, t_host_ns), 0.0
        try:
            while True:
                t = time.perf_counter()
                w = next(chunks, None)
                spent += time.perf_counter() - t
                if w is None:
                    break
                yield w
        finally:
            chunks.close()   # a consumer that stopped early: the stage counts what it left unbinned
            self.times.stages["window"].add(spent * 1e3)

    def _infer(self, windows) -> list[dict]:
        """model + head + sinks for consecutive windows; returns the results. Windows whose step
        fails (the model, the head or a sink raising) are counted as dropped (``failed``)."""
        if windows is None or len(windows) == 0:
            return []
        try:
            return self._infer_windows(windows)
        except BaseException:
            self._count_drop("failed", int(windows.n_events.sum()))
            raise

    def _infer_windows(self, windows) -> list[dict]:
        if windows.epoch != self._epoch:   # after a clock jump: the stream starts again from rest
            self.p.model.reset()
            self.p.head.reset()
            self._epoch = windows.epoch
        t = time.perf_counter()
        logits = self.p.model.step(windows.x[:, None])[:, 0]
        t1 = time.perf_counter()
        self.times.stages["model"].add((t1 - t) * 1e3)
        results = self.p.head.step(windows, logits)
        t2 = time.perf_counter()
        self.times.stages["head"].add((t2 - t1) * 1e3)
        now = time.monotonic_ns()
        for r in results:
            r["latency_ms"] = round((now - r.pop("_host_ns")) / 1e6, 4)
            self.times.e2e.add(r["latency_ms"])
            for s in self.p.sinks:
                s.write(r)
        if results:
            self.times.stages["sink"].add((time.perf_counter() - t2) * 1e3)
        with self._lock:
            self.processed += int(windows.n_events.sum())
            self.windows += len(windows)
            self.results += len(results)
        return results

    def _count_drop(self, reason, n):
        if n:
            with self._lock:
                self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    def _queued_events(self) -> int:
        return 0

    def warm_up(self):
        """Load every stage's kernels (numba's cache, first-call dispatch) without touching
        the stream's state; runners call it before they start reading the source."""
        for s in self.p.stages():
            s.warm_up()

    def accounting(self) -> dict:
        """Events received = processed + dropped + rejected (+ in flight, during a run)."""
        src = self.p.source.counters() if self.p.source is not None else {"received": 0, "rejected": {}, "dropped": {}}
        received = int(src["received"]) + self.direct_received
        rejected = _merge(src.get("rejected", {}), self.p.window.rejected)
        dropped = _merge(src.get("dropped", {}), self.p.window.dropped, self.dropped)
        in_flight = self.p.window.pending + self._queued_events()
        n_rej, n_drop = sum(rejected.values()), sum(dropped.values())
        out = {"events_in": received, "events_processed": self.processed, "events_dropped": n_drop,
               "events_rejected": n_rej, "events_in_flight": in_flight,
               "balanced": received == self.processed + n_drop + n_rej + in_flight,
               "dropped": dropped, "rejected": rejected}
        for lost in ("lost_messages", "lost_datagrams"):   # never arrived: outside the balance
            if lost in src:
                out[lost] = src[lost]
        if src.get("rejected_messages"):   # messages rejected whole, by reason (an undecodable one holds no count)
            out["rejected_messages"] = dict(src["rejected_messages"])
        if src.get("violations"):
            out["violations"] = dict(src["violations"])   # what the file reader counted, by kind
        return out

    def metrics(self) -> dict:
        """Accounting, counts, latency percentiles (ms), clock offset and throughput."""
        m = self.accounting()
        m.update({"windows": self.windows, "results": self.results, "backend": self.p.model.backend})
        m["clock_jumps"] = self.p.window.clock_jumps
        m.update(self.times.summary())
        wall = self.wall_s + (time.perf_counter() - self.t_wall0 if self.t_wall0 is not None else 0.0)
        m["wall_s"] = round(wall, 4)
        m["events_per_s"] = round(m["events_in"] / wall, 1) if wall > 0 else None
        m["clock"] = dict(self.clock) if self.clock else None
        return m

    def _flush(self):
        for s in self.p.sinks:
            s.flush()


class SyncRunner(_Core):
    """Deterministic, threadless driver (see the module docstring)."""

    def step(self, events, t_host_ns: int | None = None) -> list[dict]:
        """Push events (EventCD array, time order) through; the results of completed windows.
        The events count as received here (use ``run`` to read the pipeline's own source)."""
        self.direct_received += len(events)
        return self._step(events, time.monotonic_ns() if t_host_ns is None else t_host_ns)

    def _step(self, events, t_host_ns):
        out, chunks = [], self._ingest(events, t_host_ns)
        try:
            for w in chunks:
                out += self._infer(w)
        finally:
            chunks.close()
        return out

    def finish(self) -> list[dict]:
        """The last (incomplete) window's results; sinks flushed."""
        out = self._infer(self.p.window.finish(time.monotonic_ns()))
        self._flush()
        return out

    def run(self, stop: threading.Event | None = None, progress=None, max_batches: int | None = None) -> dict:
        """Replay the source to its end, or until ``stop`` is set (then the open window is
        finished too), or for at most ``max_batches`` batches (then the stream stays open:
        ``get_state``/``run`` again continue it). Returns ``metrics()``."""
        src = self.p.source
        self.warm_up()
        self.t_wall0 = time.perf_counter()
        live = is_live_uri(self.p.config.source.uri)
        n = 0
        try:
            while stop is None or not stop.is_set():
                if max_batches is not None and n >= max_batches:
                    return self.metrics()
                try:
                    b = src.next(0.1 if (live or stop is not None) else None)
                except EndOfStream:
                    break
                if b is None:
                    continue
                n += 1
                self._step(b.events, b.t_host_ns)
                if progress is not None:
                    progress(len(b.events))
            self.finish()
        finally:
            self.wall_s += time.perf_counter() - self.t_wall0
            self.t_wall0 = None
        return self.metrics()

    def get_state(self) -> dict:
        """Every stage's state, by name, plus the runner's counters."""
        st = {s.name: s.get_state() for s in self.p.stages()}
        if self.p.source is not None:
            st["source"] = self.p.source.get_state()
        st["runner"] = {"direct_received": self.direct_received, "processed": self.processed,
                        "windows": self.windows, "results": self.results, "dropped": dict(self.dropped),
                        "epoch": self._epoch}
        return st

    def reset(self, state: dict | None = None):
        """Back to the start, or to a state ``get_state`` returned (from this or another pipeline)."""
        for s in self.p.stages():
            s.reset(None if state is None else state[s.name])
        if self.p.source is not None:
            self.p.source.reset(None if state is None else state.get("source"))
        r = (state or {}).get("runner", {})
        self.direct_received, self.processed = r.get("direct_received", 0), r.get("processed", 0)
        self.windows, self.results, self.dropped = r.get("windows", 0), r.get("results", 0), dict(r.get("dropped", {}))
        self._epoch = int(r.get("epoch", 0))


def make_runner(pipeline: Pipeline):
    """The runner the config asks for (``runner.mode``; ``auto``: async for live and paced sources)."""
    c = pipeline.config
    live = is_live_uri(c.source.uri)
    mode = c.runner.mode
    if mode == "auto":
        mode = "async" if c.source.clocked else "sync"
    if mode == "sync":
        return SyncRunner(pipeline)
    from .runner_async import AsyncRunner

    policy = c.runner.drop_policy or ("drop_oldest" if live else "none")
    # a replay as fast as possible overlaps file decoding with binning; live and paced sources
    # bin in the source thread (small batches: one hand-off less is lower latency)
    return AsyncRunner(pipeline, policy, c.runner.queue_batches, c.runner.queue_windows,
                       window_thread=not c.source.clocked)

