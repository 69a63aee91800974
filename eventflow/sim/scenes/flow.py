"""Flow scene: textured layers under camera motion, with exact dense optical flow.

The scene is a stack of textured layers, each moved by its own similarity transform of time
(translation, rotation and zoom, all analytic): a background plane seen by a camera that
translates, rolls and zooms, and a few textured objects (rounded boxes, ellipses, capsules)
moving, turning and growing or shrinking on their own, nearer ones occluding farther ones.

Flow convention (forward flow, as E-RAFT and DSEC): ``flow_between(t0_s, t1_s)`` is float32
(2, H, W); at pixel (row, col) it is the displacement (dx, dy), in pixels, x to the right and y
down, of the scene point seen at that pixel's centre at t0 between t0 and t1. The point seen
at a pixel is the one of the front-most layer covering the pixel at least half (at an
anti-aliased edge). The flow is defined everywhere, also for points that are hidden or out of
the image at t1; ``occlusion_between`` says which those are.

Ground truth: consecutive windows of ``window_us`` (default 50 ms, 20 Hz, the rate of DSEC's
flow maps (10 Hz) doubled) starting at t = 0, as many as fit in the duration. ``ground_truth()``
returns a dict with ``window_us``, ``t0_us``, ``t1_us`` (N,), ``flow`` (N, 2, H, W) float32 and
``occluded`` (N, H, W) uint8; ``save_ground_truth(stem)`` writes them to ``stem + "_flow.h5"``
(datasets t0_us, t1_us, flow and occluded gzip-compressed, attribute window_us).

>>> scene = make_scene(346, 260, seed=0)
>>> scene.flow_between(0.0, 0.05).shape
(2, 260, 346)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventflow.kernels import raster_shapes as R
from eventflow.sim.layers import LayerRendering, compose, invert, local_table, periodic_texture, similarity
from eventflow.sim.scene import scene_params

__all__ = ["DEFAULT_SENSOR", "SENSOR_OVERRIDES", "DEFAULT_SECONDS", "FlowScene", "make_scene"]

DEFAULT_SENSOR = "davis346"  # the camera of MVSEC, the first event-flow benchmark
SENSOR_OVERRIDES: dict = {}
DEFAULT_SECONDS = 1.0
DEFAULTS = dict(duration_s=DEFAULT_SECONDS, n_objects=4, window_us=50_000, camera_speed=1.0, object_speed=1.0)
FLOW_CONVENTION = ("forward flow (E-RAFT / DSEC): flow[:, row, col] = (dx, dy) in pixels of the point seen at the "
                   "pixel centre at t0, over [t0, t1]; x right, y down")


@dataclass(frozen=True, eq=False)
class FlowScene(LayerRendering):
    """Textured layers in analytic motion (see the module docstring)."""

    scene_name = "flow"

    width: int
    height: int
    duration_s: float
    window_us: int
    textures: np.ndarray  # (2, S, S)
    local: np.ndarray     # layer table, back to front, each in its own units (identity maps)
    motion: np.ndarray    # per layer: x, y at t = 0, vx, vy (px/s), scale at t = 0, zoom rate (1/s), angle, spin (rad/s)

    def forward(self, t_s: float) -> np.ndarray:
        """Map (n_layers, 6) of each layer's units to the scene at ``t_s``."""
        x, y, vx, vy, scale, rate, angle, spin = self.motion.T
        fwd, _ = similarity(x + vx * t_s, y + vy * t_s, scale * np.exp(rate * t_s), angle + spin * t_s)
        return fwd

    def layers(self, t_s: float) -> np.ndarray:
        """The layer table at ``t_s`` (scene coordinates, back to front)."""
        out = np.empty_like(self.local)
        R.place_layers(self.local, np.arange(len(self.local)), self.forward(t_s), 1.0, out)
        return out

    def flow_and_occlusion(self, t0_s: float, t1_s: float):
        """(flow float32 (2, H, W), occluded uint8 (H, W)) over [t0_s, t1_s] (see the module docstring)."""
        flow = np.empty((2, self.height, self.width), np.float32)
        occluded = np.empty((self.height, self.width), np.uint8)
        fwd0, fwd1 = self.forward(t0_s), self.forward(t1_s)
        R.layer_flow(flow, occluded, self.layers(t0_s), compose(fwd1, invert(fwd0)), self.layers(t1_s))
        return flow, occluded

    def flow_between(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Forward flow (2, H, W) float32 in pixels of the points seen at t0, over [t0_s, t1_s]."""
        return self.flow_and_occlusion(t0_s, t1_s)[0]

    def occlusion_between(self, t0_s: float, t1_s: float) -> np.ndarray:
        """uint8 (H, W): 1 where the point seen at t0 is hidden by another layer or out of the image at t1."""
        return self.flow_and_occlusion(t0_s, t1_s)[1]

    def windows_us(self):
        """(t0_us, t1_us) of the ground-truth windows: consecutive, from 0, all inside the duration."""
        n = int(round(self.duration_s * 1e6)) // self.window_us
        t0 = np.arange(n, dtype=np.int64) * self.window_us
        return t0, t0 + self.window_us

    def ground_truth(self) -> dict:
        """window_us, t0_us, t1_us, flow (N, 2, H, W) float32 and occluded (N, H, W) uint8."""
        t0, t1 = self.windows_us()
        flow = np.empty((len(t0), 2, self.height, self.width), np.float32)
        occluded = np.empty((len(t0), self.height, self.width), np.uint8)
        for i, (a, b) in enumerate(zip(t0, t1)):
            flow[i], occluded[i] = self.flow_and_occlusion(a / 1e6, b / 1e6)
        return dict(window_us=self.window_us, t0_us=t0, t1_us=t1, flow=flow, occluded=occluded)

    def save_ground_truth(self, stem: str) -> list[str]:
        import h5py

        gt = self.ground_truth()
        path = f"{stem}_flow.h5"
        with h5py.File(path, "w") as f:
            f.attrs["window_us"] = gt["window_us"]
            f.attrs["convention"] = FLOW_CONVENTION
            f.create_dataset("t0_us", data=gt["t0_us"])
            f.create_dataset("t1_us", data=gt["t1_us"])
            chunk = (1, 2, self.height, self.width)
            f.create_dataset("flow", data=gt["flow"], compression="gzip", chunks=chunk if len(gt["t0_us"]) else None)
            f.create_dataset("occluded", data=gt["occluded"], compression="gzip",
                             chunks=chunk[:1] + chunk[2:] if len(gt["t0_us"]) else None)
        return [path]


def make_scene(width: int, height: int, seed: int, **params) -> FlowScene:
    """The flow scene at the given geometry; ``params``: any of ``DEFAULTS``' keys."""
    p = scene_params("flow", width, height, params, DEFAULTS, min_side=8, positive=("duration_s", "window_us"))
    W, H = float(width), float(height)
    L = min(W, H) / 260.0  # sizes and speeds are given for a 260-pixel image side
    rng = np.random.default_rng(seed)
    textures = np.stack([periodic_texture(rng, 256, (4.0, 48.0)), periodic_texture(rng, 256, (4.0, 32.0), True)])
    cam, obj = p["camera_speed"], p["object_speed"]
    # background: layer units are pixels at t = 0, origin at the image centre
    heading = rng.uniform(0, 2 * np.pi)
    speed = cam * rng.uniform(20.0, 60.0) * L
    rows = [(R.PLANE, (0.0,) * 5, 0.15, 0.75, 0.8 / L, 0)]
    motion = [(W / 2, H / 2, speed * np.cos(heading), speed * np.sin(heading), 1.0,
               cam * rng.choice([-1, 1]) * rng.uniform(0.05, 0.25), 0.0, cam * rng.choice([-1, 1]) * rng.uniform(0.05, 0.25))]
    for _ in range(p["n_objects"]):
        kind = rng.choice([R.BOX, R.ELLIPSE, R.CAPSULE])
        a, b = rng.uniform(12.0, 35.0, 2) * L
        if kind == R.BOX:
            shape = (0.0, 0.0, a, b, rng.uniform(0.0, 0.5) * min(a, b))
        elif kind == R.ELLIPSE:
            shape = (0.0, 0.0, a, b, 0.0)
        else:
            shape = (-a, 0.0, a, 0.0, 0.4 * b)
        lo = rng.uniform(0.05, 0.5)
        rows.append((kind, shape, lo, min(1.0, lo + rng.uniform(0.3, 0.6)), rng.uniform(0.6, 1.2) / L, int(rng.integers(2))))
        heading = rng.uniform(0, 2 * np.pi)
        speed = obj * rng.uniform(40.0, 120.0) * L
        duration = p["duration_s"]
        x_mid, y_mid = W * rng.uniform(0.2, 0.8), H * rng.uniform(0.2, 0.8)
        vx, vy = speed * np.cos(heading), speed * np.sin(heading)
        motion.append((x_mid - vx * duration / 2, y_mid - vy * duration / 2, vx, vy, 1.0, obj * rng.uniform(-0.3, 0.3),
                       rng.uniform(0, 2 * np.pi), obj * rng.uniform(-1.0, 1.0)))
    n = len(rows)
    col = list(zip(*rows))
    tex_u, tex_v = rng.uniform(0, 256, n), rng.uniform(0, 256, n)
    local = local_table(col[0], col[1], col[2], col[3], col[4], tex_u, tex_v, col[5])
    return FlowScene(int(width), int(height), float(p["duration_s"]), int(p["window_us"]), textures, local,
                     np.array(motion, dtype=np.float64))
