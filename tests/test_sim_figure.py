"""The simulator's one-call loop for figure scenes (eventflow.kernels.sim_figure) against its
reference, the Simulator's generic per-interval loop over the scene's render_log_region."""
import numpy as np
import pytest

from eventflow.kernels import sim_figure as KF
from eventflow.sim import Simulator
from eventflow.sim.scenes import gesture as G
from eventflow.sim.simulator import scene_sensor

W = H = 128


class Generic:
    """A scene seen without its figure_sampler: the Simulator takes the generic loop."""

    def __init__(self, scene):
        self.scene, self.width, self.height, self.duration_s = scene, scene.width, scene.height, scene.duration_s
        self.render_log_region = scene.render_log_region

    def render(self, t_s, out):
        self.scene.render(t_s, out)


def _run(scene, sensor, seed, cuts):
    sim = Simulator(scene, sensor, seed)
    state, parts = sim.init_state(), []
    for t in cuts:
        events, state = sim.advance(t, state)
        parts.append(events)
    return np.concatenate(parts), state


def test_envelope_and_gain_equal_the_scenes_python_bit_for_bit():
    for seed, gestures in ((0, [4]), (7, [1, 9, 2]), (11, [8, 8])):
        scene = G.make_scene(W, H, seed, gestures=gestures, flicker=0.01)
        _, (starts, ends, ramp), lighting = scene.figure_sampler()
        ramps = ramp * np.linspace(0, 1, 101)
        times = np.concatenate([np.arange(-10, scene.duration_s * 2000 + 10) * 500 * 1e-6,  # the grid and its mids
                                *(s + ramps for s in scene.starts), *(e - ramps for e in scene.ends)])
        for t in times.tolist():
            assert KF.figure_envelope(starts, ends, ramp, t) == scene._envelope(t), t
            assert KF.figure_gain(*lighting, t) == scene._gain(t), t


@pytest.mark.parametrize("levels", [0, 1, 2])
def test_figure_loop_equals_the_generic_loop(levels):
    """Same events (order and bytes), counts, references, log frame and samples, whatever the cuts."""
    sensor = scene_sensor("gesture", max_refine_levels=levels, shot_noise_rate_hz=2.0)
    for seed in (2, 9):
        scene = G.make_scene(W, H, seed, gestures=[1 + seed % 11], duration_s=0.6)
        cuts = [1, 999, 1000, 17_321, 250_000, 600_000]
        fast, fast_state = _run(scene, sensor, seed, cuts)
        slow, slow_state = _run(Generic(scene), sensor, seed, cuts)
        assert len(fast) > 1000 and fast_state.counts()["shot"] > 0
        assert fast.tobytes() == slow.tobytes()
        assert fast_state.counts() == slow_state.counts()
        for name in ("log_frame", "reference", "last_event_us"):
            assert np.array_equal(getattr(fast_state, name), getattr(slow_state, name)), name


def test_figure_loop_reports_bad_pixels_as_the_generic_loop_does():
    scene = G.make_scene(W, H, 3, gestures=[2], duration_s=0.2)
    sensor = scene_sensor("gesture")
    sim = Simulator(scene, sensor, 3)
    state = sim.init_state()
    scene.background[0, :5] = np.nan  # the scene's own table: both loops draw it from now on
    for s in (scene, Generic(scene)):
        with pytest.raises(ValueError, match=r"rendered 5 pixel\(s\) that are not positive and finite at t=1000 us"):
            Simulator(s, sensor, 3).advance(5_000, state)


def test_a_figure_sampler_that_does_not_fit_the_sensor_is_refused_before_any_kernel_runs():
    scene = G.make_scene(W, H, 3, gestures=[2, 5], duration_s=0.4)
    figure, (starts, ends, ramp), lighting = scene.figure_sampler()

    class Returning(Generic):
        def __init__(self, scene, sampled):
            super().__init__(scene)
            self.sampled = sampled

        def figure_sampler(self):
            return self.sampled

    small = figure[:11] + (np.empty((64, 128), np.float32),)
    for sampled, message in (((small, (starts, ends, ramp), lighting),
                              r"image is float32 \(64, 128\), the sensor needs float32 \(128, 128\)"),
                             ((figure, (starts[::-1].copy(), ends, ramp), lighting), "gesture times must be sorted"),
                             ((figure, (starts, ends), lighting), "must return")):
        with pytest.raises(ValueError, match=message):
            Simulator(Returning(scene, sampled), scene_sensor("gesture"), 3)
