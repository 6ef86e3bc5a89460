"""The 11 actions as joint-angle trajectories: ``ACTION_FUNCS[name](t, body, rng, speed) -> Anim``.

Each function samples its own amplitudes, phases and props from ``rng`` and returns one pose per time
in ``t`` (seconds), how the pelvis travels and the props it holds. v1 calls them on the clock; v2 calls
them on a warped clock with a per-actor style (:func:`actor_style`, :func:`stylise`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dtcm.config import ARID_CLASSES
from dtcm.synthetic.body import (
    NEUTRAL,
    SIDES,
    _cuboid,
    _ease,
    _hsv,
    _legs,
    _pose,
    _prop_colour,
    _rx,
    _ry,
    _unit,
    _window,
)

__all__ = ["ACTIONS", "ACTION_FUNCS", "Anim", "action_name", "actor_style", "stylise"]

ACTIONS = ARID_CLASSES  # class id = index here (0-based, ARID's order)


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


def _gait(t, b, f, ph, amp, pose_at, stride, track) -> Anim:
    """A walking or running cycle: ``pose_at(phase)`` per frame, moving at ``stride`` leg lengths per cycle."""
    poses = [pose_at(2 * math.pi * f * ti + ph) for ti in t]
    v = stride * (b.thigh + b.shin) * math.sin(math.radians(amp)) * f
    return Anim(poses, "move", v, track)


def _act_walk(t, b, rng, speed):
    f, amp, ph = 0.95 * speed, rng.uniform(20, 27), rng.uniform(0, 2 * math.pi)

    def pose_at(th):
        arm = 0.7 * amp * math.sin(th)
        p = _pose(lean=3, twist=-6 * math.sin(th), nod=2, r_sh=-arm + 3, l_sh=arm + 3, **_walk_legs(th, amp))
        p["r_el"], p["l_el"] = 12 + 0.5 * max(0.0, p["r_sh"]), 12 + 0.5 * max(0.0, p["l_sh"])
        return p

    return _gait(t, b, f, ph, amp, pose_at, 4, (0.45, 0.85))


def _act_run(t, b, rng, speed):
    f, amp, ph = 1.45 * speed, rng.uniform(32, 40), rng.uniform(0, 2 * math.pi)
    lean = rng.uniform(8, 16)

    def pose_at(th):
        arm = 0.9 * amp * math.sin(th)
        legs = _walk_legs(th, amp, hip0=12, knee_swing=95, knee0=22, foot_amp=20)
        lift = 0.05 * b.height * math.sin(th) ** 2
        p = _pose(lean=lean, twist=-10 * math.sin(th), lift=lift, r_sh=-arm + 15, l_sh=arm + 15, **legs)
        p.update(r_el=85, l_el=85, r_sh_abd=14, l_sh_abd=14)
        return p

    return _gait(t, b, f, ph, amp, pose_at, 4.4, (0.75, 0.92))


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


def _action_name(action) -> str:
    if isinstance(action, (int, np.integer)):
        if not 0 <= int(action) < len(ACTIONS):
            raise ValueError(f"action index {action} is out of range 0..{len(ACTIONS) - 1}")
        return ACTIONS[int(action)]
    by_lower = {a.lower(): a for a in ACTIONS}
    if str(action).lower() not in by_lower:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return by_lower[str(action).lower()]


action_name = _action_name


# -------------------------------------------------------------------------------------------- v2 style
STYLED = ("lean", "twist", "side", "nod", "turn", "r_sh", "l_sh", "r_sh_abd", "l_sh_abd", "r_el", "l_el")
SWAYED = {"lean": 2.0, "side": 1.5, "nod": 3.0, "turn": 6.0, "r_sh": 3.0, "l_sh": 3.0, "r_sh_abd": 2.0, "l_sh_abd": 2.0}


def _smooth_noise(rng, t, terms=3, lo=0.15, hi=0.9):
    """A sum of a few random sines (frequencies lo..hi Hz): smooth, about unit amplitude, (T,)."""
    f, ph = rng.uniform(lo, hi, terms), rng.uniform(0, 2 * math.pi, terms)
    return np.sin(2 * math.pi * f[:, None] * t[None] + ph[:, None]).sum(0) / math.sqrt(terms)


def actor_style(rng: np.random.Generator, t: np.ndarray) -> tuple[np.ndarray, dict]:
    """One actor's clock and manner: a warped time axis (tempo that drifts, a phase offset) and factors.

    Returns:
        ``(clock, style)``: the times (T,) to evaluate the action at, and ``{"tempo", "amplitude",
        "offset_s", "sway"}``.
    """
    tempo, drift = rng.uniform(0.85, 1.2), rng.uniform(0.05, 0.2)
    rate = np.clip(tempo * (1 + drift * _smooth_noise(rng, t)), 0.4, None)
    offset = rng.uniform(0.0, 0.4)
    dt = np.diff(t, prepend=t[0])
    clock = offset + np.cumsum(rate * dt)
    style = {"tempo": round(tempo, 3), "drift": round(drift, 3), "offset_s": round(offset, 3)}
    return clock, style | {"amplitude": round(rng.uniform(0.85, 1.15), 3), "sway": round(rng.uniform(0.4, 1.3), 3)}


def stylise(poses: list, rng: np.random.Generator, t: np.ndarray, style: dict) -> list:
    """Scale the upper body's excursions by the actor's amplitude and add a slow idle sway (legs untouched)."""
    amp, sway = style["amplitude"], style["sway"]
    noise = {k: a * sway * _smooth_noise(rng, t, lo=0.1, hi=0.6) for k, a in SWAYED.items()}
    bias = {k: rng.normal(0.0, 2.5) for k in STYLED}  # a habitual posture
    out = []
    for i, p in enumerate(poses):
        q = dict(p)
        for k in STYLED:
            q[k] = NEUTRAL[k] + amp * (p[k] - NEUTRAL[k]) + bias[k] + (noise[k][i] if k in noise else 0.0)
        out.append(q)
    return out
