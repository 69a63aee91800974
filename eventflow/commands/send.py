"""``eventflow send FILE URI``: stream a recording to a zmq+tcp (PUB/PUSH) or udp destination.

    eventflow send rec.hdf5 zmq+tcp://127.0.0.1:5555                 PUB, bound, as fast as possible
    eventflow send rec.hdf5 "zmq+tcp://127.0.0.1:5555?mode=push"     lossless PUSH
    eventflow send rec.raw udp://127.0.0.1:3333 --realtime 1         AEStream datagrams, real time
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..events import concatenate

HELP = """Stream an event file to a network destination, one message per time window
(--batch-us of sensor time). zmq+tcp://HOST:PORT sends the eventflow wire format
(multipart [JSON header, raw EventCD bytes], docs/protocols.md) from a PUB socket, or PUSH
with ?mode=push (lossless: blocks while the receiver is slow); it binds HOST:PORT unless
?connect=1, and needs CURVE keys in the query (curve_server_key=PATH when binding) for a
non-loopback address. PUB waits up to --wait-s for a subscriber, sends heartbeats while
idle, keeps sending heartbeats for --linger-s after the last window (so receivers see
trailing losses) and then an end message. udp://HOST:PORT sends AEStream/SPIF datagrams
(?timestamps=0: bare event words; the receiver stamps arrival time)."""


def register(subparsers) -> None:
    sp = subparsers.add_parser("send", help="stream a recording to zmq+tcp:// or udp:// (for live-pipeline tests)",
                               description=HELP)
    sp.add_argument("file", metavar="FILE", help="an event file (any readable format)")
    sp.add_argument("uri", metavar="URI", help="zmq+tcp://HOST:PORT[?mode=push][&connect=1] or udp://HOST:PORT")
    pace = sp.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="MEV/S", help="pace at this many million events per second")
    pace.add_argument("--realtime", type=float, metavar="FACTOR",
                      help="pace by sensor time: FACTOR 1 is real time, 2 twice as fast (default: as fast as possible)")
    sp.add_argument("--batch-us", type=int, default=1000, metavar="N", help="sensor time per message (default 1000 us)")
    sp.add_argument("--wait-s", type=float, default=2.0, help="PUB: wait this long for a subscriber first (default 2)")
    sp.add_argument("--heartbeat-s", type=float, default=0.2,
                    help="zmq: send a heartbeat when idle this long (default 0.2 s)")
    sp.add_argument("--linger-s", type=float, default=0.3,
                    help="zmq PUB: keep sending heartbeats this long after the last window (default 0.3 s)")
    sp.add_argument("--no-end", action="store_true", help="zmq: do not send the end-of-stream message")
    sp.add_argument("--width", type=int, help="sensor width, where the file does not say")
    sp.add_argument("--height", type=int, help="sensor height, where the file does not say")
    sp.add_argument("--monotonic", choices=("clamp", "sort"), help="make the file's time non-decreasing first")
    sp.set_defaults(func=cmd_send)


def windows(chunks, batch_us: int):
    """``(events, t0_us, t1_us)`` per non-empty window of ``batch_us`` sensor time, counted
    from the first event; events are never reordered (a decrease in time starts a new window).

    >>> from eventflow.events import from_fields
    >>> [(len(e), a, b) for e, a, b in windows([from_fields([0] * 3, [0] * 3, [1] * 3, [5, 9, 16])], 10)]
    [(2, 5, 14), (1, 15, 24)]
    """
    if batch_us < 1:
        raise ValueError(f"--batch-us must be >= 1, got {batch_us}")
    base, carry, carry_k = None, None, None
    for ev in chunks:
        if not len(ev):
            continue
        if base is None:
            base = int(ev["t"][0])
        k = (ev["t"].astype(np.int64) - base) // batch_us
        cuts = np.flatnonzero(np.diff(k)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(ev)]])
        for s, e in zip(starts, ends):
            kk = int(k[s])
            if carry is not None and kk != carry_k:
                yield carry, base + carry_k * batch_us, base + (carry_k + 1) * batch_us - 1
                carry = None
            carry = ev[s:e] if carry is None else concatenate([carry, ev[s:e]])
            carry_k = kk
    if carry is not None:
        yield carry, base + carry_k * batch_us, base + (carry_k + 1) * batch_us - 1


def _sleep_until(t_wall: float, sender, heartbeat_s: float, last_sent: list) -> None:
    """Sleep until ``t_wall`` (monotonic s), sending zmq heartbeats when idle."""
    while True:
        now = time.monotonic()
        if now >= t_wall:
            return
        if hasattr(sender, "control") and now - last_sent[0] >= heartbeat_s:
            sender.control("heartbeat")
            last_sent[0] = now
        time.sleep(min(t_wall - now, heartbeat_s, 0.05))


def cmd_send(a) -> int:
    from .. import open_events
    from ..pipeline.net import open_net_sender

    opts = {k: getattr(a, k) for k in ("width", "height", "monotonic") if getattr(a, k) is not None}
    reader = open_events(a.file, **opts)
    if reader.width is None or reader.height is None:
        raise ValueError(f"{a.file}: the geometry is unknown; pass --width and --height")
    if a.rate is not None and a.rate <= 0 or a.realtime is not None and a.realtime <= 0:
        raise ValueError("--rate and --realtime must be > 0")
    sender = open_net_sender(a.uri, width=reader.width, height=reader.height)
    try:
        if hasattr(sender, "port") and getattr(sender, "mode", None):
            print(f"eventflow send: {sender.mode} on port {sender.port}", file=sys.stderr, flush=True)
        if hasattr(sender, "wait_for_subscriber") and not sender.wait_for_subscriber(a.wait_s):
            print(f"eventflow send: no subscriber after {a.wait_s} s; sending anyway", file=sys.stderr)
        start, t_first, n, messages = time.monotonic(), None, 0, 0
        last_sent = [start]
        for ev, t0, t1 in windows(reader, a.batch_us):
            if a.rate is not None:
                _sleep_until(start + n / (a.rate * 1e6), sender, a.heartbeat_s, last_sent)
            elif a.realtime is not None:
                t_first = t0 if t_first is None else t_first
                _sleep_until(start + (t0 - t_first) / 1e6 / a.realtime, sender, a.heartbeat_s, last_sent)
            sender.send(ev, t0, t1)
            last_sent[0] = time.monotonic()
            n += len(ev)
            messages += 1
        elapsed = time.monotonic() - start
        if hasattr(sender, "control"):
            if getattr(sender, "mode", None) == "pub":
                _sleep_until(time.monotonic() + a.linger_s, sender, min(a.heartbeat_s, a.linger_s / 3), [0.0])
            if not a.no_end:
                sender.control("end")
    finally:
        sender.close()
    rate = n / elapsed / 1e6 if elapsed > 0 else float("inf")
    print(f"eventflow send: {n:,} events in {messages:,} messages to {a.uri} in {elapsed:.3f} s "
          f"({rate:.2f} Mev/s)", file=sys.stderr)
    return 0
