"""The on-disk layout of a simulated dataset split (a public format), and its seed rule.

A split made by ``eventflow dataset make NAME --out DIR --n N --seed S`` is a folder::

    DIR/manifest.json          written last: a folder without it is an unfinished split
    DIR/00000.npz              events of sample 0 (arrays x, y, p, t, width, height; see below)
    DIR/00000_labels.csv       its ground truth, as the scene writes it (scene.save_ground_truth)
    DIR/00001.npz ...

``manifest.json``::

    {"format": "eventflow-sim-dataset", "version": 1,
     "name": "gesture",                      # the scene: gesture, digits, detection, flow
     "seed": S, "n": N, "seconds": null,     # null: the scene's own duration
     "sensor": {"name": "dvs128", "width": 128, "height": 128, ...},  # every SensorConfig field
     "vary": {"contrast_on": [0.15, 0.35]},  # optional: sensor fields drawn per sample from these ranges
     "classes": ["hand_clap", ...],          # target i names classes[i]; [] where targets are not classes
     "seed_rule": "...",                     # how sample seeds follow from S (below)
     "samples": [{"file": "00000.npz", "target": 0, "seed": 7318..., "params": {"gestures": 1},
                  "ground_truth": ["00000_labels.csv"], "events": 81234}, ...]}

Paths are relative to DIR. ``target`` is the class index (gesture: DVS128 Gesture's class id
minus one, 0..10; digits: the digit) or null (detection, flow: the target is the ground-truth
file). ``params`` are the scene parameters the sample was made with (besides its seed). In a
split made with ``vary`` (domain randomisation: ``--vary FIELD=LO:HI``), each sample also has
``"sensor"``: the fields drawn for it (``eventflow.sim.sensor.vary_sensor`` from the sample's
seed), which replace those of the split's ``sensor``.

Events are stored as ``.npz`` (numpy's zip of arrays x u2, y u2, p i2, t i8, compressed) by
default, or Metavision HDF5 (``.h5``, ECF) on request; ``eventflow.open`` reads both. Measured on
this project's machine (2 shared, loaded cores; best of 7, ``eventflow.open(f).read_all()``):
a simulated digits sample (3,100 events) reads in 3.8 ms from .npz at 4.0 bytes/event, 8.8 ms from
.h5 at 95 bytes/event (HDF5's fixed overhead dominates small files); a simulated gesture sample
(38,800 events) 11.8 ms (.npz, 3.9 bytes/event) against 10.6 ms (.h5, 12 bytes/event); the real
219,596-event recording 20 ms (.npz, 2.3 bytes/event) against 13 ms (.h5, 3.4 bytes/event).
Small samples decide it (N-MNIST-like splits have tens of thousands of them): .npz reads them
twice as fast and stores them in a twentieth of the space; large samples read at similar speed.

Seed rule: sample ``i`` of a split made with seed ``S`` gets ``sample_seed(S, i)``, an
invertible mix of the 63-bit number ``S * 2**32 + i`` (S < 2**31, i < 2**32; ``SEED_RULE``
spells it out). The scene and the simulator both draw from that seed. Distinct (S, i) pairs
give distinct seeds, so splits made with different S never share a sample seed (unlike
``S * k + i``, whose ranges overlap), while neighbouring samples get unrelated-looking seeds.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..sim.sensor import check_ranges

MANIFEST = "manifest.json"
FORMAT = "eventflow-sim-dataset"
VERSION = 1
MAX_SPLIT_SEED = (1 << 31) - 1
MAX_SAMPLES = 1 << 32
_MASK63 = (1 << 63) - 1
SEED_RULE = ("sample_seed(S, i): x = (S * 2**32 + i) XOR 0x2545F4914F6CDD1D (63 bits); x ^= x >> 31; x = x * 0x5851F42D4C957F2D "
             "mod 2**63; x ^= x >> 29; x = x * 0x14057B7EF767814F mod 2**63; x ^= x >> 32")

#: DVS128 Gesture's classes, by class id - 1 (the target index)
GESTURE_CLASSES = ("hand_clap", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
                   "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
                   "arm_roll", "air_drums", "air_guitar", "other_gestures")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
#: Gen1's box classes, by class_id
DETECTION_CLASSES = ("car", "pedestrian")


def sample_seed(split_seed: int, index: int) -> int:
    """The seed of sample ``index`` in a split made with seed ``split_seed`` (see the module docstring).

    >>> sample_seed(0, 0)
    5953593762622487536
    >>> sample_seed(0, 1) != sample_seed(1, 0)
    True
    """
    s, i = int(split_seed), int(index)
    if not 0 <= s <= MAX_SPLIT_SEED:
        raise ValueError(f"split seed must be in 0..{MAX_SPLIT_SEED}, got {s}")
    if not 0 <= i < MAX_SAMPLES:
        raise ValueError(f"sample index must be in 0..{MAX_SAMPLES - 1}, got {i}")
    x = ((s << 32) | i) ^ 0x2545F4914F6CDD1D
    x ^= x >> 31
    x = (x * 0x5851F42D4C957F2D) & _MASK63
    x ^= x >> 29
    x = (x * 0x14057B7EF767814F) & _MASK63
    x ^= x >> 32
    return x


@dataclass(frozen=True)
class SampleEntry:
    """One recording of a split: its event file, target, seed and ground-truth files (relative paths)."""

    file: str
    target: int | None
    seed: int
    params: dict = field(default_factory=dict)
    ground_truth: tuple = ()
    events: int = 0
    sensor: dict = field(default_factory=dict)   # the sensor fields drawn for this sample (split made with vary)

    def to_json(self) -> dict:
        doc = {"file": self.file, "target": self.target, "seed": self.seed, "params": dict(self.params),
               "ground_truth": list(self.ground_truth), "events": self.events}
        if self.sensor:
            doc["sensor"] = dict(self.sensor)
        return doc


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds (see the module docstring)."""

    name: str
    seed: int
    n: int
    sensor: dict
    classes: tuple
    samples: tuple
    seconds: float | None = None
    vary: dict = field(default_factory=dict)   # {field: (lo, hi)}: sensor fields drawn per sample


    @property
    def width(self) -> int:
        return int(self.sensor["width"])

    @property
    def height(self) -> int:
        return int(self.sensor["height"])

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "seed": self.seed, "n": self.n,
                "seconds": self.seconds, "sensor": dict(self.sensor), "classes": list(self.classes),
                **({"vary": {k: list(v) for k, v in self.vary.items()}} if self.vary else {}),
                "seed_rule": SEED_RULE, "samples": [s.to_json() for s in self.samples]}


def write_manifest(root, manifest: Manifest) -> str:
    """Write ``root/manifest.json`` (through a temporary file, so a reader never sees half of it)."""
    path = os.path.join(os.fspath(root), MANIFEST)
    tmp = path + ".tmp"
    doc = manifest.to_json()
    samples = doc.pop("samples")
    head = json.dumps(doc, indent=1)[:-2]  # one line per sample below, not one per value
    rows = ",\n".join("  " + json.dumps(s) for s in samples)
    with open(tmp, "w") as f:
        f.write(f'{head},\n "samples": [\n{rows}\n ]\n}}\n')
    os.replace(tmp, path)
    return path


def _need(obj, key, kind, where, path):
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{path}: {where} has no key {key!r}")
    v = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{path}: {where}.{key} should be {names}, got {type(v).__name__}")
    return v


def read_manifest(root) -> Manifest:
    """Read and check ``root/manifest.json``; errors name the file and the key at fault."""
    path = os.path.join(os.fspath(root), MANIFEST)
    if not os.path.isfile(path):
        raise OSError(f"{path}: no manifest (not a dataset split made by 'eventflow dataset make', "
                      "or an unfinished one)")
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: 'format' is not {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: version {doc.get('version')!r} is not supported (this reader: {VERSION})")
    name = _need(doc, "name", str, "manifest", path)
    sensor = _need(doc, "sensor", dict, "manifest", path)
    for k in ("width", "height"):
        _need(sensor, k, int, "sensor", path)
    samples = []
    for i, s in enumerate(_need(doc, "samples", list, "manifest", path)):
        where = f"samples[{i}]"
        target = s.get("target") if isinstance(s, dict) else None
        if target is not None and (not isinstance(target, int) or isinstance(target, bool)):
            raise ValueError(f"{path}: {where}.target should be an int or null, got {target!r}")
        gt = _need(s, "ground_truth", list, where, path)
        samples.append(SampleEntry(file=_need(s, "file", str, where, path), target=target,
                                   seed=_need(s, "seed", int, where, path), params=dict(s.get("params") or {}),
                                   ground_truth=tuple(str(g) for g in gt), events=int(s.get("events", 0)),
                                   sensor=dict(_need(s, "sensor", dict, where, path)) if "sensor" in s else {}))
    n = _need(doc, "n", int, "manifest", path)
    if n != len(samples):
        raise ValueError(f"{path}: n is {n} but {len(samples)} samples are listed")
    seconds = doc.get("seconds")
    try:
        vary = check_ranges(doc.get("vary") or {})
    except ValueError as e:
        raise ValueError(f"{path}: manifest.vary: {e}") from None
    for i, s in enumerate(samples):
        if set(s.sensor) != set(vary):
            raise ValueError(f"{path}: samples[{i}].sensor should hold the varied fields "
                             f"{sorted(vary) or 'none'}, got {sorted(s.sensor) or 'none'}")
    return Manifest(name=name, seed=_need(doc, "seed", int, "manifest", path), n=n, sensor=sensor,
                    classes=tuple(_need(doc, "classes", list, "manifest", path)), samples=tuple(samples),
                    seconds=None if seconds is None else float(seconds),
                    vary=vary)
