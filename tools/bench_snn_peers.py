"""Time one step of the issue's reference conv SNN in eventflow and in the peer frameworks, in one run.

Same weights (``eventflow.snn.reference_network()``: PyTorch default init, seed 0, weights x8) and the
same inputs (5% active pixels per step, ``torch.Generator().manual_seed(0)``, the tensor of
``tools/bench_snn.py``) for every implementation:

- ``eventflow``    FastNetwork.from_network(net, parallel=True), ``step(x, state, inplace=True)`` (numba)
- ``snntorch``     nn.Conv2d / nn.Linear + ``snntorch.Leaky(beta=0.5, threshold=1, reset_mechanism="zero",
                   reset_delay=False)``, membranes passed explicitly. snnTorch has no ``decay_input``
                   (mem = beta*mem + x), so the layer feeding each Leaky has weights and bias times 0.5
                   (exact in float32): mem = v/2 + x/2 is the issue's h = v + (x - v)/2 up to rounding.
                   snnTorch fires at mem > threshold (eventflow: >=).
- ``norse``        ``norse.torch.SequentialState`` with ``LIFBoxCell(LIFBoxParameters(tau_mem_inv=0.5, v_leak=0,
                   v_th=1, v_reset=0, reset_value), dt=1)``
- ``spikingjelly`` ``LIFNode(tau=2, decay_input=True, v_threshold=1, v_reset=0, detach_reset=True)``, step_mode 's'
- ``torch``        hand-written torch step, membranes as explicit inputs / outputs
- ``onnxruntime``  that torch step exported (TorchScript exporter, opset 17, static shapes) with the four
                   membranes as explicit ONNX inputs and outputs; CPUExecutionProvider, intra_op threads pinned

Each implementation is first checked against eventflow's torch reference (``Network.step``) over the
first ``--check`` steps from rest: output max |diff|, and the fraction of the 917,760 membranes per
sample that are exactly equal / within 1e-5 after those steps (spike flips at the threshold from
float32 summation order, or '>' vs '>=', make exact equality not guaranteed). Then each is timed
from rest: median ms/step over ``--steps`` steps after ``--warmup``. Threads: torch.set_num_threads,
numba.set_num_threads (NUMBA_NUM_THREADS), ORT intra_op_num_threads, all ``--threads``.
A peer whose import fails is skipped with a printed note. Table by default, ``--json`` for JSON
lines ({"bench": "snn", "case": "b1"|"b16", "impl", "median", "min", "max", "unit": "ms/step", "n",
"threads"}, plus "out_max_diff", "v_equal", "v_close" from the check).

    python tools/bench_snn_peers.py --threads 2 --batch 1 16

``--device cuda`` runs every implementation on the GPU (inputs already there; a step's time runs
until the GPU has finished it, ``torch.cuda.synchronize``), with TF32 off for all of them (full
float32 sums, as the reference). ``eventflow`` is then ``GpuNetwork`` (cuDNN / cuBLAS sums, one fused
Triton kernel per LIF layer, the step replayed as one CUDA graph), ``eventflow-eager`` the same
without the graph, and ``torch-compile`` the hand-written torch step under
``torch.compile(mode="reduce-overhead")`` (Inductor's fused kernels in CUDA graphs). onnxruntime
runs only where its CUDA provider is installed.

    python tools/bench_snn_peers.py --device cuda --batch 1 16
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

IMPLS = ["eventflow", "snntorch", "norse", "spikingjelly", "torch", "onnxruntime"]
GPU_IMPLS = ["eventflow", "eventflow-eager", "snntorch", "norse", "spikingjelly", "torch", "onnxruntime",
             "torch-compile"]
LAYERS = ("conv1", "conv2", "conv3", "fc1", "fc2")
LIFS = ("lif1", "lif2", "lif3", "lif4")


def _torch_layers(net, scale_pre_lif=1.0, conv_cls=None, linear_cls=None):
    """Fresh nn.Conv2d / nn.Linear (or the given classes) holding the reference weights.

    ``scale_pre_lif`` multiplies the weights and biases of the four layers that feed a LIF (not fc2).
    """
    import torch
    from torch import nn
    conv_cls = conv_cls or nn.Conv2d
    linear_cls = linear_cls or nn.Linear
    mods = [conv_cls(2, 32, 3, padding=1), conv_cls(32, 64, 3, padding=1), conv_cls(64, 128, 3, padding=1),
            linear_cls(128 * 16 * 16, 256), linear_cls(256, 11)]
    with torch.no_grad():
        for name, m in zip(LAYERS, mods):
            s = scale_pre_lif if name != "fc2" else 1.0
            m.weight.copy_(net.weights[name]["weight"] * s)
            m.bias.copy_(net.weights[name]["bias"] * s)
    return [m.eval() for m in mods]


def _state_shapes(batch):
    return [(batch, 32, 128, 128), (batch, 64, 64, 64), (batch, 128, 32, 32), (batch, 256)]


# ---------------------------------------------------------------- the implementations
# Each maker returns (reset() -> None, step(x_torch, x_numpy) -> output, membranes() -> [4 torch tensors]).

def _explicit_state(init_state, step, membranes):
    """The maker triple of an implementation whose state is a value: ``init_state() -> state``,
    ``step(x_torch, x_numpy, state) -> (y, state)``, ``membranes(state) -> [4 tensors]``."""
    st = {}

    def reset():
        st["s"] = init_state()

    def do_step(xt, xn):
        y, st["s"] = step(xt, xn, st["s"])
        return y
    return reset, do_step, lambda: membranes(st["s"])


def make_eventflow_gpu(net, batch, device, graph=True):
    from eventflow.snn.gpu import GpuNetwork
    gpu = GpuNetwork(net, device, graph=graph)
    return _explicit_state(lambda: gpu.init_state(batch), lambda xt, xn, s: gpu.step(xt, s, inplace=True),
                           lambda s: [s[k].v for k in LIFS])


def make_eventflow(net, batch, device="cpu"):
    if device != "cpu":
        return make_eventflow_gpu(net, batch, device)
    from eventflow.snn.fast import FastNetwork
    fast = FastNetwork.from_network(net, parallel=True)

    def membranes(s):
        ts = fast.to_torch_state(s)
        return [ts[k].v for k in LIFS]
    return _explicit_state(lambda: fast.init_state(batch), lambda xt, xn, s: fast.step(xn, s, inplace=True),
                           membranes)


def make_torch_module(net):
    """The hand-written torch step (state as explicit inputs and outputs; ONNX-exportable)."""
    from torch import nn
    import torch.nn.functional as F

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3, self.f1, self.f2 = _torch_layers(net)

        @staticmethod
        def lif(x, v):
            h = v + (x - v) * 0.5
            s = (h >= 1.0).to(x.dtype)
            return s, h * (1.0 - s)

        def forward(self, x, v1, v2, v3, v4):
            s, v1 = self.lif(self.c1(x), v1)
            s, v2 = self.lif(self.c2(F.max_pool2d(s, 2)), v2)
            s, v3 = self.lif(self.c3(F.max_pool2d(s, 2)), v3)
            s, v4 = self.lif(self.f1(F.max_pool2d(s, 2).flatten(1)), v4)
            return self.f2(s), v1, v2, v3, v4
    return Step().eval()


def make_torch(net, batch, device="cpu"):
    import torch
    mod = make_torch_module(net).to(device)
    st = {}

    def reset():
        st["v"] = [torch.zeros(s, device=device) for s in _state_shapes(batch)]

    def step(xt, xn):
        y, *st["v"] = mod(xt, *st["v"])
        return y
    return reset, step, lambda: list(st["v"])


def make_onnxruntime(net, batch, threads, device="cpu"):
    import numpy as np
    import onnxruntime as ort
    import torch
    provider = "CPUExecutionProvider"
    if device != "cpu":   # (numpy in and out: the state crosses the bus every step)
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ImportError(f"this onnxruntime has no CUDA provider ({ort.get_available_providers()})")
        provider = "CUDAExecutionProvider"
    mod = make_torch_module(net)
    names_in, names_out = ["x", "v1", "v2", "v3", "v4"], ["y", "v1_out", "v2_out", "v3_out", "v4_out"]
    path = os.path.join(tempfile.mkdtemp(prefix="eventflow-snn-onnx-"), f"step_b{batch}.onnx")
    args = (torch.zeros(batch, 2, 128, 128), *[torch.zeros(s) for s in _state_shapes(batch)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(mod, args, path, input_names=names_in, output_names=names_out, opset_version=17,
                          dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=[provider])
    st = {}

    def reset():
        st["v"] = [np.zeros(s, np.float32) for s in _state_shapes(batch)]

    def step(xt, xn):
        y, *st["v"] = sess.run(None, {"x": xn, "v1": st["v"][0], "v2": st["v"][1], "v3": st["v"][2],
                                      "v4": st["v"][3]})
        return y
    return reset, step, lambda: [torch.from_numpy(v) for v in st["v"]]


def make_torch_compile(net, batch, device="cpu"):
    import torch
    mod = torch.compile(make_torch_module(net).to(device), mode="reduce-overhead", fullgraph=True)
    st = {}

    def reset():
        st["v"] = [torch.zeros(s, device=device) for s in _state_shapes(batch)]

    def step(xt, xn):
        torch.compiler.cudagraph_mark_step_begin()
        y, *v = mod(xt, *st["v"])
        st["v"] = [t.clone() for t in v]   # the graph's outputs are overwritten by its next replay
        return y.clone()
    return reset, step, lambda: list(st["v"])


def make_snntorch(net, batch, device="cpu"):
    import snntorch
    import torch
    from torch import nn
    c1, c2, c3, f1, f2 = (m.to(device) for m in _torch_layers(net, scale_pre_lif=0.5))   # Leaky: feed it x/2
    leaky = [snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False).to(device).eval()
             for _ in range(4)]
    pool = nn.MaxPool2d(2)
    st = {}

    def reset():
        st["v"] = [torch.zeros(s, device=device) for s in _state_shapes(batch)]

    def step(xt, xn):
        v = st["v"]
        s, v[0] = leaky[0](c1(xt), v[0])
        s, v[1] = leaky[1](c2(pool(s)), v[1])
        s, v[2] = leaky[2](c3(pool(s)), v[2])
        s, v[3] = leaky[3](f1(pool(s).flatten(1)), v[3])
        return f2(s)
    return reset, step, lambda: list(st["v"])


def make_norse(net, batch, device="cpu"):
    import norse.torch as nt
    import torch
    from norse.torch.functional.reset import reset_value
    from torch import nn
    c1, c2, c3, f1, f2 = _torch_layers(net)

    def cell():
        p = nt.LIFBoxParameters(tau_mem_inv=torch.as_tensor(0.5), v_leak=torch.as_tensor(0.0),
                                v_th=torch.as_tensor(1.0), v_reset=torch.as_tensor(0.0), reset_method=reset_value)
        return nt.LIFBoxCell(p, dt=1.0)
    seq = nt.SequentialState(c1, cell(), nn.MaxPool2d(2), c2, cell(), nn.MaxPool2d(2), c3, cell(),
                             nn.MaxPool2d(2), nn.Flatten(), f1, cell(), f2).to(device).eval()
    st = {}

    def reset():   # rest explicitly at v = 0 (Norse's default first state starts at v_leak, also 0 here)
        st["s"] = None

    def step(xt, xn):
        y, st["s"] = seq(xt, st["s"])
        return y

    def membranes():
        return [s.v for s in st["s"] if s is not None]
    return reset, step, membranes


def make_spikingjelly(net, batch, device="cpu"):
    from spikingjelly.activation_based import functional, layer, neuron
    from torch import nn
    c1, c2, c3, f1, f2 = _torch_layers(net, conv_cls=layer.Conv2d, linear_cls=layer.Linear)
    nodes = [neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=True)
             for _ in range(4)]
    seq = nn.Sequential(c1, nodes[0], layer.MaxPool2d(2), c2, nodes[1], layer.MaxPool2d(2), c3, nodes[2],
                        layer.MaxPool2d(2), layer.Flatten(), f1, nodes[3], f2).to(device).eval()
    functional.set_step_mode(seq, "s")

    def reset():
        functional.reset_net(seq)

    def step(xt, xn):
        return seq(xt)
    return reset, step, lambda: [n.v for n in nodes]


MAKERS = {"eventflow": make_eventflow, "snntorch": make_snntorch, "norse": make_norse,
          "spikingjelly": make_spikingjelly, "torch": make_torch, "onnxruntime": make_onnxruntime,
          "eventflow-eager": lambda net, batch, device: make_eventflow_gpu(net, batch, device, graph=False),
          "torch-compile": make_torch_compile}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--check", type=int, default=3, help="steps compared with the torch reference before timing")
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--impl", nargs="+", choices=GPU_IMPLS,
                    help=f"default: {' '.join(IMPLS)}; with --device cuda: {' '.join(GPU_IMPLS)}")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.device == "cpu" and set(args.impl or ()) & {"eventflow-eager", "torch-compile"}:
        ap.error("eventflow-eager and torch-compile run with --device cuda only")
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)   # before numba is imported

    import numba
    import numpy as np
    import torch

    from eventflow import snn

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    gpu = args.device != "cpu"
    impls = args.impl or (GPU_IMPLS if gpu else IMPLS)
    if gpu:
        torch.backends.cudnn.allow_tf32 = False        # full float32 sums for every implementation
        torch.backends.cuda.matmul.allow_tf32 = False
        sync = torch.cuda.synchronize
    else:
        def sync():
            pass
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    say(f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}, onnxruntime intra_op "
        f"{args.threads}" + (f"; device {torch.cuda.get_device_name()} (torch {torch.__version__})" if gpu else ""))
    net = snn.reference_network()
    rows, t_start = [], time.perf_counter()
    for batch in args.batch:
        g = torch.Generator().manual_seed(0)
        n = args.warmup + args.steps
        xs = (torch.rand(max(n, args.check), batch, *net.in_shape, generator=g) < args.density).float()
        xn = xs.numpy()
        xd = xs.to(args.device)
        # the torch reference over the check steps
        ref_state = net.init_state(batch)
        ref_out = []
        with torch.no_grad():
            for t in range(args.check):
                y, ref_state = net.step(xs[t], ref_state)
                ref_out.append(y)
        ref_v = [ref_state[k].v for k in LIFS]
        for impl in impls:
            try:
                with torch.no_grad():
                    if impl == "onnxruntime":
                        reset, step, membranes = make_onnxruntime(net, batch, args.threads, args.device)
                    elif gpu:
                        reset, step, membranes = MAKERS[impl](net, batch, args.device)
                    else:
                        reset, step, membranes = MAKERS[impl](net, batch)
            except ImportError as e:
                say(f"note: {impl} skipped, not installed ({type(e).__name__}: {e})")
                continue
            except Exception as e:   # e.g. the ONNX export failing: report it, time the others
                say(f"note: {impl} skipped, could not be built ({type(e).__name__}: {e})")
                continue
            with torch.no_grad():
                reset()
                out_diff = 0.0
                for t in range(args.check):
                    y = step(xd[t], xn[t])
                    y = y.cpu() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
                    out_diff = max(out_diff, float((y - ref_out[t]).abs().max()))
                vs = [v.cpu() for v in membranes()]
                total = sum(r.numel() for r in ref_v)
                v_equal = sum(int((v == r).sum()) for v, r in zip(vs, ref_v)) / total
                v_close = sum(int(((v - r).abs() <= 1e-5).sum()) for v, r in zip(vs, ref_v)) / total
                reset()
                times = []
                for t in range(n):
                    sync()
                    t0 = time.perf_counter()
                    step(xd[t], xn[t])
                    sync()
                    times.append(time.perf_counter() - t0)
            ms = np.array(times[args.warmup:]) * 1e3
            rows.append({"bench": "snn", "case": f"b{batch}", "impl": impl, "median": round(float(np.median(ms)), 3),
                         "min": round(float(ms.min()), 3), "max": round(float(ms.max()), 3), "unit": "ms/step",
                         "n": len(ms), "threads": args.threads, "device": args.device,
                         "out_max_diff": float(f"{out_diff:.3g}"),
                         "v_equal": round(v_equal, 7), "v_close": round(v_close, 7)})
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        print(f"reference conv SNN, {args.density:.0%} input, {args.device}, {args.threads} threads, median of "
              f"{args.steps} steps; "
              f"check vs eventflow's torch reference over {args.check} steps (v_equal / v_close: fraction of "
              f"membranes exactly equal / within 1e-5)")
        print(f"{'case':<6}{'impl':<16}{'median':>9}{'min':>9}{'max':>9}  {'unit':<8}{'out|diff|':>10}"
              f"{'v_equal':>10}{'v_close':>10}")
        for r in rows:
            print(f"{r['case']:<6}{r['impl']:<16}{r['median']:>9.3f}{r['min']:>9.3f}{r['max']:>9.3f}  {r['unit']:<8}"
                  f"{r['out_max_diff']:>10.2g}{r['v_equal']:>10.6f}{r['v_close']:>10.6f}")
        print(f"total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
