"""Real photographs for zero-reference enhancer training: still crops and pan/zoom clips filmed in low light.

A folder of photos (e.g. ``enhance_train/``: SICE multi-exposure shots and well-lit sets) is split once,
deterministically, into training and held-out photos. Each sample is either a still crop (B, 3, 1, S, S)
of a photo as it is (SICE's real under- and over-exposures) or filmed by the project's low-light camera
model, or a short clip: a pan and zoom over one photo (a camera moving over a still scene), passed through
the camera model at one exposure from very dark (x0.01) to well lit (x1). Real footage adds clips of moving
scenes (``footage_windows``).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import cv2
import numpy as np

from dtcm.checks import IMAGE_SUFFIXES, files_under
from dtcm.data.synthetic import _darken

__all__ = ["IMAGE_SUFFIXES", "list_photos", "split_photos", "load_photos", "photo_crop", "pan_zoom_clip", "film"]

HOLDOUT_PERCENT = 10  # photos held out for validation, chosen by a hash of the path (SICE: by scene block)
SICE_BLOCK = 50  # SICE files are numbered by scene sequence: hold out whole blocks of 50 numbers
EXPOSURES = (0.01, 1.0)  # camera-model exposure range, log-uniform: very dark to well lit


def list_photos(root: str | Path) -> list[Path]:
    """Every image under ``root`` (recursively), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"photo folder {root} does not exist; pass a folder of jpg/png/bmp/webp photos")
    photos = files_under(root, IMAGE_SUFFIXES)
    if not photos:
        raise ValueError(f"{root} holds no photos; accepted suffixes: {', '.join(IMAGE_SUFFIXES)}")
    return photos


def _held_out(path: Path) -> bool:
    key = f"{path.parent.name}/{path.stem}"
    if path.parent.name.startswith("SICE") and path.stem.isdigit():
        key = f"{path.parent.name}/{int(path.stem) // SICE_BLOCK}"  # a whole block of scenes together
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % 100 < HOLDOUT_PERCENT


def split_photos(photos: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, held_out): about 10 % held out, the same every time for the same file names."""
    held = [p for p in photos if _held_out(p)]
    return [p for p in photos if not _held_out(p)], held


def load_photos(paths: list[Path], long_side: int = 256) -> list[np.ndarray]:
    """Decode photos as uint8 (H, W, 3) RGB, shrunk (INTER_AREA) so the long side is at most ``long_side``."""
    out = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p} could not be decoded as an image")
        h, w = bgr.shape[:2]
        s = long_side / max(h, w)
        if s < 1:
            bgr = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    return out


def photo_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random size x size crop (the photo is upscaled first if smaller), randomly flipped: (S, S, 3)."""
    h, w = img.shape[:2]
    if min(h, w) < size:
        s = size / min(h, w)
        img = cv2.resize(img, (math.ceil(w * s), math.ceil(h * s)), interpolation=cv2.INTER_LINEAR)
        h, w = img.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = img[y : y + size, x : x + size]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def pan_zoom_clip(img: np.ndarray, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A camera pan and zoom over one photo: uint8 (T, S, S, 3), the window moving smoothly frame to frame."""
    h, w = img.shape[:2]
    side0 = min(h, w) * rng.uniform(0.55, 0.8)
    side1 = side0 * rng.uniform(0.85, 1.15)  # zoom in or out
    c0 = np.array([rng.uniform(side0 / 2, w - side0 / 2), rng.uniform(side0 / 2, h - side0 / 2)])
    shift = rng.normal(0, 0.04 * side0, 2) * frames  # a few pixels a frame
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        a = t / max(frames - 1, 1)
        side = side0 + a * (side1 - side0)
        cx, cy = np.clip(c0 + a * shift, side / 2, [w - side / 2, h - side / 2])
        s = size / side  # affine: window centre -> output centre, window side -> size
        m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
        out[t] = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return out


def film(frames: np.ndarray, rng: np.random.Generator, exposure: float | None = None) -> np.ndarray:
    """Film uint8 (T, H, W, 3) frames with the low-light camera model at an exposure (log-uniform default)."""
    if exposure is None:
        lo, hi = np.log(EXPOSURES)
        exposure = float(np.exp(rng.uniform(lo, hi)))
    return _darken(frames, rng, exposure=exposure)[0]
