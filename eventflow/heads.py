"""What a detection or an optical-flow model's output for one window means: boxes, flow fields.

A classification model's outputs are class scores, which ``eventflow.model.DecisionSpec`` turns
into decisions. The pipeline's other two tasks read a model's output for one window as below:
pure functions over numpy, nothing kept between windows.

Detection (``task: "detection"``): the output is a grid ``[5 + C, Gh, Gw]`` (C classes) laid over
the sensor, each cell ``sensor_w / Gw`` by ``sensor_h / Gh`` sensor pixels, each predicting at
most one box, anchor-free as in YOLOX, except that the centre goes through a sigmoid and so
stays in its cell: channel 0 the objectness logit; 1 and 2 the box centre within the cell
(centre x = (column + sigmoid(o1)) * cell width, y alike with the row); 3 and 4 the log of the
box width and height in cells (width = exp(o3) * cell width, with o3 clipped to
[-20, log(2 * Gw)] and o4 to [-20, log(2 * Gh)]: no box is more than twice the sensor); 5.. the
class logits (NaN counts as -inf). A cell's score for class c is
``sigmoid(o0) * sigmoid(o[5 + c])`` and its box takes its best class. Cells scoring at least
``score_threshold`` are candidates (at most ``max_candidates``, highest first; equal scores:
lower cell index first). Each box is clipped to the sensor, and one with no area left is
dropped. Greedy non-maximum suppression, class by class, as torchvision's ``batched_nms``: a
candidate whose IoU with a kept box of its class exceeds ``iou_threshold`` is dropped. At most
``max_boxes`` are kept, highest score first. Boxes come in Prophesee's Gen1 box layout
``BOX_DTYPE``: ts (the window's end, us), x, y (top-left corner), w, h in sensor pixels,
class_id, confidence (the score), track_id 0 (boxes are not tracked across windows). The
suppression's work grows with the square of the candidates (``max_candidates`` at most 10,000;
the default 1,000 takes a few ms at worst).

Flow (``task: "flow"``): the output is ``[2, Fh, Fw]``, the forward flow (dx, dy) over the window
(E-RAFT / DSEC's convention, as ``eventflow.sim`` scenes give it: the displacement of the point
seen at a cell's centre at the window's start; x right, y down) in the model's input pixels,
times ``FlowSpec.scale``. ``flow_field`` gives it in sensor pixels on the model's grid (cells of
``sensor_w / Fw`` by ``sensor_h / Fh`` sensor pixels).

>>> out = np.full((7, 2, 2), -9.0, np.float32)        # 2 classes, a 2x2 grid over a 100x50 sensor
>>> out[:, 0, 1] = [4.0, 0.0, 0.0, 0.0, 0.0, -4.0, 4.0]  # one confident cell: row 0, column 1
>>> boxes = decode_boxes(out, (100, 50), DetectionSpec(), ts=10_000)
>>> [(float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"]), int(b["class_id"])) for b in boxes]
[(50.0, 0.0, 50.0, 25.0, 1)]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .schema import check_count, check_number

__all__ = ["BOX_DTYPE", "DetectionSpec", "FlowSpec", "decode_boxes", "flow_field", "nms", "TASKS"]

TASKS = ("classification", "detection", "flow")
#: Prophesee's Gen1 box layout (as ``eventflow.sim.scenes.detection.BBOX_DTYPE``)
BOX_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                      ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])
MAX_DETECTION_CLASSES = 256    # class_id is a u1
_MIN_LOG_SIZE = -20.0


@dataclass(frozen=True)
class DetectionSpec:
    """How a detection model's grid becomes boxes (see the module docstring)."""

    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_boxes: int = 100
    max_candidates: int = 1000

    MAX_BOXES = 10_000

    def __post_init__(self):
        check_number(self.score_threshold, "detection.score_threshold", 0.0, 1.0)
        check_number(self.iou_threshold, "detection.iou_threshold", 0.0, 1.0, lo_open=False)
        check_count(self.max_boxes, "detection.max_boxes", self.MAX_BOXES)
        check_count(self.max_candidates, "detection.max_candidates", self.MAX_BOXES)


@dataclass(frozen=True)
class FlowSpec:
    """``scale``: the model's output times ``scale`` is the flow in its input pixels over one window."""

    scale: float = 1.0

    def __post_init__(self):
        check_number(self.scale, "flow.scale", 0.0, 1e9)


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def decode_boxes(output, sensor_size, spec: DetectionSpec, ts: int = 0) -> np.ndarray:
    """The boxes (``BOX_DTYPE``, highest confidence first) of one window's detection output
    ``[5 + C, Gh, Gw]`` on a ``sensor_size = (width, height)`` sensor; ``ts`` fills their ts."""
    out = np.asarray(output)
    if out.ndim != 3 or out.shape[0] < 6 or out.shape[1] < 1 or out.shape[2] < 1:
        raise ValueError(f"detection output: expected [5 + classes, grid height, grid width] with at least "
                         f"one class, got shape {tuple(out.shape)}")
    n_classes, (gh, gw) = out.shape[0] - 5, out.shape[1:]
    if n_classes > MAX_DETECTION_CLASSES:
        raise ValueError(f"detection output: {n_classes} classes, more than the {MAX_DETECTION_CLASSES} "
                         f"a box's class_id holds")
    width, height = (float(v) for v in sensor_size)
    cell_w, cell_h = width / gw, height / gh
    o = out.reshape(out.shape[0], -1).astype(np.float64)
    cls = _sigmoid(np.where(np.isnan(o[5:]), -np.inf, o[5:]))
    best = cls.argmax(0)
    score = _sigmoid(o[0]) * cls[best, np.arange(o.shape[1])]
    cand = np.flatnonzero(score >= spec.score_threshold)   # (NaN scores are not candidates)
    order = cand[np.argsort(-score[cand], kind="stable")][:spec.max_candidates]
    col, row = (order % gw).astype(np.float64), (order // gw).astype(np.float64)
    cx = (col + _sigmoid(o[1, order])) * cell_w
    cy = (row + _sigmoid(o[2, order])) * cell_h
    bw = np.exp(np.clip(o[3, order], _MIN_LOG_SIZE, math.log(2.0 * gw))) * cell_w
    bh = np.exp(np.clip(o[4, order], _MIN_LOG_SIZE, math.log(2.0 * gh))) * cell_h
    x0, x1 = np.clip(cx - bw / 2, 0.0, width), np.clip(cx + bw / 2, 0.0, width)
    y0, y1 = np.clip(cy - bh / 2, 0.0, height), np.clip(cy + bh / 2, 0.0, height)
    ok = (x1 > x0) & (y1 > y0)   # (False for NaN offsets or sizes)
    xyxy = np.stack([x0, y0, x1, y1], 1)[ok]
    classes, scores = best[order][ok], score[order][ok]
    keep = nms(xyxy, classes, spec.iou_threshold, spec.max_boxes)
    boxes = np.zeros(len(keep), BOX_DTYPE)
    boxes["ts"] = ts
    boxes["x"], boxes["y"] = xyxy[keep, 0], xyxy[keep, 1]
    boxes["w"], boxes["h"] = xyxy[keep, 2] - xyxy[keep, 0], xyxy[keep, 3] - xyxy[keep, 1]
    boxes["class_id"] = classes[keep]
    boxes["confidence"] = scores[keep]
    return boxes


def nms(xyxy, classes, iou_threshold: float, max_boxes: int) -> np.ndarray:
    """Greedy non-maximum suppression of boxes ``xyxy [n, 4]`` (x0, y0, x1, y1) given highest
    score first: the indices kept (at most ``max_boxes``, in order). A box is dropped when its
    IoU with a kept box of the same class exceeds ``iou_threshold``."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    classes = np.asarray(classes)
    n = len(xyxy)
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    alive = np.ones(n, bool)
    keep = []
    for i in range(n):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) == max_boxes:
            break
        rest = i + 1 + np.flatnonzero(alive[i + 1:] & (classes[i + 1:] == classes[i]))
        if len(rest) == 0:
            continue
        iw = np.minimum(xyxy[rest, 2], xyxy[i, 2]) - np.maximum(xyxy[rest, 0], xyxy[i, 0])
        ih = np.minimum(xyxy[rest, 3], xyxy[i, 3]) - np.maximum(xyxy[rest, 1], xyxy[i, 1])
        inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
        union = area[rest] + area[i] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)   # (empty boxes overlap nothing)
        alive[rest[iou > iou_threshold]] = False
    return np.array(keep, np.int64)


def flow_field(output, input_size, sensor_size, spec: FlowSpec) -> np.ndarray:
    """One window's flow output ``[2, Fh, Fw]`` as float32 (dx, dy) in sensor pixels (a new array)."""
    out = np.asarray(output)
    if out.ndim != 3 or out.shape[0] != 2 or out.shape[1] < 1 or out.shape[2] < 1:
        raise ValueError(f"flow output: expected [2, height, width], got shape {tuple(out.shape)}")
    k = np.array([sensor_size[0] / input_size[0], sensor_size[1] / input_size[1]], np.float64) * spec.scale
    return (out.astype(np.float64) * k[:, None, None]).astype(np.float32)
