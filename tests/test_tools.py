"""The model tools a card's figures come from (tools/tune_decision.py, tools/eval_sequences.py,
tools/onset_cues.py)
agree with `eventflow eval` and the pipeline, run as a user runs them."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from eventflow.datasets import SimGesture
from eventflow.model import list_models, load_model
from eventflow.train.evaluate import evaluate_model

from .conftest import ROOT

pytestmark = pytest.mark.skipif("gesture-snn" not in list_models(), reason="the shipped gesture model is not here")


def tool(*args, timeout=300):
    p = subprocess.run([sys.executable, str(ROOT / "tools" / args[0]), *args[1:]], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def gestures(tmp_path_factory):
    from eventflow.cli import main

    out = tmp_path_factory.mktemp("g") / "split"   # one recording of each class, the card's test seed
    assert main(["dataset", "make", "gesture", "--out", str(out), "--n", "11", "--seed", "23", "--seconds", "2.0"]) == 0
    return f"gesture:{out}"


def test_tune_decision_gives_the_shipped_rule_the_figures_eval_gives(gestures):
    d = load_model("gesture-snn").decision
    out = tool("tune_decision.py", "gesture-snn", gestures, "--steps", "4", str(d.smoothing_steps),
               "--probs", str(d.commit_probability), "--switch", str(d.switch_probability),
               "--release", str(d.release_probability), "--max-wrong", "1", "--after-onset", "300")
    rows = {int(m[0]): m for m in re.findall(r"^\| (\d+) \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \| [^|]+ \| ([\d.]+) "
                                              r"\| ([\d.]+) \| [^|]+ \| ([^|]+) \| (\w*) \|$", out, re.M)}
    assert set(rows) == {4, d.smoothing_steps}, out
    assert sum(r[6] == "best" for r in rows.values()) == 1   # (every row keeps to a cap of 1)
    _, correct, wrong, never, within, later, _ = rows[d.smoothing_steps]
    s = evaluate_model(load_model("gesture-snn"), gestures)["streaming"]
    assert float(correct) == pytest.approx(s["first_commit_correct"], abs=5e-4)
    assert float(wrong) == pytest.approx(s["first_commit_wrong"], abs=5e-4)
    assert float(never) == pytest.approx(s["never_committed"], abs=5e-4)
    assert float(within) == pytest.approx(s["correct_within_300ms"], abs=5e-4)
    assert float(later) == pytest.approx(s["later_decisions"], abs=5e-4)
    assert "| 300 |" in out   # the after-onset table


def test_eval_sequences_scores_every_gesture_of_a_recording():
    r = json.loads(tool("eval_sequences.py", "--n", "2", "--gestures", "4", "--json"))
    assert r["recordings"] == 2 and r["gestures"] == 8
    assert r["repeats"] >= 1 and r["repeats_first_decision_correct"] == 1.0   # (seed 31: a class made twice in a row)
    shares = r["first_decision_correct"] + r["first_decision_wrong"] + r["no_decision"]
    assert shares == pytest.approx(1.0, abs=2e-3)
    assert r["correct_within_300ms"] <= r["first_decision_correct"]
    assert r["first_decision_correct"] >= 0.8 and r["decisions_at_rest"] == 0


def test_onset_cues_counts_the_events_around_each_onset_from_the_files(gestures):
    r = json.loads(tool("onset_cues.py", "gesture-snn", gestures, "--json"))
    assert r["n"] == 11 and r["output_never_wakes"] == 0   # (the output leaves rest in every gesture)
    ds = SimGesture(gestures.partition(":")[2])
    W = load_model("gesture-snn").input.window_us
    before, at = [], []
    for i in range(len(ds)):
        t = ds.events(i)["t"].astype(np.int64)
        k0 = int(ds.ground_truth(i)["t_start"][0]) // W
        before.append(max((np.sum(t // W == k) for k in range(k0)), default=0))
        at.append([int(np.sum(t // W == k)) for k in (k0, k0 + 1, k0 + 2)])
    before, three = np.array(before), np.array(at)
    at = three[:, 0]
    assert r["events_most_before_onset_p50_p90_max"][2] == before.max()
    assert r["events_onset_window_min_p10_p50"][0] == at.min()
    assert r["more_events_before_onset_than_in_its_window"] == pytest.approx(np.mean(before > at), abs=1e-3)
    p50, p90, most = r["output_wakes_after_onset_ms_p50_p90_max"]
    assert 0 < p50 <= p90 <= most <= 2000   # (after the onset, within the 2 s recordings)
    # a threshold finds an onset in time where no window before it reaches the threshold and one of its first three does
    best = max(np.mean((before < t) & (three.max(1) >= t)) for t in range(1, int(three.max()) + 1))
    assert r["event_threshold_best_finds_onset_in_time"] == pytest.approx(best, abs=1e-3)
