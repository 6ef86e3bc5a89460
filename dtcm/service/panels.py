"""The pictures a clip result shows: sampled frames and RGB-difference maps, before and after enhancement."""

from __future__ import annotations

import cv2
import numpy as np

from dtcm.service.ui import SHOWN_FRAMES

__all__ = ["rgb_diff_maps"]


def rgb_diff_maps(frames: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Colour-mapped RGB-difference images |f_{t+1} - f_t| (channel mean), all on one scale.

    Args:
        frames: uint8 or float (T, H, W, 3); floats are taken on 0..1.
        scale: the difference that maps to the top of the colour map; default: the 99.5th percentile.
    Returns:
        (uint8 (T - 1, H, W, 3) RGB images, the scale used).
    """
    f = frames.astype(np.float32) / (255.0 if frames.dtype == np.uint8 else 1.0)
    d = np.abs(f[1:] - f[:-1]).mean(axis=-1)  # (T-1, H, W)
    if scale is None:
        scale = float(np.percentile(d, 99.5)) if d.size else 1.0
    scale = max(scale, 1e-6)
    idx = np.clip(d / scale * 255, 0, 255).astype(np.uint8)
    maps = np.stack([cv2.applyColorMap(m, cv2.COLORMAP_INFERNO)[..., ::-1] for m in idx]) if len(idx) else idx
    return np.ascontiguousarray(maps), scale


def pick_frames(n: int, count: int = SHOWN_FRAMES) -> list[int]:
    """At most ``count`` frame indices spread evenly over ``n`` frames, first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n, count))})


def to_uint8(x) -> np.ndarray:
    """(1, 3, T, H, W) float tensor in [0, 1] -> uint8 (T, H, W, 3)."""
    return (x[0].permute(1, 2, 3, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()


def mean_luma(frames: np.ndarray) -> float:
    """Mean grey level (0..255) of uint8 (T, H, W, 3) RGB frames."""
    return float(np.mean([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).mean() for f in frames]))


def panels(before: np.ndarray, after: np.ndarray) -> dict:
    """Sampled frames and RGB-difference maps before/after, the maps on one shared scale."""
    _, scale_b = rgb_diff_maps(before)
    _, scale_a = rgb_diff_maps(after)
    scale = max(scale_b, scale_a)
    diff_before, _ = rgb_diff_maps(before, scale)
    diff_after, _ = rgb_diff_maps(after, scale)
    idx = pick_frames(len(before))
    didx = pick_frames(len(diff_before))
    return {
        "frames_before": [before[i] for i in idx],
        "frames_after": [after[i] for i in idx],
        "diff_before": [diff_before[i] for i in didx],
        "diff_after": [diff_after[i] for i in didx],
        "diff_scale": scale,
    }
