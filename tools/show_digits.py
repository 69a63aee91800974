"""Save a PNG to compare simulated N-MNIST recordings with a real one by eye.

Top: generated digit images (``eventflow.sim.digit_images``), two per class. Below: event
frames of simulated recordings of the ``digits`` scene on its default sensor, one frame per
saccade (ON red, OFF blue), and the same frames of a real N-MNIST recording.

    python tools/show_digits.py --out digits_compare.png --real ../shared/data/real/nmnist_4325.bin
"""
from __future__ import annotations

import argparse

import numpy as np

import eventflow
from eventflow.sim.digit_images import digit_images
from eventflow.sim.scenes.digits import SACCADE_PERIOD_S
from eventflow.sim.simulator import simulate_scene


def saccade_frames(events: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """One RGB frame (height, width, 3) per saccade window: ON events red, OFF blue, white background."""
    frames = []
    period_us = int(SACCADE_PERIOD_S * 1e6)
    for k in range(3):
        e = events[(events["t"] >= k * period_us) & (events["t"] < (k + 1) * period_us)]
        counts = np.zeros((2, height, width))
        np.add.at(counts, (e["p"].astype(int), e["y"].astype(int), e["x"].astype(int)), 1.0)
        scale = max(np.percentile(counts[counts > 0], 95), 1.0) if (counts > 0).any() else 1.0
        on, off = np.clip(counts[1] / scale, 0, 1), np.clip(counts[0] / scale, 0, 1)
        frames.append(np.stack([1 - off, 1 - on - off, 1 - on], axis=-1).clip(0, 1))
    return frames


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="digits_compare.png", help="PNG to write")
    parser.add_argument("--real", default="../shared/data/real/nmnist_4325.bin", help="a real N-MNIST .bin file")
    parser.add_argument("--recordings", type=int, default=10, help="simulated recordings to show")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = digit_images([d for _ in range(2) for d in range(10)], seed=args.seed)
    rows = [np.hstack(list(images[:10])), np.hstack(list(images[10:]))]
    real = eventflow.open(args.real)
    real_events = real.read_all()
    sims = [simulate_scene("digits", seed=args.seed + i) for i in range(args.recordings)]

    n = len(sims) + 1
    fig = plt.figure(figsize=(12, 3 + 1.1 * ((n + 3) // 4)))
    grid = fig.add_gridspec(1 + (n + 3) // 4, 4, height_ratios=[2.2] + [1] * ((n + 3) // 4))
    ax = fig.add_subplot(grid[0, :])
    ax.imshow(np.vstack(rows), cmap="gray", vmin=0, vmax=1)
    ax.set_title("generated digit images (28x28, MNIST-normalised)")
    ax.axis("off")
    panels = [(f"REAL {len(real_events)} ev", real_events, real.width, real.height)]
    panels += [(f"sim '{s[1].digit}' {len(s[0])} ev", s[0], s[2].width, s[2].height) for s in sims]
    for i, (title, events, w, h) in enumerate(panels):
        ax = fig.add_subplot(grid[1 + i // 4, i % 4])
        gap = np.ones((h, 2, 3))
        ax.imshow(np.hstack([f for frame in saccade_frames(events, w, h) for f in (frame, gap)][:-1]),
                  interpolation="nearest")
        ax.set_title(title + f", ON {events['p'].mean():.2f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
