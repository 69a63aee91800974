"""The ``eventflow`` command line.

    eventflow info FILE [--json]        what a recording holds
    eventflow convert IN OUT            any readable format to any writable one

Errors print one line naming the file and byte offset, and exit with status 2
(no traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .commands._output import removed_on_failure
from .errors import EventFormatError
from .progress import progress

EXIT_BAD_INPUT = 2

READ_HELP = """readable: Prophesee RAW (EVT 2.0, EVT 3.0) .raw, Prophesee .dat, Metavision HDF5
.hdf5/.h5 (ECF, gzip, lzf or uncompressed), AEDAT 4 .aedat4, AEDAT 3.1/2.0 .aedat,
N-MNIST .bin/.bs2, .npy (structured x, y, p, t) and .npz (arrays x, y, p, t)"""
WRITE_HELP = """writable, by extension: .hdf5/.h5 (Metavision HDF5, ECF-compressed unless
--compression says otherwise), .raw (EVT 3.0), .npz, .npy"""


def _reader_options(a) -> dict:
    opts = {}
    for k in ("width", "height"):
        if getattr(a, k, None) is not None:
            opts[k] = getattr(a, k)
    if getattr(a, "strict", False):
        opts["strict"] = True
    if getattr(a, "monotonic", None):
        opts["monotonic"] = a.monotonic
    if getattr(a, "format", None):
        opts["format"] = a.format
    return opts


def cmd_info(a) -> int:
    from . import open_events
    from .formats.reader import count_events

    if a.sample:
        from . import sample_path

        a.file = sample_path()
    if a.file is None:
        raise ValueError("info needs a FILE (or --sample)")
    r = open_events(a.file, **_reader_options(a))
    with progress(0, os.path.basename(a.file), "ev") as bar:
        stats = count_events(r, progress=None if bar is None else bar.update)
    n, t0, t1 = stats["events"], stats["t_first_us"], stats["t_last_us"]
    duration = None if n == 0 else (stats["t_max_us"] - stats["t_min_us"])
    rate = None if not duration else n / (duration * 1e-6)
    info = {"file": os.fspath(a.file), "format": r.format, "width": r.width, "height": r.height,
            "events": n, "t_first_us": t0, "t_last_us": t1, "duration_us": duration,
            "event_rate_hz": rate, "violations": stats["violations"]}
    if r.time_adjusted:
        info["time_adjusted"] = r.time_adjusted
    if a.json:
        print(json.dumps(info))
        return 0
    geo = "unknown" if r.width is None else f"{r.width} x {r.height}"
    print(f"file        {info['file']}")
    print(f"format      {r.format}")
    print(f"geometry    {geo}")
    print(f"events      {n:,}")
    if n:
        print(f"first t     {t0:,} us")
        print(f"last t      {t1:,} us")
        print(f"duration    {duration / 1e6:.6f} s")
        print(f"event rate  {rate / 1e6:.3f} Mev/s" if rate else "event rate  -")
    if stats["violations"]:
        print("violations  " + ", ".join(f"{k}: {v:,}" for k, v in stats["violations"].items()))
    else:
        print("violations  none")
    return 0


def cmd_convert(a) -> int:
    from . import open_events, writer_for

    r = open_events(a.input, **_reader_options(a))
    if os.path.abspath(a.input) == os.path.abspath(a.output):
        raise EventFormatError("output would overwrite the input", a.output)
    wopts = {"width": r.width, "height": r.height}
    if a.compression is not None:
        wopts["compression"] = None if a.compression == "none" else a.compression
    n = 0
    with (progress(0, f"{os.path.basename(a.input)} -> {os.path.basename(a.output)}", "ev") as bar,
          removed_on_failure(a.output), writer_for(a.output, **wopts) as w):
        for ev in r:
            w.write(ev)
            n += len(ev)
            if bar is not None:
                bar.update(len(ev))
    msg = f"wrote {n:,} events ({r.format} -> {os.path.splitext(a.output)[1]}) to {a.output}"
    if r.violations:
        msg += f"; input violations: {r.violations.counts}"
    print(msg, file=sys.stderr)
    return 0


def cmd_bench(a) -> int:
    from .bench import bench_snn

    rows = bench_snn(threads=a.threads, steps=a.steps, warmup=a.warmup, device=a.device)
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    where = (f"{rows[0]['device_name']}, CUDA graph + Triton" if "device_name" in rows[0]
             else f"{rows[0]['threads']} threads")
    print(f"reference conv SNN (2x128x128, 5% input), eventflow kernels, {where}, median of {rows[0]['n']} steps")
    for r in rows:
        print(f"  {r['case']:<5} {r['median']:8.3f} ms/step   (min {r['min']:.3f}, max {r['max']:.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eventflow",
        description="Streaming event-camera inference with spiking neural networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=READ_HELP + "\n" + WRITE_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def reader_args(sp):
        sp.add_argument("--format", help="force the input format (evt2, evt3, dat, hdf5, aedat4, aedat3, "
                                         "aedat2, nmnist, npy, npz) instead of detecting it")
        sp.add_argument("--width", type=int, help="sensor width, where the file does not say")
        sp.add_argument("--height", type=int, help="sensor height, where the file does not say")
        sp.add_argument("--strict", action="store_true",
                        help="fail at the first protocol violation instead of counting it")
        sp.add_argument("--monotonic", choices=("clamp", "sort"),
                        help="make time non-decreasing: clamp to the running maximum, or sort each chunk")

    sp = sub.add_parser("info", help="format, geometry, event count, time range, rate and violations of a file",
                        description="Read a whole event file (streaming) and report what it holds: format, "
                                    "width, height, event count, first and last timestamp, duration, event "
                                    "rate, and protocol violations counted by kind.",
                        epilog=READ_HELP)
    sp.add_argument("file", nargs="?", help="an event file")
    sp.add_argument("--sample", action="store_true",
                    help="use the bundled sample recording (a simulated 128x128 gesture) as FILE")
    sp.add_argument("--json", action="store_true",
                    help="print one JSON object (keys: format, width, height, events, t_first_us, t_last_us, "
                         "duration_us, event_rate_hz, violations)")
    reader_args(sp)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("convert", help="convert between event file formats (chosen by extension)",
                        description="Convert IN to OUT, streaming. The output format follows OUT's extension.",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=READ_HELP + "\n" + WRITE_HELP)
    sp.add_argument("input", metavar="IN")
    sp.add_argument("output", metavar="OUT")
    sp.add_argument("--compression", choices=("ecf", "none", "gzip", "lzf"),
                    help="HDF5 output only: chunk compression (default ecf, as Metavision writes)")
    reader_args(sp)
    sp.set_defaults(func=cmd_convert)

    sp = sub.add_parser("bench", help="benchmarks of the project's kernels (snn: the reference conv SNN)",
                        description="Time the reference conv SNN of the SNN-runtime issue (input 2x128x128, "
                                    "5% active pixels per step; conv 32-64-128, fc 256-11; LIF) with eventflow's "
                                    "event-driven kernels, at batch 1 (case b1) and 16 (case b16).")
    sp.add_argument("what", choices=("snn",), help="which benchmark")
    sp.add_argument("--json", action="store_true",
                    help="one JSON object per line with keys bench, case, median, unit (ms/step)")
    sp.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    sp.add_argument("--steps", type=int, default=20, help="timed steps per case (default 20)")
    sp.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    sp.add_argument("--device", default="cpu",
                    help="cpu (default: the numba kernels) or cuda / cuda:N (GpuNetwork: cuDNN sums, fused Triton "
                         "neuron kernels, CUDA graphs; needs a GPU)")
    sp.set_defaults(func=cmd_bench)

    for mod in _command_modules():
        mod.register(sub)
    return p


def _command_modules():
    """The modules of ``eventflow.commands``, in name order (each adds its own subcommands)."""
    import importlib
    import pkgutil

    from . import commands

    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{commands.__name__}.{n}") for n in names]


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return a.func(a)
    except (OSError, ValueError) as e:  # EventFormatError is a ValueError
        print(f"eventflow: error: {e}", file=sys.stderr)
    except MemoryError as e:   # (inputs are checked before they size an allocation; this is the machine's limit)
        print(f"eventflow: error: not enough memory{f' ({e})' if str(e) else ''}", file=sys.stderr)
    except KeyboardInterrupt:
        print("eventflow: interrupted", file=sys.stderr)
        return 130
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
