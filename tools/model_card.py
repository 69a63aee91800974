"""Ship a trained model: copy it into models/NAME/ and write its card from measured numbers.

    python tools/model_card.py NAME --run runs/NAME --config configs/NAME.yaml \
        --eval sim-test=results/NAME-test.json [--eval real=results/NAME-real.json] \
        [--latency results/NAME-latency.json] [--notes notes.md]

Copies model.json + model.safetensors (and curves.png) from the run's model/ folder, and writes
README.md (the card): data, training history, the evaluation JSONs (`eventflow eval --json`
output) as tables, latency, the streaming picture (`tools/show_predictions.py`, run after
shipping: it reads the shipped model), and the commands that reproduce everything. Nothing in the card is
typed by hand except the free-text notes given with --notes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil


def _table(rows, keys):
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    return "\n".join(out)


def _hold(decision: dict) -> str:
    """How the rule holds a committed class (``DecisionSpec.switch_probability``), or nothing."""
    sw, cp = decision.get("switch_probability"), decision["commit_probability"]
    if sw is None or sw <= cp:
        return ""
    return (f"; a committed class gives way to another only at {sw}, until the top probability falls below "
            f"{decision.get('release_probability', 0.0)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--run", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--eval", action="append", default=[], metavar="LABEL=JSON")
    ap.add_argument("--latency", help="JSON with the pipeline's per-window latency (tools/bench_pipeline.py --json)")
    ap.add_argument("--notes", help="a markdown file appended to the card")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models"))
    a = ap.parse_args()

    dest = os.path.join(a.out, a.name)
    os.makedirs(dest, exist_ok=True)
    for f in ("model.json", "model.safetensors"):
        shutil.copy(os.path.join(a.run, "model", f), os.path.join(dest, f))
    if os.path.exists(os.path.join(a.run, "curves.png")):
        shutil.copy(os.path.join(a.run, "curves.png"), os.path.join(dest, "curves.png"))
    model = json.load(open(os.path.join(dest, "model.json")))
    ckpt = json.load(open(os.path.join(a.run, "checkpoint.json")))
    evals = []
    for item in a.eval:
        label, path = item.split("=", 1)
        r = json.load(open(path))
        ops = r["synaptic_ops"]
        row = {"data": label, "source": r["data"], "n": r["n"], "accuracy": f"{r['accuracy']:.4f}",
               "kernels": r["kernels"], "activation_sparsity": f"{r['activation_sparsity']:.4f}",
               "ACs/sample": f"{ops['effective_acs']:.3g}", "MACs/sample": f"{ops['effective_macs']:.3g}",
               "dense ops/sample": f"{ops['dense']:.3g}"}
        if "reference_agreement" in r:
            row["same prediction as torch reference"] = f"{r['reference_agreement']:.4f}"
        evals.append((row, r))
    lines = [f"# {a.name}", "", f"Task: {model['task']}; classes: {', '.join(model['classes'])}.", ""]
    inp = model["input"]
    lines += [f"Input: events from a {inp['sensor_size'][0]}x{inp['sensor_size'][1]} sensor, mapped to "
              f"{inp['input_size'][0]}x{inp['input_size'][1]}, binned every {inp['window_us'] / 1000:g} ms into "
              f"2 channels (OFF, ON) of {inp['encoding']}" + (f" clipped at {inp['clip']}" if inp.get("clip") else "")
              + "; one network step per window, state kept between windows.", ""]
    if evals:
        r0 = evals[0][1]
        lines += [f"Size: {r0['params']:,} parameters, {r0['footprint_bytes']:,} bytes of weights, "
                  f"{r0['state_bytes']:,} bytes of state per stream.", ""]
        keys = list(dict.fromkeys(k for row, _ in evals for k in row))
        lines += ["## Evaluation (`eventflow eval --json`)", "", _table([row for row, _ in evals], keys), ""]
        for row, r in evals:
            if "streaming" in r:
                s = r["streaming"]
                lines += [f"Streaming on {row['data']} (each recording replayed window by window from rest through "
                          f"the decision rule: softmax of the mean of the last {model['decision']['smoothing_steps']} "
                          f"windows' outputs, committed at {model['decision']['commit_probability']}"
                          f"{_hold(model['decision'])}): first commit "
                          f"correct {s['first_commit_correct']:.3f}, wrong {s['first_commit_wrong']:.3f}, never "
                          f"{s['never_committed']:.3f}; first commit correct and within 300 ms of the gesture's "
                          f"onset: {s.get('correct_within_300ms', float('nan')):.3f}; time from gesture onset to the "
                          f"first correct commit (ms): {s['commit_latency_ms']}.", ""]
    if a.latency:
        lines += ["## Latency", "", "```", open(a.latency).read().strip(), "```", ""]
    hist = ckpt["history"]
    lines += ["## Training", "", f"Best validation accuracy {ckpt['best']['val_accuracy']:.4f} at epoch "
              f"{ckpt['best']['epoch']} of {len(hist)}; seconds per epoch on the 2-core CPU: "
              f"{', '.join(str(round(h['seconds'])) for h in hist)} (shared with other jobs).", "",
              _table([{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in h.items() if k != "seconds"}
                      for h in hist], ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]), "",
              "![training curves](curves.png)", ""]
    lines += ["## Streaming on the bundled sample", "",
              f"`python tools/show_predictions.py --model {a.name} --out models/{a.name}/predictions.png` "
              "(the bundled simulated recording replayed through the pipeline; frames: the last 50 ms of "
              "events and the top class then; below: the smoothed probabilities, the labelled gestures shaded)",
              "", "![predictions on the bundled sample](predictions.png)", ""]
    lines += ["## Reproduce", "", "```bash", f"eventflow train {a.config}      # simulates the splits it needs first",
              *(f"eventflow eval {a.name} {r['data']} --json --check" for _, r in evals), "```", ""]
    if a.notes:
        lines += [open(a.notes).read().strip(), ""]
    with open(os.path.join(dest, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()

