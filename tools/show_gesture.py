"""Contact sheet of the simulated DVS128 Gesture scene: one row per class (1..11).

usage: python tools/show_gesture.py [--out gesture_sheet.png] [--seed 0] [--frames 6] [--events]
                                    [--size 128x128] [--time-renders 2000]

Each row shows rendered frames across one performance (the class's seed is ``seed + class``),
then the motion (|log intensity change| summed over the frames). With ``--events`` (needs
``eventflow.sim.simulator``) it also simulates the row on the scene's default sensor and adds
an accumulated event frame (ON white, OFF black, 60 ms around mid-gesture) and prints event
counts and rates. It prints the mean render() time per frame (process CPU time, so other
programs on the machine count less) against the 40 us budget.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from eventflow.sim.scenes import gesture  # noqa: E402


def render_times(scene, n):
    out = np.empty((scene.height, scene.width), np.float32)
    scene.render(0.0, out)  # compile
    t0 = time.process_time()
    for i in range(n):
        scene.render(i * 1e-3 % scene.duration_s, out)
    return (time.process_time() - t0) / n


def event_frame(events, width, height, t0_us, t1_us):
    sel = events[(events["t"] >= t0_us) & (events["t"] < t1_us)]
    img = np.zeros((height, width))
    np.add.at(img, (sel["y"].astype(int), sel["x"].astype(int)), np.where(sel["p"] > 0, 1.0, -1.0))
    return np.clip(0.5 + img / 4, 0, 1), len(sel)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gesture_sheet.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--events", action="store_true")
    ap.add_argument("--size", default="128x128")
    ap.add_argument("--time-renders", type=int, default=2000)
    a = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    width, height = (int(v) for v in a.size.split("x"))
    cols = a.frames + 1 + int(a.events)
    fig, axes = plt.subplots(11, cols, figsize=(1.6 * cols, 1.6 * 11 * height / width), squeeze=False)
    per_frame = []
    for row, cid in enumerate(range(1, 12)):
        scene = gesture.make_scene(width, height, seed=a.seed + cid, gestures=cid)
        gt = scene.ground_truth()[0]
        s, e = gt["t_start"] / 1e6, gt["t_end"] / 1e6
        times = np.linspace(s + 0.15 * (e - s), e - 0.15 * (e - s), a.frames)
        frames = np.empty((a.frames, height, width), np.float32)
        for k, t in enumerate(times):
            scene.render(t, frames[k])
        motion = np.abs(np.diff(np.log(frames + 1e-3), axis=0)).sum(0)
        for k in range(a.frames):
            axes[row, k].imshow(frames[k], cmap="gray", vmin=0, vmax=1)
            axes[row, k].set_title(f"{times[k]:.2f}s", fontsize=6)
        axes[row, a.frames].imshow(motion, cmap="magma")
        axes[row, a.frames].set_title("motion", fontsize=6)
        axes[row, 0].set_ylabel(f"{cid} {gesture.CLASS_NAMES[cid]}", fontsize=6)
        if a.events:
            from eventflow.sim.simulator import scene_sensor, simulate
            sensor = scene_sensor("gesture", gesture.DEFAULT_SENSOR) if (width, height) == (128, 128) \
                else scene_sensor("gesture").replace(width=width, height=height)
            t0 = time.perf_counter()
            events = simulate(scene, sensor, seed=a.seed + cid)
            wall = time.perf_counter() - t0
            mid = int((gt["t_start"] + gt["t_end"]) // 2)
            img, n = event_frame(events, width, height, mid - 30_000, mid + 30_000)
            inside = ((events["t"] >= gt["t_start"]) & (events["t"] < gt["t_end"])).sum()
            rate = inside / max((gt["t_end"] - gt["t_start"]) / 1e6, 1e-9)
            axes[row, -1].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[row, -1].set_title(f"{n} ev / 60 ms", fontsize=6)
            print(f"class {cid:2d}: {len(events):8d} events in {scene.duration_s:.1f} s, {rate / 1e3:7.1f} k ev/s "
                  f"during the gesture; simulated in {wall:.2f} s wall ({scene.duration_s / wall:.1f}x real time)")
        per_frame.append(render_times(scene, a.time_renders) if a.time_renders else float("nan"))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    if a.time_renders:
        print("render() CPU time per frame, us, classes 1..11: " + " ".join(f"{t * 1e6:.0f}" for t in per_frame))
        print(f"mean {np.mean(per_frame) * 1e6:.1f} us per {width}x{height} frame (budget 40 us)")


if __name__ == "__main__":
    main()
