"""Pipeline benchmark: lossless throughput, replay speed, paced live latency, memory over a long stream.

    python tools/bench_pipeline.py [--threads 2] [--quick] [--json]

The gesture model is not shipped yet, so the model is a stand-in of its size (random weights,
never saved): 128x128 sensor binned to 32x32, 10 ms windows, conv 2-16-32 LIF with pooling,
linear 11 classes, run by FastNetwork. Input files go to /tmp (never committed).

1. throughput: decode an ECF HDF5 file + binning + the SNN, lossless (SyncRunner and AsyncRunner
   with 2 threads), events/s of wall time (target >= 50 Mev/s);
2. replay: a DVS128-rate recording (~0.2 Mev/s) as fast as possible, x real time (target >= 100x);
3. live: 1 Mev/s paced in real time, AsyncRunner with drop_oldest: p99 event-to-result latency
   beyond the window (target <= 5 ms), drops;
4. memory: RSS while a generated stream (not held in memory) runs for a long sensor time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

import eventflow
from eventflow.model import DecisionSpec, InputSpec, Model
from eventflow.pipeline import ArraySource, AsyncRunner, Batch, EndOfStream, SyncRunner, build, from_dict
from eventflow.snn.layers import Conv2d, Flatten, Linear, MaxPool2d, Sequential
from eventflow.snn.network import Network
from eventflow.snn.neurons import LIF

W = H = 128


def stand_in_model():
    spec = Sequential((("conv1", Conv2d(2, 16, 3, padding=1)), ("lif1", LIF()), ("pool1", MaxPool2d(2)),
                       ("conv2", Conv2d(16, 32, 3, padding=1)), ("lif2", LIF()), ("pool2", MaxPool2d(2)),
                       ("flatten", Flatten()), ("fc", Linear(32 * 8 * 8, 11))))
    ispec = InputSpec(sensor_size=(W, H), input_size=(32, 32), window_us=10_000)
    net = Network(spec, ispec.shape, seed=0)
    with torch.no_grad():
        for k in ("conv1", "conv2"):
            net.weights[k]["weight"].mul_(4)
    return Model("stand-in", "classification", tuple(f"c{i}" for i in range(11)), ispec, net.eval(), DecisionSpec())


def events_at(rate_hz, t0_us, t1_us, seed):
    rng = np.random.default_rng(seed)
    n = int((t1_us - t0_us) * rate_hz / 1e6)
    return eventflow.from_fields(rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n),
                                 np.sort(rng.integers(t0_us, t1_us, n)))


def make_file(path, rate_hz, seconds, seed=0):
    if not os.path.exists(path):
        with eventflow.writer_for(path, width=W, height=H) as w:
            for s in range(int(np.ceil(seconds))):
                w.write(events_at(rate_hz, s * 1_000_000, min(seconds, s + 1) * 1_000_000, seed + s))
    return path


def cfg(**kw):
    d = {"model": {"name": "stand-in"}, "sinks": ["jsonl:-"], "head": {"emit": "decisions"}}
    d.update(kw)
    return from_dict(d)


def throughput(model, path, threads):
    out = {}
    for mode in ("sync", "async"):
        best = None
        for _ in range(2):
            p = build(cfg(source={"uri": path}, runner={"mode": mode}), model=model, sinks=[])
            r = SyncRunner(p) if mode == "sync" else AsyncRunner(p, "none")
            m = r.run()
            p.shutdown()
            assert m["balanced"] and m["events_dropped"] == 0
            best = m if best is None or m["wall_s"] < best["wall_s"] else best
        out[mode] = {"events": best["events_in"], "wall_s": best["wall_s"],
                     "mev_per_s": round(best["events_in"] / best["wall_s"] / 1e6, 2), "windows": best["windows"],
                     "stages_p50_ms": {k: v["p50_ms"] for k, v in best["stages"].items()}}
    return out


def replay(model, path):
    p = build(cfg(source={"uri": path}), model=model, sinks=[])
    m = SyncRunner(p).run()
    p.shutdown()
    r = eventflow.open(path)
    first = next(iter(r))
    dur_s = (int(r.read_all()["t"][-1]) - int(first["t"][0])) / 1e6
    return {"events": m["events_in"], "sensor_s": round(dur_s, 3), "wall_s": m["wall_s"],
            "x_realtime": round(dur_s / m["wall_s"], 1)}


def live(model, seconds):
    ev = events_at(1_000_000, 0, int(seconds * 1e6), 7)
    src = ArraySource(ev, batch_events=1000, width=W, height=H, realtime=1.0)   # 1 ms batches at 1 Mev/s
    p = build(cfg(head={"emit": "windows"}), model=model, source=src, sinks=[])
    m = AsyncRunner(p, "drop_oldest", queue_windows=4).run()
    window_ms = model.input.window_us / 1e3
    return {"events": m["events_in"], "dropped": m["events_dropped"], "balanced": m["balanced"],
            "latency_p50_ms": m["latency_ms"]["p50"], "latency_p99_ms": m["latency_ms"]["p99"],
            "p99_beyond_window_ms": round(m["latency_ms"]["p99"] - window_ms, 3)}


class GeneratedSource:
    """A long stream made on the fly (1 s of 128x128 events at ``rate_hz`` a batch, 100 ms pieces)."""

    name = "source"

    def __init__(self, rate_hz, seconds):
        self.rate, self.end_us, self.t, self.n = rate_hz, int(seconds * 1e6), 0, 0

    def next(self, timeout_s=None):
        if self.t >= self.end_us:
            raise EndOfStream
        ev = events_at(self.rate, self.t, self.t + 100_000, self.t)
        self.t += 100_000
        self.n += len(ev)
        return Batch(ev, time.monotonic_ns(), width=W, height=H)

    def geometry(self):
        return (W, H)

    def counters(self):
        return {"received": self.n, "rejected": {}, "dropped": {}}

    def get_state(self):
        return {"t": self.t, "n": self.n}

    def reset(self, state=None):
        self.t, self.n = (0, 0) if state is None else (state["t"], state["n"])

    def shutdown(self):
        pass


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memory(model, seconds, rate_hz):
    src = GeneratedSource(rate_hz, seconds)
    p = build(cfg(), model=model, source=src, sinks=[])
    r = SyncRunner(p)
    samples = []
    while src.t < src.end_us:
        r.run(max_batches=50)   # 5 s of sensor time
        samples.append(round(rss_mb(), 1))
    r.finish()
    m = r.metrics()
    return {"sensor_s": seconds, "events": m["events_in"], "balanced": m["balanced"], "rss_mb_first": samples[0],
            "rss_mb_last": samples[-1], "rss_mb_max": max(samples), "samples": len(samples)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=("throughput", "replay", "live", "memory"))
    a = ap.parse_args()
    import numba

    numba.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    model = stand_in_model()
    q = a.quick
    res = {"threads": a.threads}
    if a.only in (None, "throughput"):
        dense = make_file(f"/tmp/eventflow_bench_dense_{'q' if q else 'f'}.hdf5", 5_000_000, 1 if q else 4)
        res["throughput"] = throughput(model, dense, a.threads)
    if a.only in (None, "replay"):
        gesture = make_file("/tmp/eventflow_bench_dvs128.hdf5", 200_000, 6)
        res["replay"] = replay(model, gesture)
    if a.only in (None, "live"):
        res["live"] = live(model, 2 if q else 5)
    if a.only in (None, "memory"):
        res["memory"] = memory(model, 30 if q else 600, 200_000)
    print(json.dumps(res) if a.json else json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
