"""The shared validators and file-kind rules: one rule each, imported wherever input is checked.

Video and image suffixes live here and nowhere else. Three video sets differ on purpose: what the apps accept
and advertise is what the decoder is tested on; a folder scan (``dtcm darkness``, ``dtcm quality``) also picks
up the older containers a user's archive holds; a class-folder dataset takes whatever a camera wrote.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DATASET_VIDEO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "LIST_SUFFIXES",
    "SCAN_VIDEO_SUFFIXES",
    "VIDEO_SUFFIXES",
    "check_frames",
    "check_k",
    "files_under",
    "is_image",
    "is_video",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")  # uploads and examples: the containers we test
SCAN_VIDEO_SUFFIXES = (*VIDEO_SUFFIXES, ".m4v", ".mpg", ".mpeg")  # folder scans also read these
DATASET_VIDEO_SUFFIXES = (*SCAN_VIDEO_SUFFIXES, ".wmv", ".flv", ".3gp")  # class folders: any camera's files
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")  # photos OpenCV reads and writes
LIST_SUFFIXES = (".txt", ".csv")  # split lists (ARID, Dark-48, ours)


def is_image(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of ``IMAGE_SUFFIXES`` (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | os.PathLike, suffixes: Sequence[str] = VIDEO_SUFFIXES) -> bool:
    """True when the file name ends in one of ``suffixes`` (any case)."""
    return Path(path).suffix.lower() in suffixes


def files_under(root: str | os.PathLike, suffixes: Sequence[str]) -> list[Path]:
    """``[root]`` for a file, else the files below ``root`` (recursively) with one of ``suffixes``, sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes)


def check_frames(frames, dims: str = "N") -> np.ndarray:
    """Decoded frames as an array, or ValueError unless they are non-empty uint8 ``(dims, H, W, 3)`` RGB."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 ({dims}, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def check_k(k, default: int | None = None) -> int:
    """The frame-sharing factor ``k`` (``default`` when None), or ValueError unless it is an integer >= 1."""
    k = default if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return k
