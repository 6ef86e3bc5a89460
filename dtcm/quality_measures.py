"""The no-reference enhancement measures, defined once: per input/output pair of uint8 (T, H, W, 3) RGB clips.

A photo is a clip with T = 1; clips are measured on every frame. ``dtcm.quality`` runs enhancers over a folder
and aggregates these (mean over inputs, each input weighing the same):

    luma           mean luma (BT.601 Y, 0..255)
    loe            lightness order error (Wang et al., TIP 2013): input and output resized to 50x50 (bilinear),
                   L = max(R, G, B); for each pixel x the number of pixels y with
                   (L_in(x) >= L_in(y)) != (L_out(x) >= L_out(y)); the mean count (0 .. 2500)
    chroma noise   BT.601 Cb and Cr of the output (0..255 RGB); the mean over both channels of
                   |C - box5(C)|, box5 the 5x5 mean with edge padding, in grey levels
    blown          share of output pixels whose brightest channel is >= 250
    false colour   clearly coloured 32x32 input patches whose dominant channel changes (hue flips)
    local cast     mean over 32x32 patches of the L1 distance between input and output chromaticities
                   (channel means over their sum)
    change         mean absolute luma change (grey levels); reported on inputs already lit (luma > 90)
"""

from __future__ import annotations

import cv2
import numpy as np

from dtcm.darkness import BT601, DARK_LUMA, LIT_LUMA  # the one scale: "dark" up to 60, "lit" from 90

__all__ = ["LUMA", "PATCH", "DARK_LUMA", "LIT_LUMA", "loe", "chroma_noise", "frame_stats"]

BLOWN_LEVEL = 250  # a pixel is blown out when its brightest channel reaches this
PATCH = 32  # patch side for false colour and local cast
COLOURED_MARGIN = 0.05  # a patch is clearly coloured when its top chromaticity leads the next by this much
MIN_PATCH_LEVEL = 4.0  # ... and its mean level is at least this (0..255): darker patches have no colour to keep
LUMA = BT601.astype(np.float32)  # BT.601 Y of R, G, B
LOE_SIZE = 50  # LOE compares the light order on a 50x50 bilinear resize
CB = np.array([-0.168736, -0.331264, 0.5])  # BT.601 Cb of R, G, B (offset left out); float64 so grey gives ~0
CR = np.array([0.5, -0.418688, -0.081312])  # BT.601 Cr of R, G, B
CHROMA_BOX = 5  # chroma noise: distance to the 5x5 mean


def loe(x: np.ndarray, y: np.ndarray) -> float:
    """Lightness order error of one output frame ``y`` against its input ``x``, both (H, W, 3) RGB.

    Example:
        >>> x = np.zeros((50, 50, 3), np.uint8); x[:25] = 80
        >>> loe(x, 255 - x)  # the two halves swap: every pixel changes its relation to the other half
        1250.0
    """
    size = (LOE_SIZE, LOE_SIZE)
    lx = cv2.resize(x.astype(np.float32), size, interpolation=cv2.INTER_LINEAR).max(-1).ravel()  # (2500,)
    ly = cv2.resize(y.astype(np.float32), size, interpolation=cv2.INTER_LINEAR).max(-1).ravel()
    changed = (lx[:, None] >= lx[None, :]) != (ly[:, None] >= ly[None, :])  # (2500, 2500): x by y
    return float(changed.sum()) / lx.size


def chroma_noise(y: np.ndarray) -> float:
    """Chroma noise of one (H, W, 3) RGB frame on 0..255, in grey levels (0 where chroma is locally flat)."""
    rgb = y.astype(np.float64)
    box = (CHROMA_BOX, CHROMA_BOX)
    noise = []
    for weights in (CB, CR):
        c = rgb @ weights  # (H, W)
        noise.append(np.abs(c - cv2.blur(c, box, borderType=cv2.BORDER_REPLICATE)).mean())
    return float(np.mean(noise))


def _patch_means(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float (T, H // 32, W // 32, 3) channel means of whole 32x32 patches."""
    t, h, w, _ = frames.shape
    h, w = h // PATCH * PATCH, w // PATCH * PATCH
    x = frames[:, :h, :w].astype(np.float32).reshape(t, h // PATCH, PATCH, w // PATCH, PATCH, 3)
    return x.mean(axis=(2, 4))  # (T, h, w, 3)


def frame_stats(x: np.ndarray, y: np.ndarray) -> dict:
    """Means, sums and counts for one input/output pair of uint8 (T, H, W, 3) clips (a photo is T = 1).

    ``loe`` and ``chroma_noise`` are means over the frames; ``coloured``, ``flipped``, ``cast_sum`` and
    ``patches`` are sums over the clip's 32x32 patches, so that patches can be pooled over inputs.
    """
    lx, ly = x.astype(np.float32) @ LUMA, y.astype(np.float32) @ LUMA
    px, py = _patch_means(x), _patch_means(y)
    cx = px / np.maximum(px.sum(-1, keepdims=True), 1e-6)
    cy = py / np.maximum(py.sum(-1, keepdims=True), 1e-6)
    top2 = np.sort(cx, axis=-1)[..., -2:]
    coloured = ((top2[..., 1] - top2[..., 0]) > COLOURED_MARGIN) & (px.mean(-1) >= MIN_PATCH_LEVEL)
    flipped = coloured & (cx.argmax(-1) != cy.argmax(-1))
    return {
        "luma_in": float(lx.mean()),
        "luma_out": float(ly.mean()),
        "loe": float(np.mean([loe(a, b) for a, b in zip(x, y, strict=True)])),
        "chroma_noise": float(np.mean([chroma_noise(b) for b in y])),
        "blown": float((y.max(-1) >= BLOWN_LEVEL).mean()),
        "coloured": int(coloured.sum()),
        "flipped": int(flipped.sum()),
        "cast_sum": float(np.abs(cx - cy).sum(-1).sum()),
        "patches": int(cx.shape[0] * cx.shape[1] * cx.shape[2]),
        "change": float(np.abs(ly - lx).mean()),
    }
