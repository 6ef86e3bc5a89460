"""Analyse one clip (darkness, enhancement, recognition) or a photo, and the action over a whole clip.

The model classifies one window of ``clip_len`` consecutive frames: the centred one, or the one starting
where the visitor asked; ``window`` in the result says which frames those were.
"""

from __future__ import annotations

import time

import numpy as np

from dtcm.images import is_image
from dtcm.service.inputs import ServiceError, check_k, check_path, check_seconds, image_call, video_call
from dtcm.service.models import default_variant, get_model, in_model_slot
from dtcm.service.panels import panels, to_uint8
from dtcm.service.predict import classify, topk
from dtcm.service.ui import darkness_sentence

__all__ = ["FULL_SIZE_SHORT_SIDE", "TIMELINE_WINDOWS", "analyse", "timeline"]

FULL_SIZE_SHORT_SIDE = 720  # the before/after pair is shown at the clip's size, at most this short side
TIMELINE_WINDOWS = 24  # windows classified over a whole clip at most (evenly spread)


# ------------------------------------------------------------------------------------------ analyse
@in_model_slot
def analyse(path, variant: str | None = None, k: int | None = None, start_s: float | None = None) -> dict:
    """Darkness, enhancement and recognition of one clip.

    Args:
        path: a video file.
        variant: a model variant name (``list_variants()``); None for the default.
        k: frame-sharing factor 1..16; None for the variant's own.
        start_s: where the classified window starts, in seconds (None: the centred window).
    Returns:
        dict with ``darkness`` {dv, brightness, light (dark, dim or lit), arid_dark, arid_dark_vote, verdict}, ``enhancement`` {action (enhance, soften or
        skip), strength, dv, luma, change, sentence} (what dtcm.adaptive decided), ``frames_before``/``frames_after``
        (lists of uint8 (H, W, 3)), ``diff_before``/``diff_after`` (colour-mapped RGB-difference maps on
        one scale), ``top5`` [(label, prob)] (calibrated: softmax of logits / the variant's temperature),
        ``verdict`` {sure, reason, top, energy} (``dtcm.calibration.verdict``: "not sure" when the top
        probability is below the variant's threshold or the clip looks unlike its training data), ``stc``
        (spatio-temporal inconsistency L_STC of the enhanced clip), ``k``, ``variant``, ``timings``
        {stage: seconds}, ``info`` (video facts), ``window`` {first, last (frame numbers from 1), start_s,
        end_s, frames, sentence}, ``full_before``/``full_after`` (the window's middle frame at the clip's
        size, at most 720p, before and after enhancement).
        A photo (jpg, png, bmp, webp) is enhanced only: ``top5`` is empty, ``stc`` None and ``note`` says that
        recognition needs a clip.
    """
    from dtcm import calibration, darkness, device, video

    k = check_k(k)
    path = check_path(path)
    timings = {}
    t0 = time.perf_counter()
    model = get_model(variant)
    cfg = model.config
    timings["load model"] = time.perf_counter() - t0
    if is_image(path):
        return _analyse_photo(path, model, variant, timings, t0)
    info, dark_frames, clip, start = _decode(path, cfg, start_s, timings)
    t = time.perf_counter()
    dv = darkness.darkness_score(dark_frames)
    x = video.to_batch(clip, cfg.short_side, cfg.crop_size).to(device.device_of(model))
    timings["darkness + preprocess"] = time.perf_counter() - t
    y, decision, logits, stc = _classify(model, x, k, dv, timings)
    result = {
        "variant": variant or default_variant(),
        "k": k or cfg.k,
        "darkness": _darkness(dv, darkness.is_dark_vote(dark_frames)),
        "enhancement": decision.to_dict(),
        "top5": topk(logits, cfg),
        "verdict": calibration.verdict(logits[0].float().cpu().numpy(), cfg),
        "stc": stc,
        "info": {"frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height},
        "window": _window(info, cfg.clip_len, start),
        **panels(to_uint8(x), to_uint8(y)),
    }
    t = time.perf_counter()
    result["full_before"], result["full_after"] = _full_size_pair(model, path, info, result["window"])
    timings["full-size frame"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result["timings"] = timings
    return result


def _decode(path: str, cfg, start_s, timings: dict) -> tuple:
    """(video facts, the 8 frames Dv is measured on, the window to classify, its first frame or None)."""
    from dtcm import darkness, video

    t = time.perf_counter()
    info = video_call(video.probe, path)
    idx = darkness.segment_indices(max(info.frames, 1))
    dark_frames = video_call(video.read_frames, path, idx, size=cfg.short_side)
    start = _window_start(start_s, info, cfg.clip_len)
    clip = video_call(video.read_clip, path, cfg.clip_len, "dense", start=start, size=cfg.short_side)
    timings["decode"] = time.perf_counter() - t
    return info, dark_frames, clip, start


def _classify(model, x, k: int | None, dv: float, timings: dict) -> tuple:
    """The model's part of ``analyse``: enhance ``x`` (1, 3, T, H, W), apply the pipeline's decision, classify.

    Returns:
        (the decided clip y, the dtcm.adaptive decision, (1, C) logits, L_STC of y against x).
    """
    import torch

    from dtcm import device
    from dtcm.losses import stc_loss

    dev = device.device_of(model)
    with torch.inference_mode():
        t = time.perf_counter()
        y, _ = model.enhance(x, k)
        decision = _decide(dv, x, y)
        y = x + decision.strength * (y - x)  # skip (0), soften or enhance in full (1): dtcm.adaptive
        device.synchronize(dev)
        timings["enhance"] = time.perf_counter() - t
        t = time.perf_counter()
        logits = classify(model, y)
        device.synchronize(dev)
        timings["classify"] = time.perf_counter() - t
        stc = float(stc_loss(y, x))
    return y, decision, logits, stc


def _decide(dv: float, x, y):
    """The pipeline's decision for this clip from Dv and the enhancer's own change (dtcm.adaptive)."""
    from dtcm import adaptive

    if y is x:  # no enhancer
        return adaptive.Decision("skip", 0.0, dv, adaptive.luma_of_dv(dv), 0.0, "This variant has no enhancer.")
    luma = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)
    change = float(((y - x) * luma).sum(1).abs().mean()) * 255
    return adaptive.decide(dv, change)


def _darkness(dv: float, dark_vote: bool) -> dict:
    """The clip's light on the one scale (``light``, ``brightness``) and the paper's ARID-dark tests."""
    from dtcm.darkness import brightness, is_dark, light_level

    return {
        "dv": dv,
        "brightness": brightness(dv),  # 0..255
        "light": light_level(dv),  # dark, dim or lit
        "arid_dark": is_dark(dv),  # the paper's Eq. 14: Dv < -0.877
        "arid_dark_vote": dark_vote,  # the released tool's frame vote at the same threshold
        "verdict": darkness_sentence(dv),
    }


def _full_size_pair(model, path, info, window: dict) -> tuple[np.ndarray, np.ndarray]:
    """The middle frame of the recognised window at (nearly) the clip's own size, before and after."""
    from dtcm import video
    from dtcm.enhance_cli import enhance_frames

    mid = (window["first"] + window["last"]) // 2 - 1
    size = min(info.width, info.height, FULL_SIZE_SHORT_SIDE)
    frame = video_call(video.read_frames, path, [min(mid, max(info.frames - 1, 0))], size=size)  # (1, H, W, 3)
    if model.enhancer is None:
        return frame[0], frame[0]
    return frame[0], enhance_frames(model, frame, 1, estimate_size=256)[0]


def _window_start(start_s, info, clip_len: int) -> int | None:
    """The first frame of the window starting ``start_s`` seconds in (None: the centred window)."""
    if start_s is None:
        return None
    start_s = check_seconds(start_s)
    last = max(0.0, (info.frames - clip_len) / (info.fps or 1.0))
    if not 0 <= start_s <= last + 1e-6:
        raise ServiceError(f"the segment start must be from 0 to {last:.1f} s for this clip, got {start_s:g}")
    return min(int(round(start_s * (info.fps or 1.0))), max(0, info.frames - clip_len))


def _window(info, clip_len: int, start: int | None) -> dict:
    """Which frames the model classified, as numbers and one sentence."""
    from dtcm import video

    idx = video.clip_indices(max(info.frames, 1), clip_len, "dense", start)
    fps = info.fps or 1.0
    first, last = int(idx.min()), int(idx.max())
    out = {"first": first + 1, "last": last + 1, "start_s": first / fps, "end_s": (last + 1) / fps, "frames": clip_len}
    looped = " (the clip is shorter, so they repeat)" if info.frames < clip_len else ""
    out["sentence"] = (
        f"The actions were recognised from {clip_len} frames, {first + 1}-{last + 1} of {info.frames} "
        f"({out['start_s']:.1f}-{out['end_s']:.1f} s of {info.frames / fps:.1f} s){looped}."
    )
    return out


# -------------------------------------------------------------------------------------------- photo
def _analyse_photo(path: str, model, variant, timings: dict, t0: float) -> dict:
    """Analyse on a photo: darkness and enhancement (with the pipeline's decision), no recognition."""
    from dtcm import adaptive, darkness, still
    from dtcm.enhance_cli import enhance_frames

    if model.enhancer is None:
        raise ServiceError("recognition needs a clip, and this variant has no enhancer to apply to a photo")
    t = time.perf_counter()
    photo = image_call(still.load_photo, path)
    dv = darkness.darkness_score(photo[None])
    timings["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    full = enhance_frames(model, photo[None], k=1, estimate_size=None)
    decision = adaptive.decide(dv, adaptive.luma_change(photo[None], full))
    shown = still.photo_panels(photo, lambda f: adaptive.apply_decision(f, full, decision))
    timings["enhance"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    h, w = photo.shape[:2]
    return {
        "variant": variant or default_variant(),
        "k": 1,
        "darkness": _darkness(dv, darkness.is_dark(dv)),
        "enhancement": decision.to_dict(),
        "info": {"frames": 1, "fps": 0.0, "width": w, "height": h},
        "timings": timings,
        **{key: v for key, v in shown.items() if key != "seconds"},
    }


# ----------------------------------------------------------------------------------------- timeline
@in_model_slot
def timeline(path, variant: str | None = None, k: int | None = None, windows: int = TIMELINE_WINDOWS) -> dict:
    """The action over the whole clip: windows of ``clip_len`` frames spread evenly, each classified.

    Returns:
        dict with ``windows`` [{start_s, end_s, first, last, top1, p, top5}], ``duration_s``, ``fps``,
        ``stride_frames`` and ``seconds`` (time taken).
    """
    from dtcm import video

    k = check_k(k)
    path = check_path(path)
    t0 = time.perf_counter()
    model = get_model(variant)
    cfg = model.config
    info = video_call(video.probe, path)
    total, fps = max(info.frames, 1), info.fps or 1.0
    n = max(1, min(int(windows), TIMELINE_WINDOWS, (total + cfg.clip_len - 1) // cfg.clip_len))
    starts = np.linspace(0, max(0, total - cfg.clip_len), n).round().astype(int)  # (n,)
    logits = _classify_windows(model, path, total, starts, k)  # (n, C)
    out = []
    for i, s in enumerate(starts):
        top5 = topk(logits[i : i + 1], cfg)
        last = int(s) + min(cfg.clip_len, total) - 1
        row = {"start_s": s / fps, "end_s": (last + 1) / fps, "first": int(s) + 1, "last": last + 1}
        out.append({**row, "top1": top5[0][0], "p": top5[0][1], "top5": top5})
    return {
        "windows": out,
        "duration_s": total / fps,
        "fps": fps,
        "stride_frames": int(starts[1] - starts[0]) if n > 1 else 0,
        "seconds": time.perf_counter() - t0,
    }


def _classify_windows(model, path: str, total: int, starts: np.ndarray, k: int | None):
    """(n, C) logits of the ``clip_len``-frame windows starting at ``starts``, all in one batch."""
    import torch

    from dtcm import device, video

    cfg, T = model.config, model.config.clip_len
    idx = np.concatenate([video.clip_indices(total, T, "dense", int(s)) for s in starts])
    frames = video_call(video.read_frames, path, idx, size=cfg.short_side)  # (n * T, h, w, 3)
    x = torch.cat(
        [video.to_batch(frames[i * T : (i + 1) * T], cfg.short_side, cfg.crop_size) for i in range(len(starts))]
    )
    return device.infer(model, x, k)  # (n, C)
