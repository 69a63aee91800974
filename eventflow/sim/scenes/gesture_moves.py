"""The 11 DVS128 Gesture classes as periodic pose-channel trajectories.

A class is a base frequency and, per pose channel (``gesture_figure``), a mean, a number of
whole turns (rotations: the channel advances by ``2 pi`` per cycle) and two harmonics
``amp * sin(h * omega * tau + phase)``. The performer's speed, amplitude, starting phase and
a little asymmetry between the arms (handedness) are drawn per performance.

Clockwise is as the SUBJECT sees it (the subject faces the camera, so it is counter-clockwise
in the image): the right arm turning clockwise goes down, across the body, up, and out.

>>> import numpy as np
>>> m = class_motion(2, np.random.default_rng(0))
>>> m.g0.shape == (N_CHANNELS,) and m.harm.shape == (N_CHANNELS, HARMONICS, 2)
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .gesture_figure import (
    DIST_X, DIST_Y, DX, DY, ELBOW, FORE_LEN, HAND_LEN, HEAD, LEAN, LEFT, N_CHANNELS, RIGHT, SHOULDER,
    UPPER_LEN, WRIST,
)

CLASS_NAMES = {1: "hand clap", 2: "right hand wave", 3: "left hand wave", 4: "right arm clockwise",
               5: "right arm counter-clockwise", 6: "left arm clockwise", 7: "left arm counter-clockwise",
               8: "arm roll", 9: "air drums", 10: "air guitar", 11: "other"}
HARMONICS = 2
CLOCKWISE = {RIGHT: -1.0, LEFT: 1.0}  # shoulder turn direction of a clockwise circle, per arm


@dataclass(frozen=True)
class Motion:
    """One performance's trajectory tables (``eventflow.kernels.raster.pose_channels``)."""

    class_id: int
    g0: np.ndarray     # float64[K] mean pose
    turns: np.ndarray  # float64[K] whole turns per cycle (sign = direction)
    harm: np.ndarray   # float64[K, HARMONICS, 2] (cos, sin) coefficients
    omega: float       # rad/s


def rest_pose(rng: np.random.Generator) -> np.ndarray:
    """The performer's arms-down pose (float64[K]); bone length scales 1."""
    rest = np.zeros(N_CHANNELS)
    for arm in (RIGHT, LEFT):
        rest[arm + SHOULDER] = rng.uniform(0.06, 0.22)
        rest[arm + ELBOW] = rng.uniform(-0.35, -0.05)
        rest[arm + WRIST] = rng.uniform(-0.1, 0.1)
        rest[arm + UPPER_LEN: arm + HAND_LEN + 1] = 1.0
    return rest


def idle_motion(rng: np.random.Generator, width: int, height: int, sway: float | None = None) -> np.ndarray:
    """Always-present slow motion, float64[K, 3] rows (amp, omega, phase): body sway and
    breathing, a wandering head, restless arms, and the background distractor's walk."""
    idle = np.zeros((N_CHANNELS, 3))
    u = rng.uniform
    px = height / 128

    def chan(k, amp, hz):
        idle[k] = (amp, 2 * math.pi * hz, u(0, 2 * math.pi))

    chan(DX, (sway if sway is not None else u(0.4, 1.6)) * px, u(0.15, 0.5))
    chan(DY, u(0.2, 0.7) * px, u(0.2, 0.4))
    chan(LEAN, u(0.005, 0.025), u(0.1, 0.4))
    chan(HEAD, u(0.02, 0.07), u(0.1, 0.4))
    for arm in (RIGHT, LEFT):
        chan(arm + SHOULDER, u(0.005, 0.03), u(0.2, 0.6))
        chan(arm + ELBOW, u(0.005, 0.04), u(0.2, 0.6))
    chan(DIST_X, u(0.2, 0.45) * width, u(0.02, 0.08))
    chan(DIST_Y, u(0.0, 0.03) * height, u(0.05, 0.2))
    return idle


def _spec(class_id: int, rng: np.random.Generator) -> tuple[float, dict]:
    """(frequency Hz, {channel: (mean, turns, ((amp1, phase1), (amp2, phase2)))}) of a class,
    for the right arm; the caller mirrors it for the left where the class says so."""
    u = rng.uniform
    zero = ((0.0, 0.0), (0.0, 0.0))
    if class_id == 1:  # clap: forearms toward the midline, hands meeting in front of the chest
        arm = {SHOULDER: (0.45, 0, ((0.2, 0.0), (0.0, 0.0))), ELBOW: (-2.2, 0, ((0.6, 0.0), (0.1, 1.0))),
               FORE_LEN: (0.8, 0, ((0.08, 0.0), (0.0, 0.0)))}
        return u(1.5, 2.2), {RIGHT + k: v for k, v in arm.items()} | {LEFT + k: v for k, v in arm.items()}
    if class_id in (2, 3):  # wave: upper arm out to the side, forearm up, swinging
        side = RIGHT if class_id == 2 else LEFT
        arm = {SHOULDER: (u(1.1, 1.35), 0, ((0.06, 0.0), (0.0, 0.0))), ELBOW: (1.65, 0, ((0.5, 0.0), (0.05, 0.5))),
               WRIST: (0.0, 0, ((0.3, 0.6), (0.0, 0.0)))}
        return u(1.5, 2.5), {side + k: v for k, v in arm.items()}
    if class_id in (4, 5, 6, 7):  # arm circles in the frontal plane, arm nearly straight
        side = RIGHT if class_id in (4, 5) else LEFT
        direction = CLOCKWISE[side] * (1.0 if class_id in (4, 6) else -1.0)
        arm = {SHOULDER: (0.0, direction, zero), ELBOW: (0.1, 0, ((0.08, 0.0), (0.0, 0.0))),
               UPPER_LEN: (0.95, 0, ((0.05, 0.0), (0.0, 0.0)))}
        return u(0.7, 1.2), {side + k: v for k, v in arm.items()}
    if class_id == 8:  # arm roll: hands circling each other in front of the chest
        r = {SHOULDER: (0.55, 0, ((0.25, 0.0), (0.0, 0.0))), ELBOW: (-2.05, 0, ((0.5, math.pi / 2), (0.0, 0.0))),
             FORE_LEN: (0.72, 0, ((0.2, 0.0), (0.0, 0.0)))}
        l_ = {k: (m, t, ((a1, p1 + math.pi), h2)) for k, (m, t, ((a1, p1), h2)) in r.items()}
        return u(1.8, 2.6), {RIGHT + k: v for k, v in r.items()} | {LEFT + k: v for k, v in l_.items()}
    if class_id == 9:  # air drums: forearms forward and in (foreshortened), beating alternately
        r = {SHOULDER: (0.35, 0, ((0.12, 0.0), (0.0, 0.0))), ELBOW: (-1.25, 0, ((0.5, 0.0), (0.15, 0.4))),
             WRIST: (0.0, 0, ((0.4, -0.5), (0.0, 0.0))), FORE_LEN: (0.55, 0, ((0.18, 0.0), (0.0, 0.0)))}
        l_ = {k: (m, t, ((a1, p1 + math.pi), (a2, p2 + 2 * math.pi))) for k, (m, t, ((a1, p1), (a2, p2))) in r.items()}
        return u(2.2, 3.2), {RIGHT + k: v for k, v in r.items()} | {LEFT + k: v for k, v in l_.items()}
    if class_id == 10:  # air guitar: right hand strums at the belly, left hand frets the neck
        return u(2.5, 3.8), {
            RIGHT + SHOULDER: (0.3, 0, ((0.04, 0.0), (0.0, 0.0))), RIGHT + ELBOW: (-1.7, 0, ((0.28, 0.0), (0.0, 0.0))),
            RIGHT + WRIST: (0.0, 0, ((0.35, 0.3), (0.0, 0.0))),
            LEFT + SHOULDER: (0.9, 0, ((0.0, 0.0), (0.03, 0.0))), LEFT + ELBOW: (-0.75, 0, ((0.0, 0.0), (0.06, 1.0))),
            LEFT + WRIST: (-0.2, 0, ((0.0, 0.0), (0.2, 0.0))), LEFT + HAND_LEN: (0.9, 0, ((0.0, 0.0), (0.15, 0.5))),
            HEAD: (0.0, 0, ((0.05, 0.0), (0.0, 0.0)))}
    if class_id == 11:  # other: a random periodic movement of one or both arms, maybe the body
        spec = {}
        for side in [RIGHT, LEFT] if rng.random() < 0.4 else [[RIGHT, LEFT][rng.integers(2)]]:
            spec[side + SHOULDER] = (u(0.0, 1.6), 0, ((u(0.1, 0.5), u(0, 6.3)), (u(0, 0.15), u(0, 6.3))))
            spec[side + ELBOW] = (u(-2.2, 1.6), 0, ((u(0.1, 0.6), u(0, 6.3)), (u(0, 0.2), u(0, 6.3))))
            spec[side + WRIST] = (u(-0.3, 0.3), 0, ((u(0, 0.4), u(0, 6.3)), (0.0, 0.0)))
            spec[side + FORE_LEN] = (u(0.5, 1.0), 0, ((u(0, 0.2), u(0, 6.3)), (0.0, 0.0)))
        if rng.random() < 0.3:
            spec[LEAN] = (0.0, 0, ((u(0.03, 0.1), 0.0), (0.0, 0.0)))
        return u(0.5, 2.5), spec
    known = ", ".join(f"{k} {v}" for k, v in CLASS_NAMES.items())
    raise ValueError(f"gesture class {class_id!r} is not one of 1..11 ({known})")


def class_motion(class_id: int, rng: np.random.Generator, rest: np.ndarray | None = None,
                 speed: float = 1.0, amplitude: float = 1.0) -> Motion:
    """One performance of ``class_id``: the class's spec with this performer's variation
    (speed and amplitude factors, random starting phase, small per-arm offsets). Channels the
    class does not move keep ``rest``."""
    if rest is None:
        rest = rest_pose(rng)
    hz, spec = _spec(int(class_id), rng)
    hz *= speed * rng.uniform(0.9, 1.1)
    start = rng.uniform(0, 2 * math.pi)
    g0, turns, harm = rest.copy(), np.zeros(N_CHANNELS), np.zeros((N_CHANNELS, HARMONICS, 2))
    for k, (mean, turn, harmonics) in spec.items():
        own = rng.uniform(0.9, 1.1) * amplitude  # handedness: each channel its own amplitude and lag
        lag = rng.normal(0, 0.12)
        g0[k] = mean + rng.normal(0, 0.05) if turn == 0 else rest[k]
        turns[k] = turn
        for h, (amp, phase) in enumerate(harmonics):
            ph = phase + (h + 1) * (start + lag)
            harm[k, h] = (own * amp * math.sin(ph), own * amp * math.cos(ph))  # amp sin(x + ph)
    return Motion(int(class_id), g0, turns, harm, 2 * math.pi * hz)
