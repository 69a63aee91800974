"""The shipped models do what their cards say: nmnist-snn on the real N-MNIST recordings,
gesture-snn on simulated test recordings and in streaming use, each through the sparse kernels
with the same predictions as the torch reference."""
from __future__ import annotations

import os

import pytest

from eventflow.model import list_models, load_model
from eventflow.pipeline import SyncRunner, build, from_dict
from eventflow.sim import simulate
from eventflow.sim.scenes import make_scene
from eventflow.sim.simulator import scene_sensor
from eventflow.train.evaluate import evaluate_model

from .conftest import real

pytestmark = pytest.mark.skipif(not {"gesture-snn", "nmnist-snn"} <= set(list_models()),
                                reason="the shipped models are not in this checkout")


def test_nmnist_snn_reaches_90_percent_on_the_real_recordings_through_the_sparse_kernels():
    folder = os.path.dirname(real("nmnist_test100/test100.txt"))
    r = evaluate_model(load_model("nmnist-snn"), f"nmnist:{folder}", check_reference=True)
    assert r["n"] == 100 and r["kernels"] == "sparse"
    assert r["accuracy"] >= 0.90
    assert r["reference_agreement"] == 1.0


def test_gesture_snn_on_simulated_test_recordings_through_the_sparse_kernels(tmp_path):
    from eventflow.cli import main

    out = tmp_path / "test"   # two recordings of each class, from the card's test seed (never trained on)
    assert main(["dataset", "make", "gesture", "--out", str(out), "--n", "22", "--seed", "23", "--seconds", "1.2"]) == 0
    r = evaluate_model(load_model("gesture-snn"), f"gesture:{out}", check_reference=True)
    assert r["n"] == 22 and r["accuracy"] >= 0.95 and r["reference_agreement"] == 1.0
    assert r["streaming"]["correct_within_300ms"] >= 0.9 and r["streaming"]["never_committed"] == 0.0


def decisions(model, events):
    cfg = from_dict({"model": {"name": model.name}, "source": {"origin_us": 0}, "head": {"emit": "decisions"}})
    runner = SyncRunner(build(cfg, model=model, source=False, sinks=[]))
    return [(r["t_end_us"], r["class_id"]) for r in runner.step(events) + runner.finish()]


def test_gesture_snn_decides_a_gesture_made_twice_with_a_rest_between_twice():
    """A user claps, rests, claps again: two decisions, one in each gesture (the held class is
    released at rest, so the second clap is decided again though the class did not change)."""
    model, sensor = load_model("gesture-snn"), scene_sensor("gesture")
    for c in range(1, 12):
        scene = make_scene("gesture", sensor.width, sensor.height, 3, gestures=[c, c])
        said = decisions(model, simulate(scene, sensor, 3))
        gt = scene.ground_truth()
        assert [k for _, k in said] == [c - 1, c - 1], (c, said)
        for (t, _), g in zip(said, gt):
            assert g["t_start"] <= t <= g["t_end"], (c, said)
