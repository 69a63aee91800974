"""The simulator's scenes, by name: gesture, digits, detection, flow.

Each scene module defines ``make_scene(width, height, seed, **params) -> Scene`` (see
``eventflow.sim.scene``) and ``DEFAULT_SENSOR``, the preset its recordings imitate.
"""
from __future__ import annotations

import importlib

SCENE_NAMES = ("gesture", "digits", "detection", "flow")

__all__ = ["SCENE_NAMES", "make_scene", "scene_module"]


def scene_module(name: str):
    if name not in SCENE_NAMES:
        raise ValueError(f"unknown scene {name!r}; known: {', '.join(SCENE_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def make_scene(name: str, width: int, height: int, seed: int, seconds: float | None = None, **params):
    """The scene ``name`` at the given geometry, its random choices drawn from ``seed``.

    ``seconds``: the recording's length, passed to scenes whose timeline depends on it (their
    ``make_scene`` takes ``duration_s``; e.g. gesture fits its rests and gesture into it) unless
    ``params`` sets ``duration_s`` itself; scenes with a fixed timeline (digits) ignore it.
    """
    import inspect

    module = scene_module(name)
    make = module.make_scene
    takes = "duration_s" in inspect.signature(make).parameters or "duration_s" in getattr(module, "DEFAULTS", {})
    if seconds is not None and "duration_s" not in params and takes:
        params["duration_s"] = float(seconds)
    return make(width, height, seed, **params)
