"""Write the bundled sample recording: eventflow/data/sample_gesture.hdf5.

A small simulated 128x128 recording of an arm (a bright bar on a dim, textured
background) turning clockwise about a shoulder pivot, rendered at 2 kHz and turned
into events the way a DVS does: per pixel, log-intensity change against a contrast
threshold (0.2), timestamps interpolated between frames, a 100 us refractory period,
and a little background activity. Deterministic (seed 0). It stands in for a real
recording in `eventflow info --sample` until the project's simulator exists.

usage: python tools/make_sample.py [--seconds 0.8] [--out eventflow/data/sample_gesture.hdf5]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import eventflow

W = H = 128
RATE_HZ = 2000
THRESHOLD = 0.2
REFRACTORY_US = 100
NOISE_HZ_PER_PIXEL = 0.5


def render(t_s: float, yy, xx, background) -> np.ndarray:
    """Intensity of the scene at time t: a bar of length 45 px turning at 1.5 turns/s."""
    angle = 2 * np.pi * 1.5 * t_s
    px, py = 64.0, 58.0
    dx, dy = np.cos(angle), np.sin(angle)
    rx, ry = xx - px, yy - py
    along = rx * dx + ry * dy
    across = np.abs(-rx * dy + ry * dx)
    arm = (along > 0) & (along < 45) & (across < 4.0)
    hand = (rx - 45 * dx) ** 2 + (ry - 45 * dy) ** 2 < 7.0 ** 2
    img = background.copy()
    img[arm | hand] = 0.9
    return img


def simulate(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    background = 0.15 + 0.05 * rng.random((H, W))
    ref = np.log(render(0.0, yy, xx, background) + 1e-3)
    last_fire = np.full((H, W), -10**9, np.int64)
    dt_us = 1_000_000 // RATE_HZ
    chunks = []
    prev = ref.copy()
    for k in range(1, int(seconds * RATE_HZ) + 1):
        t0, t1 = (k - 1) * dt_us, k * dt_us
        cur = np.log(render(t1 / 1e6, yy, xx, background) + 1e-3)
        diff = cur - ref
        n_cross = np.floor(np.abs(diff) / THRESHOLD).astype(np.int64)
        ys, xs = np.nonzero(n_cross)
        for y, x in zip(ys, xs):
            sign = 1 if diff[y, x] > 0 else -1
            step = cur[y, x] - prev[y, x]
            for c in range(1, n_cross[y, x] + 1):
                level = ref[y, x] + sign * c * THRESHOLD
                frac = 1.0 if step == 0 else min(max((level - prev[y, x]) / step, 0.0), 1.0)
                t = int(t0 + frac * (t1 - t0))
                if t - last_fire[y, x] >= REFRACTORY_US:
                    chunks.append((x, y, int(sign > 0), t))
                    last_fire[y, x] = t
            ref[y, x] += sign * n_cross[y, x] * THRESHOLD
        prev = cur
        n_noise = rng.poisson(NOISE_HZ_PER_PIXEL * W * H * dt_us * 1e-6)
        for _ in range(n_noise):
            chunks.append((int(rng.integers(W)), int(rng.integers(H)), int(rng.integers(2)),
                           int(rng.integers(t0, t1))))
    arr = np.array(chunks, dtype=np.int64).reshape(-1, 4)
    ev = eventflow.from_fields(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    return ev[np.argsort(ev["t"], kind="stable")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=0.8)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "eventflow", "data",
                                                 "sample_gesture.hdf5"))
    a = ap.parse_args()
    ev = simulate(a.seconds)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    eventflow.write(a.out, ev, width=W, height=H)
    print(f"wrote {len(ev):,} events over {a.seconds} s to {a.out} ({os.path.getsize(a.out):,} bytes)")


if __name__ == "__main__":
    main()
