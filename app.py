"""DTCM Studio, the Gradio app: recognise actions in dark videos, compare enhancers, fine-tune, publish.

A thin layer over :mod:`dtcm.service` (the only project module it imports; no torch here): one handler
per action, each turning the service's plain data into component values and every failure into a
``gr.Error`` with one human sentence. ``demo`` is built at module level, so ``gradio app.py`` (reload
mode), ``python app.py`` and a Hugging Face Space all run the same object.

Run:
    python app.py                      # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / _PORT override)

Endpoints (``gradio_client.Client(url).predict(..., api_name=...)``):
    /analyse   (video, variant, k) -> darkness, model, clip, Top-5 plot, L_STC, 4 galleries, timings, JSON
    /enhance   (video, variant, k) -> enhanced H.264 mp4, a note
    /compare   (video, methods, variant, k) -> frames gallery, RGB-diff gallery, summary plot, table, JSON
    /finetune_start, /finetune_stop, /finetune_status, /finetune_save, /finetune_push, /dataset_upload
"""

from __future__ import annotations

import collections
import functools
import hashlib
import logging
import math
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dtcm import service
from dtcm.device import gpu, on_zero_gpu
from dtcm.hub import MODEL_CARD_CITATION, is_stub_card  # no torch behind these

log = logging.getLogger("dtcm.app")

ROOT = Path(__file__).resolve().parent
RESULTS_MD = ROOT / "docs" / "RESULTS.md"
OUT_DIR = Path(tempfile.gettempdir()) / "dtcm_app"  # enhanced clips; pruned after OUT_TTL_S
OUT_TTL_S = 3600
VIDEO_TYPES = ("mp4", "avi", "mov", "mkv", "webm")
CONCURRENCY = service.MODEL_CONCURRENCY  # model calls at once over every endpoint (DTCM_CONCURRENCY)
QUEUE_SIZE = int(os.environ.get("DTCM_QUEUE_SIZE", "32"))  # waiting requests before "queue full"
MAX_FILE_SIZE = os.environ.get("DTCM_MAX_FILE_SIZE", "200mb")
RAW_UPLOAD_TTL_S = 900  # uploaded and served files are deleted after this long (checked every third of it)
UPLOAD_CACHE_BYTES = int(float(os.environ.get("DTCM_UPLOAD_CACHE_GB", "2")) * (1 << 30))  # their total, at most
COMPARE_COLUMNS = 4  # frames (and RGB-diff maps) shown per enhancer: one gallery row each
POLL_S = 2.0  # fine-tune status polling period
FINETUNE_ENV = service.WRITES_ENV  # "0" switches training, uploads, saving and pushing off; off by default on a Space
FINETUNE_ENABLED = service.writes_enabled()
FT_LIMITS = service.finetune_limits()  # what one fine-tune may ask for on this machine
FT_DEFAULTS = service.finetune_defaults()  # the form starts from the default variant's own settings
GPU_SECONDS = int(os.environ.get("DTCM_GPU_SECONDS", "60"))  # ZeroGPU slot per model call
GENERIC_ERROR = "Something went wrong on the server while doing that; please try again or try another clip."

METHOD_SHORT = {
    "none": "input",
    "gic": "GIC",
    "he": "HE",
    "clahe": "CLAHE",
    "msr": "MSR",
    "zerodce-published": "Zero-DCE (published)",
    "zerodce": "Zero-DCE (ours)",
    "dtcm": "DTCM",
}
METHOD_NAMES = service.METHOD_LABELS
ACTIVE_STATES = service.ACTIVE_JOB_STATES
AUTO_INIT = "auto"  # the service starts from the default variant when its backbone fits, else fresh
INIT_CHOICE = ("auto (default variant)", AUTO_INIT)


PAPER_TABLE = """| Result (paper, ARID, 64x112x112, Kinetics init) | Top-1 |
|---|---|
| 3D-ResNeXt-101 alone | 86.36 |
| DTCM (3D-ResNeXt-101 + LightDCE, one-stage L_total, k = 4) | **96.36** |
| DTCM, W_STC = 0 (Table VIII) | 87.1 |
| DTCM, W_STC = 4 (Table VIII) | 97.1 |

LightDCE: about 23K parameters; DTCM in total 47.57M parameters and 43.24 GFLOPs at 64x112x112, k = 4."""

HEADER = """# DTCM Studio
Recognise actions in **dark videos**: a 23K-parameter curve network brightens the clip and a 3D CNN classifies it,
trained together so the enhancement serves recognition (DTCM, Tu et al., IEEE TIP 2023)."""

CSS = """
#header h1 {margin-bottom: 0.2rem}
#header p {margin-top: 0; opacity: 0.85}
.gallery-row {gap: 12px}
@media (max-width: 480px) {  /* a phone: every tab in the bar, the header short */
  .tab-container button {padding: 4px 7px !important; font-size: 14px !important}
  #header p {font-size: 13px}
}
"""


# ----------------------------------------------------------------------------------------- helpers
def _human_errors(fn):
    """Show ``ServiceError`` text as is; log anything else and show a generic sentence."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except service.ServiceError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:
            log.exception("unexpected failure in %s", fn.__name__)
            raise gr.Error(GENERIC_ERROR, print_exception=False) from None

    return wrapper


@gpu(duration=GPU_SECONDS)
def _on_gpu(call, *args, **kwargs):
    """Run one model call of the service: inside ``spaces.GPU`` on a ZeroGPU Space, directly elsewhere."""
    return call(*args, **kwargs)


def _plain(x):
    """numpy scalars and tuples -> JSON-able Python values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _variants() -> dict[str, dict]:
    try:
        return service.list_variants()
    except Exception:  # a broken index must not stop the app from starting; using it shows the error
        log.exception("could not read the weights index")
        return {}


def _variant_label(name: str, entry: dict) -> str:
    bits = []
    if entry.get("w_stc") is not None:
        bits.append(f"W_STC {float(entry['w_stc']):g}")
    if entry.get("k") is not None:
        bits.append(f"k {entry['k']}")
    if entry.get("runtime"):
        bits.append("fine-tuned here")
    return f"{name} ({', '.join(bits)})" if bits else name


def _variant_choices(variants: dict[str, dict] | None = None) -> list[tuple[str, str]]:
    variants = _variants() if variants is None else variants
    return [(_variant_label(n, e), n) for n, e in variants.items()]


def _default_variant() -> str | None:
    try:
        return service.default_variant()
    except Exception:
        return None


def _wstc_radio_args() -> dict:
    """The W_STC values a shipped variant was trained with, as the only choices (nothing in between)."""
    try:
        values = service.wstc_choices()
    except Exception:
        values = []
    default = _variants().get(_default_variant() or "", {}).get("w_stc")
    value = float(default) if default is not None else (values[0] if values else None)
    return dict(choices=[(f"{v:g}", v) for v in values], value=value, interactive=len(values) > 1)


K_INFO = service.K_HELP


def _default_k() -> int:
    entry = _variants().get(_default_variant() or "", {})
    return int(entry.get("k") or 4)


def _examples() -> list[list[str]]:
    return [[path] for path, _ in service.example_clips()]


def _example_shelf() -> list[tuple[str, str]]:
    """The examples' brightened middle frames with their captions, for the Recognise tab's shelf."""
    try:
        return [(_image_file(img), caption.split(":")[0]) for _, img, caption in service.example_previews()]
    except Exception:
        log.exception("could not make the example previews")
        return []


def pick_example(evt: gr.SelectData):
    """The clip behind the clicked example preview."""
    previews = service.example_previews()
    return previews[evt.index][0] if 0 <= evt.index < len(previews) else gr.skip()


def _example_labels() -> list[str]:
    return [caption for _, caption in service.example_clips()]


def _known_actions() -> str:
    try:
        names = service.class_names()
    except Exception:
        return ""
    return f"The model knows {len(names)} actions: {', '.join(names)}. Anything else gets the nearest of them."


def _check_variant(name) -> str | None:
    """The variant name if this server has it (shipped or fine-tuned here); None for the default."""
    if not name:
        return None
    try:
        variants = service.list_variants()
    except ValueError as exc:  # a broken weights index names its problem
        raise service.ServiceError(f"the model index could not be read: {exc}") from None
    if name not in variants:
        raise service.ServiceError(
            f"unknown model variant {name!r}; choose from {', '.join(variants) or 'none installed'}"
        )
    return name


def _check_video(path) -> str:
    """The clip to work on: the upload itself, also when the player shows its H.264 preview."""
    if not path:
        raise service.ServiceError("no video was given: upload a clip (mp4, avi, mov, mkv or webm) or pick an example")
    original = _PREVIEWS.get(Path(path).name)
    if original is not None and Path(original).is_file():
        return original
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in VIDEO_TYPES:
        raise service.ServiceError(
            f"{Path(path).name!r} is not a video file this app reads; upload {', '.join(VIDEO_TYPES)}"
        )
    return str(path)


_PREVIEWS: collections.OrderedDict[str, str] = collections.OrderedDict()  # preview file name -> the upload
_PREVIEWS_MAX = 512


def preview_upload(video):
    """Make an upload the browser cannot play (AVI, HEVC, ...) playable: (player value, note).

    A file that cannot be read gets no preview and no message here: Analyse then says what is wrong, once.
    """
    if not video:
        return gr.skip(), ""
    try:
        path = _check_video(video)
        _prune_outputs()
        r = service.preview_video(path, out_dir=OUT_DIR)
    except Exception:
        return gr.skip(), ""
    if not r["transcoded"]:
        return gr.skip(), ""
    _PREVIEWS[Path(r["path"]).name] = path
    while len(_PREVIEWS) > _PREVIEWS_MAX:
        _PREVIEWS.popitem(last=False)
    return r["path"], r["note"]


def _k(k) -> int:
    return int(k) if k is not None and float(k).is_integer() else k  # the service names a bad value


def _image_file(img: np.ndarray) -> str:
    """An image as a WebP file named by its content, written once and atomically.

    Galleries get files, not arrays: Gradio rewrites the cached file of an array on every request, so two
    identical requests at once could truncate a file while it is being downloaded.
    """
    ok, data = cv2.imencode(
        ".webp", cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, 90]
    )
    if not ok:
        raise service.ServiceError("an image of the result could not be encoded")
    folder = OUT_DIR / "images"
    path = folder / f"{hashlib.sha256(data.tobytes()).hexdigest()[:32]}.webp"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".img-")
        with os.fdopen(fd, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, path)
    return str(path)


def _gallery(images, first_caption: str | None = None) -> list[tuple[str, str | None]]:
    return [(_image_file(img), first_caption if i == 0 else None) for i, img in enumerate(images)]


def _prune_outputs() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for p in [*OUT_DIR.glob("*.mp4"), *OUT_DIR.glob("images/*.webp")]:
        try:
            if now - p.stat().st_mtime > OUT_TTL_S:
                p.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------------------- Recognise
def _top5_plot(top5, guesses: bool = False) -> go.Figure:
    """The Top-5 bars; titled "guesses" when the model is not sure (the sentence above the chart says why)."""
    fig = service.top5_figure(top5, title="Its guesses, not an answer" if guesses else "")
    fig.update_traces(cliponaxis=False)  # a 100% bar keeps its label
    top = 34 if guesses else 10
    fig.update_layout(height=240 + top, margin=dict(l=10, r=56, t=top, b=10), title_font_size=13)
    return fig


@_human_errors
def analyse(video, variant, k):
    """Darkness, enhancement and Top-5 of one clip (its centred window of frames).

    Returns:
        (darkness text, model text, clip text (with the frames classified), Top-5 plotly figure (titled
        with the not-sure sentence when the model is not sure), L_STC float, frames before, frames after,
        RGB-diff before, RGB-diff after (galleries), the full-size before/after pair (image slider), the
        verdict (Markdown: the action, or "not sure" and why), timings rows
        [[stage, seconds]], result dict for JSON).
    """
    return _analysis_outputs(_on_gpu(service.analyse, _check_video(video), _check_variant(variant), _k(k)))


@_human_errors
def analyse_segment(video, variant, k, start_s):
    """As ``analyse``, for the window of frames that starts ``start_s`` seconds into the clip."""
    if start_s is None:
        raise service.ServiceError("give the segment's start in seconds (the timeline shows where the action is)")
    r = _on_gpu(service.analyse, _check_video(video), _check_variant(variant), _k(k), start_s=float(start_s))
    return _analysis_outputs(r)


@_human_errors
def timeline(video, variant, k):
    """Each window of the whole clip classified: (plotly figure, one-line summary)."""
    r = _on_gpu(service.timeline, _check_video(video), _check_variant(variant), _k(k))
    w = r["windows"]
    spacing = f" every {r['stride_frames'] / r['fps']:.1f} s" if len(w) > 1 else ""
    text = (
        f"{len(w)} windows of {w[0]['last'] - w[0]['first'] + 1} frames{spacing} over {r['duration_s']:.1f} s, "
        f"in {r['seconds']:.1f} s. Type a start time below to recognise that segment."
    )
    return service.timeline_figure(r), text


def _analysis_outputs(r: dict) -> tuple:
    """The service's analysis as the Recognise tab's outputs (see ``analyse``)."""
    d, info = r["darkness"], r["info"]
    entry = _variants().get(r["variant"], {})
    wstc = f"W_STC {float(entry['w_stc']):g}, " if entry.get("w_stc") is not None else ""
    darkness = f"{d['verdict'][0].upper()}{d['verdict'][1:]}. {r['enhancement']['sentence']}"
    model = f"{r['variant']} ({wstc}k = {r['k']})"
    clip = (
        f"{info['frames']} frames, {info['width']}x{info['height']} at {info['fps']:g} fps. " + r["window"]["sentence"]
    )
    timings = [[stage, round(float(s), 3)] for stage, s in r["timings"].items()]
    summary = {
        "variant": r["variant"],
        "k": r["k"],
        "darkness": d,
        "enhancement": r["enhancement"],
        "top5": [{"label": label, "prob": p} for label, p in r["top5"]],
        "verdict": {"sure": r["verdict"]["sure"], "reason": r["verdict"]["reason"]},
        "stc": r["stc"],
        "info": info,
        "window": r["window"],
        "timings": r["timings"],
    }
    not_sure = service.not_sure_sentence(r["verdict"])
    return (
        darkness,
        model,
        clip,
        _top5_plot(r["top5"], bool(not_sure)),
        round(float(r["stc"]), 6),
        _gallery(r["frames_before"]),
        _gallery(r["frames_after"]),
        _gallery(r["diff_before"]),
        _gallery(r["diff_after"]),
        (_image_file(r["full_before"]), _image_file(r["full_after"])),
        f"**{not_sure}**" if not_sure else f"**Recognised: {r['top5'][0][0]}** ({r['top5'][0][1]:.0%}).",
        timings,
        _plain(summary),
    )


@_human_errors
def enhance(video, variant, k, progress=gr.Progress(), start_s=None):
    """The clip enhanced within the server's per-request bounds.

    Returns:
        (path of a browser-playable H.264 mp4, a note saying which frames at which size, and the time taken).
    """
    path = _check_video(video)
    _prune_outputs()
    fd, out = tempfile.mkstemp(suffix=".mp4", prefix="enhanced_", dir=OUT_DIR)
    os.close(fd)
    try:
        tell = None if on_zero_gpu() else (lambda done, total: progress((done, total), desc="enhancing", unit="frames"))
        result = _on_gpu(
            service.enhance_video, path, _check_variant(variant), _k(k), out_path=out, on_progress=tell, start_s=start_s
        )
    except BaseException:
        Path(out).unlink(missing_ok=True)  # a failed request leaves no file behind
        raise
    return result["path"], result["note"]


@_human_errors
def enhance_photo(photo, variant):
    """A photo through the variant's enhancer (with the pipeline's enhance/soften/skip decision).

    Returns:
        ((before, after) image files for the slider, a note: what was done, and that recognition needs a clip).
    """
    if not photo:
        raise service.ServiceError("no photo was given: upload a jpg, png, bmp or webp image")
    r = _on_gpu(service.analyse, str(photo), _check_variant(variant), 1)
    return (_image_file(r["frames_before"][0]), _image_file(r["frames_after"][0])), (
        f"{r['enhancement']['sentence']} {r['note']}"
    )


@_human_errors
def enhance_segment(video, variant, k, start_s, progress=gr.Progress()):
    """The clip enhanced from ``start_s`` seconds on (within the server's bounds): (mp4 path, note)."""
    if start_s is None:
        raise service.ServiceError("give the segment's start in seconds (the timeline shows where the action is)")
    return enhance(video, variant, k, progress=progress, start_s=float(start_s))


def snap_wstc(w_stc):
    """The shipped variant trained with the chosen W_STC: (dropdown value, W_STC value)."""
    try:
        name = service.variant_for_wstc(float(w_stc))
    except Exception:
        return gr.skip(), gr.skip()
    entry = _variants().get(name, {})
    return name, float(entry["w_stc"]) if entry.get("w_stc") is not None else gr.skip()


def follow_variant(name):
    """Select the chosen variant's W_STC (nothing selected when it was trained with another or none)."""
    entry = _variants().get(name or "", {})
    value = float(entry["w_stc"]) if entry.get("w_stc") is not None else None
    return value if value in service.wstc_choices() else None


# ----------------------------------------------------------------------------------------- Compare
def _compare_figure(result: dict, order: list[str]) -> go.Figure:
    """Brightness and flicker (L_STC) per enhancer (bars) beside each enhancer's Top-5 probabilities (heat map)."""
    done = [m for m in order if "error" not in result[m]]
    names = [METHOD_NAMES.get(m, m) for m in done]
    labels = []
    for m in done:
        labels += [label for label, _ in result[m]["top5"] if label not in labels]
    z = [[dict(result[m]["top5"]).get(label) for label in labels] for m in done]  # (methods, labels)
    text = [[f"{p:.0%}" if p is not None else "" for p in row] for row in z]
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.18, 0.22, 0.6],
        horizontal_spacing=0.07,
        subplot_titles=("Brightness (0-255)", "Flicker L_STC (lower: steadier)", "Top-5 probabilities"),
        shared_yaxes=True,
    )
    colours = ["#f59e0b" if m == "dtcm" else "#94a3b8" for m in done]
    for col, key, fmt in ((1, "luma", "{:.0f}"), (2, "stc", "{:.4f}")):
        fig.add_trace(
            go.Bar(
                x=[result[m][key] for m in done],
                y=names,
                orientation="h",
                marker_color=colours,
                text=[fmt.format(result[m][key]) for m in done],
                textposition="auto",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=labels,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="YlOrBr",
            zmin=0,
            zmax=1,
            showscale=False,
            hoverongaps=False,
        ),
        row=1,
        col=3,
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 42 * len(done), margin=dict(l=10, r=10, t=64, b=10))
    return fig


@_human_errors
def compare(video, methods, variant, k):
    """The clip through each chosen enhancer, all classified by the same model.

    Returns:
        (frames gallery: one row of frames per enhancer, RGB-diff gallery: one row per enhancer,
        summary plotly figure, table rows [[enhancer, brightness, L_STC, top-1, top-5, seconds]], result dict).
    """
    path = _check_video(video)
    if not methods:
        raise service.ServiceError(f"choose at least one enhancer to compare ({', '.join(METHOD_NAMES.values())})")
    r = _on_gpu(service.compare, path, list(methods), _check_variant(variant), _k(k))
    order = r["_order"]
    frames, diffs, rows, summary = [], [], [], {}
    n_frames = n_diffs = COMPARE_COLUMNS
    for m in order:
        res = r[m]
        name = METHOD_NAMES.get(m, m)
        if "error" in res:
            rows.append([name, None, None, "-", res["error"], None])
            summary[m] = {"error": res["error"]}
            continue
        pick = np.linspace(0, len(res["frames_after"]) - 1, n_frames).round().astype(int)
        dpick = np.linspace(0, len(res["diff_after"]) - 1, n_diffs).round().astype(int)
        frames += _gallery([res["frames_after"][i] for i in pick], METHOD_SHORT.get(m, m))
        diffs += _gallery([res["diff_after"][i] for i in dpick], METHOD_SHORT.get(m, m))
        top1, p1 = res["top5"][0]
        top5 = ", ".join(f"{label} {p:.0%}" for label, p in res["top5"])
        rows.append(
            [
                name,
                round(float(res["luma"]), 1),
                round(float(res["stc"]), 5),
                f"{top1} ({p1:.0%})",
                top5,
                round(float(res["seconds"]), 3),
            ]
        )
        summary[m] = {
            "stc": res["stc"],
            "luma": res["luma"],
            "top5": [{"label": label, "prob": p} for label, p in res["top5"]],
            "seconds": res["seconds"],
        }
    if not frames:
        raise service.ServiceError(
            "none of the chosen enhancers is available: " + "; ".join(r[m]["error"] for m in order)
        )
    return (
        frames,
        diffs,
        _compare_figure(r, order),
        rows,
        _plain(summary),
    )


# --------------------------------------------------------------------------------------- Fine-tune
def _dataset_choices() -> list[tuple[str, str]]:
    try:
        return list(service.finetune_datasets().items())  # (label, spec)
    except Exception:
        log.exception("could not list the fine-tune datasets")
        return []


def _backbones() -> list[str]:
    return [b for b in FT_LIMITS["backbones"] if not b.endswith("_test")]


def _variant_dropdowns(variants: dict) -> tuple:
    """Recognise's, Compare's and Start-from's dropdowns with every variant there is now."""
    choices = _variant_choices(variants)
    return gr.Dropdown(choices=choices), gr.Dropdown(choices=choices), gr.Dropdown(choices=[INIT_CHOICE, *choices])


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _status_text(status: dict) -> str:
    state = status.get("state", "idle")
    metrics = status.get("metrics") or []
    text = f"{state}: {status.get('message') or ''}".strip().rstrip(":")
    if metrics:
        last = metrics[-1]
        bits = [f"step {last.get('step')}", f"epoch {last.get('epoch')}"]
        bits += [f"{key} {last[key]:.4g}" for key in ("total", "acc") if isinstance(last.get(key), (int, float))]
        text += "\nlast: " + ", ".join(bits)
    progress = status.get("progress")
    if progress:
        text += f"\nstep {progress['step']} of {progress['total_steps']}"
        if progress.get("eta_s") is not None:
            text += f", about {_duration(progress['eta_s'])} left"
    epochs = [e for e in status.get("epochs") or [] if e.get("val_top1") is not None]
    if epochs:
        e = epochs[-1]
        text += f"\nvalidation after epoch {e.get('epoch')}: Top-1 {e['val_top1']:.0%}"
        if e.get("val_n"):
            text += f" of {e['val_n']} clips"
    if status.get("variant"):
        text += f"\nnew variant: {status['variant']} (selectable in Recognise and Compare)"
    return text


def _check_finetune_allowed() -> None:
    if not service.writes_enabled():
        raise service.ServiceError(f"fine-tuning is switched off on this server ({FINETUNE_ENV}=0)")


def _owner(known: dict | None) -> tuple[str, dict]:
    """This visitor's job key (kept in the session and the browser) and the session memory holding it."""
    known = dict(known or {})
    if not known.get("owner"):
        known["owner"] = service.new_owner_key()
    return known["owner"], known


def remember_owner(stored, known):
    """At page load: take the job key the browser kept (a reload still owns its job) or make one."""
    known = dict(known or {})
    known["owner"] = stored if isinstance(stored, str) and len(stored) >= 16 else known.get("owner")
    owner, known = _owner(known)
    return known, owner


def _status_summary(status: dict) -> dict:
    """The status without its (long) per-step history: the last step's metrics instead."""
    metrics = status.get("metrics") or []
    out = {k: v for k, v in status.items() if k != "metrics"}
    return _plain({**out, "steps_logged": len(metrics), "last": metrics[-1] if metrics else None})


def _poll_outputs(status: dict, known: dict | None):
    """What every fine-tune handler returns.

    Returns:
        (status text, loss figure (skipped when no new step arrived), status dict for JSON, timer
        (active while the job runs), the three variant dropdowns (skipped unless the variants changed),
        this session's memory of what it has shown).
    """
    known = dict(known or {})
    n = len(status.get("metrics") or [])
    state = status.get("state", "idle")
    changed = n != known.get("n") or state != known.get("state")
    figure = (service.loss_figure(status) if n else None) if changed else gr.skip()
    variants = _variants()
    names = sorted(variants)
    if names != known.get("variants"):
        dropdowns = _variant_dropdowns(variants)
    else:
        dropdowns = (gr.skip(),) * 3
    known.update(n=n, state=state, variants=names)
    timer = gr.Timer(active=state in ACTIVE_STATES)
    return (_status_text(status), figure, _status_summary(status), timer, *dropdowns, known)


@_human_errors
def finetune_poll(known):
    """Poll this visitor's fine-tune job (it survives page reloads: the job lives in the server)."""
    owner, known = _owner(known)
    return _poll_outputs(service.finetune_status(owner), known)


@_human_errors
def finetune_start(dataset, backbone, alpha, w_stc, k, epochs, lr, batch_size, init, max_steps, known):
    """Start a fine-tune job in the server with these settings; the timer then polls its status."""
    _check_finetune_allowed()
    if not dataset:
        raise service.ServiceError("choose a dataset to fine-tune on, or upload a zip of class folders")
    blank = [name for name, v in (("alpha", alpha), ("learning rate", lr)) if v is None]
    if blank:
        raise service.ServiceError(f"fill in the {' and the '.join(blank)}: a number is needed")
    owner, known = _owner(known)
    status = service.start_finetune(
        dataset,
        backbone=backbone,
        alpha=float(alpha),
        w_stc=float(w_stc),
        k=_k(k),
        epochs=int(epochs),
        lr=float(lr),
        batch_size=int(batch_size),
        init=None if not init or init == AUTO_INIT else init,
        max_steps=int(max_steps) if max_steps else None,
        owner=owner,
    )
    return _poll_outputs(status, known)


@_human_errors
def finetune_stop(known):
    """Ask this visitor's running job to stop after its current step."""
    owner, known = _owner(known)
    return _poll_outputs(service.stop_finetune(owner=owner), known)


@_human_errors
def finetune_save(name, known):
    """Save this visitor's finished fine-tune into weights/.

    Returns:
        (the folder written, the three variant dropdowns with the saved variant among their choices).
    """
    _check_finetune_allowed()
    owner, _ = _owner(known)
    saved = str(service.save_finetuned((name or "").strip() or None, owner=owner))
    return (saved, *_variant_dropdowns(_variants()))


@_human_errors
def finetune_resume(known):
    """Continue this visitor's stopped fine-tune from its last checkpoint (same run, same step count)."""
    _check_finetune_allowed()
    owner, known = _owner(known)
    return _poll_outputs(service.resume_finetune(owner), known)


@_human_errors
def finetune_push(repo_id, token, known):
    """Push this visitor's finished fine-tune to the Hub with their own token; returns the URL as Markdown."""
    _check_finetune_allowed()
    if not repo_id or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id.strip()):
        raise service.ServiceError(f"the repo id must look like owner/name, got {repo_id!r}")
    owner, _ = _owner(known)
    url = service.push_finetuned(repo_id.strip(), token=token or None, owner=owner)
    return f"Pushed: [{url}]({url})"


@_human_errors
def dataset_upload(zip_path):
    """Unpack an uploaded zip of class folders; returns the dataset dropdown with it added and selected."""
    _check_finetune_allowed()
    if not zip_path:
        raise service.ServiceError("no zip file was given: upload a .zip holding one folder of clips per class")
    spec = service.prepare_dataset_upload(zip_path)
    choices = [*_dataset_choices(), (f"{Path(zip_path).name} (uploaded)", spec)]
    return gr.Dropdown(choices=choices, value=spec)


# ------------------------------------------------------------------------------------------- About
def _strip_front_matter(text: str) -> str:
    return re.sub(r"\A---\n.*?\n---\n", "", text, count=1, flags=re.S)


def model_card(variant) -> str:
    """The model card (README.md in the variant's folder) of the selected variant, as Markdown."""
    entry = _variants().get(variant or "", {})
    card = Path(entry["path"]) / "README.md" if entry.get("path") else None
    title = f"### Model card: {variant}\n" if variant else "### Model card\n"
    if card is None or is_stub_card(card):
        return title + ("This variant has no model card." if variant else "No model weights are installed.")
    text = _strip_front_matter(card.read_text(encoding="utf-8"))
    return title + re.sub(r"^#(?=#* )", "####", text, flags=re.M)  # its headings below the tab's own


def _pct(v) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{100 * v:.1f}" if v <= 1 else f"{v:.1f}"  # fractions or percentages


def results_md() -> str:
    """Our numbers: the variants' metrics from the weights index, then docs/RESULTS.md when it exists."""
    rows = [
        "### Our numbers",
        "| Our variant (test split of its data) | W_STC | k | Top-1 | Top-5 |",
        "|---|---|---|---|---|",
    ]
    for name, e in _variants().items():
        m = e.get("metrics") or {}
        rows.append(
            f"| {name} | {e.get('w_stc', '-')} | {e.get('k', '-')} | {_pct(m.get('top1'))} | {_pct(m.get('top5'))} |"
        )
    text = "\n".join(rows)
    if RESULTS_MD.is_file():
        text += "\n\n" + re.sub(r"^#(?=#* )", "####", RESULTS_MD.read_text(encoding="utf-8"), flags=re.M)
    return text


ABOUT_MD = f"""
### How it works
DTCM (Tu et al., IEEE TIP 2023) puts a light enhancement network in front of a 3D CNN and trains both
together: LightDCE estimates 8 Zero-DCE light-enhancement curves per pixel on the **keyframe** of every
group of *k* frames and applies them to all frames of the group (frame sharing: curve estimation costs 1/k),
and the loss adds spatial and temporal consistency (L_STC, weighted by W_STC) to the recognition loss.
The darkness score Dv (Eq. 12-14) compares the mean luma of 8 sampled frames with 112; a clip is dark when
Dv < -0.877, ARID's mean.

### The equations behind the numbers
- **Curve** (the Zero-DCE light-enhancement curve): each of 8 iterations brightens a pixel value x in [0, 1] as x <- x + r x (1 - x), with
  a curve parameter r in [-1, 1] per pixel and colour channel, estimated by LightDCE.
- **Darkness** Dv (Eq. 12-14): the mean of (luma - 112) / 112 over 8 frames spread over the clip: -1 is
  black, 0 mid-grey, 1 white; ARID's clips average -0.877, and below that a clip counts as dark.
- **Flicker** L_STC (Eq. 1-4): how much the enhancement changes the differences between a pixel and its
  neighbours (spatial) and between neighbouring frames (temporal); lower is steadier.
- **Training** (Eq. 7): L_total = L_AR + alpha (W_STC L_STC + L_Dark), with L_AR the recognition
  (cross-entropy) loss (Eq. 6) and L_Dark Zero-DCE's exposure, colour and smoothness losses (Eq. 5).
- **Confidence**: probabilities are calibrated (temperature scaling); below a threshold, or for a clip
  unlike the training data, the app says "not sure" instead of naming an action.

The **enhanced video** is made at the clip's own resolution (within the server's bounds, which its note
states): curves are estimated on downscaled keyframes and upsampled to full size before they are applied
(the Zero-DCE++ idea), so large clips stay fast.

The shipped weights were trained on **DarkActions-synth**, procedural figures doing ARID's 11 actions filmed
by a low-light camera model, because no real dark action dataset can be downloaded here; their model cards
say so. Fine-tune on ARID, Dark-48 or your own clips in the Fine-tune tab.

### Citation
```bibtex
{MODEL_CARD_CITATION}
```
"""


# -------------------------------------------------------------------------------------------- layout
def _gallery_box(label: str, elem_id: str) -> gr.Gallery:
    return gr.Gallery(label=label, columns=4, rows=2, height=300, object_fit="contain", preview=False, elem_id=elem_id)


def _compare_gallery(label: str, elem_id: str) -> gr.Gallery:
    """A Compare-tab gallery: one row per enhancer, tall enough for every row (no inner scrolling)."""
    return gr.Gallery(
        label=label, columns=COMPARE_COLUMNS, height="fit-content", object_fit="contain", preview=False, elem_id=elem_id
    )


# An upload the browser cannot decode makes Gradio's player raise "Video not playable" before the server has
# sent its H.264 preview (preview_upload). The upload players' media errors are stopped in the capture
# phase, before the player's own handler sees them; nothing else changes (other toasts, other players).
QUIET_UNPLAYABLE_JS = """
() => {
  document.addEventListener('error', e => {
    const t = e.target;
    if (t && t.tagName === 'VIDEO' && t.closest('#rec-video, #cmp-video')) e.stopImmediatePropagation();
  }, true);
}
"""

with gr.Blocks(title="DTCM Studio", delete_cache=(RAW_UPLOAD_TTL_S // 3, RAW_UPLOAD_TTL_S)) as demo:
    gr.Markdown(HEADER, elem_id="header")
    variants0, default0, wstc0, k0 = _variants(), _default_variant(), _wstc_radio_args(), _default_k()

    with gr.Tabs():
        # ---------------------------------------------------------------- Recognise
        with gr.Tab("Recognise", id="recognise"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    video = gr.Video(
                        label="Dark clip (mp4, avi, mov, mkv, webm), or record one",
                        sources=["upload", "webcam"],
                        height=300,
                        elem_id="rec-video",
                    )
                    preview_note = gr.Markdown(elem_id="preview-note")
                    run = gr.Button(
                        "Analyse", variant="primary", elem_id="analyse-btn"
                    )  # under the clip, on a phone too
                    example_shelf = gr.Gallery(
                        _example_shelf(),
                        label="Examples: synthetic actors in the dark, brightened here so you can see them (click one)",
                        columns=5,
                        height=170,
                        allow_preview=False,
                        object_fit="cover",
                        elem_id="example-shelf",
                    )
                    with gr.Group():
                        variant = gr.Dropdown(
                            _variant_choices(variants0),
                            value=default0,
                            label="Model variant",
                            allow_custom_value=True,  # fine-tunes join the choices later; the handler checks
                        )
                        wstc = gr.Radio(
                            **wstc0,
                            label="W_STC (weight of L_STC in training)",
                            info="The values a shipped variant was trained with; choosing one picks that variant",
                        )
                        k = gr.Radio(
                            list(service.K_CHOICES),
                            value=k0,
                            label="k: frames sharing one curve estimate",
                            info=K_INFO,
                        )
                with gr.Column(scale=6):
                    with gr.Row():
                        darkness = gr.Textbox(
                            label="How dark is it (-1 black, 0 mid-grey, 1 white)", lines=2, max_lines=8, min_width=300
                        )
                        stc = gr.Number(
                            label="Flicker added by the enhancement (L_STC; lower is steadier)",
                            precision=6,
                            min_width=300,
                        )
                    with gr.Row():
                        model_used = gr.Textbox(label="Model used", lines=2, max_lines=6, scale=3, min_width=300)
                        clip_info = gr.Textbox(
                            label="Clip, and the frames recognised", lines=3, max_lines=10, scale=2, min_width=300
                        )
                    verdict = gr.Markdown(elem_id="verdict")
                    top5 = gr.Plot(label="Top-5 actions, classified after DTCM enhancement", elem_id="top5")
                    gr.Markdown(_known_actions(), elem_id="known-actions")
                    enhanced = gr.Video(
                        label="Enhanced clip (H.264)",
                        height=300,
                        buttons=["download"],
                        interactive=False,
                        elem_id="enhanced",
                    )
                    enhanced_note = gr.Markdown(label="Note")
                    with gr.Accordion("Timeline: the action over the whole clip", open=False, elem_id="timeline"):
                        tl_run = gr.Button("Recognise every part of the clip", elem_id="timeline-btn")
                        tl_plot = gr.Plot(label="Top action per window", elem_id="timeline-plot")
                        tl_note = gr.Markdown()
                        with gr.Row():
                            seg_start = gr.Number(
                                None, label="Segment start (s)", minimum=0, elem_id="segment-start", scale=2
                            )
                            seg_run = gr.Button("Recognise this segment", elem_id="segment-btn", scale=1)
                            seg_enhance = gr.Button("Enhance from here", elem_id="segment-enhance-btn", scale=1)
                    with gr.Accordion("A photo instead: enhance it (recognition needs a clip)", open=False):
                        photo = gr.Image(
                            label="Photo (jpg, png, bmp, webp)", type="filepath", sources=["upload"], elem_id="photo"
                        )
                        photo_run = gr.Button("Enhance the photo", elem_id="photo-btn")
                        photo_out = gr.ImageSlider(
                            label="Before / after", type="filepath", interactive=False, elem_id="photo-after"
                        )
                        photo_note = gr.Markdown(elem_id="photo-note")
            slider = gr.ImageSlider(
                label="Before / after, full size: the middle frame of the recognised part (drag the handle)",
                elem_id="before-after",
                interactive=False,
                type="filepath",
            )
            with gr.Row(elem_classes="gallery-row"):
                frames_before = _gallery_box("Sampled frames: dark input", "frames-before")
                frames_after = _gallery_box("Sampled frames: enhanced by DTCM", "frames-after")
            with gr.Row(elem_classes="gallery-row"):
                diff_before = _gallery_box("RGB-difference maps |f(t+1) - f(t)|: input", "diff-before")
                diff_after = _gallery_box("RGB-difference maps: enhanced (same colour scale)", "diff-after")
            with gr.Row():
                timings = gr.Dataframe(
                    headers=["stage", "seconds"], label="Time per stage", interactive=False, column_count=2
                )
                with gr.Accordion("Result as JSON (what /analyse returns)", open=False):
                    result_json = gr.JSON(label="Result")

        # ---------------------------------------------------------------- Compare
        with gr.Tab("Compare", id="compare"):
            gr.Markdown(
                "The same clip through classical enhancers, Zero-DCE and DTCM's own enhancer, every result "
                "classified by the same model. Rows: enhancers; columns: frames across the clip."
            )
            with gr.Row(equal_height=False):
                with gr.Column(scale=4):
                    cmp_video = gr.Video(label="Dark clip", sources=["upload"], height=240, elem_id="cmp-video")
                    gr.Examples(_examples(), inputs=[cmp_video], label="Examples", example_labels=_example_labels())
                with gr.Column(scale=5):
                    methods = gr.CheckboxGroup(
                        [(METHOD_NAMES[m], m) for m in service.METHODS],
                        value=list(service.METHODS),
                        label="Enhancers",
                    )
                    cmp_variant = gr.Dropdown(
                        _variant_choices(variants0),
                        value=default0,
                        label="Classifier (a DTCM variant)",
                        allow_custom_value=True,
                    )
                    cmp_k = gr.Radio(
                        list(service.K_CHOICES), value=k0, label="k for the learned enhancers", info=K_INFO
                    )
                    cmp_run = gr.Button("Compare", variant="primary", elem_id="compare-btn")
            cmp_plot = gr.Plot(label="L_STC and Top-5 per enhancer", elem_id="compare-plot")
            with gr.Row(elem_classes="gallery-row"):
                cmp_frames = _compare_gallery("Frames after each enhancer", "cmp-frames")
                cmp_diffs = _compare_gallery(
                    "RGB-difference maps after each enhancer (one colour scale per row)", "cmp-diffs"
                )
            cmp_table = gr.Dataframe(
                headers=["enhancer", "brightness (0-255)", "flicker L_STC", "top-1", "top-5", "seconds"],
                label="Per enhancer",
                interactive=False,
                column_count=6,
                wrap=True,
            )
            gr.Markdown(service.COMPARE_HELP)
            with gr.Accordion("Result as JSON (what /compare returns)", open=False):
                cmp_json = gr.JSON(label="Result")

        # ---------------------------------------------------------------- Fine-tune
        with gr.Tab("Fine-tune", id="finetune"):
            gr.Markdown(
                "Joint training of enhancer and classifier (Eq. 7: L_AR + alpha (W_STC L_STC + L_Dark)) on the "
                "server. The job keeps running if you close or reload the page; only you can stop, save or push it. "
                f"One job runs at a time in its own worker (at most {FT_LIMITS['memory_gb']:g} GB and "
                f"{FT_LIMITS['time_min']:g} min); later ones wait in a queue."
                + ("" if FINETUNE_ENABLED else f" **Switched off on this server** ({FINETUNE_ENV}=0).")
            )
            with gr.Row(equal_height=False):
                with gr.Column(scale=4):
                    datasets0 = _dataset_choices()
                    dataset = gr.Dropdown(
                        datasets0,
                        value=datasets0[0][1] if datasets0 else None,
                        label="Dataset",
                        allow_custom_value=True,  # an uploaded zip joins the choices; the service checks
                    )
                    upload_zip = gr.File(label="...or upload a zip of class folders", file_types=[".zip"], height=130)
                    with gr.Row():
                        backbone = gr.Dropdown(
                            _backbones(), value=FT_DEFAULTS["backbone"], label="Backbone", allow_custom_value=True
                        )
                        init = gr.Dropdown(
                            [INIT_CHOICE, *_variant_choices(variants0)],
                            value=AUTO_INIT,
                            label="Start from",
                        )
                    with gr.Row():
                        alpha = gr.Number(
                            FT_DEFAULTS["alpha"], label="alpha (weight of the enhancement losses)", minimum=0
                        )
                        ft_wstc = gr.Number(
                            FT_DEFAULTS["w_stc"], label="W_STC (weight of L_STC)", minimum=0, maximum=100, step=0.5
                        )
                    with gr.Row():
                        ft_k = gr.Radio(list(service.K_CHOICES), value=FT_DEFAULTS["k"], label="k (frame sharing)")
                        epochs = gr.Slider(1, FT_LIMITS["epochs_max"], value=1, step=1, label="Epochs")
                    with gr.Row():
                        lr = gr.Number(FT_DEFAULTS["lr"], label="Learning rate", minimum=0)
                        batch = gr.Slider(
                            1, FT_LIMITS["batch_max"], value=min(4, FT_LIMITS["batch_max"]), step=1, label="Batch size"
                        )
                    max_steps = gr.Number(0, label="Stop after this many steps (0: run every epoch)", precision=0)
                    with gr.Row():
                        ft_start = gr.Button("Start", variant="primary")
                        ft_resume = gr.Button("Resume")
                        ft_stop = gr.Button("Stop", variant="stop")
                with gr.Column(scale=6):
                    ft_status = gr.Textbox(label="Job status", lines=3, max_lines=4)
                    ft_plot = gr.Plot(label="Loss terms and accuracy per step")
                    with gr.Row():
                        save_name = gr.Textbox(label="Name for weights/ (blank: automatic)", max_lines=1)
                        ft_save = gr.Button("Save to weights/")
                    saved_to = gr.Textbox(label="Saved to", max_lines=1)
                    with gr.Row():
                        repo_id = gr.Textbox(label="Hub repo id (owner/name)", max_lines=1)
                        token = gr.Textbox(
                            label="Your Hub token (write access; needed, never stored)", type="password", max_lines=1
                        )
                    ft_push = gr.Button("Push to Hub")
                    pushed = gr.Markdown(label="Pushed to")
                    with gr.Accordion("Job details (what /finetune_status returns)", open=False):
                        ft_json = gr.JSON(label="Status")
            ft_timer = gr.Timer(POLL_S, active=False)
            ft_known = gr.State({})  # this session's job key and what it has shown
            ft_owner = gr.BrowserState("", storage_key="dtcm-finetune-owner")  # the key, kept across reloads

        # ---------------------------------------------------------------- About
        with gr.Tab("About", id="about"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    gr.Markdown(ABOUT_MD)
                with gr.Column(scale=5):
                    gr.Markdown("### The paper's numbers\n" + PAPER_TABLE)
                    ours = gr.Markdown(label="Our numbers")
            card = gr.Markdown(label="Model card of the selected variant", elem_id="model-card")

    # ---------------------------------------------------------------------------- events
    rec_inputs = [video, variant, k]
    rec_outputs = [
        darkness,
        model_used,
        clip_info,
        top5,
        stc,
        frames_before,
        frames_after,
        diff_before,
        diff_after,
        slider,
        verdict,
        timings,
        result_json,
    ]
    model_work = dict(concurrency_id="model", concurrency_limit=CONCURRENCY)  # one budget for all model calls
    cleared = [*rec_outputs[:-1], enhanced, enhanced_note]  # a new run never shows the last one's results
    run.click(lambda: [None] * len(cleared), None, cleared, api_visibility="private", queue=False).then(
        analyse, rec_inputs, rec_outputs, api_name="analyse", show_progress_on=[top5], **model_work
    ).success(
        enhance, rec_inputs, [enhanced, enhanced_note], api_name="enhance", show_progress_on=[enhanced], **model_work
    )
    video.upload(preview_upload, [video], [video, preview_note], api_visibility="private")
    example_shelf.select(pick_example, None, [video], api_visibility="private", queue=False)
    photo_run.click(enhance_photo, [photo, variant], [photo_out, photo_note], api_name="enhance_photo", **model_work)
    seg_enhance.click(
        enhance_segment, [*rec_inputs, seg_start], [enhanced, enhanced_note], api_name="enhance_segment", **model_work
    )
    seg_run.click(analyse_segment, [*rec_inputs, seg_start], rec_outputs, api_name="analyse_segment", **model_work)
    tl_run.click(timeline, rec_inputs, [tl_plot, tl_note], api_name="timeline", **model_work)
    wstc.input(snap_wstc, [wstc], [variant, wstc], api_visibility="private", queue=False)
    variant.input(follow_variant, [variant], [wstc], api_visibility="private", queue=False)
    variant.change(model_card, [variant], [card], api_visibility="private", queue=False)
    video.change(lambda v: v, [video], [cmp_video], api_visibility="private", queue=False)  # same clip in Compare

    cmp_run.click(
        compare,
        [cmp_video, methods, cmp_variant, cmp_k],
        [cmp_frames, cmp_diffs, cmp_plot, cmp_table, cmp_json],
        api_name="compare",
        **model_work,
    )

    poll_outputs = [ft_status, ft_plot, ft_json, ft_timer, variant, cmp_variant, init, ft_known]
    ft_settings = [dataset, backbone, alpha, ft_wstc, ft_k, epochs, lr, batch, init, max_steps]
    ft_start.click(finetune_start, [*ft_settings, ft_known], poll_outputs, api_name="finetune_start")
    ft_stop.click(finetune_stop, [ft_known], poll_outputs, api_name="finetune_stop")
    ft_timer.tick(
        finetune_poll,
        [ft_known],
        poll_outputs,
        api_name="finetune_status",
        concurrency_limit=None,
        show_progress="hidden",
    )
    ft_resume.click(finetune_resume, [ft_known], poll_outputs, api_name="finetune_resume")
    ft_save.click(
        finetune_save, [save_name, ft_known], [saved_to, variant, cmp_variant, init], api_name="finetune_save"
    )
    ft_push.click(finetune_push, [repo_id, token, ft_known], [pushed], api_name="finetune_push")
    upload_zip.upload(dataset_upload, [upload_zip], [dataset], api_name="dataset_upload")

    demo.load(remember_owner, [ft_owner, ft_known], [ft_known, ft_owner], api_visibility="private", queue=False).then(
        finetune_poll,
        [ft_known],
        poll_outputs,
        api_visibility="private",
        show_progress="hidden",
        concurrency_limit=None,
    )
    demo.load(model_card, [variant], [card], api_visibility="private", queue=False)
    demo.load(results_md, None, [ours], api_visibility="private", queue=False)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


def warm_up() -> None:
    """Load the default model and start the decoder once, so the first visitor does not wait for them."""
    examples = _examples()
    if not examples or _default_variant() is None:
        return
    t = time.perf_counter()
    try:
        service.analyse(examples[0][0], None, None)
        log.info("warmed up in %.1f s", time.perf_counter() - t)
    except Exception:
        log.exception("warm-up on %s failed", examples[0][0])


def cap_upload_cache(period_s: float = 10.0) -> None:
    """Keep Gradio's folder of raw uploads and served files under ``DTCM_UPLOAD_CACHE_GB``, oldest first."""
    from gradio.utils import get_upload_folder

    from dtcm.storage import trim_folder

    while True:
        try:
            freed = trim_folder(get_upload_folder(), UPLOAD_CACHE_BYTES)
            if freed:
                log.warning("upload cache over its limit: removed %.1f MB of the oldest files", freed / 1e6)
        except Exception:
            log.exception("could not trim the upload cache")
        time.sleep(period_s)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if on_zero_gpu():  # load (and move to CUDA) before launch, where ZeroGPU packs the weights; compute waits
        if _default_variant() is not None:
            service.get_model()
    else:
        threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    threading.Thread(target=cap_upload_cache, name="upload-cache", daemon=True).start()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_FILE_SIZE,
        theme=gr.themes.Soft(primary_hue="amber", secondary_hue="slate"),
        css=CSS,
        js=QUIET_UNPLAYABLE_JS,
    )


if __name__ == "__main__":
    main()
