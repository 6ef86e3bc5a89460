"""Rendering one clip: ``render_clip(action, rng, version=2, options=RenderOptions())``.

v2 films a person with volume and clothes (``figure.py``) acting with their own timing (``actions.py``)
anywhere from a fifth to nine tenths of the frame height, over a painted scene or a real photograph or
video (``backgrounds.py``), under lamps, spotlights or headlights, through a moving handheld camera with
motion blur, sometimes with a second person or a passing car. Every element has a switch in
:class:`RenderOptions`. v1 (``render_v1.py``) is kept exactly as it was.

Example:
    >>> frames, meta = render_clip("Wave", np.random.default_rng(0))
    >>> frames.shape, meta["version"]
    ((40, 128, 170, 3), 2)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields

import cv2
import numpy as np

from dtcm.synthetic.actions import ACTION_FUNCS, ACTIONS, _action_name, actor_style, stylise
from dtcm.synthetic.backgrounds import Source, plate, resolve_backgrounds, texture_patch
from dtcm.synthetic.body import _figure_prims, _sample_body, _solve
from dtcm.synthetic.draw import SS, _draw_frame, _prim_points
from dtcm.synthetic.effects import camera_path, light_norm, light_rig, lit, motion_blur, moving_objects
from dtcm.synthetic.figure import figure_parts, paint_figure, pattern_of, sample_look
from dtcm.synthetic.render_v1 import render_v1
from dtcm.synthetic.staging import Shot, background_pan, focus, key_light, orbit

__all__ = ["FPS", "NUM_FRAMES", "SIZE", "VERSIONS", "RenderOptions", "check_version", "render_clip"]

SIZE = (170, 128)  # (W, H): 4:3, short side 128 as the loaders resize to
NUM_FRAMES = 40  # 2.7 s at 15 fps: any 16-frame window holds >= 1 s of the action
FPS = 15.0
VERSIONS = (1, 2)


def _switch(help_text: str):
    return field(default=True, metadata={"help": help_text})  # on by default; the help is the CLI's


@dataclass(frozen=True)
class RenderOptions:
    """v2's switches: each turns one element of the look off (all on is DarkActions-synth v2)."""

    volume: bool = _switch("filled, shaded bodies with clothes, skin and hair (off: v1's capsules)")
    style: bool = _switch("per-actor tempo drift, amplitude, phase and idle sway (off: v1's clock)")
    framing: bool = _switch("people 20-90 % of the frame height, anywhere (off: v1's 55-85 %, near the centre)")
    camera: bool = _switch("zoom, pan drift and handheld shake (the tracking of walkers stays)")
    lighting: bool = _switch("lamps, spotlights, headlights, flicker (off: flat light)")
    blur: bool = _switch("motion blur (a long shutter)")
    compression: bool = _switch("JPEG blocks after the low-light camera (applied by the dataset writer)")
    distractors: bool = _switch("a second person, a passing car, a ball")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def help(cls, name: str) -> str:
        return next(f.metadata["help"] for f in fields(cls) if f.name == name)


def check_version(version: int, options: RenderOptions | None) -> None:
    """Raise unless ``version`` is one of ``VERSIONS`` and v1 is asked for without v2's switches."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    if version == 1 and options is not None and options != RenderOptions():
        raise ValueError(f"options switch v2's elements and v1 has none, got {options}")


# ---------------------------------------------------------------------------------------------- blocks
def _extent(cam, groups):
    """Canvas bounding box (lo, hi) of point groups ``[(points (N, 3), radius m)]`` seen by ``cam``."""
    pts = np.concatenate([p for p, _ in groups])
    rad = np.concatenate([np.full(len(p), r) for p, r in groups])
    uv, z = cam.project(pts)
    pad = rad / z
    return (uv - pad[:, None] * cam.f).min(0), (uv + pad[:, None] * cam.f).max(0)


def _points(figure, props, volume):
    groups = [(p, 0.0) for _, p, *_ in figure] if volume else [_prim_points(p) for p in figure]
    return groups, [_prim_points(p) for p in props]


def _second_person(rng, t, cams, fps):
    """A passer-by behind the actor: (body, look, per-frame joints offset into the actor's world)."""
    body = _sample_body(rng)
    name = ("Walk", "Walk", "Walk", "Run", "Turn")[int(rng.integers(5))]
    anim = ACTION_FUNCS[name](t, body, rng, rng.uniform(0.8, 1.2))
    yaw = rng.choice([-1.0, 1.0]) * rng.uniform(60, 120) + math.degrees(
        math.atan2(cams[0].rot[2][0], cams[0].rot[2][2])
    )
    poses = [p | {"yaw": p["yaw"] + yaw} for p in anim.poses]
    joints = _solve(poses, body, anim.mode, anim.speed, t)
    fwd = cams[0].rot[2] * [1.0, 0.0, 1.0]
    side = cams[0].rot[0] * [1.0, 0.0, 1.0]
    travel = joints[-1]["pelvis"] - joints[0]["pelvis"]
    offset = fwd * rng.uniform(2.0, 7.0) + side * rng.uniform(-2.5, 2.5) - travel / 2
    moved = [{k: (v + offset if k != "face" else v) for k, v in j.items()} for j in joints]
    return body, sample_look(rng, body), moved, name


def _feet_rows(cams, joints) -> list[float]:
    """The canvas row of the lower ankle in every frame."""
    return [max(c.project(np.stack([j["r_ankle"], j["l_ankle"]]))[0][:, 1]) for c, j in zip(cams, joints, strict=True)]


def _shadow(canvas, cam, j, height, alpha):
    ring = np.array(
        [
            [j["pelvis"][0] + 0.22 * height * math.cos(a), 0.0, j["pelvis"][2] + 0.17 * height * math.sin(a)]
            for a in np.linspace(0, 2 * np.pi, 14)
        ]
    )
    pts = cam.project(ring)[0]
    mask = np.zeros(canvas.shape[:2], np.float32)
    cv2.fillConvexPoly(mask, np.round(pts * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
    canvas *= 1 - alpha * cv2.GaussianBlur(mask, (0, 0), 2.0)[..., None]


@dataclass
class _Actor:
    """The performer of a v2 clip: body, timing, per-frame joints, parts and props, and the look."""

    name: str
    body: object
    speed: float
    clock: np.ndarray  # (T,) the actor's own time
    style: dict
    anim: object
    joints: list
    look: object  # a figure.Look, or None without volume
    figures: list
    props: list


def _cast(name, rng, t, opts: RenderOptions, source: Source | None) -> _Actor:
    body = _sample_body(rng)
    speed = rng.uniform(0.8, 1.25)
    clock, style = actor_style(rng, t) if opts.style else (t, {})
    anim = ACTION_FUNCS[name](clock, body, rng, speed)
    poses = stylise(anim.poses, rng, t, style) if opts.style else anim.poses
    joints = _solve(poses, body, anim.mode, anim.speed, clock)
    look = sample_look(rng, body, texture_patch(rng, source)) if opts.volume else None
    figures = [figure_parts(j, body, look) if opts.volume else _figure_prims(j, body) for j in joints]
    props = [anim.props(i, j) if anim.props else [] for i, j in enumerate(joints)]
    return _Actor(name, body, speed, clock, style, anim, joints, look, figures, props)


def _frame_actor(rng, shot: Shot, actor: _Actor, opts: RenderOptions, canvas) -> tuple[float, float]:
    """Focus the shot: the actor's height a random share of the frame, placed anywhere that keeps them inside.

    Returns ``(share, focal length in canvas px)``.
    """
    W, H = canvas
    fig_h, lo, hi = 0.0, np.full(2, np.inf), np.full(2, -np.inf)
    for cam, fig, prop in zip(shot.cams, actor.figures, actor.props, strict=True):
        body_pts, prop_pts = _points(fig, prop, opts.volume)
        a, b = _extent(cam, body_pts)
        fig_h = max(fig_h, b[1] - a[1])
        if prop_pts:
            pa, pb = _extent(cam, prop_pts)
            a, b = np.minimum(a, pa), np.maximum(b, pb)
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    share = rng.uniform(0.2, 0.9) if opts.framing else rng.uniform(0.55, 0.85)
    room = np.array([0.9, 0.9]) if opts.framing else np.array([0.8, 0.94])  # the camera zoom crops ~5 %
    f = min(share * H / fig_h, room[0] * W / (hi[0] - lo[0]), room[1] * H / (hi[1] - lo[1]))
    slack = room * [W, H] - f * (hi - lo)
    spread = 0.5 * slack if opts.framing else np.minimum(slack, [0.12 * W, 0.1 * H])
    jitter = rng.uniform(-0.5, 0.5, 2) * spread * (2 if opts.framing else 1)
    cx, cy = W / 2 - f * (lo[0] + hi[0]) / 2 + jitter[0], H / 2 - f * (lo[1] + hi[1]) / 2 + jitter[1]
    focus(shot, f, cx, cy)
    return share, f


@dataclass
class _Scene:
    """Everything around the actor: backdrop, lights, camera moves, passers-by and moving objects."""

    backdrop: object  # a backgrounds.Plate
    lights: list
    light_info: dict
    norm: float
    moves: list  # one 2x3 affine per frame
    move_info: dict
    painters: list
    objects: list
    other: tuple | None  # a passer-by: (body, look, joints, action name)


def _dress_set(rng, shot: Shot, actor: _Actor, opts: RenderOptions, source, fps, canvas) -> _Scene:
    """Background pans against the tracking (parallax < 1); then lights, camera moves, passers-by."""
    W, H = canvas
    num_frames = len(shot.cams)
    pan = background_pan(rng, shot)
    feet = _feet_rows(shot.cams, actor.joints)
    other = _second_person(rng, actor.clock, shot.cams, fps) if opts.distractors and rng.uniform() < 0.4 else None
    if other is not None:  # a passer-by stands on the same floor: drop one whose feet would be high up the frame
        other_feet = _feet_rows(shot.cams, other[2])
        other = other if min(other_feet) > 0.45 * H else None
        feet = feet + (other_feet if other is not None else [])
    backdrop = plate(rng, source, num_frames, fps, pan, (W, H), min(feet))
    lights, light_info = light_rig(rng, num_frames, (W, H), backdrop.lamps, opts.lighting)
    norm = light_norm(lights, light_info["ambient"], (W, H)) if lights else 1.0
    moves, move_info = camera_path(rng, num_frames, (W, H), opts.camera)
    horizon = backdrop.horizon if backdrop.outdoor else None
    painters, objects = moving_objects(rng, num_frames, (W, H), horizon) if opts.distractors else ([], [])
    return _Scene(backdrop, lights, light_info, norm, moves, move_info, painters, objects, other)


def _towards_lamp(lights, cam, joint):
    """v2's key light: shade towards the light that reaches the actor most (a lamp above, headlights beside)."""
    if not lights:
        return None

    def towards(_sampled):
        at = cam.project(joint[None])[0][0]
        reach = [li.power[0] * math.exp(-float(np.sum((li.xy[0] - at) ** 2)) / (2 * li.radius**2)) for li in lights]
        direction = lights[int(np.argmax(reach))].xy[0] - at
        return direction / max(float(np.linalg.norm(direction)), 1e-6)

    return towards


def _paint_frame(i, shot: Shot, actor: _Actor, scene: _Scene, light, opts: RenderOptions, size) -> np.ndarray:
    """Frame ``i`` on the supersampled canvas, lit, moved by the camera and box-filtered to ``size``."""
    (w, h), (W, H) = size, (size[0] * SS, size[1] * SS)
    light2d, light3d, illum, print_ = light
    cam, j, height = shot.cams[i], actor.joints[i], actor.body.height
    canvas = scene.backdrop.frames[i].astype(np.float32)  # (H*SS, W*SS, 3)
    for paint in scene.painters:
        paint(canvas, i)
    if scene.other is not None:
        other = scene.other
        paint_figure(canvas, figure_parts(other[2][i], other[0], other[1]), cam, light2d, illum * 0.9)
    _shadow(canvas, cam, j, height, 0.35)
    z_ref = float(cam.project(j["pelvis"][None])[1][0])
    props = actor.props[i]
    if opts.volume:  # props behind the body, the body, props in front of it
        depth = [float(cam.project(_prim_points(p)[0])[1].mean()) for p in props]
        behind = [p for p, d in zip(props, depth, strict=True) if d >= z_ref]
        front = [p for p, d in zip(props, depth, strict=True) if d < z_ref]
        _draw_frame(canvas, behind, cam, light2d, light3d, illum, z_ref, height, None)
        paint_figure(canvas, actor.figures[i], cam, light2d, illum, print_)
        _draw_frame(canvas, front, cam, light2d, light3d, illum, z_ref, height, None)
    else:
        _draw_frame(canvas, actor.figures[i] + props, cam, light2d, light3d, illum, z_ref, height, None)
    canvas = lit(canvas, scene.lights, scene.light_info["ambient"], i, scene.norm)
    canvas = cv2.warpAffine(canvas, scene.moves[i], (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA) + 0.5, 0, 255)


def _meter(frames: np.ndarray, rng) -> np.ndarray:
    """The scene is lit dimly: meter it as the camera would, before the dark model."""
    level = float(frames.mean())
    target = rng.uniform(95, 130)
    if level < target:
        frames = np.clip(frames * np.float32(min(5.0, target / max(level, 1.0))) + 0.5, 0, 255).astype(np.uint8)
    return frames


def _meta_v2(actor: _Actor, shot: Shot, scene: _Scene, opts, fps, size, share, f, blur) -> dict:
    anim, other = actor.anim, scene.other
    meta = {
        "version": 2,
        "action": actor.name,
        "class_id": ACTIONS.index(actor.name),
        "frames": len(actor.joints),
        "fps": fps,
        "size": list(size),
        "speed": round(actor.speed, 3),
        "style": actor.style,
        "height_m": round(actor.body.height, 3),
        "share": round(float(share), 3),
        "azimuth": round(shot.azimuth, 1),
        "elevation": round(shot.elevation, 1),
        "distance_m": round(shot.distance, 2),
        "focal_px": round(float(f) / SS, 1),
        "track": round(shot.track, 3),
        "mode": anim.mode,
        "background": scene.backdrop.info,
        "lights": scene.light_info["lights"],
        "camera_move": scene.move_info,
        "motion_blur": blur,
        "distractors": scene.objects + ([f"person ({other[3]})"] if other is not None else []),
        "options": asdict(opts),
    }
    look = actor.look
    if look is not None:
        meta["look"] = {
            "hair": look.hair_style,
            "legwear": look.legwear,
            "jacket": look.jacket is not None,
            "pattern": look.pattern,
        }
    return meta


def _render_v2(name, rng, num_frames, fps, size, opts: RenderOptions, source: Source | None):
    w, h = size
    canvas = (w * SS, h * SS)
    actor = _cast(name, rng, np.arange(num_frames) / fps, opts, source)
    shot = orbit(rng, actor.anim, actor.joints, actor.body.height)
    share, f = _frame_actor(rng, shot, actor, opts, canvas)
    scene = _dress_set(rng, shot, actor, opts, source, fps, canvas)
    towards = _towards_lamp(scene.lights, shot.cams[0], actor.joints[0]["spine"])
    light2d, light3d, illum = key_light(rng, shot.rot, towards)
    light = (light2d, light3d, illum, pattern_of(actor.look) if actor.look is not None else None)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = _paint_frame(i, shot, actor, scene, light, opts, size)
    frames = _meter(frames, rng)
    blur = 0.0
    if opts.blur:
        frames, blur = motion_blur(frames, rng)
    return frames, _meta_v2(actor, shot, scene, opts, fps, size, share, f, blur)


# -------------------------------------------------------------------------------------------- builders
def render_clip(
    action: str | int,
    rng: np.random.Generator,
    *,
    num_frames: int = NUM_FRAMES,
    fps: float = FPS,
    size: tuple[int, int] = SIZE,
    version: int = 2,
    options: RenderOptions | None = None,
    backgrounds: str | os.PathLike | Source | None = None,
) -> tuple[np.ndarray, dict]:
    """Render one bright clip of a person doing ``action``.

    Args:
        action: a class name of ``ACTIONS`` (any letter case) or its 0-based index.
        rng: the only source of randomness; the same generator state gives the same clip.
        num_frames: T.
        fps: frame rate the motion is timed for.
        size: (W, H) of the frames.
        version: 2 (volumetric people, camera, lights; the default) or 1 (capsule figures, as before).
        options: v2's switches; None is all on. v1 takes none.
        backgrounds: a folder of real videos/photographs (or a resolved :class:`Source`); None:
            ``$DTCM_REAL_FOOTAGE`` if set, else procedural scenes.

    Returns:
        ``(frames, meta)``: uint8 (T, H, W, 3) RGB and a JSON-able dict of the sampled parameters.

    Example:
        >>> frames, meta = render_clip("Jump", np.random.default_rng(7), version=2)
        >>> frames.shape, meta["action"]
        ((40, 128, 170, 3), 'Jump')
    """
    name = _action_name(action)
    if num_frames < 1 or fps <= 0:
        raise ValueError(f"need num_frames >= 1 and fps > 0, got {num_frames} and {fps}")
    check_version(version, options)
    source = backgrounds if isinstance(backgrounds, Source) else resolve_backgrounds(backgrounds, version)
    if version == 1:
        return render_v1(name, rng, num_frames, fps, size, source)
    return _render_v2(name, rng, num_frames, fps, size, options or RenderOptions(), source)
