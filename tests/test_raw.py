"""Prophesee RAW EVT 2.0 / 3.0 and DAT: real files, independent decoders, kernels vs references,
split independence, round trips, glitches and garbage."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.errors import EventFormatError
from eventflow.events import concatenate
from eventflow.formats.raw import Evt2Decoder, Evt3Decoder
from eventflow.formats.reader import count_events
from eventflow.kernels import dat as KD
from eventflow.kernels import evt as K
from eventflow.kernels import evt3_groups
from eventflow.kernels.evt3_encode import encode_evt3_reference

from .conftest import real

# both EVT 3.0 kernels, whatever the machine picks by default: the grouped one needs LLVM 19 or newer
EVT3_KERNELS = ["plain", pytest.param("grouped", marks=pytest.mark.skipif(
    not evt3_groups.COMPILES, reason="llvm.experimental.vector.compress needs LLVM 19 or newer"))]

REAL_COUNTS = [
    # file, format, width, height, events, t_first, t_last
    ("evt3_gen41_219k.raw", "evt3", 1280, 720, 219_596, 11_718_656, 11_727_457),
    ("evt3_gen41_5000.raw", "evt3", 1280, 720, 5_000, 5_840_504, 5_885_714),
    ("evt2_gen3_539k.raw", "evt2", 640, 480, 539_481, 1_317_888, 1_367_888),
    ("evt2_gen3_521k.raw", "evt2", 640, 480, 521_252, 913_716_224, 913_812_095),
    ("ncars_4407.dat", "dat", None, None, 4_407, 0, 99_937),
    ("ncars_2009.dat", "dat", None, None, 2_009, 0, 99_952),
]


def same_events(a, b):
    return len(a["x"]) == len(b["x"]) and all(np.array_equal(np.asarray(a[k]).astype(np.int64),
                                                   np.asarray(b[k]).astype(np.int64)) for k in "xypt")


@pytest.mark.parametrize("name,fmt,w,h,n,t0,t1", REAL_COUNTS)
def test_real_files_decode_to_their_counts(name, fmt, w, h, n, t0, t1):
    r = eventflow.open(real(name))
    assert (r.format, r.width, r.height) == (fmt, w, h)
    info = count_events(r)
    assert (info["events"], info["t_first_us"], info["t_last_us"]) == (n, t0, t1)
    assert info["t_min_us"] == t0 and info["t_max_us"] == t1  # times never decrease in these files


@pytest.mark.parametrize("name", ["evt3_gen41_219k.raw", "evt3_gen41_5000.raw"])
def test_evt3_equals_the_evt3_package(name):
    evt3 = pytest.importorskip("evt3")
    ref = evt3.decode_file(str(real(name)))
    ours = eventflow.open(real(name)).read_all()
    assert same_events(ours, {"x": ref.x, "y": ref.y, "p": ref.p, "t": ref.t})


@pytest.mark.parametrize("name,encoding", [("evt2_gen3_539k.raw", "evt2"), ("evt2_gen3_521k.raw", "evt2"),
                                           ("ncars_4407.dat", "dat"), ("ncars_2009.dat", "dat")])
def test_evt2_and_dat_equal_expelliarmus(name, encoding):
    expelliarmus = pytest.importorskip("expelliarmus")
    ref = expelliarmus.Wizard(encoding=encoding, fpath=str(real(name))).read()
    assert same_events(eventflow.open(real(name)).read_all(), ref)


def test_dat_equals_its_npy_reference():
    ref = np.load(real("ncars_4407.npy"))
    assert same_events(eventflow.open(real("ncars_4407.dat")).read_all(), ref)


def test_evt3_glitch_is_counted_not_rejected_and_strict_raises_at_its_offset():
    r = eventflow.open(real("evt3_gen41_219k.raw"))
    ev = r.read_all()
    assert len(ev) == 219_596
    assert r.violations.counts == {"time_low_decrease": 9}
    off = r.violations.first_offset["time_low_decrease"]
    with open(real("evt3_gen41_219k.raw"), "rb") as f:
        f.seek(off)
        word = int.from_bytes(f.read(2), "little")
    assert word >> 12 == 6  # the offset points at the offending TIME_LOW word
    with pytest.raises(EventFormatError, match=rf"evt3_gen41_219k.raw: byte {off}: .*time_low_decrease"):
        eventflow.open(real("evt3_gen41_219k.raw"), strict=True).read_all()


# -- kernels against their references ------------------------------------------------------

def _words(path, dtype):
    r = eventflow.open(path)
    return np.fromfile(path, dtype=np.uint8)[r.header.data_offset:].view(dtype)


def _kernel_decode(decoder_cls, words, **kw):
    dec = decoder_cls(**kw)
    ev = dec.feed(words.tobytes())
    counts = {n: int(c) for n, c in zip(K.VIOLATION_NAMES, dec.counts) if c}
    return ev, counts


def _as_list(ev):
    return list(zip(ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist(), ev["t"].tolist()))


@pytest.mark.parametrize("kernel", EVT3_KERNELS)
@pytest.mark.parametrize("name", ["evt3_gen41_5000.raw", "evt3_gen41_219k.raw"])
def test_evt3_kernel_equals_reference_on_real_files(name, kernel):
    words = _words(real(name), "<u2")
    ev, counts = _kernel_decode(Evt3Decoder, words, width=1280, height=720, kernel=kernel)
    ref, ref_counts, _ = K.decode_evt3_reference(words, 1280, 720)
    assert _as_list(ev) == ref and counts == ref_counts


def test_evt2_kernel_equals_reference_on_a_real_file():
    words = _words(real("evt2_gen3_521k.raw"), "<u4")[:200_000]
    ev, counts = _kernel_decode(Evt2Decoder, words, width=640, height=480)
    ref, ref_counts, _ = K.decode_evt2_reference(words, 640, 480)
    assert _as_list(ev) == ref and counts == ref_counts


# words biased towards the interesting types
evt3_words = st.lists(st.tuples(st.sampled_from([0, 2, 3, 4, 5, 6, 8, 6, 2, 0x1, 0x7, 0xA, 0xE, 0xF, 0xC]),
                                st.integers(0, 0xFFF)).map(lambda tv: (tv[0] << 12) | tv[1]),
                      max_size=300)
evt2_words = st.lists(st.tuples(st.sampled_from([0, 1, 8, 8, 0xA, 0xE, 0xF, 3]),
                                st.integers(0, 0x0FFFFFFF)).map(lambda tv: (tv[0] << 28) | tv[1]),
                      max_size=300)


@pytest.mark.parametrize("kernel", EVT3_KERNELS)
@settings(max_examples=200, deadline=None)
@given(evt3_words, st.sampled_from([(1280, 720), (64, 48), (None, None)]))
def test_evt3_kernel_equals_reference_on_random_words(kernel, words, geom):
    w = np.array(words, dtype="<u2")
    ev, counts = _kernel_decode(Evt3Decoder, w, width=geom[0], height=geom[1], kernel=kernel)
    ref, ref_counts, _ = K.decode_evt3_reference(w, geom[0] or 1 << 16, geom[1] or 1 << 16)
    assert _as_list(ev) == ref and counts == ref_counts


@settings(max_examples=200, deadline=None)
@given(evt2_words, st.sampled_from([(640, 480), (None, None)]))
def test_evt2_kernel_equals_reference_on_random_words(words, geom):
    w = np.array(words, dtype="<u4")
    ev, counts = _kernel_decode(Evt2Decoder, w, width=geom[0], height=geom[1])
    ref, ref_counts, _ = K.decode_evt2_reference(w, geom[0] or 1 << 16, geom[1] or 1 << 16)
    assert _as_list(ev) == ref and counts == ref_counts


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=200),
       st.integers(1, 50))
def test_dat_kernel_equals_reference(records, block):
    rec = np.array(records, dtype="<u4").reshape(-1, 2)
    state = KD.new_state()
    counts, first = np.zeros(2, np.int64), np.zeros(2, np.int64)
    parts = []
    for i in range(0, len(rec), block):  # in blocks: state carries the wraps across
        out = eventflow.empty(len(rec[i:i + block]))
        k = KD.decode_dat(rec[i:i + block].copy().view("<u8").ravel(), out.view(np.uint64), state, counts, first,
                          i, 304, 240)
        parts.append(out[:k])
    ev = np.concatenate(parts) if parts else eventflow.empty(0)
    x, y, p, t, oob = KD.decode_dat_reference(rec, 304, 240)
    assert same_events(ev, {"x": x, "y": y, "p": p, "t": t}) and counts[0] == oob


# -- split independence ------------------------------------------------------------------

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=40))
def test_evt3_decoder_any_split_gives_identical_events(cuts):
    data = np.fromfile(real("evt3_gen41_5000.raw"), dtype=np.uint8)
    data = data[eventflow.open(real("evt3_gen41_5000.raw")).header.data_offset:].tobytes()
    whole = Evt3Decoder(width=1280, height=720).feed(data)
    dec = Evt3Decoder(width=1280, height=720, max_events=64)
    parts, pos = [], 0
    for c in cuts:
        parts.append(dec.feed(data[pos:pos + c]))
        pos += c
    parts.append(dec.feed(data[pos:]))
    assert same_events(np.concatenate(parts), whole)


@pytest.mark.parametrize("name", ["evt2_gen3_539k.raw", "evt3_gen41_219k.raw", "ncars_4407.dat"])
@pytest.mark.parametrize("block", [17, 4096, 100_003])
def test_reader_block_size_does_not_change_events(name, block):
    whole = eventflow.open(real(name)).read_all()
    opt = {"block_records": block} if name.endswith(".dat") else {"block_bytes": block}
    r = eventflow.open(real(name), chunk_events=777, **opt)
    chunks = list(r)
    assert max(len(c) for c in chunks) <= 777
    assert same_events(np.concatenate(chunks), whole)


# -- writer round trips ---------------------------------------------------------------------

@st.composite
def event_streams(draw, max_n=400):
    n = draw(st.integers(0, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ev = eventflow.empty(n)
    dense = draw(st.booleans())  # dense streams produce vector words
    ev["x"] = np.sort(rng.integers(0, 40, n)) if dense else rng.integers(0, 1280, n)
    ev["y"] = rng.integers(0, 3 if dense else 720, n)
    ev["p"] = rng.integers(0, 2, n)
    gaps = rng.choice([0, 0, 1, 7, 5000, 2**25], size=n, p=[.4, .2, .2, .1, .07, .03])
    ev["t"] = draw(st.integers(0, 2**40)) + np.cumsum(gaps)
    if dense:
        order = np.lexsort((ev["x"], ev["p"], ev["y"], ev["t"]))
        ev = ev[order]
    return ev


@settings(max_examples=60, deadline=None)
@given(event_streams(), st.integers(1, 500))
def test_evt3_writer_round_trips_exactly(tmp_path_factory, ev, write_chunk):
    path = tmp_path_factory.mktemp("rt") / "out.raw"
    with eventflow.writer_for(path, width=1280, height=720) as w:
        for i in range(0, len(ev), write_chunk):
            w.write(ev[i:i + write_chunk])
    r = eventflow.open(path)
    assert (r.format, r.width, r.height) == ("evt3", 1280, 720)
    back = r.read_all()
    assert same_events(back, ev) and not r.violations


def test_evt3_written_file_is_read_by_independent_readers(tmp_path):
    ev = eventflow.open(real("evt3_gen41_219k.raw")).read_all()
    path = tmp_path / "copy.raw"
    eventflow.write(path, ev, width=1280, height=720)
    assert path.stat().st_size < 1.5 * real("evt3_gen41_219k.raw").stat().st_size  # vectors used
    evt3 = pytest.importorskip("evt3")
    ref = evt3.decode_file(str(path))
    assert same_events(ev, {"x": ref.x, "y": ref.y, "p": ref.p, "t": ref.t})
    faery = pytest.importorskip("faery")
    got = np.concatenate(list(faery.events_stream_from_file(str(path))))
    assert same_events(ev, {"x": got["x"], "y": got["y"], "p": got["on"], "t": got["t"]})


def test_reference_encoder_decodes_to_the_same_events():
    ev = eventflow.open(real("evt3_gen41_5000.raw")).read_all()
    words = encode_evt3_reference(ev)
    assert same_events(Evt3Decoder(width=1280, height=720).feed(words.tobytes()), ev)


def test_evt3_writer_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(EventFormatError, match="event 1: negative timestamp"):
        eventflow.write(tmp_path / "a.raw", eventflow.from_fields([1, 2], [1, 1], [0, 1], [5, -1]),
                        width=10, height=10)
    with pytest.raises(EventFormatError, match="geometry"):
        eventflow.write(tmp_path / "b.raw", eventflow.from_fields([1], [1], [0], [5]))
    with pytest.raises(EventFormatError, match=r"event 0 at \(12, 1\) lies outside the 10x10"):
        eventflow.write(tmp_path / "c.raw", eventflow.from_fields([12], [1], [0], [5]), width=10, height=10)


# -- glitches, options and garbage ----------------------------------------------------------

def _raw_file(tmp_path, words, header=b"% evt 3.0\n% geometry 64x48\n% end\n", dtype="<u2"):
    p = tmp_path / "g.raw"
    p.write_bytes(header + np.array(words, dtype=dtype).tobytes())
    return p, len(header)


def test_out_of_bounds_events_are_dropped_and_counted_with_offset(tmp_path):
    # TIME_HIGH 0, ADDR_Y 5, ADDR_X 10, ADDR_X 70 (x >= 64), ADDR_Y 50 (y >= 48), ADDR_X 3
    p, hl = _raw_file(tmp_path, [0x8000, 0x0005, 0x200A, 0x2046, 0x0032, 0x2003])
    r = eventflow.open(p)
    ev = r.read_all()
    assert ev[["x", "y"]].tolist() == [(10, 5)]
    assert r.violations.counts == {"out_of_bounds": 2}
    assert r.violations.first_offset["out_of_bounds"] == hl + 6
    with pytest.raises(EventFormatError, match=rf"g.raw: byte {hl + 6}: .*out_of_bounds"):
        eventflow.open(p, strict=True).read_all()


@pytest.mark.parametrize("words, kind, dropped", [
    ([0x8000, 0x3000, 0x4FFF], "missing_addr_y", 12),          # TIME_HIGH, VECT_BASE_X, VECT_12 (12 bits), no ADDR_Y
    ([0x0005, 0x3000, 0x500F], "missing_time_high", 4),        # ADDR_Y, base, VECT_8 with 4 bits, no TIME_HIGH
    ([0x8000, 0x0005, 0x4A05], "invalid_vect_base", 4),        # a VECT_12 with 4 bits before any VECT_BASE_X
    ([0x8000, 0x3000, 0x4000, 0x0005, 0x2001], None, 0),      # an empty vector drops nothing
])
def test_a_dropped_vector_word_counts_each_of_its_events(tmp_path, words, kind, dropped):
    p, _ = _raw_file(tmp_path, words)
    r = eventflow.open(p)
    r.read_all()
    assert r.violations.counts == ({kind: dropped} if kind else {})
    _, ref_counts, _ = K.decode_evt3_reference(np.array(words, np.uint16), 64, 48)
    assert ref_counts == r.violations.counts


def test_time_going_back_is_kept_by_default_and_clamped_or_sorted_on_request(tmp_path):
    # TIME_HIGH 1, TIME_LOW 100, y 1, x 1; TIME_LOW 50, x 2; TIME_LOW 200, x 3
    words = [0x8001, 0x6064, 0x0001, 0x2001, 0x6032, 0x2002, 0x60C8, 0x2003]
    p, _ = _raw_file(tmp_path, words)
    base = 1 << 12
    assert eventflow.open(p).read_all()["t"].tolist() == [base + 100, base + 50, base + 200]
    r = eventflow.open(p, monotonic="clamp")
    assert r.read_all()["t"].tolist() == [base + 100, base + 100, base + 200] and r.time_adjusted == 1
    ev = eventflow.open(p, monotonic="sort").read_all()
    assert ev["t"].tolist() == [base + 50, base + 100, base + 200] and ev["x"].tolist() == [2, 1, 3]


def test_time_high_wrap_is_an_overflow_not_a_glitch(tmp_path):
    words = [0x8FFE, 0x0001, 0x2001, 0x8002, 0x2002]  # 4094 -> 2: a wrap of the 24-bit time
    p, _ = _raw_file(tmp_path, words)
    r = eventflow.open(p)
    assert r.read_all()["t"].tolist() == [4094 << 12, (1 << 24) + (2 << 12)] and not r.violations


def test_truncated_word_is_counted(tmp_path):
    p, hl = _raw_file(tmp_path, [0x8000, 0x0001, 0x2001])
    p.write_bytes(p.read_bytes() + b"\x01")
    r = eventflow.open(p)
    assert len(r.read_all()) == 1 and r.violations.counts == {"truncated": 1}
    assert r.violations.first_offset["truncated"] == hl + 6


def test_raw_without_version_or_with_wrong_extension_gives_clear_errors(tmp_path):
    p = tmp_path / "x.raw"
    p.write_bytes(b"% date today\n% end\n" + b"\0" * 8)
    with pytest.raises(EventFormatError, match="x.raw: byte 0: RAW header gives no EVT version"):
        eventflow.open(p)
    q = tmp_path / "x.unknown"
    q.write_bytes(b"\1\2\3")
    with pytest.raises(EventFormatError, match="unknown extension"):
        eventflow.open(q)
    with pytest.raises(EventFormatError, match="no such file"):
        eventflow.open(tmp_path / "missing.raw")


@pytest.mark.parametrize("lines, message", [
    (b"% format EVT3;height=7x;width=64\n", r"byte 10: header line 'format': expected a width or height of 1\.\.65536, got '7x'"),
    (b"% Width 64\n% Height -5\n", r"byte 21: header line 'Height': .* got '-5'"),
    (b"% format EVT3;height=0;width=64\n", r"byte 10: header line 'format': .* got '0'"),
    (b"% geometry 99999x48\n", r"byte 10: header line 'geometry': .* got '99999'"),
])
def test_a_bad_geometry_in_the_header_names_its_line(tmp_path, lines, message):
    p = tmp_path / "g.raw"
    p.write_bytes(b"% evt 3.0\n" + lines + b"% end\n" + bytes(4))
    with pytest.raises(EventFormatError, match=rf"g.raw: {message}"):
        eventflow.open(p)


def test_a_header_longer_than_4_kib_is_detected_and_read(tmp_path):
    p = tmp_path / "long.raw"
    comments = b"".join(b"% comment " + b"x" * 100 + b"\n" for _ in range(70))     # 7.7 KB of header
    p.write_bytes(b"% evt 3.0\n" + comments + b"% geometry 64x48\n% end\n" + np.array([0x8000, 0x0005, 0x2001], "<u2").tobytes())
    r = eventflow.open(p)
    assert r.format == "evt3" and (r.width, r.height) == (64, 48) and r.read_all()[["x", "y"]].tolist() == [(1, 5)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.sampled_from([b"% evt 3.0\n", b"% evt 2.0\n% geometry 640x480\n% end\n"]))
def test_garbage_after_a_header_never_crashes(tmp_path, data, header):
    p = tmp_path / "garbage.raw"
    p.write_bytes(header + data)
    try:
        r = eventflow.open(p)
        ev = r.read_all()
    except EventFormatError as e:
        assert "garbage.raw" in str(e)
        return
    assert ev.dtype == eventflow.EVENT_DTYPE
    if r.width is not None:
        assert (ev["x"] < r.width).all() and (ev["y"] < r.height).all()


def test_dat_truncated_record_is_counted(tmp_path):
    src = real("ncars_2009.dat").read_bytes()
    p = tmp_path / "cut.dat"
    p.write_bytes(src[:-3])
    r = eventflow.open(p)
    assert len(r.read_all()) == 2008 and r.violations.counts == {"truncated": 1}
    with pytest.raises(EventFormatError, match="cut.dat: byte"):
        eventflow.open(p, strict=True).read_all()


def test_dat_geometry_from_caller_drops_out_of_bounds_with_offset():
    r = eventflow.open(real("ncars_4407.dat"), width=40, height=100)
    ev = r.read_all()
    full = eventflow.open(real("ncars_4407.dat")).read_all()
    assert len(ev) == int((full["x"] < 40).sum()) == len(full) - r.violations.counts["out_of_bounds"]


# -- the vectorised fast paths (blocks of FAST_BLOCK clean words) against the references ----

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 0.02), st.integers(1, 3000))
def test_dat_fast_path_equals_reference(seed, glitch_rate, block):
    rng = np.random.default_rng(seed)
    n = 4000
    t = np.cumsum(rng.integers(0, 50, n)).astype(np.int64) + int(rng.integers(0, 2**32 - 200_000))
    glitch = rng.random(n) < glitch_rate
    t[glitch] -= rng.integers(1, 100, glitch.sum())  # small steps back
    t %= 2**32  # may wrap
    x = rng.integers(0, 304 + (8 if glitch_rate else 0), n)
    d = x | (rng.integers(0, 240, n) << 14) | (rng.integers(0, 2, n) << 28)
    rec = np.stack([t, d], axis=1).astype("<u4")
    state = KD.new_state()
    counts, first = np.zeros(2, np.int64), np.zeros(2, np.int64)
    parts = []
    for i in range(0, n, block):
        out = eventflow.empty(len(rec[i:i + block]))
        k = KD.decode_dat(rec[i:i + block].copy().view("<u8").ravel(), out.view(np.uint64), state, counts,
                          first, i, 304, 240)
        parts.append(out[:k])
    xr, yr, pr, tr, oob = KD.decode_dat_reference(rec, 304, 240)
    assert same_events(np.concatenate(parts), {"x": xr, "y": yr, "p": pr, "t": tr}) and counts[0] == oob


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 0.01))
def test_evt2_fast_path_equals_reference(seed, rate):
    rng = np.random.default_rng(seed)
    n = 5000
    words = (rng.integers(0, 2, n).astype(np.uint32) << 28) | (rng.integers(0, 64, n).astype(np.uint32) << 22) \
        | (rng.integers(0, 640 + (16 if rate else 0), n).astype(np.uint32) << 11) | rng.integers(0, 480, n).astype(np.uint32)
    special = rng.random(n) < rate
    words[special] = (8 << 28) | rng.integers(0, 1 << 28, special.sum()).astype(np.uint32)
    words[::700] = (8 << 28) | np.arange(len(words[::700]), dtype=np.uint32) * 3
    ev, counts = _kernel_decode(Evt2Decoder, words, width=640, height=480)
    ref, ref_counts, _ = K.decode_evt2_reference(words, 640, 480)
    assert _as_list(ev) == ref and counts == ref_counts


def _assert_pieces_equal_reference(words, block, kernel, width=640, height=480):
    """``words`` fed to an Evt3Decoder in pieces of ``block`` words give the reference's events and counts."""
    dec = Evt3Decoder(width=width, height=height, kernel=kernel)
    ev = concatenate([dec.feed(words[i:i + block].tobytes()) for i in range(0, len(words), block)])
    counts = {name: int(c) for name, c in zip(K.VIOLATION_NAMES, dec.counts) if c}
    ref, ref_counts, _ = K.decode_evt3_reference(words, width, height)
    assert _as_list(ev) == ref and counts == ref_counts


@pytest.mark.parametrize("kernel", EVT3_KERNELS)
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 0.01), st.integers(1, 5000))
def test_evt3_camera_like_streams_with_glitches_equal_reference(kernel, seed, rate, block):
    # ADDR_Y / ADDR_X / TIME_LOW streams (how cameras and expelliarmus write), with rare glitches: TIME_LOW
    # going back, out-of-bounds addresses, and the other word types, decoded in pieces of `block` words
    rng = np.random.default_rng(seed)
    n = 6000
    typ = rng.choice([0, 2, 2, 6], n)
    pay = np.where(typ == 0, rng.integers(0, 480, n), rng.integers(0, 640, n) | (rng.integers(0, 2, n) << 11))
    tl = np.cumsum(typ == 6) % 4096                      # non-decreasing until it wraps at a TIME_HIGH
    pay = np.where(typ == 6, tl, pay)
    odd = rng.random(n) < rate
    typ = np.where(odd, rng.choice([0, 2, 3, 4, 5, 6, 7, 8, 0xA, 0xE, 0xF, 0xC], n), typ)
    pay = np.where(odd, rng.integers(0, 0x1000, n), pay)
    words = ((typ << 12) | pay).astype("<u2")
    words[::1500] = (8 << 12) | (np.arange(len(words[::1500])) * 7 % 4096)   # TIME_HIGH
    _assert_pieces_equal_reference(words, block, kernel)


# -- the EVT 3.0 vector group on its own ---------------------------------------------------

if evt3_groups.COMPILES:
    from numba import njit

    @njit(cache=False)
    def _one_group(words, out, y, tl, floor, t_high, width, height):
        return evt3_groups.evt3_group(words, 0, out, 0, y, tl, floor, t_high, width, height)


GEOMETRIES = [(640, 480), (1280, 720), (1 << 16, 1 << 16)]


@st.composite
def group_cases(draw):
    """A group of ADDR_Y / ADDR_X / rising TIME_LOW words inside the geometry, a carried state,
    and at most one spoiler: another word type, a TIME_LOW going back, an address outside the
    geometry, a carried row that is missing or outside."""
    G = evt3_groups.GROUP
    w, h = draw(st.sampled_from(GEOMETRIES))
    wx, hy = min(w, 2048), min(h, 2048)
    th, ovf = draw(st.integers(0, 0xFFF)), draw(st.integers(0, 2))
    under = ovf * K.EVT3_TIME_HIGH_RANGE + th
    tl = draw(st.integers(0, 0xFFF))
    low_under = draw(st.sampled_from([under, -1]))
    y = draw(st.integers(0, hy - 1))
    low = tl
    words = []
    for kind in draw(st.lists(st.sampled_from("yxxt"), min_size=G, max_size=G)):
        if kind == "y":
            words.append(draw(st.integers(0, hy - 1)))
        elif kind == "x":
            words.append((2 << 12) | (draw(st.integers(0, 1)) << 11) | draw(st.integers(0, wx - 1)))
        else:
            low = min(low + draw(st.integers(0, 40)), 0xFFF)
            words.append((6 << 12) | low)
    spoil = draw(st.sampled_from(["none", "none", "type", "time", "x", "y", "row missing", "row outside"]))
    at = draw(st.integers(0, G - 1))
    if spoil == "type":
        words[at] = (draw(st.sampled_from([1, 3, 4, 5, 7, 8, 0xA, 0xC, 0xE, 0xF])) << 12) | draw(st.integers(0, 0xFFF))
    elif spoil == "time":
        words[at] = 6 << 12 | draw(st.integers(0, 0xFFF))
    elif spoil == "x":
        words[at] = (2 << 12) | draw(st.integers(min(wx, 2047), 2047))
    elif spoil == "y":
        words[at] = draw(st.integers(min(hy, 2047), 2047))
    elif spoil == "row missing":
        y = -1
    elif spoil == "row outside":
        y = draw(st.integers(min(hy, 2047), 2047))
    return np.array(words, np.uint16), (w, h), (th, ovf, tl, low_under, y)


@pytest.mark.skipif(not evt3_groups.COMPILES, reason="needs LLVM 19 or newer")
@settings(max_examples=400, deadline=None)
@given(group_cases())
def test_evt3_group_equals_the_plain_decoder_or_refuses(case):
    """One vector group against the plain decoder (itself checked against the reference) from
    the same carried state: where the plain decoder decodes the words with no violation, the
    group writes the same events and leaves the same row and TIME_LOW; otherwise it refuses."""
    words, (w, h), (th, ovf, tl, low_under, y) = case
    state = K.new_state("evt3")
    state[[K.S3_TIME_HIGH, K.S3_OVERFLOWS, K.S3_TIME_LOW, K.S3_LOW_UNDER, K.S3_Y, K.S3_HAVE_TIME_HIGH]] = \
        [th, ovf, tl, low_under, y, 1]
    counts, first = np.zeros(K.N_VIOLATIONS, np.int64), np.full(K.N_VIOLATIONS, -1, np.int64)
    plain = np.zeros(2 * (len(words) + 12), np.uint64)
    k_plain, _ = K.decode_evt3(words, plain, state, counts, first, 0, w, h)
    under = ovf * K.EVT3_TIME_HIGH_RANGE + th
    floor = tl if low_under == under else -1
    out = np.zeros(2 * len(words), np.uint64)
    failed, k, y_after, tl_after, low_set = _one_group(words, out, y, tl, floor, under << 12,
                                                      min(w, 1 << 16), min(h, 1 << 16))
    refuse = counts.any() or not np.isin(words >> 12, [0, 2, 6]).all()
    assert failed == refuse
    if not refuse:
        assert k == k_plain and np.array_equal(out[:2 * k], plain[:2 * k_plain])
        assert (y_after, tl_after) == (state[K.S3_Y], state[K.S3_TIME_LOW])
        assert low_set == (words >> 12 == 6).any()


def test_evt3_group_refuses_strided_words():
    if not evt3_groups.COMPILES:
        pytest.skip("needs LLVM 19 or newer")
    from numba.core.errors import TypingError
    with pytest.raises(TypingError, match="C-contiguous"):
        _one_group(np.zeros(2 * evt3_groups.GROUP, np.uint16)[::2], np.zeros(64, np.uint64), 0, 0, -1, 0, 640, 480)


@pytest.mark.parametrize("kernel", EVT3_KERNELS)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 700))
def test_evt3_sparse_time_lows_going_back_equal_reference(kernel, seed, block):
    """Rows and columns with a TIME_LOW now and then, often lower than the one before, and a TIME_HIGH
    once in a while: the first TIME_LOW after a TIME_HIGH often falls inside a vector group, and
    whether a later one counts as going back depends on what that group left in the state."""
    rng = np.random.default_rng(seed)
    n = 1500
    typ = rng.choice([0, 2, 6, 8], n, p=[0.45, 0.5, 0.045, 0.005])
    pay = np.where(typ == 0, rng.integers(0, 480, n), rng.integers(0, 640, n) | (rng.integers(0, 2, n) << 11))
    pay = np.where(typ == 6, rng.integers(0, 4096, n), pay)
    pay = np.where(typ == 8, np.cumsum(typ == 8) % 4096, pay)
    words = ((typ << 12) | pay).astype("<u2")
    words[0] = 8 << 12
    _assert_pieces_equal_reference(words, block, kernel)
