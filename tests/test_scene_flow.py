"""The flow scene: deterministic frames, exact forward flow (warping t0 onto t1 matches), its ground
truth file, and the flow kernel against its reference."""
from __future__ import annotations

import numpy as np
import pytest

from eventflow.kernels import raster_shapes as R
from eventflow.sim.layers import compose, invert
from eventflow.sim.scenes import flow as F
from eventflow.sim.scenes import make_scene

W, H = 346, 260


def frame(scene, t):
    out = np.full((scene.height, scene.width), np.nan, np.float32)
    scene.render(t, out)
    return out


def bilinear(img, x, y):
    """img sampled at continuous (x, y) (pixel centres at +0.5); points outside are clamped to the edge."""
    h, w = img.shape
    x = np.clip(x - 0.5, 0, w - 1.001)
    y = np.clip(y - 0.5, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    top = (1 - fx) * img[y0, x0] + fx * img[y0, x0 + 1]
    bottom = (1 - fx) * img[y0 + 1, x0] + fx * img[y0 + 1, x0 + 1]
    return (1 - fy) * top + fy * bottom


def test_flow_kernel_equals_reference():
    for seed in (0, 1):
        scene = F.make_scene(120, 90, seed, n_objects=6, object_speed=4.0)
        for t0, t1 in ((0.0, 0.05), (0.4, 0.9)):
            fwd0, fwd1 = scene.forward(t0), scene.forward(t1)
            args = (scene.layers(t0), compose(fwd1, invert(fwd0)), scene.layers(t1))
            f, o = np.empty((2, 90, 120), np.float32), np.empty((90, 120), np.uint8)
            fr, orf = np.empty_like(f), np.empty_like(o)
            R.layer_flow(f, o, *args)
            R.layer_flow_reference(fr, orf, *args)
            np.testing.assert_allclose(f, fr, rtol=0, atol=1e-5)
            np.testing.assert_array_equal(o, orf)
            assert 0 < o.mean() < 0.5


def test_deterministic_in_range_and_seed_dependent():
    a, b, c = F.make_scene(W, H, 3), make_scene("flow", W, H, 3), F.make_scene(W, H, 4)
    for t in (0.0, 0.41, 1.0):
        fa = frame(a, t)
        assert np.isfinite(fa).all() and fa.min() > 0 and fa.max() <= 1
        np.testing.assert_array_equal(fa, frame(b, t))
        assert not np.array_equal(fa, frame(c, t))
    np.testing.assert_array_equal(a.flow_between(0.2, 0.25), b.flow_between(0.2, 0.25))


@pytest.mark.parametrize("seed", [0, 5])
def test_warping_t0_by_the_flow_gives_t1(seed):
    scene = F.make_scene(W, H, seed)
    t0, t1 = 0.3, 0.35
    f, occluded = scene.flow_and_occlusion(t0, t1)
    i0, i1 = frame(scene, t0), frame(scene, t1)
    X, Y = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    warped = bilinear(i1, X + f[0], Y + f[1])
    # not occluded, and away from layer edges (anti-aliased pixels mix two layers)
    top = R.top_layer_reference(scene.layers(t0), X, Y)
    edge = np.zeros_like(occluded, bool)
    for dy in (-2, -1, 0, 1, 2):
        for dx in (-2, -1, 0, 1, 2):
            edge |= np.roll(np.roll(top, dy, 0), dx, 1) != top
    good = (occluded == 0) & ~edge
    good[:2], good[-2:], good[:, :2], good[:, -2:] = False, False, False, False
    assert good.mean() > 0.7
    err = np.abs(warped - i0)[good]
    unwarped = np.abs(i1 - i0)[good]
    assert np.abs(f).max() > 1.0  # the motion is not negligible
    assert err.mean() < 0.15 * unwarped.mean(), (err.mean(), unwarped.mean())
    assert np.percentile(err, 99) < 0.03
    # the hidden points really are hidden: warping them does not match
    hidden = (occluded == 1) & ~edge & (X + f[0] > 2) & (X + f[0] < W - 2) & (Y + f[1] > 2) & (Y + f[1] < H - 2)
    if hidden.sum() > 50:
        assert np.abs(warped - i0)[hidden].mean() > 3 * err.mean()


def test_flow_composes_over_consecutive_windows():
    """flow(t0, t2) = flow(t0, t1) + flow(t1, t2) at the point's position at t1 (motions are exact)."""
    scene = F.make_scene(W, H, 2, n_objects=0)  # background only: no occlusion at all
    f01, f12, f02 = scene.flow_between(0.1, 0.15), scene.flow_between(0.15, 0.2), scene.flow_between(0.1, 0.2)
    X, Y = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    x1, y1 = X + f01[0], Y + f01[1]
    inner = (x1 > 1) & (x1 < W - 1) & (y1 > 1) & (y1 < H - 1)
    composed = np.stack([f01[0] + bilinear(f12[0], x1, y1), f01[1] + bilinear(f12[1], x1, y1)])
    np.testing.assert_allclose(composed[:, inner], f02[:, inner], atol=1e-3)
    # a camera that translates, rolls and zooms: the flow is an affine function of the position
    A = np.column_stack([X.ravel(), Y.ravel(), np.ones(X.size)])
    for c in range(2):
        coef, *_ = np.linalg.lstsq(A, f02[c].ravel().astype(np.float64), rcond=None)
        assert np.abs(A @ coef - f02[c].ravel()).max() < 1e-3


def test_ground_truth_windows_and_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    scene = F.make_scene(64, 48, 1, duration_s=0.23)
    gt = scene.ground_truth()
    assert gt["window_us"] == 50_000
    np.testing.assert_array_equal(gt["t0_us"], [0, 50_000, 100_000, 150_000])
    np.testing.assert_array_equal(gt["t1_us"], gt["t0_us"] + 50_000)
    assert gt["flow"].shape == (4, 2, 48, 64) and gt["flow"].dtype == np.float32
    np.testing.assert_array_equal(gt["flow"][2], scene.flow_between(0.1, 0.15))
    paths = scene.save_ground_truth(str(tmp_path / "rec"))
    assert paths == [str(tmp_path / "rec_flow.h5")]
    with h5py.File(paths[0], "r") as f:
        assert f.attrs["window_us"] == 50_000
        assert f["flow"].compression == "gzip" and f["flow"].dtype == np.float32
        np.testing.assert_array_equal(f["flow"][...], gt["flow"])
        np.testing.assert_array_equal(f["t0_us"][...], gt["t0_us"])
        np.testing.assert_array_equal(f["t1_us"][...], gt["t1_us"])
        np.testing.assert_array_equal(f["occluded"][...], gt["occluded"])


def test_bad_parameters():
    with pytest.raises(ValueError, match="n_things"):
        F.make_scene(W, H, 0, n_things=1)
    with pytest.raises(ValueError, match="window_us"):
        F.make_scene(W, H, 0, window_us=0)


def test_warping_events_by_the_flow_sharpens_them():
    """Contrast maximisation: events moved back to t0 along the ground-truth flow pile up on edges."""
    sim = pytest.importorskip("eventflow.sim.simulator")
    sensor = sim.scene_sensor("flow", width=173, height=130, background_rate_hz=0.0)
    scene = F.make_scene(173, 130, 6, duration_s=0.2, window_us=100_000, object_speed=2.0, camera_speed=2.0)
    events = sim.simulate(scene, sensor, seed=6)
    t0, t1 = 100_000, 200_000
    ev = events[(events["t"] > t0) & (events["t"] <= t1)]
    assert len(ev) > 5000
    f = scene.flow_between(t0 / 1e6, t1 / 1e6)
    x, y = ev["x"].astype(np.float64), ev["y"].astype(np.float64)
    share = (ev["t"] - t0) / (t1 - t0)

    def variance(gain):  # of the image of events moved back by gain times the ground-truth flow
        xw = x - gain * f[0, ev["y"], ev["x"]] * share
        yw = y - gain * f[1, ev["y"], ev["x"]] * share
        img, *_ = np.histogram2d(yw, xw, bins=(130, 173), range=((0, 130), (0, 173)))
        return img.var()

    assert np.abs(f).max() > 3
    assert variance(1.0) > 1.3 * variance(0.0), (variance(1.0), variance(0.0))
    # and the flow has the right size and sign: scaled or reversed, it sharpens less
    assert variance(1.0) > max(variance(0.6), variance(1.5), variance(-1.0))
