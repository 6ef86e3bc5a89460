"""Drawing with cv2: the pinhole camera, v1's capsule/sphere/box painter and the helpers both versions use.

Everything is drawn on a canvas ``SS`` times the output size (anti-aliased, fixed-point coordinates with
cv2's ``shift=4``) and box-filtered down by the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dtcm.synthetic.body import _unit

__all__ = ["SS", "Camera", "draw_frame", "look_at"]

SS = 2  # drawing supersampling factor


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


Camera = _Camera
look_at = _look_at
draw_frame = _draw_frame
