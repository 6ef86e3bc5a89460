"""Rawframe folders (mmaction / DarkLight layout): ``img_00001.jpg`` ... (1-based), read with OpenCV as RGB."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

__all__ = ["FRAME_TEMPLATE", "count_rawframes", "read_rawframes"]

FRAME_TEMPLATE = "img_{:05d}.jpg"  # rawframe file names, 1-based (mmaction / DarkLight convention)


def count_rawframes(folder: str) -> int:
    """How many ``img_%05d.jpg`` frames a rawframe folder holds."""
    return len([f for f in os.listdir(folder) if re.fullmatch(r"img_\d{5}\.jpg", f)])


def read_rawframes(folder: str, indices: np.ndarray, short_side: int) -> np.ndarray:
    """Frames ``indices`` (0-based) of a folder of ``img_%05d.jpg`` (1-based) as RGB uint8 (T, H, W, 3)."""
    cache: dict[int, np.ndarray] = {}
    frames = []
    for i in indices.tolist():
        if i not in cache:
            path = os.path.join(folder, FRAME_TEMPLATE.format(i + 1))
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(f"cannot read frame {path}")
            cache[i] = _resize_short(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), short_side)
        frames.append(cache[i])
    return np.stack(frames)  # (T, H, W, 3)


def _resize_short(frame: np.ndarray, short_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if min(h, w) == short_side:
        return frame
    scale = short_side / min(h, w)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))  # (W, H) for cv2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, size, interpolation=interp)
