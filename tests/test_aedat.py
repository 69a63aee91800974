"""AEDAT 4.0, 3.1 and 2.0: the real files, tonic, fixtures built here from the format
specifications, split independence, bounds on allocations, truncation and garbage."""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.errors import NON_MONOTONIC_TIME, OUT_OF_BOUNDS, TRUNCATED, EventFormatError
from eventflow.events import concatenate, from_fields
from eventflow.formats.aedat import INVALID_EVENT, Aedat2Reader, Aedat3Reader, read_gesture_labels
from eventflow.formats.aedat4 import MAGIC, Aedat4Reader, parse_streams
from eventflow.formats.reader import count_events

from .conftest import real

AEDAT4 = "dvxplorer_112k.aedat4"


def same_events(a, b):
    return len(a["x"]) == len(b["x"]) and all(
        np.array_equal(np.asarray(a[k]).astype(np.int64), np.asarray(b[k]).astype(np.int64)) for k in "xypt")


def random_events(seed, n, w, h, t0=0):
    rng = np.random.default_rng(seed)
    return from_fields(rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n),
                       t0 + np.cumsum(rng.integers(0, 50, n)))


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path


def decode_or_error(path, cls, **options):
    """(events, violations) or the EventFormatError, which must name the file and a byte offset."""
    try:
        r = cls(path, **options)
        return r.read_all(), r.violations.counts
    except EventFormatError as e:
        assert str(path) in str(e) and re.search(r"byte \d+", str(e)), str(e)
        return e


# -- AEDAT 4 fixtures: flatbuffers laid out by hand, as dv-processing writes them -----------------
XML = ('<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
       '<node name="0" path="/mainloop/Recorder/outInfo/0/">'
       '<attr key="typeIdentifier" type="string">EVTS</attr>'
       '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
       '<attr key="sizeX" type="int">{w}</attr><attr key="sizeY" type="int">{h}</attr></node></node>'
       '<node name="2" path="/mainloop/Recorder/outInfo/2/">'
       '<attr key="typeIdentifier" type="string">IMUS</attr></node></node></dv>\n')
CODES = {"NONE": 0, "LZ4": 1, "LZ4_HIGH": 2, "ZSTD": 3, "ZSTD_HIGH": 4}


def io_header(code, table_pos, xml):
    text = xml.encode()
    vtable = struct.pack("<5H", 10, 20, 4, 12, 8) + b"\0\0"  # at 8: fields at +4, +12, +8
    table = struct.pack("<iiIq", 12, code, 12, table_pos)   # at 20; the string follows at 40
    return struct.pack("<I", 20) + b"IOHE" + vtable + table + struct.pack("<I", len(text)) + text + b"\0"


def event_packet(ev):
    elems = np.zeros(len(ev), [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    elems["t"], elems["x"], elems["y"], elems["on"] = ev["t"], ev["x"].astype(np.int16), ev["y"], ev["p"]
    buf = (struct.pack("<I", 16) + b"EVTS" + struct.pack("<3H", 6, 8, 4) + b"\0\0"
           + struct.pack("<iI", 8, 8) + b"\0\0\0\0" + struct.pack("<I", len(ev)) + elems.tobytes())
    return struct.pack("<I", len(buf)) + buf


def compress(payload, compression):
    if compression == "NONE":
        return payload
    if compression.startswith("LZ4"):
        import lz4.frame

        return lz4.frame.compress(payload, compression_level=9 if compression == "LZ4_HIGH" else 0)
    import zstandard

    return zstandard.ZstdCompressor(level=19 if compression == "ZSTD_HIGH" else 3).compress(payload)


def aedat4_bytes(ev, *, packet=100, compression="LZ4", w=64, h=48, with_table=True, other_stream=True):
    """An AEDAT 4 file of ``ev`` in packets of ``packet`` events, with IMU packets between."""
    body = b""
    for i in range(0, len(ev), packet):
        data = compress(event_packet(ev[i:i + packet]), compression)
        body += struct.pack("<iI", 0, len(data)) + data
        if other_stream:
            junk = compress(b"\x08\0\0\0\0\0\0\0IMUSxxxx", compression)
            body += struct.pack("<iI", 2, len(junk)) + junk
    header_len = len(io_header(0, 0, XML.format(w=w, h=h)))
    start = len(MAGIC) + 4 + header_len
    table_pos = start + len(body) if with_table else -1
    header = io_header(CODES[compression], table_pos, XML.format(w=w, h=h))
    table = compress(b"\x10\0\0\0FTAB" + bytes(12), compression) if with_table else b""
    return MAGIC + struct.pack("<I", len(header)) + header + body + table


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder for the files that property tests write (and overwrite) example after example."""
    return tmp_path_factory.mktemp("aedat")


@pytest.fixture(scope="module")
def small4(scratch):
    ev = random_events(4, 257, 64, 48, t0=1_600_000_000_000_000)
    return write(scratch / "small.aedat4", aedat4_bytes(ev, packet=64)), ev


# -- AEDAT 4: the real file -------------------------------------------------------------------------
def test_aedat4_real_file_counts_geometry_and_times():
    r = eventflow.open(real(AEDAT4))
    assert (r.format, r.width, r.height, r.stream_id, r.compression) == ("aedat4", 320, 240, 0, "LZ4")
    assert [s["type"] for s in r.streams] == ["EVTS", "IMUS", "TRIG"]
    info = count_events(r)
    assert info["events"] == 111_954
    assert (info["t_first_us"], info["t_last_us"]) == (1_605_537_493_718_345, 1_605_537_494_308_262)
    assert info["violations"] == {}


def test_aedat4_equals_tonic():
    pytest.importorskip("aedat")  # tonic.io.read_aedat4 decodes through the `aedat` package
    import tonic.io

    ref = tonic.io.read_aedat4(str(real(AEDAT4)))
    ours = eventflow.open(real(AEDAT4)).read_all()
    assert same_events(ours, {"x": ref["x"], "y": ref["y"], "p": ref["on"], "t": ref["t"]})


def test_aedat4_real_file_is_split_independent():
    whole = eventflow.open(real(AEDAT4)).read_all()
    parts = list(Aedat4Reader(real(AEDAT4), chunk_events=777))
    assert max(len(p) for p in parts) <= 777 and same_events(concatenate(parts), whole)


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(0, 949_253))
def test_aedat4_real_file_cut_anywhere_gives_a_prefix_or_an_error(scratch, cut):
    with open(real(AEDAT4), "rb") as f:
        data = f.read(cut)
    path = write(scratch / "cut_real.aedat4", data)
    out = decode_or_error(path, Aedat4Reader)
    if not isinstance(out, Exception):
        full = eventflow.open(real(AEDAT4)).read_all()
        assert same_events(out[0], full[:len(out[0])])


# -- AEDAT 4: fixtures --------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", list(CODES))
def test_aedat4_fixture_round_trips_with_each_compression(tmp_path, compression):
    ev = random_events(1, 1000, 64, 48, t0=1_600_000_000_000_000)
    path = write(tmp_path / "f.aedat4", aedat4_bytes(ev, compression=compression, packet=128))
    r = eventflow.open(path)
    assert (r.format, r.compression, r.width, r.height) == ("aedat4", compression, 64, 48)
    assert same_events(r.read_all(), ev) and not r.violations


@pytest.mark.parametrize("packet", [1, 7, 100, 5000])
def test_aedat4_decode_is_independent_of_packet_size(tmp_path, packet):
    ev = random_events(2, 3000, 64, 48)
    path = write(tmp_path / "f.aedat4", aedat4_bytes(ev, packet=packet, with_table=packet != 7))
    for chunk in (1, 333, 1 << 20):
        assert same_events(Aedat4Reader(path, chunk_events=chunk).read_all(), ev)


def test_aedat4_out_of_bounds_events_are_dropped_and_counted(tmp_path):
    ev = random_events(3, 50, 64, 48)
    ev["x"][[3, 9]] = [64, 0xFFFF]  # 0xFFFF is x = -1 once written as i16
    path = write(tmp_path / "f.aedat4", aedat4_bytes(ev, packet=50))
    r = Aedat4Reader(path)
    out = r.read_all()
    assert len(out) == 48 and r.violations.counts == {OUT_OF_BOUNDS: 2}
    assert r.violations.first_offset[OUT_OF_BOUNDS] == r.data_start
    with pytest.raises(EventFormatError, match=r"byte \d+"):
        Aedat4Reader(path, strict=True).read_all()


def test_aedat4_packet_size_beyond_the_file_names_its_offset(small4, tmp_path):
    path, _ = small4
    data = bytearray(open(path, "rb").read())
    start = Aedat4Reader(path).data_start
    data[start + 4:start + 8] = struct.pack("<I", 1 << 30)
    bad = write(tmp_path / "bad.aedat4", bytes(data))
    with pytest.raises(EventFormatError, match=rf"byte {start}: packet size 1073741824 exceeds"):
        Aedat4Reader(bad).read_all()


def test_aedat4_decompression_is_capped(tmp_path):
    import lz4.frame
    import zstandard

    bomb = struct.pack("<I", 8 << 20) + bytes(8 << 20)  # 8 MiB of zeros: a few KiB compressed
    for codec, data in (("LZ4", lz4.frame.compress(bomb)), ("ZSTD", zstandard.ZstdCompressor().compress(bomb))):
        good = aedat4_bytes(random_events(0, 1, 64, 48), compression=codec, with_table=False, other_stream=False)
        path = write(tmp_path / f"bomb_{codec}.aedat4", good + struct.pack("<iI", 0, len(data)) + data)
        assert len(data) < 64 << 10
        with pytest.raises(EventFormatError, match="limit"):
            Aedat4Reader(path, max_packet_bytes=1 << 20).read_all()


def test_aedat4_stream_selection_and_errors(small4, tmp_path):
    path, ev = small4
    assert Aedat4Reader(path, stream_id=0).stream_id == 0
    with pytest.raises(EventFormatError, match="no EVTS stream with id 2"):
        Aedat4Reader(path, stream_id=2)
    with pytest.raises(EventFormatError, match="ENTITY"):
        parse_streams('<!DOCTYPE x [<!ENTITY a "b">]><dv/>')
    with pytest.raises(EventFormatError, match="width=100 was given"):
        Aedat4Reader(path, width=100)


def test_aedat4_cut_at_every_position_gives_a_prefix_or_an_error(small4, scratch):
    path, ev = small4
    data = open(path, "rb").read()
    r = Aedat4Reader(path)
    boundaries, pos = {r.data_start, r.data_table_position}, r.data_start
    while pos < r.data_table_position:
        pos += 8 + struct.unpack_from("<I", data, pos + 4)[0]
        boundaries.add(pos)
    cut_path = scratch / "cut.aedat4"
    for cut in range(len(data) + 1):
        out = decode_or_error(write(cut_path, data[:cut]), Aedat4Reader)
        if isinstance(out, Exception):
            assert cut < r.data_start or cut not in boundaries
            continue
        events, violations = out
        assert same_events(events, ev[:len(events)])
        truncated = cut < r.data_table_position and cut not in boundaries
        assert (TRUNCATED in violations) == truncated
        if truncated and cut % 7 == 0:
            with pytest.raises(EventFormatError, match="truncated"):
                Aedat4Reader(cut_path, strict=True).read_all()


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=600), keep=st.integers(0, 2000))
def test_aedat4_garbage_after_a_valid_prefix_never_crashes(small4, scratch, garbage, keep):
    path, ev = small4
    data = open(path, "rb").read()
    r = Aedat4Reader(path)
    keep = r.data_start + keep % (r.data_table_position - r.data_start)
    bad = write(scratch / "g.aedat4", data[:keep] + garbage)
    decode_or_error(bad, Aedat4Reader)  # EventFormatError (checked) or events; nothing else


@settings(max_examples=60, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8),
       compression=st.sampled_from(["NONE", "LZ4", "ZSTD"]))
def test_aedat4_corrupted_bytes_never_crash(scratch, flips, compression):
    ev = random_events(5, 40, 64, 48)
    data = bytearray(aedat4_bytes(ev, packet=16, compression=compression))
    for at, xor in flips:
        data[at % len(data)] ^= xor
    path = write(scratch / "c.aedat4", bytes(data))
    decode_or_error(path, Aedat4Reader)


# -- AEDAT 3.1 fixtures ---------------------------------------------------------------------------------
HEADER3 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-04-19 12:17:28 (TZ+0100)\r\n"


def packet3(etype, events_bytes, n, *, size=8, overflow=0, source=1, capacity=None, valid=None):
    cap = n if capacity is None else capacity
    head = struct.pack("<hhiiiiii", etype, source, size, 4, overflow, cap, n, n if valid is None else valid)
    return head + events_bytes + bytes(size * (cap - n))


def polarity3(ev, valid=None):
    data = (ev["x"].astype(np.uint32) << 17) | (ev["y"].astype(np.uint32) << 2) | (ev["p"].astype(np.uint32) << 1)
    data |= np.uint32(1) if valid is None else valid.astype(np.uint32)
    return np.stack([data, (ev["t"] & 0x7FFFFFFF).astype(np.uint32)], 1).astype("<u4").tobytes()


def aedat3_bytes(ev, packet=50):
    """Polarity packets of ``ev`` (t may pass 2**31: the overflow goes in the packet header),
    with frame and special packets between and one packet whose capacity exceeds its number."""
    out = HEADER3 + b"#!END-HEADER\r\n"
    overflow = ev["t"] >> 31
    for i in range(0, len(ev), packet):
        part = ev[i:i + packet]
        for ov in np.unique(overflow[i:i + packet]):
            sub = part[overflow[i:i + packet] == ov]
            out += packet3(1, polarity3(sub), len(sub), overflow=int(ov), capacity=len(sub) + (i == 0))
        out += packet3(2, bytes(36), 1, size=36) + packet3(0, bytes(8), 1)
    return out


def test_aedat3_fixture_decodes_to_the_known_events(tmp_path):
    ev = random_events(7, 600, 128, 128, t0=(1 << 31) - 9000)  # crosses a 31-bit overflow
    path = write(tmp_path / "user01_led.aedat", aedat3_bytes(ev))
    r = eventflow.open(path)
    assert (r.format, r.width, r.height, r.sources) == ("aedat3", 128, 128, {1: "DVS128"})
    assert same_events(r.read_all(), ev) and not r.violations
    assert r.skipped == {"type2": 12, "type0": 12} and r.labels is None
    for chunk in (1, 17, 599):
        assert same_events(Aedat3Reader(path, chunk_events=chunk).read_all(), ev)


def test_aedat3_invalid_events_and_other_sources_are_dropped(tmp_path):
    ev = random_events(8, 20, 128, 128)
    valid = np.ones(20, bool)
    valid[[2, 5]] = False
    data = (HEADER3 + b"#!END-HEADER\r\n" + packet3(1, polarity3(ev, valid), 20)
            + packet3(1, polarity3(ev), 20, source=2))
    path = write(tmp_path / "t.aedat", data)
    r = Aedat3Reader(path, source=1)
    assert same_events(r.read_all(), ev[valid])
    assert r.violations.counts == {INVALID_EVENT: 2} and r.skipped == {"source2": 1}
    assert r.violations.first_offset[INVALID_EVENT] == len(HEADER3) + 14 + 28 + 2 * 8
    assert len(Aedat3Reader(path).read_all()) == 38


def test_aedat3_labels_beside_the_recording(tmp_path):
    path = write(tmp_path / "user02_lab.aedat", aedat3_bytes(random_events(9, 10, 128, 128)))
    (tmp_path / "user02_lab_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,10,20\r\n11,30,45\n")
    r = Aedat3Reader(path)
    assert r.labels.tolist() == [(1, 10, 20), (11, 30, 45)]
    assert r.labels.dtype.names == ("class", "t_start", "t_end")
    (tmp_path / "bad_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,10\n")
    with pytest.raises(EventFormatError, match="line 2"):
        read_gesture_labels(tmp_path / "bad_labels.csv")


def test_aedat3_equals_tonic(tmp_path):
    import tonic.io

    ev = random_events(10, 500, 128, 128)
    data = HEADER3 + b"#!END-HEADER\r\n" + b"".join(packet3(1, polarity3(ev[i:i + 64]), len(ev[i:i + 64]))
                                                     for i in range(0, 500, 64))
    path = str(write(tmp_path / "g.aedat", data))
    version, start, _ = tonic.io.read_aedat_header_from_file(path)
    raw = tonic.io.get_aer_events_from_file(path, version, start)
    a = raw["address"]
    ref = {"x": (a >> 17) & 0x1FFF, "y": (a >> 2) & 0x1FFF, "p": (a >> 1) & 1, "t": raw["timeStamp"]}
    assert version == 3.1 and same_events(Aedat3Reader(path).read_all(), ref)


def test_aedat3_header_and_size_errors(tmp_path):
    ok = HEADER3 + b"#!END-HEADER\r\n"
    big = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1 << 20, 0, 0) + bytes(64)  # 8 MiB declared
    path = write(tmp_path / "big.aedat", ok + big)
    with pytest.raises(EventFormatError, match=rf"byte {len(ok)}: packet of 8388608 bytes exceeds"):
        Aedat3Reader(path).read_all()
    with pytest.raises(EventFormatError, match="END-HEADER"):
        Aedat3Reader(write(tmp_path / "h.aedat", HEADER3 + b"\x01\x00"))
    with pytest.raises(EventFormatError, match="only AEDAT 3.1"):
        Aedat3Reader(write(tmp_path / "v.aedat", b"#!AER-DAT3.0\r\n#x\r\n"))


def test_aedat3_cut_at_every_position_gives_a_prefix_or_an_error(tmp_path):
    ev = random_events(11, 40, 128, 128)
    data = aedat3_bytes(ev, packet=16)
    path = tmp_path / "c.aedat"
    for cut in range(len(data) + 1):
        out = decode_or_error(write(path, data[:cut]), Aedat3Reader)
        if not isinstance(out, Exception):
            assert same_events(out[0], ev[:len(out[0])])
            assert set(out[1]) <= {TRUNCATED}
            if out[1]:
                with pytest.raises(EventFormatError, match="truncated"):
                    Aedat3Reader(path, strict=True).read_all()


@settings(max_examples=80, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=400))
def test_aedat3_garbage_after_the_header_never_crashes(scratch, garbage):
    path = write(scratch / "g.aedat", HEADER3 + b"#!END-HEADER\r\n" + garbage)
    decode_or_error(path, Aedat3Reader)


# -- AEDAT 2.0 ----------------------------------------------------------------------------------------
def header2(chip):
    return (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
            + (f"# AEChip: {chip}\r\n".encode() if chip else b"") + b"# Timestamps tick is 1 us\r\n")


def davis_address(ev, w=346, h=260):
    x, y = (w - 1 - ev["x"]).astype(np.uint32), (h - 1 - ev["y"]).astype(np.uint32)
    return (y << 22) | (x << 12) | (ev["p"].astype(np.uint32) << 11)


def records2(address, t):
    return np.stack([address.astype(np.uint32), (t & 0xFFFFFFFF).astype(np.uint32)], 1).astype(">u4").tobytes()


def test_aedat2_real_header_only_file():
    r = eventflow.open(real("davis346_header_only.aedat"))
    assert (r.format, r.width, r.height, r.layout) == ("aedat2", 346, 260, "davis")
    assert r.chip == "eu.seebetter.ini.chips.davis.Davis346red"
    assert len(r.read_all()) == 0 and not r.violations


def test_aedat2_davis_fixture_skips_samples_and_unwraps_time(tmp_path):
    ev = random_events(12, 400, 346, 260, t0=(1 << 32) - 5000)
    t = ev["t"]
    addr = davis_address(ev)
    aps = (np.uint32(1) << 31) | np.uint32(0x155)
    special = np.uint32(1 << 10) | np.uint32(3)
    a = np.concatenate([np.insert(addr, [10, 200], aps), [special]])
    tt = np.concatenate([np.insert(t, [10, 200], t[[10, 200]]), [t[-1]]])
    data = header2("eu.seebetter.ini.chips.davis.DAVIS346B") + records2(a, tt) + b"\1\2"
    path = write(tmp_path / "d.aedat", data)
    r = eventflow.open(path)
    out = r.read_all()
    assert (r.format, r.width, r.height) == ("aedat2", 346, 260)
    assert same_events(out, ev) and r.time_wraps == 1
    assert r.skipped == {"aps_imu_sample": 2, "external_event": 1}
    assert r.violations.counts == {TRUNCATED: 2}
    for chunk in (1, 7, 1000):
        assert same_events(Aedat2Reader(path, chunk_events=chunk).read_all(), ev)


def test_aedat2_davis_equals_tonic(tmp_path):
    import tonic.io

    ev = random_events(13, 300, 346, 260, t0=123)
    path = str(write(tmp_path / "d.aedat", header2("eu.seebetter.ini.chips.davis.Davis346red")
                     + records2(davis_address(ev), ev["t"])))
    _, _, ref = tonic.io.read_davis_346(path)
    assert same_events(Aedat2Reader(path).read_all(), ref)


def test_aedat2_dvs128_layout_and_time_going_back(tmp_path):
    ev = random_events(14, 100, 128, 128, t0=50)
    ev["t"][60] = 10  # a timestamp reset: kept, counted
    x, y, p = (ev[k].astype(np.uint32) for k in "xyp")
    a = ((127 - y) << 8) | ((127 - x) << 1) | (1 - p)  # jAER: x flipped, y up, ON = bit 0 clear
    head = header2("ch.unizh.ini.jaer.chip.retina.DVS128")
    data = head + records2(np.append(a, 0x8000), np.append(ev["t"], 999))
    r = Aedat2Reader(write(tmp_path / "d.aedat", data))
    assert (r.layout, r.width, r.height) == ("dvs128", 128, 128)
    assert same_events(r.read_all(), ev)
    assert r.violations.counts == {NON_MONOTONIC_TIME: 1} and r.skipped == {"external_event": 1}
    assert r.violations.first_offset[NON_MONOTONIC_TIME] == len(head) + 60 * 8


def test_aedat2_unknown_chip_needs_a_sensor(tmp_path):
    path = write(tmp_path / "u.aedat", header2(None) + records2(np.array([2 << 1]), np.array([5])))
    with pytest.raises(EventFormatError, match="sensor="):
        Aedat2Reader(path)
    with pytest.raises(EventFormatError, match="width and height"):
        Aedat2Reader(path, sensor="davis")
    assert Aedat2Reader(path, sensor="dvs128").read_all()["x"].tolist() == [125]
    assert Aedat2Reader(path, sensor="davis", width=346, height=260).read_all()["x"].tolist() == [345]


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=300), cut=st.integers(0, 400))
def test_aedat2_garbage_and_truncation(scratch, garbage, cut):
    head = header2("eu.seebetter.ini.chips.davis.Davis346red")
    ev = random_events(15, 40, 346, 260)
    data = head + records2(davis_address(ev), ev["t"])
    out = decode_or_error(write(scratch / "c2.aedat", data[:len(head) + cut]), Aedat2Reader)
    assert same_events(out[0], ev[:len(out[0])]) and (TRUNCATED in out[1]) == (min(cut, 320) % 8 != 0)
    decode_or_error(write(scratch / "g2.aedat", head + garbage), Aedat2Reader)
