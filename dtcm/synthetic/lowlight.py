"""The low-light camera (SPEC B3): sRGB -> linear, a colour cast, exposure, shot and read noise, 8 bit.

:func:`darken` films bright frames as a dark sensor would; with no exposure it picks the one that lands
the darkness score Dv near ARID's (SPEC A8). :func:`compress` adds v2's JPEG-style block artefacts.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dtcm.darkness import SC, segment_indices

__all__ = ["TARGET_DV", "compress", "darken"]

TARGET_DV = -0.88  # ARID's mean darkness (SPEC A8); dark clips are exposed to land near it


def _srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


LINEAR_LUT = _srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)  # uint8 sRGB -> linear
LUT_STEPS = 1 << 16
SRGB_LUT = np.round(255 * _linear_to_srgb(np.arange(LUT_STEPS) / (LUT_STEPS - 1))).astype(np.uint8)
LUMA = np.array([0.299, 0.587, 0.114])  # the Y of YCrCb that dtcm.darkness scores


def _to_srgb8(linear):
    idx = np.clip(linear * (LUT_STEPS - 1) + 0.5, 0, LUT_STEPS - 1).astype(np.int32)
    return SRGB_LUT[idx]


def _darken(frames, rng, exposure=None, target_dv=None) -> tuple[np.ndarray, dict]:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) RGB, got {frames.dtype} {tuple(frames.shape)}")
    if exposure is not None and not 0 < exposure <= 1:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    cast = np.exp(rng.normal(0.0, 0.12, 3))
    cast /= cast @ LUMA  # a tint that keeps luma: a white-balance error
    full_well = math.exp(rng.uniform(math.log(1500), math.log(5000)))  # electrons at linear 1.0
    read = rng.uniform(1.0, 3.5)  # read-noise sigma, electrons
    cast32 = cast.astype(np.float32)
    if exposure is None:  # auto: aim the mean darkness at a draw around ARID's, within x0.01-0.08
        if target_dv is None:
            target_dv = float(np.clip(rng.normal(TARGET_DV, 0.02), -0.93, -0.83))
        sample = LINEAR_LUT[frames[segment_indices(len(frames)), ::2, ::2]] * cast32  # what Dv looks at
        z = np.random.default_rng(rng.integers(1 << 31)).standard_normal(sample.shape).astype(np.float32)

        def dv_at(e):  # shot noise as a Gaussian of the same variance: smooth in e for the bisection
            el = sample * (e * full_well)
            noisy = np.maximum(el + np.sqrt(el + read * read) * z, 0.0) / full_well
            y = (_to_srgb8(noisy).astype(np.float32) @ LUMA.astype(np.float32)).mean()
            return (y - SC) / SC

        lo, hi = math.log(0.002), math.log(0.5)
        for _ in range(18):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if dv_at(math.exp(mid)) < target_dv else (lo, mid)
        exposure = float(np.clip(math.exp(0.5 * (lo + hi)), 0.01, 0.08))
    gain = np.float32(exposure * full_well)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):  # frame by frame: long full-HD clips stay small in memory
        electrons = rng.poisson(LINEAR_LUT[frame] * cast32 * gain).astype(np.float32)
        electrons += rng.normal(0.0, read, electrons.shape).astype(np.float32)
        out[i] = _to_srgb8(np.maximum(electrons, 0.0) / full_well)
    info = {"exposure": round(exposure, 5), "full_well_e": round(full_well, 1), "read_noise_e": round(read, 3)}
    return out, info | {"cast": [round(float(c), 4) for c in cast]}


def darken(frames_uint8: np.ndarray, rng: np.random.Generator, exposure: float | None = None) -> np.ndarray:
    """Film bright frames with a low-light camera (SPEC B3), e.g. to darken real footage like ARID.

    sRGB -> linear, a colour cast (a white-balance error that keeps luma), exposure, Poisson shot noise
    on the photo-electrons, Gaussian read noise, linear -> sRGB, 8 bit.

    Args:
        frames_uint8: uint8 (T, H, W, 3) RGB (a single (H, W, 3) frame is not accepted: T is needed).
        rng: source of the noise, cast and sensor parameters.
        exposure: the exposure factor; None picks one in [0.01, 0.08] so that the darkness score Dv of
            the result lands near ARID's (a draw around -0.88, see SPEC A8).

    Returns:
        uint8 (T, H, W, 3), the same shape.
    """
    return _darken(frames_uint8, rng, exposure)[0]


def compress(frames: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (45, 85)) -> np.ndarray:
    """JPEG round trip of every frame at one quality drawn from ``quality``: the blocks of a cheap camera.

    Args:
        frames: uint8 (T, H, W, 3) RGB.
        rng: draws the quality.
        quality: inclusive range of JPEG qualities, 1..100.

    Returns:
        uint8 (T, H, W, 3).
    """
    lo, hi = quality
    if not 1 <= lo <= hi <= 100:
        raise ValueError(f"quality must be a range within 1..100, got {quality}")
    q = int(rng.integers(lo, hi + 1))
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])  # RGB -> BGR
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else frame
    return out
