"""Simulation speed, in multiples of real time, on one thread: render + simulate, per scene.

usage: python tools/bench_sim.py [--seconds 1.0] [--repeats 3] [--json]

Reproduce the issue-3 numbers (one thread; CPU time is the figure to compare on a shared machine):

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python tools/bench_sim.py --seconds 1 --repeats 3

Cases: every registered scene (gesture, digits, detection, flow) on its default sensor, where
its module exists (a missing one is skipped with a message), and a test scene: a textured disc
gliding over a textured background on a DVS128 (128x128). Each case is simulated once untimed
(compilation, caches), then ``--repeats`` times; the table shows the run with the least CPU
time: x real time (simulated seconds / wall seconds, and / process CPU seconds, which a loaded
machine inflates less), events, frames rendered (whole or the refined rectangle), wall time per
frame, and the share of wall time spent rendering (with the log intensity, for a scene that has
``render_log_region``). The gesture scene runs its whole interval loop in one numba call
(``figure_sampler``, ``eventflow.kernels.sim_figure``), so its rendering is not timed apart; the
row ``gesture*`` is the same scene through the Simulator's generic per-interval loop (the
loop's reference: the same events). Also timed: the threshold kernel alone on a 128x128 frame
pair (``crossings``, the per-sample budget).
Threads are pinned to one (NUMBA_NUM_THREADS, OMP_NUM_THREADS, torch) and printed.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from eventflow.kernels import sim as K  # noqa: E402
from eventflow.sim import Simulator, scene_sensor, sensor_preset  # noqa: E402
from eventflow.sim.scenes import SCENE_NAMES  # noqa: E402


class DiscScene:
    """A sinusoidally textured disc (radius 20 px) crossing a textured background at 200 px/s."""

    def __init__(self, width=128, height=128, duration_s=1.0):
        self.width, self.height, self.duration_s = width, height, duration_s
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        self.background = 0.3 + 0.1 * np.sin(self.xx * 0.3) * np.cos(self.yy * 0.2)

    def render(self, t_s, out):
        cx, cy = 20 + 200 * (t_s % 0.5), 64 + 30 * np.sin(6 * t_s)
        dx, dy = self.xx - np.float32(cx), self.yy - np.float32(cy)
        inside = np.clip(np.float32(20.5) - np.sqrt(dx * dx + dy * dy), 0, 1)
        texture = 0.6 + 0.3 * np.sin(dx * 0.5) * np.sin(dy * 0.4)
        np.add(self.background * (1 - inside), texture * inside, out=out)

    def ground_truth(self):
        return None

    def save_ground_truth(self, stem):
        return []


class _TimedScene:
    """Wraps a scene and adds up the time spent in ``render``."""

    def __init__(self, scene, one_call=True):
        self.scene, self.render_s = scene, 0.0
        self.width, self.height, self.duration_s = scene.width, scene.height, scene.duration_s
        if one_call and hasattr(scene, "figure_sampler"):  # the one-call loop: its rendering is not timed apart
            self.figure_sampler = scene.figure_sampler
        self.render_timed = not hasattr(self, "figure_sampler")
        if hasattr(scene, "render_region"):  # keep the optional methods (the simulator looks for them)
            self.render_region = self._render_region
        if hasattr(scene, "render_log_region"):
            self.render_log_region = self._render_log_region

    def render(self, t_s, out):
        t0 = time.perf_counter()
        self.scene.render(t_s, out)
        self.render_s += time.perf_counter() - t0

    def _render_region(self, t_s, out, y0, y1, x0, x1):
        t0 = time.perf_counter()
        self.scene.render_region(t_s, out, y0, y1, x0, x1)
        self.render_s += time.perf_counter() - t0

    def _render_log_region(self, t_s, eps, out, y0, y1, x0, x1):
        t0 = time.perf_counter()
        bad = self.scene.render_log_region(t_s, eps, out, y0, y1, x0, x1)
        self.render_s += time.perf_counter() - t0
        return bad


def bench_case(name, make, sensor, seconds, repeats, one_call=True):
    best = None
    for i in range(repeats + 1):
        scene = _TimedScene(make(), one_call)
        sim = Simulator(scene, sensor, seed=0)
        t0, c0 = time.perf_counter(), time.process_time()
        events, state = sim.advance(int(seconds * 1e6), sim.init_state())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if i and (best is None or cpu < best["cpu_s"]):  # CPU time: a loaded machine inflates it less
            c = state.counts()
            best = {"bench": "sim", "case": name, "sensor": sensor.name, "width": sensor.width,
                    "height": sensor.height, "seconds": seconds, "wall_s": wall, "x_real_time": seconds / wall,
                    "cpu_s": cpu, "x_real_time_cpu": seconds / cpu,
                    "events": int(len(events)), "samples": c["samples"], "us_per_sample": wall / c["samples"] * 1e6,
                    "render_share": scene.render_s / wall if scene.render_timed else None}  # of wall time
    return best


def bench_kernel(repeats=2000):
    """Median time of ``crossings`` on a 128x128 frame pair with 2% of pixels crossing."""
    rng = np.random.default_rng(0)
    n = 128 * 128
    l0 = rng.normal(-1.5, 0.3, n).astype(np.float32)
    l1 = l0.copy()
    moved = rng.random(n) < 0.02
    l1[moved] += np.float32(0.45)
    ref0, thr = l0.astype(np.float64), np.full(n, 0.2)
    pix, t, p = np.empty(4096, np.int64), np.empty(4096, np.int64), np.empty(4096, np.int8)
    mask = np.zeros(K.mask_size(128), np.uint8)
    bounds0 = K.candidate_bounds_reference(ref0, thr, thr)
    times = []
    for _ in range(repeats):
        ref, bounds = ref0.copy(), bounds0.copy()  # untimed: the kernel moves those of the pixels that fire
        t0 = time.perf_counter()
        K.crossings(l0, l1, ref, thr, thr, 0.0, 1000.0, 0, pix, t, p, 0, 0, 128, 0, 128, 0, 128, 0, 0, 0, 0, bounds,
                    mask)
        times.append(time.perf_counter() - t0)
    return {"bench": "sim_kernel", "case": "crossings 128x128, 2% crossing", "us": float(np.median(times) * 1e6)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0, help="simulated seconds per case (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case, best kept (default 3)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    a = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    cases = []
    for name in SCENE_NAMES:
        try:
            mod = importlib.import_module(f"eventflow.sim.scenes.{name}")
        except ModuleNotFoundError:
            print(f"scene {name}: module not present, skipped", file=sys.stderr)
            continue
        sensor = scene_sensor(name)
        cases.append((name, lambda m=mod, s=sensor: m.make_scene(s.width, s.height, 0), sensor, True))
        if name == "gesture":  # and through the Simulator's generic per-interval loop, for comparison
            cases.append(("gesture*", cases[-1][1], sensor, False))
    cases.append(("test disc", DiscScene, sensor_preset("dvs128"), True))
    rows = [bench_case(name, make, sensor, a.seconds, a.repeats, one_call) for name, make, sensor, one_call in cases]
    kernel = bench_kernel()
    if a.json:
        for r in rows + [kernel]:
            print(json.dumps(r))
        return
    print(f"simulation speed, 1 thread (NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}), "
          f"{a.seconds:g} s per case, best of {a.repeats}")
    print(f"  {'case':<10} {'sensor':<9} {'x real time':>11} {'(cpu time)':>10} {'events':>9} {'frames':>7} "
          f"{'us/frame':>9} {'render':>7}")
    for r in rows:
        print(f"  {r['case']:<10} {r['sensor']:<9} {r['x_real_time']:11.1f} {r['x_real_time_cpu']:10.1f} "
              f"{r['events']:9,d} {r['samples']:7,d} "
              f"{r['us_per_sample']:9.1f} {'-' if r['render_share'] is None else format(r['render_share'], '.0%'):>7}")
    print("  gesture: the scene's interval loop in one numba call (eventflow.kernels.sim_figure), render not timed "
          "apart; gesture*: the Simulator's generic loop, one render_log_region call per sample")
    print(f"  kernel: {kernel['case']}: {kernel['us']:.1f} us (median)")


if __name__ == "__main__":
    main()
