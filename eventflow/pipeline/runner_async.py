"""The asynchronous runner: threads and bounded queues between the stages, for live sources.

Threads, each handing its output to the next through a bounded queue:

- ``source``: ``source.next`` (file reading and decoding, socket receive), batches into
  ``q_batches`` (``queue_batches`` deep);
- ``window``: decode (validation) and window/encode, completed windows into ``q_windows``
  (``queue_windows`` deep);
- the caller's thread: model step, head and sinks.

The numba kernels (file decode, binning, the SNN) release the GIL, so on two cores file
decoding overlaps binning and the model. With ``window_thread=False`` the source thread does
decode and window/encode itself (no ``q_batches``): one hand-off less per batch, for live and
paced sources whose batches are small and whose latency counts. A thread blocked on a queue wakes when the queue
changes (no polling on the hot path), so a window adds no queueing delay beyond the work
ahead of it.

Flow control by ``drop_policy``: ``none`` blocks upstream when a queue is full (lossless
backpressure, for replay); ``drop_oldest`` drops the oldest queued window to make room,
``latest_only`` keeps only the newest queued window (live sources). Dropped events are counted
by reason (the policy's name); the accounting invariant holds at any time, with queued events
counted as in flight.

>>> from eventflow.pipeline import ArraySource, build, from_dict     # doctest: +SKIP
>>> p = build(from_dict({"model": {"name": "m"}}), source=ArraySource(events))  # doctest: +SKIP
>>> AsyncRunner(p, "drop_oldest", queue_windows=4).run()["balanced"]  # doctest: +SKIP
True
"""
from __future__ import annotations

import queue
import threading
import time

from .runner import Pipeline, _Core
from .stage import EndOfStream

__all__ = ["DROP_POLICIES", "AsyncRunner"]

DROP_POLICIES = ("none", "drop_oldest", "latest_only")

_END = object()   # the end-of-stream marker in a queue


class AsyncRunner(_Core):
    """Threads and bounded queues (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, drop_policy: str = "none", queue_batches: int = 64,
                 queue_windows: int = 8, window_thread: bool = True):
        super().__init__(pipeline)
        self.window_thread = bool(window_thread)
        if drop_policy not in DROP_POLICIES:
            raise ValueError(f"runner.drop_policy: expected none, drop_oldest or latest_only, got {drop_policy!r}")
        self.drop_policy = drop_policy
        self.q_batches = queue.Queue(queue_batches)
        self.q_windows = queue.Queue(queue_windows)
        self._queued = 0
        self.error = None
        self.thread_cpu_s = {}   # CPU seconds each thread spent in the last run, by thread name

    def _queued_events(self):
        return self._queued

    def _add_queued(self, n):
        with self._lock:
            self._queued += n

    def _put(self, q, item):
        """Blocking put (backpressure); gives up only if the consumer thread failed (the wait
        wakes as soon as there is room)."""
        while self.error is None:
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _source_batches(self, stop, progress):
        """The source's batches until it ends or ``stop`` is set."""
        while not stop.is_set():
            try:
                b = self.p.source.next(0.05)
            except EndOfStream:
                return
            if b is None:
                continue
            if progress is not None:
                progress(len(b.events))
            yield b

    def _reader(self, stop, progress):
        cpu0 = time.thread_time()
        try:
            for b in self._source_batches(stop, progress):
                self._add_queued(len(b.events))
                self._put(self.q_batches, b)
        except BaseException as e:
            self.error = e
        finally:
            self.thread_cpu_s["source"] = time.thread_time() - cpu0
            self.q_batches.put(_END)

    def _queued_batches(self):
        while True:
            b = self.q_batches.get()
            if b is _END:
                return
            self._add_queued(-len(b.events))
            yield b

    def _offer(self, w):
        """Queue windows by the drop policy."""
        self._add_queued(int(w.n_events.sum()))
        if self.drop_policy == "none":
            self.q_windows.put(w)
            return
        if self.drop_policy == "latest_only":
            self._drain_queued("latest_only")
        while True:
            try:
                self.q_windows.put_nowait(w)
                return
            except queue.Full:
                self._drain_queued("drop_oldest", limit=1)

    def _drain_queued(self, reason, limit=None):
        k = 0
        while limit is None or k < limit:
            try:
                old = self.q_windows.get_nowait()
            except queue.Empty:
                return
            if old is _END:  # never drop the end marker
                self.q_windows.put(old)
                return
            n = int(old.n_events.sum())
            self._add_queued(-n)
            self._count_drop(reason, n)
            k += 1

    def _windower(self, batches, name):
        cpu0 = time.thread_time()
        try:
            for b in batches:
                chunks = self._ingest(b.events, b.t_host_ns)
                try:
                    for w in chunks:
                        if len(w):
                            self._offer(w)
                finally:
                    chunks.close()
            w = self.p.window.finish(time.monotonic_ns())
            if w is not None and len(w):
                self._offer(w)
        except BaseException as e:
            self.error = self.error or e
        finally:
            self.thread_cpu_s[name] = time.thread_time() - cpu0
            self.q_windows.put(_END)

    def run(self, stop: threading.Event | None = None, progress=None) -> dict:
        """Run until the source ends or ``stop`` is set; in-flight windows finish. Returns ``metrics()``."""
        stop = stop or threading.Event()
        self.warm_up()
        self.thread_cpu_s = {}
        cpu0 = time.thread_time()
        self.t_wall0 = time.perf_counter()
        if self.window_thread:
            threads = [threading.Thread(target=self._reader, args=(stop, progress), name="source", daemon=True),
                       threading.Thread(target=self._windower, args=(self._queued_batches(), "window"), name="window",
                                        daemon=True)]
        else:
            batches = self._source_batches(stop, progress)
            threads = [threading.Thread(target=self._windower, args=(batches, "source+window"), name="source+window",
                                        daemon=True)]
        for t in threads:
            t.start()
        try:
            while True:
                w = self.q_windows.get()
                if w is _END:
                    break
                self._add_queued(-int(w.n_events.sum()))
                self._infer(w)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)
            self._flush()
            self.thread_cpu_s["model"] = time.thread_time() - cpu0
            self.wall_s += time.perf_counter() - self.t_wall0
            self.t_wall0 = None
        if self.error is not None:
            raise self.error
        return self.metrics()

    def metrics(self) -> dict:
        """``_Core.metrics`` plus ``thread_cpu_s``: CPU seconds of each thread (``source`` and
        ``window``, or ``source+window``; ``model``: the caller's thread, with head and sinks)
        in the last run, to see which one bounds the throughput."""
        m = super().metrics()
        m["thread_cpu_s"] = {k: round(v, 4) for k, v in self.thread_cpu_s.items()}
        return m
