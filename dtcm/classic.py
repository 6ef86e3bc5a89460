"""Classical (non-learned) low-light enhancers for the comparison view (SPEC A4).

Every enhancer takes a clip ``(T, H, W, 3)`` or a single frame ``(H, W, 3)`` of uint8 RGB and returns a
new array of the same shape and dtype; the input is never modified. All work is OpenCV/numpy on the
whole clip (colour conversions and look-up tables run once on the frames stacked as one tall image).

- ``gic``: gamma intensity correction, one 256-entry LUT per clip applied to R, G and B alike.
- ``hist_eq``: histogram equalisation of each frame's luma (BT.601 Y); colour carried over (hue kept).
- ``clahe``: contrast-limited adaptive histogram equalisation of each frame's luma; colour carried over.
- ``msr``: multi-scale retinex per channel, optionally with colour restoration (MSRCR), then a robust
  percentile stretch over the whole clip.

Example:
    >>> import numpy as np
    >>> from dtcm.classic import enhance_classic
    >>> clip = np.full((4, 240, 320, 3), 20, np.uint8)
    >>> enhance_classic("gic", clip).shape
    (4, 240, 320, 3)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import cv2
import numpy as np

__all__ = [
    "GAMMA_RANGE",
    "CLASSIC_ENHANCERS",
    "auto_gamma",
    "gic",
    "hist_eq",
    "clahe",
    "msr",
    "enhance_classic",
]

GAMMA_RANGE = (0.1, 10.0)  # auto gamma is clamped here: 0.1 lifts level 1 to ~147, 10 crushes 200 to ~22
_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601 weights of R, G, B, as in cv2's YCrCb and dtcm.darkness
_SIGMA_DIRECT = 4.0  # surrounds wider than this are blurred on an image shrunk until sigma is about this
_MIN_SIDE = 8  # ...but never shrunk below this many pixels on the shorter side
_MSR_PERCENTILES = (1.0, 99.0)  # the retinex output's 1st and 99th percentiles map to 0 and 255
_MSR_SAMPLES = 1 << 20  # the percentiles are estimated from at most this many evenly spaced values
_LEVELS = np.arange(1, 257, dtype=np.float32)  # I = level + 1, so that log is defined at black
_LOG_LEVELS = np.log(_LEVELS)
_MSRCR_ALPHA, _MSRCR_BETA = 125.0, 46.0  # colour restoration constants of Jobson et al. (1997)


def _check(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """Validate and return ``(clip (T, H, W, 3) C-contiguous, was_single_frame)``."""
    if not isinstance(frames, np.ndarray):
        raise ValueError(
            f"frames must be a numpy array (T, H, W, 3) or (H, W, 3) uint8 RGB, got {type(frames).__name__}"
        )
    accepted = "(T, H, W, 3) or (H, W, 3) uint8 RGB"
    if frames.ndim not in (3, 4) or frames.shape[-1] != 3:
        raise ValueError(f"frames must be {accepted}, got shape {frames.shape} ({frames.ndim} dims)")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be {accepted}, got dtype {frames.dtype}")
    if frames.shape[-3] == 0 or frames.shape[-2] == 0:
        raise ValueError(f"frames must be {accepted} with H, W >= 1, got shape {frames.shape}")
    single = frames.ndim == 3
    clip = frames[None] if single else frames
    return np.ascontiguousarray(clip), single


def _is_positive(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _finish(clip: np.ndarray, single: bool) -> np.ndarray:
    return clip[0] if single else clip


def _stacked(clip: np.ndarray) -> np.ndarray:
    t, h, w, _ = clip.shape
    return clip.reshape(t * h, w, 3)  # (T*H, W, 3): frames stacked as one tall image


# --------------------------------------------------------------------------------------------------
# Gamma intensity correction
# --------------------------------------------------------------------------------------------------


def _gamma_lut(gamma: float) -> np.ndarray:
    levels = np.arange(256) / 255.0
    return np.clip(np.rint(255.0 * levels**gamma), 0, 255).astype(np.uint8)  # (256,)


def auto_gamma(frames: np.ndarray) -> float:
    """The gamma ``gic`` picks for a clip: the one that puts the clip's mean output luma at 0.5.

    Rule: with ``f(x) = (x / 255) ** gamma``, choose gamma so that the mean over the clip of
    ``0.299 f(R) + 0.587 f(G) + 0.114 f(B)`` is 0.5 (luma 127.5). When every pixel has the same level
    ``m`` this is ``gamma = log(0.5) / log(m / 255)``; in general it is found by bisection on log gamma
    from the clip's per-channel histograms (exact, because luma is linear in R, G, B, and cheap: the
    mean is monotone in gamma). The result is clamped to ``GAMMA_RANGE``, so an all-black clip gets
    0.1 and an all-white one 10.

    Args:
        frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.

    Returns:
        gamma, a float in ``GAMMA_RANGE``; 1.0 for a clip with no frames.
    """
    clip, _ = _check(frames)
    if clip.size == 0:
        return 1.0
    img = _stacked(clip)
    hist = np.stack([cv2.calcHist([img], [c], None, [256], [0, 256]).reshape(256) for c in range(3)])
    # hist: (3, 256) counts of each level in R, G, B
    weights = _LUMA @ hist / (img.shape[0] * img.shape[1])  # (256,): share of luma carried by each level
    levels = np.arange(256) / 255.0

    def mean_luma(log_gamma: float) -> float:
        return float(weights @ levels ** math.exp(log_gamma))

    lo, hi = math.log(GAMMA_RANGE[0]), math.log(GAMMA_RANGE[1])
    if mean_luma(lo) <= 0.5:  # too dark even at the smallest gamma
        return GAMMA_RANGE[0]
    if mean_luma(hi) >= 0.5:  # too bright even at the largest gamma
        return GAMMA_RANGE[1]
    for _ in range(40):  # the mean falls as gamma grows; 40 halvings of a 4.6-wide interval are plenty
        mid = 0.5 * (lo + hi)
        if mean_luma(mid) > 0.5:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def gic(frames: np.ndarray, gamma: float | None = None) -> np.ndarray:
    """Gamma intensity correction: ``out = 255 * (in / 255) ** gamma`` on each of R, G, B.

    Args:
        frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.
        gamma: the exponent (> 0; < 1 brightens), or None to pick one per clip with ``auto_gamma``
            (mean output luma about 127.5, gamma clamped to ``GAMMA_RANGE``). One gamma serves the whole
            clip, so the correction does not flicker.

    Returns:
        The corrected frames, same shape, uint8. ``gamma=1`` returns an exact copy.

    Example:
        >>> import numpy as np
        >>> int(gic(np.full((2, 2, 3), 64, np.uint8), gamma=0.5)[0, 0, 0])
        128
    """
    clip, single = _check(frames)
    if gamma is None:
        gamma = auto_gamma(clip)
    elif not _is_positive(gamma):
        raise ValueError(f"gamma must be a finite number > 0 or None (automatic), got {gamma!r}")
    if clip.size == 0:
        return _finish(clip.copy(), single)
    out = cv2.LUT(_stacked(clip), _gamma_lut(float(gamma)))
    return _finish(out.reshape(clip.shape), single)


# --------------------------------------------------------------------------------------------------
# Histogram equalisation and CLAHE on luma
# --------------------------------------------------------------------------------------------------


def _on_luma(frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` ((H, W) uint8 -> (H, W) uint8) to each frame's luma Y and carry the colour over.

    Each pixel's offsets from its luma, ``c - Y`` for c in R, G, B (its chroma), are scaled by the luma gain
    ``Y' / Y``, so a brightened pixel keeps its hue and its saturation relative to its brightness (keeping Cb and
    Cr unchanged instead would grey out every dark colour that is lifted). Where that would push a channel past
    255 the scale is lowered to the largest that fits: the hue and the new luma ``Y'`` stay exact.
    """
    clip, single = _check(frames)
    if clip.size == 0:
        return _finish(clip.copy(), single)
    t, h, w, _ = clip.shape
    rgb = clip.astype(np.float32)  # (T, H, W, 3)
    y = rgb @ _LUMA.astype(np.float32)  # (T, H, W) BT.601 luma
    y8 = np.rint(y).astype(np.uint8)
    y2 = np.empty((t, h, w), np.float32)
    for i in range(t):
        y2[i] = fn(y8[i])
    chroma = rgb - y[..., None]  # (T, H, W, 3); its luma is 0
    scale = y2 / np.maximum(y, 1e-3)
    top = chroma.max(-1)  # > 0 unless the pixel is grey
    fits = np.where(top > 0, (255.0 - y2) / np.maximum(top, 1e-6), np.inf)
    out = y2[..., None] + np.minimum(scale, fits)[..., None] * chroma
    return _finish(np.clip(np.rint(out), 0, 255).astype(np.uint8), single)


def hist_eq(frames: np.ndarray) -> np.ndarray:
    """Histogram equalisation of each frame's luma (``cv2.equalizeHist`` on BT.601 Y), colour carried over.

    Args:
        frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.

    Returns:
        The equalised frames, same shape, uint8. Frame by frame, as the classical image method does.
    """
    return _on_luma(frames, cv2.equalizeHist)


def clahe(frames: np.ndarray, clip_limit: float = 2.0, tile: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of each frame's luma, colour carried over.

    Args:
        frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.
        clip_limit: OpenCV's contrast limit (> 0), in multiples of a tile's mean histogram height.
        tile: the frame is cut into a ``tile x tile`` grid of regions (an int >= 1).

    Returns:
        The enhanced frames, same shape, uint8.
    """
    if not _is_positive(clip_limit):
        raise ValueError(f"clip_limit must be a finite number > 0, got {clip_limit!r}")
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 1:
        raise ValueError(f"tile must be an int >= 1, got {tile!r}")
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile), int(tile)))
    return _on_luma(frames, op.apply)


# --------------------------------------------------------------------------------------------------
# Multi-scale retinex
# --------------------------------------------------------------------------------------------------


def _surround(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian surround of an (H, W, 3) float32 image; wide ones are blurred on a shrunk copy.

    Shrinking by ``f`` (area average) and growing back (bilinear) adds a blur of variance ``f**2 / 4``
    (box ``f**2 / 12`` plus triangle ``f**2 / 6``), which the blur on the small image leaves out.
    """
    h, w = img.shape[:2]
    f = min(sigma / _SIGMA_DIRECT, min(h, w) / _MIN_SIDE)
    if f < 1.5:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    sh, sw = max(1, round(h / f)), max(1, round(w / f))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    fy, fx = h / sh, w / sw  # the factors actually used on each axis
    sy = math.sqrt(max((sigma / fy) ** 2 - 0.25, 0.25))
    sx = math.sqrt(max((sigma / fx) ** 2 - 0.25, 0.25))
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sx, sigmaY=sy)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def msr(
    frames: np.ndarray,
    sigmas: Sequence[float] = (15, 80, 250),
    restore_color: bool = False,
) -> np.ndarray:
    """Multi-scale retinex (Jobson, Rahman & Woodell 1997), per channel, with a robust stretch.

    For each frame and channel, with ``I = level + 1`` (so that log is defined at black) and ``G_s`` a
    Gaussian of standard deviation ``s`` pixels (``cv2.GaussianBlur``, reflected borders; a surround of
    6 px or more is blurred on a copy shrunk until it is about 4 px there, see ``_surround``):

        ``R = mean over s in sigmas of [log I - log(G_s * I)]``

    With ``restore_color`` (MSRCR) each channel is multiplied by
    ``46 * (log(125 * I_c) - log(I_R + I_G + I_B))``, which brings back the saturation plain MSR
    greys out. The result is then stretched over the whole clip (all channels together, so the balance
    between channels is kept and the stretch does not flicker): its 1st and 99th percentiles map to 0
    and 255, the rest is clipped. A clip whose retinex output is flat (no contrast at all, e.g. all
    black) has nothing to stretch and comes back unchanged.

    Args:
        frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.
        sigmas: surround scales in pixels (each > 0); the classical three by default.
        restore_color: apply the MSRCR colour restoration.

    Returns:
        The enhanced frames, same shape, uint8.
    """
    sigmas = tuple(sigmas) if isinstance(sigmas, Sequence) else (sigmas,)
    if not sigmas or not all(_is_positive(s) for s in sigmas):
        raise ValueError(f"sigmas must be a non-empty sequence of finite numbers > 0, got {sigmas!r}")
    clip, single = _check(frames)
    if clip.size == 0:
        return _finish(clip.copy(), single)
    n = len(sigmas)
    ret = np.empty(clip.shape, np.float32)  # (T, H, W, 3) retinex output
    for i, frame in enumerate(clip):
        img = cv2.LUT(frame, _LEVELS)  # (H, W, 3) float32 I = level + 1
        acc = np.zeros_like(img)
        for s in sigmas:
            cv2.add(acc, cv2.log(_surround(img, float(s))), dst=acc)
        log_img = cv2.LUT(frame, _LOG_LEVELS)
        cv2.addWeighted(log_img, 1.0, acc, -1.0 / n, 0.0, dst=ret[i])  # R = log I - mean_s log(G_s * I)
        if restore_color:
            log_total = cv2.log(cv2.transform(img, np.ones((1, 3), np.float32)))  # (H, W): log sum_c I_c
            restore = _MSRCR_BETA * (math.log(_MSRCR_ALPHA) + log_img - log_total[..., None])
            cv2.multiply(ret[i], restore, dst=ret[i])
    flat = ret.reshape(-1)
    step = max(1, flat.size // _MSR_SAMPLES)
    if step % 3 == 0:
        step += 1  # a step that is a multiple of 3 would sample a single channel
    lo, hi = np.percentile(flat[::step], _MSR_PERCENTILES)
    if not hi - lo > 1e-6:
        return _finish(clip.copy(), single)
    scale = 255.0 / (hi - lo)
    # saturate_cast<uint8>(round(scale * (R - lo))): one pass, rounding and clipping to 0..255 included
    out = cv2.addWeighted(_stacked(ret), scale, _stacked(ret), 0.0, -lo * scale, dtype=cv2.CV_8U)
    out = out.reshape(clip.shape)
    return _finish(out, single)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

CLASSIC_ENHANCERS: dict[str, Callable[..., np.ndarray]] = {
    "gic": gic,
    "he": hist_eq,
    "clahe": clahe,
    "msr": msr,
}


def enhance_classic(name: str, frames: np.ndarray, **kwargs) -> np.ndarray:
    """Run the classical enhancer called ``name`` (a key of ``CLASSIC_ENHANCERS``) on ``frames``.

    Args:
        name: "gic", "he", "clahe" or "msr".
        frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.
        **kwargs: passed to the enhancer (e.g. ``gamma=0.4`` for "gic", ``clip_limit=3.0`` for "clahe").

    Returns:
        The enhanced frames, same shape, uint8.

    Example:
        >>> import numpy as np
        >>> enhance_classic("clahe", np.zeros((2, 16, 16, 3), np.uint8), clip_limit=3.0).shape
        (2, 16, 16, 3)
    """
    if not isinstance(name, str) or name not in CLASSIC_ENHANCERS:
        raise ValueError(f"unknown classical enhancer {name!r}; known: {', '.join(CLASSIC_ENHANCERS)}")
    return CLASSIC_ENHANCERS[name](frames, **kwargs)
