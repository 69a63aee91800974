"""AEStream/SPIF events over UDP: the source (binds HOST:PORT and receives) and a sender.

Clock: timestamped events keep the sender's 32-bit microsecond time, unwrapped to 64 bits
across wraparounds. Events sent without a timestamp get their arrival time: microseconds of
the host's monotonic clock since the source was opened (``time.monotonic_ns``; the source
reports ``host_clock_origin_ns``, the monotonic time of its zero). UDP has no
authentication: binding to a non-loopback address needs ``insecure=1``.

>>> src = UdpSource("127.0.0.1", 3333, geometry=(128, 128))   # doctest: +SKIP
"""
from __future__ import annotations

import os
import socket
import threading
import time

from ..events import concatenate
from .net_common import Counters, LiveSource, as_flag, as_int, is_loopback
from .net_wire import Rejected, decode_aestream, encode_aestream, unwrap_time32
from .stage import Batch

__all__ = ["UdpEventSender", "UdpSource"]
_MAX_DATAGRAM = 65536


class UdpSource(LiveSource):
    """Events from AEStream/SPIF datagrams. ``geometry`` (width, height) is required: the
    format does not carry it. Datagrams that arrive together (up to ``max_batch_events``)
    make one batch. Malformed datagrams (length, coordinates) are rejected and counted; on Linux,
    datagrams the kernel dropped because the receive buffer (``rcvbuf``) was full are counted as
    ``lost_datagrams`` when the counters are read (their events never arrived, so they are not
    in ``received``)."""

    def __init__(self, host: str, port: int, geometry=None, *, insecure=False, rcvbuf: int = 4 << 20,
                 max_batch_events: int = 1 << 16, name: str = "source", **options):
        if options:
            raise ValueError(f"udp source: unknown option(s) {', '.join(sorted(options))} "
                             "(known: width, height, insecure, rcvbuf, max_batch_events)")
        if geometry is None:
            raise ValueError(f"udp://{host}:{port}: the geometry is unknown: add ?width=W&height=H to the URI "
                             "(AEStream datagrams do not carry it)")
        if not is_loopback(host) and not as_flag(insecure, "insecure"):
            raise ValueError(f"udp://{host}:{port}: UDP has no authentication or encryption; binding to a "
                             "non-loopback address needs insecure=1 (or use zmq+tcp with CURVE)")
        self.name = name
        self._geometry = (int(geometry[0]), int(geometry[1]))
        self.max_batch_events = as_int(max_batch_events, "max_batch_events", 1)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, as_int(rcvbuf, "rcvbuf", 1))
            self._sock.bind(("" if host in ("*", "0.0.0.0") else host, int(port)))
        except OSError as e:
            self._sock.close()
            raise OSError(f"udp://{host}:{port}: cannot bind ({e})") from None
        self._sock.setblocking(False)
        self._inode = os.fstat(self._sock.fileno()).st_ino
        self._drops_seen = 0   # the kernel's count when the counters were last reset
        self.port = self._sock.getsockname()[1]
        self.host_clock_origin_ns = time.monotonic_ns()
        self._lock = threading.Lock()
        self._closed = False
        self._counters = Counters(("datagrams", "lost_datagrams"))
        self._wrap = {"high": 0, "last": None}

    def counters(self) -> dict:
        self._count_kernel_drops()
        return {**super().counters(), "host_clock_origin_ns": self.host_clock_origin_ns}

    def _count_kernel_drops(self) -> None:
        drops = self.kernel_drops()
        if drops is not None:   # datagrams the kernel dropped (receive buffer full): their events never arrived
            self._counters.totals["lost_datagrams"] = drops - self._drops_seen

    def kernel_drops(self) -> int | None:
        """The datagrams the kernel dropped for this socket since it opened (Linux: the ``drops``
        column of /proc/net/udp or udp6 for the socket's inode), or None where unknown."""
        if self._sock.fileno() < 0:   # closed: the last count stays in the counters
            return None
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        cols = line.split()
                        if len(cols) >= 13 and cols[9] == str(self._inode):
                            return int(cols[12])
            except (OSError, StopIteration, ValueError):
                continue
        return None

    def get_state(self) -> dict:
        return {"counters": self._counters.get_state(), "wrap": dict(self._wrap)}

    def reset(self, state: dict | None = None) -> None:
        self._counters.set_state(None if state is None else state["counters"])
        drops = self.kernel_drops() or 0   # lost_datagrams counts on from the restored total
        self._drops_seen = drops - self._counters.totals.get("lost_datagrams", 0)
        self._wrap = {"high": 0, "last": None} if state is None else dict(state["wrap"])

    def _decode(self, data: bytes, t_ns: int):
        w, h = self._geometry
        self._counters.add("datagrams")
        arrival = (t_ns - self.host_clock_origin_ns) // 1000
        try:
            ev, stamped = decode_aestream(data, w, h, arrival)
        except Rejected as e:
            self._counters.reject(e.reason, e.events)
            return None
        if stamped.any():
            t64, high, last = unwrap_time32(ev["t"][stamped], self._wrap["high"], self._wrap["last"])
            ev["t"][stamped] = t64
            self._wrap = {"high": high, "last": last}
        self._counters.received += len(ev)
        return ev

    def _poll(self, left_s: float) -> Batch | None:
        """Datagrams that arrive together (up to ``max_batch_events``) as one batch."""
        self._sock.settimeout(max(left_s, 0.0))
        try:
            data = self._sock.recv(_MAX_DATAGRAM)
        except (TimeoutError, BlockingIOError, socket.timeout):
            return None
        t_ns = time.monotonic_ns()
        self._counters.heard()
        chunks, n = [], 0
        ev = self._decode(data, t_ns)
        while True:
            if ev is not None and len(ev):
                chunks.append(ev)
                n += len(ev)
            if n >= self.max_batch_events:
                break
            try:
                data = self._sock.recv(_MAX_DATAGRAM, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError, TimeoutError, socket.timeout):
                break
            ev = self._decode(data, time.monotonic_ns())
        if not chunks:
            return None
        w, h = self._geometry
        return Batch(events=concatenate(chunks), t_host_ns=t_ns, width=w, height=h)

    def _release(self) -> None:
        self._count_kernel_drops()   # the final count, before the socket goes
        self._sock.close()


class UdpEventSender:
    """Sends events as AEStream/SPIF datagrams (at most 512 bytes each); ``timestamps=False``
    sends bare event words (the receiver stamps arrival time)."""

    def __init__(self, host: str, port: int, *, timestamps=True, **options):
        if options:
            raise ValueError(f"udp sender: unknown option(s) {', '.join(sorted(options))} (known: timestamps)")
        self.timestamps = as_flag(timestamps, "timestamps")
        self.address = (host, int(port))
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.datagrams = 0

    def send(self, events, t0_us: int = 0, t1_us: int = 0) -> None:
        for d in encode_aestream(events, self.timestamps):
            self._sock.sendto(d, self.address)
            self.datagrams += 1

    def send_raw(self, data: bytes) -> None:
        self._sock.sendto(data, self.address)

    def close(self) -> None:
        self._sock.close()
