"""Events from a scene, the way a DVS makes them (ESIM / v2e style), deterministic and resumable.

The scene is rendered on a fixed grid of ``sensor.base_interval_us`` (1 ms at the default
1 kHz); where some pixels' log intensity changes by more than ``refine_fraction`` of a threshold
between consecutive samples, the interval is halved for the bounding rectangle of those pixels
(at most ``max_refine_levels`` times): a mid sample is rendered there only (with the scene's
``render_log_region`` or ``render_region`` when it has one), and the pixels inside use the two
halves while the others use the whole interval. So the sample times and rectangles depend on the scene only. Each pixel
compares ``log(I + log_eps)`` (float32, ``eventflow.kernels.sim.log_region``) with its reference
level and fires one event per threshold crossed (per-pixel thresholds with
Gaussian mismatch), at a time interpolated linearly between the two samples. Background
activity, hot pixels and shot noise are drawn per block of grid intervals from
``(seed, block index)``; then, in time order, events closer than ``refractory_us`` to their
pixel's last event are dropped (and counted). Hence any sequence of ``advance`` ends gives the
same events: an interval is always simulated whole, and what lies past ``t_end`` waits in the state.

>>> import numpy as np
>>> from eventflow.sim import Simulator, sensor_preset
>>> class Brightening:  # a uniform image whose intensity doubles every 10 ms
...     width, height, duration_s = 4, 3, 0.02
...     def render(self, t_s, out): out[:] = 0.2 * 2 ** (t_s / 0.01)
...     def ground_truth(self): return None
...     def save_ground_truth(self, stem): return []
>>> sensor = sensor_preset("dvs128", width=4, height=3, contrast_sigma=0.0, background_rate_hz=0.0)
>>> sim = Simulator(Brightening(), sensor, seed=0)
>>> events, state = sim.advance(20_000, sim.init_state())
>>> len(events), set(events["p"].tolist()), state.counts()["signal"]   # floor(2 ln 2 / 0.2) = 6 per pixel
(72, {1}, 72)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventflow.events import concatenate, empty, from_fields
from eventflow.kernels import sim as K
from eventflow.kernels import sim_figure as K_figure

from .scenes import scene_module
from .sensor import SensorConfig, sensor_preset

__all__ = ["KINDS", "SimState", "Simulator", "scene_sensor", "simulate", "simulate_chunks", "simulate_scene",
           "simulate_steps"]

KINDS = ("signal", "background", "hot", "shot")
SIGNAL, BACKGROUND, HOT, SHOT = range(4)
NOISE_BLOCK_INTERVALS = 64  # noise is drawn per block of this many grid intervals


@dataclass(frozen=True)
class SimState:
    """Everything a simulation carries from one ``advance`` to the next (never modified in place).

    interval: the next grid interval to simulate, covering ``(interval * dt, (interval + 1) * dt]``.
    t_done_us: events with ``t <= t_done_us`` have been returned. log_frame: float32 flat log
    intensity at ``interval * dt``. reference: float64 per-pixel reference level.
    last_event_us: int64 time of each pixel's last event. pending: simulated events past
    ``t_done_us``. generated, suppressed: int64 counts by kind (``KINDS``) before and dropped by the
    refractory period.
    samples: frames rendered (whole, or the rectangle a refinement needed).
    """

    interval: int
    t_done_us: int
    log_frame: np.ndarray
    reference: np.ndarray
    last_event_us: np.ndarray
    pending: np.ndarray
    generated: np.ndarray
    suppressed: np.ndarray
    samples: int

    def counts(self) -> dict:
        """Counts by kind: ``signal``, ``background``, ``hot``, ``shot`` (generated), ``suppressed_<kind>``,
        ``suppressed`` (all kinds, by the refractory period), ``emitted`` and ``samples``."""
        out = {k: int(v) for k, v in zip(KINDS, self.generated)}
        out.update({f"suppressed_{k}": int(v) for k, v in zip(KINDS, self.suppressed)})
        out["suppressed"] = int(self.suppressed.sum())
        out["emitted"] = int(self.generated.sum() - self.suppressed.sum())
        out["samples"] = self.samples
        return out


class Simulator:
    """A scene seen through a sensor: ``init_state()``, then ``advance(t_end_us, state) -> (events, state)``.

    The per-pixel thresholds and the hot pixels are drawn once from ``seed``; the simulator owns
    scratch buffers only (all that changes lives in ``SimState``).
    """

    def __init__(self, scene, sensor: SensorConfig, seed: int = 0):
        if (scene.width, scene.height) != (sensor.width, sensor.height):
            raise ValueError(f"scene is {scene.width}x{scene.height} but sensor {sensor.name!r} is "
                             f"{sensor.width}x{sensor.height}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.scene, self.sensor, self.seed = scene, sensor, int(seed)
        n = sensor.pixels
        rng = np.random.default_rng([self.seed, 0])
        self.thr_on = np.maximum(sensor.contrast_on + sensor.contrast_sigma * rng.standard_normal(n),
                                 sensor.min_contrast)
        self.thr_off = np.maximum(sensor.contrast_off + sensor.contrast_sigma * rng.standard_normal(n),
                                  sensor.min_contrast)
        n_hot = int(round(sensor.hot_pixel_fraction * n))
        self.hot_pixels = np.sort(rng.choice(n, n_hot, replace=False)).astype(np.int64)
        self.dt = sensor.base_interval_us
        self.refine_limit = sensor.refine_fraction * min(sensor.contrast_on, sensor.contrast_off)
        self._whole = (0, sensor.height, 0, sensor.width)
        self._render_region = getattr(scene, "render_region", None)
        self._render_log_region = getattr(scene, "render_log_region", None)
        figure_sampler = getattr(scene, "figure_sampler", None)
        self._figure = _checked_figure(figure_sampler(), sensor, type(scene).__name__) \
            if figure_sampler is not None else None
        self._figure_frames = np.empty((2 + sensor.max_refine_levels, n), np.float32) \
            if self._figure is not None else None   # (log frames: a, b and one mid per refinement depth)
        self._image = np.empty((sensor.height, sensor.width), np.float32)  # scratch of a render
        self._image_flat = self._image.reshape(-1)
        self._log_scratch = (np.empty(n, np.float32), np.empty(n, np.int32), np.empty(n, np.int32))
        self._mask = np.zeros(K.mask_size(sensor.width), np.uint8)
        self._width, self._max_depth, self._log_eps = sensor.width, sensor.max_refine_levels, sensor.log_eps
        self._mid = [np.empty(n, np.float32) for _ in range(sensor.max_refine_levels + 1)] \
            if self._figure is None else None   # the generic loop's mid samples, per depth
        self._noise_block = (-1, None)  # memo of the last noise block drawn (a pure function of its index)

    # ------------------------------------------------------------------ rendering

    def _sample(self, t_us: float, out: np.ndarray, region) -> np.ndarray:
        """The log intensity at ``t_us`` in ``region`` (y0, y1, x0, x1) of flat frame ``out``."""
        if self._render_log_region is not None:
            bad = self._render_log_region(t_us * 1e-6, self._log_eps, out, *region)
        else:
            y0, y1, x0, x1 = region
            if self._render_region is not None:
                self._render_region(t_us * 1e-6, self._image, y0, y1, x0, x1)
            else:
                self.scene.render(t_us * 1e-6, self._image)
            bad = K.log_region(self._image_flat, self.sensor.log_eps, self.sensor.width, y0, y1, x0, x1, out,
                               *self._log_scratch)
        if bad:
            raise ValueError(f"scene {type(self.scene).__name__} rendered {bad} pixel(s) that are not positive "
                             f"and finite at t={t_us:g} us (intensity must be in (0, 1])")
        return out

    def init_state(self) -> SimState:
        """The state at t = 0: the first frame is every pixel's reference level."""
        n = self.sensor.pixels
        log0 = self._sample(0.0, np.empty(n, np.float32), self._whole)
        return SimState(0, 0, log0, log0.astype(np.float64), np.full(n, K.NEVER, np.int64), empty(0),
                        np.zeros(len(KINDS), np.int64), np.zeros(len(KINDS), np.int64), 1)

    # ------------------------------------------------------------------ stepping

    def advance(self, t_end_us: int, state: SimState) -> tuple[np.ndarray, SimState]:
        """The events with ``state.t_done_us < t <= t_end_us``, sorted by t (then pixel), and the next state."""
        t_end = int(t_end_us)
        if t_end < state.t_done_us:
            raise ValueError(f"advance to t={t_end} us, before the state's end t={state.t_done_us} us")
        k1 = max(state.interval, -(-t_end // self.dt))  # simulate every interval that starts before t_end
        log_frame, ref, last = state.log_frame, state.reference, state.last_event_us
        generated, suppressed, samples = state.generated.copy(), state.suppressed.copy(), state.samples
        events = state.pending
        if k1 > state.interval:
            log_frame, ref, last = log_frame.copy(), ref.copy(), last.copy()
            new, log_frame, ref, n_samples = self._simulate(state.interval, k1, log_frame, ref, last,
                                                            generated, suppressed)
            events = concatenate([events, new])
            samples += n_samples
        cut = int(np.searchsorted(events["t"], t_end, side="right"))
        nxt = SimState(k1, t_end, log_frame, ref, last, concatenate([events[cut:]]),  # word copy: padding
                       generated, suppressed, samples)                                # bytes stay zero
        return events[:cut], nxt

    def _simulate(self, k0, k1, log_a, ref, last, generated, suppressed):
        """Grid intervals k0..k1-1: (events after refractory, log frame at k1, reference, samples)."""
        noise = self._noise(k0, k1)
        shots = noise[3] == SHOT
        shot_pix, shot_t, shot_p = noise[0][shots], noise[1][shots], noise[2][shots]
        buf = _Buffer(max(1024, self.sensor.pixels // 4))
        log_b, samples = np.empty(self.sensor.pixels, np.float32), 0
        bounds = np.empty((2, self.sensor.pixels), np.float32)  # derived from ref (scratch, not state)
        K.candidate_bounds(ref, self.thr_on, self.thr_off, bounds)
        shots_by_interval = np.searchsorted(shot_t, np.arange(k0, k1 + 1) * self.dt, side="right")
        if self._figure is not None:  # the same loop in one numba call
            log_a, samples = self._figure_intervals(k0, k1, log_a, ref, bounds, buf, shot_pix, shot_p,
                                                    shots_by_interval)
            k0 = k1
        shots_by_interval = shots_by_interval.tolist()
        for k in range(k0, k1):
            ta, tb = k * self.dt, (k + 1) * self.dt
            self._sample(float(tb), log_b, self._whole)
            samples += 1 + self._interval(float(ta), log_a, float(tb), log_b, 0, self._whole, ref, bounds, buf, ta)
            i0, i1 = shots_by_interval[k - k0], shots_by_interval[k - k0 + 1]
            if i1 > i0:
                K.shift_reference(ref, shot_pix[i0:i1], shot_p[i0:i1], self.thr_on, self.thr_off, bounds)
            log_a, log_b = log_b, log_a
        pix = np.concatenate([buf.pix[:buf.n], noise[0]])
        t = np.concatenate([buf.t[:buf.n], noise[1]])
        p = np.concatenate([buf.p[:buf.n], noise[2]])
        kind = np.concatenate([np.full(buf.n, SIGNAL, np.int8), noise[3]])
        generated += np.bincount(kind, minlength=len(KINDS))
        order = np.argsort(t * self.sensor.pixels + pix, kind="stable")
        keep = np.empty(len(order), np.bool_)
        K.refractory_pass(order, pix, t, kind, last, np.int64(self.sensor.refractory_us), keep, suppressed)
        sel = order[keep]
        q = pix[sel]
        events = from_fields(q % self.sensor.width, q // self.sensor.width, p[sel], t[sel])
        return events, log_a, ref, samples

    def _figure_intervals(self, k0, k1, log_a, ref, bounds, buf, shot_pix, shot_p, shots_by_interval):
        """``_simulate``'s loop for a figure scene (``eventflow.kernels.sim_figure``): (log frame at k1, samples)."""
        frames = self._figure_frames
        frames[0] = log_a
        buf.pix, buf.t, buf.p, buf.n, samples, row, bad, bad_t = K_figure.figure_intervals(
            *self._figure, self._log_eps, k0, k1, self.dt, frames, ref, self.thr_on, self.thr_off, bounds, self._mask,
            buf.pix, buf.t, buf.p, buf.n, shot_pix, shot_p, shots_by_interval, self.refine_limit, self._max_depth)
        if bad < 0:
            raise ValueError(f"scene {type(self.scene).__name__}: figure_sampler's image or region does not match "
                             f"the sensor's {self.sensor.width}x{self.sensor.height} (at t={bad_t:g} us)")
        if bad:
            raise ValueError(f"scene {type(self.scene).__name__} rendered {bad} pixel(s) that are not positive "
                             f"and finite at t={bad_t:g} us (intensity must be in (0, 1])")
        return frames[row].copy(), samples

    def _interval(self, ta, log_a, tb, log_b, depth, region, ref, bounds, buf, t_floor) -> int:
        """Crossings of the pixels of ``region`` between two samples, halving the interval for the
        rectangle that changes too fast; returns the (partial) frames rendered."""
        box, log_m, split, rendered = _NO_HOLE, log_b, True, 0
        if depth < self._max_depth:
            box = K.exceeding_box(log_a, log_b, self.refine_limit, self._width, *region)
            if box[0] < box[1]:
                tm = 0.5 * (ta + tb)
                log_m = self._sample(tm, self._mid[depth], box)
                rendered = 1
                if depth + 1 < self._max_depth:  # the halves may be refined again: they are done first
                    rendered += (self._interval(ta, log_a, tm, log_m, depth + 1, box, ref, bounds, buf, t_floor)
                                 + self._interval(tm, log_m, tb, log_b, depth + 1, box, ref, bounds, buf, t_floor))
                    split = False
        buf.pix, buf.t, buf.p, buf.n = K.interval_crossings(log_a, log_m, log_b, ref, self.thr_on, self.thr_off, ta, tb,
                                                            t_floor, buf.pix, buf.t, buf.p, buf.n, self._width,
                                                            *region, *box, split, bounds, self._mask)
        return rendered

    # ------------------------------------------------------------------ noise

    def _noise(self, k0, k1):
        """Noise candidates in grid intervals k0..k1-1: (pix int64, t int64, p int8, kind int8), sorted by t."""
        s = self.sensor
        if not (s.background_rate_hz or s.shot_noise_rate_hz or (s.hot_pixel_rate_hz and len(self.hot_pixels))):
            return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0, np.int8))
        parts = []
        lo, hi = k0 * self.dt, k1 * self.dt
        for b in range(k0 // NOISE_BLOCK_INTERVALS, (k1 - 1) // NOISE_BLOCK_INTERVALS + 1):
            block = self._block(b)
            i0, i1 = np.searchsorted(block[1], [lo, hi], side="right")
            parts.append([a[i0:i1] for a in block])
        return tuple(np.concatenate(col) for col in zip(*parts))

    def _block(self, b):
        if self._noise_block[0] != b:
            self._noise_block = (b, noise_block(self.sensor, self.hot_pixels, self.seed, b))
        return self._noise_block[1]


_NO_HOLE = (0, 0, 0, 0)  # an empty rectangle


def _checked_figure(sampler: tuple, sensor: SensorConfig, scene_name: str) -> tuple:
    """A scene's ``figure_sampler()`` result, checked against the sensor before any numba call:
    ``(figure, (starts, ends, ramp_s), lighting)`` with a (height, width) float32 image and
    float64 gesture times, sorted."""
    where = f"scene {scene_name}: figure_sampler()"
    try:
        figure, (starts, ends, ramp_s), lighting = sampler
        image = figure[11]
    except (TypeError, ValueError, IndexError) as e:
        raise ValueError(f"{where} must return (figure, (starts, ends, ramp_s), lighting): {e}") from None
    if image.dtype != np.float32 or image.shape != (sensor.height, sensor.width):
        raise ValueError(f"{where}: image is {image.dtype} {image.shape}, the sensor needs float32 "
                         f"{(sensor.height, sensor.width)}")
    for name, a in (("starts", starts), ("ends", ends)):
        if a.dtype != np.float64 or a.ndim != 1 or a.shape != starts.shape:
            raise ValueError(f"{where}: {name} must be float64 of one dimension, as long as starts")
    if np.any(np.diff(starts) < 0) or np.any(ends < starts):
        raise ValueError(f"{where}: gesture times must be sorted, each ending at or after its start")
    return figure, (starts, ends, float(ramp_s)), tuple(float(v) for v in lighting)


class _Buffer:
    """Scratch for candidate signal events (pixel, time, polarity); ``n`` are in use
    (``K.interval_crossings`` replaces the arrays by longer ones when they are full)."""

    def __init__(self, capacity):
        self.pix, self.t, self.p, self.n = (np.empty(capacity, np.int64), np.empty(capacity, np.int64),
                                            np.empty(capacity, np.int8), 0)


def noise_block(sensor: SensorConfig, hot_pixels: np.ndarray, seed: int, block: int):
    """Background, hot-pixel and shot-noise candidates of one block of grid intervals, from ``(seed, block)``.

    Returns ``(pix, t, p, kind)``, sorted by t (stable: background, hot, shot on equal t).
    """
    rng = np.random.default_rng([seed, 1, block])
    n_pix, span = sensor.pixels, NOISE_BLOCK_INTERVALS * sensor.base_interval_us
    lo = block * span + 1  # the block's times are (block * span, (block + 1) * span]
    seconds = span * 1e-6
    n_bg = rng.poisson(sensor.background_rate_hz * n_pix * seconds)
    bg = rng.integers(0, n_pix, n_bg)
    hot = np.repeat(hot_pixels, rng.poisson(sensor.hot_pixel_rate_hz * seconds, len(hot_pixels)))
    n_shot = rng.poisson(sensor.shot_noise_rate_hz * n_pix * seconds)
    shot = rng.integers(0, n_pix, n_shot)
    pix = np.concatenate([bg, hot, shot]).astype(np.int64)
    kind = np.repeat(np.array([BACKGROUND, HOT, SHOT], np.int8), [len(bg), len(hot), len(shot)])
    t = rng.integers(lo, lo + span, len(pix))
    p = rng.integers(0, 2, len(pix)).astype(np.int8)
    order = np.argsort(t, kind="stable")
    return pix[order], t[order], p[order], kind[order]


# ---------------------------------------------------------------------- conveniences


def simulate_steps(scene, sensor: SensorConfig, seed: int = 0, seconds: float | None = None,
                   chunk_us: int = 10_000):
    """Yield ``(t_us, events, state)`` every ``chunk_us`` of ``seconds`` (default
    ``scene.duration_s``): the events up to ``t_us`` since the last step (maybe none) and the
    simulator's state after them (its ``counts()`` so far)."""
    if chunk_us <= 0:
        raise ValueError(f"chunk_us must be > 0, got {chunk_us}")
    sim = Simulator(scene, sensor, seed)
    state = sim.init_state()
    t_end = int(round((scene.duration_s if seconds is None else seconds) * 1e6))
    for t in range(chunk_us, t_end + chunk_us, chunk_us):
        events, state = sim.advance(min(t, t_end), state)
        yield min(t, t_end), events, state


def simulate_chunks(scene, sensor: SensorConfig, seed: int = 0, seconds: float | None = None,
                    chunk_us: int = 10_000):
    """Yield the events of ``seconds`` (default ``scene.duration_s``) in chunks of ``chunk_us`` (some may be empty)."""
    for _, events, _ in simulate_steps(scene, sensor, seed, seconds, chunk_us):
        yield events


def simulate(scene, sensor: SensorConfig, seed: int = 0, seconds: float | None = None) -> np.ndarray:
    """All events of ``seconds`` (default ``scene.duration_s``) of ``scene``, sorted by t."""
    sim = Simulator(scene, sensor, seed)
    t_end = int(round((scene.duration_s if seconds is None else seconds) * 1e6))
    return sim.advance(t_end, sim.init_state())[0]


def scene_sensor(name: str, sensor: SensorConfig | str | None = None, **overrides) -> SensorConfig:
    """The sensor for scene ``name``: its default preset with its ``SENSOR_OVERRIDES`` when ``sensor`` is
    None or that preset's name, another preset by name, or ``sensor`` itself; then ``overrides``."""
    mod = scene_module(name)
    if sensor is None or sensor == mod.DEFAULT_SENSOR:
        cfg = sensor_preset(mod.DEFAULT_SENSOR, **getattr(mod, "SENSOR_OVERRIDES", {}))
    elif isinstance(sensor, str):
        cfg = sensor_preset(sensor)
    else:
        cfg = sensor
    return cfg.replace(**overrides) if overrides else cfg


def simulate_scene(name: str, sensor: SensorConfig | str | None = None, seed: int = 0,
                   seconds: float | None = None, **scene_params):
    """Build scene ``name`` at the sensor's geometry (see ``scene_sensor``) and simulate it.

    Returns ``(events, scene, sensor)``.
    """
    from .scenes import make_scene

    cfg = scene_sensor(name, sensor)
    scene = make_scene(name, cfg.width, cfg.height, seed, seconds, **scene_params)
    return simulate(scene, cfg, seed, seconds), scene, cfg
