"""Small copies of the real datasets' layouts, written from the formats' specifications.

Each builder writes files into a folder the test gives (tmp_path) and returns the events it
wrote, so a test can compare what a loader reads with what is known to be there.
"""
from __future__ import annotations

import os
import struct

import numpy as np

from eventflow.events import from_fields


def random_events(seed, n, w, h, t0=0, dt_max=50):
    rng = np.random.default_rng(seed)
    return from_fields(rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n),
                       t0 + np.cumsum(rng.integers(0, dt_max, n)))


# -- DVS128 Gesture: AEDAT 3.1 trials, labels CSVs and the trial lists ---------------------------
AEDAT3_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                 b"#Start-Time: 2017-04-19 12:17:28 (TZ+0100)\r\n#!END-HEADER\r\n")


def aedat3_bytes(ev, packet=200) -> bytes:
    """Polarity packets (type 1, 8-byte events: data = x<<17 | y<<2 | p<<1 | valid, ts = t mod 2**31)."""
    out = AEDAT3_HEADER
    overflows = ev["t"] >> 31
    starts = sorted(set(range(0, len(ev), packet)) | set(np.flatnonzero(np.diff(overflows)) + 1))
    for i, j in zip(starts, starts[1:] + [len(ev)]):  # a packet never spans an overflow
        part, overflow = ev[i:j], int(overflows[i])
        data = ((part["x"].astype(np.uint32) << 17) | (part["y"].astype(np.uint32) << 2)
                | (part["p"].astype(np.uint32) << 1) | np.uint32(1))
        body = np.stack([data, (part["t"] & 0x7FFFFFFF).astype(np.uint32)], 1).astype("<u4").tobytes()
        out += struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, len(part), len(part), len(part)) + body
    return out


def write_dvs_gesture(folder, trials: dict, train: list, test: list) -> dict:
    """``trials``: name -> (events, [(class, t_start, t_end), ...]); writes <folder>/DvsGesture."""
    root = os.path.join(folder, "DvsGesture")
    os.makedirs(root, exist_ok=True)
    for name, (ev, labels) in trials.items():
        with open(os.path.join(root, name + ".aedat"), "wb") as f:
            f.write(aedat3_bytes(ev))
        with open(os.path.join(root, name + "_labels.csv"), "w") as f:
            f.write("class,startTime_usec,endTime_usec\r\n")
            f.writelines(f"{c},{a},{b}\r\n" for c, a, b in labels)
    for list_name, names in (("trials_to_train.txt", train), ("trials_to_test.txt", test)):
        with open(os.path.join(root, list_name), "w") as f:
            f.writelines(f"{n}.aedat\r\n" for n in names)
            f.write("\r\n")  # the real lists end with a blank line
    return {"root": root}


# -- N-MNIST: 40-bit records ---------------------------------------------------------------------
def nmnist_bytes(ev) -> bytes:
    """Records x, y, bit7 | t[22:16], t[15:8], t[7:0]; bit 7 set for OFF (eventflow's reading)."""
    t = ev["t"].astype(np.int64)
    assert t.max() < (1 << 23)
    rec = np.zeros((len(ev), 5), np.uint8)
    rec[:, 0], rec[:, 1] = ev["x"], ev["y"]
    rec[:, 2] = ((1 - ev["p"].astype(np.int64)) << 7) | (t >> 16)
    rec[:, 3], rec[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return rec.tobytes()


def write_nmnist_file(path, ev) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(nmnist_bytes(ev))


# -- Gen1: DAT recordings and boxes ----------------------------------------------------------------
GEN1_BOX_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                           ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])


def dat_bytes(ev, width=304, height=240) -> bytes:
    """Prophesee DAT v2: % header, event type 0 and size 8, then {u32 t, u32 x | y << 14 | p << 28}."""
    head = (f"% Data file containing CD events.\n% Version 2\n% Date 2017-04-04 11:00:13\n"
            f"% Height {height}\n% Width {width}\n").encode() + bytes([0, 8])
    word = ev["x"].astype(np.uint32) | (ev["y"].astype(np.uint32) << 14) | (ev["p"].astype(np.uint32) << 28)
    return head + np.stack([ev["t"].astype(np.uint32), word], 1).astype("<u4").tobytes()


def gen1_boxes(seed, n) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = np.zeros(n, GEN1_BOX_DTYPE)
    b["ts"] = np.sort(rng.integers(0, 1_000_000, n))
    b["x"], b["y"] = rng.uniform(0, 200, n), rng.uniform(0, 150, n)
    b["w"], b["h"] = rng.uniform(10, 80, n), rng.uniform(10, 80, n)
    b["class_id"], b["confidence"], b["track_id"] = rng.integers(0, 2, n), 1.0, np.arange(n)
    return b


def write_gen1_recording(folder, stem, ev, boxes) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, stem + "_td.dat"), "wb") as f:
        f.write(dat_bytes(ev))
    np.save(os.path.join(folder, stem + "_bbox.npy"), boxes)
