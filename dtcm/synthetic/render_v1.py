"""v1 of DarkActions-synth, kept exactly: capsule figures over a panning crop of real footage.

``render_v1`` draws what the renderer drew before v2 for the same generator state when it is given the
same footage when it is given (``backgrounds`` or ``$DTCM_REAL_FOOTAGE``); without it, a procedural scene.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dtcm.synthetic.actions import ACTION_FUNCS, ACTIONS
from dtcm.synthetic.backgrounds import Source, background_v1, footage, plate
from dtcm.synthetic.body import _figure_prims, _sample_body, _solve
from dtcm.synthetic.draw import SS, _draw_frame, _prim_points
from dtcm.synthetic.staging import background_pan, focus, key_light, orbit

__all__ = ["render_v1"]


def _fit(rng, shot, figures, props, canvas) -> float:
    """Focus the shot so the figure's height is a random share of the frame and everything stays inside it."""
    W, H = canvas
    fig_h, lo, hi = 0.0, np.full(2, np.inf), np.full(2, -np.inf)
    for cam, fig, prop in zip(shot.cams, figures, props, strict=True):
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
    focus(shot, f, cx, cy)
    return f


def render_v1(name: str, rng: np.random.Generator, num_frames: int, fps: float, size, source: Source | None):
    """v1's ``(frames (T, H, W, 3) uint8, meta)`` for a validated action name (see ``render_clip``)."""
    w, h = size
    t = np.arange(num_frames) / fps
    body = _sample_body(rng)
    speed = rng.uniform(0.8, 1.25)
    anim = ACTION_FUNCS[name](t, body, rng, speed)
    joints = _solve(anim.poses, body, anim.mode, anim.speed, t)
    figures = [_figure_prims(j, body) for j in joints]
    props = [anim.props(i, j) if anim.props else [] for i, j in enumerate(joints)]

    shot = orbit(rng, anim, joints, body.height)
    W, H = w * SS, h * SS
    f = _fit(rng, shot, figures, props, (W, H))
    pan = background_pan(rng, shot)
    if source is not None:
        bg, bg_info = background_v1(rng, footage(source), num_frames, fps, pan / SS, (W, H))
    else:  # a plain clone: v1's motion and figures over a painted scene (not the clips v1 made with footage)
        backdrop = plate(rng, None, num_frames, fps, pan, (W, H))
        bg, bg_info = backdrop.frames, backdrop.info

    light2d, light3d, illum = key_light(rng, shot.rot)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        cam, j = shot.cams[i], joints[i]
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
        "azimuth": round(shot.azimuth, 1),
        "elevation": round(shot.elevation, 1),
        "distance_m": round(shot.distance, 2),
        "focal_px": round(float(f) / SS, 1),
        "track": round(shot.track, 3),
        "mode": anim.mode,
        "background": bg_info,
    }
    return frames, meta
