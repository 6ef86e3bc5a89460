"""v2's people: bodies with volume, clothes, skin and hair, painted as shaded convex parts.

Every body part is a small 3D point set (two spheres of different radii for a tapered limb, stacked
ellipses for the chest and hips, an ellipsoid for the head) whose projected convex hull is filled in
painter's order, so the silhouette is right from any view and foreshortening comes for free. Each part
gets a dark rim, a lit body and a highlight shifted towards the light; the figure layer is then blurred
inside its own mask, which turns those bands into smooth shading without softening the outline.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from dtcm.synthetic.body import SIDES, Body

__all__ = ["Look", "figure_parts", "paint_figure", "pattern_of", "sample_look"]

SKIN = ((247, 215, 190), (236, 192, 160), (224, 172, 135), (198, 140, 100), (160, 105, 70), (120, 78, 52), (86, 56, 40))
HAIR = ((20, 16, 12), (55, 35, 20), (95, 60, 30), (160, 120, 70), (210, 180, 120), (140, 60, 30), (150, 150, 150))
HAIR_STYLES = ("short", "short", "long", "bun", "bald", "cap")
LEGWEAR = ("trousers", "trousers", "trousers", "shorts", "skirt")
PATTERNS = ("plain", "plain", "stripes", "plaid", "photo")


def _unit_sphere(n: int) -> np.ndarray:
    """n points spread over the unit sphere (a Fibonacci lattice): (n, 3)."""
    i = np.arange(n) + 0.5
    phi, theta = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


SPHERE = _unit_sphere(18)
RING = np.stack([np.cos(a := np.linspace(0, 2 * np.pi, 12, endpoint=False)), np.zeros(12), np.sin(a)], 1)  # (12, 3)


@dataclass(frozen=True)
class Look:
    """What one person wears and looks like (RGB 0..255), and their build."""

    skin: tuple
    hair: tuple
    hair_style: str
    top: tuple  # shirt / jumper
    jacket: tuple | None  # an open jacket over the top, or None
    long_sleeves: bool
    legs: tuple  # trousers, shorts or skirt colour
    legwear: str
    shoes: tuple
    pattern: str  # on the top: plain, stripes, plaid or photo (a real photograph's texture)
    texture: np.ndarray | None  # (P, P) luminance around 1 for 'photo', else None
    shoulders: float  # width multipliers: broad shoulders / wide hips
    hips: float
    girth: float


def _hsv(h, s, v) -> tuple:
    return tuple(float(c) * 255.0 for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def sample_look(rng: np.random.Generator, body: Body, texture: np.ndarray | None = None) -> Look:
    """Clothes, skin, hair and build for one person; ``texture`` (a real photo patch) enables 'photo' tops."""
    u = rng.uniform
    skin = np.array(SKIN[rng.integers(len(SKIN))], float) * u(0.93, 1.05)
    fem = u()  # 0 .. 1: shoulder/hip ratio, long hair and skirts are likelier towards 1
    top = _hsv(u(), u(0.1, 0.85), u(0.25, 0.95)) if u() < 0.75 else _hsv(0, 0, u(0.1, 0.95))
    legs = [
        _hsv(u(0.57, 0.63), u(0.3, 0.6), u(0.25, 0.55)),
        _hsv(0, 0, u(0.08, 0.3)),
        _hsv(u(0.07, 0.13), u(0.25, 0.5), u(0.4, 0.7)),
        _hsv(u(), u(0, 0.6), u(0.2, 0.7)),
    ][rng.integers(4)]
    styles = HAIR_STYLES if fem < 0.5 else ("long", "long", "bun", "short", "cap")
    legwear = LEGWEAR[rng.integers(len(LEGWEAR))]
    if legwear == "skirt" and fem < 0.5:
        legwear = "trousers"
    patterns = PATTERNS if texture is not None else PATTERNS[:-1]
    return Look(
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(np.array(HAIR[rng.integers(len(HAIR))], float) * u(0.85, 1.1)),
        hair_style=styles[rng.integers(len(styles))],
        top=top,
        jacket=_hsv(u(), u(0, 0.5), u(0.1, 0.5)) if u() < 0.35 else None,
        long_sleeves=bool(u() < 0.6),
        legs=legs,
        legwear=legwear,
        shoes=_hsv(u(), u(0, 0.3), u(0.06, 0.3)) if u() < 0.8 else _hsv(0, 0, 0.9),
        pattern=patterns[rng.integers(len(patterns))],
        texture=texture,
        shoulders=float(u(1.0, 1.12) - 0.12 * fem),
        hips=float(u(0.95, 1.05) + 0.12 * fem),
        girth=float(u(0.85, 1.25) * body.girth**0.5),
    )


# ------------------------------------------------------------------------------------------------ parts
def _limb(a, b, ra, rb):
    return np.concatenate([a + SPHERE * ra, b + SPHERE * rb])  # (36, 3)


def _rings(origin, frame, levels, height):
    """Stacked horizontal ellipses in a body frame (rows right, up, forward): (len(levels) * 12, 3).

    ``levels`` holds (y in m, half width, half depth), the half axes as fractions of ``height``.
    """
    pts = [origin + (RING * [wx * height, 0.0, wz * height] + [0.0, y, 0.0]) @ frame for y, wx, wz in levels]
    return np.concatenate(pts)


def _frame(right, up):
    up = up / np.linalg.norm(up)
    right = right - up * np.dot(right, up)
    right /= max(np.linalg.norm(right), 1e-9)
    return np.stack([right, up, np.cross(right, up)])  # (3, 3) rows: right, up, forward


def _segment(j, name, a, b, ra, rb, colour, material, start=None) -> tuple:
    """A tapered limb from joint ``a`` (or ``start``) to joint ``b``, its axis the joint segment."""
    return (name, _limb(j[a] if start is None else start, j[b], ra, rb), np.stack([j[a], j[b]]), colour, material)


def _torso_parts(j, h, g, look: Look, chest, hips, sw, hw, top) -> list[tuple]:
    torso_len = float(np.linalg.norm(j["neck"] - j["pelvis"]))
    hip_rings = [(-0.05 * h, 0.088 * hw, 0.062 * g), (0.0, 0.1 * hw, 0.068 * g), (0.075 * h, 0.086 * g, 0.058 * g)]
    chest_rings = [
        (0.07 * h, 0.086 * g, 0.058 * g),
        (0.16 * h, 0.098 * sw, 0.066 * g),
        (torso_len - 0.06 * h, 0.108 * sw, 0.066 * g),
        (torso_len - 0.012 * h, 0.088 * sw, 0.05 * g),
        (torso_len + 0.012 * h, 0.045 * g, 0.035 * g),
    ]
    parts = [
        (
            "hips",
            _rings(j["pelvis"], hips, hip_rings, h),
            np.stack([j["pelvis"] - 0.05 * h * hips[1], j["pelvis"] + 0.075 * h * hips[1]]),
            look.legs,
            "legs",
        ),
        (
            "chest",
            _rings(j["pelvis"], chest, chest_rings, h),
            np.stack([j["pelvis"] + 0.07 * h * chest[1], j["neck"]]),
            top,
            "top",
        ),
        (
            "neck",
            _limb(j["neck"] - 0.02 * h * chest[1], j["head"] - 0.03 * h * chest[1], 0.03 * h * g, 0.027 * h),
            np.stack([j["neck"], j["head"]]),
            look.skin,
            "skin",
        ),
    ]
    if look.jacket is not None:  # the top shows down the open front of the jacket
        front = chest[2] * 0.064 * g
        top_end = j["neck"] - 0.03 * h * chest[1] + front
        placket = _limb(top_end, j["pelvis"] + 0.09 * h * chest[1] + front, 0.018 * h, 0.022 * h)
        parts.append(("placket", placket, None, look.top, "inner"))
    return parts


def _side_parts(j, n, s, h, g, look: Look, chest, hw, top) -> list[tuple]:
    """One side's arm and leg; the deltoid sits just inside the shoulder joint."""
    sleeve = top if look.long_sleeves or look.jacket is not None else look.skin
    shin = look.legs if look.legwear == "trousers" else look.skin
    shoulder = j[f"{n}_shoulder"] - s * 0.022 * h * chest[0]
    heel = j[f"{n}_ankle"] - 0.01 * h * chest[1]
    if look.legwear == "shorts":  # shorts: the upper thigh in the trouser colour, the knee bare
        thigh = _segment(j, f"{n}_thigh", f"{n}_hip", f"{n}_knee", 0.05 * h * hw, 0.036 * h * g, look.skin, "skin")
    else:
        thigh = _segment(j, f"{n}_thigh", f"{n}_hip", f"{n}_knee", 0.052 * h * hw, 0.038 * h * g, look.legs, "legs")
    upper_colour = top if look.jacket is not None else look.top
    parts = [
        _segment(
            j, f"{n}_upper", f"{n}_shoulder", f"{n}_elbow", 0.034 * h * g, 0.026 * h * g, upper_colour, "top", shoulder
        ),
        _segment(j, f"{n}_fore", f"{n}_elbow", f"{n}_wrist", 0.026 * h * g, 0.02 * h * g, sleeve, "sleeve"),
        _segment(j, f"{n}_hand", f"{n}_wrist", f"{n}_hand", 0.019 * h, 0.016 * h, look.skin, "skin"),
        thigh,
        _segment(j, f"{n}_shin", f"{n}_knee", f"{n}_ankle", 0.037 * h * g, 0.024 * h * g, shin, "legs"),
        _segment(j, f"{n}_shoe", f"{n}_ankle", f"{n}_toe", 0.025 * h, 0.02 * h, look.shoes, "shoes", heel),
    ]
    if look.legwear == "shorts":
        mid = 0.55 * j[f"{n}_hip"] + 0.45 * j[f"{n}_knee"]
        shorts = _limb(j[f"{n}_hip"], mid, 0.058 * h * hw, 0.047 * h * hw)
        parts.append((f"{n}_shorts", shorts, None, look.legs, "legs"))
    return parts


def figure_parts(j: dict, b: Body, look: Look) -> list[tuple]:
    """One frame's body parts: ``(name, points (N, 3), axis (2, 3), colour, material)`` in metres."""
    h, g = b.height, look.girth
    spine = j["neck"] - j["pelvis"]
    chest = _frame(j["r_shoulder"] - j["l_shoulder"], spine)
    hips = _frame(j["r_hip"] - j["l_hip"], spine)
    sw, hw = look.shoulders * g, look.hips * g
    top = look.jacket if look.jacket is not None else look.top
    parts = _torso_parts(j, h, g, look, chest, hips, sw, hw, top)
    for n, s in SIDES:
        parts += _side_parts(j, n, s, h, g, look, chest, hw, top)
    if look.legwear == "skirt":
        knee = 0.5 * (j["r_knee"] + j["l_knee"])
        drop = float(np.dot(j["pelvis"] - knee, hips[1])) * 0.85
        parts.append(
            (
                "skirt",
                _rings(j["pelvis"], hips, [(0.06 * h, 0.09 * hw, 0.062 * g), (-drop, 0.15 * hw, 0.12 * g)], h),
                np.stack([j["pelvis"], j["pelvis"] - drop * hips[1]]),
                look.legs,
                "legs",
            )
        )
    parts += _head_parts(j, b, look, chest)
    return parts


def _head_parts(j, b: Body, look: Look, chest) -> list[tuple]:
    h = b.height
    face = j["face"] / max(np.linalg.norm(j["face"]), 1e-9)
    head = _frame(np.cross(chest[1], face), chest[1])  # rows right, up, forward (= the face)
    radii = np.array([0.046, 0.064, 0.058]) * h  # half width, half height, half depth: a head is ~1/7.5 tall
    c = j["head"] + 0.006 * h * head[1]
    out = [("head", c + (SPHERE * radii) @ head, None, look.skin, "skin")]
    if look.hair_style == "bald":
        return out
    shell = SPHERE * radii * 1.08
    back = shell[(shell @ [0, 0, 1] < 0.25 * radii[2]) | (shell[:, 1] > 0.55 * radii[1])]  # back and crown
    if look.hair_style == "long":  # down to the shoulders behind the neck
        back = np.concatenate([back, [[sx * 0.9 * radii[0], -2.1 * radii[1], -0.6 * radii[2]] for sx in (-1, 1)]])
    if look.hair_style == "bun":
        back = np.concatenate([back, SPHERE * 0.45 * radii[0] + [0, 0.7 * radii[1], -0.9 * radii[2]]])
    colour = look.hair if look.hair_style != "cap" else look.jacket or look.top
    out.append(("hair_back", c + back @ head, None, colour, "hair"))
    crown = shell[shell[:, 1] > (0.3 if look.hair_style == "cap" else 0.5) * radii[1]]
    if look.hair_style == "cap":
        crown = np.concatenate([crown, [[sx * 0.8 * radii[0], 0.3 * radii[1], 1.6 * radii[2]] for sx in (-1, 1)]])
    out.append(("hair_top", c + crown @ head, None, colour, "crown"))
    return out


# --------------------------------------------------------------------------------------------- painting
def pattern_of(look: Look):
    """The top's print as ``(shape, (x, y) from the chest, figure px) -> (h, w, 1) gain``, or None if plain."""
    if look.pattern == "plain" or (look.pattern == "photo" and look.texture is None):
        return None

    def pattern(shape, origin, fig_px):
        h, w = shape
        y = (np.arange(h, dtype=np.float32) + origin[1])[:, None]  # (h, 1)
        x = (np.arange(w, dtype=np.float32) + origin[0])[None]  # (1, w)
        period = max(2.0, 0.04 * fig_px)
        if look.pattern == "stripes":
            gain = 1 - 0.3 * (np.sin(2 * np.pi * y / period) > 0) + 0 * x
        elif look.pattern == "plaid":
            gain = (1 - 0.2 * (np.sin(2 * np.pi * y / (2 * period)) > 0)) * (
                1 - 0.2 * (np.sin(2 * np.pi * x / (2 * period)) > 0)
            )
        else:  # a real photograph's texture, tiled at a quarter of the figure's height
            p = look.texture.shape[0]
            scale = p / max(4.0, 0.25 * fig_px)
            iy = np.floor(y * scale).astype(int) % p
            ix = np.floor(x * scale).astype(int) % p
            gain = 0.6 + 0.4 * look.texture[iy, ix]
        return gain.astype(np.float32)[..., None]

    return pattern


def _shrunk(uv, axis_uv, k, offset):
    """Move hull points towards the part's 2D axis (a segment, or its centroid) by factor k, then shift."""
    if axis_uv is None:
        centre = uv.mean(0)
        return centre + (uv - centre) * k + offset
    a, d = axis_uv[0], axis_uv[1] - axis_uv[0]
    t = np.clip(((uv - a) @ d) / max(float(d @ d), 1e-9), 0.0, 1.0)
    near = a + t[:, None] * d  # (N, 2) closest axis points
    return near + (uv - near) * k + offset


def paint_figure(canvas: np.ndarray, parts: list, cam, light2d: np.ndarray, illum: float, pattern=None) -> np.ndarray:
    """Paint ``parts`` onto ``canvas`` (float32 (H, W, 3), in place) far to near; returns the (H, W) mask.

    ``pattern((h, w), (x, y) of the ROI from the chest centre, figure height px) -> (h, w, 1) gain`` textures
    the top; None leaves it plain.
    """
    H, W = canvas.shape[:2]
    items = []
    for name, pts, axis, colour, material in parts:
        uv, z = cam.project(pts)
        depth = float(z.mean())  # the back hair falls behind the head when the face looks at the camera
        axis_uv = cam.project(axis)[0] if axis is not None else None
        items.append((depth, name, uv, axis_uv, np.asarray(colour, np.float32), material))
    head = next((it for it in items if it[1] == "head"), None)
    order = sorted(items, key=lambda it: -it[0])
    if head is not None:  # the crown always sits on the head: paint it right after
        crown = [it for it in order if it[5] == "crown"]
        order = [it for it in order if it[5] != "crown"]
        k = next(i for i, it in enumerate(order) if it[1] == "head")
        order[k + 1 : k + 1] = crown
    allpts = np.concatenate([it[2] for it in items])
    x0, y0 = np.maximum(np.floor(allpts.min(0)).astype(int) - 4, 0)
    x1, y1 = np.minimum(np.ceil(allpts.max(0)).astype(int) + 4, [W, H])
    if x1 <= x0 or y1 <= y0:
        return np.zeros((H, W), np.float32)
    layer = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    top = np.zeros((y1 - y0, x1 - x0), np.float32)
    fig_px = float(allpts[:, 1].max() - allpts[:, 1].min())
    for _depth, _name, uv, axis_uv, colour, material in order:
        hull = cv2.convexHull((uv - [x0, y0]).astype(np.float32))[:, 0]  # (M, 2)
        size = float(np.ptp(hull, 0).min()) * 0.5
        base = colour * illum
        for k, shift, gain in ((1.0, 0.0, 0.58), (0.7, 0.22, 0.9), (0.32, 0.45, 1.12)):
            poly = _shrunk(hull, None if axis_uv is None else axis_uv - [x0, y0], k, light2d * size * shift)
            pts = np.round(poly * 16).astype(np.int32)
            cv2.fillConvexPoly(layer, pts, tuple(float(c) for c in np.clip(base * gain, 0, 255)), cv2.LINE_AA, 4)
            if k == 1.0:
                cv2.fillConvexPoly(mask, pts, 1.0, cv2.LINE_AA, 4)
                cv2.fillConvexPoly(top, pts, 1.0 if material == "top" else 0.0, cv2.LINE_AA, 4)
    sigma = max(0.6, 0.012 * fig_px)
    soft = cv2.GaussianBlur(layer * mask[..., None], (0, 0), sigma) / np.maximum(
        cv2.GaussianBlur(mask, (0, 0), sigma)[..., None], 1e-3
    )
    chest = next((it for it in items if it[1] == "chest"), None)
    if pattern is not None and chest is not None:  # anchored to the chest, so it moves with the body
        cx, cy = chest[2].mean(0)
        soft *= 1 + (pattern(soft.shape[:2], (x0 - cx, y0 - cy), fig_px) - 1) * top[..., None]
    roi = canvas[y0:y1, x0:x1]
    roi *= 1 - mask[..., None]
    roi += soft * mask[..., None]
    full = np.zeros((H, W), np.float32)
    full[y0:y1, x0:x1] = mask
    return full
