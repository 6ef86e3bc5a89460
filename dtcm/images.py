"""Still images in and out: jpg, png, bmp and webp as uint8 (H, W, 3) RGB (OpenCV)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dtcm.checks import IMAGE_SUFFIXES, is_image

__all__ = ["IMAGE_SUFFIXES", "is_image", "read_image", "write_image"]


def _check_suffix(path: Path) -> None:
    if not is_image(path):
        raise ValueError(f"{path.name!r} is not an image file name; accepted: {', '.join(IMAGE_SUFFIXES)}")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB (grey and alpha images become 3-channel RGB)."""
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path} could not be decoded as an image ({', '.join(IMAGE_SUFFIXES)})")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write uint8 (H, W, 3) RGB to ``path``; the format follows the suffix (folders are created)."""
    path = Path(path)
    _check_suffix(path)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB, got {image.dtype} {tuple(image.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise OSError(f"could not write {path}")
    return path
