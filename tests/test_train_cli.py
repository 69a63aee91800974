"""eventflow train / eval end to end on a tiny simulated split (and an N-MNIST list folder)."""
import json
import os
import shutil

import pytest
import torch

from eventflow.cli import main

REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    assert main(["dataset", "make", "digits", "--out", str(root / "tr"), "--n", "20", "--seed", "901"]) == 0
    assert main(["dataset", "make", "digits", "--out", str(root / "va"), "--n", "10", "--seed", "902"]) == 0
    cfg = root / "tiny.yaml"
    cfg.write_text(
        "name: tiny\nclasses: ['0','1','2','3','4','5','6','7','8','9']\n"
        "data: {train: {kind: digits, root: tr}, val: {kind: digits, root: va}, seconds: 0.3}\n"
        "input: {sensor_size: [34, 34], input_size: [17, 17], window_us: 30000}\n"
        "network: {channels: [4], hidden: [16], neuron: {type: PLIF}}\n"
        "optim: {epochs: 2, batch_size: 10, steps: 10, lead_in: 0, shift: 1}\n"
        "threads: 1\nout: runs\n")
    return root, cfg


def _trained_model(root, cfg):
    """The tiny run's model folder, trained here when no earlier test (in this order) trained it."""
    if not (root / "runs" / "tiny" / "model" / "model.json").exists():
        assert main(["train", str(cfg)]) == 0
    return root / "runs" / "tiny" / "model"


def test_train_writes_a_loadable_model_curves_and_checkpoint(tiny_run, capsys):
    root, cfg = tiny_run
    assert main(["train", str(cfg)]) == 0
    folder = root / "runs" / "tiny"
    for f in ("checkpoint.safetensors", "checkpoint.json", "curves.png", "model/model.json", "model/model.safetensors"):
        assert (folder / f).is_file(), f
    hist = json.loads((folder / "checkpoint.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert main(["train", str(cfg), "--resume", "--epochs", "3"]) == 0      # continues, does not restart
    hist = json.loads((folder / "checkpoint.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]


def test_eval_json_keys_and_agreement(tiny_run, capsys):
    root, cfg = tiny_run
    model = _trained_model(root, cfg)
    capsys.readouterr()
    assert main(["eval", str(model), f"digits:{root / 'va'}", "--json", "--check"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["n"] == 10 and 0.0 <= r["accuracy"] <= 1.0
    assert 0.0 <= r["activation_sparsity"] <= 1.0 and r["params"] > 0 and r["footprint_bytes"] == 4 * r["params"]
    assert set(r["synaptic_ops"]) == {"effective_macs", "effective_acs", "dense"}
    assert r["reference_agreement"] == 1.0       # sparse kernels and torch reference predict alike


def test_eval_reads_an_nmnist_list_folder(tiny_run, tmp_path, capsys):
    root, cfg = tiny_run
    model = _trained_model(root, cfg)
    src = os.path.join(REAL, "nmnist_4325.bin")
    if not os.path.exists(src):
        pytest.skip("../shared/data/real is absent")
    for i in range(3):
        shutil.copy(src, tmp_path / f"{i}.bin")
    (tmp_path / "list.txt").write_text("0 3\n1 3\n2 7\n")
    capsys.readouterr()
    assert main(["eval", str(model), f"nmnist:{tmp_path}", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the same recording three times, labelled 3, 3, 7: one prediction for all three
    assert r["n"] == 3 and r["accuracy"] in (0.0, 1 / 3, 2 / 3)


def test_eval_bad_data_is_one_line(tiny_run, capsys):
    model = _trained_model(*tiny_run)     # (a real model: the error must be the DATA's, not the model's)
    capsys.readouterr()
    assert main(["eval", str(model), "mnist:/nope"]) == 2
    assert "DATA" in capsys.readouterr().err


def test_a_broken_model_json_is_named_with_its_key(tmp_path, capsys):
    import eventflow.models

    src = os.path.join(os.path.dirname(eventflow.models.__file__), "nmnist-snn")
    for name in ("model.json", "model.safetensors"):
        shutil.copy(os.path.join(src, name), tmp_path / name)
    d = json.loads((tmp_path / "model.json").read_text())
    d["input"]["window_us"] = "ten ms"
    (tmp_path / "model.json").write_text(json.dumps(d))
    assert main(["eval", str(tmp_path), "digits:nowhere"]) != 0
    err = capsys.readouterr().err
    assert "model.json: input.window_us: expected an integer, got str 'ten ms'" in err and "Traceback" not in err
    d["input"]["window_us"] = 1000
    d["decision"]["smoothing"] = 3
    (tmp_path / "model.json").write_text(json.dumps(d))
    assert main(["eval", str(tmp_path), "digits:nowhere"]) != 0
    assert "model.json: decision.smoothing: unknown key" in capsys.readouterr().err


def _broken_copy(tmp_path, edit=None, weights=None):
    import eventflow.models

    src = os.path.join(os.path.dirname(eventflow.models.__file__), "nmnist-snn")
    for name in ("model.json", "model.safetensors"):
        shutil.copy(os.path.join(src, name), tmp_path / name)
    if edit is not None:
        d = json.loads((tmp_path / "model.json").read_text())
        d = edit(d)
        (tmp_path / "model.json").write_text(json.dumps(d))
    if weights is not None:
        (tmp_path / "model.safetensors").write_bytes(weights)
    return tmp_path


def _layer(d, name):
    return next(layer for n, layer in d["network"]["layers"] if n == name)


@pytest.mark.parametrize("edit, weights, message", [
    (lambda d: [1, 2], None, "model.json: expected a JSON object at the top, got list"),
    (None, b"not safetensors at all", "model.safetensors: not a readable safetensors file"),
    (lambda d: {**d, "decision": {**d["decision"], "smoothing_steps": 10**12}}, None,
     "decision.smoothing_steps: expected an integer in 1..10000, got 1000000000000"),
    (lambda d: {**d, "decision": {**d["decision"], "commit_probability": 2}}, None,
     "decision.commit_probability: expected a number in (0, 1], got 2"),
    (lambda d: {**d, "decision": {**d["decision"], "background": 99}}, None,
     "decision.background: 99 is not a class index (there are 10 classes)"),
    (lambda d: (_layer(d, "conv1").update(stride=0), d)[1], None, "model.json: network cannot be built (ZeroDivisionError"),
    (lambda d: (_layer(d, "conv1").update(type=["x"]), d)[1], None, "model.json: network: not a valid network description"),
    (lambda d: (_layer(d, "sn1").update(tau=float("nan")), d)[1], None, "model.json: network.layers[sn1]: tau: expected a finite number, got nan"),
    (lambda d: (d["input"].update(clip=float("nan")), d)[1], None, "input.clip: expected a finite number > 0 or null"),
    (lambda d: (d["input"].update(scale=-1), d)[1], None, "input.scale: expected a finite number > 0, got -1"),
    (lambda d: (d["classes"].__setitem__(3, 3), d)[1], None, "model.json: classes[3]: expected a class name"),
    (lambda d: (d["input"].update(sensor_size=[70000, 34], input_size=[70000, 34]), d)[1], None,
     "input.sensor_size: expected [width, height] as two integers in 1..65536, got [70000, 34]"),
    (lambda d: (d["input"].update(sensor_size=[60000, 60000], input_size=[3000, 3000]), d)[1], None,
     "input.input_size [3000, 3000]: 9,000,000 pixels, more than the 4,194,304 an input may have"),
])
def test_a_broken_model_is_one_line_naming_the_file(tmp_path, capsys, edit, weights, message):
    folder = _broken_copy(tmp_path, edit, weights)
    assert main(["eval", str(folder), "digits:nowhere"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_model_json_sizes_are_checked_against_the_weights_before_any_allocation(tmp_path, capsys):
    """A model.json asking for a 1e8-wide layer meets the weights file's header first: the
    network is sized on torch's meta device, so nothing of that size is allocated."""
    def widen(d):
        _layer(d, "fc3")["out_features"] = 10**8
        _layer(d, "out")["in_features"] = 10**8
        return d
    folder = _broken_copy(tmp_path, widen)
    assert main(["eval", str(folder), "digits:nowhere"]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors: " in err and "the network needs" in err and "Traceback" not in err


def test_integer_weights_are_refused(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    folder = _broken_copy(tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["conv1.weight"] = tensors["conv1.weight"].round().to(torch.int32)
    save_file(tensors, str(folder / "model.safetensors"))
    assert main(["eval", str(folder), "digits:nowhere"]) == 2
    err = capsys.readouterr().err
    assert "conv1.weight is stored as I32" in err and "Traceback" not in err


def test_a_model_loads_the_weights_it_stores(tmp_path):
    """load_model fills the network (built on the meta device, then given storage) from the file."""
    from safetensors.torch import load_file

    from eventflow.model import load_model

    folder = _broken_copy(tmp_path)
    stored = load_file(str(folder / "model.safetensors"))
    loaded = dict(load_model(str(folder)).network.weights.named_parameters())
    assert set(loaded) == set(stored)
    assert all(torch.equal(loaded[k].detach(), stored[k].float()) for k in stored)
