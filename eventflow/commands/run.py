"""``eventflow run``: the streaming pipeline from a config, a source URI and a model to results."""
from __future__ import annotations

import json
import signal
import sys
import threading

HELP = """Run the streaming pipeline: source -> decode -> window/encode -> model -> head -> sinks.

With no CONFIG, the embedded default (configs/default.yaml): replay the bundled sample
recording through the shipped model 'gesture-snn' and print one JSON line per decision
(a window where the committed class is first reached or changes, or where the same class is
committed again after the output went to rest: a gesture made again after a rest).

Sources (--source): PATH or file:PATH (any eventflow format), sample (the bundled
recording), sim:SCENE[?seed=S&seconds=D], - or stdin: (raw 16-byte EventCD records),
zmq+tcp://HOST:PORT[?mode=pull], udp://HOST:PORT[?width=W&height=H], dv+tcp://HOST:PORT,
camera:[SERIAL].
Sinks (--sink, repeatable): jsonl:- (stdout), jsonl:PATH, hdf5:PATH, zmq+tcp://HOST:PORT.

A result: {"stream", "t_start_us", "t_end_us" (sensor time), "latency_ms" (host time from
the arrival of the window's last event to the result), "task", then the task's payload:
classification "class_id", "class_name", "probability", "probabilities", "committed";
detection "boxes" (a list of {"x", "y", "w", "h", "class_id", "class_name", "confidence"},
sensor pixels, top-left corner); flow "flow" ({"shape", "cell_px", "mean_px", "max_px", "nonfinite",
"ref"}: the field itself is stored by the sink, jsonl:PATH in PATH.flow.h5, hdf5:PATH in
its file, zmq+tcp as a third frame; "ref" says where). The model's task decides which.

Ctrl-C / SIGTERM: in-flight windows finish, sinks flush and close, the summary is printed,
exit 0; a second Ctrl-C exits 130 at once. The summary goes to stderr; --metrics prints one
JSON object as the last line of stdout."""


def register(subparsers):
    import argparse

    sp = subparsers.add_parser("run", help="run the streaming pipeline (default: the sample through gesture-snn)",
                               description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("config", nargs="?", metavar="CONFIG", help="pipeline config (YAML); default: embedded default")
    sp.add_argument("--source", metavar="URI", help="source URI (overrides source.uri)")
    sp.add_argument("--sink", metavar="URI", action="append", help="sink URI, repeatable (replaces the config's sinks)")
    sp.add_argument("--model", metavar="NAME_OR_PATH", help="shipped model name, model folder or model.json")
    sp.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                    help="override a config key, typed by the schema (e.g. --set runner.queue_windows=4)")
    sp.add_argument("--realtime", metavar="FACTOR", type=float,
                    help="pace file/sim replay at FACTOR x real time (default: as fast as possible)")
    sp.add_argument("--emit", choices=("decisions", "windows"), help="results per decision (default) or per window")
    sp.add_argument("--metrics", action="store_true",
                    help="print a JSON object of counts and p50/p99 latencies (ms) as the last line of stdout")
    sp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bar on stderr (default: file replay on a terminal)")
    sp.add_argument("--prometheus", metavar="PORT", type=int,
                    help="serve metrics as Prometheus text at http://127.0.0.1:PORT/metrics")
    sp.set_defaults(func=cmd_run)


def _config(a):
    from ..pipeline.config import load_config, with_overrides

    cfg = load_config(a.config)
    sets = list(a.overrides)
    if a.source is not None:
        sets.append(f"source.uri={a.source}")
    if a.model is not None:
        sets.append(f"model.name={a.model}")
    if a.realtime is not None:
        sets.append(f"source.realtime={a.realtime}")
    if a.emit is not None:
        sets.append(f"head.emit={a.emit}")
    if a.sink:
        sets.append("sinks=" + json.dumps(a.sink))
    return with_overrides(cfg, sets) if sets else cfg


def _progress_bar(pipeline, want):
    from ..pipeline.sources import FileSource
    from ..progress import terminal_bar

    src = pipeline.source
    if not isinstance(src, FileSource):
        return None
    return terminal_bar(src.progress_total(), "replay", "ev", unit_scale=True, force=want)


def _summary_line(m, clocked: bool = True) -> str:
    """The run's one-line summary; ``clocked``: the source runs on a clock (live, or paced replay),
    so the host - sensor clock offset means something (an as-fast-as-possible replay: it does not)."""
    lat, clock = m["latency_ms"], (m.get("clock") or {}) if clocked else {}
    rate = f"{m['events_per_s'] / 1e6:.2f} Mev/s" if m.get("events_per_s") else "-"
    def by_reason(counts):
        return f" {counts}" if counts else ""

    text = (f"eventflow run: {m['events_in']:,} events in {m['wall_s']:.3f} s ({rate}); processed "
            f"{m['events_processed']:,}, dropped {m['events_dropped']:,}{by_reason(m['dropped'])}, rejected "
            f"{m['events_rejected']:,}{by_reason(m['rejected'])}; {m['windows']:,} windows, {m['results']:,} results; "
            f"latency p50 {lat['p50']} ms, p99 {lat['p99']} ms; model {m['backend']}")
    if clock:
        text += f"; host - sensor clock offset {clock['offset_us']} us (drift {clock['drift_us']} us)"
    if not m["balanced"]:
        text += f"; ACCOUNTING MISMATCH ({m['events_in_flight']} in flight)"
    return text


def cmd_run(a) -> int:
    from ..pipeline.metrics import serve_prometheus
    from ..pipeline.runner import build, make_runner

    cfg = _config(a)
    pipeline = build(cfg)
    runner = make_runner(pipeline)
    stop = threading.Event()
    interrupts = []

    def on_signal(signum, frame):
        interrupts.append(signum)
        if len(interrupts) > 1:
            raise KeyboardInterrupt
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server = serve_prometheus(a.prometheus, runner.metrics) if a.prometheus is not None else None
    bar = _progress_bar(pipeline, a.progress if a.progress is not None else (cfg.runner.progress or None))
    try:
        runner.run(stop=stop, progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
        try:
            pipeline.shutdown()
        finally:
            if server is not None:
                server.shutdown()
            for s, h in old.items():
                signal.signal(s, h)
    metrics = runner.metrics()
    if interrupts:
        metrics["interrupted"] = True
    clocked = cfg.source.clocked
    print(_summary_line(metrics, clocked) + ("; interrupted" if interrupts else ""), file=sys.stderr)
    if a.metrics:
        sys.stdout.write(json.dumps(metrics) + "\n")
        sys.stdout.flush()
    return 0
