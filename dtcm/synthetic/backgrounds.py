"""Backgrounds: procedural night scenes by default, real footage or photographs only when a folder is given.

:func:`resolve_backgrounds` decides the source: the ``backgrounds`` argument, else ``$DTCM_REAL_FOOTAGE`` (an
alias), else none (procedural scenes, so a plain clone works); v1's clips over real footage (the shipped weights'
data) come back when that footage is given. A folder may hold videos
and photographs, at any depth; v2 pans over a crop of one of them (or of a painted scene) per clip.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dtcm.checks import IMAGE_SUFFIXES
from dtcm.checks import SCAN_VIDEO_SUFFIXES as VIDEO_SUFFIXES  # footage of any container a scan reads
from dtcm.synthetic.scenes import procedural_scene

__all__ = [
    "FOOTAGE_ENV",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Plate",
    "Source",
    "footage_dir",
    "plate",
    "resolve_backgrounds",
    "texture_patch",
]

FOOTAGE_ENV = "DTCM_REAL_FOOTAGE"  # an alias of the backgrounds argument / --backgrounds
FOOTAGE_SIZE = (256, 192)  # (W, H) real footage is cached at
MAX_FILES = 5000  # files of a backgrounds folder that are looked at


@dataclass(frozen=True)
class Source:
    """Real backgrounds: the videos and photographs found under ``root`` (sorted paths)."""

    root: str
    videos: tuple[str, ...]
    images: tuple[str, ...]


@dataclass
class Plate:
    """One clip's background: frames at the canvas size, the lamps in them (per frame) and what was drawn."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    lamps: list  # [{"xy": (T, 2) canvas px, "r": px, "rgb": (3,)}]
    info: dict
    horizon: float | None = None  # canvas px of a painted scene's horizon; None for real pictures
    outdoor: bool = False  # a painted street, yard or car park (cars may drive by)


# --------------------------------------------------------------------------------------------- source
def footage_dir() -> Path | None:
    """Where real footage was set to live: ``$DTCM_REAL_FOOTAGE`` (a file or folder), else None (no default)."""
    env = os.environ.get(FOOTAGE_ENV)
    return Path(env) if env else None


@functools.lru_cache(maxsize=8)
def _scan(path: str) -> Source:
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())[:MAX_FILES]
    videos = tuple(str(p) for p in files if p.suffix.lower() in VIDEO_SUFFIXES)
    images = tuple(str(p) for p in files if p.suffix.lower() in IMAGE_SUFFIXES)
    if not videos and not images:
        raise FileNotFoundError(
            f"no videos ({', '.join(VIDEO_SUFFIXES)}) or photographs ({', '.join(IMAGE_SUFFIXES)}) under {root}"
        )
    return Source(str(root), videos, images)


def resolve_backgrounds(backgrounds: str | os.PathLike | None = None, version: int = 2) -> Source | None:
    """The real backgrounds to use, or None for procedural scenes.

    Args:
        backgrounds: a folder (or one file) of videos and/or photographs; None: ``$DTCM_REAL_FOOTAGE`` if
            set, else procedural scenes.
        version: the dataset version asking.

    Returns:
        A :class:`Source`, or None.
    """
    if backgrounds is not None:
        path, what = Path(backgrounds), "backgrounds"
    elif os.environ.get(FOOTAGE_ENV):
        path, what = Path(os.environ[FOOTAGE_ENV]), f"${FOOTAGE_ENV}"
    else:
        return None
    if not path.exists():
        raise FileNotFoundError(
            f"{what} {path} does not exist; give a folder of videos or photographs, "
            f"or leave {FOOTAGE_ENV} unset and pass no backgrounds for procedural scenes"
        )
    return _scan(str(path))


@functools.lru_cache(maxsize=8)
def _load_video(path: str) -> tuple[np.ndarray, float]:
    """Every frame of one video at ``FOOTAGE_SIZE``: ((N, H, W, 3) RGB, fps)."""
    import av

    w, h = FOOTAGE_SIZE
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or 25)
        frames = [fr.to_ndarray(format="rgb24", width=w, height=h) for fr in container.decode(stream)]
    if not frames:
        raise FileNotFoundError(f"the video {path} holds no decodable frames")
    return np.stack(frames), fps  # (N, H, W, 3)


def footage(source: Source) -> tuple:
    """Every video of ``source`` decoded (v1's background pool): a tuple of ((N, H, W, 3) RGB, fps)."""
    if not source.videos:
        raise FileNotFoundError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) under {source.root}; v1 needs footage")
    return tuple(_load_video(v) for v in source.videos)


@functools.lru_cache(maxsize=32)
def _load_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read the photograph {path}")
    scale = 640 / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return img[..., ::-1].copy()  # BGR -> RGB


def texture_patch(rng: np.random.Generator, source: Source | None, size: int = 64) -> np.ndarray | None:
    """A (size, size) float32 luminance patch around 1 cut from a real photograph or frame, or None."""
    if source is None:
        return None
    if source.images:
        img = _load_image(source.images[int(rng.integers(len(source.images)))])
    else:
        frames, _ = _load_video(source.videos[int(rng.integers(len(source.videos)))])
        img = frames[int(rng.integers(len(frames)))]
    h, w = img.shape[:2]
    c = int(min(h, w) * rng.uniform(0.15, 0.4))
    y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
    g = cv2.cvtColor(np.ascontiguousarray(img[y : y + c, x : x + c]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
    return (g / max(1.0, float(g.mean()))).clip(0.3, 1.8)


# ----------------------------------------------------------------------------------------- v1 footage
def background_v1(rng, videos, num_frames, fps, pan_px, size) -> tuple[np.ndarray, dict]:
    """(T, H, W, 3) uint8 crops of the real footage, panning ``pan_px`` output px per frame (+ drift)."""
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


# ------------------------------------------------------------------------------------------- v2 plate
def plate(
    rng: np.random.Generator, source: Source | None, num_frames: int, fps: float, pan_px: float, size, feet_y=None
) -> Plate:
    """v2's background: a crop of a painted scene, a photograph or a video, panning ``pan_px`` px per frame.

    Args:
        rng: the only source of randomness.
        source: real backgrounds, or None for procedural scenes.
        num_frames: T.
        fps: the clip's frame rate (videos are resampled to it).
        pan_px: horizontal pan in canvas px per frame (the parallax of the camera's tracking).
        size: (W, H) of the canvas.
        feet_y: the highest canvas row a person's feet reach; a painted scene puts its floor there.
    """
    w, h = size
    sw, sh = int(w * 1.35), int(h * 1.15)  # room to pan
    lamps, kind = [], "procedural"
    if source is not None and (not source.images or (source.videos and rng.uniform() < 0.5)):
        kind = "video"
        k = int(rng.integers(len(source.videos)))
        frames, vfps = _load_video(source.videos[k])
        rate = vfps / fps
        start = rng.uniform(0, max(0.0, len(frames) - 1 - rate * (num_frames - 1)))
        pick = [min(int(round(start + rate * i)), len(frames) - 1) for i in range(num_frames)]
        src = [frames[j] for j in pick]
        info = {"kind": kind, "file": Path(source.videos[k]).name, "start": round(start, 1)}
    elif source is not None:
        kind = "photo"
        k = int(rng.integers(len(source.images)))
        src = [_load_image(source.images[k])]
        info = {"kind": kind, "file": Path(source.images[k]).name}
    else:
        y_pre = rng.uniform(0, sh - h)  # the crop's top, drawn first so that the floor can meet the feet
        img, scene = procedural_scene(rng, (sw, sh), floor_from=None if feet_y is None else feet_y + y_pre)
        src, info, lamps = [img], {"kind": kind, "scene": scene["kind"], "horizon": scene["horizon"]}, scene["lamps"]
    src_h, src_w = src[0].shape[:2]
    zoom = max(sw / src_w, sh / src_h) * (1.0 if kind == "procedural" else rng.uniform(1.0, 1.6))
    span = abs(pan_px) * (num_frames - 1)
    room_x = max(0.0, src_w * zoom - w)
    vx = math.copysign(min(abs(pan_px), room_x / max(1, num_frames - 1)), pan_px)
    x0 = rng.uniform(0, max(0.0, room_x - min(span, room_x))) + (min(span, room_x) if vx < 0 else 0.0)
    y0 = y_pre if kind == "procedural" else rng.uniform(0, max(0.0, src_h * zoom - h))
    flip = kind != "procedural" and rng.uniform() < 0.5
    gain = 1.0
    if kind != "procedural":  # real pictures: scale to a dim-interior mean before lighting and darkening
        gain = min(4.0, rng.uniform(70, 130) / max(8.0, float(src[0].mean())))  # night footage stays dim
    out = np.empty((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        m = np.array([[zoom, 0, -(x0 + vx * i)], [0, zoom, -y0]])
        img = cv2.warpAffine(
            src[min(i, len(src) - 1)], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        out[i] = cv2.convertScaleAbs(img[:, ::-1] if flip else img, alpha=gain)
    offsets = np.stack([[-(x0 + vx * i), -y0] for i in range(num_frames)])  # (T, 2) scene -> canvas px
    plate_lamps = [lamp | {"xy": np.asarray(lamp["xy"]) * zoom + offsets} for lamp in lamps]
    info |= {"pan": round(vx, 3), "zoom": round(zoom, 3), "flip": bool(flip), "gain": round(gain, 3)}
    if kind != "procedural":
        return Plate(out, plate_lamps, info)
    return Plate(out, plate_lamps, info, info["horizon"] * sh - y0, info["scene"] != "room")
