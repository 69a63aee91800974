"""Latency percentiles in bounded memory, and an optional Prometheus text endpoint.

``Recorder`` keeps the last ``capacity`` samples in a ring (memory stays flat over any stream)
plus a running count and sum; ``percentiles()`` reads p50/p99 from the ring and gives the sum
of all samples (``total_ms``: for stage times, where the run's time went).

>>> r = Recorder(capacity=4)
>>> for v in (1.0, 2.0, 3.0, 4.0, 100.0): r.add(v)
>>> r.count, r.percentiles()["p50_ms"]
(5, 3.5)
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

__all__ = ["Recorder", "StageTimes", "prometheus_text", "serve_prometheus"]


class Recorder:
    """Milliseconds samples: the last ``capacity`` kept for percentiles, count and sum of all."""

    def __init__(self, capacity: int = 65536):
        self._ring = np.zeros(int(capacity), np.float64)
        self.count = 0
        self.total = 0.0
        self._lock = threading.Lock()

    def add(self, ms: float):
        with self._lock:
            self._ring[self.count % len(self._ring)] = ms
            self.count += 1
            self.total += ms

    def add_many(self, ms: np.ndarray):
        for v in np.asarray(ms, np.float64).ravel():
            self.add(float(v))

    def percentiles(self) -> dict:
        with self._lock:
            n = min(self.count, len(self._ring))
            if n == 0:
                return {"p50_ms": None, "p99_ms": None, "count": 0, "total_ms": 0.0}
            p50, p99 = np.percentile(self._ring[:n], [50, 99])
            total = self.total
        return {"p50_ms": round(float(p50), 4), "p99_ms": round(float(p99), 4), "count": self.count,
                "total_ms": round(total, 3)}


class StageTimes:
    """One ``Recorder`` per stage name, plus ``e2e`` (event-to-result latency)."""

    def __init__(self, names, capacity: int = 65536):
        self.stages = {n: Recorder(capacity) for n in names}
        self.e2e = Recorder(capacity)

    def summary(self) -> dict:
        e = self.e2e.percentiles()
        return {"latency_ms": {"p50": e["p50_ms"], "p99": e["p99_ms"], "count": e["count"]},
                "stages": {n: r.percentiles() for n, r in self.stages.items()}}


def prometheus_text(metrics: dict) -> str:
    """Prometheus exposition text of a metrics dict (``Runner.metrics()``)."""
    lines = []
    for k in ("events_in", "events_processed", "events_dropped", "events_rejected", "windows", "results"):
        if k in metrics:
            lines += [f"# TYPE eventflow_{k} counter", f"eventflow_{k} {int(metrics[k])}"]
    lat = metrics.get("latency_ms", {})
    for q, key in (("0.5", "p50"), ("0.99", "p99")):
        if lat.get(key) is not None:
            lines.append(f'eventflow_latency_ms{{quantile="{q}"}} {lat[key]}')
    for name, s in metrics.get("stages", {}).items():
        for q, key in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
            if s.get(key) is not None:
                lines.append(f'eventflow_stage_ms{{stage="{name}",quantile="{q}"}} {s[key]}')
    return "\n".join(lines) + "\n"


def serve_prometheus(port: int, get_metrics, host: str = "127.0.0.1"):
    """Serve ``prometheus_text(get_metrics())`` at ``http://host:port/metrics`` from a daemon
    thread; returns the server (call ``shutdown()`` on it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.rstrip("/") not in ("", "/metrics"):
                self.send_error(404)
                return
            body = prometheus_text(get_metrics()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    try:
        server = ThreadingHTTPServer((host, int(port)), Handler)
    except OSError as e:
        raise OSError(f"--prometheus {port}: cannot listen on {host}:{port} ({e.strerror})") from None
    threading.Thread(target=server.serve_forever, name="prometheus", daemon=True).start()
    return server
