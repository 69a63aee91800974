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
    ap.add_argument("--fc1-floor", action="store_true",
                    help="instead: the bytes of fc1 weights the event-driven step reads per step at batch 1, "
                         "the machine's read bandwidth on 1 and --threads threads, and the time that floor sets")
    args = ap.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)   # before numba is imported

    import numpy as np
    import torch

    from eventflow import snn
    from eventflow.snn.fast import FastNetwork

    torch.set_num_threads(args.threads)
    net = snn.reference_network()
    if args.fc1_floor:
        return fc1_floor(net, args)
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


def fc1_floor(net, args):
    """Print fc1's weight bytes read per step (its active inputs x 256 float32) and how long
    reading them takes at the read bandwidth of a vectorised sum over 256 MB."""
    import numba
    import numpy as np
    import torch
    from numba import njit, prange

    from eventflow.snn.fast import FastNetwork

    @njit(fastmath=True)
    def read1(a):
        acc = np.float32(0)
        for i in range(a.shape[0]):
            acc += a[i]
        return acc

    @njit(fastmath=True, parallel=True)
    def read_par(a, parts):
        acc = np.zeros(parts, np.float32)
        n = a.shape[0] // parts
        for t in prange(parts):
            s = np.float32(0)
            for i in range(t * n, (t + 1) * n):
                s += a[i]
            acc[t] = s
        return acc.sum()

    fast = FastNetwork.from_network(net)
    fc1 = next(L for L in fast.layers if not hasattr(L, "wl"))          # the first Linear
    g = torch.Generator().manual_seed(0)
    xs = (torch.rand(args.warmup + args.steps, 1, *net.in_shape, generator=g) < args.density).float().numpy()
    state, active = fast.init_state(1), []
    for t, x in enumerate(xs):
        _, state = fast.step(x, state, inplace=True)
        if t >= args.warmup:
            active.append(int(fast._work[1]["layers"][fast.layers.index(fc1) - 1]["n"][0]))
    rows = float(np.mean(active))
    nbytes = rows * fc1.wt.shape[1] * 4
    a = np.ones(64_000_000, np.float32)
    out = {"fc1_inputs": fc1.wt.shape[0], "fc1_active_inputs_per_step": round(rows, 1),
           "fc1_bytes_per_step": int(nbytes)}
    for name, fn in (("1 thread", lambda: read1(a)), (f"{numba.get_num_threads()} threads",
                                                      lambda: read_par(a, numba.get_num_threads()))):
        fn()
        best = min(_timed(fn) for _ in range(5))
        gbs = a.nbytes / best / 1e9
        out[f"read_GBps_{name.replace(' ', '_')}"] = round(gbs, 1)
        out[f"fc1_floor_ms_{name.replace(' ', '_')}"] = round(nbytes / (gbs * 1e9) * 1e3, 2)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
