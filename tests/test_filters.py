"""Event filters: equal to tonic, kernels equal to their references, any cut points give the
whole-stream result, the caller's arrays are never modified, bad parameters are refused."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.encode.filters import (
    Crop, Denoise, Downsample, Refractory, crop, denoise, denoise_step, downsample, init_denoise_state,
    init_refractory_state, refractory, refractory_step,
)
from eventflow.events import concatenate
from eventflow.kernels import filters as K

from .conftest import real

tonic = pytest.importorskip("tonic")

# real recordings: name, geometry, events used (a prefix keeps tonic's Python loop fast)
REAL = [("evt3_gen41_219k.raw", (1280, 720), 100_000), ("evt2_gen3_539k.raw", (640, 480), 60_000),
        ("dvxplorer_112k.aedat4", (320, 240), 112_000)]
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def real_events(name, n):
    return eventflow.open(real(name)).read_all()[:n]


@st.composite
def event_streams(draw, sizes=((4, 3), (8, 8), (33, 17)), max_n=300, gaps=(0, 1, 3, 10, 100, 1000, 5000),
                  backwards=True, min_n=0):
    """(events, (W, H)): random pixels of a small sensor; times from random gaps, some negative."""
    w, h = draw(st.sampled_from(sizes))
    n = draw(st.integers(min_n, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.choice(gaps, n)
    if backwards and draw(st.booleans()):
        steps = np.where(rng.random(n) < 0.1, -rng.integers(0, 200, n), steps)
    ev = eventflow.empty(n)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n)
    ev["t"] = draw(st.integers(0, 2**40)) + np.cumsum(steps)
    return ev, (w, h)


def cut_points(n):
    return st.lists(st.integers(0, n), max_size=8).map(sorted)


def in_chunks(step, state, params, events, cuts):
    """Run ``step`` over the chunks between ``cuts``, carrying the state: (outputs, final state)."""
    outs, bounds = [], [0, *cuts, len(events)]
    for a, b in zip(bounds, bounds[1:]):
        out, state = step(events[a:b], state, params)
        outs.append(out)
    return outs, state


def same(a, b):
    return a.dtype == eventflow.EVENT_DTYPE and a.tolist() == eventflow.as_events(b).tolist()


# -- equal to tonic ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,size,n", REAL)
def test_denoise_and_refractory_equal_tonic_on_real_files(name, size, n):
    ev = real_events(name, n)
    tv = eventflow.to_tonic(ev)
    assert same(denoise(ev, size, 5000), tonic.functional.denoise_numpy(tv, 5000))
    assert same(refractory(ev, size, 2000), tonic.functional.refractory_period_numpy(tv, 2000))


@FEW
@given(event_streams(min_n=1), st.sampled_from([1, 10, 1000, 10_000]))
def test_filters_equal_tonic_on_random_streams(stream, period):
    ev, _ = stream
    ev["t"] -= ev["t"].min()  # tonic's quirks show at small times
    tv = eventflow.to_tonic(ev)
    # tonic infers the geometry from the data and treats every pixel as having fired at t=0
    # (denoise) or at -refractory_period (refractory): given the same, the results are equal
    size = (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)
    dn = Denoise(size, period)
    assert same(denoise_step(ev, init_denoise_state(dn, fired_at=0), dn)[0], tonic.functional.denoise_numpy(tv, period))
    rf = Refractory(size, period)
    assert same(refractory_step(ev, init_refractory_state(rf, fired_at=-period), rf)[0],
                tonic.functional.refractory_period_numpy(tv, period))
    # with the default state (no pixel has fired) the results are equal once t >= the period
    tv["t"] += period
    assert same(denoise(tv, size, period), tonic.functional.denoise_numpy(tv, period))
    assert same(refractory(tv, (40, 40), period), tonic.functional.refractory_period_numpy(tv, period))


def test_crop_equals_tonic_center_crop_and_downsample_equals_tonic_for_integer_ratios():
    ev = real_events("evt2_gen3_539k.raw", 100_000)
    tv = eventflow.to_tonic(ev)
    for w, h in [(128, 128), (640, 480), (1, 3), (639, 101)]:
        box = ((640 - w) // 2, (480 - h) // 2, w, h)
        assert same(crop(ev, (640, 480), box), tonic.transforms.CenterCrop((640, 480, 2), (w, h))(tv))
    for w, h in [(320, 240), (160, 120), (64, 48), (128, 96), (640, 480)]:
        assert same(downsample(ev, (640, 480), (w, h)),
                    tonic.transforms.Downsample(sensor_size=(640, 480, 2), target_size=(w, h))(tv))


def test_downsample_is_exact_where_tonic_rounds_low():
    ev = eventflow.from_fields(x=[49, 97], y=[0, 0], p=[1, 1], t=[0, 1])  # 49 * 2 / 98 = 1, 97 * 100 / 194 = 50
    theirs = tonic.transforms.Downsample(sensor_size=(98, 1, 2), target_size=(2, 1))(eventflow.to_tonic(ev))
    assert downsample(ev, (98, 1), (2, 1))["x"].tolist() == [1, 1] and theirs["x"].tolist() == [0, 1]
    assert downsample(ev, (194, 1), (100, 1))["x"].tolist() == [25, 50]


@FEW
@given(event_streams(sizes=((1280, 720), (346, 260), (33, 17))), st.integers(1, 1280), st.integers(1, 720))
def test_downsample_is_the_exact_floor_of_the_scaled_coordinates(stream, w, h):
    ev, (W, H) = stream
    w, h = min(w, W), min(h, H)
    out = downsample(ev, (W, H), (w, h))
    assert out["x"].tolist() == [x * w // W for x in ev["x"].tolist()]
    assert out["y"].tolist() == [y * h // H for y in ev["y"].tolist()]
    assert out[["p", "t"]].tolist() == ev[["p", "t"]].tolist() and out["x"].max(initial=0) < w


@FEW
@given(event_streams(), st.data())
def test_crop_keeps_exactly_the_events_in_the_box(stream, data):
    ev, (W, H) = stream
    x0, y0 = data.draw(st.integers(0, W - 1)), data.draw(st.integers(0, H - 1))
    box = (x0, y0, data.draw(st.integers(1, W - x0)), data.draw(st.integers(1, H - y0)))
    c = Crop((W, H), box)
    want = [(x - x0, y - y0, p, t) for x, y, p, t in ev.tolist() if x0 <= x < x0 + box[2] and y0 <= y < y0 + box[3]]
    assert c(ev).tolist() == want and c.output_size == box[2:]


# -- kernels against their references -----------------------------------------------------------

@FEW
@given(event_streams(), st.integers(1, 2000), st.booleans())
def test_kernels_equal_references(stream, period, fired):
    ev, (w, h) = stream
    start = np.full((h, w), int(ev["t"][0]) if fired and len(ev) else K.NEVER, np.int64)
    for kernel, reference in [(K.denoise_kernel, K.denoise_reference), (K.refractory_kernel, K.refractory_reference)]:
        last, ref_last, keep = start.copy(), start.copy(), np.zeros(len(ev), bool)
        assert kernel(ev.view(np.uint64), last.reshape(-1), w, h, period, keep) == -1
        assert keep.tolist() == reference(ev["x"], ev["y"], ev["t"], ref_last, period).tolist()
        assert np.array_equal(last, ref_last)


# -- cut-point independence ------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(event_streams(), st.integers(1, 2000), st.data())
def test_any_cut_points_give_the_whole_stream_result(stream, period, data):
    ev, size = stream
    cuts = data.draw(cut_points(len(ev)))
    for params, step, init in [(Denoise(size, period), denoise_step, init_denoise_state),
                               (Refractory(size, period), refractory_step, init_refractory_state)]:
        whole, whole_state = step(ev, init(params), params)
        outs, state = in_chunks(step, init(params), params, ev, cuts)
        assert same(concatenate(outs), whole) and np.array_equal(state.last_t, whole_state.last_t)


@settings(max_examples=10, deadline=None)
@given(cut_points(100_000))
def test_any_cut_points_give_the_whole_stream_result_on_a_real_file(cuts):
    ev = real_events("evt3_gen41_219k.raw", 100_000)
    for params, step, init in [(Denoise((1280, 720), 3000), denoise_step, init_denoise_state),
                               (Refractory((1280, 720), 3000), refractory_step, init_refractory_state)]:
        outs, _ = in_chunks(step, init(params), params, ev, cuts)
        assert same(concatenate(outs), params(ev))


# -- the caller's arrays, empty input, other layouts -------------------------------------------

def test_the_callers_events_and_state_are_never_modified():
    ev = real_events("dvxplorer_112k.aedat4", 20_000)
    before = ev.copy()
    params = Denoise((320, 240), 1000)
    state = init_denoise_state(params)
    kept, new = denoise_step(ev, state, params)
    assert np.all(state.last_t == K.NEVER) and not np.array_equal(new.last_t, state.last_t)
    with pytest.raises(ValueError, match="read-only"):
        new.last_t[0, 0] = 1
    kept["x"] = 0  # outputs are new arrays, not views of the input
    refractory(ev, (320, 240), 100)["t"] = 0
    crop(ev, (320, 240), (0, 0, 320, 240))["y"] = 0
    downsample(ev, (320, 240), (32, 24))["p"] = 0
    assert ev.tolist() == before.tolist()  # (field by field: a copy need not copy the padding)


def test_empty_input_and_other_layouts():
    empty = eventflow.empty(0)
    for out in [denoise(empty, (4, 4), 1), refractory(empty, (4, 4), 1), crop(empty, (4, 4), (1, 1, 2, 2)),
                downsample(empty, (4, 4), (2, 2))]:
        assert out.dtype == eventflow.EVENT_DTYPE and len(out) == 0
    params = Refractory((4, 4), 10)
    out, state = refractory_step(empty, init_refractory_state(params), params)
    assert len(out) == 0 and np.all(state.last_t == K.NEVER)
    tv = eventflow.to_tonic(eventflow.from_fields(x=[1, 2], y=[1, 1], p=[1, 0], t=[5, 6]))  # tonic's dtype
    assert denoise(tv, (4, 4), 10).tolist() == [(2, 1, 0, 6)]
    assert len(denoise(eventflow.from_fields([1, 2, 3], [1, 1, 1], [1, 0, 1], [5, 6, 7])[::2], (4, 4), 10)) == 0


# -- bad parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,match", [
    (lambda: Denoise((4, 4), 0), "filter_time must be a positive"),
    (lambda: Denoise((4, 4), -5), "filter_time must be a positive"),
    (lambda: Denoise((4, 4), float("nan")), "filter_time must be a positive"),
    (lambda: Denoise((4, 4), True), "filter_time must be a positive"),
    (lambda: Refractory((4, 4), 0), "refractory_period must be a positive"),
    (lambda: Denoise((4, 4, 2), 10), r"sensor_size must be \(width, height\)"),
    (lambda: Refractory((0, 4), 10), "sensor_size must be two integers"),
    (lambda: Crop((10, 10), (5, 5, 6, 2)), "is not inside the 10x10 sensor"),
    (lambda: Crop((10, 10), (-1, 0, 2, 2)), "is not inside the 10x10 sensor"),
    (lambda: Crop((10, 10), (0, 0, 0, 2)), "is not inside the 10x10 sensor"),
    (lambda: Crop((10, 10), (0, 0)), r"box must be \(x0, y0, width, height\)"),
    (lambda: Downsample((10, 10), (20, 5)), "larger than the 10x10 sensor"),
    (lambda: Downsample((10, 10), (2.5, 5)), "target_size must be two integers"),
])
def test_bad_parameters_are_refused_clearly(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("fn", [lambda e: denoise(e, (10, 8), 5), lambda e: refractory(e, (10, 8), 5),
                                lambda e: crop(e, (10, 8), (0, 0, 5, 5)), lambda e: downsample(e, (10, 8), (5, 4))])
def test_events_outside_the_sensor_are_refused(fn):
    ev = eventflow.from_fields(x=[1, 3, 10], y=[1, 9, 2], p=[1, 1, 1], t=[1, 2, 3])
    with pytest.raises(ValueError, match=r"event 1 at \(3, 9\) lies outside the 10x8 sensor"):
        fn(ev)
