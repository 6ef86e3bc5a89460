"""v2's film look: lights (lamps, spotlights, headlights, flicker), camera moves, motion blur, moving objects.

Lights are soft pools multiplied into the bright frame plus the glow of the lamps themselves, so after
the low-light camera a scene keeps ARID's bright spots over near-black. The camera is a per-frame affine
of the composed canvas (zoom, pan drift, handheld shake); motion blur mixes each frame with its
neighbours as a long shutter would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dtcm.synthetic.scenes import _car

__all__ = ["Light", "camera_path", "light_norm", "light_rig", "lit", "motion_blur", "moving_objects"]

LIGHT_RES = 4  # the light map is computed at 1/4 of the canvas and upsampled


@dataclass
class Light:
    """A soft pool of light: centre (T, 2) canvas px, radius px, colour (3,) 0..1, intensity (T,), glow."""

    kind: str
    xy: np.ndarray
    radius: float
    rgb: np.ndarray
    power: np.ndarray
    glow: float  # radius of the visible source in px (0: the source is off-frame)
    squash: float = 1.0  # pool height / width (a spotlight on the floor is flat)


def _flicker(rng, num_frames) -> np.ndarray:
    """1 with random dips: a failing tube (telegraph) or a mains beat (sine)."""
    if rng.uniform() < 0.5:
        on = rng.uniform(size=num_frames) > rng.uniform(0.1, 0.35)
        return np.where(on, 1.0, rng.uniform(0.1, 0.5))
    return 1 - rng.uniform(0.2, 0.5) * (
        0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(1, 6) / 15 * np.arange(num_frames))
    )


def light_rig(rng: np.random.Generator, num_frames: int, size, lamps: list, enabled: bool = True) -> tuple[list, dict]:
    """The clip's lights (the scene's own lamps plus random extras) and an ambient level.

    Returns:
        ``(lights, info)``; info holds ``ambient`` (3,) and a JSON-able summary.
    """
    w, h = size
    if not enabled:
        return [], {"ambient": np.ones(3), "lights": []}
    tint = np.exp(rng.normal(0.0, 0.1, 3))
    ambient = rng.uniform(0.12, 0.45) * tint / tint.mean()
    lights = []
    for lamp in lamps:
        power = np.full(num_frames, rng.uniform(0.5, 1.1))
        lights.append(
            Light("lamp", np.asarray(lamp["xy"], float), lamp["r"], np.asarray(lamp["rgb"]) / 255, power, 0.02 * h)
        )
    for _ in range(int(rng.integers(0, 3))):
        kind = ("lamp", "spotlight", "headlights")[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
        colour = np.array([1.0, rng.uniform(0.75, 0.95), rng.uniform(0.5, 0.85)])  # sodium to warm white
        if kind == "lamp":
            xy = np.tile([rng.uniform(0, w), rng.uniform(-0.1, 0.45) * h], (num_frames, 1))
            glow = 0.02 * h if xy[0, 1] < 0.2 * h else 0.0  # a visible lamp up high, else light from off-frame
            lights.append(
                Light(kind, xy, rng.uniform(0.3, 0.7) * h, colour, np.full(num_frames, rng.uniform(0.6, 1.2)), glow)
            )
        elif kind == "spotlight":  # a pool on the floor, perhaps sweeping
            start = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.6, 0.95) * h])
            vel = rng.normal(0, 0.004 * w, 2) * [1, 0.3]
            xy = start + vel * np.arange(num_frames)[:, None]
            lights.append(
                Light(
                    kind,
                    xy,
                    rng.uniform(0.2, 0.4) * w,
                    np.array([1.0, 1.0, rng.uniform(0.85, 1.0)]),
                    np.full(num_frames, rng.uniform(0.8, 1.4)),
                    0.0,
                    rng.uniform(0.35, 0.6),
                )
            )
        else:  # a car's headlights crossing the frame low down, glaring
            y, sign = rng.uniform(0.55, 0.85) * h, rng.choice([-1.0, 1.0])
            speed = rng.uniform(0.01, 0.04) * w * sign
            x0 = rng.uniform(0.0, 1.0) * w - speed * num_frames / 2
            for dx in (0.0, 0.06 * w):
                xy = np.stack([x0 + dx + speed * np.arange(num_frames), np.full(num_frames, y)], 1)
                lights.append(
                    Light(
                        kind,
                        xy,
                        rng.uniform(0.15, 0.3) * w,
                        np.array([1.0, 1.0, 0.95]),
                        np.full(num_frames, rng.uniform(0.8, 1.6)),
                        0.015 * h,
                        0.5,
                    )
                )
    if lights and rng.uniform() < 0.3:
        k = int(rng.integers(len(lights)))
        lights[k].power = lights[k].power * _flicker(rng, num_frames)
    info = {"ambient": ambient, "lights": [{"kind": li.kind, "flicker": bool(np.ptp(li.power) > 0)} for li in lights]}
    return lights, info


def _maps(lights, ambient, i, h, w):
    gy, gx = np.mgrid[0:h:LIGHT_RES, 0:w:LIGHT_RES].astype(np.float32)  # (h/4, w/4)
    gain = np.broadcast_to(ambient.astype(np.float32), (*gx.shape, 3)).copy()
    glow = np.zeros_like(gain)
    for li in lights:
        x, y = li.xy[i]
        d2 = (gx - x) ** 2 + ((gy - y) / li.squash) ** 2
        gain += (li.power[i] * np.exp(-d2 / (2 * li.radius**2)))[..., None] * li.rgb.astype(np.float32)
        if li.glow > 0:
            glow += (1.5 * li.power[i] * np.exp(-d2 / (2 * li.glow**2)))[..., None] * li.rgb.astype(np.float32)
    return gain, glow


def light_norm(lights: list, ambient: np.ndarray, size, peak: float = 1.25) -> float:
    """One divisor for the whole clip that keeps the brightest 2 % of the first frame's light below ``peak``."""
    w, h = size
    gain, _ = _maps(lights, ambient, 0, h, w)
    return max(1.0, float(np.percentile(gain.max(-1), 98)) / peak)


def lit(canvas: np.ndarray, lights: list, ambient: np.ndarray, i: int, norm: float = 1.0) -> np.ndarray:
    """Light frame ``i``: canvas (H, W, 3) float32 times (ambient + pools) / norm, plus the sources' glow."""
    h, w = canvas.shape[:2]
    if not lights:
        return canvas * ambient.astype(np.float32)
    gain, glow = _maps(lights, ambient, i, h, w)
    gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR) / np.float32(norm)
    glow = cv2.resize(glow, (w, h), interpolation=cv2.INTER_LINEAR)
    return canvas * gain + 255.0 * glow


def camera_path(rng: np.random.Generator, num_frames: int, size, enabled: bool = True) -> tuple[list, dict]:
    """Per-frame 2x3 affines of the canvas: a slow zoom, a pan drift and handheld shake."""
    w, h = size
    if not enabled:
        return [np.array([[1.0, 0, 0], [0, 1.0, 0]])] * num_frames, {}
    z0 = rng.uniform(1.03, 1.2)
    z1 = z0 * math.exp(rng.normal(0.0, 0.08)) if rng.uniform() < 0.5 else z0
    drift = rng.normal(0.0, 0.0015, 2) * [w, h]  # px per frame
    shake = rng.uniform(0.0, 0.01) * w if rng.uniform() < 0.7 else 0.0
    tt = np.arange(num_frames) / 15.0
    f, ph = rng.uniform(0.5, 3.0, (3, 2)), rng.uniform(0, 2 * math.pi, (3, 2))
    jitter = shake * np.sin(2 * math.pi * f[None] * tt[:, None, None] + ph[None]).sum(1) / math.sqrt(3)  # (T, 2)
    rot = rng.uniform(0.0, 0.6) * np.sin(2 * math.pi * rng.uniform(0.3, 1.5) * tt + rng.uniform(0, 6.3))
    out = []
    for i in range(num_frames):
        z = max(1.0, z0 + (z1 - z0) * i / max(1, num_frames - 1))
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rot[i]) if shake else 0.0, z)
        shift = drift * (i - num_frames / 2) + jitter[i]
        limit = (z - 1) * np.array([w, h]) / 2  # stay inside the canvas
        m[:, 2] += np.clip(shift, -limit, limit)
        out.append(m)
    return out, {"zoom": [round(z0, 3), round(z1, 3)], "shake_px": round(float(shake), 2)}


def motion_blur(frames: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Mix each frame with its neighbours (a long shutter): uint8 (T, H, W, 3) -> same, and the mix weight."""
    a = float(rng.uniform(0.08, 0.28))
    f = frames.astype(np.float32)
    prev, nxt = np.concatenate([f[:1], f[:-1]]), np.concatenate([f[1:], f[-1:]])
    return np.clip((1 - 2 * a) * f + a * (prev + nxt) + 0.5, 0, 255).astype(np.uint8), round(a, 3)


def moving_objects(rng: np.random.Generator, num_frames: int, size, horizon: float | None = None) -> tuple[list, list]:
    """Things crossing the scene: ``(painters, names)``, each painter ``(canvas, i)`` draws frame i.

    A car drives by only on an outdoor painted scene (``horizon``: its canvas px, else None); a ball anywhere.
    """
    w, h = size
    painters, names = [], []
    if horizon is not None and rng.uniform() < 0.35:  # a car driving past in the distance
        y, cw = horizon + rng.uniform(0.03, 0.15) * h, rng.uniform(0.15, 0.3) * w
        v = rng.choice([-1.0, 1.0]) * rng.uniform(0.015, 0.05) * w
        x0, car_rng = rng.uniform(-cw, w) - v * num_frames / 2, int(rng.integers(1 << 31))
        painters.append(lambda c, i: _car(c, np.random.default_rng(car_rng), x0 + v * i, y, cw))
        names.append("car")
    if rng.uniform() < 0.3:  # a ball bouncing across
        r = rng.uniform(0.015, 0.04) * h
        floor, hop = rng.uniform(0.7, 0.95) * h, rng.uniform(0.1, 0.3) * h
        v, x0 = rng.uniform(-0.03, 0.03) * w, rng.uniform(0.1, 0.9) * w
        period, colour = rng.uniform(6, 14), tuple(float(c) for c in rng.uniform(60, 255, 3))

        def ball(c, i):
            y = floor - hop * abs(math.sin(math.pi * i / period))
            cv2.circle(c, (int((x0 + v * i) * 16), int(y * 16)), int(r * 16), colour, -1, cv2.LINE_AA, 4)

        painters.append(ball)
        names.append("ball")
    return painters, names
