"""Detection and flow results: decoding a model's grid into boxes, flow fields in sensor pixels,
and both payloads through the pipeline to every sink (JSON lines, HDF5, ZMQ, a callback, the CLI).

The models here are built by hand (never shipped) so that their outputs are known from the
input: a 64x48 sensor binned to 16x12, 10 ms windows, then 4x4 sum pooling, so one output cell
covers 16x16 sensor pixels and holds that block's event counts (ON, OFF).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.events import concatenate
from eventflow.heads import BOX_DTYPE, DetectionSpec, FlowSpec, decode_boxes, flow_field, nms
from eventflow.model import InputSpec, Model, load_model, save_model
from eventflow.pipeline import CallbackSink, SyncRunner, build, from_dict, open_sink, read_results
from eventflow.pipeline.sinks import read_flow
from eventflow.snn.layers import Conv2d, Sequential, SumPool2d
from eventflow.snn.network import Network

from .test_pipeline_net import published

W, H = 64, 48
ISPEC = InputSpec(sensor_size=(W, H), input_size=(16, 12), window_us=10_000)


def _net(out_channels, weight, bias):
    net = Network(Sequential((("pool", SumPool2d(4)), ("head", Conv2d(2, out_channels, 1)))), ISPEC.shape, seed=0)
    with torch.no_grad():
        net.weights["head"]["weight"].copy_(torch.tensor(weight, dtype=torch.float32)[:, :, None, None])
        net.weights["head"]["bias"].copy_(torch.tensor(bias, dtype=torch.float32))
    return net.eval()


def detection_model(spec=DetectionSpec()):
    """Objectness 2 * (ON + OFF) - 5: a cell with 3 events or more is a box of one cell (offset
    logits 0: centred; log sizes 0: one cell); class 'blob' when ON dominates, 'dark' when OFF does."""
    weight = [[2, 2], [0, 0], [0, 0], [0, 0], [0, 0], [-1, 1], [1, -1]]   # channels: OFF, ON
    bias = [-5, 0, 0, 0, 0, 0, 0]
    return Model("det", "detection", ("blob", "dark"), ISPEC, _net(7, weight, bias), detection=spec)


def flow_model(scale=1.0):
    """dx = ON count, dy = -OFF count, in input pixels (times ``scale``)."""
    return Model("flo", "flow", (), ISPEC, _net(2, [[0, 1], [-1, 0]], [0, 0]), flow=FlowSpec(scale))


def burst(x0, y0, n, t0, p=1, seed=0):
    rng = np.random.default_rng(seed)
    return eventflow.from_fields(x0 + rng.integers(0, 16, n), y0 + rng.integers(0, 16, n), np.full(n, p),
                                 np.sort(t0 + rng.integers(0, 9000, n)))


def events():
    """Window 0: 5 ON events in the block (16, 32) and 1 stray; window 1: 8 OFF in (48, 0);
    window 2: nothing; window 3 (closes the stream): 1 event."""
    parts = [burst(16, 32, 5, 0), burst(0, 0, 1, 500), burst(48, 0, 8, 10_000, p=0, seed=1),
             eventflow.from_fields([1], [1], [1], [35_000])]
    ev = concatenate(parts)
    return ev[np.argsort(ev["t"], kind="stable")]


def config(**head):
    return from_dict({"model": {"name": "unused"}, "source": {"origin_us": 0}, "head": {"emit": "windows", **head}})


def run(model, sinks=(), cfg=None, ev=None):
    runner = SyncRunner(build(cfg or config(), model=model, source=False, sinks=list(sinks)))
    out = runner.step(events() if ev is None else ev) + runner.finish()
    runner.p.shutdown()
    return out


# -- decoding -----------------------------------------------------------------------------

def test_detection_results_hold_a_box_where_the_events_are():
    res = run(detection_model())
    assert [r["t_start_us"] for r in res] == [0, 10_000, 20_000, 30_000]
    assert all(r["task"] == "detection" for r in res)
    b0, b1 = res[0]["boxes"], res[1]["boxes"]
    assert len(b0) == 1 and {k: b0[0][k] for k in ("x", "y", "w", "h", "class_name")} == \
        {"x": 16.0, "y": 32.0, "w": 16.0, "h": 16.0, "class_name": "blob"}
    assert b0[0]["confidence"] == pytest.approx(1 / (1 + math.exp(-5)) / (1 + math.exp(-5)), rel=1e-6)
    assert len(b1) == 1 and (b1[0]["x"], b1[0]["y"], b1[0]["class_id"]) == (48.0, 0.0, 1)
    assert res[2]["boxes"] == [] and res[3]["boxes"] == []


def test_detection_decisions_are_the_windows_with_a_box():
    res = run(detection_model(), cfg=config(emit="decisions"))
    assert [r["t_start_us"] for r in res] == [0, 10_000]


def test_head_overrides_of_the_detection_spec():
    assert [len(r["boxes"]) for r in run(detection_model(), cfg=config(score_threshold=0.999))] == [0, 1, 0, 0]
    with pytest.raises(ValueError, match="head.commit_probability: applies to classification models"):
        run(detection_model(), cfg=config(commit_probability=0.5))
    with pytest.raises(ValueError, match="head.score_threshold"):
        config(score_threshold=0)


def nms_reference(xyxy, classes, thr, most):
    """Plain Python: walk boxes in order, keep one unless it overlaps a kept box of its class by IoU > thr."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
    keep = []
    for i, b in enumerate(xyxy.tolist()):
        if len(keep) < most and all(classes[k] != classes[i] or iou(xyxy[k].tolist(), b) <= thr for k in keep):
            keep.append(i)
    return keep


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 31), st.integers(0, 40), st.floats(0.0, 1.0), st.integers(1, 30))
def test_nms_equals_the_plain_reference(seed, n, thr, most):
    rng = np.random.default_rng(seed)
    lo = rng.uniform(0, 50, (n, 2))
    xyxy = np.concatenate([lo, lo + rng.uniform(0.5, 30, (n, 2))], 1)
    classes = rng.integers(0, 3, n)
    assert nms(xyxy, classes, thr, most).tolist() == nms_reference(xyxy, classes, thr, most)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 31), st.integers(1, 4), st.integers(1, 9), st.integers(1, 9),
       st.floats(0.05, 1.0), st.floats(0.0, 1.0), st.integers(1, 50))
def test_decoded_boxes_lie_on_the_sensor_sorted_and_suppressed(seed, n_classes, gh, gw, score, iou, most):
    rng = np.random.default_rng(seed)
    out = rng.normal(0, 3, (5 + n_classes, gh, gw)).astype(np.float32)
    out[rng.random(out.shape) < 0.02] = rng.choice([np.inf, -np.inf, np.nan])
    before = out.copy()
    spec = DetectionSpec(score, iou, most)
    boxes = decode_boxes(out, (W, H), spec, ts=77)
    assert np.array_equal(out, before, equal_nan=True)   # the caller's array is not modified
    assert boxes.dtype == BOX_DTYPE and len(boxes) <= min(most, gh * gw)
    assert np.all(boxes["ts"] == 77) and np.all(boxes["track_id"] == 0)
    assert np.all(boxes["x"] >= 0) and np.all(boxes["x"] + boxes["w"] <= W + 1e-3) and np.all(boxes["w"] > 0)
    assert np.all(boxes["y"] >= 0) and np.all(boxes["y"] + boxes["h"] <= H + 1e-3) and np.all(boxes["h"] > 0)
    assert np.all(boxes["confidence"] >= np.float32(score) * (1 - 1e-6)) and np.all(boxes["class_id"] < n_classes)
    assert np.all(np.diff(boxes["confidence"]) <= 0)
    xyxy = np.stack([boxes["x"], boxes["y"], boxes["x"] + boxes["w"], boxes["y"] + boxes["h"]], 1)
    assert nms(xyxy, boxes["class_id"], iou + 1e-5, len(boxes)).tolist() == list(range(len(boxes)))


def test_decode_rejects_what_is_not_a_detection_grid():
    with pytest.raises(ValueError, match=r"expected \[5 \+ classes"):
        decode_boxes(np.zeros((5, 2, 2)), (W, H), DetectionSpec())
    with pytest.raises(ValueError, match="detection.iou_threshold"):
        DetectionSpec(iou_threshold=1.5)
    with pytest.raises(ValueError, match="detection.max_boxes"):
        DetectionSpec(max_boxes=0)


def test_flow_field_is_in_sensor_pixels():
    out = np.zeros((2, 3, 4), np.float32)
    out[0, 1, 2], out[1, 0, 0] = 1.5, -2.0
    f = flow_field(out, (16, 12), (64, 48), FlowSpec(scale=2.0))
    assert f.dtype == np.float32 and f[0, 1, 2] == 1.5 * 4 * 2 and f[1, 0, 0] == -2.0 * 4 * 2
    with pytest.raises(ValueError, match=r"expected \[2, height, width\]"):
        flow_field(np.zeros((3, 2, 2)), (16, 12), (64, 48), FlowSpec())


# -- model files ----------------------------------------------------------------------------

def test_detection_and_flow_models_round_trip_through_their_files(tmp_path):
    det = detection_model(DetectionSpec(0.4, 0.6, 7, 50))
    back = load_model(save_model(str(tmp_path / "det"), det))
    assert (back.task, back.classes, back.detection) == ("detection", ("blob", "dark"), det.detection)
    assert json.load(open(tmp_path / "det" / "model.json"))["detection"]["max_boxes"] == 7
    flo = load_model(save_model(str(tmp_path / "flo"), flow_model(0.5)))
    assert (flo.task, flo.classes, flo.flow) == ("flow", (), FlowSpec(0.5))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(task="segmentation"), "task: expected one of classification, detection, flow"),
    (lambda d: d.update(classes=["a", "b", "c"]), r"\[8, h, w\] for 3 classes, this one \(7, 3, 4\)"),
    (lambda d: d.update(task="flow"), r"a flow network outputs \[2, height, width\]"),
    (lambda d: d.update(task="classification"), r"outputs \(7, 3, 4\) but 2 classes"),
    (lambda d: d.update(detection={"score_threshold": 2}), "detection.score_threshold"),
])
def test_a_model_file_whose_task_does_not_fit_its_network_is_refused(tmp_path, edit, message):
    folder = save_model(str(tmp_path / "det"), detection_model())
    path = tmp_path / "det" / "model.json"
    d = json.load(open(path))
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=message):
        load_model(folder)


# -- sinks ----------------------------------------------------------------------------------

def test_detection_results_in_jsonl_and_hdf5_equal_the_live_ones(tmp_path):
    model = detection_model()
    live = []
    run(model, [open_sink(f"jsonl:{tmp_path / 'r.jsonl'}"), open_sink(f"hdf5:{tmp_path / 'r.h5'}", model.classes,
                                                                      "detection"), CallbackSink(live.append)])
    assert [json.loads(x) for x in open(tmp_path / "r.jsonl")] == live
    assert read_results(str(tmp_path / "r.h5")) == live and len(live) == 4   # (float32 values: exact)
    import h5py

    with h5py.File(tmp_path / "r.h5") as f:   # Gen1's box layout, ts at the window's end
        assert f["boxes"].dtype == BOX_DTYPE and f["boxes"]["ts"].tolist() == [10_000, 20_000]


def test_flow_results_carry_the_field_to_a_callback_and_a_reference_elsewhere(tmp_path, capsys):
    model = flow_model()
    live = []
    run(model, [open_sink(f"jsonl:{tmp_path / 'r.jsonl'}"), open_sink(f"hdf5:{tmp_path / 'r.h5'}", (), "flow"),
                open_sink("jsonl:-"), CallbackSink(live.append)])
    assert len(live) == 4 and all(r["task"] == "flow" for r in live)
    f0 = live[0]["flow"]
    assert f0["shape"] == [2, 3, 4] and f0["cell_px"] == [16.0, 16.0]
    field = f0["field"]
    assert field.dtype == np.float32 and field[0, 2, 1] == 5 * 4 and field[0, 0, 0] == 1 * 4 and field[1].max() == 0
    assert live[1]["flow"]["field"][1, 0, 3] == -8 * 4 and f0["max_px"] == 20.0
    assert f0["mean_px"] == [pytest.approx(24 / 12), 0.0]
    lines = [json.loads(x) for x in open(tmp_path / "r.jsonl")]
    for i, (line, r) in enumerate(zip(lines, live)):
        assert "field" not in line["flow"] and line["flow"]["ref"] == {"file": str(tmp_path / "r.jsonl.flow.h5"),
                                                                      "dataset": "flow", "index": i}
        assert np.array_equal(read_flow(line["flow"]["ref"]), r["flow"]["field"])
        assert "field" in r["flow"]   # the sinks did not take it from the shared dict
    back = read_results(str(tmp_path / "r.h5"))
    assert [np.array_equal(read_flow(b["flow"]["ref"]), r["flow"]["field"]) for b, r in zip(back, live)] == [True] * 4
    assert back[0]["flow"]["mean_px"] == pytest.approx(f0["mean_px"]) and back[0]["flow"]["shape"] == [2, 3, 4]
    out, err = capsys.readouterr()
    assert [json.loads(x)["flow"]["ref"] for x in out.splitlines()] == [None] * 4
    assert err.count("flow fields are not written to standard output") == 1


def test_flow_field_over_zmq_is_the_third_frame():
    field = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    result = {"stream": "s", "t_start_us": 0, "t_end_us": 100, "task": "flow",
              "flow": {"shape": [2, 3, 4], "cell_px": [16.0, 16.0], "mean_px": [0.0, 0.0], "max_px": 1.0,
                       "field": field}}
    frames = published(result)
    assert len(frames) == 3 and json.loads(frames[0])["type"] == "result"
    body = json.loads(frames[1])
    ref = body["flow"]["ref"]
    assert ref == {"frame": 2, "dtype": "<f4", "shape": [2, 3, 4]} and "field" not in body["flow"]
    assert np.array_equal(np.frombuffer(frames[ref["frame"]], ref["dtype"]).reshape(ref["shape"]), field)
    assert "field" in result["flow"]   # the sink left the caller's dict alone


def test_cli_runs_a_detection_model_from_its_folder(tmp_path):
    folder = save_model(str(tmp_path / "det"), detection_model())
    path = str(tmp_path / "ev.hdf5")
    eventflow.write_events(path, events(), width=W, height=H)
    p = subprocess.run([sys.executable, "-m", "eventflow", "run", "--source", path, "--model", folder,
                        "--sink", "jsonl:-", "--sink", f"hdf5:{tmp_path / 'r.h5'}", "--set", "source.origin_us=0"],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert [(r["t_start_us"], [b["class_name"] for b in r["boxes"]]) for r in lines] == [(0, ["blob"]),
                                                                                        (10_000, ["dark"])]
    assert [r["boxes"] for r in read_results(str(tmp_path / "r.h5"))] == [r["boxes"] for r in lines]


# -- the decoding rule by hand, and what goes wrong ------------------------------------------

def test_decoding_follows_the_documented_rule_on_cells_that_are_not_square():
    """A 3x2 grid (rows x columns) over a 100x60 sensor: cells 50 wide, 20 high."""
    out = np.full((6, 3, 2), -30.0, np.float32)   # one class
    logit = math.log(0.25 / 0.75)                  # sigmoid -> 0.25
    out[:, 1, 0] = [10.0, logit, -logit, math.log(0.5), math.log(3.0), 10.0]
    out[:, 2, 1] = [10.0, 0.0, 0.0, 40.0, 40.0, 10.0]   # a huge box: its size is clipped, then the box
    boxes = decode_boxes(out, (100, 60), DetectionSpec(iou_threshold=1.0))
    by_x = sorted(boxes.tolist(), key=lambda b: b[1])
    # cell (row 1, col 0): centre ((0 + 0.25) * 50, (1 + 0.75) * 20) = (12.5, 35), size (25, 60) -> clipped at y = 60
    (_, x, y, w, h, *_), (_, x2, y2, w2, h2, *_) = by_x
    assert (x, y, w, h) == pytest.approx((0.0, 5.0, 25.0, 55.0))
    # cell (row 2, col 1): size at most exp(log(2 * 2)) * 50 = 200 by exp(log(2 * 3)) * 20 = 120, clipped to the sensor
    assert (x2, y2, w2, h2) == pytest.approx((0.0, 0.0, 100.0, 60.0))


def test_the_score_threshold_is_inclusive_and_nan_class_logits_lose():
    out = np.full((7, 1, 1), 0.0, np.float32)        # obj 0.5, classes 0.5 / NaN
    out[6] = np.nan
    (b,) = decode_boxes(out, (10, 10), DetectionSpec(score_threshold=0.25))
    assert b["class_id"] == 0 and b["confidence"] == np.float32(0.25)
    assert len(decode_boxes(out, (10, 10), DetectionSpec(score_threshold=0.2500001))) == 0


def test_a_flow_model_gone_bad_still_writes_strict_json(tmp_path):
    model = flow_model()
    with torch.no_grad():
        model.network.weights["head"]["bias"].fill_(float("nan"))
    live = []
    run(model, [open_sink(f"jsonl:{tmp_path / 'r.jsonl'}", task="flow"), open_sink(f"hdf5:{tmp_path / 'r.h5'}", (),
                                                                                   "flow"), CallbackSink(live.append)])
    assert live[0]["flow"]["mean_px"] == [None, None] and live[0]["flow"]["nonfinite"] == 12
    for line in open(tmp_path / "r.jsonl"):
        d = json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
        assert d["flow"]["max_px"] is None
    back = read_results(str(tmp_path / "r.h5"))
    assert back[0]["flow"]["mean_px"] == [None, None] and back[0]["flow"]["nonfinite"] == 12


def test_sinks_and_models_that_do_not_fit_the_task_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"sink hdf5:.* is opened for classification results; model 'det' gives "
                                         r"detection results"):
        build(config(), model=detection_model(), source=False, sinks=[open_sink(f"hdf5:{tmp_path / 'x.h5'}", ("a",))])
    net = _net(7, [[0, 0]] * 7, [0] * 7)
    with pytest.raises(ValueError, match=r"model 'bad': a detection network outputs .* = \[6, h, w\] for 1 classes, "
                                         r"this one \(7, 3, 4\)"):
        Model("bad", "detection", ("one",), ISPEC, net)
    with pytest.raises(ValueError, match="task: expected one of"):
        Model("bad", "pose", ("one",), ISPEC, net)


def test_read_flow_and_read_results_refuse_what_they_cannot_read(tmp_path):
    run(flow_model(), [open_sink(f"hdf5:{tmp_path / 'r.h5'}", (), "flow")])
    good = read_results(str(tmp_path / "r.h5"))[0]["flow"]["ref"]
    assert read_flow(good).shape == (2, 3, 4)
    for bad in ({**good, "index": 99}, {**good, "index": 1.0}, {**good, "index": True}, {**good, "dataset": "results"},
                {"file": good["file"]}, "r.h5"):
        with pytest.raises(ValueError, match="read_flow"):
            read_flow(bad)
    import h5py

    with h5py.File(tmp_path / "r.h5", "a") as f:
        f.attrs["task"] = "segmentation"
    with pytest.raises(ValueError, match="unknown task 'segmentation'"):
        read_results(str(tmp_path / "r.h5"))
    with pytest.raises(OSError, match="read_flow"):
        read_flow({**good, "file": str(tmp_path / "missing.h5")})


def test_a_jsonl_flow_sink_truncates_its_field_store_on_open(tmp_path):
    store = tmp_path / "r.jsonl.flow.h5"
    store.write_bytes(b"stale")
    sink = open_sink(f"jsonl:{tmp_path / 'r.jsonl'}", task="flow")
    sink.shutdown()
    import h5py

    with h5py.File(store) as f:
        assert f.attrs["format"] == "eventflow-flow/1"
