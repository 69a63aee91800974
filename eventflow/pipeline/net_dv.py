"""Client of dv-processing's network streaming (``dv+tcp://HOST:PORT``).

The server sends AEDAT 4 framing without the file magic (an optional magic is skipped):
``u32 length + IOHeader flatbuffer``, then packets ``{i32 stream_id, u32 size, payload}``,
each payload an ``EVTS`` size-prefixed flatbuffer compressed as the IOHeader says. The
decoding is ``eventflow.formats.aedat4``'s. Timestamps are the camera's (Unix us).

A packet with events outside the stream's geometry is rejected and counted. A framing
error (impossible size) cannot be resynchronised on TCP: the connection is closed and
counted (``protocol_errors``), then reopened. When the server closes the connection the
source reconnects every ``reconnect_s`` seconds, or ends (``EndOfStream``) with ``reconnect=0``.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np

from ..errors import EventFormatError
from ..events import empty
from ..formats.aedat4 import MAGIC, MAX_HEADER_BYTES, MAX_PACKET_BYTES, decode_event_packet, decompress
from ..formats.aedat4 import parse_io_header, parse_streams
from .net_common import POLL_SLICE_S, Counters, LiveSource, as_flag
from .net_wire import Rejected, check_events
from .stage import Batch, EndOfStream

__all__ = ["DvTcpSource", "event4_to_events"]


def event4_to_events(ev4: np.ndarray) -> np.ndarray:
    """AEDAT 4 events ``{t, x, y, on}`` as EventCD (a new array; negative x/y become 65535+,
    so the geometry check rejects them)."""
    out = empty(len(ev4))
    out["x"] = ev4["x"].astype(np.int64) & 0xFFFF
    out["y"] = ev4["y"].astype(np.int64) & 0xFFFF
    out["p"] = ev4["on"] != 0
    out["t"] = ev4["t"]
    return out


class DvTcpSource(LiveSource):
    """Events of the first (or ``stream_id``) EVTS stream a dv-processing server sends."""

    def __init__(self, host: str, port: int, geometry=None, *, reconnect=True, reconnect_s: float = 0.5,
                 stream_id=None, max_packet_bytes: int = MAX_PACKET_BYTES, name: str = "source", **options):
        if options:
            raise ValueError(f"dv+tcp source: unknown option(s) {', '.join(sorted(options))} "
                             "(known: reconnect, reconnect_s, stream_id, max_packet_bytes)")
        self.name, self.host, self.port = name, host, int(port)
        self.where = f"dv+tcp://{host}:{port}"
        self._expected = None if geometry is None else (int(geometry[0]), int(geometry[1]))
        self._geometry = self._expected
        self._reconnect = as_flag(reconnect, "reconnect")
        self.reconnect_s = float(reconnect_s)
        self.stream_id = None if stream_id is None else int(stream_id)
        self.max_packet_bytes = int(max_packet_bytes)
        self._lock = threading.Lock()
        self._sock = None
        self._closed = False
        self._next_attempt = 0.0
        self._counters = Counters(("packets", "connects", "connect_failures", "disconnects",
                                                         "protocol_errors", "other_stream_packets"))
        self.last_error = None  # the latest protocol error, for messages
        self._buf = bytearray()
        self._header = None  # {"compression", "stream_id"} once the IOHeader arrived
        self._offset = 0  # bytes consumed on this connection (for error messages)

    # -- connection ------------------------------------------------------------------
    def _connect(self) -> bool:
        if time.monotonic() < self._next_attempt:
            return False
        self._next_attempt = time.monotonic() + self.reconnect_s
        try:
            s = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError as e:
            self._counters.add("connect_failures")
            if not self._reconnect and self._counters.totals["connects"] == 0:
                raise OSError(f"{self.where}: cannot connect ({e})") from None
            if not self._reconnect:
                raise EndOfStream(f"{self.name}: server gone and reconnect=0") from None
            return False
        s.setblocking(False)
        self._sock, self._buf, self._header, self._offset = s, bytearray(), None, 0
        self._counters.add("connects")
        return True

    def _drop_connection(self, protocol_error: str | None = None) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._counters.add("disconnects")
        if protocol_error:
            self._counters.add("protocol_errors")
            self.last_error = protocol_error
        if not self._reconnect:
            raise EndOfStream(f"{self.name}: connection closed" + (f" ({protocol_error})" if protocol_error else ""))

    # -- framing ---------------------------------------------------------------------
    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._offset += n
        return data

    def _parse_header(self) -> bool:
        if len(self._buf) >= len(MAGIC) and self._buf.startswith(MAGIC) and self._offset == 0:
            self._take(len(MAGIC))
        if len(self._buf) < 4:
            return False
        n = struct.unpack_from("<I", self._buf, 0)[0]
        if n > MAX_HEADER_BYTES:
            raise EventFormatError(f"IOHeader length {n} exceeds {MAX_HEADER_BYTES} bytes", self.where, self._offset)
        if len(self._buf) < 4 + n:
            return False
        at = self._offset
        self._take(4)
        header = parse_io_header(self._take(n), self.where, at)
        streams = [s for s in parse_streams(header["info_xml"], self.where, at) if s["type"] == "EVTS"]
        if self.stream_id is not None:
            streams = [s for s in streams if s["id"] == self.stream_id]
        if not streams:
            raise EventFormatError("the server announces no EVTS stream"
                                   + ("" if self.stream_id is None else f" with id {self.stream_id}"), self.where, at)
        st = min(streams, key=lambda s: s["id"])
        if st["size_x"] is None or st["size_y"] is None:
            raise EventFormatError("the EVTS stream has no sizeX/sizeY", self.where, at)
        declared = (st["size_x"], st["size_y"])
        if self._expected is not None and declared != self._expected:
            raise ValueError(f"{self.where}: the server's stream is {declared[0]}x{declared[1]}, the pipeline "
                             f"expects {self._expected[0]}x{self._expected[1]}")
        self._geometry = declared
        self._header = {"compression": header["compression"], "stream_id": st["id"]}
        return True

    def _parse_packet(self):
        """Events of the next complete packet, ``None`` when more bytes are needed, or an
        empty array for a packet of another stream or a rejected one."""
        if len(self._buf) < 8:
            return None
        sid, size = struct.unpack_from("<iI", self._buf, 0)
        if size > self.max_packet_bytes:
            raise EventFormatError(f"packet size {size} exceeds the {self.max_packet_bytes}-byte limit",
                                   self.where, self._offset)
        if len(self._buf) < 8 + size:
            return None
        at = self._offset
        self._take(8)
        raw = self._take(size)
        if sid != self._header["stream_id"]:
            self._counters.add("other_stream_packets")
            return empty(0)
        self._counters.add("packets")
        try:
            payload = decompress(raw, self._header["compression"], self.max_packet_bytes, self.where, at)
            ev = event4_to_events(decode_event_packet(payload, self.where, at))
        except EventFormatError:
            self._counters.reject("bad_packet", 0)
            return empty(0)
        try:
            check_events(ev, *self._geometry)
        except Rejected as e:
            self._counters.reject(e.reason, e.events)
            return empty(0)
        self._counters.received += len(ev)
        return ev

    def _pump(self, left_s: float):
        """Read what arrives within ``left_s`` and return the next packet's events, or None."""
        if self._sock is None and not self._connect():
            time.sleep(min(left_s, POLL_SLICE_S))
            return None
        try:
            if self._header is None:
                self._parse_header()
            if self._header is not None:
                ev = self._parse_packet()
                if ev is not None:
                    return ev
        except EventFormatError as e:
            self._drop_connection(str(e))
            return None
        self._sock.settimeout(max(left_s, 0.0))
        try:
            data = self._sock.recv(1 << 20)
        except (TimeoutError, BlockingIOError, socket.timeout):
            return None
        except OSError as e:
            self._drop_connection(None if isinstance(e, ConnectionResetError) else str(e))
            return None
        if not data:
            self._drop_connection()
            return None
        self._buf += data
        return None

    def _poll(self, left_s: float) -> Batch | None:
        ev = self._pump(left_s)
        if ev is None or not len(ev):
            return None
        self._counters.heard()
        w, h = self._geometry
        return Batch(events=ev, t_host_ns=time.monotonic_ns(), width=w, height=h)

    def _release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
