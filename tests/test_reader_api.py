"""The reader protocol users rely on: slicing by time and count, seek, geometry, options."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.errors import EventFormatError

from .conftest import real


@pytest.fixture(scope="module")
def evt2_events():
    return eventflow.open(real("evt2_gen3_539k.raw")).read_all()


def test_by_time_windows_partition_the_stream(evt2_events):
    r = eventflow.open(real("evt2_gen3_539k.raw"), chunk_events=10_000)
    windows = list(r.by_time(1000))
    t0 = int(evt2_events["t"][0])
    assert len(windows) == (int(evt2_events["t"][-1]) - t0) // 1000 + 1
    for k, w in enumerate(windows):
        assert ((w["t"] >= t0 + k * 1000) & (w["t"] < t0 + (k + 1) * 1000)).all()
    assert np.array_equal(np.concatenate(windows), evt2_events)


def test_by_time_yields_empty_windows_across_gaps(tmp_path):
    ev = eventflow.from_fields([1, 2, 3], [1, 1, 1], [0, 1, 0], [0, 5, 35])
    eventflow.write(tmp_path / "gap.npz", ev, width=4, height=4)
    sizes = [len(w) for w in eventflow.open(tmp_path / "gap.npz").by_time(10)]
    assert sizes == [2, 0, 0, 1]
    sizes = [len(w) for w in eventflow.open(tmp_path / "gap.npz").by_time(10, t_start=-10)]
    assert sizes == [0, 2, 0, 0, 1]


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 100_000), st.integers(1, 300_000))
def test_by_count_gives_exact_sizes_whatever_the_chunking(n, chunk):
    r = eventflow.open(real("evt3_gen41_5000.raw"), chunk_events=chunk)
    parts = list(r.by_count(n))
    assert all(len(p) == n for p in parts[:-1]) and 0 < len(parts[-1]) <= n
    assert sum(len(p) for p in parts) == 5000


def test_seek_and_read_time_equal_filtering(evt2_events):
    r = eventflow.open(real("evt2_gen3_539k.raw"))
    t = evt2_events["t"]
    mid = int(t[len(t) // 2])
    assert np.array_equal(r.seek(mid).read_all(), evt2_events[t >= mid])
    assert np.array_equal(r.seek(None).read_time(mid, mid + 500), evt2_events[(t >= mid) & (t < mid + 500)])
    assert len(r.read_all()) == len(evt2_events)  # seek(None) went back to the start


def test_geometry_conflict_with_the_file_is_an_error_but_a_guess_yields(tmp_path):
    p = tmp_path / "g.raw"
    p.write_bytes(b"% evt 3.0\n% geometry 64x48\n% end\n")
    with pytest.raises(EventFormatError, match="width=346 was given but the header geometry line says 64"):
        eventflow.open(p, width=346, height=48)
    # gen3's 640x480 is only inferred from the plugin name: the caller's geometry wins
    r = eventflow.open(real("evt2_gen3_539k.raw"), width=1280, height=720)
    assert (r.width, r.height) == (1280, 720)


def test_caller_arrays_are_never_modified(tmp_path):
    ev = eventflow.from_fields([3, 1], [1, 1], [0, 1], [10, 5])
    before = ev.copy()
    eventflow.write(tmp_path / "a.raw", ev, width=4, height=4)
    eventflow.write(tmp_path / "a.npz", ev, width=4, height=4)
    assert np.array_equal(ev, before)


def test_conversions_to_tonic_and_torch():
    ev = eventflow.from_fields([1, 2], [3, 4], [1, 0], [10, 20])
    tv = eventflow.to_tonic(ev)
    assert tv.dtype == eventflow.TONIC_DTYPE and tv["p"].tolist() == [True, False]
    tt = eventflow.to_torch(ev)
    assert tt["t"].tolist() == [10, 20] and tt["x"].int().tolist() == [1, 2]
    ev["t"][0] = 11
    assert tt["t"][0].item() == 11  # a view, not a copy
    assert eventflow.as_events(tv)["p"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="missing"):
        eventflow.as_events(np.zeros(2, dtype=[("x", "u2"), ("t", "i8")]))


def test_read_all_with_a_count_bound_equals_iteration_even_if_the_bound_is_wrong(monkeypatch, evt2_events):
    r = eventflow.open(real("evt2_gen3_539k.raw"), chunk_events=50_000)
    assert np.array_equal(r.read_all(), evt2_events)  # the bounded path (one event per word at most)
    monkeypatch.setattr(type(r), "_max_events", lambda self: 120_000)  # a bound that is too small
    assert np.array_equal(r.read_all(), evt2_events)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 5000), st.floats(0, 0.01))
def test_out_of_bounds_kernel_equals_its_reference(seed, n, rate):
    from eventflow.kernels.bounds import out_of_bounds, out_of_bounds_reference
    rng = np.random.default_rng(seed)
    ev = eventflow.from_fields(rng.integers(0, 64, n), rng.integers(0, 48, n), rng.integers(0, 2, n), np.arange(n))
    bad = rng.random(n) < rate
    ev["x"][bad] = rng.integers(64, 70, bad.sum())
    ev["y"][rng.random(n) < rate] = 48                    # y-only violations too
    assert out_of_bounds(ev.view(np.uint64), 64, 48) == out_of_bounds_reference(ev, 64, 48)
