"""The event simulator: scenes rendered over time, seen through a DVS sensor model.

>>> from eventflow.sim import sensor_preset
>>> sensor_preset("davis346").width
346

``Simulator(scene, sensor, seed)`` steps explicitly (``init_state``, ``advance``);
``simulate`` / ``simulate_chunks`` run a whole recording; ``simulate_scene(name, ...)`` builds
one of the registered scenes (``eventflow.sim.scenes``) at its default sensor and simulates it.
"""
from __future__ import annotations

from .scene import Scene
from .sensor import PRESETS, SensorConfig, sensor_preset
from .simulator import (KINDS, SimState, Simulator, scene_sensor, simulate, simulate_chunks, simulate_scene,
                        simulate_steps)

__all__ = [
    "KINDS", "PRESETS", "Scene", "SensorConfig", "SimState", "Simulator", "scene_sensor", "sensor_preset",
    "simulate", "simulate_chunks", "simulate_scene", "simulate_steps",
]
