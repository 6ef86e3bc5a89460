"""Clip in, Top-5 or enhanced clip out: the one prediction path ``dtcm predict``, ``dtcm enhance`` and the apps share.

Recognition is 1-clip centre-crop (SPEC A7): the dense window of ``clip_len`` frames, short-side resize and a
centre crop (:func:`prepare_clip`), the model's logits under the device policy (:func:`classify`), calibrated
probabilities ``softmax(logits / config.temperature)`` (:func:`probabilities`) and the best ``k`` of them
(:func:`top_k`). :func:`recognise` chains the four and adds the "not sure" verdict of
:mod:`dtcm.calibration`.

Enhancement runs the model's curve estimator at the clip's own resolution with frame sharing (SPEC A3):
curves are estimated on one keyframe per group of k frames and applied to every frame of the group; with
``estimate_size`` the keyframes are downscaled for estimation and the curve maps upsampled back (the
Zero-DCE++ idea).

Nothing here imports torch until it is called.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dtcm.checks import IMAGE_SUFFIXES, check_frames, check_k, is_image
from dtcm.config import DTCMConfig

__all__ = [
    "DEFAULT_ENHANCER",
    "ESTIMATE_SIZE",
    "PUBLISHED_ENV",
    "classify",
    "enhance_file",
    "enhance_frames",
    "enhance_image_file",
    "fast_enhancer",
    "load_clip",
    "predict",
    "prepare_clip",
    "probabilities",
    "recognise",
    "top_k",
]

DEFAULT_ENHANCER = "lightdce-real"  # the shipped enhancer trained on real photographs
PUBLISHED_ENV = "DTCM_ZERODCE_PUBLISHED"  # a folder made by dtcm import-zerodce
ESTIMATE_SIZE = 256  # keyframe short side for curve estimation on clips (curve maps are upsampled back)


# -------------------------------------------------------------------------------------- recognition
def prepare_clip(clip: str | os.PathLike | np.ndarray, config: DTCMConfig, start: int | None = None):
    """One test clip as the model wants it: ``clip_len`` consecutive frames, short-side resize, centre crop.

    Args:
        clip: a video file, or decoded uint8 frames (N, H, W, 3) RGB.
        config: the model's config (clip_len, short_side, crop_size).
        start: first frame of the window; None takes the centred one. A window longer than the clip loops.

    Returns:
        float32 tensor (1, 3, clip_len, crop, crop) on [0, 1].
    """
    from dtcm import video

    if isinstance(clip, np.ndarray):
        frames = check_frames(clip)
        frames = frames[video.clip_indices(len(frames), config.clip_len, "dense", start)]
    else:
        path = Path(clip)
        if not path.is_file():
            raise FileNotFoundError(f"no such clip: {clip}")
        frames = video.read_clip(str(path), config.clip_len, sampling="dense", start=start, size=config.short_side)
    return video.to_batch(frames, config.short_side, config.crop_size)  # (1, 3, T, crop, crop)


def load_clip(config: DTCMConfig, clip: str | os.PathLike | np.ndarray):
    """:func:`prepare_clip` with the centred window, arguments in the older order ``(config, clip)``."""
    return prepare_clip(clip, config)


def classify(model, x, k: int | None = None):
    """Logits of the one clip in ``x`` (1, 3, T, H, W): (num_classes,) float32 on the CPU, eval mode."""
    from dtcm.device import infer

    model.eval()
    return infer(model, x, k=k)[0]  # (C,)


def probabilities(logits, temperature: float = 1.0):
    """Calibrated probabilities ``softmax(logits / temperature)`` over the last axis."""
    return (logits / temperature).softmax(-1)


def top_k(probs, class_names: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most likely classes of (num_classes,) probabilities: ``[(name, probability)]``, best first."""
    if k < 1:
        raise ValueError(f"topk must be >= 1, got {k}")
    values, indices = probs.topk(min(k, probs.numel()))
    return [(class_names[i], float(p)) for p, i in zip(values.tolist(), indices.tolist(), strict=True)]


def recognise(model, clip: str | os.PathLike | np.ndarray, k: int | None = None, topk: int = 5) -> dict:
    """Top-k actions of one clip and whether the model can answer.

    Args:
        model: a DTCM model (its config says clip_len, short_side, crop, the class names and the temperature).
        clip: a video file or uint8 frames (N, H, W, 3).
        k: frame-sharing factor; default the model's.
        topk: how many classes to return (at most the number of classes).

    Returns:
        ``{"top": [(class_name, probability), ...], "verdict": {"sure": bool, "reason": str, ...}}``, most
        likely first, probabilities calibrated; the verdict is :func:`dtcm.calibration.verdict`'s.
    """
    from dtcm.calibration import verdict

    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    config = model.config
    logits = classify(model, prepare_clip(clip, config), k)
    top = top_k(probabilities(logits, config.temperature), config.class_names, topk)
    return {"top": top, "verdict": verdict(logits.numpy(), config)}


def predict(
    model, clip: str | os.PathLike | np.ndarray, k: int | None = None, topk: int = 5
) -> list[tuple[str, float]]:
    """The ``"top"`` of :func:`recognise`: ``[(class_name, probability), ...]``, most likely first."""
    return recognise(model, clip, k=k, topk=topk)["top"]


# -------------------------------------------------------------------------------------- enhancement
def enhance_frames(model, frames: np.ndarray, k: int | None = None, estimate_size: int | None = None) -> np.ndarray:
    """Enhance a whole decoded clip with a DTCM model's enhancer.

    Args:
        model: a DTCM model with an enhancer (``config.enhancer`` not "none").
        frames: uint8 (T, H, W, 3) RGB, any size.
        k: frame-sharing factor; default the model's.
        estimate_size: short side the keyframes are scaled to for curve estimation; None or 0 = full size.

    Returns:
        uint8 (T, H, W, 3), the enhanced frames.
    """
    frames = check_frames(frames, "T")
    if model.enhancer is None:
        raise ValueError(f"this model has no enhancer (enhancer={model.config.enhancer!r}); pick a DTCM model")
    k = check_k(k, model.config.k)
    if estimate_size is not None and estimate_size < 0:
        raise ValueError(f"estimate_size must be >= 0 (0: full size), got {estimate_size}")
    from dtcm.inference import fast_enhance

    return fast_enhance(frames, fast_enhancer(model), k, estimate_size=estimate_size or None)


def fast_enhancer(model):
    """The model's enhancer optimised for inference (BatchNorm folded, fused curves), built once per model.

    The copy is a snapshot: a model that trains further gets a new one when its weights change.
    """
    from dtcm.inference import optimize_for_inference

    version = sum(p._version for p in model.enhancer.parameters())  # in-place updates bump tensor versions
    cached = getattr(model, "_dtcm_fast_enhancer", None)
    if cached is None or cached[0] != version:
        cached = (version, optimize_for_inference(model.enhancer))
        model._dtcm_fast_enhancer = cached
    return cached[1]


def enhance_file(
    model,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    k: int | None = None,
    estimate_size: int | None = ESTIMATE_SIZE,
    max_frames: int | None = None,
) -> dict:
    """Read a clip, enhance it at its own resolution, write an H.264 mp4 (libx264, yuv420p, faststart).

    Args:
        model: a DTCM model with an enhancer.
        src: the input video.
        dst: the output ``.mp4`` (folders are created).
        k: frame-sharing factor; default the model's.
        estimate_size: keyframe short side for curve estimation (None / 0: full size).
        max_frames: read at most this many frames (default: the video reader's limit).

    Returns:
        ``{"path", "frames", "height", "width", "fps", "k", "seconds"}``.
    """
    from dtcm import video

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no such clip: {src}")
    if dst.suffix.lower() != ".mp4":
        raise ValueError(f"the output must be an .mp4 file (H.264), got {dst.name!r}")
    _check_not_input(src, dst)
    t0 = time.perf_counter()
    frames, fps = video.read_video(src, size=None, max_frames=max_frames)
    out = enhance_frames(model, frames, k=k, estimate_size=estimate_size)
    video.write_video(dst, out, float(fps or 25.0))
    return {
        "path": str(dst),
        "frames": len(out),
        "height": out.shape[1] // 2 * 2,
        "width": out.shape[2] // 2 * 2,
        "fps": float(fps or 25.0),
        "k": model.config.k if k is None else k,
        "seconds": time.perf_counter() - t0,
    }


def enhance_image_file(model, src, dst, estimate_size: int | None = None) -> dict:
    """Enhance one photo (jpg, png, bmp, webp) into an image file of the same size (format from ``dst``).

    Returns:
        ``{"path", "height", "width", "seconds"}``.
    """
    from dtcm.images import read_image, write_image

    if not is_image(dst):
        raise ValueError(f"a photo in gives a photo out: name the output with one of {', '.join(IMAGE_SUFFIXES)}")
    _check_not_input(Path(src), Path(dst))
    t0 = time.perf_counter()
    image = read_image(src)
    out = enhance_frames(model, image[None], k=1, estimate_size=estimate_size)[0]
    write_image(dst, out)
    return {"path": str(dst), "height": out.shape[0], "width": out.shape[1], "seconds": time.perf_counter() - t0}


def _check_not_input(src: Path, dst: Path) -> None:
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError("the output would overwrite the input; choose another path")
