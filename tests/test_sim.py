"""The simulator core: sensor presets, kernels against references, determinism, statistics, CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.cli import main as cli_main
from eventflow.kernels import sim as K
from eventflow.sim import Simulator, sensor_preset, simulate, simulate_chunks
from eventflow.sim.simulator import noise_block

QUIET = dict(background_rate_hz=0.0, hot_pixel_fraction=0.0, shot_noise_rate_hz=0.0)


class _Scene:
    duration_s = 0.1

    def ground_truth(self):
        return None

    def save_ground_truth(self, stem):
        return []


class MovingBar(_Scene):
    """A bright vertical bar (area-sampled edges) crossing a dark background at ``speed`` px/s."""

    def __init__(self, width=48, height=8, x0=4.0, bar=6.0, speed=300.0, bright=0.8, dark=0.2):
        self.width, self.height, self.x0, self.bar, self.speed = width, height, x0, bar, speed
        self.bright, self.dark = bright, dark
        self.cols = np.arange(width, dtype=np.float64)

    def left(self, t_s):
        return self.x0 + self.speed * t_s

    def render(self, t_s, out):
        lo = self.left(t_s)
        cover = np.clip(np.minimum(self.cols + 1, lo + self.bar) - np.maximum(self.cols, lo), 0, 1)
        out[:] = (self.dark + (self.bright - self.dark) * cover).astype(np.float32)


class TexturedDisc(_Scene):
    """A disc with a sinusoidal texture gliding diagonally over a static textured background."""

    def __init__(self, width=32, height=24, speed=150.0):
        self.width, self.height, self.speed = width, height, speed
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
        self.background = 0.3 + 0.1 * np.sin(self.xx * 0.7) * np.cos(self.yy * 0.5)

    def render(self, t_s, out):
        cx, cy = 6 + self.speed * t_s, 6 + 0.5 * self.speed * t_s
        dx, dy = self.xx - cx, self.yy - cy
        inside = np.clip(5.0 - np.hypot(dx, dy) + 0.5, 0, 1)
        texture = 0.6 + 0.3 * np.sin(dx * 1.3) * np.sin(dy * 1.1)
        out[:] = (self.background * (1 - inside) + texture * inside).astype(np.float32)


class Uniform(_Scene):
    """A uniform image: constant, or following ``level(t_s)``."""

    def __init__(self, width=16, height=16, level=lambda t_s: 0.5):
        self.width, self.height, self.level = width, height, level

    def render(self, t_s, out):
        out[:] = np.float32(self.level(t_s))


def sensor_for(scene, **fields):
    return sensor_preset("dvs128", width=scene.width, height=scene.height, **fields)


def run(scene, sensor, seconds, seed=0):
    sim = Simulator(scene, sensor, seed)
    events, state = sim.advance(int(round(seconds * 1e6)), sim.init_state())
    return events, state


# ---------------------------------------------------------------- sensors


def test_presets_have_the_documented_geometry():
    geometry = {name: (sensor_preset(name).width, sensor_preset(name).height)
                for name in ("dvs128", "davis346", "gen1", "imx636", "nmnist")}
    assert geometry == {"dvs128": (128, 128), "davis346": (346, 260), "gen1": (304, 240),
                        "imx636": (1280, 720), "nmnist": (34, 34)}


def test_unknown_preset_or_field_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown sensor 'dvs9'.*dvs128.*nmnist"):
        sensor_preset("dvs9")
    with pytest.raises(ValueError, match="unknown sensor field.*contrast_onn.*contrast_on"):
        sensor_preset("dvs128", contrast_onn=0.3)
    with pytest.raises(ValueError, match="background_rate_hz"):
        sensor_preset("dvs128", background_rate_hz=-1.0)


def test_a_scene_that_renders_bad_intensity_is_named_with_the_time():
    scene = Uniform(level=lambda t_s: 0.5 if t_s < 0.0031 else -2.0)
    sim = Simulator(scene, sensor_for(scene))
    with pytest.raises(ValueError, match=r"Uniform rendered 256 pixel\(s\) .* at t=4000 us"):
        sim.advance(10_000, sim.init_state())


def test_scene_and_sensor_geometry_must_agree_and_time_only_moves_forward():
    with pytest.raises(ValueError, match="16x16.*'dvs128' is 128x128"):
        Simulator(Uniform(), sensor_preset("dvs128"))
    scene = Uniform()
    sim = Simulator(scene, sensor_for(scene))
    _, state = sim.advance(5000, sim.init_state())
    with pytest.raises(ValueError, match="before the state's end"):
        sim.advance(4999, state)


# ---------------------------------------------------------------- kernels equal their references


def random_rect(rng, height, width):
    y0, x0 = int(rng.integers(0, height + 1)), int(rng.integers(0, width + 1))
    return y0, int(rng.integers(y0, height + 1)), x0, int(rng.integers(x0, width + 1))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(1, 9), height=st.integers(1, 6),
       scale=st.sampled_from([0.05, 0.5, 3.0]), ta=st.integers(0, 10**6), span=st.sampled_from([1.0, 62.5, 1000.0]))
def test_crossings_and_log_kernels_equal_references(seed, width, height, scale, ta, span):
    rng = np.random.default_rng(seed)
    n = width * height
    img0 = rng.uniform(0.0, 1.0, n).astype(np.float32)
    img1 = np.where(rng.random(n) < 0.6, img0, rng.uniform(0.0, 1.0, n) ** (1 + scale)).astype(np.float32)
    scratch = (np.empty(n, np.float32), np.empty(n, np.int32), np.empty(n, np.int32))
    l0 = np.empty(n, np.float32)
    assert K.log_region(img0, 1e-3, width, 0, height, 0, width, l0, *scratch) == 0
    np.testing.assert_array_equal(l0, K.log_region_reference(img0, 1e-3))  # bit for bit
    rect = random_rect(rng, height, width)
    l1 = l0.copy()
    assert K.log_region(img1, 1e-3, width, *rect, l1, *scratch) == 0
    inside = np.zeros((height, width), bool)
    inside[rect[0]:rect[1], rect[2]:rect[3]] = True
    inside = inside.ravel()
    np.testing.assert_array_equal(l1, np.where(inside, K.log_region_reference(img1, 1e-3), l0))
    for limit in (0.3, 1.0, 5.0):
        assert K.exceeding_box(l0, l1, limit, width, *rect) == K.exceeding_box_reference(l0, l1, limit, width, *rect)
    ref = l0 + rng.normal(0, 0.1, n)
    thr_on, thr_off = rng.uniform(0.01, 0.4, n), rng.uniform(0.01, 0.4, n)
    region = random_rect(rng, height, width) if rng.random() < 0.7 else (0, height, 0, width)
    hole = random_rect(rng, region[1] - region[0], region[3] - region[2]) if rng.random() < 0.6 else (0, 0, 0, 0)
    hole = (hole[0] + region[0], hole[1] + region[0], hole[2] + region[2], hole[3] + region[2])
    e_pix, e_t, e_p, e_ref = K.crossings_reference(l0, l1, ref, thr_on, thr_off, float(ta), ta + span, ta, width,
                                                   region, hole)
    cap = int(rng.integers(0, 8)) + 2  # often too small: the kernel stops and resumes where it stopped
    pix, t, p = np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int8)
    ref_k, stop, end, resumes = ref.copy(), 0, 2, 0
    bounds = np.empty((2, n), np.float32)
    K.candidate_bounds(ref_k, thr_on, thr_off, bounds)
    np.testing.assert_array_equal(bounds, K.candidate_bounds_reference(ref, thr_on, thr_off))
    while True:
        stop, end = K.crossings(l0, l1, ref_k, thr_on, thr_off, float(ta), ta + span, np.int64(ta), pix, t, p, end,
                                stop, width, *region, *hole, bounds, np.zeros(K.mask_size(width), np.uint8))
        if stop == n:
            break
        resumes += 1
        pix, t, p = (np.concatenate([a, np.zeros(len(a) + 1, a.dtype)]) for a in (pix, t, p))
    assert end == 2 + len(e_pix) and resumes <= 64
    np.testing.assert_array_equal(pix[2:end], e_pix)
    np.testing.assert_array_equal(t[2:end], e_t)
    np.testing.assert_array_equal(p[2:end], e_p)
    np.testing.assert_array_equal(ref_k, e_ref)
    np.testing.assert_array_equal(bounds, K.candidate_bounds_reference(e_ref, thr_on, thr_off))  # kept in step
    assert ((e_t > ta) & (e_t <= math.ceil(ta + span))).all()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(1, 9), height=st.integers(1, 6), split=st.booleans(),
       ta=st.integers(0, 10**6), span=st.sampled_from([2.0, 125.0, 1000.0]))
def test_interval_crossings_equal_reference_crossings_of_its_parts(seed, width, height, split, ta, span):
    """interval_crossings = the crossings of the box's halves (with split) then of the region
    outside the box, from a buffer that has to grow (the kernel replaces it)."""
    rng = np.random.default_rng(seed)
    n = width * height
    l0 = rng.normal(-1.0, 0.5, n).astype(np.float32)
    lm = (l0 + rng.normal(0, 0.4, n) * (rng.random(n) < 0.7)).astype(np.float32)
    l1 = (lm + rng.normal(0, 0.4, n) * (rng.random(n) < 0.7)).astype(np.float32)
    region = random_rect(rng, height, width) if rng.random() < 0.7 else (0, height, 0, width)
    box = random_rect(rng, region[1] - region[0], region[3] - region[2]) if rng.random() < 0.8 else (0, 0, 0, 0)
    box = (box[0] + region[0], box[1] + region[0], box[2] + region[2], box[3] + region[2])
    ref = l0 + rng.normal(0, 0.1, n)
    thr_on, thr_off = rng.uniform(0.01, 0.3, n), rng.uniform(0.01, 0.3, n)
    tb, tm = ta + span, ta + 0.5 * span
    parts, r = [], ref.copy()
    if split and box[0] < box[1] and box[2] < box[3]:
        for a, b, t0, t1 in ((l0, lm, float(ta), tm), (lm, l1, tm, tb)):
            *ev, r = K.crossings_reference(a, b, r, thr_on, thr_off, t0, t1, ta, width, box)
            parts.append(ev)
    *ev, r = K.crossings_reference(l0, l1, r, thr_on, thr_off, float(ta), tb, ta, width, region, box)
    parts.append(ev)
    e_pix, e_t, e_p = (np.concatenate(col) for col in zip(*parts))
    bounds = np.empty((2, n), np.float32)
    K.candidate_bounds(ref, thr_on, thr_off, bounds)
    pix, t, p = np.full(3, -1, np.int64), np.full(3, -1, np.int64), np.full(3, -1, np.int8)
    pix, t, p, end = K.interval_crossings(l0, lm, l1, ref, thr_on, thr_off, float(ta), tb, np.int64(ta), pix, t, p, 1,
                                          width, *region, *box, split, bounds, np.zeros(K.mask_size(width), np.uint8))
    assert end == 1 + len(e_pix) and pix[0] == t[0] == p[0] == -1  # written from start, what was before kept
    np.testing.assert_array_equal(pix[1:end], e_pix)
    np.testing.assert_array_equal(t[1:end], e_t)
    np.testing.assert_array_equal(p[1:end], e_p)
    np.testing.assert_array_equal(ref, r)
    np.testing.assert_array_equal(bounds, K.candidate_bounds_reference(r, thr_on, thr_off))


def test_log_is_accurate_and_counts_bad_pixels():
    img = np.concatenate([np.linspace(0.0, 1.0, 5001), [2.5e-7, 0.999999]]).astype(np.float32)
    out = np.empty(len(img), np.float32)
    scratch = (np.empty(len(img), np.float32), np.empty(len(img), np.int32), np.empty(len(img), np.int32))
    assert K.log_region(img, 1e-3, len(img), 0, 1, 0, len(img), out, *scratch) == 0
    exact = np.log(img.astype(np.float64) + np.float64(np.float32(1e-3)))
    assert np.abs(out - exact).max() <= 2 * np.spacing(np.float32(7.0))  # within 2 ulp of the largest |log|
    bad = np.array([0.5, -1.0, np.nan, np.inf, -1e-3, 0.2], np.float32)
    out = np.empty(6, np.float32)
    assert K.log_region(bad, 1e-3, 6, 0, 1, 0, 6, out, *(a[:6] for a in scratch)) == 4
    assert K.log_region_bad_reference(bad, 1e-3) == 4


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 200), refractory=st.integers(0, 300))
def test_refractory_and_shift_kernels_equal_references(seed, n, refractory):
    rng = np.random.default_rng(seed)
    pix = rng.integers(0, 7, n).astype(np.int64)
    t = np.sort(rng.integers(0, 2000, n)).astype(np.int64)
    kind = rng.integers(0, 4, n).astype(np.int8)
    order = np.argsort(t * 7 + pix, kind="stable")
    last = np.where(rng.random(7) < 0.5, K.NEVER, rng.integers(-500, 0, 7)).astype(np.int64)
    last_ref = last.copy()
    keep, suppressed = np.empty(n, np.bool_), np.zeros(4, np.int64)
    K.refractory_pass(order, pix, t, kind, last, np.int64(refractory), keep, suppressed)
    e_keep, e_sup = K.refractory_reference(order, pix, t, kind, last_ref, refractory, 4)
    np.testing.assert_array_equal(keep, e_keep)
    np.testing.assert_array_equal(suppressed, e_sup)
    np.testing.assert_array_equal(last, last_ref)

    p = rng.integers(0, 2, n).astype(np.int8)
    thr_on, thr_off = rng.uniform(0.1, 0.3, 7), rng.uniform(0.1, 0.3, 7)
    ref = rng.normal(0, 1, 7)
    ref2, bounds = ref.copy(), np.empty((2, 7), np.float32)
    K.candidate_bounds(ref, thr_on, thr_off, bounds)
    K.shift_reference(ref, pix, p, thr_on, thr_off, bounds)
    K.shift_reference_reference(ref2, pix, p, thr_on, thr_off)
    np.testing.assert_array_equal(ref, ref2)
    np.testing.assert_array_equal(bounds, K.candidate_bounds_reference(ref2, thr_on, thr_off))


# ---------------------------------------------------------------- determinism and cut points

NOISY = dict(background_rate_hz=20.0, hot_pixel_fraction=0.02, hot_pixel_rate_hz=300.0, shot_noise_rate_hz=10.0,
             refractory_us=200)


def test_same_seed_same_events_other_seed_differs():
    scene = TexturedDisc()
    sensor = sensor_for(scene, **NOISY)
    a, sa = run(scene, sensor, 0.08, seed=3)
    b, sb = run(scene, sensor, 0.08, seed=3)
    c, _ = run(scene, sensor, 0.08, seed=4)
    assert len(a) > 500
    assert a.tobytes() == b.tobytes() and sa.counts() == sb.counts()
    assert a.tobytes() != c.tobytes()
    assert (np.diff(a["t"]) >= 0).all()
    pix = a["t"] * scene.width * scene.height + a["y"].astype(np.int64) * scene.width + a["x"]
    assert (np.diff(pix) >= 0).all()  # equal times come in pixel order


@pytest.fixture(scope="module")
def disc_whole():
    scene = TexturedDisc()
    return run(scene, sensor_for(scene, **NOISY), 0.07)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 70_000), min_size=1, max_size=8))
def test_any_cut_points_give_the_same_events(disc_whole, cuts):
    scene = TexturedDisc()
    sensor = sensor_for(scene, **NOISY)
    whole = disc_whole
    sim = Simulator(scene, sensor, 0)
    state, parts = sim.init_state(), []
    for t in sorted(cuts) + [70_000]:
        events, state = sim.advance(t, state)
        assert len(events) == 0 or events["t"][-1] <= t
        parts.append(events)
    assert eventflow.events.concatenate(parts).tobytes() == whole[0].tobytes()  # padding bytes too
    assert state.counts() == whole[1].counts()


def test_a_state_can_be_advanced_twice_with_the_same_result():
    scene = TexturedDisc()
    sim = Simulator(scene, sensor_for(scene, **NOISY), 1)
    _, mid = sim.advance(20_500, sim.init_state())
    first, s1 = sim.advance(40_000, mid)
    second, s2 = sim.advance(40_000, mid)
    assert first.tobytes() == second.tobytes() and s1.counts() == s2.counts()
    chunks = list(simulate_chunks(scene, sim.sensor, seed=1, seconds=0.04, chunk_us=7_000))
    assert len(chunks) == 6
    assert eventflow.events.concatenate(chunks).tobytes() == simulate(scene, sim.sensor, 1, 0.04).tobytes()


# ---------------------------------------------------------------- what the events say about the scene


def test_moving_bar_events_sit_on_its_edges_with_balanced_polarity():
    scene = MovingBar()
    exact, _ = run(scene, sensor_for(scene, refractory_us=0, contrast_sigma=0.0, **QUIET), 0.1)
    assert (exact["p"] == 1).sum() == (exact["p"] == 0).sum()  # each pixel goes up and back down
    events, state = run(scene, sensor_for(scene, refractory_us=0, **QUIET), 0.1)
    assert state.counts()["signal"] == len(events) > 1000
    on, off = int((events["p"] == 1).sum()), int((events["p"] == 0).sum())
    # with mismatch a pixel keeps up to one of its own threshold after the ON run, so fewer OFF follow
    assert 0 <= on - off <= 0.05 * len(events)
    lead = scene.left(events["t"] * 1e-6) + scene.bar  # dark -> bright: ON at the leading edge
    trail = scene.left(events["t"] * 1e-6)
    cx = events["x"] + 0.5
    near = np.where(events["p"] == 1, np.abs(cx - lead), np.abs(cx - trail))
    assert (near <= 2.0).mean() >= 0.99
    assert len(np.unique(events["y"])) == scene.height


def test_brightening_gives_on_and_dimming_gives_off_in_the_expected_number():
    eps, thr = 1e-3, 0.2
    for rate, polarity in ((+20.0, 1), (-20.0, 0)):
        scene = Uniform(level=lambda t_s, r=rate: 0.5 * math.exp(r * (t_s - 0.05)))
        sensor = sensor_for(scene, contrast_sigma=0.0, refractory_us=0, **QUIET)
        events, _ = run(scene, sensor, 0.1)
        assert set(events["p"].tolist()) == {polarity}
        change = abs(math.log(scene.level(0.1) + eps) - math.log(scene.level(0.0) + eps))
        assert len(events) == scene.width * scene.height * math.floor(change / thr + 1e-9)


def test_step_change_gives_about_delta_log_over_threshold_events():
    scene = Uniform(width=40, height=30, level=lambda t_s: 0.2 if t_s < 0.0105 else 0.8)
    change = math.log(0.801 / 0.201)  # 1.38: 6.9 thresholds of 0.2
    exact, _ = run(scene, sensor_for(scene, contrast_sigma=0.0, refractory_us=0, **QUIET), 0.02)
    assert len(exact) == scene.width * scene.height * 6
    assert ((exact["t"] > 10_000) & (exact["t"] <= 11_000)).all()  # within the grid interval of the step
    events, _ = run(scene, sensor_for(scene, refractory_us=0, **QUIET), 0.02)
    per_pixel = len(events) / (scene.width * scene.height)
    assert change / 0.2 - 1.5 < per_pixel < change / 0.2 + 0.5


def test_refractory_period_is_honoured_and_counted():
    scene = MovingBar(speed=1500.0, bar=3.0)
    loose, s0 = run(scene, sensor_for(scene, refractory_us=0, background_rate_hz=50.0), 0.03)
    events, state = run(scene, sensor_for(scene, refractory_us=800, background_rate_hz=50.0), 0.03)
    pix = events["y"].astype(np.int64) * scene.width + events["x"]
    order = np.lexsort((events["t"], pix))
    same = np.diff(pix[order]) == 0
    assert (np.diff(events["t"][order])[same] >= 800).all()
    c = state.counts()
    assert c["suppressed"] > 0 and c["emitted"] == len(events)
    assert c["signal"] + c["background"] - c["suppressed"] == len(events)
    assert s0.counts()["suppressed"] == 0 and len(loose) == len(events) + c["suppressed"]


def test_background_activity_has_the_configured_rate():
    scene, rate, seconds = Uniform(width=32, height=32), 20.0, 1.0
    sensor = sensor_for(scene, refractory_us=0, background_rate_hz=rate, hot_pixel_fraction=0.0)
    events, state = run(scene, sensor, seconds)
    expected = rate * scene.width * scene.height * seconds  # 20480
    assert abs(len(events) - expected) < 4 * math.sqrt(expected)
    assert state.counts()["background"] == len(events) and state.counts()["signal"] == 0
    assert abs((events["p"] == 1).mean() - 0.5) < 4 * 0.5 / math.sqrt(len(events))
    # time is uniform: each tenth of the second holds a tenth of the events
    per_tenth = np.bincount(events["t"] // 100_000, minlength=10)
    assert (np.abs(per_tenth - expected / 10) < 5 * math.sqrt(expected / 10)).all()


def test_hot_pixels_are_the_configured_fraction_firing_at_their_rate():
    scene = Uniform(width=40, height=40)
    sensor = sensor_for(scene, refractory_us=0, background_rate_hz=0.0, hot_pixel_fraction=0.02,
                        hot_pixel_rate_hz=500.0)
    events, state = run(scene, sensor, 0.5)
    pix, counts = np.unique(events["y"].astype(np.int64) * 40 + events["x"], return_counts=True)
    assert len(pix) == 32  # 2 % of 1600
    assert state.counts()["hot"] == len(events)
    assert abs(counts.mean() - 250) < 4 * math.sqrt(250 / 32)


def test_shot_noise_has_its_rate_and_moves_the_reference():
    scene = Uniform(width=32, height=32)
    sensor = sensor_for(scene, refractory_us=0, background_rate_hz=0.0, shot_noise_rate_hz=10.0)
    events, state = run(scene, sensor, 1.0)
    c = state.counts()
    expected = 10.0 * 32 * 32
    assert abs(c["shot"] - expected) < 4 * math.sqrt(expected)
    assert c["signal"] > 0.3 * c["shot"]  # a shot event shifts the reference: the pixel answers back
    assert len(events) == c["shot"] + c["signal"]


def test_noise_blocks_are_a_function_of_seed_and_block():
    sensor = sensor_preset("dvs128", background_rate_hz=5.0, shot_noise_rate_hz=1.0)
    hot = np.array([3, 70], np.int64)
    a, b, c = noise_block(sensor, hot, 7, 5), noise_block(sensor, hot, 7, 5), noise_block(sensor, hot, 7, 6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    span = 64 * sensor.base_interval_us
    assert (a[1] > 5 * span).all() and (a[1] <= 6 * span).all()


class RegionDisc(TexturedDisc):
    """``TexturedDisc`` that also renders rectangles (the optional ``render_region``)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.regions = []

    def render_region(self, t_s, out, y0, y1, x0, x1):
        full = np.empty_like(out)
        self.render(t_s, full)
        out[y0:y1, x0:x1] = full[y0:y1, x0:x1]
        self.regions.append((y1 - y0) * (x1 - x0))


def test_refinement_renders_only_the_fast_rectangle_with_the_same_events_as_whole_frames():
    scene = RegionDisc(width=48, height=40, speed=300.0)
    sensor = sensor_for(scene, **NOISY)
    with_regions, s1 = run(scene, sensor, 0.05)
    whole, s2 = run(TexturedDisc(width=48, height=40, speed=300.0), sensor, 0.05)
    assert with_regions.tobytes() == whole.tobytes() and s1.counts() == s2.counts()
    partial = [a for a in scene.regions if a < 48 * 40]
    assert s1.samples > 51 and partial  # refined, and only around the disc
    assert np.mean(partial) < 0.5 * 48 * 40


def test_samples_are_refined_where_the_image_changes_fast():
    still, s_still = run(Uniform(), sensor_for(Uniform(), **QUIET), 0.05)
    _, s_bar = run(MovingBar(speed=2000.0), sensor_for(MovingBar(), **QUIET), 0.05)
    assert len(still) == 0 and s_still.samples == 51  # the grid only: t = 0, 1, ..., 50 ms
    assert 51 < s_bar.samples <= 1 + 50 * 4  # at most two halvings (max_refine_levels=2)


# ---------------------------------------------------------------- the command line


def test_cli_simulates_a_registered_scene(tmp_path, capsys):
    pytest.importorskip("eventflow.sim.scenes.digits")
    out = tmp_path / "digit.npz"
    assert cli_main(["simulate", "digits", "--out", str(out), "--seconds", "0.05", "--seed", "2",
                     "--set", "background_rate_hz=1.5"]) == 0
    err = capsys.readouterr().err
    r = eventflow.open(str(out))
    events = r.read_all()
    assert (r.width, r.height) == (34, 34) and len(events) > 0
    assert f"{len(events):,} events" in err and str(out) in err
    assert events["t"].max() <= 50_000 and (np.diff(events["t"]) >= 0).all()
    again = tmp_path / "again.npz"
    cli_main(["simulate", "digits", "--out", str(again), "--seconds", "0.05", "--seed", "2",
              "--set", "background_rate_hz=1.5"])
    assert eventflow.open(str(again)).read_all().tobytes() == events.tobytes()


@pytest.mark.parametrize("argv, message", [
    (["simulate", "nosuch", "--out", "x.npz"], "unknown scene 'nosuch'"),
    (["simulate", "digits", "--out", "x.npz", "--sensor", "dvs9"], "unknown sensor 'dvs9'"),
    (["simulate", "digits", "--out", "x.npz", "--set", "nosuch=1"], "unknown sensor field"),
    (["simulate", "digits", "--out", "x.npz", "--set", "contrast_on"], "--set expects FIELD=VALUE"),
    (["simulate", "digits", "--out", "x.txt"], "x.txt"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "x.npz").exists()


def test_seconds_sets_the_timeline_of_scenes_that_have_one():
    from eventflow.sim.simulator import simulate_scene

    ev, scene, _ = simulate_scene("gesture", seed=3, seconds=0.6)
    labels = scene.ground_truth()
    assert scene.duration_s == 0.6 and len(labels) == 1
    assert 0 < labels["t_start"][0] < labels["t_end"][0] <= 600_000 and ev["t"][-1] <= 600_000


def test_a_kernel_cache_older_than_a_kernel_it_calls_is_dropped(tmp_path):
    """numba keys a cache on the defining file only: kernels/__init__ drops the cache index of a
    module when a module it imports from (raster -> sim, read from its source) has newer source."""
    import os

    from eventflow.kernels import _drop_stale_caches

    (tmp_path / "__pycache__").mkdir()
    sources = {"sim.py": "", "words.py": "", "raster.py": "from .sim import log_region\n",
               "binning.py": "import math\nfrom .words import xyp\n", "top.py": "from .raster import figure_log\n"}
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    stale = tmp_path / "__pycache__" / "raster.figure_log_kernel-300.py311.nbi"
    stale_above = tmp_path / "__pycache__" / "top.figure_intervals-50.py311.nbi"   # calls sim through raster
    fresh = tmp_path / "__pycache__" / "binning.count-10.py311.nbi"
    for f in (stale, stale_above, fresh):
        f.write_bytes(b"index")
        os.utime(f, (2000, 2000))
    for name in ("words.py", "raster.py", "top.py"):
        os.utime(tmp_path / name, (1000, 1000))       # older than the caches: kept
    os.utime(tmp_path / "sim.py", (3000, 3000))   # edited after raster's and top's caches were written: dropped
    assert sorted(_drop_stale_caches(str(tmp_path))) == sorted([str(stale), str(stale_above)])
    assert not stale.exists() and not stale_above.exists() and fresh.exists()
