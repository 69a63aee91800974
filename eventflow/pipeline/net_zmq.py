"""ZeroMQ transport: the event source (SUB or PULL), the event sender (PUB or PUSH) and the
result sink (PUB). Wire format and options: docs/protocols.md.

Sockets that bind or connect to a non-loopback address require CURVE (keys from files in
``zmq.auth.load_certificate`` format); ``curve=1`` forces it on loopback too. Connecting
sockets reconnect by themselves; ZMTP heartbeats (``heartbeat_ms``) detect a dead peer;
socket-monitor events are counted: ``connects`` (sessions that completed the ZMTP/CURVE
handshake), ``disconnects`` (of those), ``handshake_failures`` (e.g. a wrong CURVE key, which
ZeroMQ itself reports nowhere else).

>>> src = ZmqSource("127.0.0.1", 5555, geometry=(128, 128), mode="pull")  # doctest: +SKIP
>>> batch = src.next(timeout_s=1.0)                                       # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from .net_common import Counters, LiveSource, as_flag, as_int, is_loopback
from .net_wire import Rejected, decode_message, encode_control, encode_message
from .sinks import result_json, without_field
from .stage import Batch, EndOfStream

__all__ = ["ZmqEventSender", "ZmqResultSink", "ZmqSource", "zmq_socket"]

SOURCE_TOTALS = ("lost_messages", "lost_events", "joined_late_messages", "sender_restarts", "heartbeats",
                 "connects", "disconnects", "handshake_failures")
SOCKET_OPTIONS = ("hwm", "heartbeat_ms", "curve", "curve_server_key", "curve_public_key", "curve_secret_key",
                  "curve_clients", "max_message_bytes")
#: A connecting source with no session this long after a disconnect connects again (libzmq does
#: not, after a protocol error such as a frame over max_message_bytes).
RECONNECT_AFTER_S = 2.0
#: Default limit of one inbound frame (ZMQ_MAXMSGSIZE): four million events and a header.
MAX_MESSAGE_BYTES = (64 << 20) + (64 << 10)
_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MONITORED = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED


def _load_key(path, option: str, need_secret: bool):
    if not os.path.isfile(str(path)):
        raise OSError(f"{option}: key file {path} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as e:
        raise ValueError(f"{option}: {path} is not a zmq certificate file ({e})") from None
    if need_secret and not secret:
        raise ValueError(f"{option}: {path} holds no secret key (use the .key_secret file)")
    return public, secret


def zmq_socket(ctx, kind: int, host: str, port: int, *, bind: bool, options: dict):
    """A configured socket, bound or connected; returns ``(socket, authenticator or None)``.

    Options: ``hwm`` (messages, default 1000), ``heartbeat_ms`` (ZMTP heartbeat interval,
    default 1000; timeout and TTL are 3 intervals; 0 turns them off), ``curve`` (force
    CURVE), ``curve_server_key`` (binding side: its secret certificate file),
    ``curve_public_key`` (connecting side: the server's public certificate file),
    ``curve_secret_key`` (connecting side: its own secret certificate file; an ephemeral
    key pair when absent), ``curve_clients`` (binding side: a folder of allowed client
    public certificates), ``max_message_bytes`` (largest inbound frame, default
    ``MAX_MESSAGE_BYTES``; a peer sending a larger one is disconnected by libzmq).
    """
    unknown = sorted(set(options) - set(SOCKET_OPTIONS))
    if unknown:
        raise ValueError(f"zmq+tcp://{host}:{port}: unknown option(s) {', '.join(unknown)}; known: "
                         f"mode, bind/connect, end, {', '.join(SOCKET_OPTIONS)}")
    sock = ctx.socket(kind)
    sock.linger = 0
    hwm = as_int(options.get("hwm", 1000), "hwm", 1)
    sock.sndhwm = sock.rcvhwm = hwm
    hb = as_int(options.get("heartbeat_ms", 1000), "heartbeat_ms", 0)
    if hb:
        sock.setsockopt(zmq.HEARTBEAT_IVL, hb)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * hb)
        sock.setsockopt(zmq.HEARTBEAT_TTL, 3 * hb)
    # a frame's length prefix must not size an allocation: libzmq disconnects a peer that exceeds this
    sock.setsockopt(zmq.MAXMSGSIZE, as_int(options.get("max_message_bytes", MAX_MESSAGE_BYTES), "max_message_bytes", 1))
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    auth = None
    curve = as_flag(options.get("curve", False), "curve") or not is_loopback(host)
    where = f"{'bind' if bind else 'connect'} tcp://{host}:{port}"
    try:
        if curve or any(options.get(k) for k in ("curve_server_key", "curve_public_key")):
            if not zmq.has("curve"):
                raise ValueError(f"{where}: CURVE is required but this libzmq has no CURVE support")
            if bind:
                if not options.get("curve_server_key"):
                    raise ValueError(f"{where}: CURVE is required (non-loopback address or curve=1): "
                                     "pass curve_server_key=PATH, the server's secret certificate file")
                public, secret = _load_key(options["curve_server_key"], "curve_server_key", True)
                if options.get("curve_clients"):
                    from zmq.auth.thread import ThreadAuthenticator

                    auth = ThreadAuthenticator(ctx)
                    auth.start()
                    auth.configure_curve(domain="*", location=str(options["curve_clients"]))
                sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True
            else:
                if not options.get("curve_public_key"):
                    raise ValueError(f"{where}: CURVE is required (non-loopback address or curve=1): "
                                     "pass curve_public_key=PATH, the server's public certificate file "
                                     "(and curve_secret_key=PATH, this client's secret certificate)")
                server_public, _ = _load_key(options["curve_public_key"], "curve_public_key", False)
                if options.get("curve_secret_key"):
                    public, secret = _load_key(options["curve_secret_key"], "curve_secret_key", True)
                else:
                    public, secret = zmq.curve_keypair()
                sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
        if ":" in host:  # an IPv6 address
            sock.ipv6 = True
        addr = f"tcp://{'*' if host in ('*', '0.0.0.0') else f'[{host}]' if ':' in host else host}:{port}"
        if bind:
            sock.bind(addr)
        else:
            sock.connect(addr)
    except BaseException:
        sock.close(0)
        if auth is not None:
            auth.stop()
        raise
    return sock, auth


def open_socket(ctx, kind: int, host: str, port: int, *, bind: bool, options: dict):
    """``zmq_socket`` that terminates ``ctx`` when the socket cannot be made; returns
    ``(socket, authenticator or None, port)``, the port the socket is bound to when it binds."""
    try:
        sock, auth = zmq_socket(ctx, kind, host, port, bind=bind, options=options)
    except BaseException:
        ctx.term()
        raise
    return sock, auth, bound_port(sock) if bind else int(port)


def close_socket(sock, auth, ctx) -> None:
    """Close ``sock`` (waiting up to its ``linger`` for queued messages), stop its authenticator
    and terminate ``ctx``; nothing if already closed."""
    if sock.closed:
        return
    sock.close()
    if auth is not None:
        auth.stop()
    ctx.term()


def bound_port(sock) -> int:
    """The TCP port a bound socket listens on (useful after binding port 0)."""
    return int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])


class ZmqSource(LiveSource):
    """Events from ZeroMQ: SUB (live, lossy at the high-water mark) or PULL (``mode="pull"``,
    lossless backpressure). Connects unless ``bind=True``. An ``end`` control message ends
    the stream (``EndOfStream``) unless ``end=False``; other senders may then be ignored."""

    def __init__(self, host: str, port: int, geometry=None, *, mode: str = "sub", bind=False, end=True,
                 name: str = "source", **options):
        if mode not in ("sub", "pull"):
            raise ValueError(f"zmq+tcp source: mode must be 'sub' or 'pull', got {mode!r}")
        self.name, self.mode = name, mode
        self._geometry = None if geometry is None else (int(geometry[0]), int(geometry[1]))
        self._declared = None
        self._end = as_flag(end, "end")
        self._ctx = zmq.Context()
        self._sock, self._auth, self.port = open_socket(self._ctx, zmq.SUB if mode == "sub" else zmq.PULL, host,
                                                        port, bind=as_flag(bind, "bind"), options=options)
        if mode == "sub":
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._monitor = self._sock.get_monitor_socket(_MONITORED)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._lock = threading.Lock()
        self._closed = self._ended = False
        self._sessions = 0  # connections that completed the handshake and are still up
        # libzmq ends a connecting socket's session for good after a protocol error (e.g. a frame over
        # max_message_bytes): after a disconnect with no new handshake for a while, connect again
        self._endpoint = None if as_flag(bind, "bind") else self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._reconnect_at = None
        self._counters = Counters(SOURCE_TOTALS)
        self._track = {"sender": None, "seq": None, "offset": None}

    def geometry(self):
        return self._geometry or self._declared

    def get_state(self) -> dict:
        return {"counters": self._counters.get_state(), "track": dict(self._track), "ended": self._ended}

    def reset(self, state: dict | None = None) -> None:
        """Counters and sequence tracking back to zero (or to ``state``); a live socket cannot rewind."""
        self._counters.set_state(None if state is None else state["counters"])
        self._track = {"sender": None, "seq": None, "offset": None} if state is None else dict(state["track"])
        self._ended = False if state is None else bool(state["ended"])

    def _check_open(self) -> None:
        if self._closed or self._ended:
            raise EndOfStream(f"{self.name}: {'shut down' if self._closed else 'sender sent end'}")

    def _poll(self, left_s: float) -> Batch | None:
        ready = dict(self._poller.poll(max(0, int(left_s * 1000))))
        if self._monitor in ready:
            self._drain_monitor()
        if self._reconnect_at is not None and time.monotonic() >= self._reconnect_at:
            self._sock.disconnect(self._endpoint)
            self._sock.connect(self._endpoint)
            self._reconnect_at = time.monotonic() + RECONNECT_AFTER_S
        if self._sock not in ready:
            return None
        batch = self._accept(self._sock.recv_multipart(zmq.NOBLOCK, copy=True), time.monotonic_ns())
        if batch is None and self._ended:
            raise EndOfStream(f"{self.name}: sender sent end")
        return batch

    def _drain_monitor(self) -> None:
        while True:
            try:
                ev = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._counters.add("connects")
                self._sessions += 1
                self._reconnect_at = None
            elif ev["event"] & _HANDSHAKE_FAILED:
                self._counters.add("handshake_failures")
            elif ev["event"] == zmq.EVENT_DISCONNECTED and self._sessions > 0:
                self._sessions -= 1
                self._counters.add("disconnects")
                if self._endpoint is not None and self._sessions == 0:
                    self._reconnect_at = time.monotonic() + RECONNECT_AFTER_S

    def _sequence(self, header: dict) -> None:
        """Loss detection from ``seq`` (and ``offset``, events sent before this message)."""
        seq, offset, sender = header.get("seq"), header.get("offset"), header.get("sender")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        t = self._track
        count = header.get("count", 0) if header.get("type", "events") == "events" else 0
        count = count if isinstance(count, int) else 0
        restart = t["seq"] is None or sender != t["sender"] or seq < t["seq"]
        if restart:
            if t["seq"] is not None:
                self._counters.add("sender_restarts")
            self._counters.add("joined_late_messages", seq)
        else:
            self._counters.add("lost_messages", seq - t["seq"])
            if isinstance(offset, int) and t["offset"] is not None:
                self._counters.add("lost_events", max(0, offset - t["offset"]))
        advance = 1 if header.get("type", "events") == "events" else 0  # control messages carry the next seq
        t.update(sender=sender, seq=seq + advance,
                 offset=(offset + count) if isinstance(offset, int) else None)

    def _accept(self, frames, t_host_ns: int) -> Batch | None:
        c = self._counters
        c.heard()
        try:
            kind, header, events = decode_message(frames, self._geometry)
        except Rejected as e:
            c.reject(e.reason, e.events)
            if e.header is not None:
                self._sequence(e.header)
            return None
        self._sequence(header)
        if kind == "heartbeat":
            c.add("heartbeats")
            return None
        if kind == "end":
            self._ended = self._end
            return None
        c.received += len(events)
        self._declared = (header["width"], header["height"])
        return Batch(events=events, t_host_ns=t_host_ns, seq=header["seq"], width=header["width"],
                     height=header["height"], meta={"t0_us": header["t0_us"], "t1_us": header["t1_us"],
                                                    "sender": header.get("sender")})

    def _release(self) -> None:
        self._sock.disable_monitor()
        self._monitor.close(0)
        close_socket(self._sock, self._auth, self._ctx)


class ZmqEventSender:
    """Sends event messages (PUB by default; ``mode="push"`` for lossless PUSH). Binds unless
    ``connect=True``. ``send`` numbers messages and keeps ``offset`` (events sent before)."""

    def __init__(self, host: str, port: int, *, width: int, height: int, mode: str = "pub", connect=False,
                 linger_ms: int = 5000, **options):
        if mode not in ("pub", "push"):
            raise ValueError(f"zmq+tcp sender: mode must be 'pub' or 'push', got {mode!r}")
        self.width, self.height, self.mode = int(width), int(height), mode
        self.sender = os.urandom(6).hex()
        self.seq = self.offset = 0
        self._ctx = zmq.Context()
        self._sock, self._auth, self.port = open_socket(self._ctx, zmq.XPUB if mode == "pub" else zmq.PUSH, host,
                                                        port, bind=not as_flag(connect, "connect"), options=options)
        self._sock.linger = int(linger_ms)

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """PUB only: wait until a subscriber has subscribed (so the first messages reach it)."""
        if self.mode != "pub":
            return True
        if self._sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            self._sock.recv()
            return True
        return False

    def send(self, events, t0_us: int, t1_us: int) -> None:
        frames = encode_message(events, seq=self.seq, t0_us=t0_us, t1_us=t1_us, width=self.width,
                                height=self.height, sender=self.sender, offset=self.offset)
        self._sock.send_multipart(frames, copy=len(frames[1]) < 65536)
        self.seq += 1
        self.offset += len(events)

    def send_raw(self, frames) -> None:
        """Send frames as they are (tests use it for malformed messages); consumes a seq number."""
        self._sock.send_multipart(frames)
        self.seq += 1

    def control(self, kind: str) -> None:
        """A heartbeat or end message carrying the next seq and the events sent so far."""
        self._sock.send_multipart(encode_control(kind, seq=self.seq, offset=self.offset, sender=self.sender))

    def close(self) -> None:
        close_socket(self._sock, self._auth, self._ctx)


class ZmqResultSink:
    """Results over PUB: two frames, ``[{"type": "result", "seq": n}, result JSON]``; a flow
    result adds its field as a third frame (raw little-endian float32, C order), its JSON's
    ``flow.ref`` saying ``{"frame": 2, "dtype": "<f4", "shape": [2, h, w]}``. Binds unless
    ``connect=True`` (subscribers connect to it)."""

    def __init__(self, host: str, port: int, *, connect=False, name: str = "sink", **options):
        self.name, self.seq = name, 0
        self._ctx = zmq.Context()
        self._sock, self._auth, self.port = open_socket(self._ctx, zmq.PUB, host, port,
                                                        bind=not as_flag(connect, "connect"), options=options)
        self._sock.linger = 1000

    def write(self, result: dict) -> None:
        header = {"type": "result", "seq": self.seq}
        frames = [json.dumps(header).encode()]
        if "field" in result.get("flow", ()):
            field = np.ascontiguousarray(result["flow"]["field"], "<f4")
            result = without_field(result, {"frame": 2, "dtype": "<f4", "shape": list(field.shape)})
            frames += [result_json(result).encode(), field.tobytes()]
        else:
            frames.append(result_json(result).encode())
        self._sock.send_multipart(frames)
        self.seq += 1

    def flush(self) -> None:
        """PUB never blocks: nothing to flush; messages still queued go out within the linger time."""

    def shutdown(self) -> None:
        close_socket(self._sock, self._auth, self._ctx)
