"""A visitor's fine-tune: its form's defaults, start, status, resume, stop, and saving or pushing the result.

Jobs run the full joint training loop (L_total) in a worker process of this server (``dtcm.jobs``); each
belongs to the visitor key that started it, trains only on that visitor's uploads, and its model becomes a
variant only that visitor can select until they save it into the saved folder (``dtcm.storage``).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from dtcm.config import DTCMConfig
from dtcm.service import datasets, models
from dtcm.service.finetune_check import RECOMMENDED, measure, verdict_sentence
from dtcm.service.inputs import ServiceError, check_k, storage_call
from dtcm.service.models import (
    default_variant,
    forget_variants_under,
    list_variants,
    register_variant,
    runtime_variant,
    variant_config,
)
from dtcm.service.server import BACKBONE, BACKBONES, check_writes, finetune_limits, manager, training_defaults
from dtcm.service.ui import ACTIVE_JOB_STATES

__all__ = [
    "claim_owner_key",
    "finetune_defaults",
    "finetune_status",
    "new_owner_key",
    "push_finetuned",
    "resume_finetune",
    "save_finetuned",
    "start_finetune",
    "stop_finetune",
]

# A plain clone's default run (synthetic:small, 44 training clips, 11 steps an epoch, from the default variant,
# which gets 1 of the 11 validation clips right) on 2 busy CPU cores, Top-1 on those 11 clips afterwards:
# 3e-4 x 1 epoch 9% (no better, 90 s), 3e-4 x 4 9% (no better), 1e-3 x 2 0% (worse), 1e-3 x 4 27% (better,
# 5 min), 3e-3 x 4 18%. So 4 epochs at 1e-3 (100 times training's rate); the job still measures every run
# against its start and says when one is not better. (On 5 real clips per class, weights/recipes/README.md
# "Few-shot", 80 steps at 3e-4 did best: choose the rate for your own clips there.)
FINETUNE_EPOCHS = 4  # a fine-tune's epochs unless the visitor asks for others
FINETUNE_LR_SCALE = 100
CHECKPOINT_EVERY = 50  # optimizer steps between a job's checkpoints (what Resume continues from)
_TRAIN_KEYS = ("backbone", "alpha", "w_stc", "k", "epochs", "lr", "batch_size", "max_steps")


def _base_defaults() -> dict:
    """The fine-tune settings of training's own defaults: DTCMConfig's alpha, W_STC, k; lr, batch, epochs."""
    train = training_defaults()
    return {
        "backbone": BACKBONE,
        "alpha": DTCMConfig.alpha,
        "w_stc": DTCMConfig.w_stc,
        "k": DTCMConfig.k,
        "lr": round(FINETUNE_LR_SCALE * train["lr"], 12),  # 1e-3, not 0.0010000000000000002
        "batch_size": train["batch_size"],
        "epochs": FINETUNE_EPOCHS,
    }


def finetune_defaults() -> dict:
    """The fine-tune form's starting values: the shipped default variant's own settings, so "auto" continues
    from its weights instead of starting a different backbone from scratch."""
    limits = finetune_limits()
    out = _base_defaults()
    try:
        cfg = variant_config(default_variant())
        out.update(backbone=cfg.backbone, alpha=float(cfg.alpha), w_stc=float(cfg.w_stc), k=int(cfg.k))
    except (ServiceError, OSError, ValueError, KeyError):
        pass
    if out["backbone"] not in limits["backbones"]:
        out["backbone"] = limits["backbones"][0]
    return {**out, "batch_size": min(out["batch_size"], limits["batch_max"])}


# ----------------------------------------------------------------------------------------- requests
def start_finetune(
    dataset: str = datasets.SYNTHETIC_SMALL,
    backbone: str = BACKBONE,
    alpha: float | None = None,
    w_stc: float | None = None,
    k: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    init: str | None = None,
    max_steps: int | None = None,
    val_dataset: str | None = None,
    owner: str | None = None,
) -> dict:
    """Queue the full joint training loop (L_total) in a worker process of this server.

    Args:
        dataset: a spec from ``finetune_datasets()``, an unpacked upload, or a list/folder under the data root.
        backbone, alpha, w_stc, k, epochs, lr, batch_size: training settings (SPEC A7), within
            ``finetune_limits()``; None takes training's default (alpha, W_STC and k of ``DTCMConfig``, 100
            times training's lr, its batch size, four epochs).
        init: a variant name or model folder to start from (None: the default variant when its backbone
            matches, else fresh weights).
        max_steps: stop after this many optimizer steps.
        owner: the visitor's key (``new_owner_key()``); only that key can stop, save or push the job, and
            an uploaded dataset or a fine-tune to start from must be that key's own.
    Returns:
        ``finetune_status(owner)``.
    """
    from dtcm import storage
    from dtcm.jobs import JobError

    check_writes()
    asked = dict(alpha=alpha, w_stc=w_stc, k=check_k(k), epochs=epochs, lr=lr, batch_size=batch_size)
    s = {**_base_defaults(), **{key: v for key, v in asked.items() if v is not None}, "backbone": backbone}
    _check_settings(s, max_steps)
    dataset = datasets.check_dataset(dataset, owner)
    if val_dataset:
        val_dataset = datasets.check_dataset(val_dataset, owner)
    storage_call(storage.check_room, 0)
    out = storage.runs_root() / f"finetune-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    start_name, start_folder = _start_model(init, backbone, owner)
    settings = dict(
        dataset=datasets.dataset_label(dataset, owner),
        backbone=backbone,
        alpha=float(s["alpha"]),
        w_stc=float(s["w_stc"]),
        k=int(s["k"]),
        epochs=int(s["epochs"]),
        lr=float(s["lr"]),
        batch_size=int(s["batch_size"]),
        init=start_name,
        max_steps=int(max_steps) if max_steps else None,
    )
    args = dict(
        model=training_defaults()["model"],
        init=start_folder,
        **{key: settings[key] for key in _TRAIN_KEYS},
        output_dir=str(out),
        num_workers=0,
        progress=False,
        checkpoint_every=CHECKPOINT_EVERY,
    )
    prepare = functools.partial(datasets.prepared_data, dataset, val_dataset, owner)
    try:
        check = functools.partial(measure, start_name=start_name)
        manager().submit({**args, "_dataset": dataset}, settings, owner, prepare, _job_ended, check)
    except JobError as exc:
        raise ServiceError(str(exc)) from None
    return finetune_status(owner)


def _check_settings(s: dict, max_steps) -> None:
    """Refuse, in one sentence, settings outside ``finetune_limits()``."""
    lim = finetune_limits()
    backbone = s["backbone"]
    test_backbone = backbone in BACKBONES and backbone.endswith("_test")
    batch = f"the batch size must be from 1 to {lim['batch_max']} on this server ({lim['memory_gb']} GB per job)"
    checks = [
        (backbone in lim["backbones"] or test_backbone, f"backbone must be one of {', '.join(lim['backbones'])}"),
        (0 <= float(s["alpha"]) <= lim["alpha_max"], f"alpha must be between 0 and {lim['alpha_max']:g}"),
        (0 <= float(s["w_stc"]) <= lim["w_stc_max"], f"W_STC must be between 0 and {lim['w_stc_max']:g}"),
        (1 <= int(s["epochs"]) <= lim["epochs_max"], f"epochs must be from 1 to {lim['epochs_max']} on this server"),
        (0 < float(s["lr"]) <= lim["lr_max"], f"the learning rate must be above 0 and at most {lim['lr_max']:g}"),
        (1 <= int(s["batch_size"]) <= lim["batch_max"], batch),
        (max_steps is None or int(max_steps) >= 1, "max steps must be at least 1"),
    ]
    for ok, sentence in checks:
        if not ok:
            raise ServiceError(sentence)


def _start_model(init: str | None, backbone: str, owner: str | None) -> tuple[str | None, str | None]:
    """(name, folder) of the model to start from: a variant this visitor can select; by default the default
    variant if its backbone fits; (None, None) for fresh weights."""
    variants = list_variants("all", owner)
    if init:
        if init in variants:
            return init, variants[init]["path"]
        raise ServiceError(f"there is no variant {init!r} to start from; choose one of {', '.join(sorted(variants))}")
    try:
        name = default_variant()
        same = variant_config(name).backbone == backbone
    except (ServiceError, OSError, ValueError, KeyError):
        return None, None
    return (name, str(Path(variants[name]["path"]))) if same else (None, None)


def resume_finetune(owner: str | None = None) -> dict:
    """Continue the visitor's stopped fine-tune from its last checkpoint: the same run, the same step count,
    its curves so far kept (the loss plot spans the whole run).

    Returns:
        ``finetune_status(owner)``.
    """
    from dtcm.jobs import JobError

    check_writes()
    jobs = manager()
    with jobs.lock:
        job = jobs.latest(owner)
    out = Path(job.args["output_dir"]) if job is not None else None
    if job is None or job.state not in ("stopped", "failed") or not any(out.glob("checkpoint-*")):
        raise ServiceError("you have no stopped fine-tune with a checkpoint to resume; start a new one")
    dataset = job.args.get("_dataset")
    if dataset not in (None, datasets.SYNTHETIC_SMALL) and not Path(dataset).exists():
        raise ServiceError("the dataset of that fine-tune is gone (uploads are kept 30 minutes); start a new one")
    at = max(int(p.name.rpartition("-")[2]) for p in out.glob("checkpoint-*") if p.name.rpartition("-")[2].isdigit())
    history = ([m for m in job.metrics if m["step"] <= at], [e for e in job.epochs if e["step"] <= at])
    try:
        jobs.submit({**job.args, "resume": "latest"}, job.settings, owner, job.prepare, _job_ended, job.check, history)
    except JobError as exc:
        raise ServiceError(str(exc)) from None
    return finetune_status(owner)


def stop_finetune(wait: float = 0.0, owner: str | None = None) -> dict:
    """Ask the visitor's fine-tune to stop after its current step (a checkpoint and the model are kept)."""
    from dtcm.jobs import JobError

    try:
        manager().stop(owner, wait=wait)
    except JobError as exc:
        raise ServiceError(str(exc)) from None
    return finetune_status(owner)


def new_owner_key(holder: str | None = None) -> str:
    """A fresh key for one visitor: pass it to every call of theirs.

    Args:
        holder: what identifies the browser the key is made for (e.g. a cookie); given, the key is honoured
            later only for that holder (``claim_owner_key``), so a key that leaks in a link is worthless.
    """
    from dtcm.jobs import new_owner_key as make

    return make(holder)


def claim_owner_key(key: str | None, holder: str | None) -> str | None:
    """``key`` when it was made for ``holder`` (a reload of the same browser), else None: make a new one."""
    from dtcm.jobs import claim_owner_key as claim

    return claim(key, holder)


# ------------------------------------------------------------------------------------------- ending
def _job_ended(job) -> None:
    """In the server, once a job has ended: register its model, then free its disk."""
    from dtcm import storage

    if job.state in ("finished", "stopped") and (job.summary or {}).get("final"):
        _keep_model(job)
    elif job.summary is None:
        _drop_failed_run(job)
    keep = {str(Path(j.args["output_dir"])) for j in manager().jobs.values()}
    for removed in storage.prune_runs(keep):
        forget_variants_under(removed)


def _keep_model(job) -> None:
    """Make a finished or stopped job's model selectable; a finished one's checkpoints and upload go."""
    from dtcm import storage

    name = Path(job.args["output_dir"]).name
    check = job.summary.get("check") or {}
    register_variant(
        name,
        job.summary["final"],
        description=f"fine-tuned here on {job.settings['dataset']}",
        w_stc=job.settings["w_stc"],
        k=job.settings["k"],
        metrics={**(check.get("result") or {}), "data": f"validation clips of {job.settings['dataset']}"},
        verdict=check.get("verdict") or ("unmeasured" if check else None),
        owner=job.owner,
    )
    job.variant = name
    job.message += f"; the model is selectable as {name!r}"
    if check.get("verdict") not in (*RECOMMENDED, "fresh"):
        job.message += f", but not recommended: the default stays {default_variant()!r}"
    if job.state == "finished":
        storage.drop_checkpoints(job.args["output_dir"])  # a stopped run keeps them, to be resumed
        datasets.forget_upload(job.args.get("_dataset"), job.owner)  # only ever the owner's own upload


def _drop_failed_run(job) -> None:
    """A run that failed before its first checkpoint leaves nothing; one with a checkpoint keeps it."""
    import shutil

    out = Path(job.args["output_dir"])
    if out.is_dir() and not any(out.glob("checkpoint-*")):
        shutil.rmtree(out, ignore_errors=True)
    elif out.is_dir():
        job.message += " (its last checkpoint is kept: Resume continues from it)"


# ------------------------------------------------------------------------------------------- status
def finetune_status(owner: str | None = None) -> dict:
    """The visitor's fine-tune: state, message, per-step metrics, epoch records, settings, result variant.

    Another visitor's job is never shown: only that the server is busy and how long the queue is.
    """
    jobs = manager()
    with jobs.lock:
        job = jobs.latest(owner)
    if job is not None:
        with jobs.lock:
            return _public_status(job)
    message = "no fine-tune has run yet"
    if jobs.busy():
        message = f"another visitor's fine-tune is running; yours would wait in the queue ({len(jobs.queue)} waiting)"
    return {
        "state": "idle",
        "message": message,
        "metrics": [],
        "epochs": [],
        "settings": {},
        "variant": None,
        "saved_as": None,
        "check": None,
        "verdict": None,
        "output_dir": None,
        "elapsed": 0.0,
        "peak_memory_gb": 0.0,
        "progress": None,
        "limits": finetune_limits(),
    }


def _public_status(job) -> dict:
    """A job as its owner sees it: no server paths (a worker's error included), the settings as asked."""
    from dtcm import storage

    jobs = manager()
    now = time.time()
    place = f" (place {jobs.queue_position(job)} in the queue)" if job.state == "queued" else ""
    check = (job.summary or {}).get("check")
    entry = models._runtime_variants.get(job.variant) if job.variant else None
    return {
        "state": job.state,
        "message": storage.public_text(job.message) + place,
        "metrics": list(job.metrics),
        "epochs": list(job.epochs),
        "settings": dict(job.settings),
        "variant": getattr(job, "variant", None),
        "saved_as": (entry or {}).get("saved_as"),
        "check": check,
        "verdict": verdict_sentence(check),
        "output_dir": Path(job.args["output_dir"]).name,
        "elapsed": ((job.ended or now) - job.started) if job.started else 0.0,
        "peak_memory_gb": round(job.peak_memory / (1 << 30), 2),
        "progress": _progress(job.metrics, job.started) if job.state in ACTIVE_JOB_STATES else None,
        "limits": finetune_limits(),
    }


def _progress(metrics: list, started: float | None = None) -> dict | None:
    """Steps done of the total and the time left at the pace of the steps since ``started`` (a resumed run's
    earlier steps are on its curve, not in its pace)."""
    if started is not None:
        metrics = [m for m in metrics if m.get("time", started) >= started]
    if not metrics or not metrics[-1].get("total_steps"):
        return None
    first, last = metrics[0], metrics[-1]
    total, done = int(last["total_steps"]), int(last["step"])
    pace = (last["time"] - first["time"]) / (done - first["step"]) if done > first["step"] else None
    return {"step": done, "total_steps": total, "eta_s": pace * (total - done) if pace else None}


# ------------------------------------------------------------------------------------------ results
def _own_model(owner: str | None, what: str) -> tuple[str, dict]:
    """(name, index entry) of the visitor's finished fine-tune, or a sentence saying there is none."""
    name = finetune_status(owner)["variant"]
    entry = runtime_variant(name, owner)
    if entry is None:
        raise ServiceError(f"you have no finished fine-tune to {what}")
    return name, entry


def save_finetuned(name: str | None = None, owner: str | None = None) -> str:
    """Copy the visitor's finished fine-tune into the saved folder and list it there, for every visitor.

    The saved folder (``DTCM_SAVED_DIR``, default under ``DTCM_CACHE``) lies outside the repository: the
    shipped ``weights/`` and its ``index.json`` are never written. Names follow ``storage.SAVE_NAME``
    (letters, digits, '-', '_') and may not repeat a variant's; the copy and the index are written
    atomically, and each visitor may save at most ``DTCM_MAX_SAVED`` variants.

    Returns:
        The saved variant's name (what the variant lists show), never a server path.
    """
    from dtcm import storage

    check_writes()
    variant, entry = _own_model(owner, "save")
    listed = {key: v for key, v in entry.items() if key not in ("runtime", "owner", "path", "saved_as")}
    name = name or variant
    taken = (set(list_variants("all", owner)) | set(models._runtime_variants)) - {variant}  # anyone's fine-tunes
    storage_call(storage.save_variant, entry["path"], storage.saved_root(), name, listed, owner, taken)
    entry["saved_as"] = name  # the lists show the saved copy from now on, not this one beside it
    return name


def push_finetuned(repo_id: str, token: str | None = None, owner: str | None = None) -> str:
    """Push the visitor's finished fine-tune to the Hugging Face Hub with *their* token; returns the commit URL.

    The server's own login (``HF_TOKEN`` or ``hf auth login``) is never used here: a visitor must give a
    token with write access to ``repo_id``.
    """
    from dtcm import hub_push

    check_writes()
    if not isinstance(token, str) or not token.strip():
        raise ServiceError(
            "pushing needs your own Hugging Face token with write access; the server never lends its own"
        )
    _, entry = _own_model(owner, "push")
    try:
        return hub_push.push(entry["path"], repo_id, token=token.strip(), login=False)
    except (OSError, ValueError) as exc:
        raise ServiceError(str(exc)) from None
