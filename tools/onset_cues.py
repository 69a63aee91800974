"""Could a streaming rule tell when a gesture starts? The cues a commit deadline would have to run from.

usage: python tools/onset_cues.py MODEL DATA [DATA ...] [--json]

A rule that commits to its best guess by a deadline after a gesture's onset would commit every
gesture within that deadline, but a stream does not come with its onsets labelled: the rule would
have to detect the onset, and its delays are bounded only as well as that detection is. This
measures, per recording of DATA (labelled simulated recordings, e.g. gesture:data/gesture-val-330;
several DATA are pooled), the two cues a streaming rule has:

- the events: the most events in any window (the model's window length) before the window holding
  the onset, against the events in that window and the two after it (an onset detector on the event
  rate must fire on the latter and not on the former);
- the model's output, smoothed as its decision rule smooths it: the delay from the onset to the end
  of the first window whose top probability reaches the rule's ``release_probability`` (the output
  leaving rest; 0.3 if the rule has none), and the highest top probability before the onset.

Prints percentiles of each (p50, p90, max, or min where the low end is what matters), the share
of recordings with more events in some window before the onset than in the onset's window, and the
best an event-rate threshold can do: over every threshold, the most recordings whose first window
reaching it is the onset's window or one of the two after it (earlier: a false start; later or
never: a late one).
Validation splits only: nothing here is chosen on it, and never on a test split.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from eventflow.model import load_model
from eventflow.train.evaluate import encoded_data, open_eval_data, run_outputs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data", nargs="+")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    a = ap.parse_args()
    model = load_model(a.model)
    rule, W = model.decision, model.input.window_us
    wake = rule.release_probability or 0.3
    counts_before, counts_at, wake_ms, top_before = [], [], [], []
    for uri in a.data:
        data, onsets = encoded_data(model, uri)
        if onsets is None:
            raise SystemExit(f"{uri}: no gesture intervals (this needs labelled onsets)")
        ds, _ = open_eval_data(uri)
        outputs = run_outputs(model, data)
        lengths = data.lengths()
        for i in range(len(data)):
            onset_us = int(onsets[i])
            k0 = onset_us // W
            counts = np.bincount(ds.events(i)["t"] // W, minlength=k0 + 3)
            counts_before.append(int(counts[:k0].max()) if k0 else 0)
            counts_at.append(counts[k0:k0 + 3].tolist())
            prob, *_ = rule.replay(outputs[i, :int(lengths[i])], rule.init_state(outputs.shape[2]))
            top = prob.max(1)
            top_before.append(float(top[:k0].max()) if k0 else 0.0)
            up = np.flatnonzero(top[k0:] >= wake)
            wake_ms.append(((k0 + up[0] + 1) * W - onset_us) / 1000.0 if len(up) else np.nan)
    before, at = np.array(counts_before), np.array(counts_at)
    wake_ms = np.array(wake_ms)

    def pct(x, qs=(50, 90, 100)):
        return [round(float(v), 1) for v in np.nanpercentile(x, qs)]
    # a threshold t finds the onset in time where no window before it reaches t and one of the three does
    found = [(int(np.sum((before < t) & (at.max(1) >= t))), int(t)) for t in np.unique(at)]
    best_found, best_t = max(found)
    res = {"model": model.name, "data": a.data, "n": len(before), "window_ms": W / 1000.0,
           "events_most_before_onset_p50_p90_max": pct(before),
           "events_onset_window_min_p10_p50": pct(at[:, 0], (0, 10, 50)),
           "events_next_window_min_p10_p50": pct(at[:, 1], (0, 10, 50)),
           "events_window_after_min_p10_p50": pct(at[:, 2], (0, 10, 50)),
           "more_events_before_onset_than_in_its_window": round(float(np.mean(before > at[:, 0])), 3),
           "event_threshold_best": best_t,
           "event_threshold_best_finds_onset_in_time": round(best_found / len(before), 3),
           "wake_probability": wake,
           "output_wakes_after_onset_ms_p50_p90_max": pct(wake_ms),
           "output_never_wakes": int(np.isnan(wake_ms).sum()),
           "top_probability_before_onset_p50_p90_max": pct(np.array(top_before))}
    print(json.dumps(res) if a.json else json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
