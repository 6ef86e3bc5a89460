"""Strong training augmentation (``dtcm train --augment strong``): what a clip may look like on a real camera.

Time: a playback speed and a per-frame jitter of the frame indices. Space: a random scale-and-crop (a zoom),
a horizontal flip. Look: brightness, gamma, contrast, saturation, per-channel gain (a white-balance error),
Gaussian blur. Every draw comes from the dataset's per-item ``torch.Generator`` (``ClipDataset.generator``),
so a clip depends only on ``(seed, epoch, index)``; ``"none"`` (the default) leaves training as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = ["AUGMENTS", "StrongAugment", "build_augment"]

LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class StrongAugment:
    """Random speed, jitter, scale-and-crop, flip, colour, gamma, contrast and blur of one training clip."""

    speed: tuple[float, float] = (0.7, 1.5)  # playback speed, drawn log-uniformly (1: the filmed speed)
    jitter: float = 0.15  # chance that a frame index moves one frame back or forward
    scale: tuple[float, float] = (0.5, 1.0)  # crop side as a share of the frame's short side
    aspect: tuple[float, float] = (0.8, 1.25)  # crop width / height before the resize to a square
    flip: float = 0.5  # chance of a horizontal flip
    brightness: float = 0.35  # gain exp(U(-b, b)) on every channel
    gamma: tuple[float, float] = (0.6, 1.6)  # x ** gamma, drawn log-uniformly
    contrast: float = 0.3  # (x - mean) * U(1 - c, 1 + c) + mean
    saturation: float = 0.4  # blend with the luma by U(1 - s, 1 + s)
    channel: float = 0.12  # per-channel gain exp(N(0, c)): a white-balance error
    blur: float = 0.3  # chance of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.4, 1.6)  # its sigma in pixels

    def indices(self, n: int, clip_len: int, rng: torch.Generator) -> np.ndarray:
        """``clip_len`` frame indices into ``n`` frames at a random speed and start, looping when short."""
        speed = math.exp(_uniform(rng, math.log(self.speed[0]), math.log(self.speed[1])))
        span = (clip_len - 1) * speed + 1
        start = _uniform(rng, 0.0, max(n - span, 0.0))
        t = start + speed * np.arange(clip_len)
        moved = (torch.rand(clip_len, generator=rng) < self.jitter).numpy()
        step = torch.randint(0, 2, (clip_len,), generator=rng).numpy() * 2 - 1  # -1 or +1
        t = np.maximum.accumulate(np.clip(np.round(t) + moved * step, 0, None))  # never backwards in time
        if span <= n:  # the clip fits: stay inside the video
            return np.minimum(t, n - 1).astype(np.int64)
        return t.astype(np.int64) % max(n, 1)  # shorter than the clip: loop, as ClipDataset does

    def __call__(self, frames: np.ndarray, crop: int, rng: torch.Generator) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> float32 (3, T, crop, crop) on [0, 1]."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        t, h, w, _ = frames.shape
        side = min(h, w) * _uniform(rng, *self.scale)
        ratio = math.exp(_uniform(rng, math.log(self.aspect[0]), math.log(self.aspect[1])))
        ch, cw = min(h, max(1, round(side / math.sqrt(ratio)))), min(w, max(1, round(side * math.sqrt(ratio))))
        y0, x0 = _randint(rng, h - ch + 1), _randint(rng, w - cw + 1)
        flip = _uniform(rng, 0, 1) < self.flip
        sigma = _uniform(rng, *self.blur_sigma) if _uniform(rng, 0, 1) < self.blur else 0.0
        out = np.empty((t, crop, crop, 3), np.uint8)
        for i, frame in enumerate(frames):
            f = cv2.resize(frame[y0 : y0 + ch, x0 : x0 + cw], (crop, crop), interpolation=cv2.INTER_AREA)
            if sigma > 0:
                f = cv2.GaussianBlur(f, (0, 0), sigma)
            out[i] = f[:, ::-1] if flip else f
        x = torch.from_numpy(out).permute(3, 0, 1, 2).float().div_(255)  # (3, T, crop, crop)
        gain = math.exp(_uniform(rng, -self.brightness, self.brightness))
        gain = gain * torch.exp(torch.randn(3, generator=rng) * self.channel).view(3, 1, 1, 1)
        gamma = math.exp(_uniform(rng, math.log(self.gamma[0]), math.log(self.gamma[1])))
        contrast = _uniform(rng, 1 - self.contrast, 1 + self.contrast)
        saturation = _uniform(rng, 1 - self.saturation, 1 + self.saturation)
        x = (x * gain).clamp_(0, 1).pow_(gamma)
        x = (x - x.mean()) * contrast + x.mean()
        luma = torch.einsum("c,cthw->thw", LUMA, x)  # (T, crop, crop)
        x = luma + (x - luma) * saturation
        return x.clamp_(0, 1).contiguous()


def _uniform(rng: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=rng))


def _randint(rng: torch.Generator, high: int) -> int:
    return int(torch.randint(high, (1,), generator=rng)) if high > 1 else 0


AUGMENTS = {"none": None, "strong": StrongAugment}  # --augment's choices


def build_augment(name: str) -> StrongAugment | None:
    """The augmentation called ``name`` (one of ``AUGMENTS``); None for ``"none"``."""
    if name not in AUGMENTS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {name!r}")
    cls = AUGMENTS[name]
    return cls() if cls is not None else None
