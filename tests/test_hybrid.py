"""Hybrid coding: the documented formula on hand-made events, kernel equal to its np.add.at
reference, any cut points give the whole-stream codes, inputs never modified, bad parameters refused."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.encode.hybrid import HybridCoding, hybrid_finish, hybrid_step, init_hybrid_state, to_hybrid
from eventflow.kernels.surface import hybrid_reference

from .conftest import real
from .test_filters import FEW, cut_points, event_streams, in_chunks
from .test_surface import window_count

tonic = pytest.importorskip("tonic")

GAPS = (0, 1, 3, 10, 100, 1000)


def whole_and_chunked(events, params, cuts, t_start=None):
    whole = params(events, t_start)
    outs, state = in_chunks(hybrid_step, init_hybrid_state(params, t_start), params, events, cuts)
    return whole, np.concatenate(outs + [hybrid_finish(state, params)])


def test_codes_follow_the_documented_formula():
    # window [1000, 2000): pixel (0, 0) ON at 1250, 1100 (time went back), 1900; OFF at 1500; (1, 0) ON at 1999
    # window [2000, 3000) empty; window [3000, 4000): (1, 0) OFF at 3100, 2500 (time went back: stays in it)
    ev = eventflow.from_fields(x=[0, 0, 0, 0, 1, 1, 1], y=[0] * 7, p=[1, 1, 1, 0, 1, 0, 0],
                               t=[1250, 1100, 1900, 1500, 1999, 3100, 2500])
    codes = to_hybrid(ev, (2, 1), time_window=1000, count_clip=2, latency_bins=4, include_incomplete=True,
                      t_start=1000)
    assert codes.shape == (3, 12, 1, 2) and codes.dtype == np.float32
    want = np.zeros((3, 12, 2))
    want[0, 0] = [0.5, 0]                    # rate OFF: one event of clip 2
    want[0, 1] = [1.0, 0.5]                  # rate ON: 3 events clipped to 2; one event
    want[0, 2] = [1 - 500 / 1000, 0]         # ttfs OFF
    want[0, 3] = [1 - 100 / 1000, 1 - 999 / 1000]  # ttfs ON: the earliest time, 1100
    want[0, 4 + 2, 0] = 1                    # latency OFF: 500 us -> bin 2 of 4
    want[0, 8 + 0, 0] = want[0, 8 + 3, 1] = 1  # latency ON: 100 us -> bin 0; 999 us -> bin 3
    want[2, 0, 1] = 1.0                      # rate OFF: 2 events of clip 2
    want[2, 2, 1] = 1.0                      # ttfs OFF: 2500 is before the window start: clamped to it
    want[2, 4 + 0, 1] = 1
    np.testing.assert_array_equal(codes[:, :, 0], want.astype(np.float32))
    assert HybridCoding((2, 1), 1000, latency_bins=4).channels == 12


@settings(max_examples=60, deadline=None)
@given(event_streams(gaps=GAPS), st.sampled_from([50, 100, 999]), st.integers(1, 5), st.integers(0, 3),
       st.one_of(st.none(), st.integers(-3000, 3000)), st.booleans())
def test_kernel_equals_reference(stream, dt, clip, bins, start_offset, incomplete):
    ev, size = stream
    t0 = int(ev["t"][0]) if len(ev) else 0
    t0 = t0 if start_offset is None else t0 + start_offset  # events may come before t_start
    ours = to_hybrid(ev, size, dt, clip, bins, incomplete, None if start_offset is None else t0)
    ref = hybrid_reference(ev["x"], ev["y"], ev["p"], ev["t"], size, t0, dt, clip, bins)
    assert len(ours) == window_count(ev["t"], t0, dt, incomplete) and np.array_equal(ours, ref[:len(ours)])


@FEW
@given(event_streams(gaps=GAPS, backwards=False, min_n=1), st.sampled_from([50, 100, 999]), st.booleans())
def test_rate_channels_are_tonic_frames(stream, dt, incomplete):
    ev, (w, h) = stream
    codes = to_hybrid(ev, (w, h), dt, count_clip=1000, include_incomplete=incomplete)
    frames = tonic.functional.to_frame_numpy(eventflow.to_tonic(ev), (w, h, 2), time_window=dt,
                                             include_incomplete=incomplete)
    assert codes.shape[0] == len(frames) and np.array_equal(np.rint(codes[:, :2] * 1000), frames)


def test_kernel_equals_reference_on_a_real_file():
    ev = eventflow.open(real("evt2_gen3_539k.raw")).read_all()[:100_000]
    ours = to_hybrid(ev, (640, 480), 2000, count_clip=3, latency_bins=2, include_incomplete=True)
    ref = hybrid_reference(ev["x"], ev["y"], ev["p"], ev["t"], (640, 480), int(ev["t"][0]), 2000, 3, 2)
    assert ours.shape == ref.shape and np.array_equal(ours, ref)


@settings(max_examples=60, deadline=None)
@given(event_streams(gaps=GAPS), st.sampled_from([50, 100, 999]), st.integers(0, 2), st.booleans(), st.data())
def test_any_cut_points_give_the_whole_stream_codes(stream, dt, bins, incomplete, data):
    ev, size = stream
    t_start = data.draw(st.one_of(st.none(), st.integers(-1000, 1000).map(lambda d: int(ev["t"][0]) + d if len(ev) else d)))
    params = HybridCoding(size, dt, 3, bins, include_incomplete=incomplete)
    whole, chunked = whole_and_chunked(ev, params, data.draw(cut_points(len(ev))), t_start)
    assert whole.shape == chunked.shape and np.array_equal(whole, chunked)


@settings(max_examples=8, deadline=None)
@given(cut_points(50_000))
def test_any_cut_points_give_the_whole_stream_codes_on_a_real_file(cuts):
    ev = eventflow.open(real("evt3_gen41_219k.raw")).read_all()[:50_000]
    whole, chunked = whole_and_chunked(ev, HybridCoding((1280, 720), 500, 4, 1, include_incomplete=True), cuts)
    assert len(whole) == 4 and np.array_equal(whole, chunked)


def test_inputs_are_never_modified_and_empty_input_gives_no_codes():
    ev = eventflow.from_fields(x=[0, 1, 2], y=[0, 1, 1], p=[1, 0, 1], t=[10, 20, 3000])
    before = ev.tolist()
    params = HybridCoding((3, 2), 1000, count_clip=2)
    state = init_hybrid_state(params)
    codes, new = hybrid_step(ev, state, params)
    assert ev.tolist() == before and not state.counts.any() and state.window == 0 and state.t_start is None
    assert codes.shape == (2, 4, 2, 3) and new.window == 2 and new.t_start == 10 and new.counts.sum() == 1
    with pytest.raises(ValueError, match="read-only"):
        new.counts[0, 0, 0] = 1
    assert params.finish(new).shape == (0, 4, 2, 3)  # d = 2990 us: 2 windows by tonic's rule
    last = HybridCoding((3, 2), 1000, count_clip=2, include_incomplete=True).finish(new)
    assert last.shape == (1, 4, 2, 3) and last[0, 1, 1, 2] == 0.5 and new.counts.sum() == 1
    empty = eventflow.empty(0)
    assert to_hybrid(empty, (3, 2), 1000).shape == (0, 4, 2, 3)
    codes, same = params.step(empty, new)
    assert codes.shape == (0, 4, 2, 3) and same is new
    assert params.finish(params.init_state()).shape == (0, 4, 2, 3)


@pytest.mark.parametrize("make,match", [
    (lambda: HybridCoding((4, 4), 0), "time_window must be a positive integer"),
    (lambda: HybridCoding((4, 4), 100, count_clip=0), r"count_clip must be an integer in 1\.\.2\*\*31-1"),
    (lambda: HybridCoding((4, 4), 100, count_clip=1.5), "count_clip must be an integer in"),
    (lambda: HybridCoding((4, 4), 100, latency_bins=-1), r"latency_bins must be an integer in 0\.\."),
    (lambda: HybridCoding((4, 4), 100, max_frames_per_step=-1), "max_frames_per_step must be a positive"),
    (lambda: HybridCoding((4, 4, 2), 100), r"sensor_size must be \(width, height\)"),
    (lambda: to_hybrid(eventflow.from_fields([0, 1], [0, 4], [1, 1], [0, 1]), (4, 4), 100),
     r"event 1 at \(1, 4\) lies outside the 4x4 sensor"),
])
def test_bad_parameters_are_refused_clearly(make, match):
    with pytest.raises(ValueError, match=match):
        make()
