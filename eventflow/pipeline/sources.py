"""Sources: files, the simulator, standard input and in-memory arrays, by URI.

``open_source(uri, ...)`` picks the source from the URI:

- a path or ``file:PATH``: any eventflow format (``FileSource``), as fast as possible or paced
  at ``realtime`` times real time; ``sample``: the bundled sample recording;
- ``sim:SCENE[?seed=S&seconds=D]``: the simulator (``SimSource``);
- ``-`` or ``stdin:``: raw EventCD bytes (16 bytes a record) on standard input
  (``StreamSource``; a record split across reads is carried to the next read, never lost);
- ``zmq+tcp://``, ``udp://``, ``dv+tcp://``, ``camera:``: ``eventflow.pipeline.net`` (imported
  only when used).

Every source follows ``eventflow.pipeline.stage.Source``. Its state is its position (events
delivered so far), so ``reset(state)`` resumes a replay exactly.

>>> import eventflow
>>> src = ArraySource(eventflow.from_fields([1, 2], [0, 0], [1, 0], [10, 20]), batch_events=1)
>>> [len(src.next().events) for _ in range(2)], src.counters()["received"]
([1, 1], 2)
"""
from __future__ import annotations

import math
import os
import select
import sys
import time
from urllib.parse import parse_qs

import numpy as np

from ..errors import DROPS_EVENTS
from ..events import EVENT_DTYPE, concatenate, empty
from .stage import Batch, EndOfStream

__all__ = ["ArraySource", "FileSource", "SimSource", "StreamSource", "is_live_uri", "open_source"]

NET_SCHEMES = ("zmq+tcp:", "udp:", "dv+tcp:", "camera")


def is_live_uri(uri: str) -> bool:
    """Whether the URI names a network or camera source (events arrive on their own clock)."""
    return uri.startswith(NET_SCHEMES)


def _counters(received, rejected=None, dropped=None):
    return {"received": int(received), "rejected": dict(rejected or {}), "dropped": dict(dropped or {})}


class _Pacer:
    """Releases sensor time ``t`` no earlier than host time ``start + (t - t0) / factor``.

    A wait longer than ``MAX_WAIT_S`` (a jump in a file's clock, e.g. a corrupt timestamp
    years ahead) is not slept through: the pacer waits ``MAX_WAIT_S`` and re-anchors its clock
    at that event, counting the jump in ``gaps_shortened``."""

    MAX_WAIT_S = 10.0

    def __init__(self, factor):
        self.factor = factor
        self.t0 = None
        self.host0 = None
        self.gaps_shortened = 0

    def wait(self, t_us):
        if self.factor is None:
            return
        if self.t0 is None:
            self.t0, self.host0 = t_us, time.monotonic()
            return
        delay = self.host0 + (t_us - self.t0) / 1e6 / self.factor - time.monotonic()
        if delay > self.MAX_WAIT_S:
            self.gaps_shortened += 1
            time.sleep(self.MAX_WAIT_S)
            self.t0, self.host0 = t_us, time.monotonic()
        elif delay > 0:
            time.sleep(delay)


class ArraySource:
    """Events already in memory, in batches of ``batch_events`` (tests, benchmarks, robots)."""

    def __init__(self, events, batch_events=1 << 16, width=None, height=None, realtime=None, name="source"):
        self.name = name
        self._events = events
        self._batch = int(batch_events)
        self._geom = (width, height) if width is not None else None
        self._realtime = realtime
        self.reset()

    def next(self, timeout_s=None):
        if self._pos >= len(self._events):
            raise EndOfStream
        ev = self._events[self._pos:self._pos + self._batch]
        self._pacer.wait(int(ev["t"][-1]))
        self._pos += len(ev)
        return Batch(ev, time.monotonic_ns())

    def geometry(self):
        return self._geom

    def counters(self):
        return _counters(self._pos)

    def get_state(self):
        return {"position": self._pos}

    def reset(self, state=None):
        self._pos = 0 if state is None else int(state["position"])
        self._pacer = _Pacer(self._realtime)

    def shutdown(self):
        pass


#: an unpaced file replay joins the reader's arrays into batches spanning this much sensor time
#: (or up to ``chunk_events``)
GATHER_US = 2_000_000


class FileSource:
    """An event file read in chunks; paced replay splits chunks into ``batch_us`` pieces."""

    def __init__(self, path, realtime=None, batch_us=1000, chunk_events=1 << 18, width=None, height=None,
                 name="source"):
        from .. import open_events

        if not os.path.isfile(path):
            raise FileNotFoundError(f"source: no such file {path!r}")
        self.name = name
        self.path = path
        # the window stage's binning pass validates every event (and counts the out-of-bounds
        # ones as rejected): the reader's own bounds pass would be a second one
        self.reader = open_events(path, width=width, height=height, chunk_events=chunk_events, check_bounds=False)
        self.realtime = realtime
        self.batch_us = int(batch_us)
        self.chunk_events = int(chunk_events)
        self.reset()

    def _batches(self):
        if self.realtime is None:   # as fast as possible: the reader's arrays gathered (``_gathered``)
            yield from self._gathered()
            return
        for chunk in self.reader:
            if len(chunk) == 0:
                continue
            slot = chunk["t"] // self.batch_us   # cut where the batch_us slot changes: at most one cut per event
            lo = 0
            for hi in (np.flatnonzero(slot[1:] != slot[:-1]) + 1).tolist():
                yield chunk[lo:hi]
                lo = hi
            yield chunk[lo:]

    def _gathered(self):
        """The reader's arrays, consecutive ones joined until a batch spans ``GATHER_US`` of sensor
        time or would pass ``chunk_events``: a format whose chunks are small, as HDF5's 16k events,
        then costs the stages one call per two seconds of recording rather than per chunk (each
        call has a fixed cost: fewer, larger batches replay faster), and a window waits at most
        for two seconds' windows before it (its latency counts from its batch's arrival)."""
        parts, n, t0 = [], 0, 0

        def joined():
            return parts[0] if len(parts) == 1 else concatenate(parts)

        try:
            for chunk in self.reader:
                if len(chunk) == 0:
                    continue
                if n and n + len(chunk) > self.chunk_events:
                    yield joined()
                    parts, n = [], 0
                if n == 0:
                    t0 = int(chunk["t"][0])
                parts.append(chunk)
                n += len(chunk)
                if int(chunk["t"][-1]) - t0 >= GATHER_US:
                    yield joined()
                    parts, n = [], 0
        except Exception:   # a reader failing mid-file: what it read before still goes through first
            if n:
                yield joined()
            raise
        if n:
            yield joined()

    def next(self, timeout_s=None):
        while True:
            ev = next(self._it, None)
            if ev is None:
                raise EndOfStream
            if self._skip:
                take = min(self._skip, len(ev))
                ev, self._skip = ev[take:], self._skip - take
            if len(ev):
                break
        self._pacer.wait(int(ev["t"][-1]))
        self._pos += len(ev)
        return Batch(ev, time.monotonic_ns(), width=self.reader.width, height=self.reader.height)

    def geometry(self):
        if self.reader.width is None:
            return None
        return (self.reader.width, self.reader.height)

    def counters(self):
        """``received`` counts the events delivered and those the reader dropped (``rejected``, by
        kind); ``violations`` holds every kind the reader counted, including those that keep the
        event (a time going back) or count bytes (a truncated record)."""
        v = dict(self.reader.violations.counts) if self.reader.violations else {}
        dropped_by_reader = {k: n for k, n in v.items() if k in DROPS_EVENTS}
        return {**_counters(self._pos + sum(dropped_by_reader.values()), rejected=dropped_by_reader), "violations": v}

    def progress_total(self):
        """Events in the file, where the reader can tell cheaply (for a progress bar)."""
        return self.reader._max_events()

    def get_state(self):
        return {"position": self._pos}

    def reset(self, state=None):
        self._pos = 0 if state is None else int(state["position"])
        self._skip = self._pos
        self._it = self._batches()
        self._pacer = _Pacer(self.realtime)

    def shutdown(self):
        self._it = iter(())


class SimSource:
    """The simulator, advanced ``batch_us`` of sensor time per batch (``eventflow.sim``)."""

    def __init__(self, scene, seed=0, seconds=None, batch_us=1000, realtime=None, name="source"):
        try:
            from ..sim import Simulator
            from ..sim.scenes import make_scene
            from ..sim.simulator import scene_sensor
        except ImportError as e:
            raise ValueError(f"source sim:{scene}: the simulator is not available ({e})") from None
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not (math.isfinite(seconds) and seconds >= 1e-6)):
            raise ValueError(f"source sim:{scene}: seconds must be a finite number > 0 (at least 1 us), got {seconds!r}")
        if int(batch_us) <= 0:
            raise ValueError(f"source sim:{scene}: batch_us must be > 0, got {batch_us!r}")
        self.name = name
        sensor = scene_sensor(scene)
        w, h = sensor.width, sensor.height
        self._scene = make_scene(scene, w, h, seed)
        self._sim = Simulator(self._scene, sensor, seed)
        self._geom = (w, h)
        self._end_us = int(round((self._scene.duration_s if seconds is None else seconds) * 1e6))
        self.batch_us = int(batch_us)
        self.realtime = realtime
        self.reset()

    def next(self, timeout_s=None):
        if self._t >= self._end_us:
            raise EndOfStream
        t_end = min(self._t + self.batch_us, self._end_us)
        ev, self._state = self._sim.advance(t_end, self._state)
        self._t = t_end
        self._pacer.wait(t_end)
        self._n += len(ev)
        return Batch(ev, time.monotonic_ns(), width=self._geom[0], height=self._geom[1])

    def geometry(self):
        return self._geom

    def counters(self):
        return _counters(self._n)

    def get_state(self):
        return {"t_us": self._t, "received": self._n, "sim": self._state}

    def reset(self, state=None):
        self._pacer = _Pacer(self.realtime)
        if state is None:
            self._t, self._n, self._state = 0, 0, self._sim.init_state()
        else:
            self._t, self._n, self._state = int(state["t_us"]), int(state["received"]), state["sim"]

    def shutdown(self):
        pass


class StreamSource:
    """Raw EventCD records (16 bytes each, ``EVENT_DTYPE``) from a binary stream (stdin).

    Reads whatever is available (up to ``read_bytes``); a record cut across reads is kept and
    completed by the next read. At end of input, a trailing partial record is counted as one
    rejected event (``truncated_record``).
    """

    def __init__(self, stream=None, width=None, height=None, read_bytes=1 << 20, name="source"):
        self.name = name
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._geom = (width, height) if width is not None and height is not None else None
        self._read_bytes = int(read_bytes)
        self._carry = b""
        self._n = 0
        self._rejected = {}
        self._eof = False

    def _read(self, timeout_s):
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is not None and timeout_s is not None:
            ready, _, _ = select.select([fd], [], [], timeout_s)
            if not ready:
                return None
        if fd is not None:
            return os.read(fd, self._read_bytes)
        return self._stream.read(self._read_bytes)

    def next(self, timeout_s=None):
        while True:
            if self._eof:
                raise EndOfStream
            data = self._read(timeout_s)
            if data is None:
                return None
            if not data:
                self._eof = True
                if self._carry:
                    self._rejected["truncated_record"] = self._rejected.get("truncated_record", 0) + 1
                    self._n += 1
                    self._carry = b""
                raise EndOfStream
            buf = self._carry + data
            whole = len(buf) // EVENT_DTYPE.itemsize * EVENT_DTYPE.itemsize
            self._carry = buf[whole:]
            if whole:
                ev = empty(whole // EVENT_DTYPE.itemsize)
                ev.view(np.uint8)[:] = np.frombuffer(buf, np.uint8, whole)
                self._n += len(ev)
                return Batch(ev, time.monotonic_ns())

    def geometry(self):
        return self._geom

    def counters(self):
        return _counters(self._n, rejected=self._rejected)

    def get_state(self):
        return {"received": self._n, "carry": self._carry}

    def reset(self, state=None):
        if state is not None:  # a stream cannot rewind: restore the partial record and counts
            self._n, self._carry = int(state["received"]), bytes(state["carry"])

    def shutdown(self):
        self._eof = True


def _query(rest, uri):
    path, _, q = rest.partition("?")
    opts = {k: v[-1] for k, v in parse_qs(q, keep_blank_values=True).items()}
    return path, opts


def open_source(uri: str, *, realtime=None, batch_us=1000, chunk_events=1 << 18, width=None, height=None,
                geometry=None, options=None):
    """The source a URI names (see the module docstring); errors name the URI."""
    if options and not is_live_uri(uri):
        raise ValueError(f"source {uri!r}: source.options ({', '.join(sorted(map(str, options)))}) are for live "
                         "sources (zmq+tcp://, udp://, dv+tcp://, camera:); files, sim: and stdin take none")
    if uri in ("-", "stdin:"):
        return StreamSource(width=width, height=height)
    if uri.startswith("sim:"):
        scene, q = _query(uri[4:], uri)
        unknown = set(q) - {"seed", "seconds"}
        if unknown:
            raise ValueError(f"source {uri!r}: unknown option {sorted(unknown)[0]!r} (known: seed, seconds)")
        try:
            seed = int(q.get("seed", 0))
            seconds = float(q["seconds"]) if "seconds" in q else None
        except ValueError:
            raise ValueError(f"source {uri!r}: seed must be an integer and seconds a number") from None
        return SimSource(scene, seed=seed, seconds=seconds, batch_us=batch_us, realtime=realtime)
    if is_live_uri(uri):
        from . import net

        return net.open_net_source(uri, geometry=geometry or ((width, height) if width else None),
                                   **dict(options or {}))
    if uri == "sample":
        from .. import sample_path

        path = sample_path()
    else:
        path = uri[5:] if uri.startswith("file:") else uri
    if ":" in path.split(os.sep)[0] and not os.path.exists(path) and len(path.split(":")[0]) > 1:
        raise ValueError(f"source {uri!r}: unknown scheme {path.split(':')[0] + ':'!r} (known: file:, sim:, "
                         "stdin:, -, zmq+tcp://, udp://, dv+tcp://, camera:)")
    return FileSource(path, realtime=realtime, batch_us=batch_us, chunk_events=chunk_events, width=width,
                      height=height)
