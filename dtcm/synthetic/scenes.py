"""Procedural night scenes made by code: a street, a room, a yard and a car park (v2's default backgrounds).

Each scene is painted in perspective around a vanishing point on a random horizon: walls and facades with
windows (some lit), a floor or road that converges, lamps, parked cars, fences, furniture, then a
low-frequency texture and grain. Nothing is read from disk, so a plain clone renders the dataset. The
scene also reports where its lamps are, so the lighting pass can make them glow and pool light.

Example:
    >>> img, info = procedural_scene(np.random.default_rng(0), (476, 308))
    >>> img.shape, info["kind"] in SCENE_KINDS
    ((308, 476, 3), True)
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

__all__ = ["SCENE_KINDS", "procedural_scene"]

SCENE_KINDS = ("street", "room", "yard", "carpark")


# -------------------------------------------------------------------------------------------- helpers
def _rgb(h, s, v) -> tuple:
    return tuple(float(c) * 255.0 for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _poly(img, pts, colour):
    cv2.fillPoly(img, [np.round(np.asarray(pts, float) * 16).astype(np.int32)], colour, cv2.LINE_AA, 4)


def _vgradient(h, w, top, bottom) -> np.ndarray:
    k = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    col = (1 - k) * np.asarray(top, np.float32) + k * np.asarray(bottom, np.float32)  # (H, 1, 3)
    return np.repeat(col, w, 1)


def _texture(rng, h, w, cells, amp) -> np.ndarray:
    """Multiplicative low-frequency noise around 1: (H, W, 1) float32."""
    small = rng.normal(0.0, 1.0, (max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return (1.0 + amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))[..., None]


def _windows(img, rng, x0, y0, x1, y1, lit_share, warm):
    """A grid of windows on a facade rectangle; some lit warm, the rest dark glass."""
    cols, rows = int(rng.integers(2, 7)), int(rng.integers(2, 6))
    gw, gh = (x1 - x0) / cols, (y1 - y0) / rows
    for r in range(rows):
        for c in range(cols):
            if rng.uniform() < 0.12:
                continue
            lit = rng.uniform() < lit_share
            colour = (
                _rgb(warm + rng.uniform(-0.03, 0.03), rng.uniform(0.3, 0.7), rng.uniform(0.75, 1.0))
                if lit
                else (_rgb(0.6, 0.3, rng.uniform(0.05, 0.18)))
            )
            a = (x0 + (c + 0.2) * gw, y0 + (r + 0.2) * gh)
            b = (x0 + (c + 0.8) * gw, y0 + (r + 0.75) * gh)
            _poly(img, [a, (b[0], a[1]), b, (a[0], b[1])], colour)


def _lamp_post(img, rng, x, foot_y, height, lamps):
    pole = _rgb(0, 0, rng.uniform(0.15, 0.3))
    cv2.line(img, (int(x), int(foot_y)), (int(x), int(foot_y - height)), pole, max(1, int(height * 0.025)), cv2.LINE_AA)
    head = (x + rng.choice([-1, 1]) * 0.12 * height, foot_y - height)
    cv2.line(img, (int(x), int(head[1])), (int(head[0]), int(head[1])), pole, max(1, int(height * 0.02)), cv2.LINE_AA)
    colour = _rgb(rng.uniform(0.07, 0.14), rng.uniform(0.3, 0.8), 1.0)
    cv2.circle(img, (int(head[0]), int(head[1] + 0.03 * height)), max(2, int(0.035 * height)), colour, -1, cv2.LINE_AA)
    lamps.append({"xy": [float(head[0]), float(head[1] + 0.03 * height)], "r": float(height * 0.9), "rgb": colour})


def _car(img, rng, x, y, w):
    """A parked car seen from the side: body, cabin with dark windows, wheels."""
    h = 0.32 * w
    body = _rgb(rng.uniform(), rng.uniform(0, 0.7), rng.uniform(0.2, 0.8))

    def side(corners, colour):  # corners as (share of w from x, share of h above y)
        _poly(img, [(x + u * w, y - v * h) for u, v in corners], colour)

    side([(0, 0.25), (1, 0.25), (1, 0.75), (0, 0.7)], body)
    side([(0.22, 0.7), (0.32, 1.15), (0.7, 1.15), (0.82, 0.72)], tuple(0.8 * c for c in body))
    side([(0.27, 0.72), (0.35, 1.05), (0.68, 1.05), (0.76, 0.74)], _rgb(0.6, 0.3, 0.12))
    for wx in (x + 0.2 * w, x + 0.8 * w):
        cv2.circle(img, (int(wx), int(y - 0.22 * h)), max(2, int(0.2 * h)), (15.0, 15.0, 15.0), -1, cv2.LINE_AA)
        cv2.circle(img, (int(wx), int(y - 0.22 * h)), max(1, int(0.09 * h)), (90.0, 90.0, 90.0), -1, cv2.LINE_AA)


def _converging(img, rng, vp, y0, h, w, colour, n, k=0.6):
    """Lines from the bottom edge to the vanishing point (tiles, planks, lanes)."""
    for x in np.linspace(-w, 2 * w, n):
        a = (x, h)
        b = (vp[0] + (x - vp[0]) * 0.02, vp[1])
        t = (y0 - b[1]) / max(1e-3, a[1] - b[1])
        start = (b[0] + (a[0] - b[0]) * t, y0)
        cv2.line(img, (int(start[0]), int(start[1])), (int(a[0]), int(a[1])), colour, 1, cv2.LINE_AA)
    for z in range(1, 12):  # depth lines spaced as 1/z
        y = vp[1] + (h - vp[1]) * (1.0 / (1 + k * (12 - z))) ** 0.9
        if y > y0:
            cv2.line(img, (0, int(y)), (w, int(y)), colour, 1, cv2.LINE_AA)


# --------------------------------------------------------------------------------------------- scenes
def _street(img, rng, w, h, hy, vx, lamps):
    img[:] = _vgradient(
        h,
        w,
        _rgb(rng.uniform(0.55, 0.75), 0.5, rng.uniform(0.08, 0.2)),
        _rgb(rng.uniform(0.05, 0.1), 0.5, rng.uniform(0.25, 0.5)),
    )
    x = -rng.uniform(0, 0.2) * w
    while x < w:  # facades along the far side of the street
        bw = rng.uniform(0.15, 0.35) * w
        top = hy - rng.uniform(0.15, 0.45) * h
        colour = _rgb(rng.uniform(0.0, 0.15), rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.6))
        _poly(img, [(x, top), (x + bw, top), (x + bw, hy + 0.04 * h), (x, hy + 0.04 * h)], colour)
        _windows(
            img,
            rng,
            x + 0.05 * bw,
            top + 0.05 * h,
            x + 0.95 * bw,
            hy - 0.02 * h,
            rng.uniform(0.1, 0.6),
            rng.uniform(0.08, 0.15),
        )
        x += bw + rng.uniform(0, 0.04) * w
    pavement = _rgb(0.08, 0.1, rng.uniform(0.35, 0.55))
    _poly(img, [(0, hy + 0.04 * h), (w, hy + 0.04 * h), (w, h), (0, h)], pavement)
    road = _rgb(0.6, 0.05, rng.uniform(0.18, 0.3))
    left, right = rng.uniform(-0.6, 0.3) * w, rng.uniform(0.7, 1.6) * w
    _poly(img, [(vx - 0.05 * w, hy + 0.05 * h), (vx + 0.05 * w, hy + 0.05 * h), (right, h), (left, h)], road)
    for k in range(8):  # centre dashes, longer and wider as they come closer
        t0, t1 = (k / 8) ** 1.6, ((k + 0.45) / 8) ** 1.6
        xa, ya = vx + ((left + right) / 2 - vx) * t0, hy + 0.05 * h + (h - hy) * t0
        xb, yb = vx + ((left + right) / 2 - vx) * t1, hy + 0.05 * h + (h - hy) * t1
        cv2.line(
            img, (int(xa), int(ya)), (int(xb), int(yb)), (200.0, 195.0, 170.0), max(1, int(1 + 4 * t1)), cv2.LINE_AA
        )
    for _ in range(int(rng.integers(1, 4))):
        _car(img, rng, rng.uniform(-0.1, 0.8) * w, hy + rng.uniform(0.12, 0.3) * h, rng.uniform(0.18, 0.35) * w)
    for _ in range(int(rng.integers(1, 4))):
        _lamp_post(img, rng, rng.uniform(0, w), hy + rng.uniform(0.1, 0.4) * h, rng.uniform(0.4, 0.7) * h, lamps)


def _room(img, rng, w, h, hy, vx, lamps):
    wall = _rgb(rng.uniform(0, 1), rng.uniform(0.05, 0.35), rng.uniform(0.45, 0.85))
    side = tuple(0.75 * c for c in wall)
    floor = _rgb(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.65))
    ceiling = tuple(0.9 * c for c in wall)
    bx0, bx1 = vx - rng.uniform(0.3, 0.5) * w, vx + rng.uniform(0.3, 0.5) * w  # the back wall
    by0, by1 = hy - rng.uniform(0.3, 0.5) * h, hy + rng.uniform(0.08, 0.2) * h
    img[:] = ceiling
    _poly(img, [(0, h), (w, h), (bx1, by1), (bx0, by1)], floor)
    _converging(img, rng, (vx, by1), by1, h, w, tuple(0.75 * c for c in floor), int(rng.integers(6, 16)), 0.5)
    _poly(img, [(0, 0), (bx0, by0), (bx0, by1), (0, h)], side)
    _poly(img, [(w, 0), (bx1, by0), (bx1, by1), (w, h)], side)
    _poly(img, [(bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1)], wall)
    if rng.uniform() < 0.7:  # a window onto the night, or a door
        x0 = rng.uniform(bx0, bx1 - 0.2 * (bx1 - bx0))
        ww, wh = rng.uniform(0.15, 0.3) * (bx1 - bx0), rng.uniform(0.3, 0.5) * (by1 - by0)
        y0 = by0 + rng.uniform(0.1, 0.3) * (by1 - by0)
        _poly(
            img,
            [(x0 - 3, y0 - 3), (x0 + ww + 3, y0 - 3), (x0 + ww + 3, y0 + wh + 3), (x0 - 3, y0 + wh + 3)],
            (230.0, 230.0, 225.0),
        )
        _poly(img, [(x0, y0), (x0 + ww, y0), (x0 + ww, y0 + wh), (x0, y0 + wh)], _rgb(0.62, 0.5, rng.uniform(0.1, 0.3)))
        cv2.line(img, (int(x0 + ww / 2), int(y0)), (int(x0 + ww / 2), int(y0 + wh)), (200.0, 200.0, 195.0), 2)
    dx = rng.uniform(bx0, bx1 - 0.15 * (bx1 - bx0))
    door = _rgb(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.55))
    _poly(
        img,
        [
            (dx, by1 - 0.75 * (by1 - by0)),
            (dx + 0.13 * (bx1 - bx0), by1 - 0.75 * (by1 - by0)),
            (dx + 0.13 * (bx1 - bx0), by1),
            (dx, by1),
        ],
        door,
    )
    for _ in range(int(rng.integers(1, 4))):  # furniture: boxes standing on the floor
        fx, fw = rng.uniform(-0.1, 0.9) * w, rng.uniform(0.1, 0.3) * w
        fy = rng.uniform(by1 + 0.05 * h, h)
        fh = rng.uniform(0.1, 0.3) * h
        c = _rgb(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.7))
        _poly(img, [(fx, fy - fh), (fx + fw, fy - fh), (fx + fw, fy), (fx, fy)], c)
        _poly(
            img,
            [(fx, fy - fh), (fx + fw, fy - fh), (fx + 0.9 * fw, fy - 1.15 * fh), (fx + 0.1 * fw, fy - 1.15 * fh)],
            tuple(min(255.0, 1.2 * v) for v in c),
        )
    lx = rng.uniform(0.2, 0.8) * w
    cv2.circle(img, (int(lx), int(0.06 * h)), max(3, int(0.03 * h)), (255.0, 240.0, 200.0), -1, cv2.LINE_AA)
    lamps.append({"xy": [float(lx), float(0.06 * h)], "r": float(0.8 * h), "rgb": (255.0, 235.0, 190.0)})


def _yard(img, rng, w, h, hy, vx, lamps):
    img[:] = _vgradient(h, w, _rgb(0.65, 0.5, rng.uniform(0.05, 0.15)), _rgb(0.6, 0.35, rng.uniform(0.2, 0.4)))
    for x in np.arange(-0.05 * w, 1.05 * w, rng.uniform(0.04, 0.08) * w):  # a tree line
        r = rng.uniform(0.05, 0.12) * h
        cv2.circle(
            img, (int(x), int(hy - rng.uniform(0.02, 0.12) * h)), int(r), _rgb(0.3, 0.5, rng.uniform(0.1, 0.25)), -1
        )
    grass = _rgb(rng.uniform(0.2, 0.3), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.45))
    _poly(img, [(0, hy), (w, hy), (w, h), (0, h)], grass)
    path = _rgb(0.08, 0.15, rng.uniform(0.35, 0.55))
    px = rng.uniform(0.2, 0.8) * w
    _poly(img, [(vx - 0.02 * w, hy), (vx + 0.02 * w, hy), (px + 0.25 * w, h), (px - 0.25 * w, h)], path)
    if rng.uniform() < 0.7:  # a fence across the middle distance
        fy, fh = hy + rng.uniform(0.0, 0.08) * h, rng.uniform(0.08, 0.16) * h
        wood = _rgb(rng.uniform(0.05, 0.1), rng.uniform(0.2, 0.5), rng.uniform(0.3, 0.6))
        for x in np.arange(0, w, rng.uniform(0.015, 0.03) * w):
            cv2.line(img, (int(x), int(fy)), (int(x), int(fy - fh)), wood, max(1, int(0.008 * w)))
        cv2.line(img, (0, int(fy - 0.7 * fh)), (w, int(fy - 0.7 * fh)), wood, max(1, int(0.006 * w)))
    hx = rng.choice([-0.1, 0.7]) * w  # a house wall with a lit window
    hw, top = rng.uniform(0.3, 0.45) * w, hy - rng.uniform(0.25, 0.45) * h
    _poly(
        img,
        [(hx, top), (hx + hw, top), (hx + hw, hy + 0.06 * h), (hx, hy + 0.06 * h)],
        _rgb(rng.uniform(0, 0.15), rng.uniform(0.1, 0.4), rng.uniform(0.35, 0.65)),
    )
    _windows(img, rng, hx + 0.1 * hw, top + 0.1 * h, hx + 0.9 * hw, hy - 0.02 * h, 0.5, 0.11)
    _lamp_post(img, rng, hx + rng.uniform(0.1, 0.9) * hw, hy + 0.05 * h, 0.35 * h, lamps)


def _carpark(img, rng, w, h, hy, vx, lamps):
    img[:] = _vgradient(h, w, _rgb(0.6, 0.2, rng.uniform(0.1, 0.25)), _rgb(0.6, 0.1, rng.uniform(0.3, 0.45)))
    concrete = _rgb(0.1, 0.05, rng.uniform(0.35, 0.6))
    _poly(img, [(0, hy - 0.3 * h), (w, hy - 0.3 * h), (w, hy), (0, hy)], tuple(0.8 * c for c in concrete))
    for x in np.linspace(0, w, int(rng.integers(3, 6))):  # pillars
        cv2.rectangle(img, (int(x - 0.03 * w), 0), (int(x + 0.03 * w), int(hy)), tuple(0.9 * c for c in concrete), -1)
    _poly(img, [(0, hy), (w, hy), (w, h), (0, h)], tuple(0.6 * c for c in concrete))
    _converging(img, rng, (vx, hy), hy, h, w, tuple(0.9 * c for c in concrete), int(rng.integers(4, 8)), 0.4)
    for _ in range(int(rng.integers(1, 4))):
        _car(img, rng, rng.uniform(-0.1, 0.8) * w, hy + rng.uniform(0.05, 0.2) * h, rng.uniform(0.2, 0.35) * w)
    for x in rng.uniform(0, w, int(rng.integers(2, 5))):  # strip lights on the ceiling
        cv2.rectangle(img, (int(x), int(0.05 * h)), (int(x + 0.08 * w), int(0.07 * h)), (240.0, 250.0, 255.0), -1)
        lamps.append({"xy": [float(x + 0.04 * w), float(0.06 * h)], "r": float(0.6 * h), "rgb": (235.0, 245.0, 255.0)})


PAINTERS = {"street": _street, "room": _room, "yard": _yard, "carpark": _carpark}


# ------------------------------------------------------------------------------------------- builders
def procedural_scene(
    rng: np.random.Generator, size: tuple[int, int], kind: str | None = None, floor_from: float | None = None
) -> tuple[np.ndarray, dict]:
    """Paint one night scene (before darkening: it is lit like a dim interior or a street at dusk).

    Args:
        rng: the only source of randomness.
        size: (W, H) of the image.
        kind: one of ``SCENE_KINDS``; None draws one.
        floor_from: an image row (px) that must already be floor (where a person's feet are); None: any.

    Returns:
        ``(image, info)``: uint8 (H, W, 3) RGB and ``{"kind", "horizon", "lamps": [{"xy", "r", "rgb"}]}``
        with the lamps in image pixels.
    """
    if kind is None:
        kind = SCENE_KINDS[int(rng.integers(len(SCENE_KINDS)))]
    if kind not in PAINTERS:
        raise ValueError(f"unknown scene kind {kind!r}; known: {', '.join(SCENE_KINDS)}")
    w, h = size
    img = np.zeros((h, w, 3), np.float32)
    hy, vx = rng.uniform(0.3, 0.55) * h, rng.uniform(0.25, 0.75) * w  # horizon and vanishing point
    if floor_from is not None:  # a room's floor starts up to 0.2 h below its horizon, at the back wall
        hy = max(0.08 * h, min(hy, floor_from - (0.24 if kind == "room" else 0.08) * h))
    lamps: list = []
    PAINTERS[kind](img, rng, w, h, hy, vx, lamps)
    img *= _texture(rng, h, w, 24, rng.uniform(0.03, 0.1)) * _texture(rng, h, w, 4, 0.04)  # stains, then grain
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    info = {"kind": kind, "horizon": round(hy / h, 3), "lamps": lamps}
    return np.clip(img, 0, 255).astype(np.uint8), info
