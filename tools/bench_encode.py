"""Binning throughput: eventflow's encoders beside tonic, in one run, one thread.

usage: python tools/bench_encode.py [--sensor davis346|imx636|all] [--n 10000000] [--repeats 5]
                                    [--out results.jsonl]

The stream is the one ../shared/bench/bench_binning.py uses: N events, x/y uniform over
the sensor, p uniform, t uniform integers in [0, 1e6) us, sorted (seed 0).
Cases (each checks its output equal to tonic's):
  tonic ToFrame(time_window=10 ms)             whole stream -> (F, 2, H, W) int16
  eventflow to_frames(time_window=10 ms)       same, functional
  eventflow FrameEncoder, streaming            the stream fed in reader-sized pieces (65,536 events)
  eventflow FrameEncoder.step_into, streaming  the same into one preallocated, reused buffer
  tonic ToVoxelGrid(n_time_bins=16) / eventflow to_voxel_grid(16)   (davis346)
Threads are pinned to one (NUMBA_NUM_THREADS, OMP_NUM_THREADS, torch) and printed.
Also prints two memory-bandwidth bounds: a numba copy of the event array (16 B/event read and
written) and a numba read of it (16 B/event read, what an encoder must at least do).
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

import eventflow  # noqa: E402
from eventflow.encode import FrameEncoder, to_frames, to_voxel_grid  # noqa: E402

SENSORS = {"davis346": (346, 260), "imx636": (1280, 720)}
TW = 10_000
PIECE = 65_536


@njit(cache=True)
def _copy(src, dst):
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(cache=True)
def _read(words):
    # every byte of the events read once (an encoder reads each event's 16 bytes, writes none)
    s = np.uint64(0)
    for i in range(words.shape[0]):
        s ^= words[i]
    return s


def make_events(n, w, h, seed=0):
    rng = np.random.default_rng(seed)
    ev = eventflow.empty(n)
    ev["x"] = rng.integers(0, w, n)
    ev["y"] = rng.integers(0, h, n)
    ev["p"] = rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, 1_000_000, n))
    return ev


def timed(fn, repeats):
    fn()
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sensor", choices=(*SENSORS, "all"), default="all")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    import numba
    import tonic
    import tonic.transforms as T
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    env = {"numba_threads": numba.config.NUMBA_NUM_THREADS, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
           "tonic": tonic.__version__ if hasattr(tonic, "__version__") else "?", "n": a.n,
           "loadavg": open("/proc/loadavg").read().split()[0]}
    print("# " + json.dumps(env))
    rows = []
    Mev = a.n / 1e6
    sensors = list(SENSORS) if a.sensor == "all" else [a.sensor]
    print("| sensor | case | Mev/s | equal to tonic |\n|---|---|---|---|")

    def report(sensor, case, sec, ok, note="", **extra):
        print(f"| {sensor} | {case}{note} | {Mev / sec:.0f} | {ok} |", flush=True)
        rows.append({"bench": "encode", "case": f"{sensor}: {case}", "median": Mev / sec, "unit": "Mev/s",
                     "equal_to_tonic": ok, **extra, **env})

    for sensor in sensors:
        w, h = SENSORS[sensor]
        ev = make_events(a.n, w, h)
        tv = eventflow.to_tonic(ev)
        dst = np.empty_like(ev)
        sec, _ = timed(lambda: _copy(ev.view(np.uint64), dst.view(np.uint64)), a.repeats)
        report(sensor, "memory bound: numba copy of the events", sec, "-", f" ({16 * a.n / sec / 1e9:.1f} GB/s)")
        sec, _ = timed(lambda: _read(ev.view(np.uint64)), a.repeats)
        read_bound = Mev / sec
        report(sensor, "memory bound: numba read of the events", sec, "-", f" ({16 * a.n / sec / 1e9:.1f} GB/s)")
        sec, ref = timed(lambda: T.ToFrame(sensor_size=(w, h, 2), time_window=TW)(tv), max(1, a.repeats // 2))
        report(sensor, "tonic ToFrame(time_window=10ms)", sec, "-")
        sec, got = timed(lambda: to_frames(ev, (w, h), time_window=TW), a.repeats)
        report(sensor, "eventflow to_frames(time_window=10ms)", sec, bool(np.array_equal(got, ref)))

        enc = FrameEncoder((w, h), TW)

        def streaming():
            state, frames = enc.init_state(), []
            for i in range(0, len(ev), PIECE):
                f, state = enc.step(ev[i:i + PIECE], state)
                frames.append(f)
            frames.append(enc.finish(state))
            return frames
        sec, got = timed(streaming, a.repeats)
        report(sensor, f"eventflow FrameEncoder.step, pieces of {PIECE:,} events", sec,
               bool(np.array_equal(np.concatenate(got), ref)))

        buf = enc.new_buffer()

        def streaming_into(consume):
            buf[:] = 0
            state = enc.init_state()
            for i in range(0, len(ev), PIECE):
                state = enc.step_into(ev[i:i + PIECE], state, buf, consume)
            enc.finish_into(state, buf, consume)

        sec, _ = timed(lambda: streaming_into(lambda f: f[1, 0, 0]), a.repeats)  # a consumer that touches it
        seen = []
        streaming_into(lambda f: seen.append(zlib.crc32(f)))  # untimed check: every frame, whole
        share = Mev / sec / read_bound
        report(sensor, "eventflow FrameEncoder.step_into one reused buffer", sec,
               bool(seen == [zlib.crc32(np.ascontiguousarray(f)) for f in ref]), f" ({share:.0%} of the read bound)",
               share_of_read_bound=share)

        if sensor == "davis346":
            tvp = np.empty(len(ev), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i8")])
            for k in "xytp":
                tvp[k] = ev[k]
            sec, vref = timed(lambda: T.ToVoxelGrid(sensor_size=(w, h, 2), n_time_bins=16)(tvp.copy()), 1)
            report(sensor, "tonic ToVoxelGrid(16), signed int polarity", sec, "-")
            sec, got = timed(lambda: to_voxel_grid(ev, (w, h), 16, dtype=np.float64), a.repeats)
            report(sensor, "eventflow to_voxel_grid(16), float64", sec, bool(np.array_equal(got, vref)))
            sec, _ = timed(lambda: to_voxel_grid(ev, (w, h), 16), a.repeats)
            report(sensor, "eventflow to_voxel_grid(16), float32", sec, "-")
    if a.out:
        with open(a.out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    sys.exit(main())
