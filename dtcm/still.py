"""A photo through the service's Recognise and Compare paths: enhanced like a clip, never classified.

Recognition needs motion, so a photo gets the enhancers only; its result has the same keys as a clip's, with
``top5`` empty, ``stc`` None (L_STC needs frames), no RGB-difference maps, and ``note`` saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

__all__ = ["IMAGE_NOTE", "MAX_SIDE", "load_photo", "photo_panels"]

IMAGE_NOTE = "Recognition needs a clip: this is a photo, so it was enhanced but no action was recognised."
MAX_SIDE = 640  # photos are shown and enhanced with their long side at most this


def load_photo(path: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB, shrunk (INTER_AREA) so the long side is at most ``MAX_SIDE``.

    The header's size is checked before decoding (``dtcm.images.check_image``).
    """
    import cv2

    from dtcm.images import read_image

    img = read_image(path)
    s = MAX_SIDE / max(img.shape[:2])
    if s < 1:
        size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))  # (width, height)
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def photo_panels(photo: np.ndarray, enhance: Callable[[np.ndarray], np.ndarray]) -> dict:
    """One enhancer on one photo, in the shape of a clip result: frames, empty diffs and Top-5, a note."""
    t = time.perf_counter()
    out = enhance(photo[None])[0]  # (H, W, 3): enhancers take (T, H, W, 3)
    return {
        "frames_before": [photo],
        "frames_after": [out],
        "diff_before": [],
        "diff_after": [],
        "diff_scale": None,
        "stc": None,
        "top5": [],
        "note": IMAGE_NOTE,
        "seconds": time.perf_counter() - t,
    }
