"""DTCM Studio, the Gradio app: recognise actions in dark videos, compare enhancers, fine-tune, publish.

A thin layer over :mod:`dtcm.service` (no torch here): one handler per action, each turning the service's
plain data into component values (a dict keyed by component where there are several) and every failure
into a ``gr.Error`` with one human sentence. The tabs are laid out by :mod:`dtcm.ui_gradio.layout` and the
texts come from :mod:`dtcm.presentation`, shared with the Streamlit UI. ``demo`` is built at module level,
so ``gradio app.py`` (reload mode), ``python app.py`` and a Hugging Face Space all run the same object.

Run:
    python app.py                      # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / _PORT override)

Endpoints (``gradio_client.Client(url).predict(..., api_name=...)``):
    /analyse   (video, variant, k) -> darkness, model, clip, Top-5 plot, L_STC, 4 galleries, timings, JSON
    /enhance   (video, variant, k) -> enhanced H.264 mp4, a note
    /compare   (video, methods, variant, k) -> frames gallery, RGB-diff gallery, summary plot, table, JSON
    /finetune_start, /finetune_stop, /finetune_status, /finetune_save, /finetune_push, /dataset_upload
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import gradio as gr

from dtcm import presentation as ui
from dtcm import service
from dtcm.device import gpu, on_zero_gpu
from dtcm.ui_gradio import layout
from dtcm.ui_gradio.errors import human_errors
from dtcm.ui_gradio.figures import compare_figure
from dtcm.ui_gradio.files import OUT_DIR, gallery, image_file, original_of, prune_outputs, remember_preview
from dtcm.ui_gradio.finetune import FinetuneHandlers
from dtcm.ui_gradio.serve import cap_upload_cache, warm_up

log = logging.getLogger("dtcm.app")

ROOT = Path(__file__).resolve().parent
RESULTS_MD = ROOT / "docs" / "RESULTS.md"
CONCURRENCY = service.MODEL_CONCURRENCY  # model calls at once over every endpoint (DTCM_CONCURRENCY)
QUEUE_SIZE = int(os.environ.get("DTCM_QUEUE_SIZE", "32"))  # waiting requests before "queue full"
MAX_FILE_SIZE = os.environ.get("DTCM_MAX_FILE_SIZE", "200mb")
RAW_UPLOAD_TTL_S = 900  # uploaded and served files are deleted after this long (checked every third of it)
UPLOAD_CACHE_BYTES = int(float(os.environ.get("DTCM_UPLOAD_CACHE_GB", "2")) * (1 << 30))  # their total, at most
GPU_SECONDS = int(os.environ.get("DTCM_GPU_SECONDS", "60"))  # ZeroGPU slot per model call
NO_SEGMENT = "give the segment's start in seconds (the timeline shows where the action is)"


# ----------------------------------------------------------------------------------------- helpers
@gpu(duration=GPU_SECONDS)
def _on_gpu(call, *args, **kwargs):
    """Run one model call of the service: inside ``spaces.GPU`` on a ZeroGPU Space, directly elsewhere."""
    return call(*args, **kwargs)


def _visitor(known) -> str | None:
    """The visitor key of this session (the fine-tune tab keeps it), None before it has one."""
    return (known or {}).get("owner") if isinstance(known, dict) else None


def _check_variant(name) -> str | None:
    """The variant name if this visitor may use it (shipped, saved, or their own fine-tune); None for the default.

    Called inside ``service.as_visitor``: another visitor's unsaved fine-tune is unknown here.
    """
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
        raise service.ServiceError(
            f"no video was given: upload a clip ({', '.join(ui.VIDEO_TYPES)}) or pick an example"
        )
    return original_of(path) or ui.check_upload(str(path))


def _start_s(start_s) -> float:
    if start_s is None:
        raise service.ServiceError(NO_SEGMENT)
    return float(start_s)


# --------------------------------------------------------------------------------------- Recognise
def preview_upload(video) -> dict:
    """Make an upload the browser cannot play (AVI, HEVC, ...) playable: {player: preview, note}.

    A file that cannot be read gets no preview and no message here: Analyse then says what is wrong, once.
    """
    skip = {rec.video: gr.skip(), rec.preview_note: ""}
    if not video:
        return skip
    try:
        path = _check_video(video)
        prune_outputs()
        r = service.preview_video(path, out_dir=OUT_DIR)
    except Exception:
        return skip
    if not r["transcoded"]:
        return skip
    remember_preview(r["path"], path)
    return {rec.video: r["path"], rec.preview_note: r["note"]}


def pick_example(evt: gr.SelectData):
    """The clip behind the clicked example preview."""
    previews = service.example_previews()
    return previews[evt.index][0] if 0 <= evt.index < len(previews) else gr.skip()


def _top5_plot(top5, guesses: bool = False):
    """The Top-5 bars; titled "guesses" when the model is not sure (the sentence above the chart says why)."""
    fig = service.top5_figure(top5, title="Its guesses, not an answer" if guesses else "")
    fig.update_traces(cliponaxis=False)  # a 100% bar keeps its label
    top = 34 if guesses else 10
    fig.update_layout(height=240 + top, margin=dict(l=10, r=56, t=top, b=10), title_font_size=13)
    return fig


def _analysis_outputs(r: dict) -> dict:
    """The service's analysis as the Recognise tab's values (see ``analyse``)."""
    return {
        rec.darkness: ui.darkness_text(r),
        rec.model_used: ui.model_text(r, layout.variants().get(r["variant"], {})),
        rec.clip_info: ui.clip_text(r),
        rec.top5: _top5_plot(r["top5"], not r["verdict"]["sure"]),
        rec.stc: round(float(r["stc"]), 6),
        rec.frames_before: gallery(r["frames_before"]),
        rec.frames_after: gallery(r["frames_after"]),
        rec.diff_before: gallery(r["diff_before"]),
        rec.diff_after: gallery(r["diff_after"]),
        rec.slider: (image_file(r["full_before"]), image_file(r["full_after"])),
        rec.verdict: ui.verdict_md(r),
        rec.timings: [[stage, round(float(s), 3)] for stage, s in r["timings"].items()],
        rec.result_json: ui.analysis_summary(r),
    }


@human_errors
def analyse(video, variant, k, known=None) -> dict:
    """Darkness, enhancement and Top-5 of one clip (its centred window of frames).

    Returns:
        {component: value} for darkness text, model text, clip text (with the frames classified), Top-5
        plotly figure (titled with the not-sure sentence when the model is not sure), L_STC float, frames
        before, frames after, RGB-diff before, RGB-diff after (galleries), the full-size before/after pair
        (image slider), the verdict (Markdown: the action, or "not sure" and why), timings rows
        [[stage, seconds]], result dict for JSON.
    """
    with service.as_visitor(_visitor(known)):
        return _analysis_outputs(_on_gpu(service.analyse, _check_video(video), _check_variant(variant), k))


@human_errors
def analyse_segment(video, variant, k, start_s, known=None) -> dict:
    """As ``analyse``, for the window of frames that starts ``start_s`` seconds into the clip."""
    start = _start_s(start_s)
    with service.as_visitor(_visitor(known)):
        path, name = _check_video(video), _check_variant(variant)
        return _analysis_outputs(_on_gpu(service.analyse, path, name, k, start_s=start))


@human_errors
def timeline(video, variant, k, known=None) -> dict:
    """Each window of the whole clip classified: {timeline plot: figure, note: one-line summary}."""
    with service.as_visitor(_visitor(known)):
        r = _on_gpu(service.timeline, _check_video(video), _check_variant(variant), k)
    w = r["windows"]
    spacing = f" every {r['stride_frames'] / r['fps']:.1f} s" if len(w) > 1 else ""
    text = (
        f"{len(w)} windows of {w[0]['last'] - w[0]['first'] + 1} frames{spacing} over {r['duration_s']:.1f} s, "
        f"in {r['seconds']:.1f} s. Type a start time below to recognise that segment."
    )
    return {rec.tl_plot: service.timeline_figure(r), rec.tl_note: text}


@human_errors
def enhance(video, variant, k, known=None, progress=gr.Progress(), start_s=None) -> dict:
    """The clip enhanced within the server's per-request bounds.

    Returns:
        {enhanced: path of a browser-playable H.264 mp4, note: which frames at which size, and the time taken}.
    """
    path = _check_video(video)
    prune_outputs()
    fd, out = tempfile.mkstemp(suffix=".mp4", prefix="enhanced_", dir=OUT_DIR)
    os.close(fd)
    tell = None if on_zero_gpu() else (lambda done, total: progress((done, total), desc="enhancing", unit="frames"))
    try:
        with service.as_visitor(_visitor(known)):
            name = _check_variant(variant)
            r = _on_gpu(service.enhance_video, path, name, k, out_path=out, on_progress=tell, start_s=start_s)
    except BaseException:
        Path(out).unlink(missing_ok=True)  # a failed request leaves no file behind
        raise
    return {rec.enhanced: r["path"], rec.enhanced_note: r["note"]}


@human_errors
def enhance_segment(video, variant, k, start_s, known=None, progress=gr.Progress()) -> dict:
    """The clip enhanced from ``start_s`` seconds on (within the server's bounds); as ``enhance``."""
    return enhance(video, variant, k, known, progress=progress, start_s=_start_s(start_s))


@human_errors
def enhance_photo(photo, variant, known=None) -> dict:
    """A photo through the variant's enhancer (with the pipeline's enhance/soften/skip decision).

    Returns:
        {slider: (before, after) image files, note: what was done, and that recognition needs a clip}.
    """
    if not photo:
        raise service.ServiceError(f"no photo was given: upload a {', '.join(ui.PHOTO_TYPES)} image")
    with service.as_visitor(_visitor(known)):
        r = _on_gpu(service.analyse, str(photo), _check_variant(variant), 1)
    pair = (image_file(r["frames_before"][0]), image_file(r["frames_after"][0]))
    return {rec.photo_out: pair, rec.photo_note: f"{r['enhancement']['sentence']} {r['note']}"}


def snap_wstc(w_stc) -> dict:
    """The shipped variant trained with the chosen W_STC: {variant dropdown: name, W_STC radio: its value}."""
    try:
        name = service.variant_for_wstc(float(w_stc))
    except Exception:
        return {rec.variant: gr.skip(), rec.wstc: gr.skip()}
    entry = layout.variants().get(name, {})
    return {rec.variant: name, rec.wstc: float(entry["w_stc"]) if entry.get("w_stc") is not None else gr.skip()}


def follow_variant(name):
    """Select the chosen variant's W_STC (nothing selected when it was trained with another or none)."""
    entry = layout.variants().get(name or "", {})
    value = float(entry["w_stc"]) if entry.get("w_stc") is not None else None
    return value if value in service.wstc_choices() else None


# ----------------------------------------------------------------------------------------- Compare
@human_errors
def compare(video, methods, variant, k, known=None) -> dict:
    """The clip through each chosen enhancer, all classified by the same model.

    Returns:
        {component: value} for the frames gallery (one row of frames per enhancer), the RGB-diff gallery
        (one row per enhancer), the input's light (Recognise's sentence), the summary plotly figure, the table
        rows under ``ui.COMPARE_HEADERS`` (an enhancer's answer under Recognise's not-sure rule) and the result dict.
    """
    path = _check_video(video)
    if not methods:
        raise service.ServiceError(
            f"choose at least one enhancer to compare ({', '.join(service.METHOD_LABELS.values())})"
        )
    with service.as_visitor(_visitor(known)):
        r = _on_gpu(service.compare, path, list(methods), _check_variant(variant), k)
    done = [m for m in r["_order"] if "error" not in r[m]]
    if not done:
        raise service.ServiceError(
            "none of the chosen enhancers is available: " + "; ".join(r[m]["error"] for m in r["_order"])
        )
    frames, diffs = [], []
    for m in done:
        caption = ui.METHOD_SHORT.get(m, m)
        frames += gallery(ui.spread(r[m]["frames_after"], layout.COMPARE_COLUMNS), caption)
        diffs += gallery(ui.spread(r[m]["diff_after"], layout.COMPARE_COLUMNS), caption)
    return {
        cmp.frames: frames,
        cmp.diffs: diffs,
        cmp.light: ui.compare_light(r),
        cmp.plot: compare_figure(r),
        cmp.table: ui.compare_rows(r),
        cmp.result_json: ui.compare_summary(r),
    }


# ------------------------------------------------------------------------------------------- About
def model_card(variant, known=None) -> str:
    """The model card (README.md in the variant's folder) of the selected variant, as Markdown."""
    with service.as_visitor(_visitor(known)):  # another visitor's fine-tune has no card here
        return ui.model_card_md(variant, layout.variants().get(variant or "", {}))


def results_md() -> str:
    """Our numbers: the variants' metrics from the weights index, then docs/RESULTS.md when it exists."""
    return ui.results_md(layout.variants(), RESULTS_MD)


# ------------------------------------------------------------------------------------------ events
def _recognise_events() -> None:
    rec_inputs, private = [rec.video, rec.variant, rec.k, ft.known], dict(api_visibility="private", queue=False)
    rec_outputs = [
        *(rec.darkness, rec.model_used, rec.clip_info, rec.top5, rec.stc),
        *(rec.frames_before, rec.frames_after, rec.diff_before, rec.diff_after, rec.slider),
        *(rec.verdict, rec.timings, rec.result_json),
    ]
    clip_out = [rec.enhanced, rec.enhanced_note]
    cleared = [*rec_outputs[:-1], *clip_out]  # a new run never shows the last one's results
    rec.run.click(lambda: dict.fromkeys(cleared), None, cleared, **private).then(
        analyse, rec_inputs, rec_outputs, api_name="analyse", show_progress_on=[rec.top5], **MODEL_WORK
    ).success(enhance, rec_inputs, clip_out, api_name="enhance", show_progress_on=[rec.enhanced], **MODEL_WORK)
    # private keeps it off the API page only (the browser calls it by number): its decoding shares the model budget
    rec.video.upload(preview_upload, [rec.video], [rec.video, rec.preview_note], api_visibility="private", **MODEL_WORK)
    rec.example_shelf.select(pick_example, None, [rec.video], **private)
    rec.photo_run.click(
        enhance_photo,
        [rec.photo, rec.variant, ft.known],
        [rec.photo_out, rec.photo_note],
        api_name="enhance_photo",
        **MODEL_WORK,
    )
    segment = [rec.video, rec.variant, rec.k, rec.seg_start, ft.known]  # the visitor key (a State) is no API input
    rec.seg_enhance.click(enhance_segment, segment, clip_out, api_name="enhance_segment", **MODEL_WORK)
    rec.seg_run.click(analyse_segment, segment, rec_outputs, api_name="analyse_segment", **MODEL_WORK)
    rec.tl_run.click(timeline, rec_inputs, [rec.tl_plot, rec.tl_note], api_name="timeline", **MODEL_WORK)
    rec.wstc.input(snap_wstc, [rec.wstc], [rec.variant, rec.wstc], **private)
    rec.variant.input(follow_variant, [rec.variant], [rec.wstc], **private)
    rec.variant.change(model_card, [rec.variant, ft.known], [about.card], **private)
    rec.video.change(lambda v: v, [rec.video], [cmp.video], **private)  # the same clip in Compare


def _compare_events() -> None:
    cmp_outputs = [cmp.frames, cmp.diffs, cmp.light, cmp.plot, cmp.table, cmp.result_json]
    cmp_inputs = [cmp.video, cmp.methods, cmp.variant, cmp.k, ft.known]
    cmp.run.click(compare, cmp_inputs, cmp_outputs, api_name="compare", **MODEL_WORK)


MODEL_WORK = dict(concurrency_id="model", concurrency_limit=CONCURRENCY)  # one budget for all model calls

with gr.Blocks(title="DTCM Studio", delete_cache=(RAW_UPLOAD_TTL_S // 3, RAW_UPLOAD_TTL_S)) as demo:
    gr.Markdown(layout.HEADER, elem_id="header")
    with gr.Tabs():
        rec = layout.recognise_tab()
        cmp = layout.compare_tab()
        ft = layout.finetune_tab()
        about = layout.about_tab()
    _recognise_events()
    _compare_events()
    FinetuneHandlers(rec, cmp, ft).wire(demo)
    demo.load(model_card, [rec.variant], [about.card], api_visibility="private", queue=False)
    demo.load(results_md, None, [about.ours], api_visibility="private", queue=False)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


# -------------------------------------------------------------------------------------------- serve
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # its own runs and uploads; served clips, images and Gradio's copies of uploads are removed at shutdown
    service.start_app("gradio", folders=(OUT_DIR,), files=lambda: [p for s in demo.temp_file_sets for p in s])
    if on_zero_gpu():  # load (and move to CUDA) before launch, where ZeroGPU packs the weights; compute waits
        if layout.default_variant() is not None:
            service.get_model()
    else:
        threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    threading.Thread(target=cap_upload_cache, args=(UPLOAD_CACHE_BYTES,), name="upload-cache", daemon=True).start()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_FILE_SIZE,
        theme=gr.themes.Soft(primary_hue="amber", secondary_hue="slate"),
        css=layout.CSS,
        js=layout.QUIET_UNPLAYABLE_JS,
    )


if __name__ == "__main__":
    main()
