"""DTCM Studio in Streamlit: the entry script, its sidebar and the landing page.

Run it with ``streamlit run streamlit_app.py``. This script runs on every page: it sets the page up,
draws the sidebar (the model variant, a W_STC slider that snaps to the trained variants, and k) and
hands over to the page the visitor chose through ``st.navigation``. The pages in ``pages/`` read the
choices from ``st.session_state["variant"]`` and ``st.session_state["k"]`` and import the small helpers
below (the landing page and navigation only run when Streamlit runs this file as ``__main__``).

Each session has a visitor key (``visitor``): its fine-tunes, uploads and temporary files are its own. The
key also travels in the Fine-tune page's address (``?job=``) so a reload keeps the job, but it is honoured
only for the browser it was made for (Streamlit's XSRF cookie), so a shared link gives nothing away.

Like every UI of the project it only calls ``dtcm.service``; torch is the service's business.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import streamlit as st

from dtcm import presentation as ui
from dtcm import service

log = logging.getLogger("dtcm.streamlit")

BROWSER_COOKIE = "_streamlit_xsrf"  # set by Streamlit once per browser: what a visitor key is bound to
service.start_app("streamlit")  # its own runs, uploads and temporary files; the temporary ones go at shutdown

# The pages' URLs are Streamlit's defaults from the file names (/Recognise, /Compare, /Fine-tune): the
# same names the pages/ folder is first served under, so a bookmarked URL opens the right page.
PAGES = {
    "recognise": ("pages/1_Recognise.py", "Recognise", ":material/visibility:"),
    "compare": ("pages/2_Compare.py", "Compare", ":material/compare:"),
    "finetune": ("pages/3_Fine-tune.py", "Fine-tune", ":material/model_training:"),
}


# ------------------------------------------------------------------------------- helpers for pages
def run_safely(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None after showing why it failed: the service's sentence, else a generic one."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        st.error(ui.error_sentence(exc, what))
    return None


def remembered(slot: str, key: tuple, what: str, fn, *args, **kwargs):
    """Like :func:`run_safely`, but kept in the session under ``slot`` while ``key`` stays the same.

    A widget change reruns the whole page; this keeps the model from running again on the same input.
    """
    memo = st.session_state.get(slot)
    if memo is None or memo["key"] != key:
        with st.spinner(f"{what[0].upper()}{what[1:]} ..."):
            try:
                memo = {"key": key, "value": fn(*args, **kwargs), "error": None}
            except Exception as exc:
                memo = {"key": key, "value": None, "error": ui.error_sentence(exc, what)}
        st.session_state[slot] = memo
    if memo["error"]:
        st.error(memo["error"])
    return memo["value"]


def top5_chart(top5: list[tuple[str, float]], key: str, title: str = "Top-5 actions", height: int = 300) -> None:
    """The service's Top-5 bar chart, its percentages kept level and outside short bars."""
    fig = service.top5_figure(top5, title=title)
    fig.update_traces(textposition="outside", textangle=0, cliponaxis=False)
    fig.update_layout(height=height)
    st.plotly_chart(fig, key=key)


def _browser() -> str | None:
    """What identifies this browser across reloads: the token of Streamlit's XSRF cookie (None without one).

    The cookie is written as ``2|mask|masked token|time`` (Tornado) with a fresh mask on every page load;
    the token under the mask stays the browser's.
    """
    try:
        value = st.context.cookies.get(BROWSER_COOKIE) or ""
    except Exception:
        return None
    parts = value.split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked)).hex() if mask else None
        except ValueError:
            return None
    return value or None


def visitor(in_address: bool = False) -> str:
    """This session's visitor key: kept in the session; a reload of the same browser takes it back from the
    address (``?job=``), any other browser gets a new one. ``in_address`` writes it there."""
    s = st.session_state
    if not s.get("ft_owner"):
        holder = _browser()
        s["ft_owner"] = service.claim_owner_key(st.query_params.get("job"), holder) or service.new_owner_key(holder)
    if in_address and st.query_params.get("job") != s["ft_owner"]:
        st.query_params["job"] = s["ft_owner"]
    return s["ft_owner"]


def keep_upload(slot: str, upload, types: tuple[str, ...] = ui.VIDEO_TYPES, what: str = "a video file") -> str:
    """Write an uploaded file to disk once, under its own name; the slot's previous file is removed.

    It goes to the app's temporary folder (``service.temp_file``): counted in the disk budget, removed after
    ``DTCM_UPLOAD_TTL_S`` and at shutdown; a removed file is written again when the page needs it.
    """
    name = ui.check_upload(Path(upload.name).name, types, what)
    held = st.session_state.get(slot)
    if held and held["id"] == upload.file_id and Path(held["path"]).is_file():
        return held["path"]
    if held:
        shutil.rmtree(Path(held["path"]).parent, ignore_errors=True)
    path = Path(service.temp_file(name, visitor(), size=upload.size))
    path.write_bytes(upload.getbuffer())
    st.session_state[slot] = {"id": upload.file_id, "path": str(path)}
    return str(path)


def clip_input(prefix: str) -> tuple[str | None, str | None]:
    """An uploader beside a picker of ``examples/``; returns (path, display name) of the clip, or Nones.

    An upload wins over a picked example. Widget keys start with ``prefix`` so pages keep their own.
    """
    left, right = st.columns([3, 2])
    upload = left.file_uploader("Upload a clip", type=list(ui.VIDEO_TYPES), key=f"{prefix}_upload")
    captions = dict(service.example_clips())  # path -> caption (true action first)
    example = right.selectbox(
        "... or pick an example",
        [None, *captions],
        format_func=lambda p: "(none)" if p is None else captions[p],
        key=f"{prefix}_example",
        disabled=not captions,
    )
    previews = service.example_previews()
    if previews:
        with st.expander("What the examples show (brightened so you can see them)"):
            st.image([img for _, img, _ in previews], caption=[c for _, _, c in previews], width=120)
    if upload is not None:
        return run_safely("reading the upload", keep_upload, f"{prefix}_file", upload), upload.name
    if example is not None:
        return example, Path(example).name
    return None, None


def ready(variant: str | None, path: str | None, name: str | None) -> bool:
    """True when there is a model and a clip to run it on; else say what is missing (nothing for a failed upload)."""
    if variant is None:
        st.info("No model variant is installed yet; see the sidebar.")
    elif path is None and name is None:
        st.info(f"Upload a dark clip ({', '.join(ui.VIDEO_TYPES)}) or pick an example to begin.")
    return variant is not None and path is not None


# ------------------------------------------------------------------------------------------ sidebar
# The choices live in plain session keys ("variant", "w_stc", "k") that every page reads. The widgets
# have keys of their own, set from those before they are drawn and copied back when moved, so the
# choices survive page switches (Streamlit forgets a widget's value once a run does not draw it).
def _adopt_variant(keep_k: bool = False) -> None:
    """Move W_STC (and k, unless the visitor set it) to the values the chosen variant was trained with."""
    entry = service.list_variants(owner=visitor()).get(st.session_state["variant"], {})
    if entry.get("w_stc") is not None:
        st.session_state["w_stc"] = float(entry["w_stc"])
    if entry.get("k") is not None and not keep_k:
        st.session_state["k"] = int(entry["k"])


def _on_variant() -> None:
    st.session_state["variant"] = st.session_state["_variant_box"]
    _adopt_variant()


def _on_wstc() -> None:
    """A W_STC value was chosen: switch to the variant trained with it."""
    st.session_state["variant"] = service.variant_for_wstc(st.session_state["_wstc_slider"])
    _adopt_variant(keep_k=True)  # choosing W_STC never moves k


def _on_k() -> None:
    st.session_state["k"] = st.session_state["_k_slider"]


def sidebar() -> str | None:
    """Draw the model controls; return the chosen variant (None when no weights are installed)."""
    state = st.session_state
    variants = service.list_variants(owner=visitor())
    with st.sidebar:
        st.header("Model")
        if not variants:
            st.error("No model weights are installed: the weights/ folder has no classifier variants.")
            return None
        if state.get("variant") not in variants:
            state["variant"] = service.default_variant()
            _adopt_variant()
        state["_variant_box"] = state["variant"]
        st.selectbox(
            "Variant",
            list(variants),
            key="_variant_box",
            on_change=_on_variant,
            help="The trained models: the shipped ones, the saved ones and any you fine-tuned in this session.",
        )
        if variants[state["variant"]].get("verdict"):  # a fine-tune: whether it beat the model it started from
            st.caption(ui.variant_label(state["variant"], variants[state["variant"]]))
        choices = service.wstc_choices()
        if len(choices) > 1:
            if state.get("w_stc") not in choices:
                state["w_stc"] = choices[0]
            state["_wstc_slider"] = state["w_stc"]
            st.select_slider(
                "W_STC (weight of the spatio-temporal consistency loss)",
                options=choices,
                key="_wstc_slider",
                on_change=_on_wstc,
                help="Snaps to the values a variant was trained with; moving it picks that variant.",
            )
        elif choices:
            st.caption(f"W_STC = {choices[0]:g} (the only value with a trained variant)")
        if "k" not in state:
            state["k"] = int(variants[state["variant"]].get("k") or 4)
        state["_k_slider"] = state["k"]
        st.slider(
            "k (frame sharing)",
            *service.K_RANGE,
            key="_k_slider",
            on_change=_on_k,
            help=service.K_HELP,
        )
        description = variants[state["variant"]].get("description")
        if description:
            st.caption(description)
    return state["variant"]


# ------------------------------------------------------------------------------------- landing page
def home() -> None:
    """What DTCM Studio does, where to go, and the selected variant in brief."""
    st.title("DTCM Studio")
    st.markdown(
        "Action recognition in **dark videos** with the *Dark Temporal Consistency Model* "
        "(Tu et al., IEEE TIP 2023): a light-weight enhancer brightens each clip with curves shared "
        "across frames, and a 3D CNN recognises the action in the enhanced clip. Both are trained "
        "together, with a spatio-temporal consistency loss (L_STC) that keeps the enhancement steady "
        "from frame to frame."
    )
    cols = st.columns(3)
    blurbs = {
        "recognise": "Upload a dark clip: darkness score, frames before and after enhancement, "
        "the Top-5 actions and the enhanced clip to download.",
        "compare": "The same clip through classical enhancers (GIC, HE, CLAHE, MSR), Zero-DCE and DTCM, "
        "side by side under one classifier.",
        "finetune": "Train on the synthetic set or your own clips, watch every loss term live, "
        "then save or push the model.",
    }
    for col, (key, (path, title, icon)) in zip(cols, PAGES.items(), strict=True):
        with col.container(border=True):
            st.page_link(path, label=title, icon=icon)
            st.caption(blurbs[key])

    variant = st.session_state.get("variant")
    if variant is None:
        return
    st.subheader(f"Selected variant: {variant}")
    entry = service.list_variants(owner=visitor()).get(variant, {})
    with st.spinner("Loading the model ..."):
        model = run_safely(f"loading the model {variant!r}", service.get_model, variant)
    if model is None:
        return
    config = model.config
    if entry.get("description"):
        st.write(entry["description"])
    facts = st.columns(4)
    facts[0].metric("Backbone", config.backbone)
    facts[1].metric("Enhancer", config.enhancer)
    facts[2].metric("W_STC", f"{config.w_stc:g}")
    facts[3].metric("k (trained)", config.k)
    st.caption(
        f"Input: {config.clip_len} frames, short side {config.short_side} px, centre crop {config.crop_size} px. "
        f"Classes ({config.num_classes}): {', '.join(config.class_names)}."
    )
    accuracy = ui.accuracy_text(entry.get("metrics"))
    if accuracy:
        st.markdown(f"**Accuracy:** {accuracy}.")
    st.caption(ui.RESULTS_LINK)


def through_entry(page_path: str) -> None:
    """Every page calls this first, so it runs below this entry script: its sidebar, its settings.

    While no session of a fresh server has run ``st.navigation`` yet, Streamlit serves the ``pages/``
    folder the old way and runs a page on its own. A session that starts like that (its first visit opens
    a page's URL) is handed to this script, which switches straight back to the page; later runs of that
    kind (``streamlit.testing`` runs every script that way) draw the sidebar here instead.
    """
    if st.session_state.get("_entry_running"):
        return
    if not st.session_state.get("_entry_seen"):
        st.session_state["_return_to"] = page_path
        st.switch_page("streamlit_app.py")
    sidebar()


def main() -> None:
    st.set_page_config(page_title="DTCM Studio", page_icon=":material/dark_mode:", layout="wide")
    pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
    pages += [st.Page(path, title=title, icon=icon) for path, title, icon in PAGES.values()]
    page = st.navigation(pages)
    st.session_state["_entry_seen"] = True
    if "_return_to" in st.session_state:
        st.switch_page(st.session_state.pop("_return_to"))
    variant = sidebar()
    if variant is not None:
        try:  # the service keeps it (one model cache for every UI); a page shows the reason when it fails
            with st.spinner("Loading the model ..."):
                service.get_model(variant, owner=visitor())
        except Exception:
            log.exception("loading variant %r failed", variant)
    st.session_state["_entry_running"] = True
    try:
        with service.as_visitor(visitor()):  # the page's service calls see this visitor's fine-tunes
            page.run()
    finally:
        st.session_state["_entry_running"] = False


if __name__ == "__main__":
    main()
