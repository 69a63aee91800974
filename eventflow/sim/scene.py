"""What the simulator needs from a scene: linear intensity at any time, and its ground truth.

A scene is a deterministic function of time: ``render(t_s, out)`` writes the linear
intensity (float32, in (0, 1], shape (height, width), row 0 at the top) seen by the sensor at
time ``t_s`` seconds into ``out``. Rendering the same time twice gives the same image, so the
simulator may sample frames at any rate (it refines the rate where the image changes fast).
Everything random about a scene (subject, speed, clutter, lighting) is drawn once, from the
seed it was made with.

A scene MAY also implement ``render_region(t_s, out, y0, y1, x0, x1)``: write only rows
``y0..y1-1``, columns ``x0..x1-1`` of ``out``, with exactly the values ``render`` gives them,
leaving the other pixels untouched. The simulator then renders its refinement samples only
where the image changes fast; without it, it renders whole frames (``render``) and uses the
part it needs.

A scene MAY also implement ``render_log_region(t_s, eps, out, y0, y1, x0, x1) -> int``: write
``log(I + eps)`` of ``render``'s intensity there (the scene need not have ``render_region``),
with exactly the values ``eventflow.kernels.sim.log_region`` computes, into the flat float32
frame ``out`` (length ``height * width``, other pixels untouched), and return how many pixels
``log_region`` would count as bad (not positive, finite and normal); ValueError when the
rectangle is not inside the image or ``out`` is not one frame long. The simulator then takes
every sample (whole or refined) from it: a scene whose rendering is a numba kernel can fuse
rendering and the log into one call per sample (the gesture scene does), where Python glue and
kernel dispatch are much of the cost.

A scene drawn as an articulated figure (the gesture scene) MAY also implement
``figure_sampler() -> (figure, timing, lighting)``: its pose and drawing tables, gesture times
and lighting as ``eventflow.kernels.sim_figure`` takes them. The simulator then runs the whole
interval loop of an ``advance`` in one numba call, with the same events, bit for bit, as the
per-sample loop over ``render_log_region`` (its reference).

``ground_truth()`` returns the scene's labels in its own documented form (gesture: class
intervals; digits: the class; detection: Gen1 boxes over time; flow: dense flow on request),
and ``save_ground_truth(stem)`` writes them beside an event file with a documented suffix.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Scene", "check_region", "scene_params"]


@runtime_checkable
class Scene(Protocol):
    width: int
    height: int
    duration_s: float

    def render(self, t_s: float, out: np.ndarray) -> None:
        """Write the linear intensity at time ``t_s`` into ``out`` (float32, (height, width), values in (0, 1])."""

    def ground_truth(self) -> Any:
        """The scene's labels (scene-specific, documented in its module)."""

    def save_ground_truth(self, stem: str) -> list[str]:
        """Write the labels beside an event file named ``stem + ext``; return the paths written."""


def scene_params(scene: str, width: int, height: int, params: dict, defaults: dict, *, min_side: int,
                 positive: tuple = ()) -> dict:
    """``defaults`` updated by ``params`` for a scene's ``make_scene``, after checking that every
    name is known, that the geometry is at least ``min_side`` pixels each way and that the
    ``positive`` parameters are > 0 (ValueError naming the scene and what is wrong).

    >>> scene_params("flow", 64, 48, {"window_us": 10}, {"duration_s": 1.0, "window_us": 50}, min_side=8,
    ...              positive=("duration_s", "window_us"))
    {'duration_s': 1.0, 'window_us': 10}
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"{scene} scene: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
    p = {**defaults, **params}
    if width < min_side or height < min_side:
        raise ValueError(f"{scene} scene: geometry {width}x{height} is too small ({min_side}x{min_side} at least)")
    if any(p[k] <= 0 for k in positive):
        raise ValueError(f"{scene} scene: " + " and ".join(f"{k} {p[k]}" for k in positive) + " must be > 0")
    return p


def check_region(where: str, out: np.ndarray, height: int, width: int, y0: int, y1: int, x0: int, x1: int) -> None:
    """ValueError naming ``where`` unless ``out`` is a float32 (height, width) image and rows
    ``y0..y1-1``, columns ``x0..x1-1`` lie inside it (what ``render_region`` takes)."""
    if out.shape != (height, width) or out.dtype != np.float32:
        raise ValueError(f"{where}: out must be float32 {(height, width)}, got {out.dtype} {out.shape}")
    if not (0 <= y0 <= y1 <= height and 0 <= x0 <= x1 <= width):
        raise ValueError(f"{where}: region rows {y0}..{y1}, columns {x0}..{x1} is not inside {width}x{height}")
