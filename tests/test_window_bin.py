"""The pipeline's streaming window-binning kernel equals its plain reference, cut anywhere."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.kernels import window_bin as K

REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real")


def run_kernel(ev, width, height, size, window, t0, cuts, cap=3, max_gap=0):
    w, h = size
    xmap = np.arange(width, dtype=np.int64) * w // width
    ymap = np.arange(height, dtype=np.int64) * h // height
    acc = K.new_acc(t0, window)
    partial = np.zeros((2, h, w), np.float32)
    out = np.zeros((cap, 2, h, w), np.float32)
    counts, touched = np.zeros(cap, np.int64), np.zeros(cap + 1, np.int64)
    frames, ns = [], []
    bounds = [0, *sorted(cuts), len(ev)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        words = np.ascontiguousarray(ev[a:b]).view(np.uint64)
        i = 0
        while True:
            i, n = K.bin_windows(words, i, width, height, xmap, ymap, window, acc, partial, out, counts, touched,
                                 max_gap)
            frames += list(out[:n].copy())
            ns += list(counts[:n])
            if i >= b - a:
                break
    done = np.stack(frames) if frames else np.zeros((0, 2, h, w), np.float32)
    reasons = {"oob": acc[K.A_OOB], "pol": acc[K.A_POL], "back": acc[K.A_BACK], "before": acc[K.A_BEFORE],
               "jump": acc[K.A_JUMP]}
    return done, partial, reasons, np.array(ns), acc


def random_events(seed, n, width, height, bad=True, dt_max=3000, bad_share=20):
    g = np.random.default_rng(seed)
    t = np.cumsum(g.integers(0, dt_max, n))
    if bad:
        t[g.integers(0, n, n // bad_share)] -= 5000                 # some go back in time
    x = g.integers(0, width, n)
    p = g.integers(0, 2, n)
    if bad:
        x[g.integers(0, n, n // bad_share)] = width + 1             # out of bounds
        p[g.integers(0, n, n // bad_share)] = 2                     # bad polarity
    return eventflow.from_fields(x, g.integers(0, height, n), p, t)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 400), max_size=6), cap=st.integers(1, 5),
       t0=st.integers(-2000, 20_000))
def test_kernel_equals_reference_cut_anywhere(seed, cuts, cap, t0):
    ev = random_events(seed, 400, 20, 12)
    done, partial, reasons, ns, acc = run_kernel(ev, 20, 12, (7, 5), 10_000, t0, cuts, cap)
    want_done, want_partial, want_reasons, _ = K.bin_windows_reference(ev, 20, 12, (7, 5), 10_000, t0)
    np.testing.assert_array_equal(done, want_done)
    np.testing.assert_array_equal(partial, want_partial)
    assert reasons == want_reasons
    assert ns.sum() + acc[K.A_N_OPEN] + sum(reasons.values()) == len(ev)      # nothing lost
    np.testing.assert_array_equal(ns, want_done.reshape(len(want_done), -1).sum(1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 5000), max_size=4),
       bad_share=st.sampled_from([0, 300, 2000]))
def test_dense_windows_equal_reference(seed, cuts, bad_share):
    """Windows of hundreds of events: the kernel's block path (runs of valid in-window events
    checked a block at a time) with rare bad events inside blocks, cut anywhere."""
    ev = random_events(seed, 5000, 20, 12, bad=bad_share > 0, dt_max=4, bad_share=max(bad_share, 1))
    t0 = int(ev["t"][0])
    done, partial, reasons, ns, acc = run_kernel(ev, 20, 12, (7, 5), 2_000, t0, cuts, cap=2)
    want_done, want_partial, want_reasons, _ = K.bin_windows_reference(ev, 20, 12, (7, 5), 2_000, t0)
    np.testing.assert_array_equal(done, want_done)
    np.testing.assert_array_equal(partial, want_partial)
    assert reasons == want_reasons and len(done) >= 2
    if bad_share == 0:
        assert sum(reasons.values()) == 0


def test_a_time_gap_makes_empty_windows_within_capacity():
    ev = eventflow.from_fields([0, 1, 2], [0, 0, 0], [1, 0, 1], [0, 5, 100_005])
    done, partial, reasons, ns, acc = run_kernel(ev, 4, 4, (4, 4), 10, 0, [], cap=4)
    assert len(done) == 10_000 and done[0].sum() == 2 and done[1:].sum() == 0 and partial.sum() == 1


def jumpy_events(seed, n, width, height, window):
    """Events with clock trouble: single far outliers (forward and back), real jumps forward
    (the clock moves on), restarts (the clock goes back and counts on), some bad events."""
    g = np.random.default_rng(seed)
    dt = g.integers(0, window // 2, n)
    kinds = g.integers(0, 40, n)
    t = np.zeros(n, np.int64)
    now = int(g.integers(0, 10 * window))
    for i in range(n):
        now += int(dt[i])
        if kinds[i] == 0:                       # a lone outlier, far ahead or behind, up to int64's ends
            far = int(g.choice([g.integers(50 * window, 2**40), g.integers(2**60, 2**63 - 2**50)]))
            t[i] = max(-2**63, min(2**63 - 1, now + int(g.choice([1, -1])) * far))
            continue
        if kinds[i] == 1:                       # the clock jumps forward for good
            now += int(g.integers(50 * window, 10**12))
        elif kinds[i] == 2:                     # the clock restarts, far back
            now = int(g.integers(0, 5 * window))
        t[i] = now
    x, p = g.integers(0, width, n), g.integers(0, 2, n)
    x[g.integers(0, n, n // 30)] = width + 1
    return eventflow.from_fields(x, g.integers(0, height, n), p, t)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 300), max_size=6), cap=st.integers(1, 4),
       gap_windows=st.sampled_from([1, 3, 40]), origin=st.integers(-20_000, 20_000))
def test_clock_jumps_kernel_equals_reference_cut_anywhere(seed, cuts, cap, gap_windows, origin):
    window = 1000
    ev = jumpy_events(seed, 300, 20, 12, window)
    t0 = int(ev["t"][0]) + origin
    max_gap = gap_windows * window
    done, partial, reasons, ns, acc = run_kernel(ev, 20, 12, (7, 5), window, t0, cuts, cap, max_gap)
    want_done, want_partial, want_reasons, clock = K.bin_windows_reference(ev, 20, 12, (7, 5), window, t0, max_gap)
    np.testing.assert_array_equal(done, want_done)
    np.testing.assert_array_equal(partial, want_partial)
    assert reasons == want_reasons
    assert clock == {"skipped": acc[K.A_SKIPPED], "gaps": acc[K.A_GAPS]}
    assert ns.sum() + acc[K.A_N_OPEN] + sum(reasons.values()) == len(ev)      # nothing lost
    # the work is bounded by the stream, never by its timestamps
    assert len(done) <= len(ev) * (gap_windows + 2)


def test_a_sparse_stream_loses_nothing_and_timestamps_at_the_ends_are_rejected():
    """Events 11 s apart with a 10 s limit: every gap is a jump, each confirmed by the next
    event, and no event is lost (only the last waits, held); times beyond 2**61 us are rejected."""
    window = 1000
    t = [i * 11_000_000 for i in range(6)] + [2**62, -2**62, 2**63 - 1, -2**63, 55_000_100]
    ev = eventflow.from_fields([1] * len(t), [1] * len(t), [0] * len(t), t)
    for cuts in ([], [1], [2, 3], [6, 7, 8]):
        done, partial, reasons, ns, acc = run_kernel(ev, 4, 4, (4, 4), window, 0, cuts, cap=2, max_gap=10**7)
        want = K.bin_windows_reference(ev, 4, 4, (4, 4), window, 0, 10**7)
        np.testing.assert_array_equal(done, want[0])
        np.testing.assert_array_equal(partial, want[1])
        assert reasons == want[2] and reasons["jump"] == 4 and acc[K.A_GAPS] == 5
        assert ns.sum() + acc[K.A_N_OPEN] == 7


def test_a_lone_outlier_is_rejected_and_a_real_jump_moves_the_clock():
    window, day = 1000, 86_400 * 10**6
    t = [0, 10, 2**40, 20, 3000, 3000 + day, 3010 + day, 5000 + day, 7000 + day]
    ev = eventflow.from_fields([0] * len(t), [0] * len(t), [1] * len(t), t)
    done, partial, reasons, ns, acc = run_kernel(ev, 4, 4, (4, 4), window, 0, [], cap=4, max_gap=10 * window)
    assert reasons["jump"] == 1            # the outlier; the first event after the real jump is kept
    assert acc[K.A_GAPS] == 1 and acc[K.A_SKIPPED] == (3000 + day) // window - 4
    # windows [0, 1000) [1000, 2000) [2000, 3000) [3000, 4000), then from 3000 + day on:
    # [3000, 4000) [4000, 5000) [5000, 6000) [6000, 7000) + day, and the open one [7000, 8000) + day
    assert ns.tolist() == [3, 0, 0, 1, 2, 0, 1, 0] and partial.sum() == 1
    assert acc[K.A_T0] + acc[K.A_K] * window == 7000 + day
    assert reasons["back"] == 0
    want = K.bin_windows_reference(ev, 4, 4, (4, 4), window, 0, 10 * window)
    np.testing.assert_array_equal(done, want[0])
    # without the limit the lone outlier at 2**40 us makes empty windows (here: stopped at capacity)
    acc0 = K.new_acc(0, window)
    out = np.zeros((64, 2, 4, 4), np.float32)
    words = np.ascontiguousarray(ev).view(np.uint64)
    i, n = K.bin_windows(words, 0, 4, 4, np.arange(4), np.arange(4), window, acc0, np.zeros((2, 4, 4), np.float32),
                         out, np.zeros(64, np.int64), np.zeros(65, np.int64))
    assert n == 64 and i == 2   # stuck at the outlier, 64 empty windows out


def test_real_recording():
    ev = eventflow.open(os.path.join(REAL, "evt2_gen3_539k.raw")).read_all()
    t0 = int(ev["t"][0])
    done, partial, reasons, ns, acc = run_kernel(ev, 640, 480, (64, 48), 5_000, t0, [100_000, 300_001], cap=8)
    want_done, want_partial, want_reasons, _ = K.bin_windows_reference(ev, 640, 480, (64, 48), 5_000, t0)
    np.testing.assert_array_equal(done, want_done)
    np.testing.assert_array_equal(partial, want_partial)
    assert reasons == want_reasons and len(done) >= 9


def test_window_stage_gives_the_inputs_training_encodes():
    """The pipeline's window stage and InputSpec.encode (what training and eval use) agree."""
    from eventflow.model import InputSpec
    from eventflow.pipeline.stages import WindowStage

    spec = InputSpec((20, 12), (7, 5), 10_000, clip=3.0)
    ev = random_events(3, 800, 20, 12, bad=False)
    stage = WindowStage(spec)
    parts = [w for a, b in ((0, 300), (300, 301), (301, 800)) for w in stage.step(ev[a:b], 0)]
    last = stage.finish(0)
    wins = [w for w in parts + [last] if w is not None]
    assert all(w.epoch == 0 for w in wins)
    x = np.concatenate([w.x for w in wins])
    starts = np.concatenate([w.t_start_us for w in wins])
    t0 = int(ev["t"][0])
    np.testing.assert_array_equal(starts, t0 + 10_000 * np.arange(len(x)))
    np.testing.assert_array_equal(x, spec.encode(ev, t0, len(x)))


def test_window_stage_after_a_clock_jump_restarts_and_counts():
    """A day's jump in a stream: nothing lost, the day's windows skipped and counted, the windows
    after it start at the new time and carry the next epoch; cut anywhere, the same windows."""
    from eventflow.model import InputSpec
    from eventflow.pipeline.stages import WindowStage

    spec = InputSpec((20, 12), (7, 5), 10_000)
    day = 86_400 * 10**6
    ev = random_events(4, 400, 20, 12, bad=False)
    ev["t"][200:] += day
    whole = None
    for cuts in ([], [200], [201], [150, 202, 399]):
        stage = WindowStage(spec, max_gap_us=10**6)
        bounds = [0, *cuts, len(ev)]
        wins = [w for a, b in zip(bounds[:-1], bounds[1:]) for w in stage.step(ev[a:b], 0)]
        wins.append(stage.finish(0))
        starts = np.concatenate([w.t_start_us for w in wins])
        epochs = np.concatenate([np.full(len(w), w.epoch) for w in wins])
        assert stage.rejected == {} and stage.dropped == {}
        assert stage.clock_jumps["jumps"] == 1 and stage.clock_jumps["skipped_windows"] > 8_000_000
        assert sum(int(w.n_events.sum()) for w in wins) == len(ev)
        after = starts >= int(ev["t"][200])
        assert starts[after][0] == int(ev["t"][200]) and (epochs == after).all()
        assert len(starts) < 100                       # not the 8.6 million windows of the day
        got = (starts, np.concatenate([w.x for w in wins]))
        if whole is None:
            whole = got
        np.testing.assert_array_equal(got[0], whole[0])
        np.testing.assert_array_equal(got[1], whole[1])
    with pytest.raises(ValueError, match="source.max_gap_us"):
        WindowStage(spec, max_gap_us=5_000)


def test_a_jump_candidate_is_in_flight_until_decided_so_rejected_never_goes_down():
    """Cut right after a jump's first event: that event is pending (not rejected) until the next
    one confirms the jump; a candidate still waiting at the end of the stream is rejected."""
    from eventflow.model import InputSpec
    from eventflow.pipeline.stages import WindowStage

    spec = InputSpec((20, 12), (7, 5), 10_000)
    day = 86_400 * 10**6
    ev = random_events(4, 400, 20, 12, bad=False)
    ev["t"][200:] += day
    stage = WindowStage(spec, max_gap_us=10**6)
    n = sum(int(w.n_events.sum()) for w in stage.step(ev[:201], 0))
    assert stage.rejected == {} and n + stage.pending == 201
    n += sum(int(w.n_events.sum()) for w in stage.step(ev[201:], 0))
    assert stage.rejected == {} and stage.clock_jumps["jumps"] == 1 and n + stage.pending == len(ev)
    lone = WindowStage(spec, max_gap_us=10**6)
    list(lone.step(ev[:201], 0))                # the stream ends on the candidate: a lone outlier
    lone.finish(0)
    assert lone.rejected == {"time_jump": 1} and lone.pending == 0


def test_window_stage_counts_what_a_consumer_leaves_unbinned():
    """A step's iterator left before its end: the events it did not bin are counted as dropped
    (``abandoned``), the pending count covers them meanwhile, and state cannot be taken then."""
    from eventflow.model import InputSpec
    from eventflow.pipeline.stages import WindowStage

    spec = InputSpec((20, 12), (7, 5), 1_000)
    ev = random_events(5, 3000, 20, 12, bad=False)          # ~ 4,500 windows: many chunks
    stage = WindowStage(spec)
    it = stage.step(ev, 0)
    first = next(it)
    assert len(first) == WindowStage.CAPACITY and stage.pending > 0
    with pytest.raises(ValueError, match="middle of a step"):
        stage.get_state()
    it.close()
    left = stage.dropped["abandoned"]
    assert 0 < left < len(ev) and int(first.n_events.sum()) + stage.pending + left == len(ev)
    stage.get_state()


@pytest.mark.parametrize("first_t, first_x", [(-8_308_853_112_475_195_164, 1), (-2**50, 99)])
def test_an_origin_from_a_bad_first_event_does_not_walk_to_the_stream(first_t, first_x):
    """An origin next to a first event that is rejected (a time beyond 2**61 us, as hypothesis
    found with the origin 19,445 us before it; or a position outside the sensor), and the stream
    really far from both: the gap limit holds from the origin itself, so the clock moves to the
    stream (a re-anchor) instead of emitting every empty window in between (about 10**16 and
    10**12 of them here)."""
    window = 1000
    t = [first_t] + [5_000 + 100 * i for i in range(20)]
    ev = eventflow.from_fields([first_x] + [1] * 20, [1] * 21, [0] * 21, t)
    w, h = 4, 4
    xmap, ymap = np.arange(4, dtype=np.int64), np.arange(4, dtype=np.int64)
    origin = first_t - 19_445
    acc = K.new_acc(origin, window)
    partial, out = np.zeros((2, h, w), np.float32), np.zeros((2, 2, h, w), np.float32)
    counts, touched = np.zeros(2, np.int64), np.zeros(3, np.int64)
    words, i, windows = np.ascontiguousarray(ev).view(np.uint64), 0, 0
    for _ in range(100):                      # (the stream needs a handful of calls; a walk, billions)
        i, n = K.bin_windows(words, i, 4, 4, xmap, ymap, window, acc, partial, out, counts, touched, 10 * window)
        windows += n
        if i >= len(ev):
            break
    assert i == len(ev) and windows <= 2 and acc[K.A_GAPS] == 1
    assert acc[K.A_N_OPEN] + counts[:windows].sum() == 20          # every event of the stream binned
    done, partial_ref, reasons, clock = K.bin_windows_reference(ev, 4, 4, (4, 4), window, origin, 10 * window)
    assert len(done) == windows and np.array_equal(partial_ref, partial) and clock["gaps"] == 1
    assert reasons["jump"] + reasons["oob"] == 1                   # the bad first event, counted
