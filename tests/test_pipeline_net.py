"""Network and camera sources (issue 6): wire formats, and end to end over loopback sockets
with a separate sender process (tests/net_sender.py, or ``python -m eventflow send``)."""
from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth

import eventflow
from eventflow.commands.send import windows
from eventflow.events import concatenate, from_fields
from eventflow.formats.aedat4 import Aedat4Reader
from eventflow.pipeline.camera import (CameraSource, clock_meta, driver_configuration, driver_events_to_eventcd,
                                       list_cameras)
from eventflow.pipeline.net import open_net_sink, open_net_source
from eventflow.pipeline.net_udp import UdpEventSender
from eventflow.pipeline.net_wire import (Rejected, decode_aestream, decode_message, encode_aestream, encode_control,
                                         encode_message, unwrap_time32)
from eventflow.pipeline.net_zmq import ZmqEventSender
from eventflow.pipeline.stage import EndOfStream, Source

from .conftest import real

HELPER = str(Path(__file__).with_name("net_sender.py"))
ROOT = Path(__file__).resolve().parents[1]
W, H = 64, 48
FIELDS = ["x", "y", "p", "t"]


def make_events(n: int, seed: int = 0, t0: int = 1000):
    rng = np.random.default_rng(seed)
    return from_fields(rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n),
                       t0 + np.cumsum(rng.integers(0, 30, n)))


def same(a, b, fields=FIELDS) -> bool:
    return len(a) == len(b) and all(np.array_equal(a[k], b[k]) for k in fields)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def procs():
    """Start helper processes; every one is killed at the end of the test."""
    started = []

    def start(*args, ready=True, timeout=10.0):
        p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=ROOT, text=True)
        started.append(p)
        if not ready:
            return p, None
        r, _, _ = select.select([p.stdout], [], [], timeout)
        line = p.stdout.readline() if r else ""
        assert line.startswith("ready"), f"helper did not start: {line!r} {p.stderr.read() if p.poll() else ''}"
        return p, line.split()[1:]

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(5)


def collect(src, first_timeout=10.0, timeout=2.0, until=None):
    """Batches until EndOfStream, a quiet ``timeout`` or ``until`` events; returns (events, ended)."""
    got, n = [], 0
    try:
        while until is None or n < until:
            b = src.next(first_timeout if not got else timeout)
            if b is None:
                return concatenate(got), False
            got.append(b.events)
            n += len(b.events)
    except EndOfStream:
        return concatenate(got), True
    return concatenate(got), False


# -- wire formats (pure) --------------------------------------------------------------

def test_wire_roundtrip_and_each_rejection_reason():
    ev = make_events(50)
    frames = encode_message(ev, seq=3, t0_us=int(ev["t"][0]), t1_us=int(ev["t"][-1]), width=W, height=H)
    kind, header, out = decode_message(frames, (W, H))
    assert kind == "events" and header["seq"] == 3 and same(out, ev)
    assert decode_message(encode_control("heartbeat", seq=4))[0] == "heartbeat"
    hdr = json.loads(frames[0])

    def reason(frames, geometry=None):
        with pytest.raises(Rejected) as e:
            decode_message(frames, geometry)
        return e.value.reason, e.value.events

    assert reason([b"nope", frames[1]]) == ("bad_header", 50)
    assert reason([json.dumps({**hdr, "width": "64"}).encode(), frames[1]]) == ("bad_header", 50)
    assert reason([frames[0], frames[1][:-16]]) == ("length_mismatch", 49)   # the events that arrived
    assert reason([json.dumps({**hdr, "count": 10**15}).encode(), frames[1]]) == ("length_mismatch", 50)
    assert reason(frames + [b""]) == ("frame_count", 50)
    assert reason(frames, (W + 1, H)) == ("geometry_mismatch", 50)
    bad = ev.copy()
    bad["y"][7] = H
    assert reason([frames[0], bad.tobytes()]) == ("out_of_bounds", 50)
    bad = ev.copy()
    bad["t"][10] = bad["t"][9] - 1
    assert reason([frames[0], bad.tobytes()]) == ("time_order", 50)
    assert reason([json.dumps({**hdr, "t0_us": hdr["t0_us"] + 1}).encode(), frames[1]]) == ("time_window", 50)


def test_aestream_roundtrip_timestamps_and_arrival_time():
    ev = make_events(300, seed=1)
    dgrams = encode_aestream(ev)
    assert all(len(d) <= 512 for d in dgrams) and len(dgrams) == 5  # 64 events of 8 bytes a datagram
    parts = [decode_aestream(d, W, H, arrival_us=-1) for d in dgrams]
    assert all(s.all() for _, s in parts) and same(concatenate([e for e, _ in parts]), ev)
    bare, stamped = decode_aestream(encode_aestream(ev[:10], timestamps=False)[0], W, H, arrival_us=77)
    assert not stamped.any() and (bare["t"] == 77).all() and same(bare, ev[:10], ["x", "y", "p"])
    with pytest.raises(Rejected, match="out_of_bounds"):
        decode_aestream(dgrams[0], W, 10, 0)
    with pytest.raises(Rejected, match="bad_length"):
        decode_aestream(dgrams[0][:-4], W, H, 0)  # the last timestamp is missing
    # 32-bit wraparound, continued across calls with explicit state
    t = np.array([2**32 - 20, 2**32 - 1, 5, 2**31 + 10, 3], np.int64)
    a, high, last = unwrap_time32(t[:3], 0, None)
    b, high, last = unwrap_time32(t[3:], high, last)
    assert np.concatenate([a, b]).tolist() == [2**32 - 20, 2**32 - 1, 2**32 + 5, 2**32 + 2**31 + 10, 2**33 + 3]


def test_send_windows_do_not_depend_on_chunking():
    ev = make_events(2000, seed=2)
    whole = [(len(e), a, b) for e, a, b in windows([ev], 500)]
    cut = [(len(e), a, b) for e, a, b in windows([ev[:333], ev[333:334], ev[334:1500], ev[1500:]], 500)]
    assert whole == cut and sum(n for n, _, _ in whole) == len(ev)
    for e, a, b in windows([ev], 500):
        assert a <= e["t"][0] and e["t"][-1] <= b and b - a == 499


# -- ZeroMQ end to end ----------------------------------------------------------------

def test_zmq_pull_end_to_end_with_the_send_command(tmp_path, procs):
    ev = make_events(3000, seed=3)
    path = tmp_path / "ev.npy"
    eventflow.write_events(path, ev, width=W, height=H)
    port = free_port()
    src = open_net_source(f"zmq+tcp://127.0.0.1:{port}?mode=pull", geometry=(W, H))
    try:
        assert isinstance(src, Source)
        procs("-m", "eventflow", "send", str(path), f"zmq+tcp://127.0.0.1:{port}?mode=push", "--width", str(W),
              "--height", str(H), "--batch-us", "2000", ready=False)
        got, ended = collect(src, first_timeout=60.0)  # the CLI imports torch: slow on a loaded machine
        c = src.counters()
    finally:
        src.shutdown()
    assert ended and same(got, ev)
    assert c["received"] == len(ev) and c["lost_messages"] == 0 and c["lost_events"] == 0 and c["rejected"] == {}
    assert src.geometry() == (W, H)


def test_zmq_sub_malformed_messages_are_counted_and_the_stream_goes_on(tmp_path, procs):
    ev = make_events(1000, seed=4)
    np.save(tmp_path / "ev.npy", ev)
    port = free_port()
    src = open_net_source(f"zmq+tcp://127.0.0.1:{port}", geometry=(W, H))
    try:
        procs(HELPER, "zmq", f"tcp://127.0.0.1:{port}", str(tmp_path / "ev.npy"), "--malformed", "--per", "100")
        got, ended = collect(src)
        c = src.counters()
    finally:
        src.shutdown()
    assert ended and same(got, ev)  # every good message, in order, around the bad ones
    assert c["rejected_messages"] == {"bad_header": 2, "length_mismatch": 1, "out_of_bounds": 1, "time_order": 1,
                                      "time_window": 1, "frame_count": 1}
    # each rejected message counts the events whose bytes arrived (the truncated one: 99)
    assert c["rejected"] == {k: 100 * v - (k == "length_mismatch") for k, v in c["rejected_messages"].items()}
    assert c["received"] == len(ev) + 699  # received = accepted + rejected
    assert c["lost_messages"] == 0 and c["heartbeats"] >= 1


def test_zmq_frame_larger_than_max_message_bytes_disconnects_and_the_source_connects_again():
    """A frame's length prefix never sizes an allocation past ``max_message_bytes``: libzmq drops
    the connection (counted) and, after such a protocol error, would not reconnect by itself; the
    source connects again and later messages arrive."""
    port = free_port()
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.linger = 0
    push.bind(f"tcp://127.0.0.1:{port}")
    src = open_net_source(f"zmq+tcp://127.0.0.1:{port}?mode=pull&max_message_bytes=4096", geometry=(W, H))
    try:
        big, small = make_events(1000, seed=6), make_events(50, seed=7, t0=10**6)
        push.send_multipart(encode_message(big, seq=0, t0_us=int(big["t"][0]), t1_us=int(big["t"][-1]), width=W,
                                           height=H))   # 16 KB: over the limit (blocks until the source connects)
        got, deadline = [], time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            try:
                push.send_multipart(encode_message(small, seq=1, t0_us=int(small["t"][0]), t1_us=int(small["t"][-1]),
                                                   width=W, height=H), flags=zmq.NOBLOCK)
            except zmq.Again:   # no connection yet
                pass
            b = src.next(0.5)
            got += [] if b is None else [b.events]
        c = src.counters()
    finally:
        push.close()
        ctx.term()
        src.shutdown()
    assert got and same(got[0], small) and c["received"] == 50
    assert c["disconnects"] == 1 and c["connects"] == 2


def test_zmq_slow_consumer_drops_are_detected_by_sequence_gaps(tmp_path, procs):
    ev = make_events(600_000, seed=5)  # 9.6 MB in 1,200 messages: more than the socket buffers hold
    np.save(tmp_path / "ev.npy", ev)
    port = free_port()
    src = open_net_source(f"zmq+tcp://127.0.0.1:{port}?hwm=2", geometry=(W, H))
    try:
        procs(HELPER, "zmq", f"tcp://127.0.0.1:{port}", str(tmp_path / "ev.npy"), "--per", "500", "--hwm", "2",
              "--linger-s", "2.0")
        first = src.next(10.0)
        assert first is not None
        time.sleep(1.5)  # a slow consumer: the publisher runs ahead and drops at its high-water mark
        rest, ended = collect(src, first_timeout=3.0, timeout=3.0)
        c = src.counters()
    finally:
        src.shutdown()
    assert c["lost_messages"] > 0 and c["received"] < len(ev)
    assert c["received"] == len(first.events) + len(rest)
    assert c["received"] + c["lost_events"] == len(ev)  # the header offsets account for every lost event


def test_zmq_sender_killed_mid_stream_then_a_new_sender_resumes(tmp_path, procs):
    np.save(tmp_path / "long.npy", make_events(100_000, seed=6))
    second = make_events(500, seed=7, t0=10_000_000)
    np.save(tmp_path / "second.npy", second)
    port = free_port()
    src = open_net_source(f"zmq+tcp://127.0.0.1:{port}?heartbeat_ms=200", geometry=(W, H))
    try:
        p1, _ = procs(HELPER, "zmq", f"tcp://127.0.0.1:{port}", str(tmp_path / "long.npy"), "--per", "50",
                      "--delay-s", "0.01", "--no-end")
        for _ in range(3):
            assert src.next(10.0) is not None
        p1.send_signal(signal.SIGKILL)
        p1.wait(5)
        deadline = time.monotonic() + 5
        while src.counters()["disconnects"] == 0 and time.monotonic() < deadline:
            src.next(0.2)  # drains what arrived before the kill, then waits
        assert src.next(0.3) is None  # keeps waiting: a dead sender is not the end of the stream
        c = src.counters()
        assert c["disconnects"] >= 1 and c["silent_s"] >= 0.3
        procs(HELPER, "zmq", f"tcp://127.0.0.1:{port}", str(tmp_path / "second.npy"), "--per", "100")
        got, ended = collect(src)
        c = src.counters()
    finally:
        src.shutdown()
    assert ended and same(got, second)
    assert c["sender_restarts"] == 1 and c["connects"] >= 2 and c["lost_messages"] == 0


def test_curve_required_off_loopback_and_forced_on_loopback(tmp_path, procs):
    with pytest.raises(ValueError, match="curve_public_key"):
        open_net_source("zmq+tcp://127.0.0.1:5999?curve=1", geometry=(W, H))
    with pytest.raises(ValueError, match="curve_server_key"):
        open_net_source("zmq+tcp://0.0.0.0:0?bind=1&mode=pull", geometry=(W, H))
    with pytest.raises(ValueError, match="curve_public_key"):
        open_net_source("zmq+tcp://192.0.2.1:5999", geometry=(W, H))  # not connected: refused before that
    server_pub, server_sec = zmq.auth.create_certificates(str(tmp_path), "server")
    client_pub, client_sec = zmq.auth.create_certificates(str(tmp_path), "client")
    ev = make_events(400, seed=8)
    np.save(tmp_path / "ev.npy", ev)
    port = free_port()
    src = open_net_source(f"zmq+tcp://127.0.0.1:{port}?mode=pull&curve=1", geometry=(W, H),
                          curve_public_key=server_pub, curve_secret_key=client_sec)
    try:
        procs(HELPER, "zmq", f"tcp://127.0.0.1:{port}", str(tmp_path / "ev.npy"), "--mode", "push",
              "--curve-server-key", server_sec)
        got, ended = collect(src)
    finally:
        src.shutdown()
    assert ended and same(got, ev)
    # a client that trusts another server key gets nothing, and the failed handshakes are counted
    sender = ZmqEventSender("127.0.0.1", 0, width=W, height=H, mode="push", curve=1, curve_server_key=server_sec,
                            linger_ms=0)
    wrong = open_net_source(f"zmq+tcp://127.0.0.1:{sender.port}?mode=pull&curve=1", geometry=(W, H),
                            curve_public_key=client_pub)
    try:
        deadline = time.monotonic() + 5
        while wrong.counters()["handshake_failures"] == 0 and time.monotonic() < deadline:
            assert wrong.next(0.2) is None
        c = wrong.counters()
    finally:
        wrong.shutdown()
        sender.close()
    assert c["handshake_failures"] >= 1 and c["connects"] == 0 and c["received"] == 0


def published(result) -> list:
    """The frames a ZMQ result sink publishes for ``result``, as a real subscriber receives them."""
    sink = open_net_sink("zmq+tcp://127.0.0.1:0?bind=1")
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{sink.port}")
        deadline, frames = time.monotonic() + 5, None
        while frames is None and time.monotonic() < deadline:  # PUB drops until the subscription arrives
            sink.write(result)
            if sub.poll(100):
                frames = sub.recv_multipart()
        assert frames is not None, "no result arrived within 5 s"
        return frames
    finally:
        sub.close(0)
        ctx.term()
        sink.shutdown()


def test_zmq_result_sink_publishes_header_and_json():
    result = {"stream": "s", "t_start_us": 0, "t_end_us": 100, "task": "classification", "class_id": 2}
    frames = published(result)
    assert len(frames) == 2
    assert json.loads(frames[0])["type"] == "result" and json.loads(frames[1]) == result


# -- UDP ------------------------------------------------------------------------------

def test_udp_end_to_end_with_malformed_datagrams(tmp_path, procs):
    ev = make_events(2000, seed=9)
    np.save(tmp_path / "ev.npy", ev)
    src = open_net_source("udp://127.0.0.1:0?width=64&height=48")
    try:
        procs(HELPER, "udp", "127.0.0.1", str(src.port), str(tmp_path / "ev.npy"), "--malformed")
        got, _ = collect(src, timeout=1.0)
        c = src.counters()
    finally:
        src.shutdown()
    assert same(got, ev)
    assert c["rejected_messages"] == {"bad_length": 2, "out_of_bounds": 1}
    assert c["received"] == len(ev) + sum(c["rejected"].values())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the drop count comes from Linux's /proc/net/udp")
def test_udp_datagrams_the_kernel_drops_are_counted_as_lost(tmp_path, procs):
    """A full receive buffer drops datagrams in the kernel; the source counts them: datagrams
    received + lost = datagrams sent (60 events each)."""
    ev = make_events(12_000, seed=12)
    np.save(tmp_path / "ev.npy", ev)
    src = open_net_source("udp://127.0.0.1:0?width=64&height=48&rcvbuf=4096")   # a few datagrams' room
    try:
        p, _ = procs(HELPER, "udp", "127.0.0.1", str(src.port), str(tmp_path / "ev.npy"))
        p.wait(60)   # everything sent before anything is read
        got, _ = collect(src, first_timeout=2.0, timeout=0.5)
        c = src.counters()
    finally:
        src.shutdown()
    assert c["lost_datagrams"] > 0 and c["datagrams"] + c["lost_datagrams"] == 200
    assert len(got) == 60 * c["datagrams"] == c["received"]


def test_send_command_to_udp_and_its_errors(tmp_path, capsys):
    from eventflow.cli import main

    ev = make_events(1500, seed=11)
    path = tmp_path / "ev.npy"
    eventflow.write_events(path, ev, width=W, height=H)
    src = open_net_source("udp://127.0.0.1:0", geometry=(W, H))
    try:
        assert main(["send", str(path), f"udp://127.0.0.1:{src.port}", "--width", str(W), "--height", str(H),
                     "--rate", "5"]) == 0
        got, _ = collect(src, first_timeout=5.0, timeout=0.5)
    finally:
        src.shutdown()
    assert same(got, ev)  # datagrams wait in the kernel's buffer: loopback at this size loses none
    assert main(["send", str(path), "ftp://127.0.0.1:1", "--width", str(W), "--height", str(H)]) == 2
    assert "zmq+tcp:// or udp://" in capsys.readouterr().err
    assert main(["send", str(path), "udp://127.0.0.1:9", "--batch-us", "0", "--width", str(W),
                 "--height", str(H)]) == 2


def test_udp_geometry_and_arrival_time():
    with pytest.raises(ValueError, match="width=W&height=H"):
        open_net_source("udp://127.0.0.1:0")
    with pytest.raises(ValueError, match="insecure=1"):
        open_net_source("udp://0.0.0.0:0", geometry=(W, H))
    src = open_net_source("udp://127.0.0.1:0", geometry=(W, H))  # geometry from the model when the URI has none
    sender = UdpEventSender("127.0.0.1", src.port, timestamps=False)
    try:
        before = (time.monotonic_ns() - src.host_clock_origin_ns) // 1000
        sender.send(make_events(20, seed=10))
        b = src.next(5.0)
        after = (time.monotonic_ns() - src.host_clock_origin_ns) // 1000
    finally:
        sender.close()
        src.shutdown()
    assert b is not None and len(b.events) == 20 and (b.width, b.height) == (W, H)
    assert before <= int(b.events["t"][0]) <= after and (b.events["t"] == b.events["t"][0]).all()


# -- dv-processing network streaming --------------------------------------------------

def test_dv_tcp_client_reads_an_aedat4_stream(procs):
    path = real("dvxplorer_112k.aedat4")
    reader = Aedat4Reader(path)
    ref = reader.read_all()
    end = reader.data_table_position if reader.data_table_position > reader.data_start else 0
    _, (port,) = procs(HELPER, "dv", str(path), "--end", str(end), "--corrupt-sid", str(reader.stream_id))
    src = open_net_source(f"dv+tcp://127.0.0.1:{port}?reconnect=0", geometry=(320, 240))
    try:
        got, ended = collect(src)
        c = src.counters()
    finally:
        src.shutdown()
    assert ended and same(got, ref) and len(ref) == 111_954
    assert src.geometry() == (320, 240) and c["received"] == len(ref) and c["protocol_errors"] == 0
    assert c["rejected_messages"] == {"bad_packet": 1}  # the corrupt packet first: counted, the stream goes on
    assert c["other_stream_packets"] > 0  # the file's IMU and trigger packets are skipped


def test_dv_tcp_client_reconnects_after_the_server_dies_mid_packet(procs):
    path = real("dvxplorer_112k.aedat4")
    reader = Aedat4Reader(path)
    ref = reader.read_all()
    end = reader.data_table_position if reader.data_table_position > reader.data_start else 0
    first_server, (port,) = procs(HELPER, "dv", str(path), "--end", str(end), "--part", "1")
    src = open_net_source(f"dv+tcp://127.0.0.1:{port}?reconnect_s=0.1", geometry=(320, 240))
    try:
        first, _ = collect(src, timeout=1.0)   # until quiet: the server sent half, then died mid-packet
        assert first_server.wait(10) == 0
        procs(HELPER, "dv", str(path), "--end", str(end), "--part", "2", "--port", port)   # restarted
        rest, _ = collect(src, until=len(ref) - len(first))
        c = src.counters()
    finally:
        src.shutdown()
    assert 0 < len(first) < len(ref) and same(concatenate([first, rest]), ref)   # the cut packet came again whole
    assert c["connects"] == 2 and c["disconnects"] >= 1 and c["received"] == len(ref) and c["protocol_errors"] == 0


# -- camera ---------------------------------------------------------------------------

def test_camera_packet_conversion():
    raw = np.array([(10, 3, 4, True), (12, 639, 479, False)],
                   dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])  # the driver's 13-byte layout
    before = raw.copy()
    ev = driver_events_to_eventcd(raw)
    assert ev.dtype == eventflow.EVENT_DTYPE and ev[FIELDS].tolist() == [(3, 4, 1, 10), (639, 479, 0, 12)]
    assert np.array_equal(raw, before)
    assert clock_meta(1.5, ev) == {"system_time_us": 1_500_000, "host_offset_us": 1_500_000 - 12}
    with pytest.raises(ValueError, match="lacks field"):
        driver_events_to_eventcd(np.zeros(1, [("t", "<u8"), ("x", "<u2")]))


class _NoCameraDriver:
    """neuromorphic-drivers' list_devices() answering with what a machine has: one camera in error."""

    class _Dev:
        class name:
            value = "Prophesee EVK4"

        class connection:
            value = "USB 3.0 SuperSpeed (5.0 Gb/s)"

        serial, error = "00050423", "permission denied"

    def list_devices(self):
        return [self._Dev()]


def test_camera_without_a_usable_camera_lists_what_was_found():
    with pytest.raises(ValueError, match="Prophesee EVK4 serial 00050423 \\(permission denied\\)"):
        CameraSource(driver=_NoCameraDriver())
    with pytest.raises(ValueError, match="serial 123 was not found"):
        CameraSource("123", driver=_NoCameraDriver())


def test_camera_enumeration_and_settings_with_the_real_driver():
    nd = pytest.importorskip("neuromorphic_drivers", reason="neuromorphic-drivers (optional extra) not installed")
    with pytest.raises(ValueError, match="camera"):  # no camera here: found none, or USB is unavailable
        open_net_source("camera:")
    try:
        assert isinstance(list_cameras(nd), list)
    except ValueError as e:
        assert "cannot list devices" in str(e)
    cfg = driver_configuration(nd, "PROPHESEE_EVK4", {"biases": {"diff_on": 12, "diff_off": -3},
                                                     "rate_limiter": {"reference_period_us": 200,
                                                                      "maximum_events_per_period": 4000}})
    assert (cfg.biases.diff_on, cfg.biases.diff_off, cfg.biases.fo) == (12, -3, 0)
    assert cfg.rate_limiter.maximum_events_per_period == 4000 and len(cfg.serialize()) > 0
    with pytest.raises(ValueError, match="biases \\['nope'\\] unknown"):
        driver_configuration(nd, "PROPHESEE_EVK4", {"biases": {"nope": 1}})
    with pytest.raises(ValueError, match="not a PROPHESEE_EVK4 setting"):
        driver_configuration(nd, "PROPHESEE_EVK4", {"gain": 1})


def test_uri_errors_name_the_uri():
    with pytest.raises(ValueError, match="needs a host and a port"):
        open_net_source("zmq+tcp://127.0.0.1")
    with pytest.raises(ValueError, match="both in the URI and as arguments"):
        open_net_source("zmq+tcp://127.0.0.1:1?hwm=5", hwm=6)
    with pytest.raises(ValueError, match="unknown network source scheme"):
        open_net_source("ftp://127.0.0.1:21")
    with pytest.raises(ValueError, match="unknown option\\(s\\) hwmm"):
        open_net_source("zmq+tcp://127.0.0.1:1?hwmm=5")
    with pytest.raises(ValueError, match="mode must be"):
        open_net_source("zmq+tcp://127.0.0.1:1?mode=dealer")
