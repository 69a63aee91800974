"""What the live sources share: URI parsing, option values, loopback checks, counters, and
the ``LiveSource`` shape (polling ``next``, locked ``shutdown``).

>>> parse_uri("udp://127.0.0.1:3333?width=128&height=128")
('udp', '127.0.0.1', 3333, {'width': '128', 'height': '128'})
>>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
(True, False)
"""
from __future__ import annotations

import copy
import ipaddress
import socket
import time
from urllib.parse import parse_qsl, urlsplit

from .stage import Batch, EndOfStream

__all__ = ["Counters", "LiveSource", "POLL_SLICE_S", "as_flag", "is_loopback", "parse_uri"]

POLL_SLICE_S = 0.05  # LiveSource.next releases its lock this often, so shutdown() from another thread is prompt


def parse_uri(uri: str) -> tuple[str, str, int, dict]:
    """``(scheme, host, port, query)`` of ``SCHEME://HOST:PORT[?k=v&...]``; ValueError naming
    the URI and what is wrong."""
    parts = urlsplit(uri)
    if not parts.scheme or "//" not in uri:
        raise ValueError(f"{uri!r}: expected SCHEME://HOST:PORT")
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{uri!r}: the port is not a number in 0..65535") from None
    if not host or port is None:
        raise ValueError(f"{uri!r}: needs a host and a port (SCHEME://HOST:PORT)")
    if parts.path not in ("", "/"):
        raise ValueError(f"{uri!r}: unexpected path {parts.path!r} after HOST:PORT")
    query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    return parts.scheme, host, port, query


def as_flag(value, name: str) -> bool:
    """A boolean option from a URI query string or a Python value."""
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"option {name}={value!r}: expected 1/0, true/false, yes/no")


def as_int(value, name: str, minimum: int | None = None) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name}={value!r}: expected an integer") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"option {name}={value!r}: must be >= {minimum}")
    return v


def is_loopback(host: str) -> bool:
    """True if every address ``host`` names is a loopback address ("*" and 0.0.0.0 are not)."""
    if host in ("*", ""):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class Counters:
    """A source's accounting: events received, rejected and dropped (by reason), plus
    named totals (lost_messages, reconnects, ...). ``as_dict()`` is what ``counters()`` returns.

    >>> c = Counters(["lost_messages"]); c.received += 5; c.reject("out_of_bounds", 2)
    >>> c.as_dict()["rejected"], c.as_dict()["rejected_messages"]
    ({'out_of_bounds': 2}, {'out_of_bounds': 1})
    """

    def __init__(self, totals=()):
        self.received = 0
        self.rejected: dict = {}
        self.rejected_messages: dict = {}
        self.dropped: dict = {}
        self.totals = {k: 0 for k in totals}
        self.last_message_ns: int | None = None

    def reject(self, reason: str, events: int) -> None:
        self.received += events
        self.rejected[reason] = self.rejected.get(reason, 0) + events
        self.rejected_messages[reason] = self.rejected_messages.get(reason, 0) + 1

    def drop(self, reason: str, events: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + events

    def add(self, key: str, n: int = 1) -> None:
        self.totals[key] = self.totals.get(key, 0) + n

    def heard(self) -> None:
        self.last_message_ns = time.monotonic_ns()

    def as_dict(self) -> dict:
        silent = None if self.last_message_ns is None else (time.monotonic_ns() - self.last_message_ns) / 1e9
        return {"received": self.received, "rejected": dict(self.rejected), "dropped": dict(self.dropped),
                "rejected_messages": dict(self.rejected_messages), **self.totals, "silent_s": silent}

    def get_state(self) -> dict:
        return copy.deepcopy({"received": self.received, "rejected": self.rejected, "dropped": self.dropped,
                              "rejected_messages": self.rejected_messages, "totals": self.totals})

    def set_state(self, state: dict | None) -> None:
        keys = list(self.totals)
        self.__init__(keys)
        if state:
            state = copy.deepcopy(state)
            self.received = int(state["received"])
            self.rejected, self.dropped = state["rejected"], state["dropped"]
            self.rejected_messages, self.totals = state["rejected_messages"], state["totals"]


class LiveSource:
    """What the live sources (camera, UDP, dv+tcp, ZeroMQ) share. A subclass sets ``name``,
    ``_geometry``, ``_counters`` (a ``Counters``), ``_lock`` (a ``threading.Lock``) and
    ``_closed = False`` in ``__init__``, and defines

    - ``_poll(left_s) -> Batch | None``: wait at most about ``left_s`` for the next batch
      (called with ``_lock`` held);
    - ``_release()``: close its sockets or device (called once, with ``_lock`` held).

    ``next(timeout_s)`` polls in slices of at most ``POLL_SLICE_S`` seconds, releasing the lock
    in between, until a batch arrives or ``timeout_s`` passes (``None``: wait for ever).
    """

    def geometry(self):
        return self._geometry

    def counters(self) -> dict:
        return self._counters.as_dict()

    def get_state(self) -> dict:
        return {"counters": self._counters.get_state()}

    def reset(self, state: dict | None = None) -> None:
        self._counters.set_state(None if state is None else state["counters"])

    def _check_open(self) -> None:
        """Raise ``EndOfStream`` once the source is shut down (or its stream is over)."""
        if self._closed:
            raise EndOfStream(f"{self.name}: shut down")

    def next(self, timeout_s: float | None = None) -> Batch | None:
        deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
        while True:
            with self._lock:
                self._check_open()
                left = POLL_SLICE_S if deadline is None else min(POLL_SLICE_S, deadline - time.monotonic())
                batch = self._poll(left)
                if batch is not None:
                    return batch
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def shutdown(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()
