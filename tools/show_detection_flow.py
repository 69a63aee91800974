"""Look at the detection and flow scenes: frames with their Gen1 boxes, and flow in colour.

    python tools/show_detection_flow.py --out detection_flow.png --seed 0

Top row: the detection scene (304x240) at three times with its ground-truth boxes (cars red,
pedestrians cyan; dropped objects have no box). Bottom row: the flow scene (346x260) at t0,
its ground-truth flow over [t0, t0 + window] in the Middlebury colour coding (hue: direction,
saturation: speed; the wheel in the corner is the key, its rim the largest speed shown), and the
points hidden at t1 (white).
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import hsv_to_rgb  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from eventflow.sim.scenes import detection, flow  # noqa: E402

CLASS_COLOURS = {detection.CAR: "red", detection.PEDESTRIAN: "cyan"}


def flow_to_rgb(f: np.ndarray, max_speed: float) -> np.ndarray:
    """(H, W, 3) colours of flow (2, H, W): hue the direction, saturation the speed over ``max_speed``."""
    angle = np.arctan2(f[1], f[0])
    hsv = np.stack([(angle / (2 * np.pi)) % 1.0, np.clip(np.hypot(f[0], f[1]) / max_speed, 0, 1),
                    np.ones(f.shape[1:])], axis=-1)
    return hsv_to_rgb(hsv)


def colour_wheel(size: int, max_speed: float) -> np.ndarray:
    """(size, size, 4) RGBA key of ``flow_to_rgb``: the flow at each point is its offset from the centre."""
    r = np.arange(size) - (size - 1) / 2
    dx, dy = np.meshgrid(r, r)
    rgb = flow_to_rgb(np.stack([dx, dy]) * (max_speed / (size / 2)), max_speed)
    alpha = (np.hypot(dx, dy) <= size / 2).astype(float)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="detection_flow.png", help="PNG to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--t0", type=float, default=0.5, help="start of the flow window shown (s)")
    args = ap.parse_args(argv)

    det = detection.make_scene(304, 240, args.seed)
    boxes = det.ground_truth()
    fl = flow.make_scene(346, 260, args.seed)
    t1 = args.t0 + fl.window_us / 1e6
    f, occluded = fl.flow_and_occlusion(args.t0, t1)

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4))
    for ax, t in zip(axes[0], (0.0, det.duration_s / 2, det.duration_s)):
        frame = np.empty((det.height, det.width), np.float32)
        det.render(t, frame)
        ax.imshow(frame, cmap="gray", vmin=0, vmax=1, extent=(0, det.width, det.height, 0))
        ts = int(round(t * 1e6)) // det.gt_period_us * det.gt_period_us
        for b in boxes[boxes["ts"] == ts]:
            ax.add_patch(Rectangle((b["x"], b["y"]), b["w"], b["h"], fill=False, lw=1.2,
                                   edgecolor=CLASS_COLOURS[int(b["class_id"])]))
            ax.text(b["x"], b["y"] - 1, str(b["track_id"]), color=CLASS_COLOURS[int(b["class_id"])], fontsize=7)
        ax.set_title(f"detection t = {t:.2f} s ({(boxes['ts'] == ts).sum()} boxes)")
    frame = np.empty((fl.height, fl.width), np.float32)
    fl.render(args.t0, frame)
    axes[1, 0].imshow(frame, cmap="gray", vmin=0, vmax=1)
    axes[1, 0].set_title(f"flow scene t0 = {args.t0:.2f} s")
    max_speed = float(np.percentile(np.hypot(f[0], f[1]), 99)) or 1.0
    axes[1, 1].imshow(flow_to_rgb(f, max_speed))
    wheel = colour_wheel(64, max_speed)
    axes[1, 1].imshow(wheel, extent=(fl.width - 70, fl.width - 6, 70, 6))
    axes[1, 1].set_xlim(0, fl.width), axes[1, 1].set_ylim(fl.height, 0)
    axes[1, 1].set_title(f"flow over {fl.window_us / 1e3:.0f} ms (wheel rim: {max_speed:.1f} px)")
    axes[1, 2].imshow(occluded, cmap="gray", vmin=0, vmax=1)
    axes[1, 2].set_title(f"hidden or out of view at t1 ({occluded.mean():.1%})")
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}: {len(boxes)} boxes over {det.duration_s} s, flow |max| {np.abs(f).max():.2f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
