"""Which frames and which pixels the model sees: clip indices (SPEC A7 dense, A8 uniform) and the crop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtcm.checks import check_frames
from dtcm.video.limits import LIMITS

__all__ = ["ClipTransform", "clip_indices", "to_batch"]


def clip_indices(total: int, num_frames: int, sampling: str = "dense", start: int | None = None) -> np.ndarray:
    """Frame indices for a clip (SPEC A7 dense, A8 uniform), looping a video shorter than the clip.

    Example:
        >>> clip_indices(10, 4, "uniform").tolist()
        [1, 3, 6, 8]
    """
    if total < 1:
        raise ValueError(f"the video has no frames (total={total})")
    if sampling == "uniform":
        return np.minimum(((np.arange(num_frames) + 0.5) * total / num_frames).astype(np.int64), total - 1)
    if sampling != "dense":
        raise ValueError(f"sampling must be 'dense' or 'uniform', got {sampling!r}")
    if start is None:
        start = max(0, (total - num_frames) // 2)
    if not 0 <= start < total:
        raise ValueError(f"start must be in [0, {total}) for this {total}-frame video, got {start}")
    return start + np.arange(num_frames, dtype=np.int64) % min(num_frames, total - start)


@dataclass(frozen=True)
class ClipTransform:
    """Decoded frames -> model input (SPEC A7): short-side resize, then a random (train) or centre crop.

    Call with uint8 (T, H, W, 3) RGB; returns torch float32 (3, T, crop, crop) in [0, 1]. In train
    mode pass ``generator`` (a ``torch.Generator`` or ``numpy.random.Generator``) for a reproducible
    crop; without one torch's global generator is used.
    """

    short_side: int = 128  # frames are resized so the short side is this (SPEC A7)
    crop: int = 112  # square crop fed to the backbone
    train: bool = False  # random crop when True, centre crop otherwise

    def __post_init__(self):
        if not 1 <= self.crop <= self.short_side:
            raise ValueError(f"need 1 <= crop <= short_side, got crop={self.crop}, short_side={self.short_side}")

    def __call__(self, frames: np.ndarray, generator=None):
        import cv2
        import torch

        frames = check_frames(frames, "T")
        t, h, w, _ = frames.shape
        if LIMITS.aspect_problem(w, h):  # the short side's scale would grow the long side with it
            raise ValueError(
                f"frames of {w}x{h} pixels have an aspect ratio beyond the {LIMITS.max_aspect:g}:1 accepted"
            )
        scale = self.short_side / min(h, w)
        nh, nw = max(self.crop, round(h * scale)), max(self.crop, round(w * scale))
        y0, x0 = (nh - self.crop) // 2, (nw - self.crop) // 2
        if self.train:
            y0, x0 = _randint(nh - self.crop + 1, generator), _randint(nw - self.crop + 1, generator)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        out = np.empty((t, self.crop, self.crop, 3), np.uint8)
        for i, frame in enumerate(frames):
            if (nh, nw) != (h, w):
                frame = cv2.resize(frame, (nw, nh), interpolation=interp)
            out[i] = frame[y0 : y0 + self.crop, x0 : x0 + self.crop]
        x = torch.from_numpy(out).permute(3, 0, 1, 2).contiguous()  # (3, T, crop, crop)
        return x.float().div_(255)


def to_batch(frames: np.ndarray, short_side: int = 128, crop: int = 112):
    """Frames (T, H, W, 3) uint8 -> test-mode model input (1, 3, T, crop, crop) float32 in [0, 1]."""
    return ClipTransform(short_side, crop, train=False)(frames).unsqueeze(0)


def _randint(high: int, generator) -> int:
    if high <= 1:
        return 0
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(high))
    import torch

    return int(torch.randint(high, (1,), generator=generator))
