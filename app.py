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

import functools
import logging
import math
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dtcm import service
from dtcm.hub import MODEL_CARD_CITATION, is_stub_card  # no torch behind these

log = logging.getLogger("dtcm.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
RESULTS_MD = ROOT / "docs" / "RESULTS.md"
OUT_DIR = Path(tempfile.gettempdir()) / "dtcm_app"  # enhanced clips; pruned after OUT_TTL_S
OUT_TTL_S = 3600
VIDEO_TYPES = ("mp4", "avi", "mov", "mkv", "webm")
CONCURRENCY = int(os.environ.get("DTCM_CONCURRENCY", "2"))  # model calls at once (CPU: cores / threads)
QUEUE_SIZE = int(os.environ.get("DTCM_QUEUE_SIZE", "32"))  # waiting requests before "queue full"
MAX_FILE_SIZE = os.environ.get("DTCM_MAX_FILE_SIZE", "200mb")
COMPARE_COLUMNS = 4  # frames (and RGB-diff maps) shown per enhancer: one gallery row each
POLL_S = 2.0  # fine-tune status polling period
FINETUNE_ENV = "DTCM_FINETUNE"  # "0" switches training, saving and pushing off (e.g. on a shared public Space)
FINETUNE_ENABLED = os.environ.get(FINETUNE_ENV, "1") != "0"
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
ACTIVE_STATES = ("preparing", "running", "stopping")
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


def _wstc_slider_args() -> dict:
    """Slider bounds and a step that lands only on (or between equally spaced) trained W_STC values."""
    try:
        values = service.wstc_choices()
    except Exception:
        values = []
    if len(values) < 2:
        v = values[0] if values else 4.0
        return dict(minimum=v, maximum=v + 1, step=1, value=v, interactive=False)
    tenths = [round(v * 10) for v in values]
    step = functools.reduce(math.gcd, [b - a for a, b in zip(tenths, tenths[1:], strict=False)]) / 10
    default = _variants().get(_default_variant() or "", {}).get("w_stc")
    value = float(default) if default is not None else values[0]
    return dict(minimum=values[0], maximum=values[-1], step=step or 1, value=value, interactive=True)


def _default_k() -> int:
    entry = _variants().get(_default_variant() or "", {})
    return int(entry.get("k") or 4)


def _examples() -> list[list[str]]:
    files = sorted(p for p in EXAMPLES_DIR.glob("*") if p.suffix.lower().lstrip(".") in VIDEO_TYPES)
    files.sort(key=lambda p: "real" not in p.name)  # the real footage first
    return [[str(p)] for p in files]


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
    if not path:
        raise service.ServiceError("no video was given: upload a clip (mp4, avi, mov, mkv or webm) or pick an example")
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in VIDEO_TYPES:
        raise service.ServiceError(
            f"{Path(path).name!r} is not a video file this app reads; upload {', '.join(VIDEO_TYPES)}"
        )
    return str(path)


def _k(k) -> int:
    return int(k) if k is not None and float(k).is_integer() else k  # the service names a bad value


def _gallery(images, first_caption: str | None = None) -> list[tuple[np.ndarray, str | None]]:
    return [(img, first_caption if i == 0 else None) for i, img in enumerate(images)]


def _prune_outputs() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for p in OUT_DIR.glob("*.mp4"):
        try:
            if now - p.stat().st_mtime > OUT_TTL_S:
                p.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------------------- Recognise
def _top5_plot(top5) -> go.Figure:
    fig = service.top5_figure(top5, title="")  # the component's label names it
    fig.update_traces(cliponaxis=False)  # a 100% bar keeps its label
    fig.update_layout(height=240, margin=dict(l=10, r=56, t=10, b=10))
    return fig


@_human_errors
def analyse(video, variant, k):
    """Darkness, enhancement and Top-5 of one clip.

    Returns:
        (darkness text, model text, clip text, Top-5 plotly figure, L_STC float, frames before, frames
        after, RGB-diff before, RGB-diff after (galleries: lists of (H, W, 3) uint8), timings rows
        [[stage, seconds]], result dict for JSON).
    """
    r = service.analyse(_check_video(video), _check_variant(variant), _k(k))
    d, info = r["darkness"], r["info"]
    entry = _variants().get(r["variant"], {})
    wstc = f"W_STC {float(entry['w_stc']):g}, " if entry.get("w_stc") is not None else ""
    vote = "dark" if d["dark_vote"] else "not dark"
    darkness = f"{d['verdict']}; frame vote (released tool): {vote}\n{r['enhancement']['sentence']}"
    model = f"{r['variant']} ({wstc}k = {r['k']})"
    clip = f"{info['frames']} frames, {info['width']}x{info['height']} at {info['fps']:g} fps"
    timings = [[stage, round(float(s), 3)] for stage, s in r["timings"].items()]
    summary = {
        "variant": r["variant"],
        "k": r["k"],
        "darkness": d,
        "enhancement": r["enhancement"],
        "top5": [{"label": label, "prob": p} for label, p in r["top5"]],
        "stc": r["stc"],
        "info": info,
        "timings": r["timings"],
    }
    return (
        darkness,
        model,
        clip,
        _top5_plot(r["top5"]),
        round(float(r["stc"]), 6),
        _gallery(r["frames_before"]),
        _gallery(r["frames_after"]),
        _gallery(r["diff_before"]),
        _gallery(r["diff_after"]),
        timings,
        _plain(summary),
    )


@_human_errors
def enhance(video, variant, k):
    """The whole clip enhanced at its own resolution.

    Returns:
        (path of a browser-playable H.264 mp4, a one-line note with the time taken).
    """
    path = _check_video(video)
    _prune_outputs()
    fd, out = tempfile.mkstemp(suffix=".mp4", prefix="enhanced_", dir=OUT_DIR)
    os.close(fd)
    t = time.perf_counter()
    written = service.enhance_clip(path, _check_variant(variant), _k(k), out_path=out)
    note = (
        f"Enhanced every frame at the clip's own resolution in {time.perf_counter() - t:.1f} s "
        "(curves estimated on downscaled keyframes, then upsampled)."
    )
    return written, note


def snap_wstc(w_stc):
    """The shipped variant trained with the W_STC nearest to the slider: (dropdown value, slider value)."""
    try:
        name = service.variant_for_wstc(float(w_stc))
    except Exception:
        return gr.skip(), gr.skip()
    entry = _variants().get(name, {})
    return name, float(entry["w_stc"]) if entry.get("w_stc") is not None else gr.skip()


def follow_variant(name):
    """Move the W_STC slider to the chosen variant's value (no move for one trained without)."""
    entry = _variants().get(name or "", {})
    return float(entry["w_stc"]) if entry.get("w_stc") is not None else gr.skip()


# ----------------------------------------------------------------------------------------- Compare
def _compare_figure(result: dict, order: list[str]) -> go.Figure:
    """L_STC per enhancer (bars) beside each enhancer's Top-5 probabilities (heat map)."""
    done = [m for m in order if "error" not in result[m]]
    names = [METHOD_NAMES.get(m, m) for m in done]
    labels = []
    for m in done:
        labels += [label for label, _ in result[m]["top5"] if label not in labels]
    z = [[dict(result[m]["top5"]).get(label) for label in labels] for m in done]  # (methods, labels)
    text = [[f"{p:.0%}" if p is not None else "" for p in row] for row in z]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.32, 0.68],
        horizontal_spacing=0.16,
        subplot_titles=("Spatio-temporal inconsistency L_STC (lower: steadier)", "Top-5 probabilities"),
    )
    fig.add_trace(
        go.Bar(
            x=[result[m]["stc"] for m in done],
            y=names,
            orientation="h",
            marker_color=["#f59e0b" if m == "dtcm" else "#94a3b8" for m in done],
            text=[f"{result[m]['stc']:.4f}" for m in done],
            textposition="auto",
            showlegend=False,
        ),
        row=1,
        col=1,
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
        col=2,
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 42 * len(done), margin=dict(l=10, r=10, t=64, b=10))
    return fig


@_human_errors
def compare(video, methods, variant, k):
    """The clip through each chosen enhancer, all classified by the same model.

    Returns:
        (frames gallery: one row of frames per enhancer, RGB-diff gallery: one row per enhancer,
        summary plotly figure, table rows [[enhancer, L_STC, top-1, top-5, seconds]], result dict).
    """
    path = _check_video(video)
    if not methods:
        raise service.ServiceError(f"choose at least one enhancer to compare ({', '.join(METHOD_NAMES.values())})")
    r = service.compare(path, list(methods), _check_variant(variant), _k(k))
    order = r["_order"]
    frames, diffs, rows, summary = [], [], [], {}
    n_frames = n_diffs = COMPARE_COLUMNS
    for m in order:
        res = r[m]
        name = METHOD_NAMES.get(m, m)
        if "error" in res:
            rows.append([name, None, "-", res["error"], None])
            summary[m] = {"error": res["error"]}
            continue
        pick = np.linspace(0, len(res["frames_after"]) - 1, n_frames).round().astype(int)
        dpick = np.linspace(0, len(res["diff_after"]) - 1, n_diffs).round().astype(int)
        frames += _gallery([res["frames_after"][i] for i in pick], METHOD_SHORT.get(m, m))
        diffs += _gallery([res["diff_after"][i] for i in dpick], METHOD_SHORT.get(m, m))
        top1, p1 = res["top5"][0]
        top5 = ", ".join(f"{label} {p:.0%}" for label, p in res["top5"])
        rows.append([name, round(float(res["stc"]), 5), f"{top1} ({p1:.0%})", top5, round(float(res["seconds"]), 3)])
        summary[m] = {
            "stc": res["stc"],
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
    return [b for b in service.BACKBONES if not b.endswith("_test")]


def _status_text(status: dict) -> str:
    state = status.get("state", "idle")
    metrics = status.get("metrics") or []
    text = f"{state}: {status.get('message') or ''}".strip().rstrip(":")
    if metrics:
        last = metrics[-1]
        bits = [f"step {last.get('step')}", f"epoch {last.get('epoch')}"]
        bits += [f"{key} {last[key]:.4g}" for key in ("total", "acc") if isinstance(last.get(key), (int, float))]
        text += "\nlast: " + ", ".join(bits)
    if status.get("variant"):
        text += f"\nnew variant: {status['variant']} (selectable in Recognise and Compare)"
    return text


def _check_finetune_allowed() -> None:
    if not FINETUNE_ENABLED:
        raise service.ServiceError(f"fine-tuning is switched off on this server ({FINETUNE_ENV}=0)")


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
        choices = _variant_choices(variants)
        dropdowns = (gr.Dropdown(choices=choices), gr.Dropdown(choices=choices))
        dropdowns += (gr.Dropdown(choices=[INIT_CHOICE, *choices]),)
    else:
        dropdowns = (gr.skip(),) * 3
    known.update(n=n, state=state, variants=names)
    timer = gr.Timer(active=state in ACTIVE_STATES)
    return (_status_text(status), figure, _status_summary(status), timer, *dropdowns, known)


@_human_errors
def finetune_poll(known):
    """Poll the server's fine-tune job (it survives page reloads: the job lives in the server)."""
    return _poll_outputs(service.finetune_status(), known)


@_human_errors
def finetune_start(dataset, backbone, alpha, w_stc, k, epochs, lr, batch_size, init, max_steps, known):
    """Start a fine-tune job in the server with these settings; the timer then polls its status."""
    _check_finetune_allowed()
    if not dataset:
        raise service.ServiceError("choose a dataset to fine-tune on, or upload a zip of class folders")
    blank = [name for name, v in (("alpha", alpha), ("learning rate", lr)) if v is None]
    if blank:
        raise service.ServiceError(f"fill in the {' and the '.join(blank)}: a number is needed")
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
    )
    return _poll_outputs(status, known)


@_human_errors
def finetune_stop(known):
    """Ask the running job to stop after its current step."""
    return _poll_outputs(service.stop_finetune(), known)


@_human_errors
def finetune_save(name):
    """Save the finished fine-tune into weights/; returns the folder written."""
    _check_finetune_allowed()
    return str(service.save_finetuned((name or "").strip() or None))


@_human_errors
def finetune_push(repo_id, token):
    """Push the finished fine-tune to the Hugging Face Hub; returns the repo's URL as Markdown."""
    _check_finetune_allowed()
    if not repo_id or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id.strip()):
        raise service.ServiceError(f"the repo id must look like owner/name, got {repo_id!r}")
    url = service.push_finetuned(repo_id.strip(), token=token or None)
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

The **enhanced video** is made at the clip's own resolution: curves are estimated on downscaled keyframes and
upsampled to full size before they are applied (the Zero-DCE++ idea), so large clips stay fast.

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


with gr.Blocks(title="DTCM Studio", delete_cache=(1800, 3600)) as demo:
    gr.Markdown(HEADER, elem_id="header")
    variants0, default0, wstc0, k0 = _variants(), _default_variant(), _wstc_slider_args(), _default_k()

    with gr.Tabs():
        # ---------------------------------------------------------------- Recognise
        with gr.Tab("Recognise", id="recognise"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    video = gr.Video(
                        label="Dark clip (mp4, avi, mov, mkv, webm)",
                        sources=["upload"],
                        height=300,
                        elem_id="rec-video",
                    )
                    gr.Examples(
                        _examples(), inputs=[video], label="Examples: dark synthetic actions and a darkened street"
                    )
                    with gr.Group():
                        variant = gr.Dropdown(
                            _variant_choices(variants0),
                            value=default0,
                            label="Model variant",
                            allow_custom_value=True,  # fine-tunes join the choices later; the handler checks
                        )
                        wstc = gr.Slider(
                            **wstc0,
                            label="W_STC (weight of L_STC in training)",
                            info="Snaps to the values a shipped variant was trained with",
                        )
                        k = gr.Slider(
                            *service.K_RANGE,
                            value=k0,
                            step=1,
                            label="k: frames sharing one curve estimate",
                            info="1 = per frame; larger is faster (curves estimated on 1 frame in k)",
                        )
                    run = gr.Button("Analyse", variant="primary", elem_id="analyse-btn")
                with gr.Column(scale=6):
                    with gr.Row():
                        darkness = gr.Textbox(label="Darkness (Dv, Eq. 12-14)", lines=2, max_lines=3)
                        stc = gr.Number(label="Spatio-temporal inconsistency L_STC of the enhanced clip", precision=6)
                    with gr.Row():
                        model_used = gr.Textbox(label="Model used", lines=2, max_lines=2, scale=3)
                        clip_info = gr.Textbox(label="Clip", lines=2, max_lines=2, scale=2)
                    top5 = gr.Plot(label="Top-5 actions, classified after DTCM enhancement", elem_id="top5")
                    enhanced = gr.Video(
                        label="Enhanced clip (H.264, full resolution)",
                        height=300,
                        buttons=["download"],
                        interactive=False,
                        elem_id="enhanced",
                    )
                    enhanced_note = gr.Markdown(label="Note")
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
                    gr.Examples(_examples(), inputs=[cmp_video], label="Examples")
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
                    cmp_k = gr.Slider(*service.K_RANGE, value=k0, step=1, label="k for the learned enhancers")
                    cmp_run = gr.Button("Compare", variant="primary", elem_id="compare-btn")
            cmp_plot = gr.Plot(label="L_STC and Top-5 per enhancer", elem_id="compare-plot")
            with gr.Row(elem_classes="gallery-row"):
                cmp_frames = _compare_gallery("Frames after each enhancer", "cmp-frames")
                cmp_diffs = _compare_gallery(
                    "RGB-difference maps after each enhancer (one colour scale per row)", "cmp-diffs"
                )
            cmp_table = gr.Dataframe(
                headers=["enhancer", "L_STC", "top-1", "top-5", "seconds"],
                label="Per enhancer",
                interactive=False,
                column_count=5,
                wrap=True,
            )
            with gr.Accordion("Result as JSON (what /compare returns)", open=False):
                cmp_json = gr.JSON(label="Result")

        # ---------------------------------------------------------------- Fine-tune
        with gr.Tab("Fine-tune", id="finetune"):
            gr.Markdown(
                "Joint training of enhancer and classifier (Eq. 7: L_AR + alpha (W_STC L_STC + L_Dark)) on the "
                "server. The job keeps running if you close or reload the page."
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
                            _backbones(), value=_backbones()[0], label="Backbone", allow_custom_value=True
                        )
                        init = gr.Dropdown(
                            [INIT_CHOICE, *_variant_choices(variants0)],
                            value=AUTO_INIT,
                            label="Start from",
                        )
                    with gr.Row():
                        alpha = gr.Number(0.1, label="alpha (weight of the enhancement losses)", minimum=0)
                        ft_wstc = gr.Slider(0, 10, value=4, step=1, label="W_STC")
                    with gr.Row():
                        ft_k = gr.Slider(*service.K_RANGE, value=4, step=1, label="k (frame sharing)")
                        epochs = gr.Slider(1, 50, value=1, step=1, label="Epochs")
                    with gr.Row():
                        lr = gr.Number(1e-4, label="Learning rate", minimum=0)
                        batch = gr.Slider(1, 32, value=4, step=1, label="Batch size")
                    max_steps = gr.Number(0, label="Stop after this many steps (0: run every epoch)", precision=0)
                    with gr.Row():
                        ft_start = gr.Button("Start", variant="primary")
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
                        token = gr.Textbox(label="Hub token (write access; not stored)", type="password", max_lines=1)
                    ft_push = gr.Button("Push to Hub")
                    pushed = gr.Markdown(label="Pushed to")
                    with gr.Accordion("Job details (what /finetune_status returns)", open=False):
                        ft_json = gr.JSON(label="Status")
            ft_timer = gr.Timer(POLL_S, active=False)
            ft_known = gr.State({})

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
        timings,
        result_json,
    ]
    run.click(analyse, rec_inputs, rec_outputs, api_name="analyse").success(
        enhance, rec_inputs, [enhanced, enhanced_note], api_name="enhance"
    )
    wstc.release(snap_wstc, [wstc], [variant, wstc], api_visibility="private", queue=False)
    variant.input(follow_variant, [variant], [wstc], api_visibility="private", queue=False)
    variant.change(model_card, [variant], [card], api_visibility="private", queue=False)
    video.change(lambda v: v, [video], [cmp_video], api_visibility="private", queue=False)  # same clip in Compare

    cmp_run.click(
        compare,
        [cmp_video, methods, cmp_variant, cmp_k],
        [cmp_frames, cmp_diffs, cmp_plot, cmp_table, cmp_json],
        api_name="compare",
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
    ft_save.click(finetune_save, [save_name], [saved_to], api_name="finetune_save")
    ft_push.click(finetune_push, [repo_id, token], [pushed], api_name="finetune_push")
    upload_zip.upload(dataset_upload, [upload_zip], [dataset], api_name="dataset_upload")

    demo.load(
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


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_FILE_SIZE,
        theme=gr.themes.Soft(primary_hue="amber", secondary_hue="slate"),
        css=CSS,
    )


if __name__ == "__main__":
    main()
