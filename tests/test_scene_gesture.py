"""The simulated DVS128 Gesture scene: raster kernels equal their references, rendering is a pure
function of (seed, t), every class moves the expected part of the image, subjects vary with the
seed, and labels round-trip through DVS128 Gesture's CSV layout."""
from __future__ import annotations

import math

import numpy as np
import pytest

from eventflow.formats.aedat import read_gesture_labels

from eventflow.kernels import raster as R
from eventflow.sim.scene import Scene
from eventflow.sim.scenes import gesture as G
from eventflow.sim.scenes import make_scene as registry_make_scene
from eventflow.sim.scenes.gesture_figure import JOINT, N_CHANNELS

W = H = 128


def frames(scene, times):
    out = np.empty((len(times), scene.height, scene.width), np.float32)
    for k, t in enumerate(times):
        scene.render(t, out[k])
    return out


def motion(scene, t0, t1, n=24):
    """Summed |log intensity change| between consecutive frames over [t0, t1], counting only
    changes an event camera would see (above 0.05)."""
    f = frames(scene, np.linspace(t0, t1, n))
    d = np.abs(np.diff(np.log(f), axis=0))
    return np.where(d > 0.05, d, 0).sum(0)


def gesture_span(scene, k=0):
    gt = scene.ground_truth()[k]
    return gt["t_start"] / 1e6, gt["t_end"] / 1e6


# -- kernels against references -----------------------------------------------------------------

def random_prims(rng, n, width, height):
    rows = []
    for _ in range(n):
        kind = rng.choice([R.CAPSULE, R.ELLIPSE])
        x0, y0 = rng.uniform(-10, width + 10), rng.uniform(-10, height + 10)
        if rng.random() < 0.15:
            x1, y1 = x0, y0  # degenerate: zero length
        else:
            x1, y1 = x0 + rng.normal(0, width / 3), y0 + rng.normal(0, height / 3)
        r = rng.choice([rng.uniform(0.05, 0.6), rng.uniform(0.6, 12)])
        rows.append((kind, x0, y0, x1, y1, r, rng.uniform(0.05, 0.95), rng.uniform(0, 0.4),
                     rng.uniform(1.5, 8), rng.uniform(0, 0.5)))
    return np.array(rows, np.float64).reshape(-1, R.PRIM_COLUMNS)


@pytest.mark.parametrize("size", [(23, 17), (40, 40), (64, 31)])
def test_rasterise_kernel_equals_reference(size):
    width, height = size
    rng = np.random.default_rng(width * height)
    for trial in range(12):
        prims = random_prims(rng, int(rng.integers(0, 9)), width, height)
        background = rng.uniform(0.02, 1, (height, width)).astype(np.float32)
        light = rng.uniform(0.5, 1, (height, width)).astype(np.float32)
        gain = float(rng.uniform(0.3, 1.2))
        out = np.full((height, width), np.nan, np.float32)
        prims_before, bg_before = prims.copy(), background.copy()
        R.rasterise_kernel(prims, background, light, gain, out)
        ref = R.rasterise_reference(prims, background, light, gain)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6, err_msg=f"trial {trial}")
        assert np.array_equal(prims, prims_before) and np.array_equal(background, bg_before)
        if gain <= 1:
            assert 0 < out.min() and out.max() <= 1


def test_rasterising_a_region_gives_the_whole_image_values_there_and_leaves_the_rest():
    rng = np.random.default_rng(9)
    width, height = 37, 29
    for trial in range(10):
        prims = random_prims(rng, int(rng.integers(1, 9)), width, height)
        background = rng.uniform(0.02, 1, (height, width)).astype(np.float32)
        light = rng.uniform(0.5, 1, (height, width)).astype(np.float32)
        whole = np.empty((height, width), np.float32)
        R.rasterise_kernel(prims, background, light, 0.8, whole)
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        y1, x1 = int(rng.integers(y0, height + 1)), int(rng.integers(x0, width + 1))
        part = np.full((height, width), -1.0, np.float32)
        R.rasterise_region_kernel(prims, background, light, 0.8, part, y0, y1, x0, x1)
        expected = np.full((height, width), -1.0, np.float32)
        expected[y0:y1, x0:x1] = whole[y0:y1, x0:x1]
        assert np.array_equal(part, expected), f"trial {trial}"  # bit for bit


def test_scene_renders_regions_exactly_as_whole_frames():
    scene = G.make_scene(W, H, seed=2, gestures=4)
    whole, part = np.empty((H, W), np.float32), np.zeros((H, W), np.float32)
    for t, (y0, y1, x0, x1) in ((0.3, (10, 70, 20, 90)), (1.5, (5, 6, 100, 128)), (1.1, (0, H, 0, W))):
        scene.render(t, whole)
        before = part.copy()
        scene.render_region(t, part, y0, y1, x0, x1)
        assert np.array_equal(part[y0:y1, x0:x1], whole[y0:y1, x0:x1])
        before[y0:y1, x0:x1] = whole[y0:y1, x0:x1]
        assert np.array_equal(part, before)  # the other pixels are untouched
    with pytest.raises(ValueError, match="region rows 0..129"):
        scene.render_region(0.1, part, 0, 129, 0, 5)


def test_render_log_region_equals_render_then_log_region():
    """The simulator's fast path (figure_log_kernel: pose, raster and log in one call) gives what
    render_region then eventflow.kernels.sim.log_region give, and leaves the other pixels alone."""
    from eventflow.kernels import sim as KS
    scene = G.make_scene(W, H, seed=3, gestures=[4, 8], flicker=0.05)
    image, n = np.empty((H, W), np.float32), H * W
    scratch = (np.empty(n, np.float32), np.empty(n, np.int32), np.empty(n, np.int32))
    regions = ((0, H, 0, W), (10, 70, 20, 90), (5, 6, 100, 128), (40, 40, 0, W), (0, H, 64, 65))
    for t in np.linspace(0, scene.duration_s, 9):
        for eps in (1e-3, 0.0):
            for y0, y1, x0, x1 in regions:
                scene.render_region(float(t), image, y0, y1, x0, x1)
                expected = np.full(n, -7.0, np.float32)
                bad = KS.log_region(image.reshape(-1), eps, W, y0, y1, x0, x1, expected, *scratch)
                out = np.full(n, -7.0, np.float32)
                assert scene.render_log_region(float(t), eps, out, y0, y1, x0, x1) == bad == 0
                assert np.array_equal(out, expected), (t, eps, (y0, y1, x0, x1))  # bit for bit
    with pytest.raises(ValueError, match="region rows 0..129"):
        scene.render_log_region(0.1, 1e-3, out, 0, 129, 0, 5)
    with pytest.raises(ValueError, match="flat frame"):
        scene.render_log_region(0.1, 1e-3, out[:-1], 0, 1, 0, 5)


def test_rasterise_draws_antialiased_shapes_where_they_are():
    bg = np.full((32, 32), 0.2, np.float32)
    light = np.ones((32, 32), np.float32)
    capsule = np.array([[R.CAPSULE, 8, 16, 24, 16, 3.0, 0.9, 0.0, 4.0, 0.0]])
    out = np.empty((32, 32), np.float32)
    R.rasterise_kernel(capsule, bg, light, 1.0, out)
    assert out[16, 16] == pytest.approx(0.9) and out[16, 4] == pytest.approx(0.2)
    assert out[0].max() == pytest.approx(0.2)  # far rows untouched
    edge = out[16 + 3, 16]  # on the boundary: half covered
    assert 0.2 < edge < 0.9 and edge == pytest.approx(0.55, abs=0.02)
    ellipse = np.array([[R.ELLIPSE, 16, 16, 16, 6, 4.0, 0.6, 0.0, 4.0, 0.0]])  # 10 tall, 4 wide
    R.rasterise_kernel(ellipse, bg, light, 0.5, out)
    assert out[8, 16] == pytest.approx(0.3) and out[16, 22] == pytest.approx(0.1)  # gain applies to both


def test_pose_and_primitive_kernels_equal_references():
    rng = np.random.default_rng(5)
    scene = G.make_scene(W, H, seed=3, gestures=[4, 8])
    for t in np.linspace(0, scene.duration_s, 17):
        i, tau, w, big_w = scene._envelope(float(t))
        args = (scene.rest, scene.g0[i], scene.rate[i], scene.harm[i], scene.omega[i], tau, w, big_w, scene.idle,
                float(t))
        q = np.empty(N_CHANNELS)
        R.pose_channels_kernel(*args, q)
        np.testing.assert_allclose(q, R.pose_channels_reference(*args), rtol=1e-12, atol=1e-12)
        q += rng.normal(0, 0.3, q.shape)  # any pose, including clipped length scales
        pos, angle = np.zeros((len(JOINT), 2)), np.zeros(len(JOINT))
        prims = np.zeros((len(scene.shapes), R.PRIM_COLUMNS))
        R.figure_primitives_kernel(q, scene.joint_index, scene.joint_value, scene.shapes, pos, angle, prims)
        ref_pos, ref_angle, ref_prims = R.figure_primitives_reference(q, scene.joint_index, scene.joint_value,
                                                                      scene.shapes)
        np.testing.assert_allclose(pos, ref_pos, atol=1e-9)
        np.testing.assert_allclose(angle, ref_angle, atol=1e-12)
        np.testing.assert_allclose(prims, ref_prims, atol=1e-9)


def test_rendered_scene_equals_reference_pipeline():
    scene = G.make_scene(W, H, seed=7, gestures=6)
    out = np.empty((H, W), np.float32)
    s = scene.subject
    for t in (0.05, 0.6, 1.1, 1.7):
        scene.render(t, out)
        i, tau, w, big_w = scene._envelope(t)
        q = R.pose_channels_reference(scene.rest, scene.g0[i], scene.rate[i], scene.harm[i], scene.omega[i], tau, w,
                                      big_w, scene.idle, t)
        _, _, prims = R.figure_primitives_reference(q, scene.joint_index, scene.joint_value, scene.shapes)
        gain = s.light_level * (1 + s.flicker * math.sin(2 * math.pi * s.flicker_hz * t + s.flicker_phase))
        np.testing.assert_allclose(out, R.rasterise_reference(prims, scene.background, scene.light, gain), atol=1e-5)


# -- the scene ----------------------------------------------------------------------------------

def test_scene_protocol_and_registry():
    scene = registry_make_scene("gesture", W, H, 0)
    assert isinstance(scene, Scene)
    assert (scene.width, scene.height, scene.duration_s) == (W, H, G.DEFAULT_SECONDS)
    assert 1 <= scene.ground_truth()["class"][0] <= 11
    from eventflow.sim.sensor import sensor_preset
    sensor = sensor_preset(G.DEFAULT_SENSOR, **G.SENSOR_OVERRIDES)
    assert (sensor.width, sensor.height) == (128, 128)
    assert 0.05 <= sensor.background_rate_hz <= 0.2


def test_same_seed_same_frames_in_any_order():
    times = [1.3, 0.2, 0.9, 0.2, 1.3]
    a = frames(G.make_scene(W, H, seed=11, gestures=[5, 9]), times)
    b = frames(G.make_scene(W, H, seed=11, gestures=[5, 9]), times[::-1])[::-1]
    assert np.array_equal(a, b)
    assert np.array_equal(a[1], a[3]) and np.array_equal(a[0], a[4])
    assert np.isfinite(a).all() and a.min() > 0 and a.max() <= 1
    c = frames(G.make_scene(W, H, seed=12, gestures=[5, 9]), times)
    assert not np.array_equal(a, c)


# where a class's motion is: share of it on the image's left half (the subject's right arm), as
# (low, high); arm circles sweep across the body, so part of their motion is on the other side
REGIONS = {1: (0.2, 0.8), 2: (0.8, 1), 3: (0, 0.2), 4: (0.6, 1), 5: (0.6, 1), 6: (0, 0.4), 7: (0, 0.4), 8: (0.2, 0.8),
           9: (0.2, 0.8), 10: (0.2, 0.8), 11: (0, 1)}


@pytest.mark.parametrize("cid", range(1, 12))
def test_every_class_moves_where_expected(cid):
    scene = G.make_scene(W, H, seed=100 + cid, gestures=cid, distractor=False, flicker=0.0)
    s, e = gesture_span(scene)
    m = motion(scene, s + 0.2 * (e - s), e - 0.2 * (e - s))
    rest = motion(scene, 0.0, s * 0.9)
    assert m.sum() > 10 * max(rest.sum(), 1e-3), "the gesture moves far more than the subject at rest"
    axis = scene.subject.centre_x
    left, right = m[:, :int(axis)].sum(), m[:, int(axis) + 1:].sum()
    low, high = REGIONS[cid]
    assert low < left / (left + right) < high
    still = {2: "l", 3: "r", 4: "l", 5: "l", 6: "r", 7: "r"}.get(cid)  # one-arm classes: the other hand stays put
    if still:
        hands = np.array([scene.pose(t)[JOINT[f"{still}_hand"]] for t in np.linspace(s, e, 30)])
        assert np.ptp(hands, axis=0).max() < 6


@pytest.mark.parametrize("cid, arm", [(4, "r"), (5, "r"), (6, "l"), (7, "l")])
def test_arm_circles_turn_the_named_way_and_end_at_rest(cid, arm):
    scene = G.make_scene(W, H, seed=cid, gestures=cid)
    s, e = gesture_span(scene)
    ts = np.linspace(s, e, 400)
    pose = np.array([scene.pose(t) for t in ts])
    d = pose[:, JOINT[f"{arm}_hand"]] - pose[:, JOINT[f"{arm}_shoulder"]]
    turned = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    total = (turned[-1] - turned[0]) / (2 * np.pi)
    # clockwise as the subject sees it is counter-clockwise in the image (y down: angle decreases)
    expected_sign = -1 if cid in (4, 6) else 1
    assert np.sign(total) == expected_sign and abs(total - round(total)) < 0.1 and abs(round(total)) >= 1, total
    assert np.allclose(d[0], d[-1], atol=4.0)  # the hand is back at rest (up to idle motion)


def test_sequence_performs_gestures_in_order_with_rests():
    scene = G.make_scene(W, H, seed=21, gestures=[2, 3, 2], duration_s=6.0, distractor=False, flicker=0.0)
    gt = scene.ground_truth()
    assert gt["class"].tolist() == [2, 3, 2] and scene.duration_s == 6.0
    assert (gt["t_start"] < gt["t_end"]).all() and (gt["t_end"][:-1] < gt["t_start"][1:]).all()
    assert gt["t_start"][0] > 0 and gt["t_end"][-1] < 6_000_000
    axis = int(scene.subject.centre_x)
    for k, side in enumerate(["left", "right", "left"]):
        s, e = gesture_span(scene, k)
        m = motion(scene, s + 0.3, e - 0.3)
        share = m[:, :axis].sum() / m.sum()
        assert (share > 0.8) if side == "left" else (share < 0.2)


def test_subjects_vary_with_the_seed():
    subjects = [G.make_scene(W, H, seed=s, gestures=1).subject for s in range(8)]
    for field in ("head_ry", "centre_x", "neck_y", "upper_len", "shirt", "background", "light_level"):
        values = [getattr(s, field) for s in subjects]
        assert np.std(values) > 0.02 * np.mean(np.abs(values)), field
    heads = [G.make_scene(W, H, seed=3, gestures=1, scale=k).pose(0.0)[JOINT["head"]] for k in (0.8, 1.1)]
    big, small = G.make_scene(W, H, seed=3, gestures=1, scale=1.1), G.make_scene(W, H, seed=3, gestures=1, scale=0.8)
    assert big.subject.head_ry > small.subject.head_ry * 1.3
    assert heads[0][1] != heads[1][1]
    fast = G.make_scene(W, H, seed=3, gestures=2, speed=1.4).omega[0]
    slow = G.make_scene(W, H, seed=3, gestures=2, speed=0.7).omega[0]
    assert fast == pytest.approx(2 * slow)


def test_other_geometry_is_honoured():
    scene = G.make_scene(64, 48, seed=2, gestures=4)
    out = np.empty((48, 64), np.float32)
    scene.render(1.0, out)
    assert np.isfinite(out).all() and out.min() > 0
    neck = scene.pose(0.0)[JOINT["neck"]]
    assert 0 < neck[0] < 64 and 0 < neck[1] < 48
    with pytest.raises(ValueError, match="float32"):
        scene.render(1.0, np.empty((64, 48), np.float32))


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="12"):
        G.make_scene(W, H, 0, gestures=[1, 12])
    with pytest.raises(ValueError, match="empty"):
        G.make_scene(W, H, 0, gestures=[])
    with pytest.raises(ValueError, match="unknown variation colour; known: scale"):
        G.make_scene(W, H, 0, colour=1)
    with pytest.raises(ValueError, match="duration_s"):
        G.make_scene(W, H, 0, gestures=1, duration_s=0)


# -- labels -------------------------------------------------------------------------------------

def test_labels_csv_round_trip(tmp_path):
    scene = G.make_scene(W, H, seed=4, gestures=[10, 1, 11])
    stem = str(tmp_path / "user02_lab")
    paths = scene.save_ground_truth(stem)
    assert paths == [stem + "_labels.csv"]
    text = open(paths[0]).read()
    gt = scene.ground_truth()
    assert text.splitlines()[0] == "class,startTime_usec,endTime_usec"
    assert text.splitlines()[1] == f"10,{gt['t_start'][0]},{gt['t_end'][0]}"
    back = read_gesture_labels(paths[0])
    assert back.dtype == G.LABEL_DTYPE and np.array_equal(back, gt)


def test_labels_csv_in_dvs128_layout_with_crlf(tmp_path):
    p = tmp_path / "user01_fluorescent_labels.csv"
    p.write_bytes(b"class,startTime_usec,endTime_usec\r\n1,80048239,85092709\r\n2,89431166,95958152\r\n\r\n")
    assert read_gesture_labels(str(p)).tolist() == [(1, 80048239, 85092709), (2, 89431166, 95958152)]
    p.write_bytes(b"\xef\xbb\xbfclass,startTime_usec,endTime_usec\n1,80048239,85092709\n")   # saved with a BOM
    assert read_gesture_labels(str(p)).tolist() == [(1, 80048239, 85092709)]


HEADER = "class,startTime_usec,endTime_usec\n"


@pytest.mark.parametrize("body, where", [(HEADER + "1,5\n", "line 2"),
                                         (HEADER + "1,0,5\n0,6,9\n", "line 3"), (HEADER + "3,9,5\n", "line 2"),
                                         (HEADER + "3,x,5\n", "line 2"),
                                         ("class,start,end\n1,0,5\n", "line 1")])
def test_bad_labels_name_file_and_line(tmp_path, body, where):
    p = tmp_path / "bad_labels.csv"
    p.write_text(body)
    with pytest.raises(ValueError, match=f"bad_labels.csv.*{where}"):
        read_gesture_labels(str(p))


def test_simulated_events_concentrate_during_the_gesture():
    sim = pytest.importorskip("eventflow.sim.simulator")
    events, scene, sensor = sim.simulate_scene("gesture", seed=5, gestures=2, distractor=False, duration_s=1.2)
    assert (sensor.width, sensor.height) == (128, 128) and len(events) > 0
    assert events["x"].max() < 128 and events["y"].max() < 128
    s, e = (int(v) for v in scene.ground_truth()[0][["t_start", "t_end"]].tolist())
    during = ((events["t"] >= s) & (events["t"] < e)).sum() / (e - s)
    before = (events["t"] < s).sum() / s
    assert during > 10 * before
    x_during = events["x"][(events["t"] >= s) & (events["t"] < e)]
    assert (x_during < scene.subject.centre_x).mean() > 0.7  # the right hand waves on the image's left


def test_labels_have_the_dvs128_readers_dtype():
    from eventflow.formats.aedat import GESTURE_LABEL_DTYPE
    from eventflow.sim.scenes.gesture import LABEL_DTYPE

    assert LABEL_DTYPE == GESTURE_LABEL_DTYPE
