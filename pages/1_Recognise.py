"""Recognise: one dark clip in -> darkness, frames before/after enhancement, Top-5, the enhanced clip out.

The sidebar of ``streamlit_app.py`` sets ``st.session_state["variant"]`` and ``["k"]``. Results are kept
in the session per (clip, variant, k), so moving an unrelated widget does not run the model again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dtcm import service
from streamlit_app import VIDEO_TYPES, clip_input, remembered, through_entry, top5_chart

FRAME_PX = 112  # width of each shown frame: 8 fit across the wide layout


def image_row(title: str, images: list, caption: str) -> None:
    st.markdown(f"**{title}**")
    st.image(images, caption=[f"{caption} {i + 1}" for i in range(len(images))], width=FRAME_PX)


def show_result(result: dict):
    """Draw the analysis; return the (empty) container the enhanced clip goes into."""
    dark = result["darkness"]
    top_label, top_prob = result["top5"][0]
    cols = st.columns(4)
    cols[0].metric("Darkness Dv", f"{dark['dv']:.3f}", help="Mean (luma - 112) / 112 of 8 frames; dark below -0.877")
    cols[1].metric("Verdict", "dark" if dark["dark"] else ("dim" if dark["dv"] < 0 else "well lit"))
    cols[2].metric("Top-1 action", top_label, f"{top_prob:.1%} probability", delta_color="off", delta_arrow="off")
    cols[3].metric(
        "L_STC", f"{result['stc']:.3g}", help="Spatio-temporal inconsistency of the enhanced clip (lower: steadier)"
    )
    info = result["info"]
    st.caption(
        f"{dark['verdict']}; by the frame-vote rule: {'dark' if dark['dark_vote'] else 'not dark'}. "
        f"Variant {result['variant']}, k = {result['k']}. Clip: {info['width']}x{info['height']}, "
        f"{info['frames']} frames at {info['fps']:.3g} fps."
    )
    st.info(result["enhancement"]["sentence"])

    chart, clip, times = st.columns([5, 4, 3])
    with chart:
        top5_chart(result["top5"], key="recognise_top5")
    with times:
        st.markdown("**Timings**")
        st.table({"stage": list(result["timings"]), "seconds": [f"{s:.3f}" for s in result["timings"].values()]})
    image_row("Sampled frames, before enhancement", result["frames_before"], "frame")
    image_row("After enhancement", result["frames_after"], "frame")
    st.markdown("**RGB-difference maps** |frame t+1 - frame t|, on one colour scale: before, then after enhancement")
    st.image(result["diff_before"], width=FRAME_PX)
    st.image(result["diff_after"], width=FRAME_PX)
    return clip.container()


def show_enhanced(path: str, name: str, variant: str, k: int) -> None:
    """Enhance the whole clip at its own resolution, play it and offer it for download."""
    st.markdown("**Enhanced clip** (full resolution, H.264)")
    old = st.session_state.get("enhanced")
    out = remembered("enhanced", (path, variant, k), "enhancing the whole clip", service.enhance_clip, path, variant, k)
    if old and old["value"] and old["value"] != out:
        Path(old["value"]).unlink(missing_ok=True)
    if out is None or not Path(out).is_file():
        return
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


through_entry("pages/1_Recognise.py")
st.title("Recognise")
variant = st.session_state.get("variant")
k = st.session_state.get("k")
path, name = clip_input("recognise")
if variant is None:
    st.info("No model variant is installed yet; see the sidebar.")
elif path is None:
    if name is None:
        st.info(f"Upload a dark clip ({', '.join(VIDEO_TYPES)}) or pick an example to begin.")
else:
    result = remembered("analysis", (path, variant, k), "analysing the clip", service.analyse, path, variant, k)
    if result is not None:
        with show_result(result):
            show_enhanced(path, name, variant, k)
