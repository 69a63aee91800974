"""``eventflow dataset make NAME --out DIR --n N --seed S``: write a simulated dataset split.

    eventflow dataset make digits --out data/digits/train --n 6000 --seed 1 --jobs 2
    eventflow dataset make digits --out data/digits/val --n 1000 --seed 2
    eventflow dataset make digits --out data/digits/hard --n 500 --seed 15 --set contrast_on=0.3
    eventflow dataset make digits --out data/digits/dr --n 8000 --seed 17 --vary contrast_on=0.15:0.35

Splits made with different seeds never share a sample seed (``eventflow.datasets.manifest``).
"""
from __future__ import annotations

import argparse
import sys
import time

from ..sim.scenes import SCENE_NAMES
from ..progress import progress

DESCRIPTION = """Simulate N recordings of a scene into DIR: one event file per sample (00000.npz, ...),
its ground truth beside it (as the scene writes it: gesture _labels.csv, digits _label.txt,
detection _bbox.npy, flow _flow.h5) and DIR/manifest.json (written last) listing every sample's
file, target, seed and ground-truth files.

Classes are balanced: gesture sample i performs DVS128 Gesture class 1 + i % 11 (target i % 11),
digits sample i shows digit i % 10. Sample i's seed is an invertible mix of (SEED, i), so splits
made with different --seed values never share a sample. --vary FIELD=LO:HI draws a sensor field
per sample from its seed (domain randomisation); each sample's manifest entry records the values
drawn. Read a split with
eventflow.datasets.SimGesture / SimDigits / SimDetection / SimFlow."""


def register(subparsers) -> None:
    sp = subparsers.add_parser("dataset", help="make simulated dataset splits (gesture, digits, detection, flow)",
                               description="Simulated datasets: 'eventflow dataset make NAME --out DIR ...'.")
    sub = sp.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    mk = sub.add_parser("make", help="simulate N recordings of a scene into a dataset folder",
                        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    mk.add_argument("name", metavar="NAME", choices=SCENE_NAMES,
                    help="the scene: gesture, digits, detection or flow")
    mk.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be empty)")
    mk.add_argument("--n", required=True, type=int, metavar="N", help="number of recordings")
    mk.add_argument("--seed", required=True, type=int, metavar="S",
                    help="split seed, 0..2147483647 (use a different one for each split)")
    mk.add_argument("--sensor", metavar="NAME",
                    help="sensor preset (dvs128, davis346, gen1, imx636, nmnist); default: the scene's own, "
                         "with the scene's sensor overrides")
    mk.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a sensor field, e.g. --set contrast_on=0.3 --set background_rate_hz=2 "
                         "(repeatable; see eventflow.sim.SensorConfig; manifest.json records the sensor used)")
    mk.add_argument("--vary", action="append", default=[], metavar="FIELD=LO:HI",
                    help="draw a sensor field per recording, uniformly in [LO, HI] (refractory_us: whole numbers), "
                         "from the recording's seed, "
                         "e.g. --vary contrast_on=0.15:0.35 --vary background_rate_hz=0.1:3 (repeatable; fields: "
                         "contrast_on, contrast_off, contrast_sigma, refractory_us, background_rate_hz, "
                         "hot_pixel_fraction, hot_pixel_rate_hz, shot_noise_rate_hz, log_eps)")
    mk.add_argument("--seconds", type=float, metavar="S", help="length of each recording (default: the scene's)")
    mk.add_argument("--jobs", type=int, default=1, metavar="J", help="worker processes (default 1)")
    mk.add_argument("--format", choices=("npz", "h5"), default="npz",
                    help="event files: npz (default: fastest to read for small samples, smallest) or h5 "
                         "(Metavision HDF5, ECF)")
    mk.add_argument("--overwrite", action="store_true",
                    help="allow a non-empty DIR: an earlier split's files there are replaced (others kept)")
    mk.set_defaults(func=cmd_make)


def cmd_make(a) -> int:
    from ..datasets.make import make_dataset
    from .simulate import parse_ranges, sensor_with_overrides

    sensor = sensor_with_overrides(a.name, a.sensor, a.set)
    vary = parse_ranges(a.vary)
    both = sorted(set(vary) & {item.partition("=")[0].strip() for item in a.set})
    if both:
        raise ValueError(f"--set and --vary both give {both[0]}: fix it with --set or draw it with --vary")
    start = time.perf_counter()
    with progress(a.n, f"{a.name} -> {a.out}", "rec", unit_scale=False) as bar:
        m = make_dataset(a.name, a.out, a.n, a.seed, sensor=sensor, seconds=a.seconds, jobs=a.jobs,
                         overwrite=a.overwrite, ext="." + a.format, vary=vary,
                         progress=None if bar is None else bar.update)
    took = time.perf_counter() - start
    events = sum(s.events for s in m.samples)
    print(f"wrote {m.n} {m.name} recordings ({events:,} events, sensor {m.sensor['name']} "
          f"{m.width}x{m.height}) to {a.out} in {took:.1f} s", file=sys.stderr)
    return 0
