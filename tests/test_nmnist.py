"""N-MNIST .bin / .bs2: the real recordings, tonic, the polarity convention, fixtures,
split independence, truncation."""
from __future__ import annotations

import glob
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.errors import OUT_OF_BOUNDS, TRUNCATED, EventFormatError
from eventflow.events import concatenate, from_fields
from eventflow.formats.nmnist import NmnistReader, read_nmnist_labels
from eventflow.formats.reader import count_events

from .conftest import real

TONIC_INTS = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])


def same_events(a, b):
    return len(a["x"]) == len(b["x"]) and all(
        np.array_equal(np.asarray(a[k]).astype(np.int64), np.asarray(b[k]).astype(np.int64)) for k in "xypt")


def encode(ev, bit7=None) -> bytes:
    """N-MNIST records of ``ev`` (p = 1 is ON, written as bit 7 = 0, the default convention)."""
    bit7 = 1 - ev["p"].astype(np.int64) if bit7 is None else bit7
    t = ev["t"].astype(np.int64)
    rec = np.stack([ev["x"], ev["y"], (bit7 << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], 1)
    return rec.astype(np.uint8).tobytes()


def random_events(seed, n, w=34, h=34):
    rng = np.random.default_rng(seed)
    return from_fields(rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n),
                       np.cumsum(rng.integers(0, 60, n)))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_real_sample_counts_and_times():
    r = eventflow.open(real("nmnist_4325.bin"))
    assert (r.format, r.width, r.height) == ("nmnist", 34, 34)
    info = count_events(r)
    assert (info["events"], info["t_first_us"], info["t_last_us"]) == (4_325, 654, 311_175)
    assert info["violations"] == {} and r.time_overflows == 0


def test_real_sample_equals_tonic_with_the_polarity_bit_inverted():
    import tonic.io

    ref = tonic.io.read_mnist_file(str(real("nmnist_4325.bin")), dtype=TONIC_INTS)
    ours = NmnistReader(real("nmnist_4325.bin")).read_all()
    assert same_events(ours, {"x": ref["x"], "y": ref["y"], "t": ref["t"], "p": 1 - ref["p"]})
    as_tonic = NmnistReader(real("nmnist_4325.bin"), bit7_means_on=True).read_all()
    assert same_events(as_tonic, ref)


def test_test100_total_labels_and_tonic():
    import tonic.io

    folder = os.path.dirname(real("nmnist_test100/test100.txt"))
    files = sorted(glob.glob(os.path.join(folder, "*.bs2")))
    labels = read_nmnist_labels(os.path.join(folder, "test100.txt"))
    assert len(files) == len(labels) == 100
    assert [os.path.basename(f) for f in files] == [f"{s}.bs2" for s in labels["sample"]]
    assert set(labels["class"].tolist()) == set(range(10))
    total = 0
    for f in files:
        r = eventflow.open(f)
        ev = r.read_all()
        assert r.format == "nmnist" and not r.violations
        ref = tonic.io.read_mnist_file(f, dtype=TONIC_INTS)
        assert same_events(ev, {"x": ref["x"], "y": ref["y"], "t": ref["t"], "p": 1 - ref["p"]})
        total += len(ev)
    assert total == 385_596


def test_on_events_lead_the_moving_white_digit():
    """First saccade: the digit moves down (+y), so brightening (ON) is on its lower edges."""
    folder = os.path.dirname(real("nmnist_test100/test100.txt"))
    leads = []
    for f in sorted(glob.glob(os.path.join(folder, "*.bs2"))):
        ev = NmnistReader(f).read_all()
        first = ev[(ev["t"] > 20_000) & (ev["t"] < 70_000)]
        centroid_moves_down = np.polyfit(first["t"], first["y"], 1)[0] > 0
        on, off = first[first["p"] == 1], first[first["p"] == 0]
        leads.append(centroid_moves_down and on["y"].mean() > off["y"].mean())
    assert np.mean(leads) > 0.9


def test_fixture_round_trip_overflow_markers_and_tonic(tmp_path):
    import tonic.io

    ev = random_events(1, 500)
    data = bytearray(encode(ev))
    marker = bytes([0, 240, 0, 0, 0])
    data[250 * 5:250 * 5] = marker  # every later event gains 2**13 us
    path = str(write(tmp_path / "m.bin", bytes(data)))
    want = ev.copy()
    want["t"][250:] += 1 << 13
    r = NmnistReader(path)
    assert same_events(r.read_all(), want) and r.time_overflows == 1 and not r.violations
    ref = tonic.io.read_mnist_file(path, dtype=TONIC_INTS)
    assert same_events(NmnistReader(path, bit7_means_on=True).read_all(), ref)
    for chunk in (1, 3, 249, 250, 251, 10_000):
        parts = list(NmnistReader(path, chunk_events=chunk))
        assert max(len(p) for p in parts) <= chunk and same_events(concatenate(parts), want)


def test_geometry_override_and_out_of_bounds(tmp_path):
    ev = random_events(2, 50, w=120, h=100)
    path = write(tmp_path / "c.bin", encode(ev))
    assert same_events(NmnistReader(path, width=120, height=100).read_all(), ev)
    r = NmnistReader(path)
    inside = (ev["x"] < 34) & (ev["y"] < 34)
    assert same_events(r.read_all(), ev[inside])
    assert r.violations.counts == {OUT_OF_BOUNDS: int((~inside).sum())}
    assert r.violations.first_offset[OUT_OF_BOUNDS] == 5 * int(np.argmin(inside))


def test_truncated_record_is_counted_or_raises_in_strict_mode(tmp_path):
    ev = random_events(3, 20)
    path = write(tmp_path / "t.bin", encode(ev) + b"\x01\x02\x03")
    r = NmnistReader(path)
    assert same_events(r.read_all(), ev) and r.violations.counts == {TRUNCATED: 3}
    assert r.violations.first_offset[TRUNCATED] == 100
    with pytest.raises(EventFormatError, match=re.escape(str(path)) + r": byte 100: .*truncated"):
        NmnistReader(path, strict=True).read_all()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("nmnist")


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(0, 5 * 60), chunk=st.integers(1, 70), garbage=st.binary(max_size=64))
def test_cut_anywhere_gives_a_prefix(scratch, cut, chunk, garbage):
    ev = random_events(4, 60)
    data = encode(ev)
    path = write(scratch / "p.bin", data[:cut])
    r = NmnistReader(path, chunk_events=chunk)
    out = r.read_all()
    assert same_events(out, ev[:cut // 5])
    assert r.violations.counts == ({TRUNCATED: cut % 5} if cut % 5 else {})
    junk = NmnistReader(write(scratch / "g.bin", data[:cut] + garbage))
    assert len(junk.read_all()) <= (cut + len(garbage)) // 5


def test_missing_file_and_bad_labels(tmp_path):
    with pytest.raises(EventFormatError, match="no such file"):
        NmnistReader(tmp_path / "absent.bin")
    (tmp_path / "l.txt").write_text("#sample #class\n1 2\n3 x\n")
    with pytest.raises(EventFormatError, match="line 3"):
        read_nmnist_labels(tmp_path / "l.txt")
