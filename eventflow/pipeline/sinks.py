"""Sinks: where results go, by URI. Each follows ``eventflow.pipeline.stage.Sink``.

- ``jsonl:-`` / ``jsonl:PATH``: one JSON object per line (standard output / a file).
- ``hdf5:PATH``: a results file (``Hdf5Sink``; read back with ``read_results``).
- ``zmq+tcp://HOST:PORT``: a PUB socket (``eventflow.pipeline.net.open_net_sink``).
- ``CallbackSink(fn)``: a Python function called with each result dict.

A result dict: ``stream``, ``t_start_us``, ``t_end_us`` (the window, sensor time),
``latency_ms`` (host time from the arrival of the window's last event to the result),
``task`` ("classification"), ``class_id``, ``class_name``, ``probability``,
``probabilities`` (list, one per class) and ``committed``.

HDF5 results file layout (format attribute ``eventflow-results/1``):

- ``/results``: a 1-D structured dataset, one row per result, fields ``stream`` (UTF-8 string),
  ``t_start_us`` i8, ``t_end_us`` i8, ``latency_ms`` f8, ``class_id`` i4, ``probability`` f4,
  ``committed`` bool;
- ``/probabilities``: float32 ``[rows, n_classes]``, row i belongs to ``/results`` row i;
- attributes ``format``, ``task`` and ``class_names`` (a JSON list, index = class_id).

>>> got = []
>>> sink = CallbackSink(got.append)
>>> sink.write({"class_id": 1}); got
[{'class_id': 1}]
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

__all__ = ["RESULTS_FORMAT", "CallbackSink", "Hdf5Sink", "JsonlSink", "open_sink", "read_results"]

RESULTS_FORMAT = "eventflow-results/1"


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


class JsonlSink:
    """One JSON line per result, to standard output (``-``) or a file (truncated on open)."""

    def __init__(self, path="-", name=None):
        self.name = name or f"jsonl:{path}"
        self._own = path != "-"
        if self._own:
            try:
                self._f = open(path, "w", encoding="utf-8")
            except OSError as e:
                raise OSError(f"sink jsonl:{path}: cannot open for writing ({e.strerror})") from None
        else:
            self._f = sys.stdout

    def write(self, result):
        self._f.write(json.dumps(result) + "\n")
        if not self._own:
            self._f.flush()   # a reader of a pipe sees each decision as it is made

    def flush(self):
        if self._f is not None:
            self._f.flush()

    def shutdown(self):
        if self._f is None:
            return
        self._f.flush()
        if self._own:
            self._f.close()
        self._f = None


_ROW = np.dtype([("stream", object), ("t_start_us", "<i8"), ("t_end_us", "<i8"), ("latency_ms", "<f8"),
                 ("class_id", "<i4"), ("probability", "<f4"), ("committed", "?")])


class Hdf5Sink:
    """Results appended to an HDF5 file (layout in the module docstring); rows are buffered
    and written every ``flush_rows`` results and at ``flush``/``shutdown``."""

    def __init__(self, path, class_names=None, flush_rows=256, name=None):
        import h5py

        self.name = name or f"hdf5:{path}"
        self.path = path
        try:
            self._f = h5py.File(path, "w")
        except OSError as e:
            raise OSError(f"sink hdf5:{path}: cannot create the file ({e})") from None
        self._f.attrs["format"] = RESULTS_FORMAT
        self._f.attrs["task"] = "classification"
        self._class_names = None if class_names is None else list(class_names)
        self._rows, self._probs = [], []
        self._flush_rows = int(flush_rows)
        self._h5py = h5py

    def _create(self, n_classes):
        h5 = self._h5py
        dt = np.dtype([(k, h5.string_dtype("utf-8") if k == "stream" else v) for k, (v, _) in _ROW.fields.items()])
        self._f.create_dataset("results", (0,), dtype=dt, maxshape=(None,), chunks=(1024,))
        self._f.create_dataset("probabilities", (0, n_classes), dtype="<f4", maxshape=(None, n_classes),
                               chunks=(1024, n_classes))
        names = self._class_names or [str(i) for i in range(n_classes)]
        self._f.attrs["class_names"] = json.dumps(names)

    def write(self, result):
        self._rows.append(tuple(result[k] for k in _ROW.names))
        self._probs.append(result["probabilities"])
        if len(self._rows) >= self._flush_rows:
            self.flush()

    def flush(self):
        if self._f is None or not self._rows:
            return
        probs = np.asarray(self._probs, np.float32)
        if "results" not in self._f:
            self._create(probs.shape[1])
        res, pr = self._f["results"], self._f["probabilities"]
        if probs.shape[1] != pr.shape[1]:
            raise ValueError(f"sink {self.name}: a result has {probs.shape[1]} probabilities, the file {pr.shape[1]}")
        n0, n = res.shape[0], len(self._rows)
        rows = np.array(self._rows, dtype=np.dtype([(k, v) for k, (v, _) in _ROW.fields.items()]))
        res.resize((n0 + n,))
        res[n0:] = rows
        pr.resize((n0 + n, pr.shape[1]))
        pr[n0:] = probs
        self._rows, self._probs = [], []
        self._f.flush()

    def shutdown(self):
        if self._f is None:
            return
        self.flush()
        self._f.close()
        self._f = None


def read_results(path) -> list[dict]:
    """The results in an HDF5 results file, as result dicts (``task``, ``class_name`` restored)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != RESULTS_FORMAT:
            raise ValueError(f"{path}: not an eventflow results file (format {f.attrs.get('format')!r})")
        if "results" not in f:
            return []
        names = json.loads(f.attrs["class_names"])
        task = str(f.attrs["task"])
        rows, probs = f["results"][:], f["probabilities"][:]
    out = []
    for r, p in zip(rows, probs):
        s = r["stream"]
        out.append({"stream": s.decode() if isinstance(s, bytes) else str(s), "t_start_us": int(r["t_start_us"]),
                    "t_end_us": int(r["t_end_us"]), "latency_ms": float(r["latency_ms"]), "task": task,
                    "class_id": int(r["class_id"]), "class_name": names[int(r["class_id"])],
                    "probability": float(r["probability"]), "probabilities": [float(v) for v in p],
                    "committed": bool(r["committed"])})
    return out


def open_sink(uri: str, class_names=None):
    """The sink a URI names (see the module docstring)."""
    if uri.startswith("jsonl:"):
        return JsonlSink(uri[6:] or "-")
    if uri.startswith("hdf5:"):
        path = uri[5:]
        if not path:
            raise ValueError(f"sink {uri!r}: needs a path (hdf5:PATH)")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"sink {uri!r}: folder {parent!r} does not exist")
        return Hdf5Sink(path, class_names=class_names)
    if uri.startswith("zmq+tcp:"):
        from . import net

        return net.open_net_sink(uri)
    raise ValueError(f"sink {uri!r}: unknown kind (known: jsonl:-, jsonl:PATH, hdf5:PATH, zmq+tcp://HOST:PORT)")
