"""What the user interfaces call: analyse a clip, enhance it, compare enhancers, run fine-tune jobs.

Both UIs (``app.py`` for Gradio, ``streamlit_app.py`` and ``pages/``) import this module and nothing of
torch; every function returns plain data (numpy arrays, floats, lists, dicts) and, where a chart is
wanted, a plotly figure. Errors a user can cause are ``ServiceError`` (a ``ValueError``) with one human
sentence; the UIs show it as is.

Example:
    >>> from dtcm import service
    >>> result = service.analyse("dark_clip.mp4", variant=None, k=4)
    >>> result["top5"][0]
    ('Drink', 0.93)
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from dtcm.images import is_image
from dtcm.jobs import ACTIVE as ACTIVE_JOB_STATES  # job states that move on by themselves

__all__ = [
    "BACKBONES",
    "K_CHOICES",
    "ALL_METHODS",
    "METHODS",
    "METHOD_LABELS",
    "PUBLISHED_ENV",
    "ServiceError",
    "analyse",
    "compare",
    "default_variant",
    "enhance_clip",
    "get_model",
    "list_variants",
    "not_sure_sentence",
    "timeline",
    "top5_figure",
    "variant_for_wstc",
    "wstc_choices",
]

K_RANGE = (1, 16)  # the k slider's range
K_CHOICES = (1, 2, 4, 8, 16)  # the k values the paper studies (Table IX)
COMPARE_HELP = (
    "How to read it: brightness is the enhanced frames' mean grey level (0 black, 255 white; the input's is "
    "the baseline). Flicker (L_STC) measures how much the enhancement changes differences between neighbouring "
    "pixels and frames: lower is steadier, but an enhancer that brightens little also changes little, so "
    "compare flicker between enhancers of similar brightness. 'None' is the input itself: 0 by definition."
)
K_HELP = "Higher is faster, results nearly the same: one curve estimate is shared by k frames (1 = every frame)."
PUBLISHED_ENV = "DTCM_ZERODCE_PUBLISHED"  # a folder made by `dtcm import-zerodce` (the authors' weights)
ALL_METHODS = ("none", "gic", "he", "clahe", "msr", "zerodce-published", "zerodce", "dtcm")
# the Compare tab's enhancers: the published Zero-DCE when this server has it
METHODS = tuple(m for m in ALL_METHODS if m != "zerodce-published" or os.environ.get(PUBLISHED_ENV))
METHOD_LABELS = {  # what both UIs call each enhancer
    "none": "None (input)",
    "gic": "GIC (gamma)",
    "he": "HE (histogram eq.)",
    "clahe": "CLAHE",
    "msr": "MSR (retinex)",
    "zerodce-published": "Zero-DCE (published weights)",
    "zerodce": "Zero-DCE (trained here)",
    "dtcm": "DTCM",
}
SHOWN_FRAMES = 8  # frames per gallery
MODEL_CACHE_SIZE = int(os.environ.get("DTCM_MODEL_CACHE", "4"))  # models held in memory at once
ENHANCER_ONLY = {"zerodce": "zerodce-real", "lightdce": "lightdce-real"}  # zero-reference enhancer variants


MODEL_CONCURRENCY = int(os.environ.get("DTCM_CONCURRENCY", "2"))  # model calls at once, over every endpoint and UI
SLOT_WAIT_S = 300.0  # a request waits this long for a free model slot before "the server is busy"


class ServiceError(ValueError):
    """A problem the user can fix, in one sentence."""


_model_slots = threading.BoundedSemaphore(max(1, MODEL_CONCURRENCY))


@contextlib.contextmanager
def model_slot():
    """Hold one of the server's ``DTCM_CONCURRENCY`` model slots: analyse, enhance and compare share them."""
    if not _model_slots.acquire(timeout=SLOT_WAIT_S):
        raise ServiceError("the server is busy with other requests; please try again in a minute")
    try:
        yield
    finally:
        _model_slots.release()


def _in_model_slot(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with model_slot():
            return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------- models
_cache: collections.OrderedDict = collections.OrderedDict()
_cache_lock = threading.Lock()
_runtime_variants: dict[str, dict] = {}  # fine-tuned in this server process: name -> index entry


def list_variants(kind: str = "classifier") -> dict[str, dict]:
    """Selectable models: the shipped ones of ``weights/index.json`` and this server's fine-tunes.

    Args:
        kind: "classifier" (full DTCM models), "enhancer" (zero-reference enhancers) or "all".
    Returns:
        name -> index entry (description, w_stc, k, metrics, path).
    """
    from dtcm import hub

    out = {**hub.list_variants(), **_runtime_variants}
    if kind == "all":
        return out
    want_enhancer = kind == "enhancer"
    return {n: e for n, e in out.items() if bool(e.get("enhancer_only")) == want_enhancer}


def default_variant() -> str:
    from dtcm import hub

    variants = list_variants()
    if not variants:
        raise ServiceError("no model weights are installed: the weights/ folder has no classifier variants")
    default = hub.default_variant()
    return default if default in variants else next(iter(variants))


def class_names(variant: str | None = None) -> list[str]:
    """The actions a variant knows, read from its config (no model is loaded)."""
    from dtcm.config import DTCMConfig

    name = variant or default_variant()
    entry = list_variants("all").get(name)
    if entry is None:
        raise ServiceError(f"there is no variant {name!r}")
    return list(DTCMConfig.load(Path(entry["path"]) / "config.json").class_names)


def wstc_choices() -> list[float]:
    """The W_STC values that have a trained variant, for a slider that snaps to them."""
    return sorted({float(e["w_stc"]) for e in list_variants().values() if e.get("w_stc") is not None})


def variant_for_wstc(w_stc: float) -> str:
    """The shipped variant trained with the W_STC value nearest to ``w_stc``."""
    variants = {n: e for n, e in list_variants().items() if e.get("w_stc") is not None and not e.get("runtime")}
    if not variants:
        return default_variant()
    return min(variants, key=lambda n: (abs(float(variants[n]["w_stc"]) - float(w_stc)), n))


def _set_threads() -> None:
    """One torch thread per two cores (``DTCM_TORCH_THREADS`` overrides): on a small shared CPU, two threads
    stall each other (measured 5-40x slower than one on our 2-core machines, benchmarks/enhancer_speed.py)."""
    import torch

    threads = int(os.environ.get("DTCM_TORCH_THREADS", max(1, (os.cpu_count() or 2) // 2)))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def get_model(variant: str | None = None):
    """Load a variant once, on the device of :mod:`dtcm.device`, and keep it in a bounded LRU cache
    (``DTCM_MODEL_CACHE`` models)."""
    from dtcm import device, hub

    _set_threads()
    name = variant or default_variant()
    with _cache_lock:
        if name in _cache:
            _cache.move_to_end(name)
            return _cache[name]
        entry = _runtime_variants.get(name)
        try:
            model = device.to_device(hub.resolve_model(entry["path"] if entry else name).eval())
        except ServiceError:
            raise
        except (ValueError, OSError) as exc:  # a DeviceError (DTCM_DEVICE) too
            raise ServiceError(f"model {name!r} could not be loaded: {exc}") from None
        _cache[name] = model
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
        return model


def register_variant(name: str, path: str | Path, **entry) -> None:
    """Make a model folder (e.g. a fine-tune's result) selectable in this server process."""
    _runtime_variants[name] = {"path": str(path), "runtime": True, **entry}
    with _cache_lock:
        _cache.pop(name, None)


# -------------------------------------------------------------------------------------- examples
EXAMPLES_ENV = "DTCM_EXAMPLES_DIR"  # an operator's folder of more example clips (e.g. real footage), shown first
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def example_clips() -> list[tuple[str, str]]:
    """The demo's examples as (path, caption): the operator's folder first, then the project's own clips.

    The project's own (``examples/dark_<action>.mp4``) are rendered by ``scripts/make_examples.py``:
    synthetic actors in the dark, captioned with their true action. Nothing in ``examples/`` comes from
    outside the project.
    """
    own = Path(__file__).resolve().parents[1] / "examples"
    out = []
    extra = os.environ.get(EXAMPLES_ENV)
    for folder, is_own in ((Path(extra).expanduser(), False) if extra else (None, False), (own, True)):
        if folder is None or not folder.is_dir():
            continue
        for f in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
            stem = f.stem.removeprefix("dark_").replace("_", " ")
            caption = f"{stem.title()}: synthetic actor, ARID-dark" if is_own else f"{stem} (from {folder.name}/)"
            out.append((str(f), caption))
    return out


# --------------------------------------------------------------------------------------- preview
BROWSER_PLAYABLE = {(".mp4", "h264"), (".m4v", "h264"), (".webm", "vp8"), (".webm", "vp9"), (".mp4", "av1")}
PREVIEW_SHORT_SIDE = 480  # a transcoded preview is at most this short side


def preview_video(path, out_dir=None) -> dict:
    """A file the browser can play for an upload: the upload itself when it is, else an H.264 copy.

    AVI, MOV, MKV, HEVC or MPEG-4 Part 2 uploads are decoded with PyAV (no ffmpeg binary needed) and
    written as H.264 (at most ``video.LIMITS.max_frames`` frames from the start and a 480-pixel short
    side); the note says so.

    Returns:
        dict with ``path`` (what to show), ``transcoded`` (bool) and ``note`` (empty when nothing changed).
    """
    import tempfile

    from dtcm import video

    path = _check_path(path)
    info = _video_call(video.probe, path)
    if (Path(path).suffix.lower(), info.codec) in BROWSER_PLAYABLE and info.rotation == 0:
        return {"path": path, "transcoded": False, "note": ""}
    size = min(info.width, info.height, PREVIEW_SHORT_SIDE)
    frames, fps = _video_call(video.read_video, path, size=size)
    fd, out = tempfile.mkstemp(suffix=".mp4", prefix="preview_", dir=out_dir)
    os.close(fd)
    try:
        video.write_video(out, frames, fps)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise
    n, h, w = frames.shape[:3]
    part = "" if n >= info.frames else f", its first {n} of {info.frames} frames"
    note = (
        f"Preview converted from {info.codec} to H.264 for the browser ({w}x{h}{part}); the analysis uses the original."
    )
    return {"path": out, "transcoded": True, "note": note}


@functools.lru_cache(maxsize=64)
def _preview_frame(path: str, mtime: float) -> np.ndarray:
    from dtcm import video

    info = video.probe(path)
    frame = video.read_frames(path, [max(info.frames // 2, 0)], size=min(info.width, info.height, 160))[0]
    luma = max(float(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).mean()), 1.0)
    gamma = np.clip(np.log(110 / 255) / np.log(luma / 255), 0.2, 1.0)  # a plain gamma lift, for the eye only
    lut = (255 * (np.arange(256) / 255) ** gamma).round().astype(np.uint8)
    return lut[frame]


def example_previews() -> list[tuple[str, np.ndarray, str]]:
    """Each example's middle frame, brightened so a visitor can see what it shows: (path, image, caption)."""
    out = []
    for path, caption in example_clips():
        try:
            out.append((path, _preview_frame(path, Path(path).stat().st_mtime), caption))
        except Exception:  # an operator's unreadable file gets no preview; it stays in the list
            continue
    return out


# ----------------------------------------------------------------------------------------- input
def _check_k(k) -> int | None:
    if k is None:
        return None
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not K_RANGE[0] <= k <= K_RANGE[1]:
        raise ServiceError(f"k must be a whole number from {K_RANGE[0]} to {K_RANGE[1]}, got {k!r}")
    return k


def _check_path(path) -> str:
    if path is None or str(path) == "":
        raise ServiceError("no video was given: upload a clip (mp4, avi, mov, mkv or webm) or pick an example")
    if not Path(path).is_file():
        raise ServiceError(f"the file {Path(path).name!r} does not exist (it may have expired; upload it again)")
    return str(path)


def _video_call(fn, *args, **kwargs):
    from dtcm.video import VideoError

    try:
        return fn(*args, **kwargs)
    except VideoError as exc:
        raise ServiceError(str(exc)) from None


# -------------------------------------------------------------------------------------- pictures
def rgb_diff_maps(frames: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Colour-mapped RGB-difference images |f_{t+1} - f_t| (channel mean), all on one scale.

    Args:
        frames: uint8 or float (T, H, W, 3); floats are taken on 0..1.
        scale: the difference that maps to the top of the colour map; default: the 99.5th percentile.
    Returns:
        (uint8 (T - 1, H, W, 3) RGB images, the scale used).
    """
    f = frames.astype(np.float32) / (255.0 if frames.dtype == np.uint8 else 1.0)
    d = np.abs(f[1:] - f[:-1]).mean(axis=-1)  # (T-1, H, W)
    if scale is None:
        scale = float(np.percentile(d, 99.5)) if d.size else 1.0
    scale = max(scale, 1e-6)
    idx = np.clip(d / scale * 255, 0, 255).astype(np.uint8)
    maps = np.stack([cv2.applyColorMap(m, cv2.COLORMAP_INFERNO)[..., ::-1] for m in idx]) if len(idx) else idx
    return np.ascontiguousarray(maps), scale


def _pick(n: int, count: int = SHOWN_FRAMES) -> list[int]:
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n, count))})


def _to_uint8(x) -> np.ndarray:
    """(1, 3, T, H, W) float tensor in [0, 1] -> uint8 (T, H, W, 3)."""
    return (x[0].permute(1, 2, 3, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()


def _panels(before: np.ndarray, after: np.ndarray) -> dict:
    """Sampled frames and RGB-difference maps before/after, the maps on one shared scale."""
    _, scale_b = rgb_diff_maps(before)
    _, scale_a = rgb_diff_maps(after)
    scale = max(scale_b, scale_a)
    diff_before, _ = rgb_diff_maps(before, scale)
    diff_after, _ = rgb_diff_maps(after, scale)
    idx = _pick(len(before))
    didx = _pick(len(diff_before))
    return {
        "frames_before": [before[i] for i in idx],
        "frames_after": [after[i] for i in idx],
        "diff_before": [diff_before[i] for i in didx],
        "diff_after": [diff_after[i] for i in didx],
        "diff_scale": scale,
    }


def top5_figure(top5: list[tuple[str, float]], title: str = "Top-5 actions"):
    """A horizontal plotly bar chart of (label, probability) pairs, best on top."""
    import plotly.graph_objects as go

    labels = [label for label, _ in top5][::-1]
    probs = [p for _, p in top5][::-1]
    fig = go.Figure(
        go.Bar(
            x=probs,
            y=labels,
            orientation="h",
            text=[f"{p:.1%}" for p in probs],
            textposition="outside",
            textangle=0,
            cliponaxis=False,
            marker_color="#f59e0b",
        )
    )
    fig.update_layout(
        title=title,
        xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
        height=300,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def _topk(logits, names, k=5, temperature: float = 1.0) -> list[tuple[str, float]]:
    import torch

    probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)[0]
    vals, idx = probs.topk(min(k, probs.numel()))
    return [(names[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)]


# --------------------------------------------------------------------------------------- analyse
@_in_model_slot
def analyse(path, variant: str | None = None, k: int | None = None, start_s: float | None = None) -> dict:
    """Darkness, enhancement and recognition of one clip.

    The model classifies one window of ``clip_len`` consecutive frames: the centred one, or the one
    starting at ``start_s`` seconds; ``window`` in the result says which frames those were.

    Args:
        path: a video file.
        variant: a model variant name (``list_variants()``); None for the default.
        k: frame-sharing factor 1..16; None for the variant's own.
        start_s: where the classified window starts, in seconds (None: the centred window).
    Returns:
        dict with ``darkness`` {dv, dark, dark_vote, verdict}, ``enhancement`` {action (enhance, soften or
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
    import torch

    from dtcm import calibration, darkness, device, video
    from dtcm.losses import stc_loss

    k = _check_k(k)
    path = _check_path(path)
    timings = {}
    t0 = time.perf_counter()
    model = get_model(variant)
    cfg = model.config
    timings["load model"] = time.perf_counter() - t0
    if is_image(path):
        return _analyse_photo(path, model, variant, timings, t0)

    t = time.perf_counter()
    info = _video_call(video.probe, path)
    idx = darkness.segment_indices(max(info.frames, 1))
    dark_frames = _video_call(video.read_frames, path, idx, size=cfg.short_side)
    start = _window_start(start_s, info, cfg.clip_len)
    clip = _video_call(video.read_clip, path, cfg.clip_len, "dense", start=start, size=cfg.short_side)
    timings["decode"] = time.perf_counter() - t

    t = time.perf_counter()
    dv = darkness.darkness_score(dark_frames)
    dev = device.device_of(model)
    x = video.to_batch(clip, cfg.short_side, cfg.crop_size).to(dev)
    timings["darkness + preprocess"] = time.perf_counter() - t

    with torch.inference_mode():
        t = time.perf_counter()
        y, _ = model.enhance(x, k)
        decision = _decide(dv, x, y)
        y = x + decision.strength * (y - x)  # skip (0), soften or enhance in full (1): dtcm.adaptive
        device.synchronize(dev)
        timings["enhance"] = time.perf_counter() - t
        t = time.perf_counter()
        with device.autocast(dev):
            logits = model.classify(y)
        device.synchronize(dev)
        timings["classify"] = time.perf_counter() - t
        stc = float(stc_loss(y, x))
    before, after = _to_uint8(x), _to_uint8(y)
    result = {
        "variant": variant or default_variant(),
        "k": k or cfg.k,
        "darkness": {
            "dv": dv,
            "dark": darkness.is_dark(dv),
            "dark_vote": darkness.is_dark_vote(dark_frames),
            "verdict": _verdict(dv),
        },
        "enhancement": decision.to_dict(),
        "top5": _topk(logits, cfg.class_names, temperature=cfg.temperature),
        "verdict": calibration.verdict(logits[0].float().cpu().numpy(), cfg),
        "stc": stc,
        "info": {"frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height},
        "window": _window(info, cfg.clip_len, start),
        **_panels(before, after),
    }
    t = time.perf_counter()
    result["full_before"], result["full_after"] = _full_size_pair(model, path, info, result["window"])
    timings["full-size frame"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result["timings"] = timings
    return result


FULL_SIZE_SHORT_SIDE = 720  # the before/after pair is shown at the clip's size, at most this short side


def _full_size_pair(model, path, info, window: dict) -> tuple[np.ndarray, np.ndarray]:
    """The middle frame of the recognised window at (nearly) the clip's own size, before and after."""
    from dtcm import video
    from dtcm.enhance_cli import enhance_frames

    mid = (window["first"] + window["last"]) // 2 - 1
    size = min(info.width, info.height, FULL_SIZE_SHORT_SIDE)
    frame = _video_call(video.read_frames, path, [min(mid, max(info.frames - 1, 0))], size=size)  # (1, H, W, 3)
    if model.enhancer is None:
        return frame[0], frame[0]
    return frame[0], enhance_frames(model, frame, 1, estimate_size=256)[0]


def _window_start(start_s, info, clip_len: int) -> int | None:
    if start_s is None:
        return None
    try:
        start_s = float(start_s)
    except (TypeError, ValueError):
        raise ServiceError(f"the segment start must be a number of seconds, got {start_s!r}") from None
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


TIMELINE_WINDOWS = 24  # windows classified over a whole clip at most (evenly spread)


@_in_model_slot
def timeline(path, variant: str | None = None, k: int | None = None, windows: int = TIMELINE_WINDOWS) -> dict:
    """The action over the whole clip: windows of ``clip_len`` frames spread evenly, each classified.

    Returns:
        dict with ``windows`` [{start_s, end_s, first, last, top1, p, top5}], ``duration_s``, ``fps``,
        ``stride_frames`` and ``seconds`` (time taken).
    """
    from dtcm import device, video

    k = _check_k(k)
    path = _check_path(path)
    t0 = time.perf_counter()
    model = get_model(variant)
    cfg = model.config
    info = _video_call(video.probe, path)
    total, fps = max(info.frames, 1), info.fps or 1.0
    n = max(1, min(int(windows), TIMELINE_WINDOWS, (total + cfg.clip_len - 1) // cfg.clip_len))
    starts = np.linspace(0, max(0, total - cfg.clip_len), n).round().astype(int)  # (n,)
    idx = np.concatenate([video.clip_indices(total, cfg.clip_len, "dense", int(s)) for s in starts])
    frames = _video_call(video.read_frames, path, idx, size=cfg.short_side)  # (n * T, h, w, 3)
    import torch

    T = cfg.clip_len
    x = torch.cat([video.to_batch(frames[i * T : (i + 1) * T], cfg.short_side, cfg.crop_size) for i in range(n)])
    logits = device.infer(model, x, k)  # (n, C): every window in one batch
    out = []
    for i, s in enumerate(starts):
        top5 = _topk(logits[i : i + 1], cfg.class_names, temperature=cfg.temperature)
        last = int(s) + min(cfg.clip_len, total) - 1
        out.append(
            {
                "start_s": s / fps,
                "end_s": (last + 1) / fps,
                "first": int(s) + 1,
                "last": last + 1,
                "top1": top5[0][0],
                "p": top5[0][1],
                "top5": top5,
            }
        )
    stride = int(starts[1] - starts[0]) if n > 1 else 0
    return {
        "windows": out,
        "duration_s": total / fps,
        "fps": fps,
        "stride_frames": stride,
        "seconds": time.perf_counter() - t0,
    }


def timeline_figure(result: dict):
    """The timeline as a plotly chart: one bar per window at its time, coloured by its top probability."""
    import plotly.graph_objects as go

    w = result["windows"]
    fig = go.Figure(
        go.Bar(
            x=[(r["start_s"] + r["end_s"]) / 2 for r in w],
            y=[r["p"] for r in w],
            width=[max(r["end_s"] - r["start_s"], 0.05) for r in w],
            text=[r["top1"] for r in w],
            textposition="inside",
            marker=dict(color=[r["p"] for r in w], colorscale="Viridis", cmin=0, cmax=1),
            hovertemplate="%{text} %{y:.0%}<br>at %{x:.1f} s<extra></extra>",
        )
    )
    fig.update_layout(
        height=220,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title="time in the clip (s)", range=[0, result["duration_s"]]),
        yaxis=dict(title="top probability", range=[0, 1], tickformat=".0%"),
    )
    return fig


def not_sure_sentence(verdict: dict) -> str | None:
    """What a UI says instead of a label when ``analyse``'s verdict is not sure; None when it is sure."""
    if verdict["sure"]:
        return None
    return f"Not sure what this is: {verdict['reason']}. The chart shows its guesses, not an answer."


def _decide(dv: float, x, y):
    """The pipeline's decision for this clip from Dv and the enhancer's own change (dtcm.adaptive)."""
    from dtcm import adaptive

    if y is x:  # no enhancer
        return adaptive.Decision("skip", 0.0, dv, adaptive.luma_of_dv(dv), 0.0, "This variant has no enhancer.")
    luma = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)
    change = float(((y - x) * luma).sum(1).abs().mean()) * 255
    return adaptive.decide(dv, change)


def _decided(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Whole-video frames after dtcm.adaptive's decision (from Dv and the change on 8 sampled frames)."""
    from dtcm import adaptive, darkness

    idx = darkness.segment_indices(len(frames))
    decision = adaptive.decide(darkness.darkness_score(frames[idx]), adaptive.luma_change(frames[idx], out[idx]))
    return adaptive.apply_decision(frames, out, decision)


def _analyse_photo(path: str, model, variant, timings: dict, t0: float) -> dict:
    """Analyse on a photo: darkness and enhancement (with the pipeline's decision), no recognition."""
    from dtcm import adaptive, darkness, still
    from dtcm.enhance_cli import enhance_frames

    if model.enhancer is None:
        raise ServiceError("recognition needs a clip, and this variant has no enhancer to apply to a photo")
    t = time.perf_counter()
    photo = still.load_photo(path)
    dv = darkness.darkness_score(photo[None])
    timings["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    full = enhance_frames(model, photo[None], k=1, estimate_size=None)
    decision = adaptive.decide(dv, adaptive.luma_change(photo[None], full))
    panels = still.photo_panels(photo, lambda f: adaptive.apply_decision(f, full, decision))
    timings["enhance"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    h, w = photo.shape[:2]
    return {
        "variant": variant or default_variant(),
        "k": 1,
        "darkness": {
            "dv": dv,
            "dark": darkness.is_dark(dv),
            "dark_vote": darkness.is_dark(dv),
            "verdict": _verdict(dv),
        },
        "enhancement": decision.to_dict(),
        "info": {"frames": 1, "fps": 0.0, "width": w, "height": h},
        "timings": timings,
        **{key: v for key, v in panels.items() if key != "seconds"},
    }


def _verdict(dv: float) -> str:
    from dtcm.darkness import TAU, is_dark

    if is_dark(dv):
        return f"dark: as dark as the clips of ARID, the dark-video benchmark (darkness {dv:.2f}; dark is below -{TAU:.2f})"
    if dv < 0:
        return f"dim: darker than mid-grey but not ARID-dark (darkness {dv:.2f}; dark is below -{TAU:.2f})"
    return f"well lit (darkness {dv:.2f}: brighter than mid-grey)"


# ------------------------------------------------------------------------------------ enhance clip
ENHANCE_MAX_PIXELS = int(float(os.environ.get("DTCM_ENHANCE_MAX_PIXELS", 200e6)))  # frames x width x height per call


def _enhance_plan(info, max_pixels: int, available: int | None = None) -> tuple[int, int | None]:
    """(frames to keep, short side to decode at or None for the clip's own) within one request's budget."""
    from dtcm.video import LIMITS

    available = info.frames if available is None else available
    frames = max(1, min(available or LIMITS.max_frames, LIMITS.max_frames))
    w, h = info.width, info.height
    short = min(w, h, LIMITS.max_short_side)
    area = w * h * (short / min(w, h)) ** 2
    if frames * area <= max_pixels:
        return frames, None if short == min(w, h) else short
    scale = (max_pixels / (frames * area)) ** 0.5
    return frames, max(16, int(short * scale) // 2 * 2)


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

    At most ``video.LIMITS.max_frames`` frames from the start (or from ``start_s``) are kept, and the size drops (aspect kept)
    so that frames x width x height stays within ``DTCM_ENHANCE_MAX_PIXELS``; the result says exactly
    what was produced. Curves are estimated on keyframes downscaled so their short side is
    ``estimate_size`` and upsampled (the Zero-DCE++ idea); None estimates at full resolution.
    ``on_progress(done, total)`` is called as frames are enhanced (in whole k-frame groups, so the
    output is the same as in one pass).

    Returns:
        dict with ``path`` (the mp4 written: ``out_path`` or a new temporary file), ``frames`` and
        ``source_frames``, ``width``/``height`` and ``source_width``/``source_height``, ``fps``,
        ``seconds`` (time taken) and ``note`` (one sentence saying all of it).
    """
    import tempfile

    from dtcm import video
    from dtcm.enhance_cli import enhance_frames

    k = _check_k(k)
    path = _check_path(path)
    if is_image(path):
        raise ServiceError(
            "this is a photo: its enhanced version is in the frames above; the enhanced clip is for videos"
        )
    t = time.perf_counter()
    with model_slot():
        model = get_model(variant)
        if model.enhancer is None:
            raise ServiceError(f"the variant {variant!r} has no enhancer; pick a DTCM variant")
        info = _video_call(video.probe, path)
        first = _segment_start(start_s, info)
        keep, size = _enhance_plan(info, ENHANCE_MAX_PIXELS, info.frames - first)
        if first:
            idx = np.arange(first, min(first + keep, info.frames))
            frames, fps = _video_call(video.read_frames, path, idx, size=size), info.fps
        else:
            frames, fps = _video_call(video.read_video, path, size=size, max_frames=keep)
        k = k or model.config.k
        step = k * ENHANCE_CHUNK_GROUPS  # a whole number of k-frame groups: the same curves as one pass
        out = np.empty_like(frames)
        for i in range(0, len(frames), step):
            out[i : i + step] = enhance_frames(model, frames[i : i + step], k, estimate_size=estimate_size)
            if on_progress is not None:
                on_progress(min(i + step, len(frames)), len(frames))
        out = _decided(frames, out)  # the same enhance / soften / skip as analyse
    if out_path is None:
        fd, out_path = tempfile.mkstemp(suffix=".mp4", prefix="dtcm_enhanced_")
        os.close(fd)
    video.write_video(out_path, out, fps)
    n, h, w = out.shape[:3]
    total = max(info.frames, n)
    if first:
        part = f"frames {first + 1}-{first + n} of {total} ({first / fps:.1f}-{(first + n) / fps:.1f} s of {total / fps:.1f} s)"
    elif n >= total:
        part = f"all {n} frames"
    else:
        part = f"frames 1-{n} of {total} (the first {n / fps:.1f} s of {total / fps:.1f} s)"
    size_note = (
        f"at the clip's own size, {w}x{h}"
        if (w, h) == (info.width, info.height)
        else f"at {w}x{h} (the clip is {info.width}x{info.height})"
    )
    seconds = time.perf_counter() - t
    cut = n < total - first or (w, h) != (info.width, info.height)
    note = f"Enhanced {part} {size_note} in {seconds:.1f} s" + (
        f"; this server enhances at most {_limit_phrase(ENHANCE_MAX_PIXELS)} per request." if cut else "."
    )
    return {
        "path": str(out_path),
        "frames": int(n),
        "source_frames": int(total),
        "first": int(first) + 1,
        "width": int(w),
        "height": int(h),
        "source_width": int(info.width),
        "source_height": int(info.height),
        "fps": float(fps),
        "seconds": seconds,
        "note": note,
    }


def _segment_start(start_s, info) -> int:
    """The first frame of a segment that starts ``start_s`` seconds in (0: the clip's start)."""
    if start_s is None:
        return 0
    try:
        start_s = float(start_s)
    except (TypeError, ValueError):
        raise ServiceError(f"the segment start must be a number of seconds, got {start_s!r}") from None
    duration = info.frames / (info.fps or 1.0)
    if not 0 <= start_s < duration:
        raise ServiceError(f"the segment start must be from 0 to under {duration:.1f} s for this clip, got {start_s:g}")
    return min(int(round(start_s * (info.fps or 1.0))), info.frames - 1)


def _limit_phrase(max_pixels: int) -> str:
    from dtcm.video import LIMITS

    return f"{LIMITS.max_frames} frames and {max_pixels / 1e6:.0f} million pixels over all frames"


def enhance_clip(
    path, variant: str | None = None, k: int | None = None, out_path=None, estimate_size: int | None = 256
) -> str:
    """Enhance a clip (see ``enhance_video``, which also says what was produced); returns the mp4's path."""
    return enhance_video(path, variant, k, out_path=out_path, estimate_size=estimate_size)["path"]


# ------------------------------------------------------------------------------------------ compare
def _enhancer_model(name: str):
    """A zero-reference enhancer variant for the Compare tab, or None when it is not installed."""
    if name == "zerodce-published":
        folder = os.environ.get(PUBLISHED_ENV)
        return get_model(folder) if folder else None
    variant = ENHANCER_ONLY[name]
    if variant in list_variants("enhancer"):
        return get_model(variant)
    return None


@_in_model_slot
def compare(path, methods=METHODS, variant: str | None = None, k: int | None = None) -> dict:
    """The same clip through several enhancers, all classified by the same model.

    Args:
        path: a video file.
        methods: any of ``METHODS``: none, gic, he, clahe, msr (classical), zerodce, dtcm (learned).
        variant: the classifier (a DTCM variant); its own enhancer is the "dtcm" method.
        k: frame sharing for the learned enhancers.
    Returns:
        dict method -> {frames_before, frames_after, diff_before, diff_after, stc, luma (mean brightness of
        the enhanced frames, 0..255), top5, seconds}, plus ``"_order"`` listing the methods in order.
    """
    import torch

    from dtcm import classic, device, video
    from dtcm.losses import stc_loss

    k = _check_k(k)
    path = _check_path(path)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise ServiceError(f"unknown enhancers {unknown}; choose from {', '.join(ALL_METHODS)}")
    model = get_model(variant)
    cfg = model.config
    if is_image(path):
        return _compare_photo(path, methods, model)
    clip = _video_call(video.read_clip, path, cfg.clip_len, "dense", size=cfg.short_side)
    dev = device.device_of(model)
    x = video.to_batch(clip, cfg.short_side, cfg.crop_size).to(dev)
    before = _to_uint8(x)
    out = {"_order": list(methods)}
    for m in methods:
        t = time.perf_counter()
        with torch.inference_mode():
            if m == "none":
                y = x
            elif m in classic.CLASSIC_ENHANCERS:
                y = video.to_batch(classic.enhance_classic(m, clip), cfg.short_side, cfg.crop_size).to(dev)
            elif m == "dtcm":
                y, _ = model.enhance(x, k)
            else:
                enh = _enhancer_model(m)
                if enh is None:
                    out[m] = {"error": _missing(m)}
                    continue
                y, _ = enh.enhance(x, k if k is not None else 1)
            with device.autocast(dev):
                logits = model.classify(y)
            stc = float(stc_loss(y, x))
        after = _to_uint8(y)
        out[m] = {
            **_panels(before, after),
            "stc": stc,
            "luma": float(np.mean([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).mean() for f in after])),  # 0..255
            "top5": _topk(logits, cfg.class_names, temperature=cfg.temperature),
            "seconds": time.perf_counter() - t,
        }
    return out


def _missing(m: str) -> str:
    if m == "zerodce-published":
        return f"the published Zero-DCE is not installed here (set {PUBLISHED_ENV} to a dtcm import-zerodce folder)"
    return f"no {m} weights are installed ({ENHANCER_ONLY[m]})"


def _compare_photo(path: str, methods, model) -> dict:
    """Compare on a photo: every enhancer on the one image, nothing classified (``still.IMAGE_NOTE``)."""
    from dtcm import classic, still
    from dtcm.enhance_cli import enhance_frames

    photo = still.load_photo(path)
    out = {"_order": list(methods), "_note": still.IMAGE_NOTE}
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


# ---------------------------------------------------------------------------------------- fine-tune
SYNTHETIC_SMALL = "synthetic:small"  # a small DarkActions-synth set, rendered on first use
DATA_ROOT_ENV = "DTCM_DATA_ROOT"  # server folders a fine-tune may read from live under this root
RUNS_ROOT_ENV = "DTCM_RUNS_DIR"  # fine-tune runs are written under this folder
WRITES_ENV = "DTCM_FINETUNE"  # "0" switches training, uploads, saving and pushing off; default: off on a Space
MAX_ZIP_BYTES = 2 << 30  # an uploaded dataset may unpack to at most this many bytes
MAX_ZIP_FILES = 20_000
_DATA_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".txt", ".csv", ".jpg", ".jpeg", ".png")
BACKBONES = ("mobilenetv2", "shufflenetv2", "resnet18", "resnext101", "mobilenetv2_tiny_test", "resnet_tiny_test")
HEAVY_BACKBONES = ("resnext101",)  # days of training on a CPU: offered only where CUDA is present
_jobs = None  # the JobManager, made on first use (its limits come from the environment)
_jobs_lock = threading.Lock()


def writes_enabled() -> bool:
    """Whether visitors may fine-tune, upload datasets, save and push (``DTCM_FINETUNE``).

    On by default on a private machine; off by default on a Hugging Face Space (``SPACE_ID`` is set) or a
    ZeroGPU one, where the owner turns it on with ``DTCM_FINETUNE=1``.
    """
    from dtcm.device import on_zero_gpu

    value = os.environ.get(WRITES_ENV)
    if value is None or value.strip() == "":
        return not os.environ.get("SPACE_ID") and not on_zero_gpu()  # ZeroGPU: a background job holds no GPU
    return value.strip().lower() not in ("0", "false", "no", "off")


def _check_writes() -> None:
    if not writes_enabled():
        raise ServiceError(
            f"fine-tuning, dataset uploads, saving and pushing are switched off on this server ({WRITES_ENV}=0)"
        )


def _storage_call(fn, *args, **kwargs):
    from dtcm.storage import StorageError

    try:
        return fn(*args, **kwargs)
    except StorageError as exc:
        raise ServiceError(str(exc)) from None


def _cache_root() -> Path:
    from dtcm import storage

    return storage.cache_root()


def _data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, Path(__file__).resolve().parents[1] / "data")).resolve()


def _manager():
    global _jobs
    from dtcm.jobs import JobLimits, JobManager

    with _jobs_lock:
        if _jobs is None:
            _jobs = JobManager(JobLimits.from_env())
        return _jobs


def finetune_limits() -> dict:
    """What one fine-tune may ask for on this machine; the UIs take their bounds from here.

    Returns:
        dict with ``backbones`` (offered here), ``batch_max``, ``epochs_max``, ``memory_gb`` and ``time_min``
        (the worker's limits), ``queue`` (jobs that may wait).
    """
    from dtcm.jobs import JobLimits

    lim = _manager().limits if _jobs is not None else JobLimits.from_env()
    from dtcm.device import cuda_expected

    gpu = cuda_expected()
    backbones = [b for b in BACKBONES if gpu or b not in HEAVY_BACKBONES]
    memory_gb = lim.memory_bytes / (1 << 30)
    return {
        "backbones": backbones,
        # measured: 3D-ShuffleNetV2 at 16x112x112 needs ~0.5 GB per clip at k = 4 and ~1.2 GB at k = 1
        "batch_max": max(1, min(32, int(memory_gb / 1.2))),
        "epochs_max": 50 if gpu else 20,
        "memory_gb": round(memory_gb, 1),
        "time_min": round(lim.time_s / 60, 1),
        "queue": lim.queue_size,
    }


FINETUNE_LR = 1e-4  # fine-tuning from trained weights on a few clips: ten times the from-scratch joint rate


def finetune_defaults() -> dict:
    """The fine-tune form's starting values: the shipped default variant's own settings, so "auto" continues
    from its weights instead of starting a different backbone from scratch."""
    from dtcm.config import DTCMConfig

    limits = finetune_limits()
    out = {"backbone": "shufflenetv2", "alpha": 0.1, "w_stc": 4.0, "k": 4}
    try:
        name = default_variant()
        cfg = DTCMConfig.load(Path(list_variants("all")[name]["path"]) / "config.json")
        out.update(backbone=cfg.backbone, alpha=float(cfg.alpha), w_stc=float(cfg.w_stc), k=int(cfg.k))
    except (ServiceError, OSError, ValueError, KeyError):
        pass
    if out["backbone"] not in limits["backbones"]:
        out["backbone"] = limits["backbones"][0]
    return {**out, "lr": FINETUNE_LR, "batch_size": min(4, limits["batch_max"]), "epochs": 1}


def finetune_datasets() -> dict[str, str]:
    """Datasets a fine-tune can use: label -> spec (``synthetic:small`` or a folder under the data root)."""
    out = {"DarkActions-synth, small (rendered on first use)": SYNTHETIC_SMALL}
    root = _data_root()
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if any(d.glob("*split*.txt")) or any(d.glob("*/*.mp4")) or any(d.glob("*/*.avi")):
                out[f"{d.name} (server folder)"] = str(d)
    return out


def _check_dataset(spec: str) -> str:
    """The dataset folder a spec names, if it is one a visitor may train on (rendering waits for the worker)."""
    if spec == SYNTHETIC_SMALL:
        return spec
    path = Path(spec).resolve()
    allowed = [_data_root(), (_cache_root() / "uploads").resolve()]
    if not any(path.is_relative_to(root) for root in allowed):
        raise ServiceError(f"the dataset folder {spec!r} is outside the allowed roots ({', '.join(map(str, allowed))})")
    if not path.exists():
        raise ServiceError(f"the dataset {spec!r} does not exist (an upload is kept for 30 minutes; upload it again)")
    return str(path)


def _resolve_dataset(spec: str) -> str:
    spec = _check_dataset(spec)
    if spec == SYNTHETIC_SMALL:
        from dtcm.data.synthetic import make_synthetic

        folder = _cache_root() / "synth-small"
        if not (folder / "split1_train.txt").is_file():
            make_synthetic(folder, per_class=5, seed=20261128)
        return str(folder)
    return spec


def _prepared_data(spec: str, val_spec: str | None) -> dict:
    """Run in the training worker: render or check the dataset, then train on it."""
    data = _resolve_dataset(spec)
    return {
        "data": data,
        "data_root": data if Path(data).is_dir() else str(Path(data).parent),  # its lists name files inside it
        "val_data": _resolve_dataset(val_spec) if val_spec else data,
    }


def _dataset_label(spec: str) -> str:
    if spec == SYNTHETIC_SMALL:
        return "DarkActions-synth, small"
    path = Path(spec)
    return (
        f"{path.name} (uploaded)" if path.resolve().is_relative_to((_cache_root() / "uploads").resolve()) else path.name
    )


def prepare_dataset_upload(zip_path) -> str:
    """Unpack an uploaded zip of class folders (or ARID/Dark-48 lists with their videos) safely.

    Refuses absolute paths, ``..``, links, non-media files, archives that unpack beyond ``MAX_ZIP_BYTES``
    or ``MAX_ZIP_FILES``, and any that would take the server past its disk budget. Unused uploads are
    removed after ``DTCM_UPLOAD_TTL_S``; a used one when its fine-tune ends. Returns the dataset spec (a
    folder) for ``start_finetune``.
    """
    import hashlib
    import zipfile

    from dtcm import storage

    _check_writes()
    zip_path = _check_path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise ServiceError("the dataset upload is not a zip archive: zip a folder with one sub-folder per class")
    _storage_call(storage.sweep, _datasets_in_use())
    digest = hashlib.sha256(Path(zip_path).read_bytes()).hexdigest()[:16]
    dest = (storage.uploads_root() / digest).resolve()
    with zipfile.ZipFile(zip_path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_FILES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise ServiceError(f"the zip is too large: at most {MAX_ZIP_FILES} files and {MAX_ZIP_BYTES >> 30} GB")
        keep = []
        for info in infos:
            name = info.filename
            target = (dest / name).resolve()
            if name.startswith(("/", "\\")) or not target.is_relative_to(dest) or (info.external_attr >> 28) == 0xA:
                raise ServiceError(f"the zip holds an unsafe path {name!r}; only relative paths inside it are accepted")
            if Path(name).suffix.lower() in _DATA_SUFFIXES and "__MACOSX" not in name:
                keep.append(info)
        if not keep:
            raise ServiceError("the zip holds no videos: put one folder per class with mp4/avi/mov/mkv/webm files")
        if not dest.is_dir():
            _storage_call(storage.check_room, sum(i.file_size for i in keep))
            partial = dest.with_name(f".{digest}.partial")
            try:
                for info in keep:
                    zf.extract(info, partial)
                os.replace(partial, dest)
            finally:
                import shutil

                shutil.rmtree(partial, ignore_errors=True)
        os.utime(dest)  # a fresh upload of the same zip restarts its time
    # a single top-level folder is the dataset itself
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and not any(entries[0].glob("*.mp4")):
        return str(entries[0])
    return str(dest)


def _datasets_in_use() -> set[Path]:
    jobs = _manager()
    with jobs.lock:
        live = [j for j in jobs.jobs.values() if j.state in ACTIVE_JOB_STATES]
    return {Path(j.args["_dataset"]) for j in live if j.args.get("_dataset") not in (None, SYNTHETIC_SMALL)}


def start_finetune(
    dataset: str = SYNTHETIC_SMALL,
    backbone: str = "mobilenetv2",
    alpha: float = 0.1,
    w_stc: float = 4.0,
    k: int = 4,
    epochs: int = 1,
    lr: float = 1e-4,
    batch_size: int = 4,
    init: str | None = None,
    max_steps: int | None = None,
    val_dataset: str | None = None,
    owner: str | None = None,
) -> dict:
    """Queue the full joint training loop (L_total) in a worker process of this server.

    Args:
        dataset: a spec from ``finetune_datasets()``, an unpacked upload, or a list/folder under the data root.
        backbone, alpha, w_stc, k, epochs, lr, batch_size: training settings (SPEC A7), within
            ``finetune_limits()``.
        init: a variant name or model folder to start from (None: the default variant when its backbone
            matches, else fresh weights).
        max_steps: stop after this many optimizer steps.
        owner: the visitor's key (``new_owner_key()``); only that key can stop, save or push the job.
    Returns:
        ``finetune_status(owner)``.
    """
    from dtcm import storage
    from dtcm.jobs import JobError

    _check_writes()
    k = _check_k(k)
    limits = finetune_limits()
    test_backbone = backbone in BACKBONES and backbone.endswith("_test")
    checks = [
        (backbone in limits["backbones"] or test_backbone, f"backbone must be one of {', '.join(limits['backbones'])}"),
        (0 <= float(alpha) <= 100, "alpha must be between 0 and 100"),
        (0 <= float(w_stc) <= 100, "W_STC must be between 0 and 100"),
        (1 <= int(epochs) <= limits["epochs_max"], f"epochs must be from 1 to {limits['epochs_max']} on this server"),
        (0 < float(lr) <= 1, "the learning rate must be above 0 and at most 1"),
        (
            1 <= int(batch_size) <= limits["batch_max"],
            f"the batch size must be from 1 to {limits['batch_max']} on this server ({limits['memory_gb']} GB per job)",
        ),
        (max_steps is None or int(max_steps) >= 1, "max steps must be at least 1"),
    ]
    for ok, sentence in checks:
        if not ok:
            raise ServiceError(sentence)
    dataset = _check_dataset(dataset)
    if val_dataset:
        val_dataset = _check_dataset(val_dataset)
    _storage_call(storage.check_room, 0)
    out = storage.runs_root() / f"finetune-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    settings = dict(
        dataset=_dataset_label(dataset),
        backbone=backbone,
        alpha=float(alpha),
        w_stc=float(w_stc),
        k=k,
        epochs=int(epochs),
        lr=float(lr),
        batch_size=int(batch_size),
        init=init,
        max_steps=int(max_steps) if max_steps else None,
    )
    args = dict(
        model="dtcm_mobilenetv2",
        init=_init_folder(init, backbone),
        **{
            key: settings[key] for key in ("backbone", "alpha", "w_stc", "k", "epochs", "lr", "batch_size", "max_steps")
        },
        output_dir=str(out),
        num_workers=0,
        progress=False,
        checkpoint_every=50,
    )
    import functools

    try:
        _manager().submit(
            {**args, "_dataset": dataset},
            settings,
            owner,
            prepare=functools.partial(_prepared_data, dataset, val_dataset),
            on_end=_job_ended,
        )
    except JobError as exc:
        raise ServiceError(str(exc)) from None
    return finetune_status(owner)


def _init_folder(init: str | None, backbone: str) -> str | None:
    """The model folder to start from: a named variant or folder; by default the default variant if it fits."""
    from dtcm.config import DTCMConfig

    variants = list_variants("all")
    if init:
        if init in variants:
            return variants[init]["path"]
        raise ServiceError(f"there is no variant {init!r} to start from; choose one of {', '.join(sorted(variants))}")
    try:
        path = Path(variants[default_variant()]["path"])
        same = DTCMConfig.load(path / "config.json").backbone == backbone
    except (ServiceError, OSError, ValueError, KeyError):
        return None
    return str(path) if same else None


def _job_ended(job) -> None:
    """In the server, once a job has ended: register its model, then free its disk."""
    from dtcm import storage

    summary = job.summary or {}
    dataset = job.args.get("_dataset")
    if job.state in ("finished", "stopped") and summary.get("final"):
        name = Path(job.args["output_dir"]).name
        register_variant(
            name,
            summary["final"],
            description=f"fine-tuned here on {job.settings['dataset']}",
            w_stc=job.settings["w_stc"],
            k=job.settings["k"],
            metrics=summary.get("epoch_metrics") or {},
            owner=job.owner,
        )
        job.variant = name
        job.message += f"; the model is selectable as {name!r}"
        if job.state == "finished":
            storage.drop_checkpoints(job.args["output_dir"])  # a stopped run keeps them, to be resumed
            _forget_upload(dataset)
    elif job.summary is None:
        out = Path(job.args["output_dir"])
        if out.is_dir() and not any(out.glob("checkpoint-*")):
            import shutil

            shutil.rmtree(out, ignore_errors=True)  # a run that failed before its first checkpoint: nothing to use
        elif out.is_dir():
            job.message += " (its last checkpoint is kept: Resume continues from it)"
    keep = {str(Path(j.args["output_dir"])) for j in _manager().jobs.values()}
    for removed in storage.prune_runs(keep):
        for n in [n for n, e in _runtime_variants.items() if Path(e["path"]).is_relative_to(removed)]:
            _runtime_variants.pop(n, None)


def _forget_upload(dataset: str | None) -> None:
    from dtcm import storage

    if dataset and dataset != SYNTHETIC_SMALL:
        storage.remove_upload(dataset)  # only uploads are removed; server folders stay


def _public_status(job, owner) -> dict:
    """A job as its owner sees it: no server paths, the settings as asked."""
    jobs = _manager()
    now = time.time()
    return {
        "state": job.state,
        "message": job.message + (f" (place {jobs.queue_position(job)} in the queue)" if job.state == "queued" else ""),
        "metrics": list(job.metrics),
        "epochs": list(job.epochs),
        "settings": dict(job.settings),
        "variant": getattr(job, "variant", None),
        "output_dir": Path(job.args["output_dir"]).name,
        "elapsed": ((job.ended or now) - job.started) if job.started else 0.0,
        "peak_memory_gb": round(job.peak_memory / (1 << 30), 2),
        "progress": _progress(job.metrics) if job.state in ACTIVE_JOB_STATES else None,
        "limits": finetune_limits(),
    }


def _progress(metrics: list) -> dict | None:
    """Steps done of the total and the time left at the pace of the steps so far."""
    if not metrics or not metrics[-1].get("total_steps"):
        return None
    first, last = metrics[0], metrics[-1]
    total, done = int(last["total_steps"]), int(last["step"])
    pace = (last["time"] - first["time"]) / (done - first["step"]) if done > first["step"] else None
    return {"step": done, "total_steps": total, "eta_s": pace * (total - done) if pace else None}


def finetune_status(owner: str | None = None) -> dict:
    """The visitor's fine-tune: state, message, per-step metrics, epoch records, settings, result variant.

    Another visitor's job is never shown: only that the server is busy and how long the queue is.
    """
    jobs = _manager()
    with jobs.lock:
        job = jobs.latest(owner)
    if job is not None:
        with jobs.lock:
            return _public_status(job, owner)
    message = "no fine-tune has run yet"
    if jobs.busy():
        message = f"another visitor's fine-tune is running; yours would wait in the queue ({len(jobs.queue)} waiting)"
    return {
        "state": "idle",
        "message": message,
        "metrics": [],
        "epochs": [],
        "settings": {},
        "variant": None,
        "output_dir": None,
        "elapsed": 0.0,
        "peak_memory_gb": 0.0,
        "progress": None,
        "limits": finetune_limits(),
    }


def resume_finetune(owner: str | None = None) -> dict:
    """Continue the visitor's stopped fine-tune from its last checkpoint: the same run, the same step count.

    Returns:
        ``finetune_status(owner)``.
    """
    from dtcm.jobs import JobError

    _check_writes()
    jobs = _manager()
    with jobs.lock:
        job = jobs.latest(owner)
    out = Path(job.args["output_dir"]) if job is not None else None
    if job is None or job.state not in ("stopped", "failed") or not any(out.glob("checkpoint-*")):
        raise ServiceError("you have no stopped fine-tune with a checkpoint to resume; start a new one")
    dataset = job.args.get("_dataset")
    if dataset not in (None, SYNTHETIC_SMALL) and not Path(dataset).exists():
        raise ServiceError("the dataset of that fine-tune is gone (uploads are kept 30 minutes); start a new one")
    try:
        jobs.submit({**job.args, "resume": "latest"}, job.settings, owner, prepare=job.prepare, on_end=_job_ended)
    except JobError as exc:
        raise ServiceError(str(exc)) from None
    return finetune_status(owner)


def stop_finetune(wait: float = 0.0, owner: str | None = None) -> dict:
    """Ask the visitor's fine-tune to stop after its current step (a checkpoint and the model are kept)."""
    from dtcm.jobs import JobError

    try:
        _manager().stop(owner, wait=wait)
    except JobError as exc:
        raise ServiceError(str(exc)) from None
    return finetune_status(owner)


def new_owner_key() -> str:
    """A fresh key for one visitor: pass it to every fine-tune call of theirs."""
    from dtcm.jobs import new_owner_key as make

    return make()


LOSS_NAMES = {  # loss term -> what the fine-tune chart calls it (the equations are on the About tab)
    "total": "total",
    "ar": "recognition (L_AR)",
    "stc": "flicker (L_STC)",
    "sc": "spatial consistency",
    "tc": "temporal consistency",
    "dark": "enhancement (L_Dark)",
    "exp": "exposure",
    "col": "colour balance",
    "tva": "smoothness",
}


def loss_figure(status: dict | None = None):
    """Every loss term (log scale) and the batch accuracy of a fine-tune, as a plotly figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    status = status or finetune_status()
    m = status["metrics"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("losses", "batch accuracy"))
    steps = [r.get("step") for r in m]
    for term, name in LOSS_NAMES.items():
        ys = [r.get(term) for r in m]
        if any(y is not None for y in ys):
            fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines", name=name), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[r.get("acc") for r in m], mode="lines", name="acc"), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"))
    return fig


def _own_result(owner: str | None, what: str) -> dict:
    status = finetune_status(owner)
    if status["variant"] is None or status["variant"] not in _runtime_variants:
        raise ServiceError(f"you have no finished fine-tune to {what}")
    return status


def save_finetuned(name: str | None = None, owner: str | None = None) -> str:
    """Copy the visitor's finished fine-tune into ``weights/`` and list it in ``weights/index.json``.

    Names follow ``storage.SAVE_NAME`` (letters, digits, '-', '_'); the copy and the index are written
    atomically, and the number of saved variants is bounded (``DTCM_MAX_SAVED``).
    """
    from dtcm import hub, storage

    _check_writes()
    status = _own_result(owner, "save")
    entry = {k: v for k, v in _runtime_variants[status["variant"]].items() if k not in ("runtime", "owner", "path")}
    dest = _storage_call(
        storage.save_variant,
        _runtime_variants[status["variant"]]["path"],
        hub.weights_dir(),
        name or status["variant"],
        entry,
    )
    return str(dest)


def push_finetuned(repo_id: str, token: str | None = None, owner: str | None = None) -> str:
    """Push the visitor's finished fine-tune to the Hugging Face Hub with *their* token; returns the commit URL.

    The server's own login (``HF_TOKEN`` or ``hf auth login``) is never used here: a visitor must give a
    token with write access to ``repo_id``.
    """
    from dtcm import hub_push

    _check_writes()
    if not isinstance(token, str) or not token.strip():
        raise ServiceError(
            "pushing needs your own Hugging Face token with write access; the server never lends its own"
        )
    status = _own_result(owner, "push")
    try:
        return hub_push.push(_runtime_variants[status["variant"]]["path"], repo_id, token=token.strip(), login=False)
    except (OSError, ValueError) as exc:
        raise ServiceError(str(exc)) from None
