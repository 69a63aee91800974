"""Choose a classifier's streaming decision rule on a validation split (never the test split).

usage: python tools/tune_decision.py MODEL DATA [DATA ...] [--steps 2 3 4 6 8 10] [--probs 0.5 0.6 0.7 0.8 0.9]
                                     [--max-wrong 0.08] [--max-later X] [--switch P --release Q]
                                     [--after-onset 50 100 150 200 250 300]

Runs the model once over every recording of DATA (e.g. gesture:data/gesture-val; several DATA
are pooled, e.g. a validation split of 1.2 s recordings and one of 2 s) from rest,
then replays its per-window outputs through each DecisionSpec(smoothing_steps, commit_probability)
of the grid (``eventflow.train.evaluate.first_commits``, the rule the pipeline's head uses)
and prints, per setting: first commit correct / wrong / never, the share of recordings whose
first commit is correct and within 300 ms of the gesture's onset, and the onset-to-commit
latency of the correct ones, and the later decisions per recording (the rule's decisions after
the first commit from the onset on, to the recording's end: changes of the committed class, mostly
as the arms ease out of the gesture, and the same class committed again after the output went to
rest; each one a decision the pipeline prints). Marks the setting with the most correct-within-300-ms
commits (pooled) among those whose wrong-first-commit rate is at most --max-wrong, and (with
--max-later) whose later decisions per recording are at most --max-later, on every DATA given
(not only pooled: a rule that keeps to the cap on average can break it on one recording length;
the table gives each DATA's figures). Write the choice into the model's config (``decision:``)
and model.json yourself. ``--switch`` / ``--release`` give every rule of the grid that
``switch_probability`` / ``release_probability`` (a committed class gives way to another only at
the switch probability until the output has fallen below the release one; ``DecisionSpec``);
a rule whose commit probability is already at or above the switch one has none.

Then, per delay after the onset (``--after-onset``, ms), how often the network names the class:
the top class of the last window that ends by onset + delay (the same clock as "within 300 ms":
a commit counts at its window's end), its own output and the model's current rule's smoothed
probability there (whether or not it has reached the commit probability): how soon the evidence
is there, whatever rule reads it. Recordings with no such window yet (or none left) are left out.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from eventflow.model import load_model
from eventflow.train.data import concat
from eventflow.train.evaluate import commit_summary, encoded_data, first_commits, run_outputs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data", nargs="+")
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 3, 4, 6, 8, 10])
    ap.add_argument("--probs", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--max-wrong", type=float, default=0.08)
    ap.add_argument("--max-later", type=float, default=None, help="cap on later decisions per recording, each DATA")
    ap.add_argument("--switch", type=float, default=None, help="switch_probability of every rule (default none)")
    ap.add_argument("--release", type=float, default=0.0, help="release_probability of every rule (default 0)")
    ap.add_argument("--after-onset", type=float, nargs="+", default=[50, 100, 150, 200, 250, 300], metavar="MS")
    a = ap.parse_args()
    model = load_model(a.model)
    parts = [encoded_data(model, uri) for uri in a.data]
    named = " ".join(a.data)
    if any(o is None for _, o in parts):   # (before the model runs)
        raise SystemExit(f"{named}: no gesture intervals (the streaming figures need labelled onsets)")
    data, onsets = concat([d for d, _ in parts]), np.concatenate([o for _, o in parts])
    outputs = run_outputs(model, data)
    starts = np.cumsum([0] + [len(d) for d, _ in parts])
    rows = []
    for s in a.steps:
        for p in a.probs:
            held = a.switch is not None and a.switch > p
            rule = replace(model.decision, smoothing_steps=s, commit_probability=p,
                           switch_probability=a.switch if held else None, release_probability=a.release if held else 0.0)
            delay_ms, correct, later = first_commits(model, outputs, data, onsets, rule)
            wrong = ~np.isnan(delay_ms) & ~correct
            parts = list(zip(starts[:-1], starts[1:]))
            each = [float(wrong[b:e].mean()) for b, e in parts]
            each_later = [float(later[b:e].mean()) for b, e in parts]
            rows.append((s, p, commit_summary(delay_ms, correct, later), each, each_later))
    ok = [row for row in rows if max(row[3]) <= a.max_wrong and (a.max_later is None or max(row[4]) <= a.max_later)]
    best = max(ok, key=lambda row: row[2]["correct_within_300ms"]) if ok else None
    d = model.decision
    print(f"{a.model} on {named} (n={len(data)}); current: smoothing_steps={d.smoothing_steps}, "
          f"commit_probability={d.commit_probability}, switch_probability={d.switch_probability}, "
          f"release_probability={d.release_probability}; the grid's: switch {a.switch}, release {a.release}")
    print("| smoothing_steps | commit_probability | correct | wrong | wrong per DATA | never | correct within 300 ms "
          "| latency p50 / p90 ms | later decisions per recording, per DATA | |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s, p, r, each, each_later in rows:
        lat = r["commit_latency_ms"] or {"p50": float("nan"), "p90": float("nan")}
        mark = "best" if best is not None and (s, p) == best[:2] else ""
        print(f"| {s} | {p} | {r['first_commit_correct']:.3f} | {r['first_commit_wrong']:.3f} | "
              f"{' / '.join(f'{w:.3f}' for w in each)} | "
              f"{r['never_committed']:.3f} | {r['correct_within_300ms']:.3f} | {lat['p50']:.0f} / {lat['p90']:.0f} "
              f"| {' / '.join(f'{x:.3f}' for x in each_later)} | {mark} |")

    print()
    print(after_onset_table(model, outputs, data, onsets, a.after_onset))


def after_onset_table(model, outputs, data, onsets, delays_ms) -> str:
    """Markdown: the share of recordings whose last window ending by onset + delay names the class."""
    W = model.input.window_us
    y = data.y.numpy()
    smoothed = np.stack([model.decision.run(o, model.decision.init_state(outputs.shape[2]))[0] for o in outputs])
    rows = ["| ms after onset | window's own output | smoothed (current rule) | n |", "|---|---|---|---|"]
    for d in delays_ms:
        k = (onsets + int(d * 1000)) // W - 1            # window k ends at (k + 1) * W <= onset + d
        idx = np.flatnonzero((k >= onsets // W) & (k < data.lengths().numpy()))   # a window after the onset's start
        own = float((outputs[idx, k[idx]].argmax(-1) == y[idx]).mean()) if len(idx) else float("nan")
        sm = float((smoothed[idx, k[idx]].argmax(-1) == y[idx]).mean()) if len(idx) else float("nan")
        rows.append(f"| {d:g} | {own:.3f} | {sm:.3f} | {len(idx)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
