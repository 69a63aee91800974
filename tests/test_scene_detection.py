"""The detection scene: deterministic anti-aliased frames, Gen1 boxes consistent with them, and the
shape kernels against their references."""
from __future__ import annotations

import numpy as np
import pytest

from eventflow.kernels import raster_shapes as R
from eventflow.sim.layers import invert, layer_table, periodic_texture, scene_bbox, similarity
from eventflow.sim.scenes import detection as D
from eventflow.sim.scenes import make_scene

W, H = 304, 240


def frame(scene, t):
    out = np.full((scene.height, scene.width), np.nan, np.float32)
    scene.render(t, out)
    return out


def random_layers(rng, n, width, height):
    """A layer table of random rotated / scaled shapes with random fills over a textured plane."""
    kind = np.concatenate([[R.PLANE], rng.choice([R.BOX, R.ELLIPSE, R.CAPSULE], n - 1)])
    shape = np.column_stack([rng.uniform(-5, 5, n), rng.uniform(-5, 5, n), rng.uniform(2, 30, n),
                             rng.uniform(2, 30, n), rng.uniform(0, 2, n)])
    fwd, inv = similarity(rng.uniform(0, width, n), rng.uniform(0, height, n), rng.uniform(0.3, 3, n),
                          rng.uniform(-3, 3, n), rng.choice([-1.0, 1.0], n))
    lo = rng.uniform(0.01, 0.6, n)
    hi = np.where(rng.random(n) < 0.5, lo, lo + 0.4)
    return layer_table(kind, inv, np.hypot(fwd[:, 0], fwd[:, 3]), shape, lo, hi, rng.uniform(0.2, 2, n),
                       rng.uniform(0, 256, n), rng.uniform(0, 256, n), rng.integers(0, 2, n),
                       scene_bbox(kind, shape, fwd, 1.0))


def test_render_kernel_equals_reference():
    rng = np.random.default_rng(5)
    tex = np.stack([periodic_texture(rng, 64), periodic_texture(rng, 64, (4.0, 16.0), True)])
    for trial in range(4):
        layers = random_layers(rng, 12, 80, 60)
        ox, oy = rng.uniform(-20, 20, 2).round()
        a = np.zeros((60, 80), np.float32)
        b = a.copy()
        R.render_layers(a, layers, tex, ox, oy)
        R.render_layers_reference(b, layers, tex, ox, oy)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        assert np.isfinite(a).all() and a.min() > 0
    scene = D.make_scene(W, H, 2)
    for t in (0.0, 0.77, 2.0):
        layers = scene.layers(t)
        b = np.zeros((H, W), np.float32)
        R.render_layers_reference(b, layers, scene.textures, 0.0, 0.0)
        np.testing.assert_allclose(frame(scene, t), b, rtol=0, atol=1e-6)


def test_place_kernel_equals_reference():
    scene = D.make_scene(W, H, 4)
    for t in (0.0, 1.3):
        out = np.empty_like(scene.local)
        forward = scene._forward(t)
        R.place_layers(scene.local, scene.group, forward, 1.0, out)
        np.testing.assert_allclose(out, R.place_layers_reference(scene.local, scene.group, forward, 1.0), rtol=1e-12, atol=1e-9)


def test_antialiased_box_has_its_area_and_moves_by_subpixels():
    tex = np.zeros((1, 2, 2), np.float32)
    centroids = []
    for dx in (0.0, 0.25, 0.5):
        fwd, inv = similarity(20.3 + dx, 15.6, 1.0)
        shape = np.array([[0.0, 0.0, 6.0, 4.0, 0.0]])
        layers = layer_table([R.BOX], inv[None], 1.0, shape, 1.0, 1.0, 0.0, 0.0, 0.0, 0,
                             scene_bbox(np.array([R.BOX]), shape, fwd[None], 1.0))
        img = np.zeros((32, 40), np.float32)
        R.render_layers(img, layers, tex, 0.0, 0.0)
        # coverage is the exact area along straight edges; the four corners add a little
        assert img.sum() == pytest.approx(12 * 8, abs=0.8)
        centroids.append((img.sum(axis=0) * (np.arange(40) + 0.5)).sum() / img.sum())
    np.testing.assert_allclose(np.diff(centroids), 0.25, atol=0.01)


def test_deterministic_in_range_and_seed_dependent():
    a, b, c = D.make_scene(W, H, 7), make_scene("detection", W, H, 7), D.make_scene(W, H, 8)
    for t in (0.0, 0.3333, 1.9):
        fa = frame(a, t)
        assert np.isfinite(fa).all() and fa.min() > 0 and fa.max() <= 1
        np.testing.assert_array_equal(fa, frame(b, t))
        assert not np.array_equal(fa, frame(c, t))
    np.testing.assert_array_equal(a.ground_truth(), b.ground_truth())
    # 1 ms apart the image changes (ego-motion and objects move by fractions of a pixel)
    assert np.abs(frame(a, 0.5) - frame(a, 0.501)).max() > 0.01


def test_boxes_are_gen1_boxes_inside_the_image():
    for seed in range(3):
        scene = D.make_scene(W, H, seed)
        gt = scene.ground_truth()
        assert gt.dtype == D.BBOX_DTYPE == np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"),
                                                     ("h", "<f4"), ("class_id", "u1"), ("confidence", "<f4"),
                                                     ("track_id", "<u4")])
        assert len(gt) > 0
        assert np.all(gt["ts"] % 50_000 == 0) and gt["ts"].max() <= 2_000_000
        assert np.all(np.diff(gt["ts"].astype(np.int64)) >= 0)
        assert np.all(gt["x"] >= 0) and np.all(gt["y"] >= 0)
        assert np.all(gt["x"] + gt["w"] <= W + 1e-3) and np.all(gt["y"] + gt["h"] <= H + 1e-3)
        assert np.all(gt["w"] >= 10) and np.all(gt["h"] >= 10) and np.all(np.hypot(gt["w"], gt["h"]) >= 30)
        assert set(gt["class_id"].tolist()) <= {D.CAR, D.PEDESTRIAN}
        assert np.all(gt["confidence"] == 1)
        classes = scene.objects[gt["track_id"], 0]
        np.testing.assert_array_equal(classes, gt["class_id"])  # a track keeps its object's class
        counts = scene.ground_truth_counts()  # every object at every label time is labelled or counted as dropped
        assert counts["boxes"] == len(gt)
        assert sum(counts.values()) == len(scene.objects) * len(scene.label_times_us()) == 6 * 41
    assert {D.CAR, D.PEDESTRIAN} <= set(gt["class_id"].tolist())


def test_object_pixels_lie_inside_its_box():
    scene = D.make_scene(W, H, 11)
    owner = scene.owners()
    gt = scene.ground_truth()
    checked = 0
    for ts in np.unique(gt["ts"])[::8]:
        layers = scene.layers(ts / 1e6)
        for box in gt[gt["ts"] == ts]:
            alone = layers[owner == box["track_id"]].copy()
            alone[:, R.LO] = alone[:, R.HI] = 1.0
            img = np.zeros((H, W), np.float32)
            R.render_layers(img, alone, scene.textures, 0.0, 0.0)
            rows, cols = np.nonzero(img > 0)
            assert len(rows) > 0
            assert np.all(cols + 0.5 >= box["x"] - 1e-3) and np.all(cols + 0.5 <= box["x"] + box["w"] + 1e-3)
            assert np.all(rows + 0.5 >= box["y"] - 1e-3) and np.all(rows + 0.5 <= box["y"] + box["h"] + 1e-3)
            # and the box is tight: the object reaches within 1.5 px of each side
            assert cols.min() + 0.5 - box["x"] < 1.5 or box["x"] == 0
            assert box["x"] + box["w"] - (cols.max() + 0.5) < 1.5 or box["x"] + box["w"] >= W - 1e-3
            checked += 1
    assert checked >= 10


def test_hidden_objects_have_no_box_and_visible_ones_do():
    """Visibility from an id map of the rendered scene (which object is on top at each pixel)."""
    scene = D.make_scene(W, H, 3, n_poles=4)
    owner = scene.owners()
    X, Y = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    hidden_seen = kept = 0
    for k in range(0, 41, 6):
        t = k * 0.05
        layers = scene.layers(t)
        top = owner[R.top_layer_reference(layers, X, Y)]
        boxes = scene.boxes_at(t)
        x0, x1, y0, y1 = scene_bbox(layers[:, R.KIND], layers[:, R.SHAPE], invert(layers[:, R.MAP]), 0.0)
        for i in range(len(scene.objects)):
            mine = owner == i
            area = np.sum((x1[mine] - x0[mine]) * (y1[mine] - y0[mine]))  # over-estimates the area: parts overlap
            shown = np.sum(top == i)
            has_box = i in boxes["track_id"]
            if shown < 0.1 * area:
                assert not has_box, (t, i, shown, area)
                hidden_seen += 1
            if has_box:
                kept += 1
                assert shown > 0.15 * area
    assert kept > 10 and hidden_seen > 0


def test_save_ground_truth(tmp_path):
    scene = D.make_scene(W, H, 1, duration_s=0.5)
    paths = scene.save_ground_truth(str(tmp_path / "rec"))
    assert paths == [str(tmp_path / "rec_bbox.npy")]
    np.testing.assert_array_equal(np.load(paths[0]), scene.ground_truth())
    assert np.load(paths[0])["ts"].max() <= 500_000


def test_other_geometry_and_bad_parameters():
    scene = D.make_scene(128, 96, 0)
    img = frame(scene, 1.0)
    assert img.shape == (96, 128) and np.isfinite(img).all() and img.min() > 0
    gt = scene.ground_truth()
    assert np.all(gt["x"] + gt["w"] <= 128 + 1e-3)
    with pytest.raises(ValueError, match="n_trucks"):
        D.make_scene(W, H, 0, n_trucks=2)
    with pytest.raises(ValueError, match="geometry"):
        D.make_scene(8, 8, 0)


def test_signal_events_concentrate_in_boxes():
    sim = pytest.importorskip("eventflow.sim.simulator")
    sensor = sim.scene_sensor("detection", background_rate_hz=0.0)
    scene = D.make_scene(sensor.width, sensor.height, 3, duration_s=0.2)
    events = sim.simulate(scene, sensor, seed=3)
    gt = scene.ground_truth()
    inside = total = 0
    area = []
    for ts in np.unique(gt["ts"]).astype(np.int64):
        near = events[(events["t"] > ts - 25_000) & (events["t"] <= ts + 25_000)]
        mask = np.zeros((sensor.height, sensor.width), bool)
        for b in gt[gt["ts"] == ts]:
            mask[int(b["y"]):int(np.ceil(b["y"] + b["h"])), int(b["x"]):int(np.ceil(b["x"] + b["w"]))] = True
        inside += mask[near["y"], near["x"]].sum()
        total += len(near)
        area.append(mask.mean())
    assert total > 10_000
    # the objects move faster and with more contrast than the street: their boxes hold most events
    assert inside / total > 2.5 * np.mean(area), (inside / total, np.mean(area))


@pytest.mark.parametrize("name, size", [("detection", (304, 240)), ("flow", (346, 260))])
def test_layer_scenes_render_regions_exactly_as_whole_frames(name, size):
    width, height = size
    scene = make_scene(name, width, height, 3, None)
    whole = np.empty((height, width), np.float32)
    rng = np.random.default_rng(0)
    for t in (0.05, 0.77):
        scene.render(t, whole)
        for y0, y1, x0, x1 in [(0, height, 0, width), (10, 11, 300, width), (5, 5, 0, 9)] + [
                sorted(rng.integers(0, height + 1, 2)) + sorted(rng.integers(0, width + 1, 2)) for _ in range(4)]:
            part = np.full((height, width), -1.0, np.float32)
            scene.render_region(t, part, int(y0), int(y1), int(x0), int(x1))
            expected = np.full((height, width), -1.0, np.float32)
            expected[y0:y1, x0:x1] = whole[y0:y1, x0:x1]
            assert np.array_equal(part, expected), (t, y0, y1, x0, x1)   # bit for bit; the rest untouched
    with pytest.raises(ValueError, match=f"{name} render: region rows 0..{height + 1}"):
        scene.render_region(0.1, part, 0, height + 1, 0, 5)
    with pytest.raises(ValueError, match=rf"{name} render: out must be float32 \({height}, {width}\), got float64"):
        scene.render_region(0.1, part.astype(np.float64), 0, 1, 0, 1)
    with pytest.raises(ValueError, match=rf"{name} render: out must be float32 .* got float32 \(100, 100\)"):
        scene.render(0.1, np.empty((100, 100), np.float32))
