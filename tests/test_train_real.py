"""eventflow train / eval on the real datasets' layouts (DVS128 Gesture, N-MNIST Train/Test), as a user
who has them on disk runs them: small copies written by tests/fixtures_datasets.py."""
import json
import math

import numpy as np
import pytest

from eventflow.cli import main
from eventflow.model import list_models, load_model
from eventflow.sim import simulate
from eventflow.sim.scenes import make_scene
from eventflow.sim.simulator import scene_sensor
from eventflow.train.evaluate import encoded_data, evaluate_model

from .fixtures_datasets import random_events, write_dvs_gesture, write_nmnist_file

TRIAL_START_US = (30_000_000, 60_000_000)   # where each trial's gestures sit on its clock


@pytest.fixture(scope="module")
def dvs_gesture(tmp_path_factory):
    """A DvsGesture folder of two trials (train, test), each two simulated gestures from DVS128 Gesture's
    classes, placed 30 s and 60 s into the trial's clock as in the real recordings; and their labels."""
    root = tmp_path_factory.mktemp("dvsg")
    sensor = scene_sensor("gesture")
    trials = {}
    for k, (name, classes) in enumerate((("user01_led", [2, 5]), ("user02_natural", [1, 8]))):
        scene = make_scene("gesture", sensor.width, sensor.height, 70 + k, gestures=classes)
        ev = simulate(scene, sensor, 70 + k).copy()
        ev["t"] += TRIAL_START_US[k]
        labels = [(int(g["class"]), int(g["t_start"]) + TRIAL_START_US[k], int(g["t_end"]) + TRIAL_START_US[k])
                  for g in scene.ground_truth()]
        trials[name] = (ev, labels)
    write_dvs_gesture(root, trials, train=["user01_led"], test=["user02_natural"])
    return root, trials


@pytest.mark.skipif("gesture-snn" not in list_models(), reason="the shipped gesture model is not here")
def test_eval_on_dvs_gesture_encodes_each_gesture_from_its_labelled_start(dvs_gesture):
    root, trials = dvs_gesture
    model = load_model("gesture-snn")
    W = model.input.window_us
    ev, labels = trials["user02_natural"]
    data, onsets = encoded_data(model, f"dvsgesture:{root}")
    longest = max(t1 - t0 for _, t0, t1 in labels)
    assert data.x.shape[1] == math.ceil(longest / W)   # the gesture's length, not the 60 s of the trial's clock
    assert onsets.tolist() == [0, 0]
    for i, (_, t0, t1) in enumerate(labels):
        cut = ev[(ev["t"] >= t0) & (ev["t"] < t1)].copy()
        cut["t"] -= t0
        assert np.array_equal(data.x[i].float().numpy(), model.input.encode(cut, 0, data.x.shape[1]))
        assert int(data.first[i]) == 0 and int(data.end[i]) == (t1 - t0) // W   # (the windows wholly inside it)
    r = evaluate_model(model, f"dvsgesture:{root}", check_reference=True)
    assert r["n"] == 2 and r["accuracy"] == 1.0 and r["reference_agreement"] == 1.0
    assert r["streaming"]["never_committed"] == 0.0   # (streaming figures from each gesture's start)


def _tiny_config(folder, kind, root, classes, sensor, size, window_us, seconds):
    cfg = folder / f"{kind}.yaml"
    cfg.write_text(
        f"name: tiny-{kind}\nclasses: {json.dumps(classes)}\n"
        f"data: {{train: {{kind: {kind}, root: {root}}}, val: {{kind: {kind}, root: {root}}}, seconds: {seconds}}}\n"
        f"input: {{sensor_size: {json.dumps(sensor)}, input_size: {json.dumps(size)}, window_us: {window_us}}}\n"
        "network: {channels: [4], hidden: [16], neuron: {type: PLIF}}\n"
        "optim: {epochs: 1, batch_size: 2, steps: 8, lead_in: 0, shift: 1}\n"
        "threads: 1\nout: runs\n")
    return cfg


def _train_and_eval(cfg, data_uri, capsys):
    assert main(["train", str(cfg)]) == 0
    model = cfg.parent / "runs" / f"tiny-{cfg.stem}" / "model"
    assert (model / "model.json").is_file() and (model / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["eval", str(model), data_uri, "--json", "--check"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_and_eval_on_a_dvs_gesture_folder(dvs_gesture, capsys):
    root, _ = dvs_gesture
    names = [f"c{k}" for k in range(11)]
    cfg = _tiny_config(root, "dvsgesture", "DvsGesture", names, [128, 128], [16, 16], 50_000, 1.0)
    r = _train_and_eval(cfg, f"dvsgesture:{root}", capsys)   # trained on trials_to_train, evaluated on the test list
    assert r["n"] == 2 and r["reference_agreement"] == 1.0 and "streaming" in r


def test_train_and_eval_on_an_nmnist_train_test_folder(tmp_path, capsys):
    for part, n in (("Train", 2), ("Test", 1)):
        for digit in range(10):
            for k in range(n):
                ev = random_events(100 * digit + k, 3000, 34, 34, dt_max=100)   # ~300 ms, as N-MNIST's saccades
                write_nmnist_file(tmp_path / "data" / part / str(digit) / f"{k + 1}.bin", ev)
    cfg = _tiny_config(tmp_path, "nmnist", "data", [str(d) for d in range(10)], [34, 34], [17, 17], 30_000, 0.3)
    r = _train_and_eval(cfg, f"nmnist:{tmp_path / 'data'}", capsys)   # the Test part
    assert r["n"] == 10 and r["reference_agreement"] == 1.0 and r["params"] > 0


def test_a_far_off_timestamp_is_refused_before_anything_is_allocated():
    from eventflow.events import from_fields
    from eventflow.model import InputSpec
    from eventflow.train.data import encode_dataset

    spec = InputSpec(sensor_size=(34, 34), input_size=(34, 34), window_us=10_000)
    ok = from_fields([1], [1], [1], [5_000])
    far = from_fields([1, 2], [1, 2], [1, 0], [5_000, 1 << 40])   # one corrupt time, 12.7 days in
    with pytest.raises(ValueError, match=r"^recording 1 ends at t = 1099511627776 us: 109951163 windows .* set data\.seconds"):
        encode_dataset([(ok, 0), (far, 1)], spec)
    assert encode_dataset([(ok, 0), (far, 1)], spec, seconds=0.05).x.shape[:2] == (2, 5)   # cut at data.seconds


def test_eval_names_a_recording_whose_labels_list_no_gesture(tmp_path):
    from eventflow.datasets import SimGesture

    out = tmp_path / "g"
    assert main(["dataset", "make", "gesture", "--out", str(out), "--n", "2", "--seed", "5", "--seconds", "1.2"]) == 0
    labels = [p for p in SimGesture(out).ground_truth_paths(1) if p.endswith("_labels.csv")][0]
    with open(labels) as f:
        header = f.readline()
    with open(labels, "w") as f:
        f.write(header)
    with pytest.raises(ValueError, match=r"recording 1 \(.*\): its labels list no gesture"):
        encoded_data(load_model("gesture-snn"), f"gesture:{out}")


def test_eval_runs_a_network_the_sparse_kernels_cannot_on_the_torch_reference(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from eventflow.model import model_dir

    with open(f"{model_dir('nmnist-snn')}/model.json") as f:
        lif = dict(json.load(f)["network"]["layers"][1][1])   # the shipped model's spiking layer spec
    doc = {"format": "eventflow-model/1", "name": "linear-first", "task": "classification",
           "classes": [str(d) for d in range(10)], "input": {"sensor_size": [34, 34], "input_size": [2, 2], "window_us": 10000, "encoding": "counts"},
           "network": {"type": "Sequential", "layers": [
               ["flatten", {"type": "Flatten"}], ["fc1", {"type": "Linear", "in_features": 8, "out_features": 3}],
               ["sn1", lif], ["out", {"type": "Linear", "in_features": 3, "out_features": 10}]]}}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    save_file({"fc1.weight": torch.full((3, 8), 10.0), "fc1.bias": torch.zeros(3),
               "out.weight": torch.cat([torch.ones(1, 3), torch.zeros(9, 3)]), "out.bias": torch.zeros(10)},
              str(tmp_path / "m" / "model.safetensors"))
    write_nmnist_file(tmp_path / "d" / "1.bin", random_events(0, 50, 34, 34))
    (tmp_path / "d" / "list.txt").write_text("1 0\n")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "m"), f"nmnist:{tmp_path / 'd'}", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["kernels"] == "torch" and "first layer must be a Conv2d" in r["sparse_kernels_unavailable"]
    assert r["n"] == 1 and r["accuracy"] == 1.0   # (out's first row sums the hidden spikes, the others are 0: class 0)
    assert main(["eval", str(tmp_path / "m"), f"nmnist:{tmp_path / 'd'}", "--check"]) == 2   # nothing to compare with
    assert "the sparse kernels cannot run this network" in capsys.readouterr().err


def test_eval_refuses_data_from_another_sensor_than_the_models(capsys):
    data = "nmnist:" + str(__import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
                           / "nmnist_test100")
    assert main(["eval", "gesture-snn", data, "--limit", "2"]) == 2   # a 128x128 model on 34x34 recordings
    err = capsys.readouterr().err
    assert "recordings from a 34x34 sensor, but model 'gesture-snn' takes 128x128" in err and "Traceback" not in err
