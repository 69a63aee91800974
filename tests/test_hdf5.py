"""Metavision HDF5: the real ECF file against evt3, writer output against the real file's layout,
round trips, seeking, other compressions, and broken files that must raise naming the file."""
from __future__ import annotations

import os
import tempfile

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.errors import EventFormatError
from eventflow.events import EVENT_DTYPE, concatenate, empty
from eventflow.formats.hdf5 import ECF_TRAILING_BYTES, INDEX_DTYPE, TRIGGER_DTYPE, Hdf5Reader, Hdf5Writer
from eventflow.kernels import ecf

from .conftest import real

REAL_ECF = "evt3_gen41_219k_ecf.hdf5"


@pytest.fixture(scope="module")
def real_events():
    return Hdf5Reader(real(REAL_ECF)).read_all()


def same(a, b):
    return len(a["x"]) == len(b["x"]) and all(np.array_equal(np.asarray(a[k], np.int64), np.asarray(b[k], np.int64))
                                    for k in "xypt")


def random_events(n, seed=0, t0=1_000_000, gap=30):
    rng = np.random.default_rng(seed)
    ev = empty(n)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 1280, n), rng.integers(0, 720, n), rng.integers(0, 2, n)
    ev["t"] = t0 + np.cumsum(rng.integers(0, gap, n))
    return ev


def write(path, events, splits=(), **options):
    with Hdf5Writer(path, width=1280, height=720, **options) as w:
        for part in np.split(events, sorted(splits)):
            w.write(part)
    return path


def metavision_index(t, period=2000):
    """/CD/indexes as Metavision's IndexesWriter loop builds it, event by event (time-sorted t)."""
    rows, count, index, last = [], 0, (0, -1), (0, -1)
    offset = -int(t[0])
    for ev_id, ti in enumerate(t):
        rel = int(ti) + offset
        while rel // period + 1 > count:
            if ev_id != index[0]:
                last = index
            rows.append(last)
            count += 1
            index = (ev_id, rel)
    return rows + [index], offset


# -- the real file ------------------------------------------------------------------
def test_real_file_equals_evt3_decode_of_the_raw_recording(real_events):
    evt3 = pytest.importorskip("evt3")

    r = eventflow.open(real(REAL_ECF))
    assert (r.format, r.ecf, r.event_count, r.width, r.height) == ("hdf5", True, 219_596, None, None)
    assert r.metadata["version"] == "1.0"
    raw = evt3.decode_file(str(real("evt3_gen41_219k.raw")))
    assert same(real_events, {k: np.asarray(getattr(raw, k)) for k in "xypt"})
    assert (real_events["t"][0], real_events["t"][-1]) == (11_718_656, 11_727_457)
    assert not r.violations
    assert Hdf5Reader(real(REAL_ECF), width=1280, height=720).width == 1280


def test_real_file_seek_equals_filtering(real_events):
    r = Hdf5Reader(real(REAL_ECF))
    for t in [0, 11_718_656, 11_718_657, 11_720_000, 11_722_001, 11_727_457, 11_727_458]:
        assert same(r.seek(t).read_all(), real_events[real_events["t"] >= t])


def test_writer_reproduces_the_real_files_layout(tmp_path, real_events):
    path = write(tmp_path / "w.hdf5", real_events, splits=[1, 16384, 50_000, 50_001])
    with h5py.File(path, "r") as ours, h5py.File(real(REAL_ECF), "r") as theirs:
        for name in ("CD/events", "CD/indexes", "EXT_TRIGGER/events", "EXT_TRIGGER/indexes"):
            a, b = ours[name], theirs[name]
            assert (a.dtype, a.chunks, a.maxshape) == (b.dtype, b.chunks, b.maxshape), name
        assert ours["EXT_TRIGGER/events"].dtype == TRIGGER_DTYPE and ours["EXT_TRIGGER/events"].shape == (0,)
        assert ours["CD/indexes"][:].tolist() == theirs["CD/indexes"][:].tolist()
        assert ours["CD/indexes"].attrs["offset"] == theirs["CD/indexes"].attrs["offset"] == "-11718656"
        assert ours["CD/events"].id.get_create_plist().get_filter(0)[:3] == (ecf.FILTER_ID, 1, ())
        mine, stored = ours["CD/events"].id, theirs["CD/events"].id
        for k in range(13):  # full chunks byte for byte; the last one is Metavision-style (short)
            assert mine.read_direct_chunk((k * 16384,)) == stored.read_direct_chunk((k * 16384,))
        assert ecf.read_header(mine.read_direct_chunk((13 * 16384,))[1])[0] == 219_596 - 13 * 16384
        for key, value in {"version": "1.0", "geometry": "1280x720", "width": "1280", "height": "720"}.items():
            attr = ours.attrs.get_id(key)
            assert attr.get_type().is_variable_str() and attr.get_type().get_cset() == h5py.h5t.CSET_ASCII
            assert ours.attrs[key] == value
    assert same(Hdf5Reader(path).read_all(), real_events)


# -- round trips --------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 700), st.lists(st.integers(0, 700), max_size=5), st.sampled_from(["ecf", None]),
       st.integers(0, 2**31))
def test_round_trip_any_split_of_the_writes(n, splits, compression, seed):
    ev = random_events(n, seed, gap=400)
    with tempfile.TemporaryDirectory() as d:
        path = write(os.path.join(d, "r.hdf5"), ev, [s for s in splits if s <= n], compression=compression,
                     chunk_length=64)
        back = Hdf5Reader(path).read_all()
        assert back.dtype == EVENT_DTYPE and same(back, ev)
        with h5py.File(path, "r") as f:
            rows, offset = metavision_index(ev["t"]) if n else ([], None)
            assert [tuple(r) for r in f["CD/indexes"][:].tolist()] == rows
            if n:
                assert f["CD/indexes"].attrs["offset"] == str(offset)
            if compression is None:  # plain h5py reads it without eventflow
                assert f["CD/events"][:].tobytes() == ev.tobytes()


def test_round_trip_full_chunks_and_other_compressions(tmp_path):
    ev = random_events(40_000, seed=3)
    for compression in ("ecf", None, "gzip", "lzf"):
        path = write(tmp_path / f"{compression}.hdf5", ev, [100, 20_000], compression=compression)
        r = eventflow.open(path)
        assert (r.width, r.height, r.ecf) == (1280, 720, compression == "ecf")
        assert same(r.read_all(), ev)


def test_files_written_by_h5py_alone(tmp_path):
    ev = random_events(5000, seed=4)
    packed = np.zeros(len(ev), [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "<u1")])
    for k in "xyt":
        packed[k] = ev[k]
    packed["polarity"] = ev["p"]
    for compression, data in [("gzip", ev), ("lzf", ev), (None, packed), ("gzip", packed)]:
        path = tmp_path / f"{compression}_{data.dtype.itemsize}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("CD/events", data=data, chunks=(1000,), compression=compression)
            f.attrs["geometry"] = "1280x720"
        r = Hdf5Reader(path, chunk_events=777)
        assert (r.ecf, r.width, r.height) == (False, 1280, 720)
        assert all(len(part) <= 777 for part in r) and same(r.read_all(), ev)
        assert same(r.seek(int(ev["t"][2500])).read_all(), ev[ev["t"] >= ev["t"][2500]])


def test_raw_chunks_with_the_filter_skipped_are_read_as_records(tmp_path):
    ev = random_events(100, seed=5)
    path = write(tmp_path / "m.hdf5", ev, chunk_length=64)
    with h5py.File(path, "r+") as f:
        f["CD/events"].id.write_direct_chunk((0,), ev[:64].tobytes(), 1)  # filter mask: ECF skipped
    assert same(Hdf5Reader(path).read_all(), ev)


# -- reading options ----------------------------------------------------------------
@pytest.mark.parametrize("chunk_events", [1, 7, 64, 1000, 1 << 20])
def test_chunk_size_independence(tmp_path, chunk_events):
    ev = random_events(3000, seed=6)
    path = write(tmp_path / "c.hdf5", ev, chunk_length=256)
    parts = list(Hdf5Reader(path, chunk_events=chunk_events))
    assert max(len(p) for p in parts) <= chunk_events and same(concatenate(parts), ev)


@settings(max_examples=40, deadline=None)
@given(st.integers(-5000, 800_000), st.booleans(), st.sampled_from(["ecf", None]))
def test_seek_equals_filtering(t, with_index, compression):
    ev = random_events(5000, seed=8, gap=300)  # about 750 ms: index rows and several chunks
    with tempfile.TemporaryDirectory() as d:
        path = write(os.path.join(d, "s.hdf5"), ev, compression=compression, chunk_length=512)
        if not with_index:  # binary search over chunk first times instead
            with h5py.File(path, "r+") as f:
                del f["CD/indexes"]
        t = int(ev["t"][0]) + t
        assert same(Hdf5Reader(path).seek(t).read_all(), ev[ev["t"] >= t])


def test_index_across_long_gaps_and_split_writes(tmp_path):
    t = np.array([10, 10, 11, 4000, 4001, 4001, 90_000, 90_001, 200_000_000], np.int64)
    ev = empty(len(t))
    ev["t"] = t
    path = write(tmp_path / "g.hdf5", ev, splits=[3, 4, 7])
    with h5py.File(path, "r") as f:
        rows = f["CD/indexes"][:]
    assert [tuple(r) for r in rows.tolist()] == metavision_index(t)[0]
    assert len(rows) == (200_000_000 - 10) // 2000 + 2
    assert same(Hdf5Reader(path).seek(90_001).read_all(), ev[7:])


# -- what the writer refuses ----------------------------------------------------------
@pytest.mark.parametrize("field,value,match", [("x", 5000, "x=5000"), ("p", -1, "p=-1"), ("t", -5, "t=-5"),
                                               ("t", 0, "below the previous")])
def test_ecf_writer_refuses_what_it_cannot_store(tmp_path, field, value, match):
    ev = random_events(10, seed=9)
    ev[field][4] = value
    with pytest.raises(EventFormatError, match=match), Hdf5Writer(tmp_path / "bad.hdf5") as w:
        w.write(ev)
    with Hdf5Writer(tmp_path / "plain.hdf5", compression=None) as w:  # stores them as they are
        w.write(ev)
    assert same(Hdf5Reader(tmp_path / "plain.hdf5").read_all(), ev)


# -- broken files ---------------------------------------------------------------------
def corrupt_chunk(path, k, fill):
    with h5py.File(path, "r") as f:
        info = f["CD/events"].id.get_chunk_info(k)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + (12 if fill == b"\0" else 0))
        fh.write(fill * (info.size - (12 if fill == b"\0" else 0)))
    return info.byte_offset


@pytest.mark.parametrize("fill", [b"\xff", b"\0"])
def test_corrupt_ecf_chunk_names_the_file_and_the_chunk(tmp_path, fill):
    path = write(tmp_path / "x.hdf5", random_events(1000, seed=10), chunk_length=256)
    byte_offset = corrupt_chunk(path, 2, fill)
    with pytest.raises(EventFormatError, match="chunk 2") as e:
        Hdf5Reader(path).read_all()
    assert e.value.path == str(path) and e.value.offset >= byte_offset


def test_inconsistent_short_chunk_and_missing_chunk_raise(tmp_path):
    ev = random_events(300, seed=11)
    path = write(tmp_path / "s.hdf5", ev, chunk_length=128)
    with h5py.File(path, "r+") as f:
        f["CD/events"].id.write_direct_chunk((128,), ecf.encode_chunk(ev[128:200]), 0)
    with pytest.raises(EventFormatError, match="holds 72 events, the dataset extent needs 128"):
        Hdf5Reader(path).read_all()
    path = write(tmp_path / "m.hdf5", ev[:256], chunk_length=128)
    with h5py.File(path, "r+") as f:
        f["CD/events"].id.set_extent((1000,))
    with pytest.raises(EventFormatError, match="claims 1000 events, 8 chunks of 128, but the file stores 2 chunks"):
        Hdf5Reader(path).read_all()


@pytest.mark.parametrize("compression", ["ecf", None, "gzip", "contiguous"])
def test_an_extent_the_file_does_not_store_is_refused_before_any_allocation(tmp_path, compression):
    """A small file whose dataset claims 2**42 events (64 TiB) must not size an array by it, nor
    read its unwritten chunks as zero events."""
    path = tmp_path / "huge.h5"
    if compression == "contiguous":
        with h5py.File(path, "w") as f:
            f.create_dataset("CD/events", shape=(1 << 42,), dtype=EVENT_DTYPE)   # allocated late: no bytes stored
    else:
        write(path, random_events(5), compression=compression)
        with h5py.File(path, "r+") as f:
            f["CD/events"].id.set_extent((1 << 42,))
    assert os.path.getsize(path) < 1 << 20
    with pytest.raises(EventFormatError, match=r"/CD/events claims 4398046511104 events") as e:
        Hdf5Reader(path).read_all()
    assert e.value.path == str(path)


def test_events_past_the_extent_in_the_last_ecf_chunk_are_counted_unless_fill(tmp_path):
    ev = random_events(128, seed=13)
    ev["x"] = np.maximum(ev["x"], 1)   # no record looks like fill
    path = write(tmp_path / "s.hdf5", ev[:100], chunk_length=64)
    r = Hdf5Reader(path)
    assert same(r.read_all(), ev[:100]) and r.violations.counts == {}   # the writer's fill is not counted
    with h5py.File(path, "r+") as f:
        f["CD/events"].id.write_direct_chunk((64,), ecf.encode_chunk(ev[64:128]), 0)
    r = Hdf5Reader(path)
    assert same(r.read_all(), ev[:100]) and r.violations.counts == {"ecf_surplus_events": 28}


def test_trailing_bytes_are_counted(tmp_path):
    ev = random_events(100, seed=12)
    path = write(tmp_path / "t.hdf5", ev, chunk_length=64)
    with h5py.File(path, "r+") as f:
        f["CD/events"].id.write_direct_chunk((0,), ecf.encode_chunk(ev[:64]) + b"junk", 0)
    r = Hdf5Reader(path)
    assert same(r.read_all(), ev) and r.violations.counts == {ECF_TRAILING_BYTES: 1}
    with pytest.raises(EventFormatError, match="strict"):
        Hdf5Reader(path, strict=True).read_all()


def test_not_hdf5_missing_dataset_and_wrong_type(tmp_path):
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(EventFormatError, match="not a readable HDF5 file") as e:
        Hdf5Reader(junk)
    assert e.value.path == str(junk)
    for name, data in [("other/events", np.zeros(3, EVENT_DTYPE)), ("CD/events", np.zeros(3, np.int64)),
                       ("CD/events", np.zeros(3, INDEX_DTYPE))]:
        path = tmp_path / "wrong.h5"
        with h5py.File(path, "w") as f:
            f[name] = data
        with pytest.raises(EventFormatError, match="CD/events") as e:
            Hdf5Reader(path)
        assert e.value.path == str(path)


@pytest.mark.parametrize("compression", ["ecf", None])
def test_out_of_bounds_events_are_counted_where_they_lie(tmp_path, compression):
    ev = random_events(1000, seed=13)
    path = write(tmp_path / "o.hdf5", ev, compression=compression, chunk_length=256)
    with h5py.File(path, "r+") as f:
        f.attrs.modify("geometry", "640x720")  # the geometry attribute wins over width/height
        chunk = f["CD/events"].id.get_chunk_info(0).byte_offset
    r = Hdf5Reader(path)
    assert same(r.read_all(), ev[ev["x"] < 640])
    first = int(np.argmax(ev["x"] >= 640))
    # ECF knows the chunk only; uncompressed records lie at a known place
    assert r.violations.first_offset["out_of_bounds"] == chunk + (0 if compression else 16 * first)
