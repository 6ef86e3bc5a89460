"""Staging a shot, as v1 and v2 both do it: the orbiting, tracking camera, the background pan and the key light.

Every function draws from the generator in the order the renderers always have, so a clip is the same
whichever version's code calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dtcm.synthetic.body import _unit
from dtcm.synthetic.draw import _Camera, _look_at

__all__ = ["Shot", "background_pan", "focus", "key_light", "orbit"]


@dataclass
class Shot:
    """The camera of one clip: where it orbits the actor and the per-frame cameras that track them."""

    azimuth: float  # degrees; 0 = facing the camera
    elevation: float  # degrees
    distance: float  # metres
    track: float  # share of the actor's travel the camera follows
    rot: np.ndarray  # (3, 3) rows: right, up, forward
    pelvis: np.ndarray  # (T, 3) the actor's pelvis on the ground
    cams: list  # one _Camera per frame
    still: _Camera  # the camera that does not track


def orbit(rng: np.random.Generator, anim, joints: list, height: float) -> Shot:
    """Azimuth around the actor, elevation, distance; tracking follows moving actors."""
    # straight from behind (+-30 deg) hides too much of most actions: anim.min_azimuth keeps the camera off it
    az = rng.choice([-1.0, 1.0]) * rng.uniform(anim.min_azimuth, 150)
    el, dist = rng.uniform(0, 25), rng.uniform(4.0, 9.0)
    pelvis = np.stack([j["pelvis"] for j in joints]) * [1.0, 0.0, 1.0]  # (T, 3) on the ground
    centre = pelvis.mean(0) + [0.0, 0.5 * height, 0.0]
    a, e = math.radians(az), math.radians(el)
    cam0 = centre + dist * np.array([math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)])
    rot = _look_at(cam0, centre)
    track = rng.uniform(*anim.track)
    cams = [_Camera(cam0 + track * (p - pelvis.mean(0)), rot) for p in pelvis]
    return Shot(az, el, dist, track, rot, pelvis, cams, _Camera(cam0, rot))


def focus(shot: Shot, f: float, cx: float, cy: float) -> None:
    """Give every camera of the shot the focal length and principal point of the framing."""
    for cam in [*shot.cams, shot.still]:
        cam.f, cam.cx, cam.cy = f, cx, cy


def background_pan(rng: np.random.Generator, shot: Shot) -> float:
    """Canvas px per frame the background pans against the tracking (parallax < 1: it is farther away)."""
    n = len(shot.cams)
    u_still = shot.still.project(shot.pelvis)[0][:, 0] if n > 1 else np.zeros(1)
    u_track = np.array([c.project(p[None])[0][0, 0] for c, p in zip(shot.cams, shot.pelvis, strict=True)])
    return -rng.uniform(0.3, 0.7) * float((u_still - u_track)[-1] - (u_still - u_track)[0]) / max(1, n - 1)


def key_light(rng: np.random.Generator, rot: np.ndarray, towards=None) -> tuple[np.ndarray, np.ndarray, float]:
    """(2D light direction on the canvas, 3D light direction, illumination gain).

    ``towards(light2d)`` may replace the sampled 2D direction (v2 turns it to the strongest lamp).
    """
    ang = math.radians(rng.uniform(-160, -20))
    light2d = np.array([math.cos(ang), math.sin(ang)])
    if towards is not None:
        light2d = towards(light2d)
    light3d = _unit(rot[0] * light2d[0] - rot[1] * light2d[1] - rot[2] * 0.8)
    return light2d, light3d, rng.uniform(0.7, 1.05)
