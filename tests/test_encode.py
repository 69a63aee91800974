"""Frames, voxel grids and slicing: equal to tonic, kernels equal to references, and the same
result whether a stream is encoded whole or cut anywhere."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.encode import (CountSlicer, CountSlicerState, FrameEncoder, TimeSlicer, TimeSlicerState, WindowEncoder,
                              to_frames, to_voxel_grid)
from eventflow.encode.slicing import count_windows, time_windows
from eventflow.kernels import binning as K

from .conftest import real

tonic = pytest.importorskip("tonic")

REAL = [("evt2_gen3_539k.raw", (640, 480)), ("evt3_gen41_5000.raw", (1280, 720)),
        ("dvxplorer_112k.aedat4", (320, 240))]
FRAME_PARAMS = [dict(time_window=1000), dict(time_window=5000, overlap=1200), dict(time_window=7000, include_incomplete=True),
                dict(event_count=3000), dict(event_count=3000, overlap=500, include_incomplete=True),
                dict(n_time_bins=10), dict(n_time_bins=6, overlap=0.25)]


def tonic_frames(ev, size, **kw):
    return tonic.transforms.ToFrame(sensor_size=(*size, 2), **kw)(eventflow.to_tonic(ev))


def tonic_voxel(ev, size, n):
    tv = np.empty(len(ev), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i8")])
    for k in "xytp":
        tv[k] = ev[k]
    return tonic.transforms.ToVoxelGrid(sensor_size=(*size, 2), n_time_bins=n)(tv)


@pytest.fixture(scope="module", params=REAL, ids=[r[0] for r in REAL])
def real_stream(request):
    name, size = request.param
    return eventflow.open(real(name)).read_all(), size


@pytest.mark.parametrize("kw", FRAME_PARAMS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_frames_equal_tonic_on_real_files(real_stream, kw):
    ev, size = real_stream
    if "time_window" in kw and ev["t"][-1] - ev["t"][0] > 200 * kw["time_window"]:
        kw = {**kw, "time_window": kw["time_window"] * 100, "overlap": kw.get("overlap", 0) * 100}
    ours = to_frames(ev, size, **kw)
    assert ours.dtype == np.int16
    assert np.array_equal(ours, tonic_frames(ev, size, **kw))


def test_voxel_grid_equals_tonic_on_real_files(real_stream):
    ev, size = real_stream
    ref = tonic_voxel(ev, size, 16)
    assert np.array_equal(to_voxel_grid(ev, size, 16, dtype=np.float64), ref)
    assert np.allclose(to_voxel_grid(ev, size, 16), ref, rtol=1e-6, atol=1e-5)


@st.composite
def streams(draw, max_n=600):
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ev = eventflow.empty(n)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 17, n), rng.integers(0, 11, n), rng.integers(0, 2, n)
    ev["t"] = draw(st.integers(0, 10**9)) + np.cumsum(rng.choice([0, 1, 3, 50, 400], n))
    return ev


@settings(max_examples=150, deadline=None)
@given(streams(), st.sampled_from(FRAME_PARAMS[:3] + [dict(time_window=37), dict(time_window=100, overlap=99)]
                                  + FRAME_PARAMS[3:] + [dict(event_count=7, overlap=3)]), st.booleans())
def test_frames_equal_tonic_and_the_reference_on_random_streams(ev, kw, binary):
    ours = to_frames(ev, (17, 11), binary=binary, **kw)
    if not binary:
        assert np.array_equal(ours, tonic_frames(ev, (17, 11), **kw))
    if "time_window" in kw:
        s, e = time_windows(ev["t"], kw["time_window"], kw.get("overlap", 0), kw.get("include_incomplete", False))
    elif "event_count" in kw:
        s, e = count_windows(len(ev), kw["event_count"], kw.get("overlap", 0), kw.get("include_incomplete", False))
    else:
        return
    assert np.array_equal(ours, K.frames_from_windows_reference(ev, s, e, 17, 11, binary))


@settings(max_examples=100, deadline=None)
@given(streams(), st.integers(1, 12))
def test_voxel_grid_equals_tonic_and_the_reference(ev, n):
    ours = to_voxel_grid(ev, (17, 11), n, dtype=np.float64)
    assert np.array_equal(ours, K.voxel_grid_reference(ev, 17, 11, n))
    fast = to_voxel_grid(ev, (17, 11), n)
    assert fast.dtype == np.float32 and np.allclose(fast, ours, rtol=1e-5, atol=1e-4)
    if ev["t"][-1] > ev["t"][0]:  # tonic divides by zero on a zero span
        assert np.array_equal(ours, tonic_voxel(ev, (17, 11), n))


def test_tonic_voxel_grid_with_bool_polarity_counts_every_event_plus_one():
    """The documented difference: with tonic's own bool dtype, OFF events are not negated."""
    ev = eventflow.from_fields([0, 0], [0, 0], [0, 0], [0, 10])  # two OFF events
    tonic_bool = tonic.transforms.ToVoxelGrid(sensor_size=(1, 1, 2), n_time_bins=1)(eventflow.to_tonic(ev))
    assert tonic_bool.sum() > 0 and to_voxel_grid(ev, (1, 1), 1).sum() < 0


def cut(ev, cuts):
    points = sorted({c % (len(ev) + 1) for c in cuts})
    return np.split(ev, points)


@settings(max_examples=150, deadline=None)
@given(streams(), st.lists(st.integers(0, 10**6), max_size=8), st.sampled_from([1, 37, 100, 5000]),
       st.booleans(), st.booleans())
def test_frame_encoder_cut_anywhere_equals_whole(ev, cuts, window, incomplete, binary):
    enc = FrameEncoder((17, 11), window, include_incomplete=incomplete, binary=binary)
    state, out = enc.init_state(), []
    for piece in cut(ev, cuts):
        frames, state = enc.step(piece, state)
        out.append(frames)
    out.append(enc.finish(state))
    whole = to_frames(ev, (17, 11), time_window=window, include_incomplete=incomplete, binary=binary)
    assert np.array_equal(np.concatenate(out), whole)


@settings(max_examples=150, deadline=None)
@given(streams(), st.lists(st.integers(0, 10**6), max_size=8), st.sampled_from([(10, 0), (100, 30), (37, 36)]),
       st.booleans())
def test_time_slicer_cut_anywhere_equals_tonic_windows(ev, cuts, wo, incomplete):
    window, overlap = wo
    slicer = TimeSlicer(window, overlap, incomplete)
    state, got = TimeSlicerState(), []
    for piece in cut(ev, cuts):
        ws, state = slicer.step(piece, state)
        got += ws
    got += slicer.finish(state)
    s, e = time_windows(ev["t"], window, overlap, incomplete)
    assert [len(w) for w in got] == list(e - s)
    assert all(np.array_equal(w, ev[a:b]) for w, a, b in zip(got, s, e))


def test_frame_encoder_on_a_real_file_in_reader_chunks():
    size = (640, 480)
    r = eventflow.open(real("evt2_gen3_539k.raw"), chunk_events=10_007)
    enc = FrameEncoder(size, 1000)
    state, out = enc.init_state(), []
    for chunk in r:
        frames, state = enc.step(chunk, state)
        out.append(frames)
    out.append(enc.finish(state))
    assert np.array_equal(np.concatenate(out), to_frames(r.read_all(), size, time_window=1000))


def test_out_of_geometry_events_are_skipped_and_counted_never_written():
    ev = eventflow.from_fields([1, 20, 2], [1, 1, 50], [1, 1, 0], [0, 1, 2])
    frames = to_frames(ev, (4, 4), event_count=3)
    assert frames.sum() == 1
    enc = FrameEncoder((4, 4), 10)
    _, state = enc.step(ev, enc.init_state())
    assert state.skipped == 2


def with_bad_events(rng, t, rate):
    """Events at times ``t`` on a 17x11 sensor, with x, y or p out of range each at ``rate`` and
    garbage in every padding byte (which must not matter)."""
    n = len(t)
    ev = eventflow.from_fields(rng.integers(0, 17, n), rng.integers(0, 11, n), rng.integers(0, 2, n), t)
    for field, bad in (("x", 17 + rng.integers(0, 5, n)), ("y", 11 + rng.integers(0, 5, n)),
                       ("p", rng.choice([-1, 2, 7], n))):
        hit = rng.random(n) < rate
        ev[field][hit] = bad[hit]
    ev.view(np.uint16).reshape(n, 8)[:, 3] = rng.integers(0, 2**16, n)
    return ev


def n_bad(ev):
    return int((~((ev["x"] < 17) & (ev["y"] < 11) & ((ev["p"] == 0) | (ev["p"] == 1)))).sum())


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 700), st.sampled_from([0.0, 0.002, 0.05]), st.booleans(),
       st.lists(st.integers(0, 700), max_size=6))
def test_frame_kernel_equals_reference_with_bad_events_in_any_block(seed, n, rate, binary, cuts):
    # blocks of CHECK_BLOCK events: a block with one bad event (x, y or p out of range, or garbage in
    # the padding bytes, which must not matter) takes the checked loop, the others the fast one
    ev = with_bad_events(np.random.default_rng(seed), np.arange(n), rate)
    bounds = np.unique(np.clip([0, *cuts, n], 0, n))
    starts, ends = bounds[:-1], bounds[1:]
    frames = np.zeros(len(starts) * 2 * 11 * 17, np.int16)
    skipped = K.frames_from_windows(ev.view(np.uint64), starts, ends, frames, 17, 11, binary)
    ref = K.frames_from_windows_reference(ev, starts, ends, 17, 11, binary)
    assert np.array_equal(frames.reshape(ref.shape), ref)
    assert skipped == n_bad(ev)


def test_caller_array_is_not_modified_and_bad_parameters_are_clear_errors():
    ev = eventflow.from_fields([1, 2], [1, 1], [0, 1], [0, 5])
    before = ev.copy()
    to_voxel_grid(ev, (4, 4), 3)
    to_frames(ev, (4, 4), time_window=2)
    assert np.array_equal(ev, before)
    with pytest.raises(ValueError, match="exactly one"):
        to_frames(ev, (4, 4), time_window=2, event_count=3)
    with pytest.raises(ValueError, match="overlap"):
        to_frames(ev, (4, 4), time_window=2, overlap=2)
    with pytest.raises(ValueError, match="time_window must be > 0"):
        FrameEncoder((4, 4), 0)
    with pytest.raises(ValueError, match="max_frames_per_step"):
        FrameEncoder((4, 4), 1, max_frames_per_step=2).step(ev, FrameEncoder((4, 4), 1).init_state())


@settings(max_examples=100, deadline=None)
@given(streams(), st.lists(st.integers(0, 10**6), max_size=8), st.sampled_from([1, 37, 5000]), st.booleans())
def test_step_into_one_reused_buffer_equals_whole(ev, cuts, window, incomplete):
    enc = FrameEncoder((17, 11), window, include_incomplete=incomplete)
    buf, state, got = enc.new_buffer(), enc.init_state(), []
    for piece in cut(ev, cuts):
        state = enc.step_into(piece, state, buf, lambda f: got.append(f.copy()))
    enc.finish_into(state, buf, lambda f: got.append(f.copy()))
    whole = to_frames(ev, (17, 11), time_window=window, include_incomplete=incomplete)
    assert len(got) == len(whole) and all(np.array_equal(a, b) for a, b in zip(got, whole))


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 700), st.lists(st.integers(0, 10**6), max_size=6),
       st.sampled_from([1, 37, 500]), st.booleans())
def test_streaming_frames_with_bad_events_cut_anywhere_equal_the_reference(seed, n, cuts, window, incomplete):
    # bad x, y and p (and garbage padding) through FrameEncoder.step and step_into, cut anywhere:
    # the windows equal the reference's, and every bad event is counted once
    rng = np.random.default_rng(seed)
    ev = with_bad_events(rng, np.cumsum(rng.choice([0, 1, 3, 50], n)), 0.02)
    s, e = time_windows(ev["t"], window, 0, incomplete)
    ref = K.frames_from_windows_reference(ev, s, e, 17, 11)
    enc = FrameEncoder((17, 11), window, include_incomplete=incomplete)
    state, out = enc.init_state(), []
    buf, state_into, into = enc.new_buffer(), enc.init_state(), []
    for piece in cut(ev, cuts):
        frames, state = enc.step(piece, state)
        out.append(frames)
        state_into = enc.step_into(piece, state_into, buf, lambda f: into.append(f.copy()))
    out.append(enc.finish(state))
    enc.finish_into(state_into, buf, lambda f: into.append(f.copy()))
    assert np.array_equal(np.concatenate(out), ref)
    assert len(into) == len(ref) and all(np.array_equal(a, b) for a, b in zip(into, ref))
    assert state.skipped == state_into.skipped == n_bad(ev)


@settings(max_examples=150, deadline=None)
@given(streams(), st.lists(st.integers(0, 10**6), max_size=8), st.sampled_from([(10, 0), (7, 3), (50, 49), (1, 0)]),
       st.booleans())
def test_count_slicer_cut_anywhere_equals_tonic_windows(ev, cuts, co, incomplete):
    count, overlap = co
    slicer = CountSlicer(count, overlap, incomplete)
    state, got = CountSlicerState(), []
    for piece in cut(ev, cuts):
        ws, state = slicer.step(piece, state)
        got += ws
    got += slicer.finish(state)
    s, e = count_windows(len(ev), count, overlap, incomplete)
    assert [len(w) for w in got] == [len(ev[a:b]) for a, b in zip(s, e)]
    assert all(np.array_equal(w, ev[a:b]) for w, a, b in zip(got, s, e))


@settings(max_examples=60, deadline=None)
@given(streams(), st.lists(st.integers(0, 10**6), max_size=6))
def test_streaming_voxel_grids_and_count_frames_cut_anywhere_equal_whole(ev, cuts):
    for slicer, enc in ((TimeSlicer(500), lambda w: to_voxel_grid(w, (17, 11), 4, dtype=np.float64)),
                        (CountSlicer(40, 10), lambda w: to_frames(w, (17, 11), n_time_bins=3))):
        we = WindowEncoder(slicer, enc)
        state, got = we.init_state(), []
        for piece in cut(ev, cuts):
            out, state = we.step(piece, state)
            got += out
        got += we.finish(state)
        if isinstance(slicer, TimeSlicer):  # the whole stream, sliced by tonic's rule, then encoded
            s, e = time_windows(ev["t"], slicer.time_window, slicer.overlap, slicer.include_incomplete)
        else:
            s, e = count_windows(len(ev), slicer.event_count, slicer.overlap, slicer.include_incomplete)
        whole = [enc(ev[a:b]) for a, b in zip(s, e)]
        assert len(got) == len(whole) and all(np.array_equal(a, b) for a, b in zip(got, whole))


def test_frames_become_torch_tensors_without_a_copy():
    torch = pytest.importorskip("torch")
    frames = to_frames(eventflow.from_fields([1], [1], [1], [0]), (4, 4), event_count=1)
    tensor = torch.from_numpy(frames)
    frames[0, 1, 1, 1] = 7
    assert tensor[0, 1, 1, 1].item() == 7 and tensor.shape == (1, 2, 4, 4)


def test_voxel_grid_of_unsorted_times_takes_the_exact_path_safely():
    ev = eventflow.from_fields([0, 1, 2], [0, 0, 0], [1, 0, 1], [10, 0, 20])  # t goes back
    fast = to_voxel_grid(ev, (3, 1), 2)
    assert np.allclose(fast, K.voxel_grid_reference(ev, 3, 1, 2))


def test_voxel_grid_of_many_events_going_back_a_bin_takes_the_exact_path():
    # enough events for the per-bin accumulator path; one event goes back two bins mid-stream
    rng = np.random.default_rng(3)
    n = 2000
    ev = eventflow.from_fields(rng.integers(0, 5, n), rng.integers(0, 4, n), rng.integers(0, 2, n),
                               np.sort(rng.integers(0, 10_000, n)))
    ev["t"][1000] = 100
    words = ev.view(np.uint64)
    grid = np.zeros(10 * 20, np.float32)
    assert K.voxel_grid_fast(words[0::2], words[1::2].view(np.int64), n, 0, int(ev["t"].max()), 8, grid, 5, 4) == -1
    assert np.allclose(to_voxel_grid(ev, (5, 4), 8), K.voxel_grid_reference(ev, 5, 4, 8), rtol=1e-6, atol=1e-5)


def test_frame_encoder_rejects_events_out_of_time_order_without_writing_past_its_frames():
    ev = eventflow.from_fields([0, 1, 2], [0, 0, 0], [1, 0, 1], [0, 5000, 20])
    enc = FrameEncoder((3, 1), 10)
    with pytest.raises(ValueError, match="time order"):
        enc.step(ev, enc.init_state())
