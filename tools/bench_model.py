"""Per-window latency of a trained model on real inputs: the sparse kernels, batch 1, one stream.

    NUMBA_NUM_THREADS=1 python tools/bench_model.py MODEL DATA [--limit 20] [--json]

DATA as for `eventflow eval` (gesture:DIR, digits:DIR, nmnist:DIR). Each recording is encoded by
the model's InputSpec and stepped window by window through FastNetwork from rest (the work the
pipeline's model stage does per window); prints the median and p99 microseconds per step and the
machine's thread settings.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import numba

    from eventflow.model import load_model
    from eventflow.snn.fast import FastNetwork
    from eventflow.train.evaluate import encoded_data

    model = load_model(a.model)
    data, _ = encoded_data(model, a.data, a.limit)
    fast = FastNetwork.from_network(model.network)
    times = []
    for i in range(len(data)):
        x = data.x[i].float().numpy()[:, None]
        state = fast.init_state(1)
        for t in range(len(x)):
            t0 = time.perf_counter_ns()
            _, state = fast.step(x[t], state, inplace=True)
            times.append(time.perf_counter_ns() - t0)
    us = np.asarray(times[len(times) // 10:]) / 1e3        # the first tenth warms up
    r = {"model": model.name, "data": a.data, "steps": int(len(us)), "median_us": round(float(np.median(us)), 1),
         "p99_us": round(float(np.percentile(us, 99)), 1), "window_ms": model.input.window_us / 1e3,
         "numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
         "cpu": os.cpu_count()}
    print(json.dumps(r) if a.json else f"{r['model']}: {r['median_us']} us/step median, {r['p99_us']} p99 "
          f"({r['steps']} steps of {r['window_ms']} ms windows, 1 thread)")


if __name__ == "__main__":
    main()
