"""The model tools a card's figures come from (tools/tune_decision.py, tools/eval_sequences.py)
agree with `eventflow eval` and the pipeline, run as a user runs them."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

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
