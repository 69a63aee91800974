"""Make a simulated dataset split: N recordings of one scene, their ground truth and a manifest.

The layout and the seed rule are in ``eventflow.datasets.manifest``. Classes are balanced by
index: gesture sample ``i`` performs DVS128 Gesture class ``1 + i % 11`` (target ``i % 11``),
digits sample ``i`` shows digit ``i % 10``; detection and flow samples differ only by seed.

>>> m = make_dataset("digits", "/tmp/digits_train", n=20, seed=1)    # doctest: +SKIP
>>> m.samples[3].target, m.samples[3].file                          # doctest: +SKIP
(3, '00003.npz')
"""
from __future__ import annotations

import dataclasses
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .manifest import (DETECTION_CLASSES, DIGIT_CLASSES, GESTURE_CLASSES, MAX_SAMPLES, Manifest, SampleEntry,
                       sample_seed, write_manifest)

EVENT_FORMATS = (".npz", ".h5")
#: files a split writes (``00012.npz``, ``00012_labels.csv``, ``manifest.json``): what --overwrite removes
_OURS = re.compile(r"^(\d{5,}([._].*)?|manifest\.json(\.tmp)?)$")


@dataclass(frozen=True)
class SampleTask:
    """Everything one worker needs to make sample ``index`` (picklable, no open resources)."""

    name: str
    seed: int
    sensor: object  # SensorConfig
    seconds: float | None
    params: dict
    target: int | None
    out_dir: str
    stem: str
    ext: str
    varied: tuple = ()   # the sensor fields drawn for this sample (recorded in its manifest entry)


def classes_of(name: str) -> tuple:
    """The class names of a scene's targets (empty where targets are not classes)."""
    return {"gesture": GESTURE_CLASSES, "digits": DIGIT_CLASSES, "detection": DETECTION_CLASSES}.get(name, ())


def sample_plan(name: str, index: int) -> tuple[dict, int | None]:
    """(scene parameters, target) of sample ``index``: the balanced class assignment.

    >>> sample_plan("gesture", 12), sample_plan("digits", 13), sample_plan("flow", 0)
    (({'gestures': 2}, 1), ({'digit': 3}, 3), ({}, None))
    """
    if name == "gesture":
        return {"gestures": 1 + index % 11}, index % 11
    if name == "digits":
        return {"digit": index % 10}, index % 10
    if name in ("detection", "flow"):
        return {}, None
    from ..sim.scenes import SCENE_NAMES

    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(SCENE_NAMES)}")


def make_sample(task: SampleTask) -> SampleEntry:
    """Simulate one recording, write its events and ground truth; return its manifest entry."""
    from .. import write_events
    from ..sim.simulator import simulate_scene

    events, scene, sensor = simulate_scene(task.name, task.sensor, task.seed, task.seconds, **task.params)
    stem = os.path.join(task.out_dir, task.stem)
    write_events(stem + task.ext, events, width=sensor.width, height=sensor.height)
    written = scene.save_ground_truth(stem)
    out_dir = os.path.realpath(task.out_dir)
    gt = []
    for p in written:
        if os.path.dirname(os.path.realpath(p)) != out_dir:
            raise ValueError(f"scene {task.name!r} wrote ground truth {p} outside the split folder {out_dir}")
        gt.append(os.path.basename(p))
    return SampleEntry(file=task.stem + task.ext, target=task.target, seed=task.seed, params=dict(task.params),
                       ground_truth=tuple(gt), events=int(len(events)),
                       sensor={f: getattr(task.sensor, f) for f in task.varied})


def _prepare_folder(out: str, overwrite: bool) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise OSError(f"{out}: exists and is not a folder")
    os.makedirs(out, exist_ok=True)
    present = sorted(os.listdir(out))
    if not present:
        return
    if not overwrite:
        raise OSError(f"{out}: folder is not empty ({len(present)} entries, e.g. {present[0]!r}); "
                      "choose an empty one or pass --overwrite")
    for entry in present:  # only what a split writes; anything else of the user's stays
        path = os.path.join(out, entry)
        if _OURS.match(entry) and os.path.isfile(path):
            os.remove(path)


def make_dataset(name: str, out, n: int, seed: int, *, sensor=None, seconds: float | None = None,
                 jobs: int = 1, overwrite: bool = False, ext: str = ".npz", vary: dict | None = None,
                 progress=None) -> Manifest:
    """Simulate ``n`` recordings of scene ``name`` into the folder ``out``; returns the manifest written.

    sensor: a preset name or a ``SensorConfig`` (default: the scene's own sensor, with its overrides).
    seconds: length of each recording (default: the scene's). jobs: worker processes, started with
        "spawn" (a script that calls this with jobs > 1 needs the ``if __name__ == "__main__":`` guard);
        the split is the same whatever the number of jobs.
    overwrite: allow a non-empty ``out`` (files of an earlier split are removed, others kept).
    ext: ".npz" (default) or ".h5".
    vary: ``{field: (lo, hi)}``: domain randomisation; each sample's sensor has these fields drawn
        from its own seed (``eventflow.sim.sensor.vary_sensor``); its manifest entry records them.
    progress: called with 1 after each sample is written.
    """
    from ..sim.sensor import INTEGER_FIELDS, check_ranges, vary_sensor
    from ..sim.simulator import scene_sensor

    sample_plan(name, 0)  # unknown names fail here, before any file is touched
    n, seed, jobs = int(n), int(seed), int(jobs)
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be in 1..{MAX_SAMPLES}, got {n}")
    sample_seed(seed, 0)  # checks the seed's range
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if seconds is not None and not float(seconds) > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if ext not in EVENT_FORMATS:
        raise ValueError(f"event file extension must be one of {EVENT_FORMATS}, got {ext!r}")
    cfg = scene_sensor(name, sensor)
    vary = check_ranges(vary or {})
    for f, (lo, hi) in vary.items():   # both ends must make a valid sensor, before any file is touched
        try:
            for end in (lo, hi):
                cfg.replace(**{f: int(end) if f in INTEGER_FIELDS else end})
        except ValueError as e:
            raise ValueError(f"vary {f} [{lo:g}, {hi:g}]: {e}") from None
    out = os.fspath(out)
    _prepare_folder(out, overwrite)
    digits = max(5, len(str(n - 1)))
    tasks = []
    for i in range(n):
        params, target = sample_plan(name, i)
        s_seed = sample_seed(seed, i)
        tasks.append(SampleTask(name=name, seed=s_seed, sensor=vary_sensor(cfg, vary, s_seed),
                                seconds=None if seconds is None else float(seconds), params=params,
                                target=target, out_dir=out, stem=f"{i:0{digits}d}", ext=ext,
                                varied=tuple(vary)))
    samples = []
    if jobs == 1:
        for t in tasks:
            samples.append(make_sample(t))
            if progress is not None:
                progress(1)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold numba/torch threads
        with ProcessPoolExecutor(max_workers=min(jobs, n), mp_context=ctx) as pool:
            for entry in pool.map(make_sample, tasks):
                samples.append(entry)
                if progress is not None:
                    progress(1)
    manifest = Manifest(name=name, seed=seed, n=n, sensor=dataclasses.asdict(cfg), classes=classes_of(name),
                        samples=tuple(samples), seconds=None if seconds is None else float(seconds),
                        vary=vary)
    write_manifest(out, manifest)
    return manifest


__all__ = ["EVENT_FORMATS", "SampleTask", "classes_of", "make_dataset", "make_sample",
           "sample_plan"]
