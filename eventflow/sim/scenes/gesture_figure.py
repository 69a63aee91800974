"""The gesture scene's subject: an articulated upper body facing the camera, and the room.

The figure is a joint tree drawn by ``eventflow.kernels.raster``: pelvis (below the image),
neck, head, and per arm shoulder, elbow, wrist and hand tip. The subject faces the camera, so
the subject's RIGHT arm is on the image's LEFT. Arm angles are pose channels in the torso's
frame, mirrored between the arms: ``shoulder`` 0 hangs the upper arm down, positive raises it
outward (away from the body); ``elbow`` and ``wrist`` turn the next bone the same way relative
to the previous one; ``*_len`` channels scale a bone's visible length (1 = full, smaller =
pointing toward the camera). A faint distractor (someone walking far behind) may drift across
the background.

>>> import numpy as np
>>> subject = draw_subject(np.random.default_rng(0), 128, 128)
>>> tables = figure_tables(subject)
>>> tables.joint_index.shape[0] == len(JOINT_NAMES)
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eventflow.kernels.raster import CAPSULE, ELLIPSE

# pose channels
DX, DY, LEAN, HEAD = 0, 1, 2, 3
ARM_CHANNELS = ("shoulder", "elbow", "wrist", "upper_len", "fore_len", "hand_len")
RIGHT, LEFT = 4, 10  # first channel of each arm
DIST_X, DIST_Y = 16, 17
N_CHANNELS = 18
SHOULDER, ELBOW, WRIST, UPPER_LEN, FORE_LEN, HAND_LEN = range(6)  # offsets within an arm

JOINT_NAMES = ("pelvis", "neck", "head", "r_shoulder", "r_elbow", "r_wrist", "r_hand",
               "l_shoulder", "l_elbow", "l_wrist", "l_hand", "distractor")
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}


@dataclass(frozen=True)
class Subject:
    """One performer in one room, in pixels of a ``width`` x ``height`` image."""

    width: int
    height: int
    centre_x: float        # the body's vertical axis
    neck_y: float
    torso_len: float       # pelvis to neck (the pelvis is below the image)
    neck_len: float
    head_rx: float
    head_ry: float
    shoulder_half: float
    upper_len: float
    fore_len: float
    hand_len: float
    upper_r: float
    fore_r: float
    hand_r: float
    waist_half: float
    shirt: float           # clothing intensity (before lighting)
    skin: float
    hair: float
    long_sleeves: bool
    sleeve_tone: float     # sleeves' intensity relative to the shirt
    shirt_texture: float   # relative amplitude of the clothes pattern
    shirt_period: float    # its period, pixels
    shade: float           # darkening toward a limb's edges
    background: float      # mean background intensity
    clutter: int           # number of static background objects
    light_level: float
    light_gradient: float  # relative intensity change across the image
    light_angle: float
    flicker: float         # relative amplitude of a slow lighting flicker
    flicker_hz: float
    flicker_phase: float
    distractor: bool
    distractor_value: float
    distractor_y: float


def draw_subject(rng: np.random.Generator, width: int, height: int, **fixed) -> Subject:
    """A random subject (body, clothes, room, lighting) fitting the image; ``fixed`` overrides
    the draws: ``scale`` (body size, 1 = typical), ``offset_x``/``offset_y`` (fractions of the
    image), ``contrast`` (|shirt - background|), ``light_level``, ``light_gradient``,
    ``flicker``, ``clutter``, ``distractor``."""
    u = rng.uniform
    h = float(height)
    scale = fixed.get("scale", u(0.85, 1.08)) * h
    prop = u(0.92, 1.08, 6)  # proportions: each bone varies on its own
    background = u(0.15, 0.7)
    contrast = fixed.get("contrast", u(0.2, 0.45))
    brighter = rng.random() < 0.5  # drawn always, so that fixing one variation leaves the other draws
    lighter_fits, darker_fits = background + contrast <= 0.9, background - contrast >= 0.06
    shirt = background + contrast if (brighter and lighter_fits) or not darker_fits else background - contrast
    shirt = float(np.clip(shirt, 0.06, 0.9))
    return Subject(
        width=width, height=height,
        centre_x=width / 2 + fixed.get("offset_x", u(-0.08, 0.08)) * width,
        neck_y=h * 0.4 + fixed.get("offset_y", u(-0.05, 0.05)) * h,
        torso_len=0.75 * scale * prop[0], neck_len=0.05 * scale, head_rx=0.085 * scale * prop[1],
        head_ry=0.11 * scale * prop[1], shoulder_half=0.17 * scale * prop[2],
        upper_len=0.2 * scale * prop[3], fore_len=0.19 * scale * prop[4], hand_len=0.075 * scale * prop[5],
        upper_r=0.05 * scale, fore_r=0.04 * scale, hand_r=0.035 * scale, waist_half=0.2 * scale * prop[2],
        shirt=shirt, skin=float(u(0.35, 0.85)), hair=float(u(0.05, 0.4)), long_sleeves=bool(rng.random() < 0.5),
        sleeve_tone=float(rng.choice([u(0.7, 0.88), u(1.12, 1.3)])),
        shirt_texture=float(u(0.15, 0.4)), shirt_period=float(u(3.0, 7.0)) * h / 128, shade=float(u(0.15, 0.4)),
        background=float(background), clutter=int(fixed.get("clutter", rng.integers(2, 9))),
        light_level=float(fixed.get("light_level", u(0.55, 1.0))),
        light_gradient=float(fixed.get("light_gradient", u(0.0, 0.35))), light_angle=float(u(0, 2 * math.pi)),
        flicker=float(fixed.get("flicker", u(0.0, 0.01))), flicker_hz=float(u(0.2, 1.0)),
        flicker_phase=float(u(0, 2 * math.pi)),
        distractor=bool(fixed.get("distractor", rng.random() < 0.6)),
        distractor_value=float(background * u(0.85, 1.15)), distractor_y=float(u(0.1, 0.5) * h),
    )


@dataclass(frozen=True)
class FigureTables:
    """The joint tree and shapes in ``eventflow.kernels.raster``'s layout."""

    joint_index: np.ndarray  # int64[J, 6]
    joint_value: np.ndarray  # float64[J, 5]
    shapes: np.ndarray       # float64[S, 10]


def figure_tables(s: Subject) -> FigureTables:
    """The skeleton and the shapes drawn on it, back to front."""
    n = len(JOINT_NAMES)
    index = np.full((n, 6), -1, np.int64)
    value = np.zeros((n, 5))
    value[:, 1] = 1.0

    def joint(name, parent, ref, offset, length=0.0, angle_ch=-1, length_ch=-1, sign=1.0, base=(0.0, 0.0),
              dxy=(-1, -1)):
        j = JOINT[name]
        if JOINT.get(parent, -1) >= j or JOINT.get(ref, -1) >= j:   # the kernel poses joints in row order
            raise ValueError(f"figure joint {name}: its parent and reference joints must come before it")
        index[j] = (JOINT.get(parent, -1), JOINT.get(ref, -1), angle_ch, length_ch, *dxy)
        value[j] = (offset, sign, length, *base)

    pelvis_y = s.neck_y + s.torso_len
    joint("pelvis", None, None, -math.pi / 2, angle_ch=LEAN, base=(s.centre_x, pelvis_y), dxy=(DX, DY))
    joint("neck", "pelvis", "pelvis", 0.0, s.torso_len)
    joint("head", "neck", "neck", 0.0, s.neck_len + s.head_ry, angle_ch=HEAD)
    for side, first, sign in (("r", RIGHT, 1.0), ("l", LEFT, -1.0)):
        joint(f"{side}_shoulder", "neck", "neck", -sign * (math.pi / 2 + 0.12), s.shoulder_half)
        joint(f"{side}_elbow", f"{side}_shoulder", "pelvis", math.pi, s.upper_len, first + SHOULDER, first + UPPER_LEN,
              sign)
        joint(f"{side}_wrist", f"{side}_elbow", f"{side}_elbow", 0.0, s.fore_len, first + ELBOW, first + FORE_LEN, sign)
        joint(f"{side}_hand", f"{side}_wrist", f"{side}_wrist", 0.0, s.hand_len, first + WRIST, first + HAND_LEN, sign)
    joint("distractor", None, None, 0.3, base=(s.width / 2, s.distractor_y), dxy=(DIST_X, DIST_Y))

    period, tex, skin_tex = s.shirt_period, s.shirt_texture, 0.05
    sleeve = min(s.shirt * s.sleeve_tone, 0.92)  # arms stand out from the body (lit from another angle)
    fore = (sleeve, tex) if s.long_sleeves else (s.skin, skin_tex)
    rows = []

    def shape(kind, a, b, p0, p1, p2, colour, amp, per, shade):
        rows.append((kind, JOINT[a], JOINT[b], p0, p1, p2, colour, amp, per, shade))

    if s.distractor:
        h = s.height
        shape(ELLIPSE, "distractor", "distractor", 0.0, 0.16 * h, 0.06 * h, s.distractor_value, 0.1, 6.0, 0.1)
    shape(ELLIPSE, "pelvis", "neck", 0.5, 0.53 * s.torso_len, s.waist_half, s.shirt, tex, period, s.shade)
    shape(CAPSULE, "r_shoulder", "l_shoulder", 1.25 * s.upper_r, 0, 0, s.shirt, tex, period, s.shade * 0.5)
    shape(CAPSULE, "neck", "head", 0.45 * s.head_rx, 0, 0, s.skin * 0.9, skin_tex, 5.0, s.shade)
    shape(ELLIPSE, "neck", "head", 1.08, 1.02 * s.head_ry, 1.05 * s.head_rx, s.hair, 0.15, 3.0, 0.2)
    shape(ELLIPSE, "head", "head", 0.0, 0.9 * s.head_ry, s.head_rx, s.skin, skin_tex, 5.0, s.shade)
    for side in ("r", "l"):
        shape(CAPSULE, f"{side}_shoulder", f"{side}_elbow", s.upper_r, 0, 0, sleeve, tex, period, s.shade)
        shape(CAPSULE, f"{side}_elbow", f"{side}_wrist", s.fore_r, 0, 0, fore[0], fore[1], period, s.shade)
        shape(ELLIPSE, f"{side}_wrist", f"{side}_hand", 0.5, -0.6, s.hand_r, s.skin, skin_tex, 4.0, s.shade * 0.5)
    return FigureTables(index, value, np.array(rows, np.float64))


def room_images(s: Subject, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(background, light map), float32 (H, W): a static textured room with clutter of
    rectangles and discs, lit by a smooth gradient (the light map, maximum 1); the overall
    level and its flicker are applied per frame as the rasteriser's gain."""
    h, w = s.height, s.width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    room = np.full((h, w), s.background)
    for _ in range(3):  # low-frequency wall texture
        kx, ky = rng.uniform(-0.15, 0.15, 2)
        room += rng.uniform(0.01, 0.05) * s.background * np.sin(kx * xs + ky * ys + rng.uniform(0, 2 * math.pi))
    for _ in range(s.clutter):
        level = float(np.clip(s.background * rng.uniform(0.5, 1.6), 0.03, 0.95))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.04, 0.25) * w, rng.uniform(0.04, 0.35) * h
        inside = (np.abs(xs - cx) <= rx) & (np.abs(ys - cy) <= ry) if rng.random() < 0.7 \
            else ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
        room = np.where(inside, level, room)
    ramp = np.cos(s.light_angle) * (xs / max(w - 1, 1) - 0.5) + np.sin(s.light_angle) * (ys / max(h - 1, 1) - 0.5)
    light = 1.0 + s.light_gradient * ramp
    light /= light.max()
    background = np.clip(room * light, 0.02, 1.0)  # the light level and flicker come as the gain
    return background.astype(np.float32), light.astype(np.float32)
