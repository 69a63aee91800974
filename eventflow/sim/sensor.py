"""Sensor models for the simulator: geometry, contrast thresholds, refractory period and noise.

A ``SensorConfig`` is a frozen value; ``sensor_preset(name, **overrides)`` gives the presets of
the cameras eventflow's datasets come from, with any field replaced. ``vary_sensor`` draws a
sensor's fields from ranges, one draw per seed (domain randomisation of a dataset split).

>>> s = sensor_preset("dvs128", background_rate_hz=0.0)
>>> (s.width, s.height, s.contrast_on, s.background_rate_hz)
(128, 128, 0.2, 0.0)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["INTEGER_FIELDS", "PRESETS", "SensorConfig", "VARIABLE_FIELDS", "check_ranges", "sensor_preset", "vary_sensor"]


@dataclass(frozen=True)
class SensorConfig:
    """A DVS pixel array, ESIM/v2e style.

    name: preset name (free text for custom sensors). width, height: pixels.
    contrast_on, contrast_off: nominal log-intensity thresholds of ON and OFF events.
    contrast_sigma: standard deviation of the per-pixel threshold mismatch (absolute, in log
        units, drawn once per pixel from the simulator's seed; thresholds are kept >= min_contrast).
    refractory_us: after an event a pixel stays silent this long (events closer are dropped and
        counted; the reference level still follows the light, as in v2e).
    background_rate_hz: background activity per pixel (Poisson, random polarity).
    hot_pixel_fraction, hot_pixel_rate_hz: a fraction of pixels (chosen from the seed) that fire
        at this rate each (Poisson, random polarity).
    shot_noise_rate_hz: shot-noise events per pixel (Poisson, random polarity); unlike background
        activity they reset the pixel's reference by one threshold (as v2e's shot noise does).
    log_eps: the sensor sees ``log(I + log_eps)`` (I is linear intensity in (0, 1]).
    min_frame_rate_hz: the scene is rendered at least this often, on a fixed grid (its period is
        rounded to whole microseconds).
    refine_fraction, max_refine_levels: a grid interval is halved, for the bounding rectangle of
        the pixels whose log intensity changes by more than
        ``refine_fraction * min(contrast_on, contrast_off)`` between consecutive samples, at most
        ``max_refine_levels`` times (the pixels outside it keep the whole interval).
    min_contrast: floor of a pixel's threshold after mismatch.
    """

    name: str
    width: int
    height: int
    contrast_on: float = 0.2
    contrast_off: float = 0.2
    contrast_sigma: float = 0.03
    refractory_us: int = 100
    background_rate_hz: float = 0.1
    hot_pixel_fraction: float = 0.0
    hot_pixel_rate_hz: float = 0.0
    shot_noise_rate_hz: float = 0.0
    log_eps: float = 1e-3
    min_frame_rate_hz: float = 1000.0
    refine_fraction: float = 0.5
    max_refine_levels: int = 2
    min_contrast: float = 0.01

    def __post_init__(self):
        def need(ok, field, what):
            if not ok:
                raise ValueError(f"sensor {self.name!r}: {field}={getattr(self, field)!r} must be {what}")

        for f in ("width", "height"):
            need(int(getattr(self, f)) == getattr(self, f) and 0 < getattr(self, f) <= 65536, f,
                 "an integer in 1..65536")
        for f in ("contrast_on", "contrast_off", "log_eps", "min_frame_rate_hz", "refine_fraction",
                  "min_contrast"):
            need(getattr(self, f) > 0, f, "> 0")
        for f in ("contrast_sigma", "refractory_us", "background_rate_hz", "hot_pixel_rate_hz",
                  "shot_noise_rate_hz", "max_refine_levels"):
            need(getattr(self, f) >= 0, f, ">= 0")
        need(0 <= self.hot_pixel_fraction <= 1, "hot_pixel_fraction", "in [0, 1]")
        need(int(self.refractory_us) == self.refractory_us, "refractory_us", "whole microseconds")
        need(int(self.max_refine_levels) == self.max_refine_levels and self.max_refine_levels <= 12,
             "max_refine_levels", "an integer in 0..12")
        need(1e6 / self.min_frame_rate_hz >= 2 ** self.max_refine_levels, "min_frame_rate_hz",
             "low enough that the finest sample interval is at least 1 us")

    @property
    def base_interval_us(self) -> int:
        """Period of the fixed render grid, whole microseconds (at least ``min_frame_rate_hz``)."""
        return max(1, int(1e6 // self.min_frame_rate_hz))

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def replace(self, **overrides) -> "SensorConfig":
        """A copy with fields replaced; unknown fields: ValueError listing the known ones."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown sensor field(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return dataclasses.replace(self, **overrides)


#: The cameras of eventflow's datasets. Noise levels are typical of each (a few tenths of a Hz of
#: background activity per pixel indoors); refractory periods as their biases are usually set.
PRESETS: dict[str, SensorConfig] = {
    "dvs128": SensorConfig("dvs128", 128, 128, refractory_us=100, background_rate_hz=0.1),
    "davis346": SensorConfig("davis346", 346, 260, refractory_us=100, background_rate_hz=0.1),
    "gen1": SensorConfig("gen1", 304, 240, refractory_us=100, background_rate_hz=0.2),
    "imx636": SensorConfig("imx636", 1280, 720, contrast_on=0.25, contrast_off=0.25,
                           refractory_us=50, background_rate_hz=0.05),
    # N-MNIST: an ATIS (304x240) saccading over a screen, cropped to 34x34
    "nmnist": SensorConfig("nmnist", 34, 34, contrast_on=0.15, contrast_off=0.15,
                           refractory_us=50, background_rate_hz=0.2),
}


def sensor_preset(name: str, **overrides) -> SensorConfig:
    """The preset ``name`` with fields replaced (unknown name or field: ValueError naming the known ones).

    >>> sensor_preset("gen1").width, sensor_preset("gen1").height
    (304, 240)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown sensor {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)


#: The fields ``vary_sensor`` may draw (not the geometry, the name or the render grid). A field's
#: position here keys its own random stream: adding or removing another field's range leaves its
#: draws as they were. Append new fields at the end.
VARIABLE_FIELDS = ("contrast_on", "contrast_off", "contrast_sigma", "refractory_us", "background_rate_hz",
                   "hot_pixel_fraction", "hot_pixel_rate_hz", "shot_noise_rate_hz", "log_eps")
#: Fields drawn as whole numbers (every integer in [lo, hi] equally likely; lo and hi whole).
INTEGER_FIELDS = ("refractory_us",)
#: Mixed into a seed for the sensor's draws (non-zero: numpy pads a seed list with zeros, so
#: ``[seed, 0]`` would repeat the stream of ``seed`` itself, which the scenes draw from).
_VARY_STREAM = 0x5E2507


def check_ranges(ranges) -> dict:
    """``{field: (lo, hi)}`` with floats, in name order, checked: a mapping of known variable
    fields (``VARIABLE_FIELDS``) to two finite numbers each (not strings or booleans),
    ``lo <= hi``, whole non-negative ends for ``INTEGER_FIELDS``. Errors name the field."""
    if not isinstance(ranges, dict):
        raise ValueError(f"sensor ranges: expected a mapping of field to [lo, hi], got {ranges!r}")
    out = {}
    for name in sorted(ranges):
        if name not in VARIABLE_FIELDS:
            raise ValueError(f"sensor field {name!r} cannot be varied; variable fields: {', '.join(VARIABLE_FIELDS)}")
        pair = ranges[name]
        numbers = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in pair)
        if not numbers:
            raise ValueError(f"sensor range {name}: expected two numbers [lo, hi], got {pair!r}")
        lo, hi = float(pair[0]), float(pair[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"sensor range {name}: expected finite lo <= hi, got [{lo:g}, {hi:g}]")
        if name in INTEGER_FIELDS and not (lo >= 0 and lo.is_integer() and hi.is_integer()):
            raise ValueError(f"sensor range {name}: expected whole numbers 0 <= lo <= hi, got [{lo:g}, {hi:g}]")
        out[name] = (lo, hi)
    return out


def vary_sensor(sensor: SensorConfig, ranges: dict, seed: int) -> SensorConfig:
    """``sensor`` with each field of ``ranges`` (``{field: (lo, hi)}``) drawn uniformly from its
    range, from ``seed`` and the field alone (each field has its own stream, keyed by its place
    in ``VARIABLE_FIELDS``; ``INTEGER_FIELDS`` are drawn as whole numbers, ends included). The
    same seed gives the same sensor on any machine; an empty ``ranges`` gives ``sensor`` itself.
    A draw the sensor refuses (e.g. a threshold <= 0) raises its error.

    >>> s = vary_sensor(sensor_preset("nmnist"), {"contrast_on": (0.1, 0.3)}, seed=7)
    >>> 0.1 <= s.contrast_on <= 0.3, s.contrast_off == sensor_preset("nmnist").contrast_off
    (True, True)
    >>> both = vary_sensor(sensor_preset("nmnist"), {"contrast_on": (0.1, 0.3), "refractory_us": (5, 9)}, 7)
    >>> both.contrast_on == s.contrast_on, 5 <= both.refractory_us <= 9   # its own stream per field
    (True, True)
    """
    ranges = check_ranges(ranges)
    if not ranges:
        return sensor
    drawn = {}
    for name, (lo, hi) in ranges.items():
        rng = np.random.default_rng([int(seed) & ((1 << 64) - 1), _VARY_STREAM, 1 + VARIABLE_FIELDS.index(name)])
        if name in INTEGER_FIELDS:
            drawn[name] = int(rng.integers(int(lo), int(hi), endpoint=True))
        else:
            drawn[name] = float(rng.uniform(lo, hi))
    return sensor.replace(**drawn)
