"""A gesture model in streaming use over recordings of several gestures in a row, with rests
between them, as DVS128 Gesture's trials are and as `eventflow run` replays them.

usage: python tools/eval_sequences.py [--model gesture-snn] [--n 20] [--seed 31] [--gestures 4] [--json]

Recording i is the simulator's gesture scene with seed ``sample_seed(--seed, i)`` (split seed 31
is used by no dataset of configs/: 21 train, 22 validation, 23 test), performing ``--gestures``
classes drawn from that seed, 2 s each with rests. Each is replayed through the pipeline's
decision rule (``head.emit=decisions``: a result where the rule decides: the committed class
changes, or the same class is committed again after the output went to rest).
A decision belongs to gesture k when it comes between its labelled start and 200 ms after its
end (the rule smooths over the last windows); any other decision is a decision at rest. Reports,
over all gestures: the share whose first decision is correct, correct within 300 ms of the onset,
wrong, or missing (``repeats``: how many repeat the class before them, and the share of those
whose first decision is correct: the same gesture made again after a rest must be decided again);
the decisions at rest per minute of recording; and the later decisions per minute: those that
come after a gesture's first one, before its end + 200 ms (the rule changing its mind during a
gesture or as the arms ease out of it; the pipeline prints each).
Until 2026-12-03 the pipeline did not decide a repeated gesture again, and this tool left the
repeats out (counting a decision during one as a later decision).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from eventflow.datasets.manifest import sample_seed
from eventflow.model import load_model
from eventflow.pipeline import SyncRunner, build, from_dict
from eventflow.sim import simulate
from eventflow.sim.scenes import make_scene
from eventflow.sim.simulator import scene_sensor

GRACE_US = 200_000


def decisions(model, events):
    cfg = from_dict({"model": {"name": model.name}, "source": {"origin_us": 0}, "head": {"emit": "decisions"}})
    pipeline = build(cfg, model=model, source=False, sinks=[])
    runner = SyncRunner(pipeline)
    out = runner.step(events) + runner.finish()
    pipeline.shutdown()
    return [(r["t_end_us"], r["class_id"]) for r in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gesture-snn")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--gestures", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    model = load_model(a.model)
    sensor = scene_sensor("gesture")
    first_ok = within_300 = wrong = total = at_rest = repeats = repeats_ok = later = 0
    seconds = 0.0
    rest_examples = []
    for i in range(a.n):
        s = sample_seed(a.seed, i)
        classes = np.random.default_rng(s).integers(1, 12, a.gestures).tolist()
        scene = make_scene("gesture", sensor.width, sensor.height, s, gestures=classes)
        events = simulate(scene, sensor, s)
        gt = scene.ground_truth()
        seconds += scene.duration_s
        said = decisions(model, events)
        owner = [next((k for k, g in enumerate(gt) if g["t_start"] <= t <= g["t_end"] + GRACE_US), None)
                 for t, _ in said]
        for k, g in enumerate(gt):
            repeat = k and g["class"] == gt[k - 1]["class"]   # the same class again
            repeats += bool(repeat)
            total += 1
            mine = [(t, c) for (t, c), o in zip(said, owner) if o == k]
            if not mine:
                continue
            later += len(mine) - 1
            t, c = mine[0]
            if c == g["class"] - 1:
                first_ok += 1
                repeats_ok += bool(repeat)
                within_300 += (t - g["t_start"]) <= 300_000
            else:
                wrong += 1
        rest = [(t, c) for (t, c), o in zip(said, owner) if o is None]
        at_rest += len(rest)
        rest_examples += [(i, t / 1e6, model.classes[c]) for t, c in rest[:2]]
    res = {"model": model.name, "recordings": a.n, "gestures": total,
           "repeats": repeats, "repeats_first_decision_correct": round(repeats_ok / repeats, 3) if repeats else None,
           "minutes": round(seconds / 60, 2),
           "first_decision_correct": round(first_ok / total, 3), "correct_within_300ms": round(within_300 / total, 3),
           "first_decision_wrong": round(wrong / total, 3), "no_decision": round((total - first_ok - wrong) / total, 3),
           "decisions_at_rest": at_rest, "decisions_at_rest_per_minute": round(at_rest / (seconds / 60), 2),
           "later_decisions": later, "later_decisions_per_minute": round(later / (seconds / 60), 2),
           "rest_examples": rest_examples[:6]}
    print(json.dumps(res) if a.json else json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
