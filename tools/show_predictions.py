"""A recording replayed through a model, as a picture: event frames with what the model said then,
and its class probabilities (or box counts) over time against the labels.

usage: python tools/show_predictions.py [--model gesture-snn] [--source sample|PATH] [--labels CSV]
                                        [--frames 8] [--accumulate-ms 50] [--out predictions.png]

The pipeline runs as ``eventflow run`` does (SyncRunner, one result per window: ``head.emit=windows``).
Each frame shows the events of ``--accumulate-ms`` before its time (ON white, OFF black, on grey)
with, for a classification model, the top class of the smoothed probabilities then and its
probability ("not yet": below the commit threshold); for a detection model, the boxes of the window ending there; for a flow model,
the flow field as arrows. The plot below shows, for a classification model, the smoothed
probability of each class the model ever ranked first, with the labelled gestures shaded
(labels: ``--labels``, else ``<stem>_labels.csv`` beside the recording, DVS128 Gesture's layout).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import eventflow
from eventflow.formats.aedat import labels_path, read_gesture_labels
from eventflow.model import load_model
from eventflow.pipeline import CallbackSink, SyncRunner, build, from_dict


def replay(model, path):
    results = []
    cfg = from_dict({"model": {"name": model.name}, "source": {"uri": path}, "head": {"emit": "windows"}})
    pipeline = build(cfg, model=model, sinks=[CallbackSink(results.append)])
    try:
        SyncRunner(pipeline).run()
    finally:
        pipeline.shutdown()
    return results


def event_frame(ev, t0, t1, width, height):
    sel = ev[(ev["t"] >= t0) & (ev["t"] < t1)]
    img = np.zeros((height, width), np.float32)
    np.add.at(img, (sel["y"].astype(np.int64), sel["x"].astype(np.int64)), np.where(sel["p"] > 0, 1.0, -1.0))
    return np.clip(img / 3.0, -1, 1) * 0.5 + 0.5


def read_labels(path):
    """(class, start_us, end_us) rows of a labels CSV (checked by the format's reader); none without a file."""
    if path is None or not os.path.isfile(path):
        return []
    return [tuple(row) for row in read_gesture_labels(path).tolist()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gesture-snn")
    ap.add_argument("--source", default="sample", help="a recording, or 'sample' (the bundled one)")
    ap.add_argument("--labels", help="labels CSV (default: <stem>_labels.csv beside the recording)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--accumulate-ms", type=float, default=50.0)
    ap.add_argument("--out", default="predictions.png")
    a = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    path = eventflow.sample_path() if a.source == "sample" else a.source
    labels = read_labels(a.labels or labels_path(path))
    model = load_model(a.model)
    results = replay(model, path)
    if not results:
        raise SystemExit(f"{path}: no windows (no events?)")
    ev = eventflow.open(path).read_all()
    width, height = model.input.sensor_size
    t_end = np.array([r["t_end_us"] for r in results])
    picks = np.linspace(0, len(results) - 1, a.frames + 2)[1:-1].round().astype(int)

    fig = plt.figure(figsize=(2.0 * a.frames, 4.6), dpi=90)
    grid = fig.add_gridspec(2, a.frames, height_ratios=[1.0, 0.9], hspace=0.35, wspace=0.05)
    for k, i in enumerate(picks):
        r = results[i]
        ax = fig.add_subplot(grid[0, k])
        t1 = r["t_end_us"]
        ax.imshow(event_frame(ev, t1 - int(a.accumulate_ms * 1000), t1, width, height), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if r["task"] == "classification":
            title = f"{r['class_name']}\np={r['probability']:.2f}" + ("" if r["committed"] else " (not yet)")
        elif r["task"] == "detection":
            for b in r["boxes"]:
                ax.add_patch(Rectangle((b["x"], b["y"]), b["w"], b["h"], fill=False, color="tab:red", lw=1.2))
            title = f"{len(r['boxes'])} boxes"
        else:
            f = r["flow"]["field"]
            h, w = f.shape[1:]
            cx, cy = r["flow"]["cell_px"]
            ys, xs = np.mgrid[0:h, 0:w]
            ax.quiver((xs + 0.5) * cx, (ys + 0.5) * cy, f[0], f[1], color="tab:red", angles="xy", scale_units="xy",
                      scale=1.0)   # arrows as long as the displacement (image y points down, as the flow's dy)
            title = f"max {r['flow']['max_px'] or 0:.1f} px"
        ax.set_title(f"{t1 / 1e6:.2f} s: {title}", fontsize=8)

    ax = fig.add_subplot(grid[1, :])
    t = t_end / 1e6
    for c, t0, t1 in labels:
        ax.axvspan(t0 / 1e6, t1 / 1e6, color="0.9")
        name = model.classes[c - 1] if 0 < c <= len(model.classes) else str(c)
        ax.text((t0 + t1) / 2e6, 1.02, name, ha="center", va="bottom", fontsize=7)
    if results[0]["task"] == "classification":
        prob = np.array([r["probabilities"] for r in results])
        for c in np.unique(prob.argmax(1)):
            ax.plot(t, prob[:, c], lw=1.2, label=model.classes[c])
        ax.axhline(model.decision.commit_probability, color="k", ls=":", lw=0.8, label="commit threshold")
        ax.set_ylabel("probability (smoothed)")
        ax.set_ylim(0, 1.0)
    elif results[0]["task"] == "detection":
        ax.plot(t, [len(r["boxes"]) for r in results], lw=1.2, label="boxes")
        ax.set_ylabel("boxes per window")
    else:
        ax.plot(t, [r["flow"]["max_px"] or 0.0 for r in results], lw=1.2, label="largest displacement (px)")
    for i in picks:
        ax.axvline(t[i], color="0.6", lw=0.5)
    ax.set_xlim(t[0] - 0.05, t[-1] + 0.05)
    ax.set_xlabel("sensor time (s)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{model.name} on {os.path.basename(path)}" + (" (shaded: labelled gestures)" if labels else ""),
                 fontsize=10)
    fig.savefig(a.out, bbox_inches="tight")
    print(a.out)


if __name__ == "__main__":
    main()
