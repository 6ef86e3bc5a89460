"""Compare enhancers: the same clip through classical and learned enhancers, all classified by one model."""

from __future__ import annotations

import os
import time

from dtcm.images import is_image
from dtcm.pipeline import PUBLISHED_ENV
from dtcm.service.inputs import ServiceError, check_k, check_path, image_call, video_call
from dtcm.service.models import get_model, in_model_slot, list_variants
from dtcm.service.panels import mean_luma, panels, to_uint8
from dtcm.service.predict import classify, topk
from dtcm.service.ui import METHOD_LABELS

__all__ = ["ALL_METHODS", "ENHANCER_ONLY", "METHODS", "PUBLISHED_ENV", "check_methods", "compare"]

ALL_METHODS = tuple(METHOD_LABELS)  # none, gic, he, clahe, msr, zerodce-published, zerodce, dtcm
# the Compare tab's enhancers: the published Zero-DCE when this server has it
METHODS = tuple(m for m in ALL_METHODS if m != "zerodce-published" or os.environ.get(PUBLISHED_ENV))
ENHANCER_ONLY = {"zerodce": "zerodce-real", "lightdce": "lightdce-real"}  # zero-reference enhancer variants


@in_model_slot
def compare(path, methods=METHODS, variant: str | None = None, k: int | None = None) -> dict:
    """The same clip through several enhancers, all classified by the same model.

    Args:
        path: a video file.
        methods: any of ``METHODS``: none, gic, he, clahe, msr (classical), zerodce, dtcm (learned).
        variant: the classifier (a DTCM variant); its own enhancer is the "dtcm" method.
        k: frame sharing for the learned enhancers.
    Returns:
        dict method -> {frames_before, frames_after, diff_before, diff_after, stc, luma (mean brightness of
        the enhanced frames, 0..255), top5, verdict (the not-sure rule of ``analyse``), seconds}, plus
        ``"_order"`` listing the methods in order and ``"_darkness"``, the input's light as ``analyse`` says it.
    """
    from dtcm import calibration, darkness, device, video
    from dtcm.service.analysis import _darkness

    k = check_k(k)
    path = check_path(path)
    methods = check_methods(methods)
    model = get_model(variant)
    cfg = model.config
    if is_image(path):
        return _compare_photo(path, methods, model)
    clip = video_call(video.read_clip, path, cfg.clip_len, "dense", size=cfg.short_side)
    idx = darkness.segment_indices(max(video_call(video.probe, path).frames, 1))
    dark_frames = video_call(video.read_frames, path, idx, size=cfg.short_side)  # the 8 frames analyse reads
    x = video.to_batch(clip, cfg.short_side, cfg.crop_size).to(device.device_of(model))
    before = to_uint8(x)
    dv = darkness.darkness_score(dark_frames)
    out = {"_order": list(methods), "_darkness": _darkness(dv, darkness.is_dark_vote(dark_frames))}
    for m in methods:
        t = time.perf_counter()
        enhanced = _through(m, model, clip, x, k)
        if enhanced is None:
            out[m] = {"error": _missing(m)}
            continue
        y, logits, stc = enhanced
        after = to_uint8(y)
        out[m] = {
            **panels(before, after),
            "stc": stc,
            "luma": mean_luma(after),  # 0..255
            "top5": topk(logits, cfg),
            "verdict": calibration.verdict(logits[0].float().cpu().numpy(), cfg),
            "seconds": time.perf_counter() - t,
        }
    return out


def check_methods(methods) -> list[str]:
    """The enhancers asked for, each once, in the order first asked: at most one run per method that exists.

    Example:
        >>> check_methods(["none", "dtcm", "none"])
        ['none', 'dtcm']
    """
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, (list, tuple)) or not methods:
        raise ServiceError(f"choose at least one enhancer to compare from {', '.join(ALL_METHODS)}")
    unknown = sorted({repr(m)[:40] for m in methods if not isinstance(m, str) or m not in ALL_METHODS})
    if unknown:
        raise ServiceError(f"unknown enhancers {', '.join(unknown[:5])}; choose from {', '.join(ALL_METHODS)}")
    return list(dict.fromkeys(methods))  # at most len(ALL_METHODS)


def _through(method: str, model, clip, x, k: int | None):
    """(enhanced clip, its logits, its L_STC) for one method, or None when its weights are not installed."""
    import torch

    from dtcm import classic, device, video
    from dtcm.losses import stc_loss

    cfg = model.config
    with torch.inference_mode():
        if method == "none":
            y = x
        elif method in classic.CLASSIC_ENHANCERS:
            y = video.to_batch(classic.enhance_classic(method, clip), cfg.short_side, cfg.crop_size)
            y = y.to(device.device_of(model))
        elif method == "dtcm":
            y, _ = model.enhance(x, k)
        else:
            enh = _enhancer_model(method)
            if enh is None:
                return None
            y, _ = enh.enhance(x, k if k is not None else 1)
        return y, classify(model, y), float(stc_loss(y, x))


def _enhancer_model(name: str):
    """A zero-reference enhancer variant for the Compare tab, or None when it is not installed."""
    if name == "zerodce-published":
        folder = os.environ.get(PUBLISHED_ENV)
        return get_model(folder) if folder else None
    variant = ENHANCER_ONLY[name]
    if variant in list_variants("enhancer"):
        return get_model(variant)
    return None


def _missing(m: str) -> str:
    if m == "zerodce-published":
        return f"the published Zero-DCE is not installed here (set {PUBLISHED_ENV} to a dtcm import-zerodce folder)"
    return f"no {m} weights are installed ({ENHANCER_ONLY[m]})"


def _compare_photo(path: str, methods, model) -> dict:
    """Compare on a photo: every enhancer on the one image, nothing classified (``still.IMAGE_NOTE``)."""
    from dtcm import classic, darkness, still
    from dtcm.enhance_cli import enhance_frames
    from dtcm.service.analysis import _darkness

    photo = image_call(still.load_photo, path)
    dv = darkness.darkness_score(photo[None])
    out = {"_order": list(methods), "_note": still.IMAGE_NOTE, "_darkness": _darkness(dv, darkness.is_dark(dv))}
    for m in methods:
        if m == "none":
            out[m] = still.photo_panels(photo, lambda f: f)
        elif m in classic.CLASSIC_ENHANCERS:
            out[m] = still.photo_panels(photo, lambda f, m=m: classic.enhance_classic(m, f))
        else:
            enh = model if m == "dtcm" else _enhancer_model(m)
            if enh is None or enh.enhancer is None:
                out[m] = {"error": _missing(m) if enh is None else f"the variant has no enhancer ({m})"}
                continue
            out[m] = still.photo_panels(photo, lambda f, e=enh: enhance_frames(e, f, k=1, estimate_size=None))
    return out
