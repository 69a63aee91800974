"""Head stages of the detection and flow tasks: per-window model outputs to result dicts.

The classification head (decisions over smoothed class scores) is ``stages.HeadStage``; these
two read each window's output alone (``eventflow.heads``), so they keep no state.

- ``DetectionHeadStage``: ``"task": "detection"`` and ``"boxes"``, a list of
  ``{"x", "y", "w", "h", "class_id", "class_name", "confidence"}`` in sensor pixels (top-left
  corner, Gen1's fields). ``emit="decisions"``: a result for each window with at least one box;
  ``"windows"``: one for every window.
- ``FlowHeadStage``: ``"task": "flow"`` and ``"flow"``: ``{"shape": [2, h, w], "cell_px":
  [sensor pixels per cell in x, in y], "mean_px": [mean dx, mean dy], "max_px": the largest
  displacement, "field": the float32 array [2, h, w] of (dx, dy) in sensor pixels}``; one result
  per window. The field is an array, not JSON: each sink stores it and writes where it went
  (``"ref"``) in its place (see ``eventflow.pipeline.sinks``).
"""
from __future__ import annotations

import numpy as np

from ..heads import decode_boxes, flow_field
from .stage import window_result

__all__ = ["DetectionHeadStage", "FlowHeadStage"]


class _Stateless:
    name = "head"

    def warm_up(self):
        pass

    def get_state(self):
        return {}

    def reset(self, state=None):
        pass

    def shutdown(self):
        pass


class DetectionHeadStage(_Stateless):
    """Boxes per window from a detection model's grid (see the module docstring)."""

    def __init__(self, spec, classes, sensor_size, emit: str = "decisions", stream: str = "0"):
        self.spec, self.classes, self.sensor_size = spec, tuple(classes), tuple(sensor_size)
        self.emit, self.stream = emit, stream

    def step(self, windows, outputs: np.ndarray) -> list[dict]:
        """Results (without ``latency_ms``) for ``windows`` and their outputs ``[n, 5 + C, Gh, Gw]``."""
        out = []
        for i in range(len(windows)):
            t_end = int(windows.t_start_us[i]) + windows.window_us
            boxes = decode_boxes(outputs[i], self.sensor_size, self.spec, ts=t_end)
            if self.emit == "decisions" and len(boxes) == 0:
                continue
            r = window_result(windows, i, self.stream, "detection")
            r["boxes"] = [{"x": float(b["x"]), "y": float(b["y"]), "w": float(b["w"]), "h": float(b["h"]),
                           "class_id": int(b["class_id"]), "class_name": self.classes[int(b["class_id"])],
                           "confidence": float(b["confidence"])} for b in boxes]
            out.append(r)
        return out


class FlowHeadStage(_Stateless):
    """A flow field per window from a flow model's output (see the module docstring)."""

    def __init__(self, spec, input_size, sensor_size, stream: str = "0"):
        self.spec, self.input_size, self.sensor_size = spec, tuple(input_size), tuple(sensor_size)
        self.stream = stream

    def step(self, windows, outputs: np.ndarray) -> list[dict]:
        """Results (without ``latency_ms``) for ``windows`` and their outputs ``[n, 2, h, w]``."""
        out = []
        for i in range(len(windows)):
            field = flow_field(outputs[i], self.input_size, self.sensor_size, self.spec)
            h, w = field.shape[1:]
            r = window_result(windows, i, self.stream, "flow")
            r["flow"] = {"shape": [2, h, w], "cell_px": [self.sensor_size[0] / w, self.sensor_size[1] / h],
                         **flow_summary(field), "field": field}
            out.append(r)
        return out


def flow_summary(field: np.ndarray) -> dict:
    """``mean_px`` (mean dx, mean dy) and ``max_px`` (the largest displacement) over the cells
    whose (dx, dy) is finite (None where no cell is), and ``nonfinite``: how many cells are not."""
    f = field.astype(np.float64)
    ok = np.isfinite(f[0]) & np.isfinite(f[1])
    n = int(ok.sum())
    if n == 0:
        return {"mean_px": [None, None], "max_px": None, "nonfinite": int(ok.size)}
    dx, dy = f[0][ok], f[1][ok]
    mag = np.hypot(dx, dy)
    return {"mean_px": [float(dx.mean()), float(dy.mean())], "max_px": float(mag.max()),
            "nonfinite": int(ok.size - n)}
