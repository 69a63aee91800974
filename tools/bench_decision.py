"""Cost of the classification head's decision rule per window, as the pipeline calls it live
(``DecisionSpec.replay`` on one window's logits at a time, the state carried between calls).

    python tools/bench_decision.py [--model gesture-snn] [--windows 2000] [--repeats 5] [--json]

Times the model's rule as shipped and the same rule without the hold (``switch_probability``
None), over random logits (the rule's cost does not depend on what the network says), and
prints the fastest and the median of the repeats, in microseconds per window.
No peer does this step (snnTorch, Norse, SpikingJelly stop at the network's output).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from eventflow.model import load_model


def per_window_us(decision, logits) -> float:
    state = decision.init_state(logits.shape[1])
    t = time.perf_counter()
    for k in range(len(logits)):
        *_, state = decision.replay(logits[k:k + 1], state)
    return (time.perf_counter() - t) / len(logits) * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gesture-snn")
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    model = load_model(a.model)
    logits = (np.random.default_rng(0).standard_normal((a.windows, len(model.classes))) * 3).astype(np.float32)
    rules = {"as shipped": model.decision, "no hold": dataclasses.replace(model.decision, switch_probability=None)}
    out = {"model": model.name}
    for name, rule in rules.items():
        t = [per_window_us(rule, logits) for _ in range(a.repeats)]
        out[name] = {"min_us": round(min(t), 1), "median_us": round(float(np.median(t)), 1)}
    print(json.dumps(out) if a.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
