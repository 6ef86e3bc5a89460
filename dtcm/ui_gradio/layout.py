"""The Gradio app's four tabs: each builder lays out its components and returns them by name.

Builders run inside ``gr.Blocks``; ``app.py`` wires the handlers to what they return. Start values come
from the service (read so that a broken weights index does not stop the app: using it shows the error).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import gradio as gr

from dtcm import presentation as ui
from dtcm import service
from dtcm.service.enhance import enhance_limit_sentence
from dtcm.service.server import writes_off_reason
from dtcm.ui_gradio.files import image_file
from dtcm.ui_gradio.photo import photo_input

__all__ = ["CSS", "HEADER", "QUIET_UNPLAYABLE_JS", "about_tab", "compare_tab", "finetune_tab", "recognise_tab"]

log = logging.getLogger("dtcm.app")

COMPARE_COLUMNS = 4  # frames (and RGB-diff maps) shown per enhancer: one gallery row each
POLL_S = 2.0  # fine-tune status polling period
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
# An upload the browser cannot decode makes Gradio's player raise "Video not playable" before the server has
# sent its H.264 preview (app.preview_upload). The upload players' media errors are stopped in the capture
# phase, before the player's own handler sees them; nothing else changes (other toasts, other players).
QUIET_UNPLAYABLE_JS = """
() => {
  document.addEventListener('error', e => {
    const t = e.target;
    if (t && t.tagName === 'VIDEO' && t.closest('#rec-video, #cmp-video')) e.stopImmediatePropagation();
  }, true);
}
"""


# ------------------------------------------------------------------------------------ start values
def variants() -> dict[str, dict]:
    """The selectable variants; empty (the error logged) when the weights index cannot be read."""
    try:
        return service.list_variants()
    except Exception:
        log.exception("could not read the weights index")
        return {}


def variant_choices(found: dict[str, dict] | None = None) -> list[tuple[str, str]]:
    return [(ui.variant_label(n, e), n) for n, e in (variants() if found is None else found).items()]


def default_variant() -> str | None:
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
    default = variants().get(default_variant() or "", {}).get("w_stc")
    value = float(default) if default is not None else (values[0] if values else None)
    return dict(choices=[(f"{v:g}", v) for v in values], value=value, interactive=len(values) > 1)


def _default_k() -> int:
    return int(variants().get(default_variant() or "", {}).get("k") or 4)


def _example_shelf() -> list[tuple[str, str]]:
    """The examples' brightened middle frames with their short captions."""
    try:
        return [(image_file(img), caption.split(":")[0]) for _, img, caption in service.example_previews()]
    except Exception:
        log.exception("could not make the example previews")
        return []


def _known_actions() -> str:
    try:
        return ui.known_actions(service.class_names())
    except Exception:
        return ""


def dataset_choices() -> list[tuple[str, str]]:
    try:
        return list(service.finetune_datasets().items())  # (label, spec)
    except Exception:
        log.exception("could not list the fine-tune datasets")
        return []


# ---------------------------------------------------------------------------------------- pieces
def _gallery_box(label: str, elem_id: str) -> gr.Gallery:
    return gr.Gallery(label=label, columns=4, rows=2, height=300, object_fit="contain", preview=False, elem_id=elem_id)


def _compare_gallery(label: str, elem_id: str) -> gr.Gallery:
    """A Compare-tab gallery: one row per enhancer, tall enough for every row (no inner scrolling)."""
    return gr.Gallery(
        label=label, columns=COMPARE_COLUMNS, height="fit-content", object_fit="contain", preview=False, elem_id=elem_id
    )


def _json_box(title: str, endpoint: str, label: str) -> gr.JSON:
    """A closed accordion holding what an endpoint returns, as JSON."""
    with gr.Accordion(f"{title} (what /{endpoint} returns)", open=False):
        return gr.JSON(label=label)


def _variant_dropdown(label: str) -> gr.Dropdown:
    # fine-tunes join the choices later; the handler checks the name
    return gr.Dropdown(variant_choices(), value=default_variant(), label=label, allow_custom_value=True)


# ------------------------------------------------------------------------------------------ tabs
def _recognise_inputs(c: SimpleNamespace) -> None:
    c.video = gr.Video(
        label=f"Dark clip ({', '.join(ui.VIDEO_TYPES)}), or record one",
        sources=["upload", "webcam"],
        height=300,
        elem_id="rec-video",
    )
    c.preview_note = gr.Markdown(elem_id="preview-note")
    c.run = gr.Button("Analyse", variant="primary", elem_id="analyse-btn")  # under the clip, on a phone too
    c.example_shelf = gr.Gallery(
        _example_shelf(),
        label="Examples: synthetic actors in the dark, brightened here so you can see them (click one)",
        columns=5,
        height=170,
        allow_preview=False,
        object_fit="cover",
        elem_id="example-shelf",
    )
    with gr.Group():
        c.variant = _variant_dropdown("Model variant")
        c.wstc = gr.Radio(
            **_wstc_radio_args(),
            label="W_STC (weight of L_STC in training)",
            info="The values a shipped variant was trained with; choosing one picks that variant",
        )
        c.k = gr.Radio(
            list(service.K_CHOICES),
            value=_default_k(),
            label="k: frames sharing one curve estimate",
            info=service.K_HELP,
        )


def _recognise_results(c: SimpleNamespace) -> None:
    with gr.Row():
        c.darkness = gr.Textbox(label=f"How dark is it ({ui.DARKNESS_SCALE})", lines=2, max_lines=8, min_width=300)
        c.stc = gr.Number(
            label="Flicker added by the enhancement (L_STC; lower is steadier)", precision=6, min_width=300
        )
    with gr.Row():
        c.model_used = gr.Textbox(label="Model used", lines=2, max_lines=6, scale=3, min_width=300)
        c.clip_info = gr.Textbox(label="Clip, and the frames recognised", lines=3, max_lines=10, scale=2, min_width=300)
    c.verdict = gr.Markdown(elem_id="verdict")
    c.top5 = gr.Plot(label="Top-5 actions, classified after DTCM enhancement", elem_id="top5")
    gr.Markdown(_known_actions(), elem_id="known-actions")
    c.enhanced = gr.Video(
        label="Enhanced clip (H.264)", height=300, buttons=["download"], interactive=False, elem_id="enhanced"
    )
    c.enhanced_note = gr.Markdown(label="Note")
    gr.Markdown(enhance_limit_sentence(), elem_id="enhance-limit")  # the bound of every enhance request
    with gr.Accordion("Timeline: the action over the whole clip", open=False, elem_id="timeline"):
        c.tl_run = gr.Button("Recognise every part of the clip", elem_id="timeline-btn")
        c.tl_plot = gr.Plot(label="Top action per window", elem_id="timeline-plot")
        c.tl_note = gr.Markdown()
        with gr.Row():
            c.seg_start = gr.Number(None, label="Segment start (s)", minimum=0, elem_id="segment-start", scale=2)
            c.seg_run = gr.Button("Recognise this segment", elem_id="segment-btn", scale=1)
            c.seg_enhance = gr.Button("Enhance from here", elem_id="segment-enhance-btn", scale=1)
    with gr.Accordion("A photo instead: enhance it (recognition needs a clip)", open=False):
        c.photo = photo_input(label=f"Photo ({', '.join(ui.PHOTO_TYPES)})", sources=["upload"], elem_id="photo")
        c.photo_run = gr.Button("Enhance the photo", elem_id="photo-btn")
        c.photo_out = gr.ImageSlider(label="Before / after", type="filepath", interactive=False, elem_id="photo-after")
        c.photo_note = gr.Markdown(elem_id="photo-note")


def recognise_tab() -> SimpleNamespace:
    """Upload or record a clip; its darkness, Top-5, enhanced clip, frames, timeline, and a photo corner."""
    c = SimpleNamespace()
    with gr.Tab("Recognise", id="recognise"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                _recognise_inputs(c)
            with gr.Column(scale=6):
                _recognise_results(c)
        c.slider = gr.ImageSlider(
            label="Before / after, full size: the middle frame of the recognised part (drag the handle)",
            elem_id="before-after",
            interactive=False,
            type="filepath",
        )
        with gr.Row(elem_classes="gallery-row"):
            c.frames_before = _gallery_box("Sampled frames: dark input", "frames-before")
            c.frames_after = _gallery_box("Sampled frames: enhanced by DTCM", "frames-after")
        with gr.Row(elem_classes="gallery-row"):
            c.diff_before = _gallery_box("RGB-difference maps |f(t+1) - f(t)|: input", "diff-before")
            c.diff_after = _gallery_box("RGB-difference maps: enhanced (same colour scale)", "diff-after")
        with gr.Row():
            c.timings = gr.Dataframe(
                headers=["stage", "seconds"], label="Time per stage", interactive=False, column_count=2
            )
            c.result_json = _json_box("Result as JSON", "analyse", "Result")
    return c


def compare_tab() -> SimpleNamespace:
    """One clip through every enhancer, all classified by the same model."""
    c = SimpleNamespace()
    with gr.Tab("Compare", id="compare"):
        gr.Markdown(
            "The same clip through classical enhancers, Zero-DCE and DTCM's own enhancer, every result "
            "classified by the same model. Rows: enhancers; columns: frames across the clip."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                c.video = gr.Video(label="Dark clip", sources=["upload"], height=240, elem_id="cmp-video")
                clips = service.example_clips()
                gr.Examples(
                    [[p] for p, _ in clips], inputs=[c.video], label="Examples", example_labels=[t for _, t in clips]
                )
            with gr.Column(scale=5):
                c.methods = gr.CheckboxGroup(
                    [(service.METHOD_LABELS[m], m) for m in service.METHODS],
                    value=list(service.METHODS),
                    label="Enhancers",
                )
                c.variant = _variant_dropdown("Classifier (a DTCM variant)")
                c.k = gr.Radio(
                    list(service.K_CHOICES),
                    value=_default_k(),
                    label="k for the learned enhancers",
                    info=service.K_HELP,
                )
                c.run = gr.Button("Compare", variant="primary", elem_id="compare-btn")
        c.light = gr.Markdown(elem_id="compare-light")  # the input's light, as Recognise says it
        c.plot = gr.Plot(label="L_STC and Top-5 per enhancer", elem_id="compare-plot")
        with gr.Row(elem_classes="gallery-row"):
            c.frames = _compare_gallery("Frames after each enhancer", "cmp-frames")
            c.diffs = _compare_gallery(
                "RGB-difference maps after each enhancer (one colour scale per row)", "cmp-diffs"
            )
        c.table = gr.Dataframe(
            headers=list(ui.COMPARE_HEADERS),
            label="Per enhancer",
            interactive=False,
            column_count=len(ui.COMPARE_HEADERS),
            wrap=True,
        )
        gr.Markdown(service.COMPARE_HELP)
        c.result_json = _json_box("Result as JSON", "compare", "Result")
    return c


def _finetune_settings(c: SimpleNamespace, form: dict) -> None:
    datasets = dataset_choices()
    c.dataset = gr.Dropdown(  # an uploaded zip joins the choices; the service checks
        datasets, value=datasets[0][1] if datasets else None, label="Dataset", allow_custom_value=True
    )
    c.upload_zip = gr.File(label="...or upload a zip of class folders", file_types=[".zip"], height=130)
    with gr.Row():
        b = form["backbone"]
        shown = [name for name in b["choices"] if not name.endswith("_test")]  # the tiny test networks stay unlisted
        c.backbone = gr.Dropdown(shown, value=b["value"], label="Backbone", allow_custom_value=True)
        c.init = gr.Dropdown(
            [(ui.AUTO_INIT_LABEL, ui.AUTO_INIT), *variant_choices()], value=ui.AUTO_INIT, label="Start from"
        )
    bounds = {name: {key: v for key, v in f.items() if key != "value"} for name, f in form.items()}
    with gr.Row():
        c.alpha = gr.Number(form["alpha"]["value"], label="alpha (weight of the enhancement losses)", **bounds["alpha"])
        c.wstc = gr.Number(form["w_stc"]["value"], label="W_STC (weight of L_STC)", **bounds["w_stc"])
    with gr.Row():
        c.k = gr.Radio(form["k"]["choices"], value=form["k"]["value"], label="k (frame sharing)")
        c.epochs = gr.Slider(value=form["epochs"]["value"], label="Epochs", **bounds["epochs"])
    with gr.Row():
        c.lr = gr.Number(form["lr"]["value"], label="Learning rate", **bounds["lr"])
        c.batch = gr.Slider(value=form["batch_size"]["value"], label="Batch size", **bounds["batch_size"])
    c.max_steps = gr.Number(
        form["max_steps"]["value"],
        label="Stop after this many steps (0: run every epoch)",
        precision=0,
        **bounds["max_steps"],
    )
    with gr.Row():
        c.start = gr.Button("Start", variant="primary")
        c.resume = gr.Button("Resume")
        c.stop = gr.Button("Stop", variant="stop")


def _finetune_outputs(c: SimpleNamespace) -> None:
    c.status = gr.Textbox(label="Job status", lines=3, max_lines=4)
    c.plot = gr.Plot(label="Loss terms and accuracy per step")
    with gr.Row():
        c.save_name = gr.Textbox(label="Name of the saved variant (blank: automatic)", max_lines=1)
        c.save = gr.Button("Save on this server (every visitor can then choose it)")
    c.saved_to = gr.Textbox(label="Saved as", max_lines=1)
    with gr.Row():
        c.repo_id = gr.Textbox(label="Hub repo id (owner/name)", max_lines=1)
        c.token = gr.Textbox(label="Your Hub token (write access; needed, never stored)", type="password", max_lines=1)
    c.push = gr.Button("Push to Hub")
    c.pushed = gr.Markdown(label="Pushed to")
    c.result_json = _json_box("Job details", "finetune_status", "Status")


def finetune_tab() -> SimpleNamespace:
    """Start, watch, stop, resume, save and push this visitor's fine-tune."""
    c = SimpleNamespace()
    limits = service.finetune_limits()
    with gr.Tab("Fine-tune", id="finetune"):
        gr.Markdown(
            f"Joint training of enhancer and classifier (Eq. 7: {ui.TRAINING_LOSS}) on the "
            "server. The job keeps running if you close or reload the page; only you can stop, save or push it. "
            f"One job runs at a time in its own worker (at most {limits['memory_gb']:g} GB and "
            f"{limits['time_min']:g} min); later ones wait in a queue. {ui.FINETUNE_PROMISE}"
            + ("" if service.writes_enabled() else f" **Switched off on this server** ({writes_off_reason()}).")
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                _finetune_settings(c, ui.finetune_form())
            with gr.Column(scale=6):
                _finetune_outputs(c)
        c.timer = gr.Timer(POLL_S, active=False)
        c.known = gr.State({})  # this session's job key and what it has shown
        c.owner = gr.BrowserState("", storage_key="dtcm-finetune-owner")  # the key, kept across reloads
    return c


def about_tab() -> SimpleNamespace:
    """How DTCM works, the paper's numbers and ours, and the selected variant's model card."""
    c = SimpleNamespace()
    with gr.Tab("About", id="about"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                gr.Markdown(ui.ABOUT_MD)
            with gr.Column(scale=5):
                gr.Markdown("### The paper's numbers\n" + ui.PAPER_TABLE)
                c.ours = gr.Markdown(label="Our numbers")
        c.card = gr.Markdown(label="Model card of the selected variant", elem_id="model-card")
    return c
