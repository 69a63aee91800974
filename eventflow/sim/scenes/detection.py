"""Detection scene: cars and pedestrians crossing a street under camera ego-motion, with Gen1 boxes.

The camera drives forward and turns slightly: the street (a sky, a band of buildings and trees,
a textured ground) zooms about a focus of expansion, pans and bobs. Cars (textured bodies with
cabin, windows, wheels and lights) and pedestrians (stick bodies whose legs and arms swing at
the walking pace) cross it at their own speed, farther ones smaller and higher in the image,
nearer ones drawn over farther ones. Poles carrying a sign stand in the foreground (static in
the world, so they move with more parallax than the street) and occlude whatever passes behind.

Ground truth is Prophesee's Gen1 box format (``BBOX_DTYPE``: ts in us, x, y top-left and w, h in
pixels, class_id 0 car / 1 pedestrian, confidence 1, track_id the object), one box per visible
object every ``gt_period_us`` (default 50 ms, 20 Hz; Gen1 itself annotates at 1-4 Hz), from
t = 0 to the end. A box is the object's whole extent (every pixel its anti-aliased edge
touches), clipped to the image [0, W] x [0, H]. Dropped: objects less than ``min_visible``
(0.3) visible (occluded by nearer objects or poles, or outside the image), and boxes with a
side under ``min_box_side`` (10 px) or a diagonal under ``min_box_diag`` (30 px), the sizes
the Gen1 evaluation ignores. ``save_ground_truth(stem)`` writes ``stem + "_bbox.npy"``, as Gen1.

>>> scene = make_scene(304, 240, seed=1)
>>> frame = np.empty((240, 304), np.float32); scene.render(0.5, frame)
>>> boxes = scene.ground_truth(); boxes.dtype == BBOX_DTYPE
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eventflow.kernels import raster_shapes as R
from eventflow.sim.layers import LayerRendering, invert, local_table, periodic_texture, scene_bbox
from eventflow.sim.scene import scene_params

__all__ = ["BBOX_DTYPE", "CAR", "PEDESTRIAN", "DEFAULT_SENSOR", "SENSOR_OVERRIDES", "DEFAULT_SECONDS",
           "DetectionScene", "make_scene"]

BBOX_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                       ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])
CAR, PEDESTRIAN = 0, 1
DEFAULT_SENSOR = "gen1"
SENSOR_OVERRIDES: dict = {}
DEFAULT_SECONDS = 2.0
DEFAULTS = dict(duration_s=DEFAULT_SECONDS, n_cars=3, n_pedestrians=3, n_poles=2, ego_speed=1.0,
                gt_period_us=50_000, min_visible=0.3, min_box_side=10.0, min_box_diag=30.0)

B, E, C = R.BOX, R.ELLIPSE, R.CAPSULE
# car parts in car units (origin on the ground under the middle, v up is negative, facing +u):
# kind, shape (5), fill ("body" or a uniform intensity)
CAR_PARTS = (
    (B, (0.0, -11.0, 30.0, 7.0, 2.5), "body"),
    (B, (-3.0, -21.0, 17.0, 6.5, 4.0), "body"),
    (B, (5.5, -21.5, 6.5, 4.0, 1.5), 0.07),
    (B, (-11.5, -21.5, 6.5, 4.0, 1.5), 0.07),
    (E, (19.0, -5.0, 5.5, 5.5, 0.0), 0.05),
    (E, (-19.0, -5.0, 5.5, 5.5, 0.0), 0.05),
    (E, (19.0, -5.0, 2.2, 2.2, 0.0), 0.45),
    (E, (-19.0, -5.0, 2.2, 2.2, 0.0), 0.45),
    (B, (28.5, -13.0, 1.5, 2.0, 0.5), 0.95),
    (B, (-29.0, -13.0, 1.0, 2.0, 0.5), 0.3),
)
# pedestrian parts (origin on the ground between the feet): limbs are capsules whose ends follow
# the walking phase (LIMBS gives their index into the skeleton), the rest is rigid
# (limbs 0-3: far thigh, shin, upper arm, forearm; 4-7: the same on the near side)
PEDESTRIAN_PARTS = (
    (C, 0, "far"), (C, 1, "far"), (C, 2, "far"), (C, 3, "far"),
    (C, (0.0, -30.0, 0.0, -18.5, 3.6), "clothes"),
    (E, (0.6, -35.8, 3.1, 3.7, 0.0), "skin"),
    (C, 4, "near"), (C, 5, "near"), (C, 6, "near"), (C, 7, "near"),
)
LIMB_RADIUS = (1.9, 1.7, 1.5, 1.3)
PARALLAX = 2.2  # the poles are that much nearer than the street: their motion in the image is that much larger


@dataclass(frozen=True, eq=False)
class DetectionScene(LayerRendering):
    """A street under ego-motion with moving cars and pedestrians (see the module docstring)."""

    scene_name = "detection"

    width: int
    height: int
    duration_s: float
    gt_period_us: int
    min_visible: float
    min_box_side: float
    min_box_diag: float
    textures: np.ndarray  # (2, S, S): fine noise, blotches
    ego: np.ndarray       # foe_x, foe_y, zoom_rate (1/s), pan_x (px/s), bob_amp (px), bob_hz
    objects: np.ndarray   # per object, far to near: class, x_mid, ground_y, speed, scale, direction, phase, step_hz
    local: np.ndarray     # layer table, back to front, in the units of each layer's group
    group: np.ndarray     # group of each layer: 0 street, 1 + i object i, 1 + n_objects poles
    limb: np.ndarray      # skeleton limb (see _skeleton) of each layer, -1 for rigid ones

    def layers(self, t_s: float) -> np.ndarray:
        """The layer table at ``t_s`` (scene coordinates, back to front)."""
        local = self.local
        limb = self.limb >= 0
        if limb.any():
            o = self.objects
            ends = _skeleton(o[:, 6] + 2 * np.pi * o[:, 7] * t_s)
            local = local.copy()
            local[limb, 8:12] = ends[self.group[limb] - 1, self.limb[limb]]
        out = np.empty_like(local)
        R.place_layers(local, self.group, self._forward(t_s), 1.0, out)
        return out

    def owners(self) -> np.ndarray:
        """Object index of each layer; -1 for the street, -2 for the poles."""
        n = len(self.objects)
        return np.where(self.group > n, -2, self.group - 1)

    def _forward(self, t_s):
        """Maps of each group to the scene at ``t_s``: the street, each object, the poles."""
        fx, fy, rate, pan, bob, bob_hz = self.ego
        o = self.objects
        n = len(o)
        zoom = math.exp(rate * t_s)
        dy = bob * math.sin(2 * math.pi * bob_hz * t_s)
        zoom_p = math.exp(PARALLAX * rate * t_s)
        forward = np.zeros((n + 2, 6))
        forward[0] = (zoom, 0.0, fx * (1 - zoom) + pan * t_s, 0.0, zoom, fy * (1 - zoom) + dy)
        forward[n + 1] = (zoom_p, 0.0, fx * (1 - zoom_p) + PARALLAX * pan * t_s,
                          0.0, zoom_p, fy * (1 - zoom_p) + PARALLAX * dy)
        xw = o[:, 1] + o[:, 3] * o[:, 5] * (t_s - self.duration_s / 2)
        scale = o[:, 4] * zoom
        forward[1:n + 1, 0] = scale * o[:, 5]
        forward[1:n + 1, 2] = forward[0, 0] * xw + forward[0, 2]
        forward[1:n + 1, 4] = scale
        forward[1:n + 1, 5] = forward[0, 4] * o[:, 2] + forward[0, 5]
        return forward

    def boxes_at(self, t_s: float) -> np.ndarray:
        """The Gen1 boxes (BBOX_DTYPE) of the objects visible enough at ``t_s``."""
        return self._labels_at(t_s)[0]

    def _labels_at(self, t_s):
        """(boxes at ``t_s``, objects dropped as too small, objects dropped as hidden)."""
        layers = self.layers(t_s)
        x0, x1, y0, y1 = scene_bbox(layers[:, R.KIND], layers[:, R.SHAPE], invert(layers[:, R.MAP]), 0.5)
        owner = self.owners()
        W, H = self.width, self.height
        rows, small, hidden = [], 0, 0
        for i in range(len(self.objects)):
            mine = owner == i
            full = (x0[mine].min(), x1[mine].max(), y0[mine].min(), y1[mine].max())
            clipped = (max(full[0], 0.0), min(full[1], float(W)), max(full[2], 0.0), min(full[3], float(H)))
            w, h = clipped[1] - clipped[0], clipped[3] - clipped[2]
            if w < self.min_box_side or h < self.min_box_side or math.hypot(w, h) < self.min_box_diag:
                small += 1
            elif _visible_fraction(layers, owner, i, full, clipped, self.textures) < self.min_visible:
                hidden += 1
            else:
                rows.append((round(t_s * 1e6), clipped[0], clipped[2], w, h, int(self.objects[i, 0]), 1.0, i))
        return np.array(rows, dtype=BBOX_DTYPE), small, hidden

    def label_times_us(self) -> np.ndarray:
        """The times of the ground truth: every ``gt_period_us`` from 0 to the end."""
        return np.arange(int(round(self.duration_s * 1e6)) // self.gt_period_us + 1, dtype=np.int64) * self.gt_period_us

    def ground_truth(self) -> np.ndarray:
        """Boxes at every ``label_times_us()`` (BBOX_DTYPE, sorted by ts then track)."""
        return np.concatenate([self.boxes_at(ts / 1e6) for ts in self.label_times_us()])

    def ground_truth_counts(self) -> dict:
        """Object-times labelled (``boxes``) and dropped (``too_small``, ``hidden``) over the ground truth."""
        labels = [self._labels_at(ts / 1e6) for ts in self.label_times_us()]
        return dict(boxes=sum(len(b) for b, _, _ in labels), too_small=sum(s for _, s, _ in labels),
                    hidden=sum(h for _, _, h in labels))

    def save_ground_truth(self, stem: str) -> list[str]:
        path = f"{stem}_bbox.npy"
        np.save(path, self.ground_truth())
        return [path]


def _visible_fraction(layers, owner, i, full, clipped, textures):
    """Share of object ``i``'s covered area that is inside the image and not behind nearer layers."""
    mine = np.flatnonzero(owner == i)
    alone = layers[mine].copy()
    alone[:, R.LO] = alone[:, R.HI] = 1.0
    ox, oy = np.floor(full[0]), np.floor(full[2])
    canvas = np.zeros((int(np.ceil(full[3] - oy)), int(np.ceil(full[1] - ox))), np.float32)
    R.render_layers(canvas, alone, textures, ox, oy)
    area = float(canvas.sum())
    front = layers[mine[-1] + 1:].copy()
    front[:, R.LO] = front[:, R.HI] = 0.0
    ox, oy = np.floor(clipped[0]), np.floor(clipped[2])
    canvas = np.zeros((int(np.ceil(clipped[3] - oy)), int(np.ceil(clipped[1] - ox))), np.float32)
    R.render_layers(canvas, np.concatenate([alone, front]), textures, ox, oy)
    return float(canvas.sum()) / area if area > 0 else 0.0


def _skeleton(phase):
    """Capsule ends (n, 8, 4) of the limbs of walkers at ``phase``: far leg (thigh, shin), far arm
    (upper, fore), then the same on the near side, whose phase is half a step ahead."""
    ends = np.empty((len(phase), 8, 4))
    for i, walker in enumerate(phase.tolist()):
        for side, ph in ((0, walker + math.pi), (4, walker)):
            thigh = 0.45 * math.sin(ph)
            shin = thigh - 0.7 * max(0.0, math.cos(ph))
            kx, ky = 9.0 * math.sin(thigh), -18.0 + 9.0 * math.cos(thigh)
            arm = -0.5 * math.sin(ph)
            ex, ey = 7.0 * math.sin(arm), -28.5 + 7.0 * math.cos(arm)
            ends[i, side:side + 4] = ((0.0, -18.0, kx, ky), (kx, ky, kx + 9.0 * math.sin(shin), ky + 9.0 * math.cos(shin)),
                                      (0.0, -28.5, ex, ey), (ex, ey, ex + 6.0 * math.sin(arm + 0.5), ey + 6.0 * math.cos(arm + 0.5)))
    return ends


def _object_rows(rng, cls, group):
    """Layer rows (see ``_table``) of one car or pedestrian, in its own units."""
    tex_u, tex_v = rng.uniform(0, 256, 2)
    if cls == CAR:
        base = rng.uniform(0.12, 0.85)
        return [(kind, shape, *((0.8 * base, min(1.0, 1.2 * base)) if fill == "body" else (fill, fill)),
                 0.6, tex_u, tex_v, 0, group, -1) for kind, shape, fill in CAR_PARTS]
    clothes = rng.uniform(0.08, 0.7)
    fills = {"far": (0.7 * clothes, 0.7 * clothes), "near": (clothes, clothes),
             "clothes": (0.7 * clothes, min(1.0, 1.3 * clothes)), "skin": (0.55, 0.55)}
    rows = []
    for kind, shape, fill in PEDESTRIAN_PARTS:
        limb = shape if isinstance(shape, int) else -1
        if limb >= 0:
            shape = (0.0, 0.0, 0.0, 0.0, LIMB_RADIUS[limb % 4])
        rows.append((kind, shape, *fills[fill], 1.5, tex_u, tex_v, 0, group, limb))
    return rows


def _table(rows):
    """(layer table with identity maps, group, limb) from rows
    (kind, shape, lo, hi, tex_scale, tex_u, tex_v, texture, group, limb)."""
    col = list(zip(*rows))
    return local_table(*col[:8]), np.array(col[8], dtype=np.int64), np.array(col[9], dtype=np.int64)


def make_scene(width: int, height: int, seed: int, **params) -> DetectionScene:
    """The detection scene at the given geometry; ``params``: any of ``DEFAULTS``' keys."""
    p = scene_params("detection", width, height, params, DEFAULTS, min_side=16, positive=("duration_s", "gt_period_us"))
    W, H = float(width), float(height)
    L = H / 240.0  # sizes and speeds are given for a 240-row image
    rng = np.random.default_rng(seed)
    textures = np.stack([periodic_texture(rng, 256, (4.0, 64.0)), periodic_texture(rng, 256, (6.0, 48.0), True)])
    horizon = H * rng.uniform(0.36, 0.44)
    s = p["ego_speed"]
    ego = np.array([W * rng.uniform(0.4, 0.6), horizon, s * rng.uniform(0.05, 0.15),
                    s * rng.choice([-1, 1]) * rng.uniform(4.0, 16.0) * L, s * rng.uniform(0.2, 0.8) * L, rng.uniform(1.0, 3.0)])
    far = 20.0 * max(W, H)
    tu, tv = rng.uniform(0, 256, 2)
    rows = [(R.PLANE, (0.0,) * 5, 0.8, 0.8, 0.0, 0.0, 0.0, 0, 0, -1),  # sky
            (B, (0.0, horizon - 0.09 * H, far, 0.09 * H, 0.0), 0.12, 0.55, 0.7 / L, tu, tv, 1, 0, -1),  # buildings, trees
            (B, (0.0, horizon + far, far, far, 0.0), 0.18, 0.5, 0.6 / L, tv, tu, 0, 0, -1)]  # ground
    classes = [CAR] * p["n_cars"] + [PEDESTRIAN] * p["n_pedestrians"]
    objects = []
    for cls in classes:
        ground = horizon + H * rng.uniform(0.18, 0.55)
        scale = L * (ground - horizon) / (0.3 * H)
        speed = (rng.uniform(30.0, 90.0) if cls == CAR else rng.uniform(12.0, 28.0)) * scale
        objects.append((cls, W * rng.uniform(0.1, 0.9), ground, speed, scale, rng.choice([-1.0, 1.0]),
                        rng.uniform(0, 2 * np.pi), speed / (22.0 * scale)))
    objects = np.array(sorted(objects, key=lambda o: o[2]), dtype=np.float64).reshape(-1, 8)
    for i, o in enumerate(objects):
        rows += _object_rows(rng, int(o[0]), 1 + i)
    poles = len(objects) + 1
    for _ in range(p["n_poles"]):
        x = W * rng.uniform(0.1, 0.9)
        shade = rng.uniform(0.06, 0.3)
        tu, tv = rng.uniform(0, 256, 2)
        rows.append((B, (x, 0.15 * H, 3.5 * L, 1.2 * H, 1.0), shade, 1.5 * shade, 1.0 / L, tu, tv, 0, poles, -1))
        rows.append((B, (x, 0.2 * H, 10.0 * L, 7.0 * L, 1.5 * L), 0.92, 0.92, 0.0, 0.0, 0.0, 0, poles, -1))
    local, group, limb = _table(rows)
    return DetectionScene(int(width), int(height), float(p["duration_s"]), int(p["gt_period_us"]), float(p["min_visible"]),
                          float(p["min_box_side"]), float(p["min_box_diag"]), textures, ego, objects, local, group, limb)
