"""Network and camera sources and sinks, by URI (formats and options: docs/protocols.md).

    zmq+tcp://HOST:PORT[?mode=pull][&bind=1]   events over ZeroMQ (SUB, or lossless PULL)
    udp://HOST:PORT[?width=W&height=H]         AEStream/SPIF datagrams
    dv+tcp://HOST:PORT                         dv-processing network streaming (AEDAT 4)
    camera: | camera:SERIAL                    a live camera through neuromorphic-drivers

Options come from the URI query and from keyword arguments (the same name in both is an
error). ``geometry`` is the pipeline's (width, height), usually the model's input size; the
URI's ``width``/``height`` win over it where the transport does not declare geometry.

>>> src = open_net_source("zmq+tcp://127.0.0.1:5555?mode=pull", geometry=(128, 128))  # doctest: +SKIP
>>> sink = open_net_sink("zmq+tcp://127.0.0.1:5556")                                # doctest: +SKIP
"""
from __future__ import annotations

from .camera import CameraSource
from .net_common import as_flag, as_int, parse_uri
from .net_dv import DvTcpSource
from .net_udp import UdpEventSender, UdpSource
from .net_zmq import ZmqEventSender, ZmqResultSink, ZmqSource

__all__ = ["NET_SCHEMES", "open_net_sink", "open_net_source", "open_net_sender"]

NET_SCHEMES = ("zmq+tcp", "udp", "dv+tcp", "camera")


def _merge(uri: str, query: dict, options: dict) -> dict:
    both = sorted(set(query) & set(options))
    if both:
        raise ValueError(f"{uri}: option(s) {', '.join(both)} given both in the URI and as arguments")
    return {**query, **options}


def _bind_to_connect(opts: dict) -> None:
    """Senders and sinks bind by default; ``bind=0`` is accepted as ``connect=1``."""
    if "bind" in opts:
        if "connect" in opts:
            raise ValueError("give bind or connect, not both")
        opts["connect"] = not as_flag(opts.pop("bind"), "bind")


def _geometry(uri: str, opts: dict, geometry):
    w, h = opts.pop("width", None), opts.pop("height", None)
    if (w is None) != (h is None):
        raise ValueError(f"{uri}: give both width and height, or neither")
    if w is not None:
        return as_int(w, "width", 1), as_int(h, "height", 1)
    if geometry is not None:
        if len(geometry) != 2 or min(int(geometry[0]), int(geometry[1])) < 1:
            raise ValueError(f"{uri}: geometry must be (width, height) > 0, got {geometry!r}")
        return int(geometry[0]), int(geometry[1])
    return None


def open_net_source(uri: str, geometry: tuple[int, int] | None = None, **options):
    """A running ``Source`` for a network or camera URI (see the module docstring)."""
    if uri == "camera:" or uri.startswith("camera:") and "//" not in uri:
        serial = uri[len("camera:"):] or None
        return CameraSource(serial, geometry, **options)
    scheme, host, port, query = parse_uri(uri)
    opts = _merge(uri, query, options)
    geo = _geometry(uri, opts, geometry)
    if scheme == "zmq+tcp":
        return ZmqSource(host, port, geo, **opts)
    if scheme == "udp":
        return UdpSource(host, port, geo, **opts)
    if scheme == "dv+tcp":
        return DvTcpSource(host, port, geo, **opts)
    raise ValueError(f"{uri}: unknown network source scheme {scheme!r}; known: {', '.join(NET_SCHEMES)}")


def open_net_sink(uri: str, **options):
    """A result ``Sink``: ``zmq+tcp://HOST:PORT`` publishes results (PUB, binds unless
    ``connect=1``) as two frames ``[{"type": "result", "seq": n}, result JSON]`` (a flow result adds
    its field as a third: see ``net_zmq.ZmqResultSink``)."""
    scheme, host, port, query = parse_uri(uri)
    opts = _merge(uri, query, options)
    if scheme == "zmq+tcp":
        _bind_to_connect(opts)
        return ZmqResultSink(host, port, **opts)
    raise ValueError(f"{uri}: results can be sent to zmq+tcp:// only, not {scheme!r}")


def open_net_sender(uri: str, *, width: int, height: int, **options):
    """An event sender (what ``eventflow send`` uses): ``zmq+tcp://`` (PUB, or ``mode=push``;
    binds unless ``connect=1``) or ``udp://`` (AEStream datagrams; ``timestamps=0`` sends
    bare event words). It has ``send(events, t0_us, t1_us)`` and ``close()``."""
    scheme, host, port, query = parse_uri(uri)
    opts = _merge(uri, query, options)
    if scheme == "zmq+tcp":
        if opts.get("mode") == "pull":
            opts["mode"] = "push"  # the peer's mode named: the sender pushes to a PULL
        if opts.get("mode") == "sub":
            opts["mode"] = "pub"
        _bind_to_connect(opts)
        return ZmqEventSender(host, port, width=width, height=height, **opts)
    if scheme == "udp":
        return UdpEventSender(host, port, **opts)
    raise ValueError(f"{uri}: events can be sent to zmq+tcp:// or udp://, not {scheme!r}")
