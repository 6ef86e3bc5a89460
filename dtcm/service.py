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
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from dtcm.images import is_image

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
    "top5_figure",
    "variant_for_wstc",
    "wstc_choices",
]

K_RANGE = (1, 16)  # the k slider's range
K_CHOICES = (1, 2, 4, 8, 16)  # the k values the paper studies (Table IX)
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


class ServiceError(ValueError):
    """A problem the user can fix, in one sentence."""


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
    """Load a variant once and keep it in a bounded LRU cache (``DTCM_MODEL_CACHE`` models)."""
    from dtcm import hub

    _set_threads()
    name = variant or default_variant()
    with _cache_lock:
        if name in _cache:
            _cache.move_to_end(name)
            return _cache[name]
        entry = _runtime_variants.get(name)
        try:
            model = hub.resolve_model(entry["path"] if entry else name)
        except ServiceError:
            raise
        except (ValueError, OSError) as exc:
            raise ServiceError(f"model {name!r} could not be loaded: {exc}") from None
        model.eval()
        _cache[name] = model
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
        return model


def register_variant(name: str, path: str | Path, **entry) -> None:
    """Make a model folder (e.g. a fine-tune's result) selectable in this server process."""
    _runtime_variants[name] = {"path": str(path), "runtime": True, **entry}
    with _cache_lock:
        _cache.pop(name, None)


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


def _topk(logits, names, k=5) -> list[tuple[str, float]]:
    import torch

    probs = torch.softmax(logits.float(), dim=-1)[0]
    vals, idx = probs.topk(min(k, probs.numel()))
    return [(names[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)]


# --------------------------------------------------------------------------------------- analyse
def analyse(path, variant: str | None = None, k: int | None = None) -> dict:
    """Darkness, enhancement and recognition of one clip.

    Args:
        path: a video file.
        variant: a model variant name (``list_variants()``); None for the default.
        k: frame-sharing factor 1..16; None for the variant's own.
    Returns:
        dict with ``darkness`` {dv, dark, dark_vote, verdict}, ``enhancement`` {action (enhance, soften or
        skip), strength, dv, luma, change, sentence} (what dtcm.adaptive decided), ``frames_before``/``frames_after``
        (lists of uint8 (H, W, 3)), ``diff_before``/``diff_after`` (colour-mapped RGB-difference maps on
        one scale), ``top5`` [(label, prob)], ``stc`` (spatio-temporal inconsistency L_STC of the
        enhanced clip), ``k``, ``variant``, ``timings`` {stage: seconds}, ``info`` (video facts).
        A photo (jpg, png, bmp, webp) is enhanced only: ``top5`` is empty, ``stc`` None and ``note`` says that
        recognition needs a clip.
    """
    import torch

    from dtcm import darkness, video
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
    clip = _video_call(video.read_clip, path, cfg.clip_len, "dense", size=cfg.short_side)
    timings["decode"] = time.perf_counter() - t

    t = time.perf_counter()
    dv = darkness.darkness_score(dark_frames)
    x = video.to_batch(clip, cfg.short_side, cfg.crop_size)
    timings["darkness + preprocess"] = time.perf_counter() - t

    with torch.inference_mode():
        t = time.perf_counter()
        y, _ = model.enhance(x, k)
        decision = _decide(dv, x, y)
        y = x + decision.strength * (y - x)  # skip (0), soften or enhance in full (1): dtcm.adaptive
        timings["enhance"] = time.perf_counter() - t
        t = time.perf_counter()
        logits = model.classify(y)
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
        "top5": _topk(logits, cfg.class_names),
        "stc": stc,
        "info": {"frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height},
        **_panels(before, after),
    }
    timings["total"] = time.perf_counter() - t0
    result["timings"] = timings
    return result


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
        return f"dark (Dv = {dv:.3f} < -{TAU}: as dark as ARID's clips)"
    if dv < 0:
        return f"dim (Dv = {dv:.3f}; dark would be below -{TAU})"
    return f"well lit (Dv = {dv:.3f})"


# ------------------------------------------------------------------------------------ enhance clip
def enhance_clip(
    path, variant: str | None = None, k: int | None = None, out_path=None, estimate_size: int | None = 256
) -> str:
    """Enhance a whole clip at its own resolution into a browser-playable H.264 mp4.

    Curves are estimated on keyframes downscaled so their short side is ``estimate_size`` and upsampled to
    full resolution (the Zero-DCE++ idea), so large clips stay fast; None estimates at full resolution.

    Returns:
        The path of the mp4 written (``out_path`` or a new temporary file).
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
    model = get_model(variant)
    if model.enhancer is None:
        raise ServiceError(f"the variant {variant!r} has no enhancer; pick a DTCM variant")
    frames, fps = _video_call(video.read_video, path)
    out = enhance_frames(model, frames, k or model.config.k, estimate_size=estimate_size)
    out = _decided(frames, out)  # the same enhance / soften / skip as analyse
    if out_path is None:
        fd, out_path = tempfile.mkstemp(suffix=".mp4", prefix="dtcm_enhanced_")
        os.close(fd)
    video.write_video(out_path, out, fps)
    return str(out_path)


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


def compare(path, methods=METHODS, variant: str | None = None, k: int | None = None) -> dict:
    """The same clip through several enhancers, all classified by the same model.

    Args:
        path: a video file.
        methods: any of ``METHODS``: none, gic, he, clahe, msr (classical), zerodce, dtcm (learned).
        variant: the classifier (a DTCM variant); its own enhancer is the "dtcm" method.
        k: frame sharing for the learned enhancers.
    Returns:
        dict method -> {frames_before, frames_after, diff_before, diff_after, stc, top5, seconds}, plus
        ``"_order"`` listing the methods in order.
    """
    import torch

    from dtcm import classic, video
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
    x = video.to_batch(clip, cfg.short_side, cfg.crop_size)
    before = _to_uint8(x)
    out = {"_order": list(methods)}
    for m in methods:
        t = time.perf_counter()
        with torch.inference_mode():
            if m == "none":
                y = x
            elif m in classic.CLASSIC_ENHANCERS:
                y = video.to_batch(classic.enhance_classic(m, clip), cfg.short_side, cfg.crop_size)
            elif m == "dtcm":
                y, _ = model.enhance(x, k)
            else:
                enh = _enhancer_model(m)
                if enh is None:
                    out[m] = {"error": _missing(m)}
                    continue
                y, _ = enh.enhance(x, k if k is not None else 1)
            logits = model.classify(y)
            stc = float(stc_loss(y, x))
        out[m] = {
            **_panels(before, _to_uint8(y)),
            "stc": stc,
            "top5": _topk(logits, cfg.class_names),
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
MAX_ZIP_BYTES = 2 << 30  # an uploaded dataset may unpack to at most this many bytes
MAX_ZIP_FILES = 20_000
_DATA_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".txt", ".csv", ".jpg", ".jpeg", ".png")
BACKBONES = ("mobilenetv2", "shufflenetv2", "resnet18", "resnext101", "mobilenetv2_tiny_test", "resnet_tiny_test")
_METRIC_KEYS = ("step", "epoch", "ar", "sc", "tc", "stc", "exp", "col", "tva", "dark", "total", "loss", "acc", "lr")


def _cache_root() -> Path:
    root = Path(os.environ.get("DTCM_CACHE", Path.home() / ".cache" / "dtcm"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, Path(__file__).resolve().parents[1] / "data")).resolve()


def finetune_datasets() -> dict[str, str]:
    """Datasets a fine-tune can use: label -> spec (``synthetic:small`` or a folder under the data root)."""
    out = {"DarkActions-synth, small (rendered on first use)": SYNTHETIC_SMALL}
    root = _data_root()
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if any(d.glob("*split*.txt")) or any(d.glob("*/*.mp4")) or any(d.glob("*/*.avi")):
                out[f"{d.name} (server folder)"] = str(d)
    return out


def _resolve_dataset(spec: str) -> str:
    if spec == SYNTHETIC_SMALL:
        from dtcm.data.synthetic import make_synthetic

        folder = _cache_root() / "synth-small"
        if not (folder / "split1_train.txt").is_file():
            make_synthetic(folder, per_class=5, seed=20261128)
        return str(folder)
    path = Path(spec).resolve()
    allowed = [_data_root(), (_cache_root() / "uploads").resolve()]
    if not any(path.is_relative_to(root) for root in allowed):
        raise ServiceError(f"the dataset folder {spec!r} is outside the allowed roots ({', '.join(map(str, allowed))})")
    if not path.exists():
        raise ServiceError(f"the dataset {spec!r} does not exist")
    return str(path)


def prepare_dataset_upload(zip_path) -> str:
    """Unpack an uploaded zip of class folders (or ARID/Dark-48 lists with their videos) safely.

    Refuses absolute paths, ``..``, links, non-media files and archives that unpack beyond
    ``MAX_ZIP_BYTES`` or ``MAX_ZIP_FILES``. Returns the dataset spec (a folder) for ``start_finetune``.
    """
    import hashlib
    import zipfile

    zip_path = _check_path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise ServiceError("the dataset upload is not a zip archive: zip a folder with one sub-folder per class")
    digest = hashlib.sha256(Path(zip_path).read_bytes()).hexdigest()[:16]
    dest = (_cache_root() / "uploads" / digest).resolve()
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
        for info in keep:
            zf.extract(info, dest)
    # a single top-level folder is the dataset itself
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and not any(entries[0].glob("*.mp4")):
        return str(entries[0])
    return str(dest)


class _Job:
    """One fine-tune at a time per server; its state survives page reloads (it lives here, not in a page)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.reset()

    def reset(self):
        self.state, self.message, self.metrics, self.epochs = "idle", "no fine-tune has run yet", [], []
        self.settings, self.variant, self.output_dir, self.summary = {}, None, None, None
        self.started = self.ended = None


_job = _Job()


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
) -> dict:
    """Start the full joint training loop (L_total) in the background on this server.

    Args:
        dataset: a spec from ``finetune_datasets()``, an unpacked upload, or a list/folder under the data root.
        backbone, alpha, w_stc, k, epochs, lr, batch_size: training settings (SPEC A7).
        init: a variant name or model folder to start from (None: the default variant when its backbone
            matches, else fresh weights).
        max_steps: stop after this many optimizer steps.
    Returns:
        ``finetune_status()``.
    """
    k = _check_k(k)
    checks = [
        (backbone in BACKBONES, f"backbone must be one of {', '.join(BACKBONES)}"),
        (0 <= float(alpha) <= 100, "alpha must be between 0 and 100"),
        (0 <= float(w_stc) <= 100, "W_STC must be between 0 and 100"),
        (1 <= int(epochs) <= 500, "epochs must be from 1 to 500"),
        (0 < float(lr) <= 1, "the learning rate must be above 0 and at most 1"),
        (1 <= int(batch_size) <= 64, "the batch size must be from 1 to 64"),
        (max_steps is None or int(max_steps) >= 1, "max steps must be at least 1"),
    ]
    for ok, sentence in checks:
        if not ok:
            raise ServiceError(sentence)
    with _job.lock:
        if _job.state in ("running", "stopping", "preparing"):
            raise ServiceError("a fine-tune is already running on this server; stop it or wait for it to finish")
        _job.reset()
        _job.state, _job.message, _job.started = "preparing", "preparing the dataset", time.time()
        _job.stop_event = threading.Event()
        settings = dict(
            dataset=dataset,
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
        _job.settings = settings
        _job.thread = threading.Thread(target=_run_job, args=(settings, val_dataset), daemon=True, name="dtcm-finetune")
        _job.thread.start()
    return finetune_status()


def _init_folder(init: str | None, backbone: str) -> str | None:
    """The model folder to start from: a named variant or folder; by default the default variant if it fits."""
    from dtcm.config import DTCMConfig

    variants = list_variants("all")
    if init:
        return variants[init]["path"] if init in variants else str(init)
    try:
        path = Path(variants[default_variant()]["path"])
        same = DTCMConfig.load(path / "config.json").backbone == backbone
    except (ServiceError, OSError, ValueError, KeyError):
        return None
    return str(path) if same else None


def _run_job(settings: dict, val_dataset: str | None) -> None:
    from dtcm import train

    try:
        data = _resolve_dataset(settings["dataset"])
        runs = Path(os.environ.get(RUNS_ROOT_ENV, _cache_root() / "runs"))
        out = runs / time.strftime("finetune-%Y%m%d-%H%M%S")
        init = _init_folder(settings["init"], settings["backbone"])
        args = dict(
            data=data,
            val_data=val_dataset or data,
            model="dtcm_mobilenetv2",
            init=init,
            **{
                key: settings[key]
                for key in ("backbone", "alpha", "w_stc", "k", "epochs", "lr", "batch_size", "max_steps")
            },
            output_dir=str(out),
            num_workers=0,
            progress=False,
            checkpoint_every=50,
        )
        with _job.lock:
            _job.state, _job.message, _job.output_dir = "running", "training", str(out)
        summary = train.main(args, callback=_on_metrics, stop_event=_job.stop_event)
        name = out.name
        register_variant(
            name,
            summary["final"],
            description=f"fine-tuned here on {Path(data).name}",
            w_stc=settings["w_stc"],
            k=settings["k"],
            metrics=summary.get("epoch_metrics") or {},
        )
        with _job.lock:
            _job.summary, _job.variant = summary, name
            _job.state = "stopped" if summary["status"] == "stopped" else "finished"
            _job.ended = time.time()
            _job.message = f"{_job.state} after {summary['steps']} steps; the model is selectable as {name!r}"
    except Exception as exc:  # every failure ends in a sentence; the last good checkpoint stays on disk
        with _job.lock:
            _job.state, _job.ended = "failed", time.time()
            text = str(exc) or type(exc).__name__
            _job.message = f"the fine-tune failed: {text}"
            if _job.output_dir:
                _job.message += f" (checkpoints kept in {_job.output_dir})"


def _on_metrics(record: dict) -> bool:
    with _job.lock:
        if record.get("type") == "epoch":
            _job.epochs.append(dict(record))
        else:
            _job.metrics.append({k: record[k] for k in _METRIC_KEYS if k in record})
            del _job.metrics[:-5000]
    return _job.stop_event.is_set()


def finetune_status() -> dict:
    """The fine-tune's state, message, per-step metrics and epoch records, settings and result variant."""
    with _job.lock:
        return {
            "state": _job.state,
            "message": _job.message,
            "metrics": list(_job.metrics),
            "epochs": list(_job.epochs),
            "settings": dict(_job.settings),
            "variant": _job.variant,
            "output_dir": _job.output_dir,
            "elapsed": ((_job.ended or time.time()) - _job.started) if _job.started else 0.0,
        }


def stop_finetune(wait: float = 0.0) -> dict:
    """Ask the running fine-tune to stop after its current step (a checkpoint and the model are kept)."""
    with _job.lock:
        if _job.state in ("running", "preparing"):
            _job.state, _job.message = "stopping", "stopping after the current step"
        _job.stop_event.set()
        thread = _job.thread
    if wait and thread is not None:
        thread.join(wait)
    return finetune_status()


def loss_figure(status: dict | None = None):
    """Every loss term (log scale) and the batch accuracy of a fine-tune, as a plotly figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    status = status or finetune_status()
    m = status["metrics"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("losses", "batch accuracy"))
    steps = [r.get("step") for r in m]
    for term in ("total", "ar", "stc", "sc", "tc", "dark", "exp", "col", "tva"):
        ys = [r.get(term) for r in m]
        if any(y is not None for y in ys):
            fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines", name=term), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[r.get("acc") for r in m], mode="lines", name="acc"), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"))
    return fig


def save_finetuned(name: str | None = None) -> str:
    """Copy the finished fine-tune into ``weights/`` and list it in ``weights/index.json``."""
    import json
    import re
    import shutil

    from dtcm import hub

    status = finetune_status()
    if status["variant"] is None:
        raise ServiceError("there is no finished fine-tune to save")
    name = name or status["variant"]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise ServiceError("a variant name uses letters, digits, '-', '_' and '.', up to 64 characters")
    src = Path(_runtime_variants[status["variant"]]["path"])
    wdir = hub.weights_dir()
    dest = wdir / name
    if dest.exists():
        raise ServiceError(f"weights/{name} already exists; choose another name")
    tmp = wdir / f".{name}.tmp"
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("*.pt", "*.bin", "optimizer*"))
    os.replace(tmp, dest)
    index_path = wdir / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"default": name, "models": {}}
    entry = dict(_runtime_variants[status["variant"]])
    entry.pop("runtime", None)
    entry["path"] = name
    index["models"][name] = entry
    tmp_index = index_path.with_suffix(".json.tmp")
    tmp_index.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(tmp_index, index_path)
    return str(dest)


def push_finetuned(repo_id: str, token: str | None = None) -> str:
    """Push the finished fine-tune to the Hugging Face Hub; returns the commit URL."""
    from dtcm import hub_push

    status = finetune_status()
    if status["variant"] is None:
        raise ServiceError("there is no finished fine-tune to push")
    try:
        return hub_push.push(_runtime_variants[status["variant"]]["path"], repo_id, token=token or None)
    except (OSError, ValueError) as exc:
        raise ServiceError(str(exc)) from None
