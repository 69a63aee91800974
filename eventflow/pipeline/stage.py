"""The stage protocol every pipeline stage follows, and the values that travel between stages.

Data flows one way: source -> decode -> window/encode -> model step -> head -> sink.
Every stage has a ``name`` (shown in metrics and errors) and

- ``next(...)``: produce its next output (sources: ``next(timeout_s)``; see ``Source``);
- ``reset(state=None)``: back to the start, or to a state that ``get_state()`` returned;
- ``get_state() -> dict``: everything needed to continue exactly from here (nested by name,
  numpy arrays / tensors / plain values), so that save mid-stream + restore + continue equals
  an uninterrupted run;
- ``shutdown()``: release resources (sockets, files, threads); idempotent;
- optionally ``warm_up()``: run its kernels once on throwaway inputs and state, leaving its
  own state as it was, so that numba's first-call loading (tens to hundreds of ms) happens
  before the stream starts, not on its first windows. The stages between source and sink
  (decode, window, model, head) have it, and the runners call it on each before they read
  the source (``SyncRunner.warm_up()``, ``AsyncRunner.warm_up()``); sources and sinks need not.

Sources also report ``counters() -> dict``: ``received`` (events that arrived), ``rejected``
and ``dropped`` (each a dict of event counts by reason), and ``lost_messages`` where the
transport has sequence numbers. The pipeline's accounting invariant builds on them:
events received = processed + dropped + rejected.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Batch", "EndOfStream", "Sink", "Source", "window_result"]


class EndOfStream(Exception):
    """Raised by ``Source.next`` once the stream is over (file end, sender closed for good)."""


@dataclass(frozen=True)
class Batch:
    """Events that arrived together: EventCD array in time order, sensor time in us.

    ``t_host_ns``: ``time.monotonic_ns()`` when the batch arrived (or was read), for
    event-to-result latency; ``seq``: the transport's sequence number where it has one;
    ``width``/``height``: the geometry the sender declared, if any.
    """

    events: np.ndarray
    t_host_ns: int
    seq: int | None = None
    width: int | None = None
    height: int | None = None
    meta: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class Source(Protocol):
    name: str

    def next(self, timeout_s: float | None = None) -> Batch | None:
        """The next batch; ``None`` if nothing arrived within ``timeout_s`` (live sources);
        raises ``EndOfStream`` when the stream is over. ``timeout_s=None`` blocks."""

    def geometry(self) -> tuple[int, int] | None:
        """(width, height) of the sensor, when the source knows it."""

    def counters(self) -> dict:
        """``{"received": n, "rejected": {reason: n}, "dropped": {reason: n}, ...}``."""

    def get_state(self) -> dict: ...

    def reset(self, state: dict | None = None) -> None: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    name: str

    def write(self, result: dict) -> None:
        """Emit one result (a JSON-able dict)."""

    def flush(self) -> None: ...

    def shutdown(self) -> None: ...


def window_result(windows, i: int, stream: str, task: str) -> dict:
    """The keys every head's result for window ``i`` of ``windows`` starts with (``latency_ms``
    is filled in by the runner from ``_host_ns``, which it then removes)."""
    t0 = int(windows.t_start_us[i])
    return {"stream": stream, "t_start_us": t0, "t_end_us": t0 + windows.window_us, "latency_ms": None,
            "task": task, "_host_ns": int(windows.t_host_ns[i])}

