"""A separate sender process for tests/test_pipeline_net.py, written from docs/protocols.md
alone (numpy, pyzmq and the standard library: it does not import eventflow, so it checks the
documented wire formats rather than eventflow's own encoder, and starts fast).

    python tests/net_sender.py zmq ENDPOINT EVENTS.npy [--mode pub|push] [--connect] [--per N] ...
    python tests/net_sender.py udp HOST PORT EVENTS.npy [--no-ts-every K] [--malformed]
    python tests/net_sender.py dv FILE.aedat4 [--port P] [--part 1|2]
                                                       (serves one client, prints "ready PORT")

Prints "ready" (and the port) on stdout once its socket is set up.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time

import numpy as np

EVENT = np.dtype({"names": ["x", "y", "p", "t"], "formats": ["<u2", "<u2", "<i2", "<i8"],
                  "offsets": [0, 2, 4, 8], "itemsize": 16})


def say(*words):
    print(*words, flush=True)


def zmq_main(a):
    import zmq
    import zmq.auth

    ev = np.load(a.events)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB if a.mode == "pub" else zmq.PUSH)
    sock.sndhwm = a.hwm
    sock.linger = 3000
    if a.curve_server_key:
        pub, sec = zmq.auth.load_certificate(a.curve_server_key)
        sock.curve_secretkey, sock.curve_publickey, sock.curve_server = sec, pub, True
    if a.curve_public_key:
        server_pub, _ = zmq.auth.load_certificate(a.curve_public_key)
        pub, sec = zmq.auth.load_certificate(a.curve_secret_key)
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_pub, pub, sec
    (sock.connect if a.connect else sock.bind)(a.endpoint)
    say("ready")
    if a.mode == "pub" and not a.connect:
        sock.poll(int(a.wait_s * 1000))  # a subscription arrives as a message on XPUB
    sender = os.urandom(4).hex()
    seq = offset = 0
    for i, start in enumerate(range(0, len(ev), a.per)):
        part = ev[start:start + a.per]
        header = {"seq": seq, "t0_us": int(part["t"][0]), "t1_us": int(part["t"][-1]), "width": a.width,
                  "height": a.height, "count": len(part), "sender": sender, "offset": offset}
        sock.send_multipart([json.dumps(header).encode(), part.tobytes()])
        seq += 1
        offset += len(part)
        if a.malformed and i == 1:
            seq = send_malformed(sock, part, seq, a)
        if a.delay_s:
            time.sleep(a.delay_s)
    end = time.monotonic() + a.linger_s
    while time.monotonic() < end:  # heartbeats carry the next seq: trailing losses become visible
        sock.send_multipart([json.dumps({"type": "heartbeat", "seq": seq, "offset": offset,
                                         "sender": sender}).encode()])
        time.sleep(0.05)
    if not a.no_end:
        sock.send_multipart([json.dumps({"type": "end", "seq": seq, "offset": offset, "sender": sender}).encode()])
    sock.close()
    ctx.term()


def send_malformed(sock, part, seq, a):
    """One message of each kind of fault; those with a readable seq consume it."""
    good = {"t0_us": int(part["t"][0]), "t1_us": int(part["t"][-1]), "width": a.width, "height": a.height,
            "count": len(part)}
    sock.send_multipart([b"{not json", part.tobytes()])                       # bad_header
    sock.send_multipart([json.dumps({**good, "seq": "x"}).encode(), part.tobytes()])  # bad_header
    for fault in ("length", "bounds", "order", "window"):
        body = part.copy()
        h = {**good, "seq": seq}
        if fault == "length":
            data = body.tobytes()[:-16]
        elif fault == "bounds":
            body["x"][0] = a.width
            data = body.tobytes()
        elif fault == "order":
            body["t"][-1] = body["t"][0] - 1
            data = body.tobytes()
        else:
            h["t1_us"] = int(part["t"][-1]) - 1
            data = body.tobytes()
        sock.send_multipart([json.dumps(h).encode(), data])
        seq += 1
    sock.send_multipart([json.dumps({**good, "seq": seq}).encode(), part.tobytes(), b"extra"])  # frame_count
    return seq + 1


def udp_main(a):
    ev = np.load(a.events)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    say("ready")
    words = []
    for i, e in enumerate(ev):
        w = (int(e["x"]) << 16) | (int(e["p"] != 0) << 15) | int(e["y"])
        if a.no_ts_every and i % a.no_ts_every == 0:
            words.append(w | (1 << 31))
        else:
            words += [w, int(e["t"]) & 0xFFFFFFFF]
        if len(words) >= 120:
            s.sendto(struct.pack(f"={len(words)}I", *words), (a.host, a.port))
            words = []
            time.sleep(0.0005)
    if words:
        s.sendto(struct.pack(f"={len(words)}I", *words), (a.host, a.port))
    if a.malformed:
        s.sendto(b"\x01\x02\x03", (a.host, a.port))                              # not whole words
        s.sendto(struct.pack("=I", 5 << 16), (a.host, a.port))                  # timestamp missing
        s.sendto(struct.pack("=II", (a.width << 16) | 1, 7), (a.host, a.port))  # x out of range
    s.close()


def dv_main(a):
    """Serve one client the AEDAT 4 stream of a file, as dv-processing's server frames it:
    the IOHeader (u32 length + flatbuffer, no magic), then the packets (no file data table)."""
    raw = open(a.file, "rb").read()
    magic = b"#!AER-DAT4.0\r\n"
    n = struct.unpack_from("<I", raw, len(magic))[0]
    header = raw[len(magic):len(magic) + 4 + n]
    pos, packets = len(magic) + 4 + n, []
    end = a.end if a.end > 0 else len(raw)
    while pos + 8 <= end:
        sid, size = struct.unpack_from("<iI", raw, pos)
        if pos + 8 + size > end:
            break
        packets.append(raw[pos:pos + 8 + size])
        pos += 8 + size
    half = len(packets) // 2
    tail = b""
    if a.part == 1:    # the first half of the packets, then half a packet, and the server dies
        packets, tail = packets[:half], packets[half][:len(packets[half]) // 2]
    elif a.part == 2:  # a restarted server: the rest, from the packet the first one cut
        packets = packets[half:]
    srv = socket.create_server(("127.0.0.1", a.port))
    say("ready", srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.sendall(header)
    if a.corrupt_sid is not None:  # a packet of the event stream whose payload is not a compressed frame
        conn.sendall(struct.pack("<iI", a.corrupt_sid, 16) + b"\x5a" * 16)
    for p in packets:
        for i in range(0, len(p), 997):  # odd-sized writes: the client must reassemble frames
            conn.sendall(p[i:i + 997])
    if tail:   # the process dies: the kernel still delivers what was sent, then closes the connection
        conn.sendall(tail)
        os._exit(0)
    conn.close()
    srv.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    z = sub.add_parser("zmq")
    z.add_argument("endpoint")
    z.add_argument("events")
    z.add_argument("--mode", default="pub", choices=("pub", "push"))
    z.add_argument("--connect", action="store_true")
    z.add_argument("--per", type=int, default=100, help="events per message")
    z.add_argument("--delay-s", type=float, default=0.0)
    z.add_argument("--hwm", type=int, default=1000)
    z.add_argument("--wait-s", type=float, default=5.0)
    z.add_argument("--linger-s", type=float, default=0.3)
    z.add_argument("--no-end", action="store_true")
    z.add_argument("--malformed", action="store_true")
    z.add_argument("--width", type=int, default=64)
    z.add_argument("--height", type=int, default=48)
    z.add_argument("--curve-server-key")
    z.add_argument("--curve-public-key")
    z.add_argument("--curve-secret-key")
    u = sub.add_parser("udp")
    u.add_argument("host")
    u.add_argument("port", type=int)
    u.add_argument("events")
    u.add_argument("--no-ts-every", type=int, default=0)
    u.add_argument("--malformed", action="store_true")
    u.add_argument("--width", type=int, default=64)
    d = sub.add_parser("dv")
    d.add_argument("file")
    d.add_argument("--end", type=int, default=0, help="byte offset where the packets end (the data table)")
    d.add_argument("--corrupt-sid", type=int, help="first send one corrupt packet on this stream id")
    d.add_argument("--port", type=int, default=0)
    d.add_argument("--part", type=int, choices=(1, 2), help="1: half the packets, half a packet, then die; "
                   "2: the rest, from the packet part 1 cut")
    a = p.parse_args()
    {"zmq": zmq_main, "udp": udp_main, "dv": dv_main}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
