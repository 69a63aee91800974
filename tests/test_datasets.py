"""Datasets: the seed rule, `eventflow dataset make` and the split layout, the Sim* datasets
(with tonic transforms), and the real-dataset loaders on small copies of the real layouts."""
from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import pytest

import eventflow
from eventflow.cli import main
from eventflow.datasets import (NMNIST, DVSGesture, Gen1, SimDataset, SimDetection, SimDigits, SimFlow, SimGesture,
                                make_dataset, open_sim_dataset, read_manifest, sample_seed)
from eventflow.datasets.manifest import GESTURE_CLASSES
from eventflow.events import EVENT_DTYPE, concatenate

from .conftest import real
from .fixtures_datasets import (random_events, write_dvs_gesture, write_gen1_recording, write_nmnist_file,
                                gen1_boxes)


def same_events(a, b):
    return len(a) == len(b) and all(np.array_equal(a[k], b[k]) for k in "xypt")


# -- seed rule ------------------------------------------------------------------------------------
def test_sample_seeds_never_repeat_across_splits_and_are_pinned():
    seeds = [sample_seed(s, i) for s in range(4) for i in range(3000)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= x < 2 ** 63 for x in seeds)
    # the rule is a public format: these values must never change
    assert [sample_seed(0, 0), sample_seed(1, 0), sample_seed(0, 1)] == [
        5953593762622487536, 8034616024636295353, 6006311214365280620]
    with pytest.raises(ValueError, match="split seed"):
        sample_seed(-1, 0)
    with pytest.raises(ValueError, match="split seed"):
        sample_seed(2 ** 31, 0)


def unmix(x):
    """The inverse of sample_seed's mix, step by step: (S, i) back from a seed."""
    m = (1 << 63) - 1

    def unshift(y, k):  # inverse of y = x ^ (x >> k) on 63 bits
        x = y
        for _ in range(63 // k + 1):
            x = y ^ (x >> k)
        return x

    x = unshift(x, 32)
    x = (x * pow(0x14057B7EF767814F, -1, 1 << 63)) & m
    x = unshift(x, 29)
    x = (x * pow(0x5851F42D4C957F2D, -1, 1 << 63)) & m
    x = unshift(x, 31) ^ 0x2545F4914F6CDD1D
    return x >> 32, x & 0xFFFFFFFF


def test_sample_seed_is_invertible_so_splits_cannot_collide():
    rng = np.random.default_rng(0)
    pairs = [(0, 0), (2 ** 31 - 1, 2 ** 32 - 1)] + [(int(s), int(i)) for s, i in
                                                     zip(rng.integers(0, 2 ** 31, 200), rng.integers(0, 2 ** 32, 200))]
    for s, i in pairs:
        assert unmix(sample_seed(s, i)) == (s, i)


# -- a digits split, made once for the tests below ---------------------------------------------------
@pytest.fixture(scope="module")
def digits_split(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "train"
    assert main(["dataset", "make", "digits", "--out", str(out), "--n", "10", "--seed", "5"]) == 0
    return out


def test_make_writes_the_documented_layout(digits_split):
    doc = json.loads((digits_split / "manifest.json").read_text())
    assert (doc["name"], doc["seed"], doc["n"], doc["format"]) == ("digits", 5, 10, "eventflow-sim-dataset")
    assert (doc["sensor"]["name"], doc["sensor"]["width"], doc["sensor"]["height"]) == ("nmnist", 34, 34)
    from eventflow.sim.scenes import digits

    for k, v in digits.SENSOR_OVERRIDES.items():  # the scene's own sensor, with its overrides
        assert doc["sensor"][k] == v
    assert doc["classes"] == [str(d) for d in range(10)]
    for i, s in enumerate(doc["samples"]):
        assert s["file"] == f"{i:05d}.npz" and s["target"] == i % 10 and s["params"] == {"digit": i % 10}
        assert s["seed"] == sample_seed(5, i)
        assert s["ground_truth"] == [f"{i:05d}_label.txt"]
        assert (digits_split / s["ground_truth"][0]).read_text().strip() == str(i % 10)
        r = eventflow.open(digits_split / s["file"])
        ev = r.read_all()
        assert (r.width, r.height, len(ev)) == (34, 34, s["events"])
        assert len(ev) > 500 and np.all(np.diff(ev["t"]) >= 0)
        assert ev["x"].max() < 34 and ev["y"].max() < 34 and set(np.unique(ev["p"])) <= {0, 1}
    assert sorted(os.listdir(digits_split)) == sorted(
        ["manifest.json"] + [f"{i:05d}{e}" for i in range(10) for e in (".npz", "_label.txt")])


def test_sim_digits_items_targets_and_transforms(digits_split):
    ds = SimDigits(digits_split)
    assert len(ds) == 10 and ds.sensor_size == (34, 34, 2) and ds.targets == [i % 10 for i in range(10)]
    events, target = ds[3]
    assert events.dtype == EVENT_DTYPE and target == 3 and ds.ground_truth(3) == 3
    assert same_events(events, eventflow.open(digits_split / "00003.npz").read_all())
    assert ds[-1][1] == 9
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    seen = []
    ds = SimDigits(digits_split, transform=lambda ev: (seen.append(ev.copy()), len(ev))[1],
                   target_transform=lambda t: t + 100)
    n, t = ds[4]
    assert t == 104 and n == len(seen[0]) and ds.targets[4] == 4  # targets: before target_transform
    generic = open_sim_dataset(digits_split)
    assert type(generic) is SimDigits and SimDataset(digits_split).targets == ds.targets
    with pytest.raises(ValueError, match="'digits' split, not 'gesture'"):
        SimGesture(digits_split)


def test_tonic_to_frame_works_as_a_transform(digits_split):
    tonic = pytest.importorskip("tonic")
    ds = SimDigits(digits_split)
    frames = SimDigits(digits_split, transform=tonic.transforms.ToFrame(sensor_size=ds.sensor_size,
                                                                       time_window=10_000, include_incomplete=True))
    raw, _ = ds[2]
    f, target = frames[2]
    assert target == 2 and f.shape[1:] == (2, 34, 34) and f.shape[0] >= 25  # 0.3 s in 10 ms frames
    assert f.sum() == len(raw)
    assert f[:, 1].sum() == int((raw["p"] == 1).sum())  # channel 1 counts ON events
    x, y = int(raw["x"][0]), int(raw["y"][0])
    assert f[:, int(raw["p"][0]), y, x].sum() == int(((raw["x"] == x) & (raw["y"] == y)
                                                      & (raw["p"] == raw["p"][0])).sum())


def test_same_seed_same_split_other_seed_other_split(tmp_path, digits_split):
    make_dataset("digits", tmp_path / "a", n=2, seed=5)
    again = SimDigits(tmp_path / "a")
    first = SimDigits(digits_split)
    for i in range(2):
        assert same_events(again.events(i), first.events(i))
    other = make_dataset("digits", tmp_path / "b", n=2, seed=6)
    assert {s.seed for s in other.samples}.isdisjoint(s.seed for s in read_manifest(digits_split).samples)
    assert not same_events(SimDigits(tmp_path / "b").events(0), first.events(0))


def test_worker_processes_give_the_same_split(tmp_path, digits_split):
    make_dataset("digits", tmp_path / "j2", n=2, seed=5, jobs=2)
    ds, ref = SimDigits(tmp_path / "j2"), SimDigits(digits_split)
    assert ds.manifest.samples == ref.manifest.samples[:2]
    for i in range(2):
        assert same_events(ds.events(i), ref.events(i))


def test_non_empty_folder_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "split"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["dataset", "make", "digits", "--out", str(out), "--n", "1", "--seed", "1", "--seconds", "0.05"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    (out / "00007.npz").write_bytes(b"old")
    (out / "00007_label.txt").write_text("3")
    assert main(argv + ["--overwrite", "--format", "h5"]) == 0
    assert sorted(os.listdir(out)) == ["00000.h5", "00000_label.txt", "manifest.json", "notes.txt"]
    assert eventflow.open(out / "00000.h5").format == "hdf5" and SimDigits(out).targets == [0]


def test_another_sensor_is_used_without_the_scenes_overrides(tmp_path):
    m = make_dataset("digits", tmp_path, n=1, seed=0, sensor="dvs128", seconds=0.05)
    from eventflow.sim.sensor import sensor_preset

    assert m.sensor == dataclasses.asdict(sensor_preset("dvs128"))
    ds = SimDigits(tmp_path)
    assert ds.sensor_size == (128, 128, 2) and eventflow.open(ds.path(0)).width == 128


def test_sensor_fields_set_on_the_command_line_are_used_and_recorded(tmp_path):
    out = tmp_path / "hard"
    argv = ["dataset", "make", "digits", "--out", str(out), "--n", "2", "--seed", "3", "--seconds", "0.05",
            "--set", "contrast_on=0.3", "--set", "background_rate_hz=2"]
    assert main(argv) == 0
    from eventflow.sim import scene_sensor

    expected = scene_sensor("digits").replace(contrast_on=0.3, background_rate_hz=2.0)
    assert json.loads((out / "manifest.json").read_text())["sensor"] == dataclasses.asdict(expected)
    made = make_dataset("digits", tmp_path / "api", n=2, seed=3, sensor=expected, seconds=0.05)
    assert all(same_events(SimDigits(out).events(i), SimDigits(tmp_path / "api").events(i)) for i in range(made.n))


def test_vary_sensor_draws_each_field_from_its_own_stream_and_whole_numbers_uniformly():
    from eventflow.sim import scene_sensor
    from eventflow.sim.sensor import vary_sensor

    base = scene_sensor("digits")
    drawn = [vary_sensor(base, {"refractory_us": (0, 2), "contrast_on": (0.2, 0.2)}, seed) for seed in range(3000)]
    counts = np.bincount([d.refractory_us for d in drawn], minlength=3)
    assert len(counts) == 3 and counts.min() > 900                  # 0, 1 and 2 alike (ends included)
    assert {d.contrast_on for d in drawn} == {0.2}                  # lo == hi gives lo
    alone = [vary_sensor(base, {"contrast_off": (0.1, 0.3)}, seed).contrast_off for seed in range(20)]
    more = [vary_sensor(base, {"contrast_off": (0.1, 0.3), "background_rate_hz": (0, 3)}, seed).contrast_off
            for seed in range(20)]
    assert alone == more and len(set(alone)) == 20                  # adding a range leaves the others' draws


def test_manifest_with_a_bad_vary_is_refused_naming_the_key(tmp_path):
    make_dataset("digits", tmp_path, n=2, seed=5, seconds=0.05, vary={"contrast_on": (0.15, 0.35)})
    path = tmp_path / "manifest.json"
    good = json.loads(path.read_text())
    from eventflow.datasets.manifest import read_manifest

    for edit, message in ((lambda d: d["vary"].update(contrast_on=[0.1, "x"]), r"manifest\.vary: sensor range contrast_on"),
                          (lambda d: d["vary"].update(width=[1, 2]), r"manifest\.vary: sensor field 'width'"),
                          (lambda d: d["samples"][1].pop("sensor"), r"samples\[1\]\.sensor should hold"),
                          (lambda d: d["samples"][0].update(sensor=3), r"samples\[0\]\.sensor should be dict")):
        doc = json.loads(json.dumps(good))
        edit(doc)
        path.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
            read_manifest(tmp_path)


def test_varied_sensor_fields_are_drawn_per_sample_and_recorded(tmp_path):
    out = tmp_path / "dr"
    argv = ["dataset", "make", "digits", "--out", str(out), "--n", "4", "--seed", "5", "--seconds", "0.05",
            "--vary", "contrast_on=0.15:0.35", "--vary", "refractory_us=20:500"]
    assert main(argv) == 0
    from eventflow.datasets.manifest import read_manifest
    from eventflow.sim import scene_sensor
    from eventflow.sim.sensor import vary_sensor

    m = read_manifest(out)
    assert m.vary == {"contrast_on": (0.15, 0.35), "refractory_us": (20.0, 500.0)}
    base = scene_sensor("digits")
    assert m.sensor == dataclasses.asdict(base)   # the split's sensor; each sample replaces the varied fields
    drawn = [s.sensor for s in m.samples]
    assert len({d["contrast_on"] for d in drawn}) == 4 and all(set(d) == {"contrast_on", "refractory_us"} for d in drawn)
    for s, d in zip(m.samples, drawn):
        assert 0.15 <= d["contrast_on"] <= 0.35 and isinstance(d["refractory_us"], int) and 20 <= d["refractory_us"] <= 500
        assert d == {k: getattr(vary_sensor(base, m.vary, s.seed), k) for k in d}
    # the recorded sensor reproduces sample 2 exactly, one recording at a time
    one = make_dataset("digits", tmp_path / "one", n=3, seed=5, seconds=0.05, sensor=base.replace(**drawn[2]))
    assert same_events(SimDigits(out).events(2), SimDigits(tmp_path / "one").events(2)) and one.samples[2].sensor == {}
    # worker processes draw the same sensors
    two = make_dataset("digits", tmp_path / "jobs", n=4, seed=5, seconds=0.05, jobs=2, vary=m.vary)
    assert [s.sensor for s in two.samples] == drawn and [s.events for s in two.samples] == [s.events for s in m.samples]
    # and the other samples differ from a fixed-sensor split of the same seed
    plain = make_dataset("digits", tmp_path / "plain", n=4, seed=5, seconds=0.05)
    assert plain.vary == {} and "vary" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert [s.events for s in plain.samples] != [s.events for s in m.samples]


@pytest.mark.parametrize("argv, message", [
    (["--n", "0", "--seed", "1"], "n must be"),
    (["--n", "2", "--seed", "1", "--vary", "width=1:3"], "sensor field 'width' cannot be varied"),
    (["--n", "2", "--seed", "1", "--vary", "contrast_on=0.3"], "--vary contrast_on=0.3: expected LO:HI"),
    (["--n", "2", "--seed", "1", "--vary", "contrast_on=0.3:0.1"], "expected finite lo <= hi"),
    (["--n", "2", "--seed", "1", "--vary", "contrast_on=-1:0.3"], "vary contrast_on [-1, 0.3]: sensor 'nmnist': "
                                                                  "contrast_on=-1.0 must be > 0"),
    (["--n", "2", "--seed", "1", "--vary", "refractory_us=10.5:20"], "refractory_us: expected whole numbers"),
    (["--n", "2", "--seed", "1", "--vary", "contrast_on=0.1:0.2", "--vary", "contrast_on=0.2:0.3"],
     "--vary contrast_on given more than once"),
    (["--n", "2", "--seed", "1", "--set", "contrast_on=0.2", "--vary", "contrast_on=0.1:0.3"],
     "--set and --vary both give contrast_on"),
    (["--n", "2", "--seed", "1", "--set", "contrast_on=high"], "--set contrast_on=high: contrast_on must be a number"),
    (["--n", "2", "--seed", "1", "--set", "nosuch=1"], "nosuch"),
    (["--n", "2", "--seed", "-3"], "split seed"),
    (["--n", "2", "--seed", "1", "--sensor", "nosuch"], "unknown sensor 'nosuch'"),
    (["--n", "2", "--seed", "1", "--jobs", "0"], "jobs must be"),
    (["--n", "2", "--seed", "1", "--seconds", "0"], "seconds must be"),
])
def test_bad_arguments_are_one_line_errors_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "x"
    assert main(["dataset", "make", "digits", "--out", str(out)] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() or not os.listdir(out)
    with pytest.raises(SystemExit):
        main(["dataset", "make", "nosuchscene", "--out", str(out), "--n", "1", "--seed", "1"])


def test_manifest_errors_name_the_file_and_key(tmp_path, digits_split):
    doc = json.loads((digits_split / "manifest.json").read_text())
    del doc["samples"][2]["seed"]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"manifest.json: samples\[2\] has no key 'seed'"):
        SimDigits(tmp_path)
    with pytest.raises(OSError, match="no manifest"):
        SimDigits(tmp_path / "missing")


# -- other scenes (each when its scene module has landed) -------------------------------------------------
def test_gesture_split_targets_and_labels(tmp_path):
    make_dataset("gesture", tmp_path, n=2, seed=0, seconds=0.2)
    ds = SimGesture(tmp_path)
    assert ds.targets == [0, 1] and ds.classes == GESTURE_CLASSES and ds.sensor_size == (128, 128, 2)
    for i in range(2):
        labels = ds.ground_truth(i)
        assert set(labels["class"].tolist()) == {i + 1}
        assert np.all(labels["t_start"] < labels["t_end"])
    events, target = ds[1]
    assert target == 1 and len(events) > 0 and events["x"].max() < 128


def test_detection_split_returns_gen1_boxes(tmp_path):
    make_dataset("detection", tmp_path, n=1, seed=0, seconds=0.1)
    ds = SimDetection(tmp_path)
    events, boxes = ds[0]
    assert ds.sensor_size == (304, 240, 2) and ds.classes == ("car", "pedestrian")
    assert boxes.dtype.names[:5] == ("ts", "x", "y", "w", "h") and set(np.unique(boxes["class_id"])) <= {0, 1}
    assert np.array_equal(ds.targets[0], boxes) and len(events) > 0


def test_flow_split_returns_dense_flow(tmp_path):
    make_dataset("flow", tmp_path, n=1, seed=0, seconds=0.05, sensor="dvs128")
    ds = SimFlow(tmp_path)
    events, flow = ds[0]
    w, h = ds.manifest.width, ds.manifest.height
    assert flow["flow"].shape[1:] == (2, h, w) and len(flow["t0_us"]) == flow["flow"].shape[0] >= 1
    assert np.all(flow["t1_us"] > flow["t0_us"]) and ds.targets[0].endswith("_flow.h5")
    occluded = flow["occluded"]
    assert occluded.dtype == np.uint8 and occluded.shape == (len(flow["t0_us"]), h, w)
    assert set(np.unique(occluded)) <= {0, 1}


# -- real datasets, on small copies of their layouts ------------------------------------------------------
def test_dvs_gesture_cuts_each_labelled_gesture(tmp_path):
    a = random_events(1, 3000, 128, 128, t0=(1 << 31) - 40_000)  # crosses AEDAT 3.1's 31-bit overflow
    b = random_events(2, 2000, 128, 128, t0=5_000)
    ta, tb = a["t"], b["t"]
    trials = {"user01_fluorescent": (a, [(3, int(ta[100]), int(ta[900])), (11, int(ta[1200]), int(ta[2999]))]),
              "user02_led": (b, [(1, int(tb[0]), int(tb[500]))])}
    write_dvs_gesture(tmp_path, trials, train=["user01_fluorescent"], test=["user02_led"])
    train = DVSGesture(tmp_path, train=True)
    assert len(train) == 2 and train.targets == [2, 10] and train.sensor_size == (128, 128, 2)
    for i, (cls, t0, t1) in enumerate(trials["user01_fluorescent"][1]):
        events, target = train[i]
        assert target == cls - 1 and same_events(events, a[(ta >= t0) & (ta < t1)])
    test = DVSGesture(tmp_path / "DvsGesture", train=False, target_transform=lambda t: -t)
    assert len(test) == 1 and same_events(test[0][0], b[:500]) and test[0][1] == 0
    assert train.interval(1) == (int(ta[1200]), int(ta[2999]))
    rebased = DVSGesture(tmp_path, train=True, from_start=True)   # each gesture on a clock from its start
    for i, (cls, t0, t1) in enumerate(trials["user01_fluorescent"][1]):
        want = a[(ta >= t0) & (ta < t1)].copy()
        want["t"] -= t0
        assert same_events(rebased[i][0], want) and rebased.interval(i) == (0, t1 - t0)
    os.remove(tmp_path / "DvsGesture" / "user02_led_labels.csv")
    with pytest.raises(OSError, match="user02_led_labels.csv: labels file missing"):
        DVSGesture(tmp_path, train=False)
    with pytest.raises(OSError, match="not a DvsGesture folder"):
        DVSGesture(tmp_path / "DvsGesture" / "nothing")


def test_nmnist_train_test_layout(tmp_path):
    written = {}
    for split, digits in (("Train", range(10)), ("Test", range(10))):
        for d in digits:
            for k in (2, 10) if d == 4 else (1,):  # numbers sort as numbers: 2 before 10
                ev = random_events(1000 * len(split) + 100 * d + k, 50 + d, 34, 34)
                write_nmnist_file(tmp_path / "NMNIST" / split / str(d) / f"{k:d}.bin", ev)
                written[(split, d, k)] = ev
    ds = NMNIST(tmp_path, train=True)
    assert len(ds) == 11 and ds.targets == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9]
    assert ds.files[4].endswith(os.path.join("4", "2.bin")) and ds.files[5].endswith(os.path.join("4", "10.bin"))
    events, target = ds[5]
    assert target == 4 and same_events(events, written[("Train", 4, 10)])
    assert same_events(NMNIST(tmp_path / "NMNIST", train=False)[-1][0], written[("Test", 9, 1)])
    os.rename(tmp_path / "NMNIST" / "Test" / "7", tmp_path / "NMNIST" / "Test" / "seven")
    with pytest.raises(OSError, match="no folder '7'"):
        NMNIST(tmp_path, train=False)


def test_nmnist_from_list_reads_the_real_test100_folder():
    folder = real("nmnist_test100")
    ds = NMNIST.from_list(folder, folder / "test100.txt")
    assert len(ds) == 100 and set(ds.targets) <= set(range(10)) and ds.sensor_size == (34, 34, 2)
    total = sum(len(ds.events(i)) for i in range(len(ds)))
    assert total == 385_596
    events, _ = ds[0]
    assert same_events(events, eventflow.open(folder / "60001.bs2").read_all())


def test_nmnist_from_list_names_a_missing_sample(tmp_path):
    write_nmnist_file(tmp_path / "1.bin", random_events(0, 10, 34, 34))
    (tmp_path / "list.txt").write_text("#sample #class\n1\t3\n2\t5\n")
    with pytest.raises(OSError, match=r"sample 2 \(entry 2\) has no 2.bin or 2.bs2"):
        NMNIST.from_list(tmp_path, tmp_path / "list.txt")


def test_gen1_events_and_boxes(tmp_path):
    root = tmp_path / "detection_dataset_duration_60s_ratio_1.0"
    recs = {}
    for split, stems in (("train", ["17-04-04_11-00-13_cut_15_183500000_243500000", "17-04-06_a"]),
                         ("val", ["17-05-01_b"]), ("test", [])):
        (root / split).mkdir(parents=True)
        for j, stem in enumerate(stems):
            ev, boxes = random_events(j, 400, 304, 240), gen1_boxes(j, 5 + j)
            write_gen1_recording(root / split, stem, ev, boxes)
            recs[(split, stem)] = (ev, boxes)
    ds = Gen1(tmp_path, split="train")
    assert len(ds) == 2 and ds.sensor_size == (304, 240, 2)
    events, boxes = ds[0]
    ev, want = recs[("train", "17-04-04_11-00-13_cut_15_183500000_243500000")]
    assert same_events(events, ev) and np.array_equal(boxes, want)
    assert [len(b) for b in ds.targets] == [5, 6]
    assert same_events(Gen1(root, split="val")[0][0], recs[("val", "17-05-01_b")][0])
    with pytest.raises(OSError, match="no \\*_td.dat recordings"):
        Gen1(root, split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        Gen1(root, split="validation")
    os.remove(root / "val" / "17-05-01_b_bbox.npy")
    with pytest.raises(OSError, match="17-05-01_b_bbox.npy: boxes missing"):
        Gen1(root, split="val")
    np.save(root / "train" / "17-04-06_a_bbox.npy", np.zeros(3, [("t", "<u8"), ("x", "<f4")]))
    with pytest.raises(ValueError, match=r"boxes lack fields \['y', 'w', 'h', 'class_id'\]"):
        Gen1(root, split="train").target(1)


def test_events_returned_are_fresh_arrays(digits_split):
    ds = SimDigits(digits_split)
    a = ds.events(0)
    a["x"][:] = 0
    assert not same_events(a, ds.events(0)) and concatenate([ds.events(0)]).dtype == EVENT_DTYPE
