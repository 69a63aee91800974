"""Wire formats of the network sources, as pure functions: encode, and decode-or-reject.

ZeroMQ event messages (docs/protocols.md): a multipart message
``[JSON header, raw EventCD bytes]``; the header has ``seq``, ``t0_us``, ``t1_us``,
``width``, ``height``, ``count`` (all integers) and may have ``sender`` (a string that
changes when the sender restarts) and ``offset`` (events sent before this message by this
sender, so the receiver can count lost events exactly). Control messages are one frame:
``{"type": "heartbeat", ...}`` or ``{"type": "end", ...}``.

AEStream/SPIF UDP: 32-bit words in host byte order; bit 31 set = no timestamp follows,
bits [30:16] x, bit 15 polarity, bits [14:0] y; without bit 31 a u32 timestamp (us) follows.

A malformed message raises ``Rejected(reason, events)``: the caller counts it and goes on.

>>> ev = from_fields(x=[1, 2], y=[3, 4], p=[1, 0], t=[10, 20])
>>> frames = encode_message(ev, seq=0, t0_us=0, t1_us=100, width=8, height=8)
>>> kind, header, out = decode_message(frames)
>>> kind, header["count"], out.tolist() == ev.tolist()
('events', 2, True)
"""
from __future__ import annotations

import json

import numpy as np

from ..events import EVENT_DTYPE, empty, from_fields

__all__ = ["HEADER_KEYS", "Rejected", "decode_aestream", "decode_message", "encode_aestream",
           "encode_control", "encode_message", "unwrap_time32"]

HEADER_KEYS = ("seq", "t0_us", "t1_us", "width", "height", "count")
CONTROL_TYPES = ("heartbeat", "end")
UDP_MAX_BYTES = 512  # AEStream/SPIF datagram size
_WORD = np.dtype("=u4")  # host byte order, as AEStream sends
_NO_TIMESTAMP = np.uint32(1 << 31)


class Rejected(ValueError):
    """A malformed message: ``reason`` (a short key for counters) and the ``events`` it held."""

    def __init__(self, reason: str, events: int, detail: str, header: dict | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.events, self.detail, self.header = reason, int(events), detail, header


def encode_message(events: np.ndarray, *, seq: int, t0_us: int, t1_us: int, width: int, height: int,
                   sender: str | None = None, offset: int | None = None) -> list:
    """The two frames of one event message (header bytes, payload bytes)."""
    if events.dtype != EVENT_DTYPE:
        raise ValueError(f"events must have EVENT_DTYPE, got {events.dtype}")
    header = {"seq": int(seq), "t0_us": int(t0_us), "t1_us": int(t1_us), "width": int(width),
              "height": int(height), "count": len(events)}
    if sender is not None:
        header["sender"] = str(sender)
    if offset is not None:
        header["offset"] = int(offset)
    return [json.dumps(header).encode(), _zero_padding(events).tobytes()]


def _zero_padding(events: np.ndarray) -> np.ndarray:
    """A contiguous copy with the two padding bytes of every event set to zero."""
    src = events if events.flags.c_contiguous else np.ascontiguousarray(events)
    out = np.frombuffer(bytearray(src.view(np.uint8).reshape(-1)), EVENT_DTYPE)  # a byte copy: fast
    out.view(np.uint16).reshape(-1, 8)[:, 3] = 0
    return out


def encode_control(kind: str, **fields) -> list:
    """A one-frame control message: ``kind`` is "heartbeat" or "end"."""
    if kind not in CONTROL_TYPES:
        raise ValueError(f"control message type must be one of {CONTROL_TYPES}, got {kind!r}")
    return [json.dumps({"type": kind, **fields}).encode()]


def _int_field(header: dict, key: str, count_hint: int) -> int:
    v = header.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise Rejected("bad_header", count_hint, f"header key {key!r} must be an integer, got {v!r}")
    return v


def decode_message(frames, geometry: tuple[int, int] | None = None):
    """``(kind, header, events)`` of one received message; raises ``Rejected``.

    ``kind`` is "events", "heartbeat" or "end" (control messages have ``events`` None).
    ``geometry``: (width, height) the receiver expects; a header declaring another is
    rejected ("geometry_mismatch"). Checks: header JSON and key types, two frames,
    ``count * 16 == len(payload)``, coordinates inside the declared geometry, ``t``
    non-decreasing and within ``[t0_us, t1_us]``. The events are a copy. A rejection counts
    the events whose bytes arrived (``len(payload) // 16``), never a count the header claims.
    """
    payload_len = len(frames[1]) if len(frames) >= 2 else 0
    hint = payload_len // EVENT_DTYPE.itemsize
    try:
        header = json.loads(bytes(frames[0]))
    except (ValueError, UnicodeDecodeError) as e:
        raise Rejected("bad_header", hint, f"header frame is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise Rejected("bad_header", hint, f"header is a JSON {type(header).__name__}, not an object")
    kind = header.get("type", "events")
    if kind in CONTROL_TYPES:
        if len(frames) != 1:
            raise Rejected("frame_count", hint, f"a {kind} message has {len(frames)} frames, expected 1")
        return kind, header, None
    if kind != "events":
        raise Rejected("bad_header", hint, f"unknown message type {kind!r}")
    if len(frames) != 2:
        raise Rejected("frame_count", hint, f"an event message has {len(frames)} frames, expected 2")
    seq, t0, t1, w, h, count = (_int_field(header, k, hint) for k in HEADER_KEYS)
    if seq < 0 or count < 0 or w <= 0 or h <= 0 or w > 65536 or h > 65536:
        raise Rejected("bad_header", hint, f"seq {seq}, count {count}, geometry {w}x{h} out of range")
    try:
        if geometry is not None and (w, h) != tuple(geometry):
            raise Rejected("geometry_mismatch", hint, f"message declares {w}x{h}, expected "
                                                       f"{geometry[0]}x{geometry[1]}")
        if count * EVENT_DTYPE.itemsize != payload_len:
            raise Rejected("length_mismatch", hint, f"count {count} * 16 != payload {payload_len} bytes")
        ev = _zero_padding(np.frombuffer(frames[1], EVENT_DTYPE))
        check_events(ev, w, h, t0, t1)
    except Rejected as e:
        e.header = header  # the sequence number still counts: a rejected message is not a lost one
        raise
    return "events", header, ev


def check_events(ev: np.ndarray, width: int, height: int, t0_us=None, t1_us=None) -> None:
    """Raise ``Rejected`` unless every event is inside the geometry, ``p`` is 0/1 and t is
    non-decreasing (and within ``[t0_us, t1_us]`` when given)."""
    n = len(ev)
    if n == 0:
        return
    if int(ev["x"].max()) >= width or int(ev["y"].max()) >= height:
        bad = int(((ev["x"] >= width) | (ev["y"] >= height)).sum())
        raise Rejected("out_of_bounds", n, f"{bad} events outside {width}x{height}")
    if ((ev["p"] != 0) & (ev["p"] != 1)).any():
        raise Rejected("bad_polarity", n, "p must be 0 or 1")
    t = ev["t"]
    if n > 1 and (np.diff(t) < 0).any():
        raise Rejected("time_order", n, f"t decreases at index {int(np.argmax(np.diff(t) < 0)) + 1}")
    if t0_us is not None and (int(t[0]) < t0_us or int(t[-1]) > t1_us):
        raise Rejected("time_window", n, f"t spans {int(t[0])}..{int(t[-1])}, outside the declared "
                                         f"[{t0_us}, {t1_us}]")


def encode_aestream(events: np.ndarray, timestamps: bool = True, max_bytes: int = UDP_MAX_BYTES) -> list:
    """Datagrams (bytes) of AEStream/SPIF words; with ``timestamps`` each event carries
    ``t mod 2**32``. Coordinates must fit 15 bits.

    >>> d = encode_aestream(from_fields([1], [2], [1], [7]))
    >>> len(d), len(d[0])
    (1, 8)
    """
    if len(events) and (int(events["x"].max()) >= 1 << 15 or int(events["y"].max()) >= 1 << 15):
        raise ValueError("AEStream/SPIF words carry x and y in 15 bits; an event exceeds 32767")
    word = ((events["x"].astype(np.uint32) << 16) | ((events["p"] != 0).astype(np.uint32) << 15)
            | events["y"].astype(np.uint32))
    if timestamps:
        words = np.empty((len(events), 2), _WORD)
        words[:, 0] = word
        words[:, 1] = (events["t"].astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)
        per = max_bytes // 8
    else:
        words = (word | _NO_TIMESTAMP).astype(_WORD).reshape(-1, 1)
        per = max_bytes // 4
    return [words[i:i + per].tobytes() for i in range(0, len(events), per)]


def decode_aestream(data, width: int, height: int, arrival_us: int) -> tuple[np.ndarray, np.ndarray]:
    """``(events, stamped)`` of one datagram: events without a timestamp get ``arrival_us``;
    ``stamped`` marks those that carried one (their raw 32-bit value, see ``unwrap_time32``).
    Raises ``Rejected``.

    >>> ev, stamped = decode_aestream(encode_aestream(from_fields([1], [2], [1], [7]))[0], 4, 4, 99)
    >>> ev[["x", "y", "p", "t"]].tolist(), stamped.tolist()
    ([(1, 2, 1, 7)], [True])
    """
    if len(data) % 4:
        raise Rejected("bad_length", len(data) // 4, f"{len(data)} bytes is not a whole number of 32-bit words")
    words = np.frombuffer(data, _WORD)
    if len(words) == 0:
        return empty(0), np.zeros(0, bool)
    no_ts = (words & _NO_TIMESTAMP) != 0
    if no_ts.all():
        ev_words, t, has_ts = words, np.full(len(words), arrival_us, np.int64), np.zeros(len(words), bool)
    elif len(words) % 2 == 0 and not no_ts[0::2].any():  # the usual case: every event timestamped
        ev_words, t = words[0::2], words[1::2].astype(np.int64)
        has_ts = np.ones(len(ev_words), bool)
    else:
        # walk the stream: an event word without bit 31 is followed by its timestamp word
        is_event = np.zeros(len(words), bool)
        i, nw = 0, len(words)
        flags = no_ts.tolist()
        while i < nw:
            is_event[i] = True
            i += 1 if flags[i] else 2
        if i > nw:
            raise Rejected("bad_length", int(is_event.sum()), "the datagram ends where a timestamp should follow")
        idx = np.flatnonzero(is_event)
        ev_words = words[idx]
        has_ts = ~no_ts[idx]
        t = np.full(len(idx), arrival_us, np.int64)
        t[has_ts] = words[idx[has_ts] + 1]
    x = (ev_words >> 16) & 0x7FFF
    y = ev_words & 0x7FFF
    if int(x.max()) >= width or int(y.max()) >= height:
        bad = int(((x >= width) | (y >= height)).sum())
        raise Rejected("out_of_bounds", len(ev_words), f"{bad} events outside {width}x{height}")
    return from_fields(x, y, (ev_words >> 15) & 1, t), has_ts


def unwrap_time32(t32: np.ndarray, high: int, last: int | None) -> tuple[np.ndarray, int, int | None]:
    """Extend 32-bit timestamps to 64 bits across wraparounds: ``(t64, high, last)`` where
    ``high`` counts wraps so far and ``last`` is the previous raw value (pure; pass the
    returned values back for the next datagram). A drop of more than half the range is a wrap.

    >>> t, high, last = unwrap_time32(np.array([2**32 - 5, 3], np.int64), 0, None)
    >>> t.tolist(), high
    ([4294967291, 4294967299], 1)
    """
    t32 = np.asarray(t32, np.int64)
    if len(t32) == 0:
        return t32.copy(), high, last
    prev = np.concatenate([[t32[0] if last is None else last], t32[:-1]])
    wraps = high + np.cumsum(t32 < prev - (1 << 31))
    return (wraps << 32) | t32, int(wraps[-1]), int(t32[-1])
