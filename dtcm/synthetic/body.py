"""The articulated figure: proportions, joint-angle poses and forward kinematics (20 joints).

A pose is a dict of joint angles in degrees (``NEUTRAL`` lists them); :func:`solve` turns one pose per
frame into world joint positions (metres, y up, the figure facing +z at yaw 0). Arms can instead reach
for weighted targets by two-bone IK. :func:`figure_prims` is v1's look: capsule limbs, a sphere head.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NEUTRAL", "SIDES", "Body", "figure_prims", "pose", "sample_body", "solve"]


# ------------------------------------------------------------------------------------------ geometry
def _rx(deg):  # pitch: +y tilts towards +z
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(deg):  # yaw: +z turns towards +x
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(deg):  # side bend: +y tilts towards -x
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _dir(flex, abd, side):
    """Limb direction in its parent frame: flex swings it forward from hanging, abd out sideways."""
    f, a = math.radians(flex), math.radians(abd)
    return np.array([side * math.cos(f) * math.sin(a), -math.cos(f) * math.cos(a), math.sin(f)])


def _unit(v):
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else v


def _ease(x):
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _window(t, t0, t1):
    return _ease((t - t0) / max(t1 - t0, 1e-6))


def _ik(shoulder, target, a, b, pole):
    """Two-bone IK: the elbow and the (reach-clamped) grip for bones of lengths a, b."""
    d_vec = target - shoulder
    d = float(np.clip(np.linalg.norm(d_vec), abs(a - b) + 1e-4, a + b - 1e-4))
    u = _unit(d_vec)
    w = _unit(pole - np.dot(pole, u) * u)
    cos_al = (a * a + d * d - b * b) / (2 * a * d)
    elbow = shoulder + a * (cos_al * u + math.sqrt(max(0.0, 1 - cos_al**2)) * w)
    return elbow, shoulder + u * d


# ---------------------------------------------------------------------------------------------- body
@dataclass(frozen=True)
class Body:
    """One figure's proportions (metres) and looks (RGB 0..255)."""

    height: float
    ankle: float  # sole -> ankle joint
    shin: float
    thigh: float
    hip_w: float  # half the hip width
    torso_lo: float  # pelvis -> spine (chest centre)
    torso_hi: float  # spine -> neck
    neck: float  # neck -> head centre
    head_r: float
    shoulder_w: float  # half the shoulder width
    upper: float  # upper arm
    fore: float  # forearm
    hand: float
    foot: float
    girth: float  # limb-radius multiplier (build)
    colours: dict = field(default_factory=dict, compare=False)


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


SKIN = ((240, 205, 175), (225, 180, 145), (195, 140, 100), (150, 100, 65), (100, 65, 45))
HAIR = ((25, 20, 15), (70, 45, 25), (165, 125, 70), (130, 130, 130), (15, 15, 15))


def _sample_body(rng) -> Body:
    h = rng.uniform(1.55, 1.95)
    j = lambda: rng.uniform(0.94, 1.06)  # noqa: E731  per-bone jitter
    u = rng.uniform
    shirt = _hsv(u(), u(0.25, 0.9), u(0.4, 0.95))
    pants = [
        _hsv(u(0.57, 0.63), u(0.35, 0.6), u(0.3, 0.55)),  # jeans
        _hsv(0, 0, u(0.1, 0.25)),  # black
        _hsv(u(0.08, 0.13), u(0.25, 0.45), u(0.5, 0.7)),  # khaki
        _hsv(u(), u(0.0, 0.6), u(0.25, 0.7)),  # anything
    ][rng.integers(4)]
    skin = np.array(SKIN[rng.integers(len(SKIN))], float) * u(0.92, 1.05)
    colours = {
        "shirt": shirt,
        "sleeve": shirt if u() < 0.6 else skin,
        "pants": pants,
        "shin": pants if u() < 0.8 else skin,
        "skin": skin,
        "hair": np.array(HAIR[rng.integers(len(HAIR))], float),
        "shoes": _hsv(u(), u(0, 0.3), u(0.08, 0.3)) if u() < 0.8 else _hsv(0, 0, 0.9),
    }
    return Body(
        height=h,
        ankle=0.045 * h,
        shin=0.245 * h * j(),
        thigh=0.245 * h * j(),
        hip_w=0.055 * h * j(),
        torso_lo=0.14 * h * j(),
        torso_hi=0.155 * h * j(),
        neck=0.085 * h,
        head_r=0.062 * h * j(),
        shoulder_w=0.125 * h * j(),
        upper=0.17 * h * j(),
        fore=0.145 * h * j(),
        hand=0.055 * h,
        foot=0.13 * h,
        girth=u(0.85, 1.2),
        colours=colours,
    )


NEUTRAL = {
    "yaw": 0.0,  # facing, degrees about the vertical (0: towards the camera's default side)
    "lean": 3.0,  # chest pitch forward about the pelvis
    "twist": 0.0,  # chest yaw relative to the pelvis
    "side": 0.0,  # chest side bend
    "nod": 0.0,  # head pitch, + = chin down
    "turn": 0.0,  # head yaw
    "lift": 0.0,  # metres added to the pelvis height (jumps, running bounce)
    "ground": None,  # None: feet on the ground; a number: pelvis height instead
}
for _n in ("r", "l"):
    NEUTRAL.update({f"{_n}_hip": 0.0, f"{_n}_hip_abd": 3.0, f"{_n}_knee": 2.0, f"{_n}_foot": 90.0})
    NEUTRAL.update({f"{_n}_sh": 3.0, f"{_n}_sh_abd": 7.0, f"{_n}_el": 12.0, f"{_n}_el_abd": 0.0})
    NEUTRAL.update({f"{_n}_target": (), f"{_n}_pole": None})
SIDES = (("r", 1.0), ("l", -1.0))


def _pose(**kw) -> dict:
    p = dict(NEUTRAL)
    p.update(kw)
    return p


def _legs(pose, b: Body):
    """Pelvis-relative leg joints (world axes, yaw applied) and the pelvis height that grounds them."""
    ry = _ry(pose["yaw"])
    j = {"pelvis": np.zeros(3)}
    sole = []
    for n, s in SIDES:
        hip = ry @ np.array([s * b.hip_w, -0.02 * b.height, 0.0])
        hf, ha = pose[f"{n}_hip"], pose[f"{n}_hip_abd"]
        knee = hip + ry @ _dir(hf, ha, s) * b.thigh
        ankle = knee + ry @ _dir(hf - pose[f"{n}_knee"], ha, s) * b.shin
        toe = ankle + ry @ _dir(pose[f"{n}_foot"], 0.5 * ha, s) * b.foot
        j.update({f"{n}_hip": hip, f"{n}_knee": knee, f"{n}_ankle": ankle, f"{n}_toe": toe})
        sole += [ankle[1] - b.ankle, toe[1] - 0.022 * b.height]
    height = -min(sole) if pose["ground"] is None else pose["ground"]
    return j, height + pose["lift"]


def _solve(poses, b: Body, mode: str, speed: float, t):
    """World joints for every frame. mode: 'fixed' pelvis, 'anchor' the feet, or 'move' forward at speed."""
    legs = [_legs(p, b) for p in poses]
    out = []
    for i, (p, (lj, y)) in enumerate(zip(poses, legs, strict=True)):
        if mode == "anchor":  # the mid-ankle point stays at the world origin
            mid = 0.5 * (lj["r_ankle"] + lj["l_ankle"])
            root = np.array([-mid[0], y, -mid[2]])
        elif mode == "move":
            root = _ry(p["yaw"]) @ np.array([0.0, 0.0, speed * t[i]]) + np.array([0.0, y, 0.0])
        else:
            root = np.array([0.0, y, 0.0])
        j = {k: v + root for k, v in lj.items()}
        _upper(p, b, j, root)
        out.append(j)
    return out


def _upper(p, b: Body, j: dict, root):
    """Torso, head and arms (FK from angles, or IK towards weighted targets) into ``j``."""
    ry = _ry(p["yaw"])
    chest = ry @ _rx(p["lean"]) @ _ry(p["twist"]) @ _rz(p["side"])
    j["spine"] = root + chest @ np.array([0.0, b.torso_lo, 0.0])
    j["neck"] = j["spine"] + chest @ np.array([0.0, b.torso_hi, 0.0])
    head_rot = chest @ _rx(p["nod"]) @ _ry(p["turn"])
    j["head"] = j["neck"] + head_rot @ np.array([0.0, b.neck, 0.012 * b.height])
    j["face"] = head_rot @ np.array([0.0, 0.0, 1.0])  # a direction, not a point
    frames = {
        "ground": (np.array([root[0], 0.0, root[2]]), ry),
        "world": (np.zeros(3), np.eye(3)),
        "head": (j["head"], ry),
        "chest": (j["neck"], chest),
    }
    for n, s in SIDES:
        sh = j["neck"] + chest @ np.array([s * b.shoulder_w, -0.03 * b.height, 0.0])
        up_dir = chest @ _dir(p[f"{n}_sh"], p[f"{n}_sh_abd"], s)
        fore_dir = chest @ _dir(p[f"{n}_sh"] + p[f"{n}_el"], p[f"{n}_sh_abd"] + p[f"{n}_el_abd"], s)
        elbow = sh + up_dir * b.upper
        grip = elbow + fore_dir * (b.fore + 0.5 * b.hand)
        targets = p[f"{n}_target"]
        if targets:
            w_sum = sum(w for _, _, w in targets)
            goal = (1.0 - w_sum) * grip
            for frame, xyz, w in targets:
                origin, rot = frames[frame]
                goal = goal + w * (origin + rot @ np.asarray(xyz, float))
            pole = p[f"{n}_pole"]
            pole = chest @ np.array([s * 0.6, -0.6, -0.5]) if pole is None else ry @ np.asarray(pole, float)
            elbow, grip = _ik(sh, goal, b.upper, b.fore + 0.5 * b.hand, pole)
            fore_dir = _unit(grip - elbow)
        j[f"{n}_shoulder"], j[f"{n}_elbow"] = sh, elbow
        j[f"{n}_wrist"] = elbow + fore_dir * b.fore
        j[f"{n}_grip"] = elbow + fore_dir * (b.fore + 0.5 * b.hand)
        j[f"{n}_hand"] = elbow + fore_dir * (b.fore + b.hand)


def _figure_prims(j: dict, b: Body) -> list:
    """The figure as capsules and spheres: (kind, points, radius in m, RGB colour)."""
    c, h, g = b.colours, b.height, b.girth
    up = np.array([0.0, 1.0, 0.0])
    prims = [
        ("cap", (j["r_hip"], j["l_hip"]), 0.062 * h * g, c["pants"]),
        ("cap", (j["pelvis"] + 0.04 * h * up, j["spine"]), 0.082 * h * g, c["shirt"]),
        ("cap", (j["spine"], j["neck"] - 0.035 * h * up), 0.088 * h * g, c["shirt"]),
        ("cap", (j["r_shoulder"], j["l_shoulder"]), 0.045 * h * g, c["shirt"]),
        ("cap", (j["neck"] - 0.02 * h * up, j["head"]), 0.028 * h * g, c["skin"]),
        ("sph", (j["head"],), b.head_r, c["skin"]),
        ("sph", (j["head"] - j["face"] * 0.3 * b.head_r + up * 0.22 * b.head_r,), 0.93 * b.head_r, c["hair"]),
    ]
    for n, _ in SIDES:
        prims += [
            ("cap", (j[f"{n}_shoulder"], j[f"{n}_elbow"]), 0.034 * h * g, c["shirt"]),
            ("cap", (j[f"{n}_elbow"], j[f"{n}_wrist"]), 0.028 * h * g, c["sleeve"]),
            ("cap", (j[f"{n}_wrist"], j[f"{n}_hand"]), 0.024 * h, c["skin"]),
            ("cap", (j[f"{n}_hip"], j[f"{n}_knee"]), 0.05 * h * g, c["pants"]),
            ("cap", (j[f"{n}_knee"], j[f"{n}_ankle"]), 0.037 * h * g, c["shin"]),
            ("cap", (j[f"{n}_ankle"], j[f"{n}_toe"]), 0.026 * h, c["shoes"]),
        ]
    return prims


def _cuboid(centre, rot, half, colour) -> tuple:
    """A box prop: centre, rotation (columns = box axes in world) and half sizes."""
    return ("box", (np.asarray(centre, float), rot, np.asarray(half, float)), 0.0, np.asarray(colour, float))


def _prop_colour(rng):
    return _hsv(rng.uniform(), rng.uniform(0.3, 0.9), rng.uniform(0.45, 0.95))


# ------------------------------------------------------------------------------------------ builders
sample_body = _sample_body
pose = _pose
solve = _solve
figure_prims = _figure_prims
