"""The digits scene (N-MNIST-like) and its digit image generator."""
from __future__ import annotations

import numpy as np
import pytest

from eventflow.sim.digit_images import BOX_SIZE, centre_of_mass, digit_image, digit_images
from eventflow.sim.scene import Scene
from eventflow.sim.scenes import digits as D
from eventflow.sim.scenes import make_scene as make_named_scene

REAL_EVENTS_RANGE = (1069, 6326)      # per recording, shared/data/real/README.md


def ink_box(image, level=0.05):
    rows, cols = np.nonzero(image > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def frame(scene, t_s):
    out = np.empty((scene.height, scene.width), np.float32)
    scene.render(t_s, out)
    return out


# ------------------------------------------------------------------ digit images


def test_digit_image_is_deterministic_per_seed_and_varies_across_seeds():
    a = digit_image(5, 11)
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert np.array_equal(a, digit_image(5, 11))
    assert np.array_equal(a, digit_image(5, np.random.default_rng(11)))
    assert not np.allclose(a, digit_image(5, 12))
    batch = digit_images([1, 2, 3], seed=4)
    assert np.array_equal(batch, digit_images([1, 2, 3], seed=4))


@pytest.mark.parametrize("font_fraction", [0.0, 1.0])
def test_every_class_is_normalised_like_mnist(font_fraction):
    for digit in range(10):
        for seed in range(3):
            img = digit_image(digit, seed, font_fraction=font_fraction)
            assert 0.0 <= img.min() and img.max() <= 1.0 and img.max() > 0.9, (digit, seed)
            cx, cy = centre_of_mass(img)
            assert abs(cx - 13.5) < 0.15 and abs(cy - 13.5) < 0.15, (digit, seed, cx, cy)
            h, w = ink_box(img)
            assert BOX_SIZE - 2 <= max(h, w) <= BOX_SIZE + 2, (digit, seed, h, w)
            assert img[0].max() < 0.05 and img[-1].max() < 0.05, (digit, seed)   # a blank margin
            assert 0.04 < img.mean() < 0.35, (digit, seed, img.mean())            # strokes, not blobs


def test_classes_are_drawn_differently():
    # the mean image of each class differs from every other class's mean image
    means = np.stack([digit_images([d] * 12, seed=d).mean(axis=0) for d in range(10)])
    dist = np.abs(means[:, None] - means[None]).mean(axis=(2, 3))
    off_diagonal = dist[~np.eye(10, dtype=bool)]
    assert off_diagonal.min() > 0.03


def test_ones_are_narrow_and_zeros_have_a_hole():
    ones = digit_images([1] * 10, seed=0, font_fraction=0.0)
    assert np.median([ink_box(im)[1] for im in ones]) < 12
    zeros = digit_images([0] * 10, seed=0)
    assert all(im[12:16, 12:16].mean() < 0.3 for im in zeros)


@pytest.mark.parametrize("bad", [-1, 10, 2.5, True, "3"])
def test_digit_image_rejects_bad_digits(bad):
    with pytest.raises(ValueError, match="digit"):
        digit_image(bad, 0)


# ------------------------------------------------------------------ the scene


def test_scene_protocol_and_ground_truth(tmp_path):
    scene = D.make_scene(34, 34, seed=3, digit=6)
    assert isinstance(scene, Scene)
    assert scene.duration_s == D.DEFAULT_SECONDS == 0.3 and D.DEFAULT_SENSOR == "nmnist"
    assert scene.ground_truth() == 6
    paths = scene.save_ground_truth(str(tmp_path / "rec"))
    assert paths == [str(tmp_path / "rec_label.txt")]
    assert open(paths[0]).read() == "6\n"
    assert make_named_scene("digits", 34, 34, 3, digit=6).ground_truth() == 6


def test_scene_is_deterministic_and_every_class_renders():
    seen = set()
    for seed in range(40):
        scene = D.make_scene(34, 34, seed)
        seen.add(scene.ground_truth())
        a = frame(scene, 0.04)
        assert np.array_equal(a, frame(D.make_scene(34, 34, seed), 0.04))
        assert a.dtype == np.float32 and 0 < a.min() and a.max() <= 1
        assert a.max() - a.min() > 0.3     # a visible digit
    assert seen == set(range(10))


def test_saccades_at_the_documented_times():
    scene = D.make_scene(34, 34, seed=0, digit=2, timing_jitter_s=0.0, amplitude_jitter=0.0, ramp=0.3, lag_s=0.0)
    still = [(0.0, (0, 0)), (0.0099, (0, 0)), (0.076, (1.4, 4.8)), (0.1099, (1.4, 4.8)),
             (0.176, (4.8, 0.6)), (0.2099, (4.8, 0.6)), (0.276, (0, 0)), (0.3, (0, 0))]
    for t, xy in still:
        assert np.allclose(scene.offset_px(t), xy, atol=1e-9), t
    mid = [(0.0425, (0.7, 2.4)), (0.1425, (3.1, 2.7)), (0.2425, (2.4, 0.3))]
    for t, xy in mid:
        assert np.allclose(scene.offset_px(t), xy, atol=1e-9), t
    # the image holds still between motions and moves during them
    assert np.array_equal(frame(scene, 0.08), frame(scene, 0.105))
    assert not np.array_equal(frame(scene, 0.030), frame(scene, 0.0302))   # sub-pixel motion shows


def test_the_image_follows_the_commanded_motion_through_a_first_order_lag():
    tau = 0.008
    scene = D.make_scene(34, 34, seed=0, digit=2, timing_jitter_s=0.0, amplitude_jitter=0.0, lag_s=tau)
    s = np.arange(0.0, 12 * tau, 1e-5)                 # the lag's impulse response, integrated directly
    for t in (0.02, 0.05, 0.09, 0.15):
        cmd = np.array([scene.commanded_px(max(t - v, 0.0)) for v in s])
        want = (cmd * (np.exp(-s / tau) / tau * 1e-5)[:, None]).sum(0)
        assert np.allclose(scene.offset_px(t), want, atol=0.02), t
    assert scene.offset_px(0.0425)[1] < scene.commanded_px(0.0425)[1] - 0.3   # behind, moving +y
    assert np.allclose(scene.offset_px(0.075 + 5 * tau), (1.4, 4.8), atol=0.05)  # settled
    drawn = [D.make_scene(34, 34, seed=k, digit=1) for k in range(20)]
    assert all(D.LAG_RANGE_S[0] <= d.lag_s <= D.LAG_RANGE_S[1] for d in drawn) and len({d.lag_s for d in drawn}) == 20
    assert all(D.RAMP_RANGE[0] <= c.ramp <= D.RAMP_RANGE[1] for d in drawn for c in d.saccades)
    with pytest.raises(ValueError, match="lag_s"):
        D.make_scene(34, 34, seed=0, lag_s=1.0)


def test_rendered_image_moves_by_the_offset():
    scene = D.make_scene(34, 34, seed=5, digit=0, timing_jitter_s=0.0, amplitude_jitter=0.0)

    def ink_com(t):
        return np.array(centre_of_mass(frame(scene, t) - scene.black_level))

    start = ink_com(0.0)
    for t in (0.03, 0.09, 0.15, 0.2, 0.25):
        assert np.allclose(ink_com(t) - start, scene.offset_px(t), atol=0.05), t


def test_larger_geometry_scales_the_field():
    small = D.make_scene(34, 34, seed=7, digit=3)
    large = D.make_scene(68, 102, seed=7, digit=3)
    a, b = frame(small, 0.05), frame(large, 0.05)
    ca = np.array(centre_of_mass(a - small.black_level))
    cb = np.array(centre_of_mass(b - large.black_level))
    # pixel centres: field x = (col + 0.5) / 2, field y = (row + 0.5 - 17) / 2
    assert np.allclose([(cb[0] + 0.5) / 2 - 0.5, (cb[1] + 0.5 - 17) / 2 - 0.5], ca, atol=0.05)


def test_given_image_is_copied_and_checked():
    img = np.zeros((28, 28), np.float32)
    img[6:22, 12:16] = 1.0
    before = img.copy()
    scene = D.make_scene(34, 34, seed=0, digit=1, image=img, blur_px=0.0)
    img[:] = 0.5
    assert frame(scene, 0.0).max() > frame(scene, 0.0).min() + 0.3
    assert np.array_equal(before[6:22, 12:16], np.ones((16, 4)))
    with pytest.raises(ValueError, match="28x28"):
        D.make_scene(34, 34, seed=0, image=np.zeros((20, 20)))
    with pytest.raises(ValueError, match="black_level"):
        D.make_scene(34, 34, seed=0, black_level=0.9, white_level=0.5)


# ------------------------------------------------------------------ simulated recordings


def test_simulated_recordings_look_like_real_nmnist():
    simulator = pytest.importorskip("eventflow.sim.simulator")
    counts, balance = [], []
    in_hold = 0
    for seed in range(6):
        events, scene, sensor = simulator.simulate_scene("digits", seed=seed)
        assert (sensor.width, sensor.height) == (34, 34)
        assert np.all(np.diff(events["t"]) >= 0) and events["t"].max() <= 300_000
        counts.append(len(events))
        balance.append(events["p"].mean())
        phase = events["t"] % 100_000
        in_hold += int(((phase < 5_000) | (phase > 85_000)).sum())
        # polarity: ON (p = 1) on the leading edges of the moving white digit, as eventflow's
        # N-MNIST reader yields for real recordings: ON-OFF centroids point along the motion
        for k, (dx, dy) in enumerate(np.diff(np.array(D.SACCADE_WAYPOINTS_PX), axis=0)):
            e = events[(events["t"] >= k * 100_000) & (events["t"] < (k + 1) * 100_000)]
            on, off = e[e["p"] == 1], e[e["p"] == 0]
            shift = (on["x"].mean() - off["x"].mean(), on["y"].mean() - off["y"].mean())
            assert np.dot(shift, (dx, dy)) > 0.5 * np.hypot(dx, dy) ** 2, (seed, k, shift)
    # real: 3,856 +- 1,109 per recording (1,069..6,326); six draws stay near that range
    assert all(0.8 * REAL_EVENTS_RANGE[0] <= n <= 1.2 * REAL_EVENTS_RANGE[1] for n in counts), counts
    assert 2900 < np.mean(counts) < 4900, counts
    assert all(0.45 < b < 0.55 for b in balance), balance
    assert in_hold < 0.03 * sum(counts)     # motion happens in the documented windows


def test_shifted_image_kernel_equals_reference():
    from eventflow.kernels.resample import shifted_image, shifted_image_reference
    rng = np.random.default_rng(7)
    for trial in range(40):
        size_y, size_x = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        image = rng.random((size_y, size_x)).astype(np.float32)
        height, width = int(rng.integers(1, 50)), int(rng.integers(1, 50))
        args = (float(rng.uniform(0.5, 3.0)), float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)),
                float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6)), float(rng.uniform(0, 0.4)),
                float(rng.uniform(0.5, 1)))
        out = np.full((height, width), np.nan, np.float32)
        before = image.copy()
        shifted_image(image, *args, out)
        np.testing.assert_allclose(out, shifted_image_reference(image, *args, height, width), rtol=0, atol=1e-6,
                                   err_msg=f"trial {trial}")
        assert np.array_equal(image, before)
    # whole-pixel shifts move the image exactly; what falls outside it is the black level
    image = rng.random((6, 5)).astype(np.float32)
    out = np.empty((6, 5), np.float32)
    shifted_image(image, 1.0, 0.0, 0.0, 2.0, -1.0, 0.0, 1.0, out)
    assert np.array_equal(out[:5, 2:], image[1:, :3]) and not out[5].any() and not out[:, :2].any()


def test_first_order_lag_kernel_equals_reference():
    from eventflow.kernels.resample import first_order_lag, first_order_lag_reference
    rng = np.random.default_rng(3)
    for n in (1, 2, 17, 3000):
        commanded = np.cumsum(rng.normal(0, 0.1, (n, 2)), axis=0)
        out = np.empty_like(commanded)
        first_order_lag(commanded, 0.015, out)
        assert np.array_equal(out, first_order_lag_reference(commanded, 0.015))   # the same float operations
