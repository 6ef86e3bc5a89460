"""DarkActions-synth: articulated 3D figures doing ARID's 11 actions, filmed in the dark (SPEC B3).

Each clip is one procedural figure (20 joints: pelvis, spine, neck, head, shoulders, elbows, wrists,
hands, hips, knees, ankles, toes; capsule limbs, a sphere head with hair) posed by forward kinematics
from per-action joint-angle trajectories (arms reaching for props use two-bone IK), with the props an
action needs (cup, bottle, box, chair). It is drawn with cv2 at 2x and box-filtered down: capsules as
thick anti-aliased lines with a shading ramp, boxes as shaded faces, all in painter's order by depth,
over a slowly panning crop of real footage (``vtest.avi``). Viewpoint, distance, speed, phase, body
proportions, clothing and lighting are random. :func:`darken` then models a low-light camera:
sRGB -> linear, exposure x0.01-0.08, Poisson shot noise, Gaussian read noise, a colour cast,
linear -> sRGB, 8 bit. Clips are H.264 mp4 files with ARID-format split lists, so they are read by
:class:`dtcm.data.arid.ARIDDataset` exactly like ARID.

Everything is a function of ``(seed, class, index)``: the same seed gives the same frames whatever the
number of worker processes.

Example:
    >>> frames, meta = render_clip("Wave", np.random.default_rng(0))
    >>> frames.shape, darken(frames, np.random.default_rng(1)).mean() < 20
    ((40, 128, 170, 3), True)
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dtcm.config import ARID_CLASSES
from dtcm.darkness import SC, darkness_score, segment_indices

__all__ = [
    "ACTIONS",
    "FPS",
    "NUM_FRAMES",
    "SIZE",
    "add_cli_arguments",
    "cli_main",
    "contact_sheet",
    "darken",
    "footage_dir",
    "make_synthetic",
    "render_clip",
    "split_indices",
]

ACTIONS = ARID_CLASSES  # class id = index here (0-based, ARID's order)
SIZE = (170, 128)  # (W, H): 4:3, short side 128 as the loaders resize to
NUM_FRAMES = 40  # 2.7 s at 15 fps: any 16-frame window holds >= 1 s of the action
FPS = 15.0
SS = 2  # drawing supersampling factor
TARGET_DV = -0.88  # ARID's mean darkness (SPEC A8); dark clips are exposed to land near it
FOOTAGE_ENV = "DTCM_REAL_FOOTAGE"
FOOTAGE_SIZE = (256, 192)  # (W, H) the real footage is cached at
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v")


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


# ------------------------------------------------------------------------------------------- actions
@dataclass
class Anim:
    """An action's output: one pose per frame, how the pelvis travels, and its props per frame."""

    poses: list
    mode: str = "fixed"  # 'fixed', 'anchor' (feet stay) or 'move' (forward at speed m/s)
    speed: float = 0.0
    track: tuple = (0.0, 0.0)  # range of the camera's tracking factor (0: static, 1: follows)
    props: Callable | None = None  # props(i, joints) -> list of prims
    min_azimuth: float = 0.0  # views closer than this to head-on are skipped (a box would hide the figure)


def _walk_legs(theta, amp, hip0=5.0, knee_swing=55.0, knee0=6.0, foot_amp=15.0):
    out = {}
    for n, off in (("r", 0.0), ("l", math.pi)):
        th = theta + off
        out[f"{n}_hip"] = hip0 + amp * math.sin(th)
        out[f"{n}_knee"] = knee0 + knee_swing * max(0.0, math.cos(th + 0.35)) ** 1.5
        out[f"{n}_foot"] = 90.0 + foot_amp * math.sin(th)
    return out


def _act_walk(t, b, rng, speed):
    f, amp, ph = 0.95 * speed, rng.uniform(20, 27), rng.uniform(0, 2 * math.pi)
    poses = []
    for ti in t:
        th = 2 * math.pi * f * ti + ph
        arm = 0.7 * amp * math.sin(th)
        p = _pose(lean=3, twist=-6 * math.sin(th), nod=2, r_sh=-arm + 3, l_sh=arm + 3, **_walk_legs(th, amp))
        p["r_el"], p["l_el"] = 12 + 0.5 * max(0.0, p["r_sh"]), 12 + 0.5 * max(0.0, p["l_sh"])
        poses.append(p)
    v = 4 * (b.thigh + b.shin) * math.sin(math.radians(amp)) * f
    return Anim(poses, "move", v, (0.45, 0.85))


def _act_run(t, b, rng, speed):
    f, amp, ph = 1.45 * speed, rng.uniform(32, 40), rng.uniform(0, 2 * math.pi)
    lean = rng.uniform(8, 16)
    poses = []
    for ti in t:
        th = 2 * math.pi * f * ti + ph
        arm = 0.9 * amp * math.sin(th)
        legs = _walk_legs(th, amp, hip0=12, knee_swing=95, knee0=22, foot_amp=20)
        lift = 0.05 * b.height * math.sin(th) ** 2
        p = _pose(lean=lean, twist=-10 * math.sin(th), lift=lift, r_sh=-arm + 15, l_sh=arm + 15, **legs)
        p.update(r_el=85, l_el=85, r_sh_abd=14, l_sh_abd=14)
        poses.append(p)
    v = 4.4 * (b.thigh + b.shin) * math.sin(math.radians(amp)) * f
    return Anim(poses, "move", v, (0.75, 0.92))


def _act_push(t, b, rng, speed):
    f, amp, ph = 0.65 * speed, rng.uniform(14, 18), rng.uniform(0, 2 * math.pi)
    lean = rng.uniform(30, 42)
    h = b.height
    # where straight-ish arms reach from the leaning shoulders, in the ground frame
    pelvis_y = 0.97 * (b.ankle + b.shin + b.thigh + 0.02 * h)
    sh = np.array([0.0, pelvis_y, 0.0]) + _rx(lean) @ np.array([0.0, b.torso_lo + b.torso_hi - 0.03 * h, 0.0])
    reach, beta = 0.9 * (b.upper + b.fore + 0.5 * b.hand), math.radians(rng.uniform(55, 75))
    hand = sh + reach * np.array([0.0, -math.cos(beta), math.sin(beta)])
    bh, bw, bd = hand[1] / rng.uniform(0.82, 0.95), rng.uniform(0.35, 0.5) * h, rng.uniform(0.3, 0.45) * h
    colour = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.8))
    if rng.uniform() < 0.4:
        colour = _prop_colour(rng)
    poses = []
    for ti in t:
        th = 2 * math.pi * f * ti + ph
        p = _pose(lean=lean, nod=-lean * 0.6, **_walk_legs(th, amp, hip0=-8, knee_swing=40, knee0=10))
        for n, s in SIDES:
            p[f"{n}_target"] = (("ground", (s * 0.32 * bw, hand[1], hand[2]), 1.0),)
            p[f"{n}_pole"] = (s * 0.5, -1.0, 0.0)
        poses.append(p)
    v = 4 * (b.thigh + b.shin) * math.sin(math.radians(amp)) * f

    def props(i, j):
        ry = _ry(poses[i]["yaw"])
        centre = np.array([j["pelvis"][0], 0, j["pelvis"][2]]) + ry @ np.array([0, bh / 2, hand[2] + bd / 2])
        return [_cuboid(centre, ry, (bw / 2, bh / 2, bd / 2), colour)]

    return Anim(poses, "move", v, (0.35, 0.75), props, min_azimuth=35.0)


def _act_jump(t, b, rng, speed):
    f, ph = 0.85 * speed, rng.uniform()
    height = rng.uniform(0.22, 0.35) * b.height
    stand = _legs(_pose(), b)[1]
    poses = []
    for ti in t:
        u = (f * ti + ph) % 1.0
        crouch = 1 - _ease(u / 0.3) if u < 0.3 else (_ease((u - 0.7) / 0.3) if u >= 0.7 else 0.0)
        air = math.sin(math.pi * (u - 0.3) / 0.4) if 0.3 <= u < 0.7 else 0.0
        lean = 5 + 40 * crouch + 8 * air
        arm = float(np.interp(u, [0, 0.3, 0.5, 0.7, 1.0], [-45, 160, 165, 40, -45]))
        p = _pose(lean=lean, nod=-10 * crouch)
        for n, _ in SIDES:
            p.update({f"{n}_hip": 8 + 70 * crouch + 35 * air, f"{n}_knee": 5 + 95 * crouch + 60 * air})
            p.update({f"{n}_foot": 90 - 30 * air, f"{n}_sh": arm + lean, f"{n}_sh_abd": 12, f"{n}_el": 15})
        if air > 0:
            p.update(ground=stand + height * air, lift=0.0)
        poses.append(p)
    return Anim(poses, "fixed")


def _sit_pose(q, lean_end, arms):
    """q = 0 standing ... 1 seated on a chair behind."""
    bump = math.sin(math.pi * q)
    lean = lean_end * q + 38 * bump
    p = _pose(lean=lean, nod=10 * bump)
    for n, _ in SIDES:
        p.update({f"{n}_hip": 90 * q, f"{n}_knee": 90 * min(1.0, q + 0.25 * bump), f"{n}_foot": 90})
        p.update({f"{n}_sh": arms * bump + 25 * q + lean - 3 * q, f"{n}_el": 15 + 45 * q})
    return p


def _act_sit(t, b, rng, speed, reverse=False):
    d = t[-1]
    t0 = rng.uniform(-0.1, 0.15) * d
    t1 = t0 + rng.uniform(0.8, 1.0) * d / speed
    lean_end, arms = rng.uniform(0, 10), rng.uniform(10, 45)
    q = _window(t, t0, t1)
    poses = [_sit_pose(1 - qi if reverse else qi, lean_end, arms) for qi in q]
    # the chair: under the seated pelvis (feet anchored at the origin), facing the same way
    lj, y = _legs(_sit_pose(1.0, lean_end, arms), b)
    mid = 0.5 * (lj["r_ankle"] + lj["l_ankle"])
    h = b.height
    seat_y = y - 0.02 * h - 0.05 * h * b.girth
    pz = -mid[2]
    colour = _hsv(rng.uniform(0.04, 0.1), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7))
    if rng.uniform() < 0.4:
        colour = _prop_colour(rng)
    half_w, depth, th = 0.15 * h, 0.25 * h, 0.02 * h
    z_back, z_front = pz - 0.1 * h, pz - 0.1 * h + depth
    zc = 0.5 * (z_back + z_front)
    rot = np.eye(3)
    chair = [
        _cuboid((0, seat_y - th, zc), rot, (half_w, th, depth / 2), colour),
        _cuboid((0, seat_y + 0.16 * h, z_back - th), rot, (half_w, 0.15 * h, th), colour),
    ]
    for x in (-half_w + th, half_w - th):
        for z in (z_back + th, z_front - th):
            chair.append(("cap", (np.array([x, 0.0, z]), np.array([x, seat_y - th, z])), 0.012 * h, colour))
    return Anim(poses, "anchor", props=lambda i, j: chair)


def _act_stand(t, b, rng, speed):
    return _act_sit(t, b, rng, speed, reverse=True)


def _act_pick(t, b, rng, speed):
    d, h = t[-1], b.height
    t0 = rng.uniform(-0.05, 0.15) * d
    t_bottom = t0 + rng.uniform(0.75, 1.0) / speed
    t_grasp = t_bottom + rng.uniform(0.15, 0.3)
    t_end = t_grasp + rng.uniform(0.75, 1.0) / speed
    side = rng.uniform(0.045, 0.065) * h
    obj = np.array([rng.uniform(-0.03, 0.03) * h, side, rng.uniform(0.3, 0.36) * h])
    carry = np.array([0.0, rng.uniform(0.58, 0.68) * h, rng.uniform(0.22, 0.28) * h])
    colour = _prop_colour(rng)
    poses, centres = [], []
    for ti in t:
        down = float(_window(ti, t0, t_bottom))
        up = float(_window(ti, t_grasp, t_end))
        q = down * (1 - up)
        lean = 45 * q
        p = _pose(lean=lean + 3, nod=-15 * q)
        for n, _ in SIDES:
            p.update({f"{n}_hip": 95 * q, f"{n}_knee": 105 * q, f"{n}_foot": 90})
        held = ti >= t_grasp
        centre = obj + (carry - obj) * up if held else obj
        centres.append(centre)
        for n, s in SIDES:
            grip = centre + np.array([s * side, 0.0, 0.0])
            if held:  # carried: the ground frame follows the body, the object is in front of it
                p[f"{n}_target"] = (("world", grip, 1.0),)
            else:
                p[f"{n}_target"] = (("world", grip, down),)
            p[f"{n}_pole"] = (s * 0.7, -0.3, -0.6)
        poses.append(p)

    def props(i, j):
        if t[i] >= t_grasp:
            centre = 0.5 * (j["r_grip"] + j["l_grip"])
        else:
            centre = centres[i]
        return [_cuboid(centre, np.eye(3), (side, side, side), colour)]

    return Anim(poses, "anchor", props=props)


def _act_turn(t, b, rng, speed):
    sign = rng.choice([-1.0, 1.0])
    omega, f_step = rng.uniform(100, 150) * speed * sign, 1.4 * speed
    yaw0, ph = rng.uniform(0, 360), rng.uniform(0, 2 * math.pi)
    poses = []
    for ti in t:
        q = 2 * math.pi * f_step * ti + ph
        p = _pose(yaw=yaw0 + omega * ti, twist=8 * sign, turn=18 * sign)
        for n, off in (("r", 0.0), ("l", math.pi)):
            lift = max(0.0, math.sin(q + off))
            p.update({f"{n}_hip": 20 * lift, f"{n}_knee": 38 * lift, f"{n}_foot": 90 - 10 * lift})
            p.update({f"{n}_sh_abd": 12 + 4 * math.sin(q), f"{n}_el": 18})
        poses.append(p)
    return Anim(poses, "fixed")


def _act_wave(t, b, rng, speed):
    arms = [("r", "l")[rng.integers(2)]] if rng.uniform() < 0.8 else ["r", "l"]
    omega = 2 * math.pi * rng.uniform(1.4, 2.3) * speed
    amp, ph = rng.uniform(20, 35), rng.uniform(0, 2 * math.pi)
    overhead = rng.uniform() < 0.35  # whole arm swinging overhead instead of the forearm
    sh, abd, el = rng.uniform(5, 30), rng.uniform(75, 105), rng.uniform(0, 25)
    poses = []
    for ti in t:
        osc = amp * math.sin(omega * ti + ph)
        p = _pose(side=2.5 * math.sin(0.5 * omega * ti), nod=-4)
        for n in arms:
            if overhead:
                p.update({f"{n}_sh": sh * 0.5, f"{n}_sh_abd": 145 + osc, f"{n}_el": 5, f"{n}_el_abd": 10})
            else:
                p.update({f"{n}_sh": sh, f"{n}_sh_abd": abd, f"{n}_el": el, f"{n}_el_abd": 160 - abd + osc})
        poses.append(p)
    return Anim(poses, "fixed")


def _cup_prims(centre, axis, h, colour):
    half = 0.035 * h * axis
    return [("cap", (centre - half, centre + half), 0.03 * h, colour)]


def _act_drink(t, b, rng, speed):
    n, s = SIDES[rng.integers(2)]
    period, ph = rng.uniform(1.6, 2.2) / speed, rng.uniform()
    h = b.height
    rest = (s * 0.1 * h, 0.6 * h, 0.2 * h)
    mouth = (s * 0.025 * h, -0.03 * h, 0.11 * h)
    colour = _prop_colour(rng) if rng.uniform() < 0.6 else np.array([235.0, 235, 230])
    poses, tilts = [], []
    for ti in t:
        u = (ti / period + ph) % 1.0
        lift = float(np.interp(u, [0, 0.3, 0.65, 0.92, 1.0], [0, 1, 1, 0, 0]))
        lift = float(_ease(lift))
        sip = float(np.interp(u, [0, 0.3, 0.45, 0.6, 0.65, 1.0], [0, 0, 1, 1, 0, 0]))
        p = _pose(nod=-5 - 18 * sip, lean=3 - 4 * lift)
        p[f"{n}_target"] = (("ground", rest, 1 - lift), ("head", mouth, lift))
        p[f"{n}_pole"] = (s * 1.0, -0.8, -0.2)
        poses.append(p)
        tilts.append(15 + 25 * lift + 45 * sip)

    def props(i, j):
        axis = _ry(poses[i]["yaw"]) @ _rx(-tilts[i]) @ np.array([0.0, 1.0, 0.0])
        return _cup_prims(j[f"{n}_grip"], axis, h, colour)

    return Anim(poses, "fixed", props=props)


def _act_pour(t, b, rng, speed):
    (n, s), (m, _) = SIDES if rng.uniform() < 0.5 else SIDES[::-1]
    d, h = t[-1], b.height
    t0 = rng.uniform(-0.5, 0.5)
    t1 = rng.uniform(d - 0.5, d + 1.0)
    tilt_max, glug, ph = rng.uniform(100, 125), 2 * math.pi * rng.uniform(1.5, 2.5), rng.uniform(0, 6.3)
    cup_at = (-s * rng.uniform(0.03, 0.07) * h, rng.uniform(0.53, 0.6) * h, rng.uniform(0.24, 0.3) * h)
    bottle_at = (s * rng.uniform(0.02, 0.05) * h, cup_at[1] + rng.uniform(0.1, 0.14) * h, cup_at[2] - 0.02 * h)
    cup_colour = _prop_colour(rng) if rng.uniform() < 0.5 else np.array([235.0, 235, 230])
    glass = [(40, 120, 50), (110, 60, 20), (120, 170, 200), (200, 200, 190)][rng.integers(4)]
    glass = np.array(glass, float) * rng.uniform(0.8, 1.1)
    liquid = np.array([(230, 170, 60), (240, 240, 235), (170, 40, 40)][rng.integers(3)], float)
    poses, tilts = [], []
    for ti in t:
        pour = float(_window(ti, t0, t0 + 0.6) - _window(ti, t1, t1 + 0.6))
        tilts.append(tilt_max * pour + 8 * math.sin(glug * ti + ph) * pour)
        p = _pose(nod=15, lean=6)
        p[f"{n}_target"] = (("ground", bottle_at, 1.0),)
        p[f"{m}_target"] = (("ground", cup_at, 1.0),)
        p[f"{n}_pole"], p[f"{m}_pole"] = (s * 1.0, -1.0, -0.3), (-s * 1.0, -1.0, -0.3)
        poses.append(p)

    def props(i, j):
        cup, grip = j[f"{m}_grip"], j[f"{n}_grip"]
        towards = _unit((cup - grip) * np.array([1.0, 0.0, 1.0]))
        tau = math.radians(tilts[i])
        axis = math.cos(tau) * np.array([0.0, 1.0, 0.0]) + math.sin(tau) * towards
        lo, hi = grip - 0.055 * h * axis, grip + 0.055 * h * axis
        mouth = hi + 0.05 * h * axis
        out = _cup_prims(cup, np.array([0.0, 1.0, 0.0]), h, cup_colour)
        out += [("cap", (lo, hi), 0.024 * h, glass), ("cap", (hi, mouth), 0.01 * h, glass)]
        if tilts[i] > 80:
            out.append(("cap", (mouth, cup + np.array([0.0, 0.03 * h, 0.0])), 0.006 * h, liquid))
        return out

    return Anim(poses, "fixed", props=props)


ACTION_FUNCS = {
    "Drink": _act_drink,
    "Jump": _act_jump,
    "Pick": _act_pick,
    "Pour": _act_pour,
    "Push": _act_push,
    "Run": _act_run,
    "Sit": _act_sit,
    "Stand": _act_stand,
    "Turn": _act_turn,
    "Walk": _act_walk,
    "Wave": _act_wave,
}
assert tuple(ACTION_FUNCS) == ACTIONS


# --------------------------------------------------------------------------------------- real footage
def footage_dir() -> Path:
    """Where the real footage lives: ``$DTCM_REAL_FOOTAGE`` (a file or folder), else ``../shared/data/real``."""
    env = os.environ.get(FOOTAGE_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared/data/real"


@functools.lru_cache(maxsize=2)
def _load_footage(path: str) -> tuple:
    """Every frame of every video under ``path`` at ``FOOTAGE_SIZE``: a tuple of ((N, H, W, 3) RGB, fps)."""
    import av

    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"no real footage (videos {', '.join(VIDEO_SUFFIXES)}) at {root}; "
            f"set {FOOTAGE_ENV} to a video file or a folder of videos"
        )
    out = []
    w, h = FOOTAGE_SIZE
    for f in files:
        with av.open(str(f)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or 25)
            frames = [fr.to_ndarray(format="rgb24", width=w, height=h) for fr in container.decode(stream)]
        if frames:
            out.append((np.stack(frames), fps))  # (N, H, W, 3)
    if not out:
        raise FileNotFoundError(f"the videos under {root} hold no decodable frames")
    return tuple(out)


def _footage() -> tuple:
    return _load_footage(str(footage_dir()))


def _background(rng, num_frames, fps, pan_px, size) -> tuple[np.ndarray, dict]:
    """(T, H, W, 3) uint8 crops of the real footage, panning ``pan_px`` output px per frame (+ drift)."""
    videos = _footage()
    lengths = np.array([len(v[0]) for v in videos], float)
    k = int(rng.choice(len(videos), p=lengths / lengths.sum()))
    src, vfps = videos[k]
    n, sh, sw = src.shape[:3]
    w, h = size
    rate = vfps / fps  # source frames per output frame
    start = rng.uniform(0, max(0.0, n - 1 - rate * (num_frames - 1)))
    cw = rng.uniform(0.5, 0.95) * min(sw, sh * w / h)
    ch = cw * h / w
    vx = pan_px * cw / w + rng.uniform(-0.35, 0.35)
    vy = rng.uniform(-0.12, 0.12)
    span_x, span_y = vx * (num_frames - 1), vy * (num_frames - 1)
    if abs(span_x) > sw - cw:
        vx, span_x = vx * (sw - cw) / abs(span_x), math.copysign(sw - cw, span_x)
    if abs(span_y) > sh - ch:
        vy, span_y = 0.0, 0.0
    x0 = rng.uniform(max(0.0, -span_x), min(sw - cw, sw - cw - span_x))
    y0 = rng.uniform(max(0.0, -span_y), min(sh - ch, sh - ch - span_y))
    gain, flip = rng.uniform(0.75, 1.15), rng.uniform() < 0.5
    scale = w / cw
    out = np.empty((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        frame = src[min(int(round(start + rate * i)), n - 1)]
        m = np.array([[scale, 0, -(x0 + vx * i) * scale], [0, scale, -(y0 + vy * i) * scale]])
        img = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[i] = cv2.convertScaleAbs(img[:, ::-1] if flip else img, alpha=gain)
    info = {"video": k, "start": round(start, 2), "crop": [round(x0, 1), round(y0, 1), round(cw, 1)]}
    return out, info | {"pan": [round(vx, 3), round(vy, 3)], "flip": bool(flip), "gain": round(gain, 3)}


# ------------------------------------------------------------------------------------------- drawing
@dataclass
class _Camera:
    pos: np.ndarray  # (3,) world position
    rot: np.ndarray  # (3, 3) rows: right, up, forward
    f: float = 1.0  # focal length, canvas px
    cx: float = 0.0
    cy: float = 0.0

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = (np.asarray(pts, float).reshape(-1, 3) - self.pos) @ self.rot.T  # (N, 3) camera coords
        z = np.maximum(d[:, 2], 1e-3)
        return np.stack([self.cx + self.f * d[:, 0] / z, self.cy - self.f * d[:, 1] / z], 1), z


def _look_at(pos, target) -> np.ndarray:
    fwd = _unit(target - pos)
    right = _unit(np.cross(fwd, [0.0, 1.0, 0.0]))
    return np.stack([right, np.cross(right, fwd), fwd])


BOX_FACES = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))
BOX_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)  # corner order


def _box_corners(payload):
    centre, rot, half = payload
    return centre + (BOX_SIGNS * half) @ rot.T  # (8, 3)


def _prim_points(prim):
    kind, payload, radius, _ = prim
    return (_box_corners(payload) if kind == "box" else np.stack(payload)), radius


def _fx(p):  # float px -> fixed-point int for cv2's shift=4
    return int(round(p[0] * 16)), int(round(p[1] * 16))


def _col(c, k):
    return tuple(float(x) for x in np.clip(np.asarray(c) * k, 0, 255))


def _draw_capsule(img, a, b, r, colour, light):
    """A shaded capsule: dark rim, lit body, highlight stripe shifted towards the light."""
    th = max(1, int(round(2 * r)))
    cv2.line(img, _fx(a), _fx(b), _col(colour, 0.55), th, cv2.LINE_AA, 4)
    if th >= 3:
        o = light * r * 0.3
        cv2.line(img, _fx(a + o), _fx(b + o), _col(colour, 0.9), max(1, int(th * 0.62)), cv2.LINE_AA, 4)
        o = light * r * 0.5
        cv2.line(img, _fx(a + o), _fx(b + o), _col(colour, 1.15), max(1, int(th * 0.25)), cv2.LINE_AA, 4)


def _draw_frame(canvas, prims, cam, light2d, light3d, illum, z_ref, height, shadow):
    """Paint prims onto canvas (in place) far to near, after the ground shadow polygon."""
    if shadow is not None:
        pts, alpha = shadow
        x0, y0 = np.floor(pts.min(0)).astype(int) - 2
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
        if x1 > x0 and y1 > y0:
            roi = canvas[y0:y1, x0:x1]
            dark = roi.copy()
            cv2.fillConvexPoly(dark, ((pts - [x0, y0]) * 16).astype(np.int32), (0, 0, 0), cv2.LINE_AA, 4)
            cv2.addWeighted(dark, alpha, roi, 1 - alpha, 0, dst=roi)
    items = []
    for prim in prims:
        kind, payload, radius, colour = prim
        if kind == "box":
            corners = _box_corners(payload)
            uv, z = cam.project(corners)
            centre, rot, half = payload
            for axis in range(3):
                for sign in (-1.0, 1.0):
                    normal = sign * rot[:, axis]
                    face_c = centre + normal * half[axis]
                    if np.dot(normal, cam.pos - face_c) <= 0:
                        continue
                    idx = BOX_FACES[2 * axis + (sign > 0)]
                    shade = 0.45 + 0.55 * max(0.0, float(np.dot(normal, light3d)))
                    depth = float(cam.project(face_c[None])[1][0])
                    items.append((depth, "poly", uv[list(idx)], None, colour, shade))
            continue
        uv, z = cam.project(np.stack(payload))
        depth = float(z.mean())
        r_px = cam.f * radius / depth
        shade = float(np.clip(1 - 0.5 * (depth - z_ref) / height, 0.72, 1.12))
        items.append((depth, kind, uv, r_px, colour, shade))
    for _depth, kind, uv, r_px, colour, shade in sorted(items, key=lambda it: -it[0]):
        colour = np.asarray(colour) * illum * shade
        if kind == "poly":
            pts = (uv * 16).astype(np.int32)
            cv2.fillConvexPoly(canvas, pts, _col(colour, 1.0), cv2.LINE_AA, 4)
            cv2.polylines(canvas, [pts], True, _col(colour, 0.6), 1, cv2.LINE_AA, 4)
        elif kind == "cap":
            _draw_capsule(canvas, uv[0], uv[1], r_px, colour, light2d)
        else:  # sphere: rim, lit body, highlight
            for shift, size, k in ((0.0, 1.0, 0.55), (0.2, 0.78, 0.9), (0.45, 0.3, 1.15)):
                centre = _fx(uv[0] + light2d * r_px * shift)
                cv2.circle(canvas, centre, int(round(r_px * size * 16)), _col(colour, k), -1, cv2.LINE_AA, 4)


# ---------------------------------------------------------------------------------------- render_clip
def _action_name(action) -> str:
    if isinstance(action, (int, np.integer)):
        if not 0 <= int(action) < len(ACTIONS):
            raise ValueError(f"action index {action} is out of range 0..{len(ACTIONS) - 1}")
        return ACTIONS[int(action)]
    by_lower = {a.lower(): a for a in ACTIONS}
    if str(action).lower() not in by_lower:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return by_lower[str(action).lower()]


def render_clip(
    action: str | int,
    rng: np.random.Generator,
    *,
    num_frames: int = NUM_FRAMES,
    fps: float = FPS,
    size: tuple[int, int] = SIZE,
) -> tuple[np.ndarray, dict]:
    """Render one bright clip of a figure doing ``action`` over real-footage background.

    Args:
        action: a class name of ``ACTIONS`` (any letter case) or its 0-based index.
        rng: the only source of randomness; the same generator state gives the same clip.
        num_frames: T.
        fps: frame rate the motion is timed for.
        size: (W, H) of the frames.

    Returns:
        ``(frames, meta)``: uint8 (T, H, W, 3) RGB and a JSON-able dict of the sampled parameters.

    Example:
        >>> frames, meta = render_clip("Jump", np.random.default_rng(7))
        >>> frames.shape, meta["action"]
        ((40, 128, 170, 3), 'Jump')
    """
    name = _action_name(action)
    if num_frames < 1 or fps <= 0:
        raise ValueError(f"need num_frames >= 1 and fps > 0, got {num_frames} and {fps}")
    w, h = size
    t = np.arange(num_frames) / fps
    body = _sample_body(rng)
    speed = rng.uniform(0.8, 1.25)
    anim = ACTION_FUNCS[name](t, body, rng, speed)
    joints = _solve(anim.poses, body, anim.mode, anim.speed, t)
    figures = [_figure_prims(j, body) for j in joints]
    props = [anim.props(i, j) if anim.props else [] for i, j in enumerate(joints)]

    # camera: azimuth around the figure, elevation, distance; tracking follows moving figures
    # azimuth 0 = facing the camera; straight from behind (+-30 deg) hides too much of most actions
    az = rng.choice([-1.0, 1.0]) * rng.uniform(anim.min_azimuth, 150)
    el, dist = rng.uniform(0, 25), rng.uniform(4.0, 9.0)
    pelvis = np.stack([j["pelvis"] for j in joints]) * [1.0, 0.0, 1.0]  # (T, 3) on the ground
    centre = pelvis.mean(0) + [0.0, 0.5 * body.height, 0.0]
    a, e = math.radians(az), math.radians(el)
    cam0 = centre + dist * np.array([math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)])
    rot = _look_at(cam0, centre)
    track = rng.uniform(*anim.track)
    cams = [_Camera(cam0 + track * (p - pelvis.mean(0)), rot) for p in pelvis]
    still = _Camera(cam0, rot)

    # fit: the figure's height is a random share of the frame, everything stays inside the frame
    W, H = w * SS, h * SS
    fig_h, lo, hi = 0.0, np.full(2, np.inf), np.full(2, -np.inf)
    for cam, fig, prop in zip(cams, figures, props, strict=True):
        for k, group in enumerate((fig, prop)):
            if not group:
                continue
            pts, rad = zip(*(_prim_points(p) for p in group), strict=True)
            uv, z = cam.project(np.concatenate(pts))
            pad = np.repeat([r for r in rad], [len(p) for p in pts]) / z
            a, b = (uv - pad[:, None]).min(0), (uv + pad[:, None]).max(0)
            lo, hi = np.minimum(lo, a), np.maximum(hi, b)
            if k == 0:
                fig_h = max(fig_h, b[1] - a[1])
    share = rng.uniform(0.55, 0.85)
    f = min(share * H / fig_h, 0.8 * W / (hi[0] - lo[0]), 0.94 * H / (hi[1] - lo[1]))
    slack = np.array([0.8 * W, 0.94 * H]) - f * (hi - lo)
    jitter = rng.uniform(-0.5, 0.5, 2) * np.minimum(slack, [0.12 * W, 0.1 * H])
    cx, cy = W / 2 - f * (lo[0] + hi[0]) / 2 + jitter[0], H / 2 - f * (lo[1] + hi[1]) / 2 + jitter[1]
    for cam in [*cams, still]:
        cam.f, cam.cx, cam.cy = f, cx, cy

    # background pans against the camera's tracking (parallax < 1: the background is farther away)
    u_still = still.project(pelvis)[0][:, 0] if num_frames > 1 else np.zeros(1)
    u_track = np.array([c.project(p[None])[0][0, 0] for c, p in zip(cams, pelvis, strict=True)])
    pan = -rng.uniform(0.3, 0.7) * float((u_still - u_track)[-1] - (u_still - u_track)[0]) / max(1, num_frames - 1)
    bg, bg_info = _background(rng, num_frames, fps, pan / SS, (W, H))

    ang = math.radians(rng.uniform(-160, -20))
    light2d = np.array([math.cos(ang), math.sin(ang)])
    light3d = _unit(rot[0] * light2d[0] - rot[1] * light2d[1] - rot[2] * 0.8)
    illum = rng.uniform(0.7, 1.05)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        cam, j = cams[i], joints[i]
        foot = (j["pelvis"] + j["r_ankle"] + j["l_ankle"]) / 3
        ring = [
            np.array([foot[0] + 0.22 * body.height * math.cos(a), 0.0, foot[2] + 0.17 * body.height * math.sin(a)])
            for a in np.linspace(0, 2 * np.pi, 14)
        ]
        height_above = j["pelvis"][1] - joints[0]["pelvis"][1] if name == "Jump" else 0.0
        alpha = 0.35 * float(np.clip(1 - max(0.0, height_above) / body.height, 0.3, 1))
        shadow = (cam.project(np.stack(ring))[0], alpha)
        z_ref = float(cam.project(j["pelvis"][None])[1][0])
        canvas = bg[i]  # (H*SS, W*SS, 3), drawn on in place
        _draw_frame(canvas, figures[i] + props[i], cam, light2d, light3d, illum, z_ref, body.height, shadow)
        frames[i] = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    meta = {
        "action": name,
        "class_id": ACTIONS.index(name),
        "frames": num_frames,
        "fps": fps,
        "size": [w, h],
        "speed": round(speed, 3),
        "height_m": round(body.height, 3),
        "azimuth": round(az, 1),
        "elevation": round(el, 1),
        "distance_m": round(dist, 2),
        "focal_px": round(float(f) / SS, 1),
        "track": round(track, 3),
        "mode": anim.mode,
        "background": bg_info,
    }
    return frames, meta


# ------------------------------------------------------------------------------------ low-light camera
def _srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


LINEAR_LUT = _srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)  # uint8 sRGB -> linear
LUT_STEPS = 1 << 16
SRGB_LUT = np.round(255 * _linear_to_srgb(np.arange(LUT_STEPS) / (LUT_STEPS - 1))).astype(np.uint8)
LUMA = np.array([0.299, 0.587, 0.114])  # the Y of YCrCb that dtcm.darkness scores


def _to_srgb8(linear):
    idx = np.clip(linear * (LUT_STEPS - 1) + 0.5, 0, LUT_STEPS - 1).astype(np.int32)
    return SRGB_LUT[idx]


def _darken(frames, rng, exposure=None, target_dv=None) -> tuple[np.ndarray, dict]:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) RGB, got {frames.dtype} {tuple(frames.shape)}")
    if exposure is not None and not 0 < exposure <= 1:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    cast = np.exp(rng.normal(0.0, 0.12, 3))
    cast /= cast @ LUMA  # a tint that keeps luma: a white-balance error
    full_well = math.exp(rng.uniform(math.log(1500), math.log(5000)))  # electrons at linear 1.0
    read = rng.uniform(1.0, 3.5)  # read-noise sigma, electrons
    cast32 = cast.astype(np.float32)
    if exposure is None:  # auto: aim the mean darkness at a draw around ARID's, within x0.01-0.08
        if target_dv is None:
            target_dv = float(np.clip(rng.normal(TARGET_DV, 0.02), -0.93, -0.83))
        sample = LINEAR_LUT[frames[segment_indices(len(frames)), ::2, ::2]] * cast32  # what Dv looks at
        z = np.random.default_rng(rng.integers(1 << 31)).standard_normal(sample.shape).astype(np.float32)

        def dv_at(e):  # shot noise as a Gaussian of the same variance: smooth in e for the bisection
            el = sample * (e * full_well)
            noisy = np.maximum(el + np.sqrt(el + read * read) * z, 0.0) / full_well
            y = (_to_srgb8(noisy).astype(np.float32) @ LUMA.astype(np.float32)).mean()
            return (y - SC) / SC

        lo, hi = math.log(0.002), math.log(0.5)
        for _ in range(18):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if dv_at(math.exp(mid)) < target_dv else (lo, mid)
        exposure = float(np.clip(math.exp(0.5 * (lo + hi)), 0.01, 0.08))
    gain = np.float32(exposure * full_well)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):  # frame by frame: long full-HD clips stay small in memory
        electrons = rng.poisson(LINEAR_LUT[frame] * cast32 * gain).astype(np.float32)
        electrons += rng.normal(0.0, read, electrons.shape).astype(np.float32)
        out[i] = _to_srgb8(np.maximum(electrons, 0.0) / full_well)
    info = {"exposure": round(exposure, 5), "full_well_e": round(full_well, 1), "read_noise_e": round(read, 3)}
    return out, info | {"cast": [round(float(c), 4) for c in cast]}


def darken(frames_uint8: np.ndarray, rng: np.random.Generator, exposure: float | None = None) -> np.ndarray:
    """Film bright frames with a low-light camera (SPEC B3), e.g. to darken real footage like ARID.

    sRGB -> linear, a colour cast (a white-balance error that keeps luma), exposure, Poisson shot noise
    on the photo-electrons, Gaussian read noise, linear -> sRGB, 8 bit.

    Args:
        frames_uint8: uint8 (T, H, W, 3) RGB (a single (H, W, 3) frame is not accepted: T is needed).
        rng: source of the noise, cast and sensor parameters.
        exposure: the exposure factor; None picks one in [0.01, 0.08] so that the darkness score Dv of
            the result lands near ARID's (a draw around -0.88, see SPEC A8).

    Returns:
        uint8 (T, H, W, 3), the same shape.

    Example:
        >>> dark = darken(frames, np.random.default_rng(0))
        >>> darkness_score(dark[segment_indices(len(dark))])  # about -0.88
    """
    return _darken(frames_uint8, rng, exposure)[0]


# ------------------------------------------------------------------------------------------- dataset
def split_indices(per_class: int) -> tuple[list[int], list[int]]:
    """Deterministic 80/20 split of one class's clip indices: (train, test), the test ones last.

    Example:
        >>> split_indices(10)
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    n_test = 0 if per_class == 1 else max(1, round(0.2 * per_class))
    return list(range(per_class - n_test)), list(range(per_class - n_test, per_class))


def _clip_path(class_id: int, index: int) -> str:
    name = ACTIONS[class_id]
    return f"{name}/{name}_{index:04d}.mp4"


def _init_worker():
    cv2.setNumThreads(1)  # one process per core already
    _footage()


def _render_job(job) -> tuple[dict, tuple | None]:
    """Render, darken and write one clip; the seeds come from (seed, class, index) only."""
    from dtcm.video import write_video

    out, class_id, index, seed, bright, num_frames, keep = job
    frames, meta = render_clip(ACTIONS[class_id], np.random.default_rng([seed, class_id, index]), num_frames=num_frames)
    dark = None
    if not bright or keep:
        dark, info = _darken(frames, np.random.default_rng([seed, class_id, index, 1]))
        meta["camera"] = info
        meta["dv_dark"] = round(darkness_score(dark[segment_indices(len(dark))]), 4)
    meta["dv_bright"] = round(darkness_score(frames[segment_indices(len(frames))]), 4)
    meta["path"] = _clip_path(class_id, index)
    write_video(Path(out) / meta["path"], frames if bright else dark, FPS)
    return meta, ((frames, dark) if keep else None)


def contact_sheet(rows, path: str | os.PathLike, frames_per_row: int = 5) -> Path:
    """A PNG with one row per class: ``frames_per_row`` bright frames, then the same frames dark.

    Args:
        rows: ``(label, bright (T, H, W, 3), dark (T, H, W, 3))`` per row, uint8 RGB.
        path: the PNG to write.
        frames_per_row: frames of each version, evenly spaced over the clip.
    """
    label_w, gap, head = 76, 8, 22
    blocks = []
    for label, bright, dark in rows:
        idx = np.linspace(0, len(bright) - 1, frames_per_row).round().astype(int)
        h, w = bright.shape[1:3]
        tag = np.zeros((h, label_w, 3), np.uint8)
        cv2.putText(tag, label, (4, h // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        spacer = np.zeros((h, gap, 3), np.uint8)
        blocks.append(np.concatenate([tag, *bright[idx], spacer, *dark[idx]], 1))
    sheet = np.concatenate(blocks, 0)
    header = np.zeros((head, sheet.shape[1], 3), np.uint8)
    w = rows[0][1].shape[2]
    for x, text in (
        (label_w + 4, "bright (rendered)"),
        (label_w + frames_per_row * w + gap + 4, "dark (low-light camera)"),
    ):
        cv2.putText(header, text, (x, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    path = Path(path)
    cv2.imwrite(str(path), np.concatenate([header, sheet], 0)[..., ::-1])  # RGB -> BGR
    return path


def make_synthetic(
    out: str | os.PathLike,
    per_class: int,
    seed: int = 0,
    bright: bool = False,
    num_workers: int = 1,
    num_frames: int = NUM_FRAMES,
) -> dict:
    """Write DarkActions-synth: ``out/Class/Class_0000.mp4`` ..., ARID-format lists and a contact sheet.

    ``split1_train.txt`` / ``split1_test.txt`` hold ``idx<TAB>class_id<TAB>Class/file.mp4`` lines (0-based
    class ids, 80/20 per class, the last clips of each class are the test ones), ``classInd.txt`` holds
    ``index<TAB>name`` (0-based), ``synthetic.json`` the summary and every clip's parameters, and
    ``contact_sheet.png`` clip 0 of every class, bright and dark.

    Args:
        out: output folder (created; existing clips of the same names are overwritten).
        per_class: clips per class.
        seed: base seed; clip ``i`` of class ``c`` depends only on ``(seed, c, i)``.
        bright: write the rendered clips instead of the darkened ones.
        num_workers: worker processes (the result does not depend on it).
        num_frames: frames per clip (at 15 fps).

    Returns:
        A summary dict: counts, darkness (mean/min/max Dv of the dark clips), timings, paths.

    Example:
        >>> make_synthetic("data/darkactions_synth", per_class=60, seed=0, num_workers=2)["clips"]
        660
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if num_frames < 8:
        raise ValueError(f"num_frames must be >= 8, got {num_frames}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(str(out), c, i, seed, bright, num_frames, i == 0) for c in range(len(ACTIONS)) for i in range(per_class)]
    num_workers = min(num_workers, len(jobs))
    if num_workers == 1:
        _footage()  # fails early (and clearly) without real footage
        results = [_render_job(j) for j in jobs]
    else:  # spawned workers: nothing of the caller's threads (torch, cv2) is inherited mid-state
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(num_workers, mp.get_context("spawn"), initializer=_init_worker) as pool:
            results = list(pool.map(_render_job, jobs, chunksize=1))
    seconds = time.perf_counter() - start

    train_idx, test_idx = split_indices(per_class)
    lines = {"train": [], "test": []}
    for c in range(len(ACTIONS)):
        for part, indices in (("train", train_idx), ("test", test_idx)):
            lines[part] += [f"{c * per_class + i}\t{c}\t{_clip_path(c, i)}" for i in indices]
    for part in ("train", "test"):
        (out / f"split1_{part}.txt").write_text("".join(line + "\n" for line in lines[part]))
    (out / "classInd.txt").write_text("".join(f"{c}\t{name}\n" for c, name in enumerate(ACTIONS)))
    sheet = contact_sheet([(ACTIONS[m["class_id"]], *kept) for m, kept in results if kept], out / "contact_sheet.png")

    metas = [m for m, _ in results]
    dvs = np.array([m["dv_dark"] for m in metas if "dv_dark" in m])
    summary = {
        "out": str(out),
        "classes": list(ACTIONS),
        "per_class": per_class,
        "clips": len(metas),
        "train": len(lines["train"]),
        "test": len(lines["test"]),
        "seed": seed,
        "bright": bright,
        "frames": num_frames,
        "fps": FPS,
        "size": list(SIZE),
        "mean_dv": round(float(dvs.mean()), 4),  # of the darkened clips (for --bright: of clip 0 per class)
        "min_dv": round(float(dvs.min()), 4),
        "max_dv": round(float(dvs.max()), 4),
        "seconds": round(seconds, 2),
        "seconds_per_clip": round(seconds / len(metas), 3),
        "workers": num_workers,
        "contact_sheet": str(sheet),
    }
    (out / "synthetic.json").write_text(json.dumps(summary | {"clip_params": metas}, indent=1) + "\n")
    return summary


# ----------------------------------------------------------------------------------------------- CLI
def add_cli_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--per-class", type=int, default=60, help="clips per class (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--bright", action="store_true", help="write the rendered clips, not the dark ones")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help=f"frames per clip (default {NUM_FRAMES})")


def cli_main(args) -> int:
    s = make_synthetic(args.out, args.per_class, args.seed, args.bright, args.workers, args.frames)
    print(
        f"wrote {s['clips']} {'bright' if s['bright'] else 'dark'} clips ({s['train']} train / {s['test']} test) "
        f"to {s['out']} in {s['seconds']:.1f} s ({s['seconds_per_clip']:.2f} s per clip)"
    )
    print(f"darkness Dv of the dark clips: mean {s['mean_dv']:.3f} (min {s['min_dv']:.3f}, max {s['max_dv']:.3f})")
    print(f"contact sheet: {s['contact_sheet']}")
    return 0
