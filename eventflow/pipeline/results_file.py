"""Results in HDF5: the ``hdf5:PATH`` sink, reading a results file back, and flow-field stores.

Results file layout (attribute ``format`` = ``eventflow-results/1``, attribute ``task``):

- ``/results``: a 1-D structured dataset, one row per result, with fields ``stream`` (UTF-8
  string), ``t_start_us`` i8, ``t_end_us`` i8, ``latency_ms`` f8, then by task:
  - classification: ``class_id`` i4, ``probability`` f4, ``committed`` bool; ``/probabilities``
    float32 ``[rows, n_classes]`` (row i belongs to results row i); attribute ``class_names``
    (a JSON list, index = class_id);
  - detection: ``first_box`` i8, ``n_boxes`` i4: the result's boxes are rows
    ``first_box .. first_box + n_boxes - 1`` of ``/boxes``, in Prophesee's Gen1 box layout
    (``eventflow.heads.BOX_DTYPE``; ts = the window's end, track_id 0); attribute ``class_names``;
  - flow: ``mean_dx``, ``mean_dy``, ``max_px`` f4 (NaN where the result's is null),
    ``nonfinite`` i8; the field of results row i is ``/flow[i]`` (float32 ``[rows, 2, h, w]``,
    (dx, dy) in sensor pixels over the window); attribute ``cell_px``.

A flow-field store (``FlowStore``, what ``jsonl:PATH`` writes beside its file as
``PATH.flow.h5``): datasets ``t_start_us``, ``t_end_us`` (i8) and ``flow`` (float32
``[n, 2, h, w]``), attribute ``format`` = ``eventflow-flow/1``. A flow result's ``"ref"``,
``{"file", "dataset", "index"}``, names one field in either; ``read_flow(ref)`` loads it.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..heads import BOX_DTYPE

__all__ = ["RESULTS_FORMAT", "FLOW_FORMAT", "FlowStore", "Hdf5Sink", "read_flow", "read_results"]

RESULTS_FORMAT = "eventflow-results/1"
FLOW_FORMAT = "eventflow-flow/1"
_COMMON = [("stream", object), ("t_start_us", "<i8"), ("t_end_us", "<i8"), ("latency_ms", "<f8")]
_ROWS = {
    "classification": np.dtype(_COMMON + [("class_id", "<i4"), ("probability", "<f4"), ("committed", "?")]),
    "detection": np.dtype(_COMMON + [("first_box", "<i8"), ("n_boxes", "<i4")]),
    "flow": np.dtype(_COMMON + [("mean_dx", "<f4"), ("mean_dy", "<f4"), ("max_px", "<f4"), ("nonfinite", "<i8")]),
}


def _appendable(f, name, row_shape, dtype, chunk_rows):
    return f.create_dataset(name, (0, *row_shape), dtype=dtype, maxshape=(None, *row_shape),
                            chunks=(chunk_rows, *row_shape))


def _append(ds, rows):
    n0 = ds.shape[0]
    ds.resize((n0 + len(rows), *ds.shape[1:]))
    ds[n0:] = rows
    return n0


def _check_field(where, ds, field):
    if ds.shape[1:] != field.shape:
        raise ValueError(f"{where}: a flow field is shaped {list(field.shape)}, the file's {list(ds.shape[1:])}")


class FlowStore:
    """Flow fields appended to an HDF5 file (``PATH.flow.h5`` beside a jsonl sink's file)."""

    def __init__(self, path):
        import h5py

        self.path = os.fspath(path)
        try:
            self._f = h5py.File(self.path, "w")
        except OSError as e:
            raise OSError(f"flow store {self.path}: cannot create the file ({e})") from None
        self._f.attrs["format"] = FLOW_FORMAT
        self.n = 0

    def append(self, t_start_us: int, t_end_us: int, field: np.ndarray) -> dict:
        """Store one field; returns its reference ``{"file", "dataset", "index"}``."""
        f = self._f
        if "flow" not in f:
            _appendable(f, "t_start_us", (), "<i8", 1024)
            _appendable(f, "t_end_us", (), "<i8", 1024)
            _appendable(f, "flow", field.shape, "<f4", 1)
        _check_field(f"flow store {self.path}", f["flow"], field)
        _append(f["t_start_us"], [t_start_us])
        _append(f["t_end_us"], [t_end_us])
        i = _append(f["flow"], field[None])
        self.n += 1
        return {"file": self.path, "dataset": "flow", "index": i}

    def flush(self):
        if self._f is not None:
            self._f.flush()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class Hdf5Sink:
    """Results appended to an HDF5 file (layout in the module docstring); rows are buffered
    and written every ``flush_rows`` results and at ``flush``/``shutdown`` (flow fields at once)."""

    def __init__(self, path, class_names=None, flush_rows=256, name=None, task="classification"):
        import h5py

        if task not in _ROWS:
            raise ValueError(f"sink hdf5:{path}: unknown task {task!r}")
        self.name = name or f"hdf5:{path}"
        self.path, self.task = path, task
        try:
            self._f = h5py.File(path, "w")
        except OSError as e:
            raise OSError(f"sink hdf5:{path}: cannot create the file ({e})") from None
        self._f.attrs["format"] = RESULTS_FORMAT
        self._f.attrs["task"] = task
        self._class_names = None if class_names is None else list(class_names)
        if self._class_names and task != "flow":
            self._f.attrs["class_names"] = json.dumps(self._class_names)
        self._rows, self._probs, self._boxes = [], [], []
        self._n_boxes = 0
        self._flush_rows = int(flush_rows)
        self._h5py = h5py

    def _create(self, n_classes=None):
        h5 = self._h5py
        dt = np.dtype([(k, h5.string_dtype("utf-8") if k == "stream" else v)
                       for k, (v, _) in _ROWS[self.task].fields.items()])
        self._f.create_dataset("results", (0,), dtype=dt, maxshape=(None,), chunks=(1024,))
        if self.task == "classification":
            _appendable(self._f, "probabilities", (n_classes,), "<f4", 1024)
            if "class_names" not in self._f.attrs:
                self._f.attrs["class_names"] = json.dumps([str(i) for i in range(n_classes)])
        if self.task == "detection":
            _appendable(self._f, "boxes", (), BOX_DTYPE, 4096)

    def write(self, result):
        if result.get("task") != self.task:
            raise ValueError(f"sink {self.name}: opened for {self.task} results, given a {result.get('task')!r} "
                             f"result")
        common = (result["stream"], result["t_start_us"], result["t_end_us"], result["latency_ms"])
        if self.task == "classification":
            self._rows.append(common + (result["class_id"], result["probability"], result["committed"]))
            self._probs.append(result["probabilities"])
        elif self.task == "detection":
            boxes = result["boxes"]
            self._rows.append(common + (self._n_boxes, len(boxes)))
            self._n_boxes += len(boxes)
            self._boxes.extend((result["t_end_us"], b["x"], b["y"], b["w"], b["h"], b["class_id"], b["confidence"], 0)
                               for b in boxes)
        else:
            fl = result["flow"]
            field = np.asarray(fl["field"], np.float32)
            row = common + tuple(np.nan if v is None else v for v in (*fl["mean_px"], fl["max_px"])) + (
                fl["nonfinite"],)   # (built before the field is stored: rows and fields stay in step)
            if "results" not in self._f:
                self._create()
                _appendable(self._f, "flow", field.shape, "<f4", 1)
                self._f.attrs["cell_px"] = fl["cell_px"]
            _check_field(f"sink {self.name}", self._f["flow"], field)
            _append(self._f["flow"], field[None])
            self._rows.append(row)
        if len(self._rows) >= self._flush_rows:
            self.flush()

    def flush(self):
        if self._f is None or not self._rows:
            return
        if "results" not in self._f:
            self._create(len(self._probs[0]) if self._probs else None)
        if self.task == "classification":
            probs = np.asarray(self._probs, np.float32)
            pr = self._f["probabilities"]
            if probs.shape[1] != pr.shape[1]:
                raise ValueError(f"sink {self.name}: a result has {probs.shape[1]} probabilities, "
                                 f"the file {pr.shape[1]}")
            _append(pr, probs)
        if self.task == "detection" and self._boxes:
            _append(self._f["boxes"], np.array(self._boxes, BOX_DTYPE))
        rows = np.array(self._rows,
                        dtype=np.dtype([(k, v) for k, (v, _) in _ROWS[self.task].fields.items()]))
        _append(self._f["results"], rows)
        self._rows, self._probs, self._boxes = [], [], []
        self._f.flush()

    def shutdown(self):
        if self._f is None:
            return
        try:
            self.flush()
        finally:
            self._f.close()
            self._f = None


def _none_if_nan(v):
    return None if np.isnan(v) else float(v)


def _name(names, c):
    return names[c] if c < len(names) else str(c)


def _stream(s):
    return s.decode() if isinstance(s, bytes) else str(s)


def read_results(path) -> list[dict]:
    """The results in an HDF5 results file, as result dicts (``task`` and class names restored;
    a flow result's ``"flow"`` has a ``"ref"`` to its field instead of the field)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != RESULTS_FORMAT:
            raise ValueError(f"{path}: not an eventflow results file (format {f.attrs.get('format')!r})")
        if "results" not in f:
            return []
        task = str(f.attrs.get("task"))
        if task not in _ROWS:
            raise ValueError(f"{path}: unknown task {task!r} (known: {', '.join(_ROWS)})")
        names = json.loads(f.attrs["class_names"]) if "class_names" in f.attrs else []
        rows = f["results"][:]
        extra = {k: f[k][:] for k in ("probabilities", "boxes") if k in f}
        cell = [float(v) for v in f.attrs["cell_px"]] if "cell_px" in f.attrs else None
        shape = [int(v) for v in f["flow"].shape[1:]] if "flow" in f else None
    out = []
    for i, r in enumerate(rows):
        d = {"stream": _stream(r["stream"]), "t_start_us": int(r["t_start_us"]), "t_end_us": int(r["t_end_us"]),
             "latency_ms": float(r["latency_ms"]), "task": task}
        if task == "classification":
            p = extra["probabilities"][i]
            d.update({"class_id": int(r["class_id"]), "class_name": names[int(r["class_id"])],
                      "probability": float(r["probability"]), "probabilities": [float(v) for v in p],
                      "committed": bool(r["committed"])})
        elif task == "detection":
            b = extra["boxes"][int(r["first_box"]):int(r["first_box"]) + int(r["n_boxes"])]
            d["boxes"] = [{"x": float(x["x"]), "y": float(x["y"]), "w": float(x["w"]), "h": float(x["h"]),
                           "class_id": int(x["class_id"]), "class_name": _name(names, int(x["class_id"])),
                           "confidence": float(x["confidence"])} for x in b]
        else:
            d["flow"] = {"shape": shape, "cell_px": cell,
                         "mean_px": [_none_if_nan(r["mean_dx"]), _none_if_nan(r["mean_dy"])],
                         "max_px": _none_if_nan(r["max_px"]), "nonfinite": int(r["nonfinite"]),
                         "ref": {"file": os.path.abspath(path), "dataset": "flow", "index": i}}
        out.append(d)
    return out


def read_flow(ref: dict) -> np.ndarray:
    """The flow field (float32 ``[2, h, w]``, sensor pixels) a result's ``"ref"`` names: a results
    file (``hdf5:PATH``) or a flow store (``jsonl:PATH``'s ``PATH.flow.h5``)."""
    import h5py

    if not (isinstance(ref, dict) and {"file", "dataset", "index"} <= set(ref) and ref["dataset"] == "flow"
            and isinstance(ref["index"], int) and not isinstance(ref["index"], bool)):
        raise ValueError(f"read_flow: expected a reference {{'file': PATH, 'dataset': 'flow', 'index': int}}, "
                         f"got {ref!r}")
    path, i = ref["file"], ref["index"]
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") not in (RESULTS_FORMAT, FLOW_FORMAT) or "flow" not in f:
                raise ValueError(f"read_flow: {path}: no flow fields here (not an eventflow results file or flow "
                                 f"store with a /flow dataset)")
            ds = f["flow"]
            if not 0 <= i < ds.shape[0]:
                raise ValueError(f"read_flow: {path} holds {ds.shape[0]} flow fields, no index {i}")
            return ds[i]
    except OSError as e:
        raise OSError(f"read_flow: {path}: cannot read ({e})") from None
