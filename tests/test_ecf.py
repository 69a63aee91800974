"""ECF chunk codec: the specification's worked examples, the real file's chunks byte for byte,
numba kernels against the plain references on random chunks, and garbage that must raise."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventflow.errors import EventFormatError
from eventflow.events import EVENT_DTYPE, empty, from_fields
from eventflow.kernels import ecf

from .conftest import real

U64 = 1 << 64

# (events as x, y, p, t; the stored chunk) from the specification, section 8
WORKED_EXAMPLES = [
    (([1], [2], [0], [4]), "06000000 0400000000000000 01 00022000 00000000 00000000"),
    (([100, 5, 640, 1279, 3], [7, 7, 7, 8, 8], [1, 0, 1, 1, 0], [1000, 1000, 1003, 1003, 1040]),
     "15000000 e803000000000000 02 32 f5 f2 01 e300 0201 9a0c 0100 ff59 6000 0000 0000"),
    (([10, 11, 12, 14, 15, 40, 41], [5] * 6 + [6], [1, 1, 1, 0, 0, 0, 0], [1000, 1000] + [1001] * 4 + [70000]),
     "1c000000 e803000000000000 02 14 f7 f8 fd f0 f1 01 a600 c100 5b01 1005 83 04"),
]


def chunk(hexes: str) -> bytes:
    return bytes.fromhex(hexes.replace(" ", ""))


def both_decoders(data, max_events=ecf.MAX_CHUNK_EVENTS):
    """The outcome of the numba and the reference decoder, which must agree exactly."""
    outcomes = []
    for decode in (ecf.decode_chunk, ecf.decode_chunk_reference):
        try:
            ev, end = decode(data, max_events, with_end=True)
            outcomes.append(("events", ev.tobytes(), end))
        except EventFormatError as e:
            outcomes.append(("error", e.message, e.offset))
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


def roundtrip(ev):
    """Encode with both encoders (equal), decode with both decoders (equal); the decoded events."""
    data = ecf.encode_chunk(ev)
    assert data == ecf.encode_chunk_reference(ev)
    kind, raw, end = both_decoders(data)
    assert kind == "events" and end == len(data)
    out = np.frombuffer(raw, EVENT_DTYPE)
    assert not out.view(np.uint16).reshape(-1, 8)[:, 3].any()  # padding bytes zero
    return out, data


def unsigned_running_max(t):
    return np.maximum.accumulate(np.asarray(t, np.int64).view(np.uint64)).view(np.int64)


@pytest.mark.parametrize("fields,stored", WORKED_EXAMPLES)
def test_worked_examples_byte_for_byte(fields, stored):
    ev = from_fields(*fields)
    out, data = roundtrip(ev)
    assert data == chunk(stored)
    assert out.tolist() == ev.tolist()


def test_long_runs_and_a_backwards_time():
    ev = from_fields([10] * 40 + [11], [5] * 41, [1] * 41, [1000] * 40 + [999])
    out, data = roundtrip(ev)
    assert ecf.read_header(data)[:2] == (41, 1)
    assert data[12:16] == chunk("0f 2800 01") and data[16:20] == chunk("bf00 2900")
    assert out["t"][-1] == 1000 and out[["x", "y", "p"]].tolist() == ev[["x", "y", "p"]].tolist()


@pytest.mark.parametrize("t,decoded", [
    ([-3, -2, -1, 0, 1, 2], [-3, -2, -1, -1, -1, -1]),  # negative to non-negative: clamped (unsigned)
    ([-1, -1, -1, 40, 41, 41], [-1, -1, -1, 40, 41, 41]),  # cur + 15 wraps: lossless
    ([0, 1 << 62, (1 << 63) - 1], [0, 1 << 62, (1 << 63) - 1]),  # 16-nibble escapes
    ([5, 3, 5, 5, 9, 2, 20], [5, 5, 5, 5, 9, 9, 20]),  # backwards: the running maximum
])
def test_timestamp_edge_cases(t, decoded):
    n = len(t)
    out, _ = roundtrip(from_fields(np.arange(n) * 3, np.zeros(n), np.ones(n), t))
    assert out["t"].tolist() == decoded


def test_every_mode_and_size():
    rng = np.random.default_rng(7)
    seen = set()
    for n in [0, 1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 127, 128, 1001, 65535]:
        for style in ("random", "rows", "ascending"):
            ev = empty(n)
            ev["y"] = rng.integers(0, 720, n) if style == "random" else np.sort(rng.integers(0, 720, n))
            ev["x"] = rng.integers(0, 1280, n) if style != "ascending" else (np.arange(n) + (np.arange(n) // 7)) % 2048
            ev["p"] = np.repeat(rng.integers(0, 2, n), 150)[:n]
            ev["t"] = np.cumsum(rng.choice([0, 0, 1, 14, 15, 16, 5000], n)) + 10**9
            out, data = roundtrip(ev)
            assert out.tolist() == ev.tolist()
            seen.add(ecf.read_header(data)[1])
    assert seen == {0, 1, 2}


@st.composite
def event_chunks(draw):
    n = draw(st.integers(0, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ev = empty(n)
    y_run = draw(st.sampled_from([1, 3, 40]))  # 1: mode 2; longer runs: modes 0 and 1
    ev["y"] = np.repeat(rng.integers(0, 2048, n), y_run)[:n]
    if draw(st.booleans()):
        ev["x"] = rng.integers(0, 2048, n)
    else:  # short ascending stretches with gaps: mode 0
        ev["x"] = (np.cumsum(rng.integers(1, 3, n)) + rng.integers(0, 2048)) % 2048
    ev["p"] = np.repeat(rng.integers(0, 2, n), draw(st.sampled_from([1, 5, 200])))[:n]
    steps = draw(st.sampled_from([[0, 1, 2], [0] * 20 + [1], [13, 14, 15, 16], [0, 1 << 20, 1 << 40]]))
    t = np.cumsum(rng.choice(steps, n)).astype(np.int64) + draw(st.integers(-20, 2**40))
    if n and draw(st.booleans()):  # times going backwards
        t[rng.integers(0, n, max(1, n // 8))] -= rng.integers(1, 100)
    ev["t"] = t
    return ev


@settings(max_examples=150, deadline=None)
@given(event_chunks())
def test_kernels_equal_references_on_random_chunks(ev):
    out, _ = roundtrip(ev)
    for k in ("x", "y", "p"):
        assert np.array_equal(out[k], ev[k])
    if len(ev) and ev["t"].min() >= 0:  # then unsigned order is signed order
        assert np.array_equal(out["t"], unsigned_running_max(ev["t"]))


def test_phantom_x_values_and_empty_runs_are_read_as_the_plugin_does():
    # mode 0, n = 2: the x word 10 with bits for 11 and 12 (12 is a phantom, discarded);
    # the timestamp stream starts with a run of 0 events that still adds 3 to t
    data = chunk("08000000 0500000000000000 30 02 6200 5801 82")
    assert both_decoders(data)[0] == "events"
    out = ecf.decode_chunk(data)
    assert out.tolist() == [(10, 3, 1, 8), (11, 3, 1, 8)]


def test_real_file_chunks_re_encode_byte_for_byte():
    with h5py.File(real("evt3_gen41_219k_ecf.hdf5"), "r") as f:
        dset = f["CD/events"]
        size, extent = dset.chunks[0], dset.shape[0]
        stored = [dset.id.read_direct_chunk((k * size,))[1] for k in range(-(-extent // size))]
    assert len(stored) == 14
    for k, data in enumerate(stored):
        if k < 2:
            assert both_decoders(data, size)[0] == "events"
        ev, end = ecf.decode_chunk(data, size, with_end=True)
        assert end == len(data) and len(ev) == size and ecf.read_header(data)[1] == 1
        keep = min(size, extent - k * size)
        # the last chunk went through the filter whole: the events, then zero fill
        source = np.concatenate([ev[:keep], empty(size - keep)]) if keep < size else ev
        assert ecf.encode_chunk(source.astype(EVENT_DTYPE)) == data, k


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 40), st.integers(0, 3), st.booleans())
def test_garbage_raises_or_decodes_the_same_in_both_decoders(data, n, mode, set_header):
    if set_header and len(data) >= 4:
        data = (n << 2 | mode).to_bytes(4, "little") + data[4:]
    both_decoders(data, 1000)


@settings(max_examples=60, deadline=None)
@given(event_chunks(), st.data())
def test_truncated_chunks_raise(ev, data):
    encoded = ecf.encode_chunk(ev)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    kind, message, offset = both_decoders(encoded[:cut])
    assert kind == "error" and 0 <= offset <= cut


def test_header_limits():
    with pytest.raises(EventFormatError, match="more than the 65535"):
        ecf.decode_chunk((65536 << 2).to_bytes(4, "little") + bytes(8 + 200000))
    too_many_for_dataset = ecf.encode_chunk(from_fields([1] * 20, [1] * 20, [0] * 20, range(20)))
    with pytest.raises(EventFormatError, match="more than the 16"):
        ecf.decode_chunk(too_many_for_dataset, max_events=16)
    with pytest.raises(EventFormatError) as e:
        ecf.decode_chunk(b"\x04\x00\x00\x00\x00")
    assert e.value.offset == 0


def test_empty_chunk_is_twelve_bytes():
    data = ecf.encode_chunk(empty(0))
    assert data == chunk("02000000 0000000000000000") and len(ecf.decode_chunk(data)) == 0


@pytest.mark.parametrize("field,value", [("x", 2048), ("y", 4000), ("p", -1), ("p", 2)])
def test_encoder_refuses_what_ecf_cannot_store(field, value):
    ev = from_fields([1, 2, 3], [1, 2, 3], [0, 1, 0], [5, 6, 7])
    ev[field][1] = value
    for encode in (ecf.encode_chunk, ecf.encode_chunk_reference):
        with pytest.raises(ValueError, match="event 1"):
            encode(ev)
    with pytest.raises(ValueError, match="at most 65535"):
        ecf.encode_chunk(empty(65536))
