"""Compare: one clip through no enhancement, the classical enhancers, Zero-DCE and DTCM, side by side.

Every method's output is classified by the same model (the sidebar's variant), so the Top-5 columns
differ only by the enhancement. Results are kept in the session per (clip, methods, variant, k).
"""

from __future__ import annotations

import streamlit as st

from dtcm import presentation as ui
from dtcm import service
from streamlit_app import clip_input, ready, remembered, through_entry, top5_chart

PER_ROW = 4  # method columns per row: frames stay big enough to see
SHOWN = 4  # frames (and difference maps) shown per method
LABELS = service.METHOD_LABELS


def pick(items: list) -> list:
    """At most ``SHOWN`` items spread over ``items``."""
    return ui.spread(items, min(SHOWN, len(items)))


def method_column(method: str, out: dict) -> None:
    st.markdown(f"#### {LABELS.get(method, method)}")
    if "error" in out:
        st.warning(out["error"])
        return
    st.markdown(f"Brightness **{out['luma']:.0f}** · flicker **{out['stc']:.3g}** · Top-1 **{ui.top1_text(out)}**")
    st.image(pick(out["frames_after"]), width=88)
    st.caption("frames after enhancement")
    st.image(pick(out["diff_after"]), width=88)
    st.caption("RGB-difference maps")
    top5_chart(out["top5"], key=f"compare_top5_{method}", title=f"Top-5 ({out['seconds']:.2f} s)", height=240)


def show(result: dict) -> None:
    order = [m for m in result["_order"] if m in result]
    ok = [m for m in order if "error" not in result[m]]
    if ok:
        first = result[ok[0]]
        st.markdown(f"**{ui.compare_light(result) or 'The input'}**")
        st.caption("Its sampled frames, then RGB-difference maps on the shared colour scale")
        st.image(first["frames_before"], width=88)
        st.image(first["diff_before"], width=88)
        st.dataframe(
            [dict(zip(ui.COMPARE_HEADERS, row, strict=True)) for row in ui.compare_rows(result)], hide_index=True
        )
        st.caption(service.COMPARE_HELP)
    for start in range(0, len(order), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, method in zip(cols, order[start : start + PER_ROW], strict=False):
            with col.container(border=True):
                method_column(method, result[method])


through_entry("pages/2_Compare.py")
st.title("Compare enhancers")
st.caption(
    "Classical enhancers (gamma, histogram equalisation, CLAHE, multi-scale Retinex), the zero-reference "
    "Zero-DCE and DTCM's own enhancer, all classified by the sidebar's model. Lower L_STC means the "
    "enhancement flickers less from frame to frame."
)
variant = st.session_state.get("variant")
k = st.session_state.get("k")
path, name = clip_input("compare")
methods = st.multiselect(
    "Methods",
    list(service.METHODS),
    default=list(service.METHODS),
    format_func=lambda m: LABELS.get(m, m),
    key="compare_methods",
)
if not ready(variant, path, name):
    pass
elif not methods:
    st.info("Pick at least one method.")
else:
    what = f"running {len(methods)} enhancers and the classifier"
    result = remembered(
        "comparison", (path, tuple(methods), variant, k), what, service.compare, path, methods, variant, k
    )
    if result is not None:
        st.caption(f"{name}: variant {variant}, k = {k}")
        show(result)
