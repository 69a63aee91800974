"""Time surface: equal to tonic where their definitions meet, kernel equal to its reference,
any cut points give the whole-stream frames, inputs never modified, bad parameters refused."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.encode.surface import (
    TimeSurface, init_time_surface_state, time_surface_finish, time_surface_step, to_time_surface,
)
from eventflow.kernels.surface import NEVER, time_surface_reference

from .conftest import real
from .test_filters import FEW, cut_points, event_streams, in_chunks

tonic = pytest.importorskip("tonic")

GAPS = (0, 1, 3, 10, 100, 1000)  # with windows >= 50 us: at most a few hundred frames


def whole_and_chunked(events, params, cuts, t_start=None):
    whole = params(events, t_start)
    outs, state = in_chunks(time_surface_step, init_time_surface_state(params, t_start), params, events, cuts)
    return whole, np.concatenate(outs + [time_surface_finish(state, params)])


def window_count(t, t0, dt, include_incomplete):
    """Windows of a stream: tonic's count, and never fewer than the windows its events closed."""
    if not len(t):
        return 0
    d = int(t.max()) - t0
    rule = max(-(-d // dt) if include_incomplete else d // dt, 1)
    return max(rule, (int(t.max()) - t0) // dt)


def test_frames_are_sampled_at_each_window_end():
    ev = eventflow.from_fields(x=[0, 1, 0], y=[0, 0, 0], p=[1, 0, 0], t=[100, 400, 3500])
    f = to_time_surface(ev, (2, 1), tau=500, time_window=1000, include_incomplete=True)  # ends 1100 .. 4100
    assert f.shape == (4, 2, 1, 2) and f.dtype == np.float32
    for k, s in enumerate([1100, 2100, 3100, 4100]):
        want_on = [np.exp(-(s - 100) / 500), 0.0]
        want_off = [np.exp(-(s - 3500) / 500) if k == 3 else 0.0, np.exp(-(s - 400) / 500)]
        np.testing.assert_allclose(f[k, 1, 0], want_on, rtol=1e-6)
        np.testing.assert_allclose(f[k, 0, 0], want_off, rtol=1e-6)
    # an explicit grid origin: windows [0, 1000), [1000, 2000), ...; empty windows give frames too
    g = to_time_surface(ev, (2, 1), tau=500, time_window=1000, include_incomplete=True, t_start=-2000)
    assert g.shape == (6, 2, 1, 2) and not g[:2].any()
    np.testing.assert_allclose(g[2, 1, 0, 0], np.exp(-900 / 500), rtol=1e-6)
    # without include_incomplete the last, incomplete window is dropped (tonic's rule) ...
    assert np.array_equal(to_time_surface(ev, (2, 1), 500, 1000), f[:3])
    # ... unless it is the only one; and a last event on a window boundary opens no window
    assert to_time_surface(ev[:2], (2, 1), 500, 1000).shape[0] == 1
    on_edge = eventflow.from_fields(x=[0, 1], y=[0, 0], p=[1, 1], t=[0, 2000])
    assert to_time_surface(on_edge, (2, 1), 500, 1000, include_incomplete=True).shape[0] == 2


@pytest.mark.parametrize("dt,tau", [(5000, 3000.0), (20_000, 100_000.0)])
def test_equals_tonic_on_a_real_file(dt, tau):
    ev = eventflow.open(real("dvxplorer_112k.aedat4")).read_all()[:50_000]
    ours = to_time_surface(ev, (320, 240), tau, dt)
    theirs = tonic.functional.to_timesurface_numpy(eventflow.to_tonic(ev), (320, 240, 2), dt, tau)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs.astype(np.float32), rtol=1e-6, atol=0)


@FEW
@given(event_streams(gaps=GAPS, backwards=False, min_n=1), st.sampled_from([50, 100, 999]),
       st.sampled_from([10.0, 500.0, 1e5]))
def test_equals_tonic_on_random_sorted_streams(stream, dt, tau):
    ev, (w, h) = stream
    ours = to_time_surface(ev, (w, h), tau, dt)
    theirs = tonic.functional.to_timesurface_numpy(eventflow.to_tonic(ev), (w, h, 2), dt, tau)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs.astype(np.float32), rtol=1e-6, atol=0)
    for incomplete in (False, True):  # as many frames as tonic's ToFrame (and eventflow's frame encoder)
        frames = tonic.functional.to_frame_numpy(eventflow.to_tonic(ev), (w, h, 2), time_window=dt,
                                                 include_incomplete=incomplete)
        assert len(to_time_surface(ev, (w, h), tau, dt, include_incomplete=incomplete)) == len(frames)


@FEW
@given(event_streams(gaps=GAPS), st.sampled_from([50, 100, 999]), st.sampled_from([10.0, 500.0, 1e5]),
       st.one_of(st.none(), st.integers(-3000, 3000)), st.booleans())
def test_kernel_equals_reference(stream, dt, tau, start_offset, incomplete):
    ev, size = stream
    t0 = int(ev["t"][0]) if len(ev) else 0
    t0 = t0 if start_offset is None else t0 + start_offset  # events may come before t_start
    ours = to_time_surface(ev, size, tau, dt, incomplete, None if start_offset is None else t0)
    ref = time_surface_reference(ev["x"], ev["y"], ev["p"], ev["t"], size, t0, dt, tau)
    assert len(ours) == window_count(ev["t"], t0, dt, incomplete)
    np.testing.assert_allclose(ours, ref[:len(ours)], rtol=1e-6, atol=0)  # the same float64 exp: equal in practice


@settings(max_examples=60, deadline=None)
@given(event_streams(gaps=GAPS), st.sampled_from([50, 100, 999]), st.booleans(), st.data())
def test_any_cut_points_give_the_whole_stream_frames(stream, dt, incomplete, data):
    ev, size = stream
    t_start = data.draw(st.one_of(st.none(), st.integers(-1000, 1000).map(lambda d: int(ev["t"][0]) + d if len(ev) else d)))
    params = TimeSurface(size, 300.0, dt, include_incomplete=incomplete)
    whole, chunked = whole_and_chunked(ev, params, data.draw(cut_points(len(ev))), t_start)
    assert whole.shape == chunked.shape and np.array_equal(whole, chunked)


@settings(max_examples=5, deadline=None)
@given(cut_points(30_000))
def test_any_cut_points_give_the_whole_stream_frames_on_a_real_file(cuts):
    ev = eventflow.open(real("dvxplorer_112k.aedat4")).read_all()[:30_000]
    whole, chunked = whole_and_chunked(ev, TimeSurface((320, 240), 5000.0, 10_000), cuts)
    assert whole.shape == chunked.shape and np.array_equal(whole, chunked)


def test_inputs_are_never_modified_and_empty_input_gives_no_frames():
    ev = eventflow.from_fields(x=[0, 1, 2], y=[0, 1, 1], p=[1, 0, 1], t=[10, 20, 3000])
    before = ev.tolist()
    params = TimeSurface((3, 2), 100.0, 1000)
    state = init_time_surface_state(params)
    frames, new = time_surface_step(ev, state, params)
    assert ev.tolist() == before and np.all(state.last_t == NEVER) and state.window == 0
    assert new.window == 2 and new.t_max == 3000 and new.last_t[1, 1, 2] == 3000
    with pytest.raises(ValueError, match="read-only"):
        new.last_t[0, 0, 0] = 1
    assert params.finish(new).shape == (0, 2, 2, 3)  # d = 2990 us: 2 windows by tonic's rule
    assert TimeSurface((3, 2), 100.0, 1000, include_incomplete=True).finish(new).shape == (1, 2, 2, 3)
    assert new.last_t[1, 1, 2] == 3000 and new.window == 2
    empty = eventflow.empty(0)
    assert to_time_surface(empty, (3, 2), 100.0, 1000).shape == (0, 2, 2, 3)
    frames, same = params.step(empty, new)
    assert frames.shape == (0, 2, 2, 3) and same is new
    assert params.finish(params.init_state()).shape == (0, 2, 2, 3)


@pytest.mark.parametrize("make,match", [
    (lambda: TimeSurface((4, 4), 0, 100), "tau must be a positive"),
    (lambda: TimeSurface((4, 4), float("inf"), 100), "tau must be a positive"),
    (lambda: TimeSurface((4, 4), 10.0, 0), "time_window must be a positive integer"),
    (lambda: TimeSurface((4, 4), 10.0, 1.5), "time_window must be a positive integer"),
    (lambda: TimeSurface((4, 4, 2), 10.0, 100), r"sensor_size must be \(width, height\)"),
    (lambda: TimeSurface((4, 4), 10.0, 100, max_frames_per_step=0), "max_frames_per_step must be a positive"),
    (lambda: TimeSurface((4, 4), 10.0, 100, max_frames_per_step=5)(eventflow.from_fields([0, 1], [0, 0], [1, 1], [0, 601])),
     r"these events close 6 windows \(> max_frames_per_step=5\)"),
    (lambda: to_time_surface(eventflow.from_fields([4], [0], [1], [0]), (4, 4), 10.0, 100),
     r"event 0 at \(4, 0\) lies outside the 4x4 sensor"),
])
def test_bad_parameters_are_refused_clearly(make, match):
    with pytest.raises(ValueError, match=match):
        make()
