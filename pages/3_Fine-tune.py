"""Fine-tune: train DTCM on a dataset with live loss curves; save or push the result.

The job runs in a worker process of the server (``dtcm.service``), one at a time, so it keeps going and
its curves come back when the page is reloaded. It belongs to this visitor: the key that owns it lives in
the session and in the page's address (``?job=``), so a reload of the same browser keeps it, and the key is
worthless in any other browser (``streamlit_app.visitor``). Start and Stop are callbacks (they run before
the page is drawn, so the page always shows the job's current state); the status panel is a fragment
that polls ``finetune_status()`` every second while the job is active.
"""

from __future__ import annotations

import streamlit as st

from dtcm import presentation as ui
from dtcm import service
from streamlit_app import keep_upload, remembered, run_safely, through_entry, visitor

ACTIVE = service.ACTIVE_JOB_STATES  # job states that move on by themselves
STATE_ICONS = {  # Material icons: they render without an emoji font
    "idle": ":material/radio_button_unchecked:",
    "queued": ":material/schedule:",
    "preparing": ":material/hourglass_top:",
    "running": ":material/play_circle:",
    "stopping": ":material/pause_circle:",
    "finished": ":material/check_circle:",
    "stopped": ":material/stop_circle:",
    "failed": ":material/error:",
}
LIMITS = service.finetune_limits()  # what one fine-tune may ask for on this machine
FORM = ui.finetune_form()  # every field's start value and bounds: the default variant's settings, this machine's limits


def owner() -> str:
    """This visitor's key, also written into the page's address so a reload of this browser keeps the job."""
    return visitor(in_address=True)


def dataset_input() -> str | None:
    """The dataset spec for ``start_finetune``: a prepared one, or an uploaded zip unpacked by the service."""
    source = st.radio("Dataset", ["Prepared", "Upload a zip"], horizontal=True, key="ft_source")
    if source == "Prepared":
        datasets = service.finetune_datasets()
        label = st.selectbox(
            "Prepared datasets",
            list(datasets),
            key="ft_dataset",
            help="The synthetic set, or folders under the server's data root (DTCM_DATA_ROOT).",
        )
        return datasets.get(label)
    upload = st.file_uploader(
        "A zip with one folder per class (or ARID / Dark-48 split lists with their videos)",
        type=["zip"],
        key="ft_zip",
    )
    if upload is None:
        return None
    path = run_safely("reading the upload", keep_upload, "ft_zip_file", upload, ("zip",), "a zip file")
    if path is None:
        return None
    spec = remembered(
        "ft_zip_spec", (upload.file_id,), "unpacking the dataset", service.prepare_dataset_upload, path, owner=owner()
    )
    if spec:
        st.caption(f"Unpacked {upload.name}: only you can train on it; it is removed when your fine-tune ends.")
    return spec


def number(column, label: str, field: dict, **kwargs) -> None:
    """A number input with a form field's start value and bounds."""
    column.number_input(label, field["minimum"], field["maximum"], field["value"], field["step"], **kwargs)


def settings_input() -> None:
    """The hyper-parameter widgets; ``start`` reads them from the session by key."""
    f = FORM
    a, b, c, d = st.columns(4)
    backbones = f["backbone"]["choices"]
    a.selectbox("Backbone", backbones, index=backbones.index(f["backbone"]["value"]), key="ft_backbone")
    number(b, "alpha (enhancement loss weight)", f["alpha"], key="ft_alpha")
    number(c, "W_STC", f["w_stc"], key="ft_w_stc")
    d.slider("k (frame sharing)", f["k"]["minimum"], f["k"]["maximum"], f["k"]["value"], key="ft_k")
    a, b, c, d = st.columns(4)
    number(a, "Epochs", f["epochs"], key="ft_epochs")
    number(b, "Learning rate", f["lr"], format="%.1e", key="ft_lr")
    number(c, "Batch size", f["batch_size"], key="ft_batch")
    number(d, "Max steps (0: no limit)", f["max_steps"], key="ft_max_steps")
    st.selectbox(
        "Start from",
        [ui.AUTO_INIT_LABEL, *service.list_variants(owner=owner())],
        key="ft_init",
        help="Start from this variant's weights (a new run). To continue a stopped fine-tune, use Resume.",
    )


def start(dataset: str | None) -> None:
    s = st.session_state
    if dataset is None:
        s["ft_notice"] = ("error", "Choose a dataset, or upload a zip of class folders, first.")
        return
    try:
        service.start_finetune(
            dataset,
            backbone=s["ft_backbone"],
            alpha=s["ft_alpha"],
            w_stc=s["ft_w_stc"],
            k=s["ft_k"],
            epochs=s["ft_epochs"],
            lr=s["ft_lr"],
            batch_size=s["ft_batch"],
            init=None if s["ft_init"] == ui.AUTO_INIT_LABEL else s["ft_init"],
            max_steps=s["ft_max_steps"] or None,
            owner=owner(),
        )
        s["ft_notice"] = None
    except service.ServiceError as exc:
        s["ft_notice"] = ("error", str(exc))


def resume() -> None:
    try:
        service.resume_finetune(owner())
        st.session_state["ft_notice"] = None
    except service.ServiceError as exc:
        st.session_state["ft_notice"] = ("error", str(exc))


def stop() -> None:
    try:
        service.stop_finetune(owner=owner())
    except service.ServiceError as exc:
        st.session_state["ft_notice"] = ("error", str(exc))
        return
    st.session_state["ft_notice"] = ("info", "Stopping after the current step; the model so far is kept.")


def show_status(status: dict) -> None:
    state = status["state"]
    st.markdown(f"**{STATE_ICONS.get(state, '')} {state.capitalize()}**: {status['message']}")
    metrics, settings = status["metrics"], status["settings"]
    if settings:
        shown = ", ".join(f"{k} = {v}" for k, v in settings.items() if v is not None)
        st.caption(f"{shown}; {status['elapsed']:.0f} s")
    if metrics:
        last = metrics[-1]
        cols = st.columns(5)
        cols[0].metric("Step", last.get("step"))
        cols[1].metric("Epoch", last.get("epoch"))
        cols[2].metric(f"Loss: {service.LOSS_NAMES['total']}", f"{last.get('total', float('nan')):.4g}")
        cols[3].metric(service.LOSS_NAMES["stc"].capitalize(), f"{last.get('stc', float('nan')):.3g}")
        cols[4].metric("Batch accuracy", f"{last.get('acc', float('nan')):.0%}")
        progress = status.get("progress")
        if progress:
            st.progress(min(1.0, progress["step"] / progress["total_steps"]), text=ui.progress_text(progress))
        st.plotly_chart(service.loss_figure(status), key="ft_curves")
    elif state in ACTIVE:
        st.caption("The curves appear after the first training step.")
    if status.get("verdict"):
        better = (status.get("check") or {}).get("verdict") in ("better", "fresh")
        (st.success if better else st.warning)(status["verdict"], icon=":material/balance:")
    if status["epochs"]:
        keys = ("epoch", "step", "train_loss", "train_acc", "val_top1", "val_top5", "val_n")
        st.dataframe([{k: e.get(k) for k in keys} for e in status["epochs"]], hide_index=True)


def save_and_push(status: dict) -> None:
    variant = status["variant"]
    st.subheader("Keep the model")
    st.caption(
        f"The result, **{variant}**, is {ui.finetune_offer(status)} (the sidebar), by you only, until the server "
        "restarts. Saving it makes it a variant every visitor of this server can choose."
    )
    left, right = st.columns(2)
    with left.container(border=True):
        name = st.text_input("Name of the saved variant", value=variant, key="ft_save_name")
        if st.button("Save on this server", icon=":material/save:"):
            saved = run_safely("saving the model", service.save_finetuned, name or None, owner=owner())
            if saved:
                st.success(f"Saved as {saved}: every visitor of this server can now choose it.")
    with right.container(border=True):
        repo = st.text_input("Hugging Face repo id", placeholder="you/dtcm-finetuned", key="ft_repo")
        token = st.text_input("Your Hub token (write access; needed, never stored)", type="password", key="ft_token")
        if st.button("Push to the Hub", icon=":material/cloud_upload:", disabled=not repo or not token):
            url = run_safely("pushing to the Hub", service.push_finetuned, repo, token, owner=owner())
            if url:
                st.success(f"Pushed: {url}")


through_entry("pages/3_Fine-tune.py")
st.title("Fine-tune")
st.caption(
    f"The paper's joint loop, enhancer and classifier trained together on {ui.TRAINING_EQUATION}. "
    "One fine-tune runs at a time on this server, "
    f"in its own worker (at most {LIMITS['memory_gb']:g} GB and {LIMITS['time_min']:g} min); later ones wait in a queue. "
    + ui.FINETUNE_PROMISE
)
if not service.writes_enabled():
    st.info(f"Fine-tuning, uploads, saving and pushing are switched off on this server ({service.WRITES_ENV}=0).")
    st.stop()
status = service.finetune_status(owner())
active = status["state"] in ACTIVE

with st.expander("Dataset and settings", expanded=not active):
    dataset = dataset_input()
    settings_input()
left, middle, right, _ = st.columns([1, 1, 1, 3])
left.button("Start", type="primary", icon=":material/play_arrow:", disabled=active, on_click=start, args=(dataset,))
middle.button(
    "Resume", icon=":material/resume:", disabled=active or status["state"] not in ("stopped", "failed"), on_click=resume
)
right.button("Stop", icon=":material/stop:", disabled=not active, on_click=stop)
notice = st.session_state.get("ft_notice")
if notice:
    (st.error if notice[0] == "error" else st.info)(notice[1])


@st.fragment(run_every=1.0 if active else None)
def live() -> None:
    """The job's status and curves; while it runs this reruns every second, and the page once it ends."""
    now = service.finetune_status(owner())
    show_status(now)
    if (now["state"] in ACTIVE) != active:
        st.session_state["ft_notice"] = None
        st.rerun()


live()
if status["state"] in ("finished", "stopped") and status["variant"]:
    save_and_push(status)
