"""Recognise: one dark clip in -> darkness, frames before/after enhancement, Top-5, the enhanced clip out.

The sidebar of ``streamlit_app.py`` sets ``st.session_state["variant"]`` and ``["k"]``. Results are kept
in the session per (clip, variant, k), so moving an unrelated widget does not run the model again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dtcm import presentation as ui
from dtcm import service
from streamlit_app import clip_input, keep_upload, ready, remembered, run_safely, through_entry, top5_chart, visitor

FRAME_PX = 112  # width of each shown frame: 8 fit across the wide layout


def image_row(title: str, images: list, caption: str) -> None:
    st.markdown(f"**{title}**")
    st.image(images, caption=[f"{caption} {i + 1}" for i in range(len(images))], width=FRAME_PX)


def show_result(result: dict):
    """Draw the analysis; return the (empty) container the enhanced clip goes into."""
    dark = result["darkness"]
    top_label, top_prob = result["top5"][0]
    not_sure = service.not_sure_sentence(result["verdict"])
    cols = st.columns(4)
    cols[0].metric("Brightness", f"{dark['brightness']:.0f} of 255", help=service.DARKNESS_HELP)
    cols[1].metric("Light", ui.darkness_word(dark), help=dark["verdict"])  # the clip's light, not the action
    if not_sure:
        cols[2].metric("Top-1 action", "not sure", f"best guess {top_label}", delta_color="off", delta_arrow="off")
    else:
        cols[2].metric("Top-1 action", top_label, f"{top_prob:.1%} probability", delta_color="off", delta_arrow="off")
    cols[3].metric(
        "Flicker (L_STC)",
        f"{result['stc']:.3g}",
        help="How much the enhancement changes differences between neighbouring pixels and frames (lower: steadier)",
    )
    entry = service.list_variants(owner=visitor()).get(result["variant"], {})
    st.caption(f"{ui.darkness_sentence(dark)} Model: {ui.model_text(result, entry)}. Clip: {ui.clip_text(result)}")
    st.info(result["enhancement"]["sentence"])

    if not_sure:
        st.warning(not_sure)
    chart, clip, times = st.columns([5, 4, 3])
    with chart:
        top5_chart(result["top5"], key="recognise_top5", title="Top-5 guesses" if not_sure else "Top-5 actions")
        st.caption(ui.known_actions(service.class_names(result["variant"], owner=visitor())))
    with times:
        st.markdown("**Timings**")
        st.table({"stage": list(result["timings"]), "seconds": [f"{s:.3f}" for s in result["timings"].values()]})
    st.markdown("**Before / after, full size**: the middle frame of the recognised part")
    left, right = st.columns(2)
    left.image(result["full_before"], caption="before", width="stretch")
    right.image(result["full_after"], caption="after enhancement", width="stretch")
    image_row("Sampled frames, before enhancement", result["frames_before"], "frame")
    image_row("After enhancement", result["frames_after"], "frame")
    st.markdown("**RGB-difference maps** |frame t+1 - frame t|, on one colour scale: before, then after enhancement")
    st.image(result["diff_before"], width=FRAME_PX)
    st.image(result["diff_after"], width=FRAME_PX)
    return clip.container()


def enhance_to_temp(path: str, variant: str, k: int, tell, start: float | None) -> dict:
    """``service.enhance_video`` into a file of the app's temporary folder (swept, counted, cleaned at shutdown)."""
    out = service.temp_file("enhanced.mp4", visitor())
    try:
        return service.enhance_video(path, variant, k, out_path=out, on_progress=tell, start_s=start)
    except BaseException:
        Path(out).unlink(missing_ok=True)  # a failed request leaves no file behind
        raise


def show_enhanced(path: str, name: str, variant: str, k: int, start: float | None = None) -> None:
    """Enhance the clip (within the server's bounds), with frames done as it goes; play it and offer it."""
    st.markdown("**Enhanced clip** (H.264)")
    old = st.session_state.get("enhanced")
    bar = st.empty()

    def tell(done: int, total: int) -> None:
        bar.progress(done / total, text=f"enhancing: {done} of {total} frames")

    result = remembered(
        "enhanced", (path, variant, k, start), "enhancing the clip", enhance_to_temp, path, variant, k, tell, start
    )
    bar.empty()
    out = result["path"] if result else None
    if old and old["value"] and old["value"]["path"] != out:
        Path(old["value"]["path"]).unlink(missing_ok=True)
    if out is None or not Path(out).is_file():
        return
    st.caption(result["note"])
    data = Path(out).read_bytes()
    st.video(data, format="video/mp4")
    st.download_button(
        "Download the enhanced clip",
        data=data,
        file_name=f"{Path(name).stem}_enhanced.mp4",
        mime="video/mp4",
        icon=":material/download:",
        on_click="ignore",
    )


def show_timeline(path: str, variant: str, k: int, result: dict) -> None:
    """The action over the whole clip, and which segment to recognise."""
    memo = st.session_state.get("timeline")
    shown = bool(memo) and memo["key"] == (path, variant, k)  # asked for on this clip already
    with st.expander("Timeline: the action over the whole clip", expanded=shown):
        if st.button("Recognise every part of the clip", key="timeline_btn") or shown:
            tl = remembered(
                "timeline", (path, variant, k), "recognising every part", service.timeline, path, variant, k
            )
            if tl:
                st.plotly_chart(service.timeline_figure(tl), key="timeline_chart")
                st.caption(f"{len(tl['windows'])} windows over {tl['duration_s']:.1f} s, in {tl['seconds']:.1f} s.")
        last = max(0.0, (result["info"]["frames"] - result["window"]["frames"]) / (result["info"]["fps"] or 1.0))
        st.number_input(
            "Segment start (s): recognise from here, and enhance from here (empty: the middle, and the whole clip)",
            min_value=0.0,
            max_value=float(last),
            value=None,
            step=0.5,
            key="recognise_start",
        )


def photo_section(variant: str | None) -> None:
    """A photo instead of a clip: enhanced (with the pipeline's decision), never classified."""
    with st.expander("A photo instead: enhance it (recognition needs a clip)"):
        upload = st.file_uploader("Photo", type=list(ui.PHOTO_TYPES), key="recognise_photo")
        if upload is None or variant is None:
            return
        path = run_safely("reading the photo", keep_upload, "photo_file", upload, ui.PHOTO_TYPES, "a photo")
        r = remembered("photo", (upload.file_id, variant), "enhancing the photo", service.analyse, path, variant, 1)
        if r:
            left, right = st.columns(2)
            left.image(r["frames_before"][0], caption="before", width="stretch")
            right.image(r["frames_after"][0], caption="after enhancement", width="stretch")
            st.info(f"{r['enhancement']['sentence']} {r['note']}")


through_entry("pages/1_Recognise.py")
st.title("Recognise")
variant = st.session_state.get("variant")
k = st.session_state.get("k")
path, name = clip_input("recognise")
photo_section(variant)
if ready(variant, path, name):
    start = st.session_state.get("recognise_start")
    result = remembered(
        "analysis", (path, variant, k, start), "analysing the clip", service.analyse, path, variant, k, start_s=start
    )
    if result is not None:
        with show_result(result):
            show_enhanced(path, name, variant, k, start)
        show_timeline(path, variant, k, result)
