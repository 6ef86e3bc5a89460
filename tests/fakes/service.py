"""A light stand-in for :mod:`dtcm.service`: the same public names, signatures and return shapes, no model.

Results are made up on the spot from small numpy arrays (no torch, no decoding); the pure parts of the real
service (its constants, sentences, error class and plotly figures) are taken from it as they are, so the UIs
format and draw exactly what they would. ``calls`` records every call as ``(name, args, kwargs)``;
``reset()`` forgets the calls, the jobs and the fine-tuned variants.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dtcm import service as _real  # its listing of examples/
from dtcm.adaptive import decide
from dtcm.config import ARID_CLASSES, DTCMConfig
from dtcm.darkness import is_dark
from dtcm.images import IMAGE_SUFFIXES

# the pure parts of the real service, as they are
from dtcm.service import (  # noqa: E402, F401 (re-exported: the UIs read them from here)
    ACTIVE_JOB_STATES,
    ALL_METHODS,
    BACKBONES,
    COMPARE_HELP,
    DARKNESS_HELP,
    K_CHOICES,
    K_HELP,
    K_RANGE,
    LIGHT_SCALE,
    LOSS_NAMES,
    METHOD_LABELS,
    METHODS,
    MODEL_CACHE_SIZE,
    MODEL_CONCURRENCY,
    PUBLISHED_ENV,
    SYNTHETIC_SMALL,
    VIDEO_SUFFIXES,
    WRITES_ENV,
    ServiceError,
    loss_figure,
    not_sure_sentence,
    timeline_figure,
    top5_figure,
)
from dtcm.service.analysis import _darkness
from dtcm.service.finetune import _base_defaults  # training's defaults as the real form reads them
from dtcm.service.finetune_check import verdict_sentence
from dtcm.service.server import LOSS_WEIGHT_MAX, LR_MAX

FRAMES = 8  # frames per gallery, as the real service shows
VARIANTS = {  # two variants of one tiny model, trained with W_STC 4 (the default) and 0
    "tiny": {"path": "/nonexistent/tiny", "description": "tiny test model, W_STC 4", "w_stc": 4.0, "k": 4},
    "tiny_wstc0": {"path": "/nonexistent/tiny_wstc0", "description": "tiny test model, W_STC 0", "w_stc": 0.0, "k": 4},
}
DV = [-0.92]  # the darkness score of every clip the fake analyses (a test may set another)
calls: list[tuple[str, tuple, dict]] = []
_jobs: dict[str | None, dict] = {}
_runtime: dict[str, dict] = {}
_visitor: list[str | None] = [None]  # the key of as_visitor, innermost last


def reset() -> None:
    calls.clear()
    _jobs.clear()
    _runtime.clear()
    DV[:] = [-0.92]


def _called(name: str, *args, **kwargs) -> None:
    calls.append((name, args, kwargs))


def _like(real):
    """Give a fake function the real one's signature: it is called with every argument bound, defaults too."""
    signature = inspect.signature(real)

    def give(fake):
        @functools.wraps(fake)
        def call(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return fake(**bound.arguments)

        call.__signature__ = signature
        return call

    return give


def _readable(path) -> str:
    """A file the fake pretends to decode: a missing one, or an .mp4 without an MP4 header, is refused by name."""
    p = Path(str(path or ""))
    if not p.is_file() or (p.suffix.lower() == ".mp4" and b"ftyp" not in p.read_bytes()[:12]):
        raise ServiceError(f"{p.name!r} could not be read as a video; upload a clip in another format")
    return str(p)


def _frames(n: int, level: int, size=(24, 32)) -> list[np.ndarray]:
    return [np.full((*size, 3), level, np.uint8) for _ in range(n)]


# ------------------------------------------------------------------------------------------ variants
def list_variants(kind: str = "classifier", owner: str | None = None) -> dict[str, dict]:
    _called("list_variants", kind, owner=owner)
    who = owner if owner is not None else _visitor[-1]
    mine = {n: e for n, e in _runtime.items() if e.get("owner") in (None, who)}
    return {} if kind == "enhancer" else {**VARIANTS, **mine}


def default_variant() -> str:
    return "tiny"


def class_names(variant: str | None = None, owner: str | None = None) -> list[str]:
    return list(ARID_CLASSES)


def wstc_choices() -> list[float]:
    return sorted({float(e["w_stc"]) for e in list_variants().values() if e.get("w_stc") is not None})


def variant_for_wstc(w_stc: float) -> str:
    return min(VARIANTS, key=lambda n: (abs(VARIANTS[n]["w_stc"] - float(w_stc)), n))


def get_model(variant: str | None = None, owner: str | None = None):
    _called("get_model", variant, owner=owner)
    return SimpleNamespace(config=DTCMConfig(backbone="shufflenetv2", width_mult=0.25))


def register_variant(name: str, path: str | Path, **entry) -> None:
    _runtime[name] = {"path": str(path), "runtime": True, **entry}


@contextlib.contextmanager
def as_visitor(owner: str | None):
    _visitor.append(owner)
    try:
        yield
    finally:
        _visitor.pop()


def start_app(name: str, folders=(), files=None) -> None:
    _called("start_app", name)


def temp_file(name: str, owner: str | None = None, size: int = 0) -> str:
    return str(Path(tempfile.mkdtemp(prefix="dtcm-fake-")) / Path(name).name)


def model_slot():
    import contextlib

    return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------ examples
def example_clips() -> list[tuple[str, str]]:
    return _real.example_clips()  # a listing of examples/: no decoding


def example_previews() -> list[tuple[str, np.ndarray, str]]:
    return [(path, _frames(1, 90)[0], caption) for path, caption in example_clips()]


def preview_video(path, out_dir=None) -> dict:
    return {"path": _readable(path), "transcoded": False, "note": ""}


# --------------------------------------------------------------------------------------- recognition
def _window(start_s: float | None) -> dict:
    start = float(start_s or 0.0)
    return {
        "first": 1,
        "last": 16,
        "start_s": start,
        "end_s": start + 1.6,
        "frames": 16,
        "sentence": f"The actions were recognised from 16 frames, 1-16 of 24 ({start:.1f}-{start + 1.6:.1f} s of 2.4 s).",
    }


def analyse(path, variant: str | None = None, k: int | None = None, start_s: float | None = None) -> dict:
    _called("analyse", path, variant, k, start_s=start_s)
    path = _readable(path)
    photo = Path(path).suffix.lower() in IMAGE_SUFFIXES
    n = 1 if photo else FRAMES
    top5 = [] if photo else [("Drink", 0.6), ("Jump", 0.2), ("Pick", 0.1), ("Pour", 0.05), ("Push", 0.05)]
    out = {
        "variant": variant or default_variant(),
        "k": 1 if photo else (k or 4),
        "darkness": _darkness(DV[0], is_dark(DV[0])),  # the real sentences for the darkness a test sets
        "enhancement": decide(DV[0], 40.0).to_dict(),
        "frames_before": _frames(n, 10),
        "frames_after": _frames(n, 120),
        "diff_before": _frames(n - 1 if n > 1 else 0, 5),
        "diff_after": _frames(n - 1 if n > 1 else 0, 40),
        "info": {"frames": 1 if photo else 24, "fps": 0.0 if photo else 10.0, "width": 32, "height": 24},
        "timings": {"decode": 0.01, "enhance": 0.02, "classify": 0.03, "total": 0.06},
    }
    if photo:
        return {**out, "note": "Recognition needs a clip: a photo is enhanced only.", "stc": None, "top5": []}
    verdict = {"sure": True, "reason": "", "top": top5[0], "energy": 5.0}
    full = {"full_before": _frames(1, 10)[0], "full_after": _frames(1, 120)[0]}
    return {**out, **full, "top5": top5, "verdict": verdict, "stc": 0.0123, "window": _window(start_s)}


def timeline(path, variant: str | None = None, k: int | None = None, windows: int = 24) -> dict:
    _called("timeline", path, variant, k)
    _readable(path)
    rows = [
        {"start_s": s, "end_s": s + 1.6, "first": 1 + 8 * i, "last": 16 + 8 * i, "top1": "Drink", "p": 0.6}
        for i, s in enumerate((0.0, 0.8))
    ]
    rows = [{**r, "top5": [("Drink", 0.6)]} for r in rows]
    return {"windows": rows, "duration_s": 2.4, "fps": 10.0, "stride_frames": 8, "seconds": 0.1}


@_like(_real.enhance_video)
def enhance_video(path, variant, k, out_path, estimate_size, on_progress, start_s) -> dict:
    """The clip itself, copied to ``out_path`` (a fake enhancement), with the real result's keys."""
    _called("enhance_video", path, variant, k, out_path=out_path, start_s=start_s)
    _readable(path)
    if out_path is None:
        fd, out_path = tempfile.mkstemp(suffix=".mp4", prefix="fake_enhanced_")
        os.close(fd)
    shutil.copyfile(path, out_path)
    if on_progress is not None:
        on_progress(24, 24)
    note = "Enhanced all 24 frames at the clip's own size, 32x24 in 0.1 s."
    size = {"width": 32, "height": 24, "source_width": 32, "source_height": 24}
    counts = {"frames": 24, "source_frames": 24, "first": 1}
    return {"path": str(out_path), **counts, **size, "fps": 10.0, "seconds": 0.1, "note": note}


def enhance_clip(
    path, variant: str | None = None, k: int | None = None, out_path=None, estimate_size: int | None = 256
) -> str:
    return enhance_video(path, variant, k, out_path=out_path, estimate_size=estimate_size)["path"]


def compare(path, methods=METHODS, variant: str | None = None, k: int | None = None) -> dict:
    _called("compare", path, list(methods), variant, k)
    _readable(path)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise ServiceError(f"unknown enhancers {unknown}; choose from {', '.join(ALL_METHODS)}")
    out = {"_order": list(methods), "_darkness": _darkness(DV[0], is_dark(DV[0]))}
    for i, m in enumerate(methods):
        panels = {"frames_before": _frames(FRAMES, 10), "frames_after": _frames(FRAMES, 20 + 10 * i)}
        panels.update(diff_before=_frames(FRAMES - 1, 5), diff_after=_frames(FRAMES - 1, 5 + i), diff_scale=1.0)
        top5 = [("Drink", 0.5 + 0.01 * i), ("Jump", 0.2), ("Pick", 0.1), ("Pour", 0.1), ("Push", 0.05)]
        out[m] = {
            **panels,
            "stc": 0.0 if m == "none" else 0.01 * i,
            "luma": 20.0 + 10 * i,
            "top5": top5,
            "verdict": _verdict(top5[0], sure=i > 0),  # the first enhancer's answer is not sure
            "seconds": 0.01,
        }
    return out


def _verdict(top: tuple[str, float], sure: bool) -> dict:
    reason = f"{top[0]} at {top[1]:.0%} probability" if sure else f"the best guess, {top[0]}, has only {top[1]:.0%}"
    return {"sure": sure, "reason": reason, "top": top, "energy": 5.0}


# ----------------------------------------------------------------------------------------- fine-tune
def writes_enabled() -> bool:
    return os.environ.get(WRITES_ENV, "1") != "0"


def _check_writes() -> None:
    if not writes_enabled():
        raise ServiceError(f"fine-tuning, uploads, saving and pushing are switched off on this server ({WRITES_ENV}=0)")


def finetune_limits() -> dict:
    backbones = [b for b in BACKBONES if b != "resnext101"]
    machine = {"batch_max": 6, "epochs_max": 20, "memory_gb": 8.0, "time_min": 30.0, "queue": 4}
    bounds = {"alpha_max": LOSS_WEIGHT_MAX, "w_stc_max": LOSS_WEIGHT_MAX, "lr_max": LR_MAX, "k_range": K_RANGE}
    return {"backbones": backbones, **machine, **bounds}


def finetune_defaults() -> dict:
    cfg = DTCMConfig()
    settings = {"backbone": "shufflenetv2", "alpha": float(cfg.alpha), "w_stc": float(cfg.w_stc), "k": int(cfg.k)}
    base = _base_defaults()
    return {**base, **settings, "batch_size": min(base["batch_size"], finetune_limits()["batch_max"])}


def finetune_datasets() -> dict[str, str]:
    return {"DarkActions-synth, small (rendered on first use)": SYNTHETIC_SMALL}


def prepare_dataset_upload(zip_path, owner: str | None = None) -> str:
    _called("prepare_dataset_upload", zip_path, owner=owner)
    _check_writes()
    return f"upload:{Path(zip_path).stem}"


def _status(owner) -> dict:
    job = _jobs.get(owner)
    idle = {"state": "idle", "message": "no fine-tune has run yet", "metrics": [], "epochs": [], "settings": {}}
    base = job or idle
    out = {"variant": None, "saved_as": None, "check": None, "verdict": None, "output_dir": None, **base}
    out = {"elapsed": 0.0, "peak_memory_gb": 0.0, "progress": None, **out}
    return {**out, "limits": finetune_limits()}


@_like(_real.start_finetune)
def start_finetune(dataset, owner, **settings) -> dict:
    """A job that has run one step at once, in state "running"."""
    _called("start_finetune", dataset, owner=owner, **settings)
    _check_writes()
    settings = {"dataset": dataset, **settings}
    step = {"step": 1, "epoch": 1, "total": 1.5, "ar": 1.2, "stc": 0.02, "dark": 0.3, "acc": 0.5, "time": time.time()}
    progress = {"step": 1, "total_steps": 4, "eta_s": 90.0}
    _jobs[owner] = {"state": "running", "message": "training", "metrics": [step], "epochs": [], "settings": settings}
    _jobs[owner]["progress"] = progress
    return _status(owner)


def finetune_status(owner: str | None = None) -> dict:
    return _status(owner)


def stop_finetune(wait: float = 0.0, owner: str | None = None) -> dict:
    job = _jobs.get(owner)
    if job is None:
        raise ServiceError("you have no fine-tune running to stop")
    # the fake's fine-tune ends worse than the model it started from, as a default one on a small set may
    result, start = {"top1": 0.09, "top5": 0.55, "n": 11}, {"top1": 0.45, "top5": 0.91, "n": 11}
    check = {"verdict": "worse", "start_name": "tiny", "start": start, "result": result, "n": 11}
    job.update(state="stopped", message="stopped after step 1", progress=None, variant="finetune-fake")
    job.update(check=check, verdict=verdict_sentence(check))
    w_stc = job["settings"]["w_stc"]
    register_variant("finetune-fake", "/nonexistent/finetune-fake", w_stc=w_stc, k=4, verdict="worse", owner=owner)
    return _status(owner)


def resume_finetune(owner: str | None = None) -> dict:
    _check_writes()
    job = _jobs.get(owner)
    if job is None or job["state"] not in ("stopped", "failed"):
        raise ServiceError("you have no stopped fine-tune with a checkpoint to resume; start a new one")
    job.update(state="running", message="training")
    return _status(owner)


def new_owner_key(holder: str | None = None) -> str:
    return secrets.token_hex(16)


def claim_owner_key(key: str | None, holder: str | None) -> str | None:
    return None  # the test app has no browser cookie: every session is a new visitor


def save_finetuned(name: str | None = None, owner: str | None = None) -> str:
    _check_writes()
    status = _status(owner)
    if status["variant"] is None:
        raise ServiceError("you have no finished fine-tune to save")
    _jobs[owner]["saved_as"] = name or status["variant"]
    return name or status["variant"]


def push_finetuned(repo_id: str, token: str | None = None, owner: str | None = None) -> str:
    _check_writes()
    if not isinstance(token, str) or not token.strip():
        raise ServiceError(
            "pushing needs your own Hugging Face token with write access; the server never lends its own"
        )
    return f"https://huggingface.co/{repo_id}/commit/fake"
