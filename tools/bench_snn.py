"""Time one step of the issue's reference conv SNN: FastNetwork (numba, event driven) vs the torch reference.

Same weights (``reference_network()``) and inputs (5% active pixels per step) for both, threads
pinned (torch.set_num_threads, NUMBA_NUM_THREADS), median ms/step over ``--steps`` steps after
``--warmup`` warm-up steps. Prints a table; ``--json`` prints one JSON object per line instead
({"bench": "snn", "case", "impl", "median", "min", "max", "unit": "ms/step", "n", "threads"}; case
"b16" is FastNetwork(parallel=True), "b16-serial" its one-thread kernels, "b16-torch-ref" the torch
eventflow.snn Network).

    python tools/bench_snn.py --threads 2 --batch 1 16
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


# The headline row of each batch size is FastNetwork(parallel=True) on the pinned threads.
CASE_SUFFIX = {"fast-parallel": "", "fast": "-serial", "torch": "-torch-ref"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--impl", nargs="+", default=["fast", "fast-parallel", "torch"],
                    choices=["fast", "fast-parallel", "torch"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)   # before numba is imported

    import numpy as np
    import torch

    from eventflow import snn
    from eventflow.snn.fast import FastNetwork

    torch.set_num_threads(args.threads)
    net = snn.reference_network()
    makers = {"fast": lambda: FastNetwork.from_network(net),
              "fast-parallel": lambda: FastNetwork.from_network(net, parallel=True)}
    rows = []
    for batch in args.batch:
        g = torch.Generator().manual_seed(0)
        n = args.warmup + args.steps
        xs = (torch.rand(n, batch, *net.in_shape, generator=g) < args.density).float()
        for impl in args.impl:
            times = []
            if impl == "torch":
                state = net.init_state(batch)
                with torch.no_grad():
                    for t in range(n):
                        t0 = time.perf_counter()
                        _, state = net.step(xs[t], state)
                        times.append(time.perf_counter() - t0)
            else:
                fast = makers[impl]()
                state = fast.init_state(batch)
                xn = xs.numpy()
                for t in range(n):
                    t0 = time.perf_counter()
                    _, state = fast.step(xn[t], state, inplace=True)
                    times.append(time.perf_counter() - t0)
            ms = np.array(times[args.warmup:]) * 1e3
            case = f"b{batch}" + CASE_SUFFIX[impl]   # (bench, case) is the key compare.py joins rows on
            rows.append({"bench": "snn", "case": case, "impl": impl, "median": round(float(np.median(ms)), 3),
                         "min": round(float(ms.min()), 3), "max": round(float(ms.max()), 3), "unit": "ms/step",
                         "n": len(ms), "threads": args.threads})
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        print(f"reference conv SNN, {args.density:.0%} input, {args.threads} threads, median of {args.steps} steps")
        print(f"{'case':<18}{'impl':<15}{'median':>10}{'min':>10}{'max':>10}  unit")
        for r in rows:
            print(f"{r['case']:<18}{r['impl']:<15}{r['median']:>10.3f}{r['min']:>10.3f}{r['max']:>10.3f}  {r['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
