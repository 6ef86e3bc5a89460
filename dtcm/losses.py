"""The training losses of DTCM (SPEC A6, the paper's Eq. 1-7), each a pure function.

Shapes: x is the dark input clip and y the enhanced clip, both (B, 3, T, H, W) in [0, 1]; curves are the
keyframe curve maps (B, 3n, G, H, W); logits (B, C); labels (B,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "region_map",
    "spatial_consistency_frame",
    "spatial_consistency",
    "temporal_consistency",
    "stc_loss",
    "exposure_loss",
    "order_loss",
    "color_constancy_loss",
    "local_color_loss",
    "illumination_smoothness_loss",
    "dark_loss",
    "action_loss",
    "total_loss",
    "W_COL",
    "W_TVA",
    "EXPOSURE_LEVEL",
]

W_COL = 0.5  # weight of L_col inside L_Dark (Eq. 5)
W_TVA = 20.0  # weight of L_tvA inside L_Dark (Eq. 5)
EXPOSURE_LEVEL = 0.6  # E of the exposure control loss
ORDER_SIZE = 16  # order_loss compares the light of regions on a grid of this many regions a side
REGION = 4  # region size of the spatial-consistency map
EXPOSURE_PATCH = 16  # patch size of the exposure control loss
COLOR_PATCH = 32  # patch size of the local colour-constancy term (not in the paper)
# Four of the eight neighbour offsets; the other four are their mirrors and give the same squared terms.
_HALF_NEIGHBOURS = ((0, 1), (1, -1), (1, 0), (1, 1))


def _frames(v: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W); 4-D input passes through."""
    if v.dim() == 4:
        return v
    b, c, t, h, w = v.shape
    return v.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W)


def region_map(img: torch.Tensor) -> torch.Tensor:
    """Channel mean, then 4x4 average pooling: (N, C, H, W) -> (N, H // 4, W // 4)."""
    h, w = img.shape[-2] // REGION * REGION, img.shape[-1] // REGION * REGION
    if h == 0 or w == 0:
        raise ValueError(f"frames must be at least {REGION}x{REGION}, got {tuple(img.shape[-2:])}")
    g = img[..., :h, :w].mean(dim=1, keepdim=True)
    return F.avg_pool2d(g, REGION).squeeze(1)


def spatial_consistency_frame(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """L_SCF per frame pair (Eq. 1): (N, C, H, W) x2 -> (N,).

    ``(1/K) sum_i sum_{j in 8-neighbours(i)} (|Y_i - Y_j| - |P_i - P_j|)^2`` over 4x4 regions, with only
    neighbours inside the grid counted.
    """
    ry, rp = region_map(y), region_map(p)
    _, h, w = ry.shape
    total = ry.new_zeros(ry.shape[0])
    for dy, dx in _HALF_NEIGHBOURS:
        # region i at (a, b) and neighbour j at (a + dy, b + dx), both inside the grid
        a0, a1 = 0, h - dy
        b0, b1 = max(0, -dx), w - max(0, dx)
        if a1 <= a0 or b1 <= b0:
            continue
        yi, yj = ry[:, a0:a1, b0:b1], ry[:, a0 + dy : a1 + dy, b0 + dx : b1 + dx]
        pi, pj = rp[:, a0:a1, b0:b1], rp[:, a0 + dy : a1 + dy, b0 + dx : b1 + dx]
        d = (yi - yj).abs() - (pi - pj).abs()
        total = total + 2 * d.pow(2).sum(dim=(1, 2))  # each unordered pair is counted from both ends
    return total / (h * w)


def spatial_consistency(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_SC (Eq. 2): mean over frames of L_SCF(y_t, x_t)."""
    return spatial_consistency_frame(_frames(y), _frames(x)).mean()


def temporal_consistency(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_TC (Eq. 3): L_SCF on the RGB-difference images |v_{t+1} - v_t|, mean over t = 1..T-1."""
    if y.shape[2] < 2:
        return y.new_zeros(())
    dy = (y[:, :, 1:] - y[:, :, :-1]).abs()
    dx = (x[:, :, 1:] - x[:, :, :-1]).abs()
    return spatial_consistency(dy, dx)


def stc_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_STC = L_SC + L_TC (Eq. 4), the clip's spatio-temporal inconsistency."""
    return spatial_consistency(y, x) + temporal_consistency(y, x)


def exposure_loss(y: torch.Tensor, level: float = EXPOSURE_LEVEL) -> torch.Tensor:
    """L_exp: mean over 16x16 patches (of the channel mean) of (patch - E)^2."""
    g = _frames(y).mean(dim=1, keepdim=True)
    if min(g.shape[-2:]) < EXPOSURE_PATCH:
        raise ValueError(f"frames must be at least {EXPOSURE_PATCH}x{EXPOSURE_PATCH}, got {tuple(g.shape[-2:])}")
    return (F.avg_pool2d(g, EXPOSURE_PATCH) - level).pow(2).mean()


def color_constancy_loss(y: torch.Tensor) -> torch.Tensor:
    """L_col: per image, sum over channel pairs of (J^p - J^q)^2 on channel means; mean over images."""
    j = _frames(y).mean(dim=(2, 3))  # (N, 3)
    r, g, b = j[:, 0], j[:, 1], j[:, 2]
    return ((r - g).pow(2) + (r - b).pow(2) + (g - b).pow(2)).mean()


def local_color_loss(y: torch.Tensor, x: torch.Tensor, patch: int = COLOR_PATCH) -> torch.Tensor:
    """Local colour constancy (ours, beyond the paper's image-wide L_col): each patch keeps its colour.

    Per ``patch`` x ``patch`` patch, the chromaticity (channel means over their sum) of the enhanced frame
    is compared with the input's: the mean over patches of the squared distance. Brightening a patch
    keeps it at 0; a curve that tints one region (violet shadows) does not. y, x: (B, 3, T, H, W) or
    (N, 3, H, W), at least ``patch`` pixels on each side.
    """
    if min(y.shape[-2:]) < patch:
        raise ValueError(f"frames must be at least {patch}x{patch}, got {tuple(y.shape[-2:])}")
    jy, jx = (F.avg_pool2d(_frames(v), patch) for v in (y, x))  # (N, 3, H / patch, W / patch)
    eps = 1e-3  # a black patch counts as grey
    cy = (jy + eps) / (jy.sum(1, keepdim=True) + 3 * eps)
    cx = (jx + eps) / (jx.sum(1, keepdim=True) + 3 * eps)
    return (cy - cx).pow(2).sum(1).mean()


def order_loss(y: torch.Tensor, x: torch.Tensor, size: int = ORDER_SIZE) -> torch.Tensor:
    """Light-order regulariser (ours, an LOE-like term): pairs of regions whose order of light flips.

    Each frame's brightest channel max(R, G, B) is averaged over a ``size`` x ``size`` grid of regions
    (adaptive mean); for every pair (i, j) of regions of one frame the loss is relu(-(L^x_i - L^x_j)
    (L^y_i - L^y_j)): zero when the enhanced frame keeps the input's order, the product of the two gaps
    when it flips. Mean over pairs and frames. y, x: (B, 3, T, H, W) or (N, 3, H, W), at least ``size``
    pixels on each side.
    """
    if min(y.shape[-2:]) < size:
        raise ValueError(f"frames must be at least {size}x{size}, got {tuple(y.shape[-2:])}")
    ly, lx = (F.adaptive_avg_pool2d(_frames(v).amax(1, keepdim=True), size).flatten(1) for v in (y, x))  # (N, s*s)
    dy = ly[:, :, None] - ly[:, None, :]  # (N, s*s, s*s)
    dx = lx[:, :, None] - lx[:, None, :]
    return F.relu(-dx * dy).mean()


def illumination_smoothness_loss(curves: torch.Tensor) -> torch.Tensor:
    """L_tvA: mean over maps and pixels of (|grad_x A| + |grad_y A|)^2, forward differences.

    The last row and column (no forward neighbour) are left out. curves: (B, 3n, G, H, W) or (N, 3n, H, W).
    """
    a = _frames(curves)
    gx = a[..., :-1, 1:] - a[..., :-1, :-1]
    gy = a[..., 1:, :-1] - a[..., :-1, :-1]
    return (gx.abs() + gy.abs()).pow(2).mean()


def dark_loss(y: torch.Tensor, curves: torch.Tensor) -> dict[str, torch.Tensor]:
    """L_Dark = L_exp + 0.5 L_col + 20 L_tvA (Eq. 5), with its terms."""
    exp = exposure_loss(y)
    col = color_constancy_loss(y)
    tva = illumination_smoothness_loss(curves)
    return {"exp": exp, "col": col, "tva": tva, "dark": exp + W_COL * col + W_TVA * tva}


def action_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_AR: cross-entropy (Eq. 6)."""
    return F.cross_entropy(logits, labels)


def total_loss(
    logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    x: torch.Tensor,
    y: torch.Tensor,
    curves: torch.Tensor,
    alpha: float = 0.1,
    w_stc: float = 4.0,
) -> dict[str, torch.Tensor]:
    """L_total = L_AR + alpha (W_STC L_STC + L_Dark) (Eq. 7), with every term.

    With ``logits=None`` the action term is left out (zero-reference enhancer training:
    ``total = alpha (W_STC L_STC + L_Dark)``).

    Returns:
        dict with keys ar, sc, tc, stc, exp, col, tva, dark, total (scalar tensors).
    """
    sc = spatial_consistency(y, x)
    tc = temporal_consistency(y, x)
    terms = dark_loss(y, curves)
    ar = action_loss(logits, labels) if logits is not None else y.new_zeros(())
    stc = sc + tc
    total = ar + alpha * (w_stc * stc + terms["dark"])
    return {"ar": ar, "sc": sc, "tc": tc, "stc": stc, **terms, "total": total}
