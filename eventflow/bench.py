"""``eventflow bench snn``: time the issue's reference conv SNN with the project's kernels.

The network is ``eventflow.snn.reference_network()`` (PyTorch's default initialisation
scaled by 8, seed 0) run by ``FastNetwork`` (numba, event driven); input 2x128x128 with 5%
of pixels active per step (seed 0). Threads are pinned (numba and torch); each case is the
median ms per step over ``steps`` steps after ``warmup`` steps. Peers are timed by
``tools/bench_snn.py`` and ``../shared/bench`` (see docs/benchmarks.md).

``device="cuda"`` runs ``GpuNetwork`` instead (cuDNN / cuBLAS sums, fused Triton neuron kernels,
one CUDA graph per step) with the inputs already on the GPU; a step's time runs until the GPU
has finished it (``torch.cuda.synchronize``). Its rows carry ``"device": "cuda"``; an extra case
``b1-host`` times what a control loop sees: the input from host memory (numpy), the output back
in host memory.
"""
from __future__ import annotations

import time


def _inputs(net, batch, n, density):
    """``n`` steps of ``batch`` inputs, ``density`` of the pixels active (seed 0), float32 numpy."""
    import numpy as np

    rng = np.random.default_rng(0)
    return (rng.random((n, batch, *net.in_shape)) < density).astype(np.float32)


def _row(case, times_s, warmup, **extra):
    """The JSON row of one case: ms per step over the steps after ``warmup``."""
    import numpy as np

    ms = np.array(times_s[warmup:]) * 1e3
    return {"bench": "snn", "case": case, "median": round(float(np.median(ms)), 4), "min": round(float(ms.min()), 4),
            "max": round(float(ms.max()), 4), "p99": round(float(np.percentile(ms, 99)), 4), "unit": "ms/step",
            "n": int(len(ms)), **extra}


def bench_snn(batches=(1, 16), threads: int = 2, steps: int = 20, warmup: int = 5, density: float = 0.05,
              device: str = "cpu"):
    """Rows ``{"bench": "snn", "case": "b<batch>", "median": ms, "unit": "ms/step", ...}``."""
    if device != "cpu":
        return _bench_snn_gpu(batches, steps, warmup, density, device)
    import numba
    import torch

    from .snn import reference_network
    from .snn.fast import FastNetwork

    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    net = reference_network()
    fast = FastNetwork.from_network(net, parallel=threads > 1)
    rows = []
    for batch in batches:
        state = fast.init_state(batch)
        times = []
        for x in _inputs(net, batch, warmup + steps, density):
            t0 = time.perf_counter()
            _, state = fast.step(x, state, inplace=True)
            times.append(time.perf_counter() - t0)
        rows.append(_row(f"b{batch}", times, warmup, threads=threads, batch=int(batch), input_density=density))
    return rows


def _bench_snn_gpu(batches, steps, warmup, density, device):
    import torch

    from .snn import reference_network
    from .snn.gpu import GpuNetwork

    if device != "cuda" and not device.startswith("cuda:"):
        raise ValueError(f"bench snn --device {device!r}: expected cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"bench snn --device {device}: torch sees no CUDA device")
    net = reference_network()
    gpu = GpuNetwork(net, device)
    rows = []
    for batch in batches:
        xs = torch.from_numpy(_inputs(net, batch, warmup + steps, density))
        cases = [(f"b{batch}", xs.to(gpu.device), False)]
        if batch == 1:
            cases.append(("b1-host", xs.numpy(), True))
        for case, inputs, host in cases:
            state = gpu.init_state(batch)
            times = []
            for x in inputs:
                torch.cuda.synchronize(gpu.device)
                t0 = time.perf_counter()
                y, state = gpu.step(x, state, inplace=True)
                if host:
                    y = y.cpu().numpy()
                torch.cuda.synchronize(gpu.device)
                times.append(time.perf_counter() - t0)
            rows.append(_row(case, times, warmup, device=str(gpu.device),
                             device_name=torch.cuda.get_device_name(gpu.device), fused=gpu.fused, graph=gpu.graph,
                             batch=int(batch), input_density=density))
    return rows
