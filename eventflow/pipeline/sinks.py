"""Sinks: where results go, by URI. Each follows ``eventflow.pipeline.stage.Sink``.

- ``jsonl:-`` / ``jsonl:PATH``: one JSON object per line (standard output / a file).
- ``hdf5:PATH``: a results file (``Hdf5Sink``; read back with ``read_results``; layout in
  ``eventflow.pipeline.results_file``).
- ``zmq+tcp://HOST:PORT``: a PUB socket (``eventflow.pipeline.net.open_net_sink``).
- ``CallbackSink(fn)``: a Python function called with each result dict.

A result dict: ``stream``, ``t_start_us``, ``t_end_us`` (the window, sensor time),
``latency_ms`` (host time from the arrival of the window's last event to the result),
``task``, then the task's payload:

- ``"classification"``: ``class_id``, ``class_name``, ``probability``, ``probabilities``
  (list, one per class) and ``committed``;
- ``"detection"``: ``boxes``, a list of ``{x, y, w, h, class_id, class_name, confidence}``
  (sensor pixels, top-left corner; ``eventflow.heads``);
- ``"flow"``: ``flow``, ``{shape, cell_px, mean_px, max_px}`` and where the field is. A callback
  gets the field itself (``"field"``, float32 ``[2, h, w]``, (dx, dy) in sensor pixels over the
  window); the other sinks store it and put a reference ``"ref"`` in its place:
  ``jsonl:PATH`` in ``PATH.flow.h5`` and ``hdf5:PATH`` in the results file (``{"file",
  "dataset", "index"}``; ``read_flow(ref)`` loads it), ``zmq+tcp`` as the message's third frame
  (``{"frame": 2, "dtype": "<f4", "shape"}``). ``jsonl:-`` cannot hold a field: its ``ref`` is
  null, and it says so once on stderr.

Sinks never modify the result dicts they are given (the same dict goes to every sink). JSON
out is strict: a NaN or infinite number (a model gone bad) is written as null.

>>> got = []
>>> sink = CallbackSink(got.append)
>>> sink.write({"class_id": 1}); got
[{'class_id': 1}]
"""
from __future__ import annotations

import json
import math
import os
import sys

from .results_file import RESULTS_FORMAT, FlowStore, Hdf5Sink, read_flow, read_results

__all__ = ["RESULTS_FORMAT", "CallbackSink", "Hdf5Sink", "JsonlSink", "open_sink", "read_flow", "read_results",
           "result_json", "without_field"]


class CallbackSink:
    """Calls ``fn(result)`` for each result."""

    def __init__(self, fn, name="callback"):
        self.fn = fn
        self.name = name

    def write(self, result):
        self.fn(result)

    def flush(self):
        pass

    def shutdown(self):
        pass


def result_json(result: dict) -> str:
    """``result`` as strict JSON: a NaN or infinite number (a model's output gone bad) is null."""
    try:
        return json.dumps(result, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(result), allow_nan=False)


def _finite(v):
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def without_field(result: dict, ref) -> dict:
    """``result`` with its flow field replaced by ``ref`` (a shallow copy; ``result`` untouched)."""
    out = dict(result)
    out["flow"] = {k: v for k, v in result["flow"].items() if k != "field"}
    out["flow"]["ref"] = ref
    return out


class JsonlSink:
    """One JSON line per result (strict JSON: non-finite numbers are null), to standard output
    (``-``) or a file (truncated on open). For ``task="flow"`` the fields go to ``PATH.flow.h5``,
    created (truncated) on open too; for ``-`` nowhere."""

    def __init__(self, path="-", name=None, task="classification"):
        self.name = name or f"jsonl:{path}"
        self.path, self.task = path, task
        self._own = path != "-"
        self._flow = None
        self._told = False
        if self._own:
            try:
                self._f = open(path, "w", encoding="utf-8")
            except OSError as e:
                raise OSError(f"sink jsonl:{path}: cannot open for writing ({e.strerror})") from None
            if task == "flow":
                try:
                    self._flow = FlowStore(os.path.abspath(path) + ".flow.h5")
                except BaseException:
                    self._f.close()
                    raise
        else:
            self._f = sys.stdout

    def _store_field(self, result):
        if not self._own:
            if not self._told:
                print(f"sink {self.name}: flow fields are not written to standard output, only their summaries "
                      f"(ref null); jsonl:PATH or hdf5:PATH keeps them", file=sys.stderr)
                self._told = True
            return None
        if self._flow is None:   # (a sink opened for another task, given a flow result)
            self._flow = FlowStore(os.path.abspath(self.path) + ".flow.h5")
        return self._flow.append(result["t_start_us"], result["t_end_us"], result["flow"]["field"])

    def write(self, result):
        if "field" in result.get("flow", ()):
            result = without_field(result, self._store_field(result))
        self._f.write(result_json(result) + "\n")
        if not self._own:
            self._f.flush()   # a reader of a pipe sees each decision as it is made

    def flush(self):
        if self._f is not None:
            self._f.flush()
        if self._flow is not None:
            self._flow.flush()

    def shutdown(self):
        if self._flow is not None:
            self._flow.close()
        if self._f is None:
            return
        self._f.flush()
        if self._own:
            self._f.close()
        self._f = None


def open_sink(uri: str, class_names=None, task: str = "classification"):
    """The sink a URI names (see the module docstring), for results of ``task``."""
    if uri.startswith("jsonl:"):
        return JsonlSink(uri[6:] or "-", task=task)
    if uri.startswith("hdf5:"):
        path = uri[5:]
        if not path:
            raise ValueError(f"sink {uri!r}: needs a path (hdf5:PATH)")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"sink {uri!r}: folder {parent!r} does not exist")
        return Hdf5Sink(path, class_names=class_names, task=task)
    if uri.startswith("zmq+tcp:"):
        from . import net

        return net.open_net_sink(uri)
    raise ValueError(f"sink {uri!r}: unknown kind (known: jsonl:-, jsonl:PATH, hdf5:PATH, zmq+tcp://HOST:PORT)")
