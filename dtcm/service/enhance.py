"""Enhance a whole clip (or the part from a start time) into a browser-playable H.264 mp4, within bounds.

Every request comes from an anonymous visitor (``/enhance``, the whole-clip enhance chained after Analyse,
Streamlit's), so one keeps at most ``DTCM_ENHANCE_MAX_FRAMES`` frames and ``DTCM_ENHANCE_MAX_PIXELS`` frames x
width x height (the size drops first, aspect kept): its work follows the bound, not the upload. The result says
exactly what was produced; ``enhance_limit_sentence`` is what the UIs say beforehand. The clip gets the same
enhance / soften / skip decision (``dtcm.adaptive``) as ``analyse``. ``dtcm enhance`` (the CLI) is not bound here.
"""

from __future__ import annotations

import os
import time

import numpy as np

from dtcm.images import is_image
from dtcm.service.inputs import ServiceError, check_k, check_path, check_seconds, video_call
from dtcm.service.models import get_model, model_slot

__all__ = ["ENHANCE_CHUNK_GROUPS", "enhance_clip", "enhance_limit_sentence", "enhance_limits", "enhance_video"]

# measured on a 1080p 60 s clip at k = 1: 200 million took 267 s of a model slot; 30 million is a seventh of it
ENHANCE_MAX_FRAMES = int(os.environ.get("DTCM_ENHANCE_MAX_FRAMES", 300))  # frames per request (10 s at 30 fps)
ENHANCE_MAX_PIXELS = int(float(os.environ.get("DTCM_ENHANCE_MAX_PIXELS", 30e6)))  # frames x width x height per request
ENHANCE_CHUNK_GROUPS = 16  # frames are enhanced 16 k-frame groups at a time, so progress can be told


def enhance_video(
    path,
    variant: str | None = None,
    k: int | None = None,
    out_path=None,
    estimate_size: int | None = 256,
    on_progress=None,
    start_s: float | None = None,
) -> dict:
    """Enhance a clip (or the part from ``start_s`` seconds on) into a browser-playable H.264 mp4, within this
    server's per-request bounds.

    Curves are estimated on keyframes downscaled so their short side is ``estimate_size`` and upsampled (the
    Zero-DCE++ idea); None estimates at full resolution. ``on_progress(done, total)`` is called as frames
    are enhanced (in whole k-frame groups, so the output is the same as in one pass).

    Returns:
        dict with ``path`` (the mp4 written: ``out_path`` or a new temporary file), ``frames`` and
        ``source_frames``, ``first`` (the first frame kept, from 1), ``width``/``height`` and
        ``source_width``/``source_height``, ``fps``, ``seconds`` (time taken) and ``note`` (one sentence
        saying all of it).
    """
    import tempfile

    from dtcm import video

    k = check_k(k)
    path = check_path(path)
    if is_image(path):
        raise ServiceError(
            "this is a photo: its enhanced version is in the frames above; the enhanced clip is for videos"
        )
    t = time.perf_counter()
    with model_slot():
        model = get_model(variant)
        if model.enhancer is None:
            raise ServiceError(f"the variant {variant!r} has no enhancer; pick a DTCM variant")
        info = video_call(video.probe, path)
        first = _segment_start(start_s, info)
        frames, fps = _read_segment(path, info, first)
        out = _enhance_in_groups(model, frames, k or model.config.k, estimate_size, on_progress)
        out = _decided(frames, out)  # the same enhance / soften / skip as analyse
    if out_path is None:
        fd, out_path = tempfile.mkstemp(suffix=".mp4", prefix="dtcm_enhanced_")
        os.close(fd)
    video.write_video(out_path, out, fps)
    n, h, w = out.shape[:3]
    seconds = time.perf_counter() - t
    return {
        "path": str(out_path),
        "frames": int(n),
        "source_frames": int(max(info.frames, n)),
        "first": int(first) + 1,
        "width": int(w),
        "height": int(h),
        "source_width": int(info.width),
        "source_height": int(info.height),
        "fps": float(fps),
        "seconds": seconds,
        "note": _note(info, first, out.shape, fps, seconds),
    }


def enhance_limits() -> dict:
    """What one enhance request may produce: ``frames`` at most and ``pixels`` (frames x width x height)."""
    from dtcm.video import LIMITS

    return {"frames": max(1, min(ENHANCE_MAX_FRAMES, LIMITS.max_frames)), "pixels": ENHANCE_MAX_PIXELS}


def enhance_limit_sentence() -> str:
    """The bound of ``enhance_video`` as the UIs state it, e.g. "The enhanced clip is at most 300 frames ..."."""
    lim = enhance_limits()
    return (
        f"The enhanced clip is at most {lim['frames']} frames (from the start, or from the segment start) and "
        f"{lim['pixels'] / 1e6:.0f} million pixels over all frames; a larger clip comes back at a smaller size."
    )


def enhance_clip(
    path, variant: str | None = None, k: int | None = None, out_path=None, estimate_size: int | None = 256
) -> str:
    """Enhance a clip (see ``enhance_video``, which also says what was produced); returns the mp4's path."""
    return enhance_video(path, variant, k, out_path=out_path, estimate_size=estimate_size)["path"]


def _segment_start(start_s, info) -> int:
    """The first frame of a segment that starts ``start_s`` seconds in (0: the clip's start)."""
    if start_s is None:
        return 0
    start_s = check_seconds(start_s)
    duration = info.frames / (info.fps or 1.0)
    if not 0 <= start_s < duration:
        raise ServiceError(f"the segment start must be from 0 to under {duration:.1f} s for this clip, got {start_s:g}")
    return min(int(round(start_s * (info.fps or 1.0))), info.frames - 1)


def _enhance_plan(info, max_pixels: int, available: int | None = None) -> tuple[int, int | None]:
    """(frames to keep, short side to decode at or None for the clip's own) within one request's budget."""
    from dtcm.video import LIMITS

    cap = enhance_limits()["frames"]
    available = info.frames if available is None else available
    frames = max(1, min(available or cap, cap))
    w, h = info.width, info.height
    short = min(w, h, LIMITS.max_short_side)
    area = w * h * (short / min(w, h)) ** 2
    if frames * area <= max_pixels:
        return frames, None if short == min(w, h) else short
    scale = (max_pixels / (frames * area)) ** 0.5
    return frames, max(16, int(short * scale) // 2 * 2)


def _read_segment(path: str, info, first: int) -> tuple[np.ndarray, float]:
    """The frames one request may enhance from frame ``first`` on, at the planned size, and the fps."""
    from dtcm import video

    keep, size = _enhance_plan(info, ENHANCE_MAX_PIXELS, info.frames - first)
    if first:
        idx = np.arange(first, min(first + keep, info.frames))
        return video_call(video.read_frames, path, idx, size=size), info.fps
    return video_call(video.read_video, path, size=size, max_frames=keep)


def _enhance_in_groups(model, frames: np.ndarray, k: int, estimate_size, on_progress) -> np.ndarray:
    """``enhance_frames`` over uint8 (T, H, W, 3) in chunks of whole k-frame groups: the same curves as one pass."""
    from dtcm.enhance_cli import enhance_frames

    step = k * ENHANCE_CHUNK_GROUPS
    out = np.empty_like(frames)
    for i in range(0, len(frames), step):
        out[i : i + step] = enhance_frames(model, frames[i : i + step], k, estimate_size=estimate_size)
        if on_progress is not None:
            on_progress(min(i + step, len(frames)), len(frames))
    return out


def _decided(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Whole-video frames after dtcm.adaptive's decision (from Dv and the change on 8 sampled frames)."""
    from dtcm import adaptive, darkness

    idx = darkness.segment_indices(len(frames))
    decision = adaptive.decide(darkness.darkness_score(frames[idx]), adaptive.luma_change(frames[idx], out[idx]))
    return adaptive.apply_decision(frames, out, decision)


def _note(info, first: int, shape: tuple, fps: float, seconds: float) -> str:
    """One sentence: which frames of the clip were enhanced, at which size, how fast, and why any were cut."""
    n, h, w = shape[:3]
    total = max(info.frames, n)
    if first:
        part = f"frames {first + 1}-{first + n} of {total} ({first / fps:.1f}-{(first + n) / fps:.1f} s of {total / fps:.1f} s)"
    elif n >= total:
        part = f"all {n} frames"
    else:
        part = f"frames 1-{n} of {total} (the first {n / fps:.1f} s of {total / fps:.1f} s)"
    own = (w, h) == (info.width, info.height)
    size_note = f"at the clip's own size, {w}x{h}" if own else f"at {w}x{h} (the clip is {info.width}x{info.height})"
    lim = enhance_limits()
    limit = f"{lim['frames']} frames and {lim['pixels'] / 1e6:.0f} million pixels over all frames"
    cut = n < total - first or not own
    return f"Enhanced {part} {size_note} in {seconds:.1f} s" + (
        f"; this server enhances at most {limit} per request." if cut else "."
    )
