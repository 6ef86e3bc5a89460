"""The light-enhancement (LE) curve and frame sharing (SPEC A2, A3), in one place.

An enhancer's curve maps R (3 * n channels in [-1, 1]) brighten a frame by n iterations of
``x <- x + r_i * x * (1 - x)``. :func:`apply_curves` is the reference (autograd, training);
:func:`apply_curves_` is the same arithmetic, element for element, written in place into preallocated
buffers for inference. With frame sharing the T frames are split into consecutive groups of k; each group's
curves are estimated once, on its middle frame (:func:`keyframe_indices`).

The scene-keeping form (issue 19, the ``*_scene`` enhancers) drives one curve per iteration from the
brightest channel L = max(R, G, B) and carries colour over: :func:`scene_maps` turns the estimator's n maps into
a frame-wide curve plus a bounded, smooth local term (a coarse grid, bilinear), so that the order of light is
kept; :func:`scene_curves` lifts L near black from a blurred L (no posterised blocks from lifted low bits), rolls
highlights off instead of clipping them, and takes each pixel's chromaticity from a luma-weighted 4x4 box filter
at half resolution (sensor colour noise is not amplified), scaled so that the output's max(R, G, B) is the
curve of L.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "apply_curves",
    "apply_curves_",
    "curves_hwc",
    "keyframe_indices",
    "num_keyframes",
    "scene_curves",
    "scene_curves_",
    "scene_maps",
]

SCENE_ESTIMATE = 64  # scene form: keyframes are estimated with their short side at most this (the maps are smooth)
SCENE_GRID = 4  # scene form: the local term is the maps' mean over a grid of this many cells along the short side
SCENE_LOCAL = 0.15  # scene form: weight of the local term against the frame-wide mean of each map
SCENE_KNEE = 0.2  # scene form: the curve of L is capped at 1 - SCENE_KNEE (1 - L): highlights roll off, never clip
SCENE_BLACK = 24 / 255  # scene form: below this L the curve reads a blurred L (fully at 0, not at all at this)


def apply_curves(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Iterate the light-enhancement curve ``x <- x + r_n * x * (1 - x)`` (SPEC A2).

    Args:
        x: images (..., 3, H, W) or clips (B, 3, T, H, W) in [0, 1].
        r: curve maps with 3 * n channels on dim 1, broadcastable to x per iteration.
    Returns:
        The enhanced tensor, same shape as x, in [0, 1] when |r| <= 1.
    """
    n = r.shape[1] // 3
    for i in range(n):
        ri = r[:, 3 * i : 3 * i + 3]
        x = x + ri * x * (1 - x)
    return x.clamp(0, 1)  # numeric guard only: the curve keeps [0, 1] for |r| <= 1


def apply_curves_(y: torch.Tensor, x: torch.Tensor, maps: Sequence[torch.Tensor], tmp: torch.Tensor) -> torch.Tensor:
    """y <- the light-enhancement curve of x with the maps r_1..r_n (SPEC A2); y may be x.

    x, y and tmp have one shape; each map broadcasts to it (over the k frames of a group). Same arithmetic,
    element for element, whatever the layout, so the tensor and uint8 paths agree.
    """
    src = x
    for r in maps:
        torch.addcmul(src, src, src, value=-1, out=tmp)  # x (1 - x)
        torch.addcmul(src, tmp, r, out=y)  # x + r x (1 - x)
        src = y
    return y.clamp_(0, 1)  # numeric guard only, as in apply_curves


def scene_maps(r: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Scene form: estimated maps (N, n, h, w) in [-1, 1] -> smooth maps (N, n, H, W) in [-1, 1] at ``size``.

    Each map becomes its frame-wide mean plus ``SCENE_LOCAL`` times the deviation of its mean over a coarse grid
    (``SCENE_GRID`` cells along the short side), upsampled bilinearly: a monotone global curve with a bounded,
    smooth local term.
    """
    h, w = r.shape[-2:]
    cells = (max(1, round(SCENE_GRID * h / min(h, w))), max(1, round(SCENE_GRID * w / min(h, w))))
    mean = r.mean((2, 3), keepdim=True)  # (N, n, 1, 1)
    local = F.adaptive_avg_pool2d(r, cells) - mean  # (N, n, gh, gw)
    return mean + SCENE_LOCAL * F.interpolate(local, size=size, mode="bilinear", align_corners=False)


def scene_curves(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Scene form of the curve: frames (N, 3, H, W) in [0, 1], maps (N or 1, n, H, W) -> (N, 3, H, W) in [0, 1].

    L = max(R, G, B), blended towards its blurred value below ``SCENE_BLACK``, goes through the n iterations
    of the curve, capped at ``1 - SCENE_KNEE (1 - L)``; the colour is the input's 4x4 means at stride 2 (a sum of
    colours: luma-weighted), upsampled bilinearly and divided by its own max, so that max(R, G, B) of the output
    is exactly the curve of L.
    """
    n, _, h, w = x.shape
    blur = F.avg_pool2d(x, 4, 2, 1, ceil_mode=True, count_include_pad=False)  # (N, 3, ~H/2, ~W/2): 4x4 means
    blur = blur.reshape(1, 3 * n, *blur.shape[-2:])  # (1, 3N, h, w): one image of 3N channels upsamples faster
    blur = F.interpolate(blur, size=(h, w), mode="bilinear", align_corners=False).view(n, 3, h, w)  # (N, 3, H, W)
    top = blur.amax(1, keepdim=True)  # (N, 1, H, W)
    lum = x.amax(1, keepdim=True)  # (N, 1, H, W)
    lum = lum + (1 - lum / SCENE_BLACK).clamp(min=0) * (top - lum)  # blurred near black
    base = lum
    for i in range(r.shape[1]):
        lum = lum + r[:, i : i + 1] * lum * (1 - lum)
    lum = torch.minimum(lum, 1 - SCENE_KNEE * (1 - base))  # the cap is never below L: a roll-off
    return (blur / top.clamp(min=1e-6) * lum).clamp(0, 1)


def scene_curves_(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """:func:`scene_curves` for inference: the same steps in place, with fewer temporaries (no autograd)."""
    n, _, h, w = x.shape
    blur = F.avg_pool2d(x, 4, 2, 1, ceil_mode=True, count_include_pad=False)  # (N, 3, ~H/2, ~W/2)
    blur = blur.reshape(1, 3 * n, *blur.shape[-2:])  # (1, 3N, h, w)
    blur = F.interpolate(blur, size=(h, w), mode="bilinear", align_corners=False).view(n, 3, h, w)  # (N, 3, H, W)
    top = blur.amax(1, keepdim=True)  # (N, 1, H, W)
    lum = x.amax(1, keepdim=True)  # (N, 1, H, W)
    near_black = torch.mul(lum, -1 / SCENE_BLACK).add_(1).clamp_(min=0)
    lum.addcmul_(near_black, top - lum)
    knee = torch.mul(lum, SCENE_KNEE).add_(1 - SCENE_KNEE)  # 1 - SCENE_KNEE (1 - L)
    tmp = near_black  # reused as the buffer of L (1 - L)
    for i in range(r.shape[1]):
        torch.addcmul(lum, lum, lum, value=-1, out=tmp)  # L (1 - L)
        lum.addcmul_(tmp, r[:, i : i + 1])
    torch.minimum(lum, knee, out=lum)
    return blur.div_(top.clamp_(min=1e-6)).mul_(lum).clamp_(0, 1)


def estimate_at(estimator, x: torch.Tensor, short_side: int | None) -> torch.Tensor:
    """Curve maps (N, 3n, H, W) of frames (N, 3, H, W), estimated with their short side at ``short_side``.

    Frames with a longer short side are downscaled (bilinear, antialiased) and the maps upsampled back
    (bilinear; they stay in [-1, 1]), as Zero-DCE++ does; None, or frames no bigger, run at full size.
    """
    h, w = x.shape[-2:]
    if short_side is None or min(h, w) <= short_side:
        return estimator(x)
    scale = short_side / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(estimator(small), size=(h, w), mode="bilinear", align_corners=False)


def curves_hwc(estimator, key: torch.Tensor, estimate_size: int | None, device) -> torch.Tensor:
    """Curve maps of one uint8 keyframe (H, W, 3) as (n, H, W, 3) float, estimated at ``estimate_size``.

    ``estimator`` maps (1, 3, h, w) in [0, 1] to (1, 3n, h, w); with ``estimate_size`` the keyframe is
    downscaled (bilinear, antialiased) to that short side and the maps upsampled back (Zero-DCE++).
    """
    h, w, _ = key.shape
    x = key.permute(2, 0, 1)[None].to(device).float().div_(255)  # (1, 3, H, W), channels-last memory
    r = estimate_at(estimator, x, estimate_size)  # (1, 3n, H, W)
    n = r.shape[1] // 3
    return r[0].permute(1, 2, 0).reshape(h, w, n, 3).permute(2, 0, 1, 3).contiguous().cpu()  # (n, H, W, 3)


def keyframe_indices(t: int, k: int) -> tuple[list[int], list[int]]:
    """Keyframes and group membership for frame sharing.

    Frames are split into consecutive groups of k (the last may be shorter); each group's keyframe is its
    middle frame, index ``len(group) // 2`` inside the group (``k // 2`` for full groups).

    Returns:
        (keyframes, group_of_frame): ceil(t / k) keyframe indices and, for each of the t frames, its group.

    Example:
        >>> keyframe_indices(6, 4)
        ([2, 5], [0, 0, 0, 0, 1, 1])
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    keys, groups = [], []
    for g, start in enumerate(range(0, t, k)):
        length = min(k, t - start)
        keys.append(start + length // 2)
        groups.extend([g] * length)
    return keys, groups


def num_keyframes(t: int, k: int) -> int:
    """ceil(t / k): how many curve estimates a clip of t frames takes at frame-sharing factor k."""
    return math.ceil(t / k)
