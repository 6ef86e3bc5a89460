"""What this server lets visitors train and write: the write switch, the one job manager, a job's bounds,
and the app's own temporary folder.

The bounds of the fine-tune form come from here (``finetune_limits``), the training defaults behind them
from ``dtcm.training.args`` (torch-free) and ``DTCMConfig``. Each app calls ``start_app`` once: its runs,
uploads and temporary files then live in folders of its own (``dtcm.storage``), removed at shutdown where
they are temporary. ``_jobs`` is the state tests reset.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from dtcm.service.inputs import ServiceError, storage_call
from dtcm.service.ui import K_RANGE

__all__ = [
    "BACKBONES",
    "HEAVY_BACKBONES",
    "RUNS_ROOT_ENV",
    "WRITES_ENV",
    "finetune_limits",
    "start_app",
    "temp_file",
    "writes_enabled",
]

WRITES_ENV = "DTCM_FINETUNE"  # "0" switches training, uploads, saving and pushing off; default: off on a Space
RUNS_ROOT_ENV = "DTCM_RUNS_DIR"  # fine-tune runs are written under this folder (read by dtcm.storage)
BACKBONES = ("mobilenetv2", "shufflenetv2", "resnet18", "resnext101", "mobilenetv2_tiny_test", "resnet_tiny_test")
BACKBONE = "mobilenetv2"  # without a default variant to follow: the backbone of training's default model
HEAVY_BACKBONES = ("resnext101",)  # days of training on a CPU: offered only where CUDA is present
LOSS_WEIGHT_MAX = 100.0  # alpha and W_STC a visitor may ask for (the paper studies W_STC 0-8)
LR_MAX = 1.0  # the learning rate a visitor may ask for (above 0)
BATCH_MAX = 32  # clips per batch at most, however much memory a job may use
GB_PER_CLIP = 1.2  # measured: 3D-ShuffleNetV2 at 16x112x112 needs ~0.5 GB per clip at k = 4, ~1.2 GB at k = 1
CPU_EPOCHS_MAX = 20  # epochs one job may run without CUDA; with it, training's full schedule
_jobs = None  # the JobManager, made on first use (its limits come from the environment)
_jobs_lock = threading.Lock()


def writes_enabled() -> bool:
    """Whether visitors may fine-tune, upload datasets, save and push (``DTCM_FINETUNE``).

    On by default on a private machine; off by default on a Hugging Face Space (``SPACE_ID`` is set) or a
    ZeroGPU one, where the owner turns it on with ``DTCM_FINETUNE=1``.
    """
    from dtcm.device import on_zero_gpu

    value = os.environ.get(WRITES_ENV)
    if value is None or value.strip() == "":
        return not os.environ.get("SPACE_ID") and not on_zero_gpu()  # ZeroGPU: a background job holds no GPU
    return value.strip().lower() not in ("0", "false", "no", "off")


def writes_off_reason() -> str:
    """Why writes are off here, for the sentence that says so: the setting as given, or the Space's default."""
    from dtcm.device import on_zero_gpu

    value = os.environ.get(WRITES_ENV, "").strip()
    if value:
        return f"{WRITES_ENV}={value}"[:80]
    where = "a ZeroGPU Space" if on_zero_gpu() else "a Hugging Face Space"
    return f"the default on {where}; its owner turns them on with {WRITES_ENV}=1"


def check_writes() -> None:
    """Refuse, in one sentence, when writes are switched off."""
    if not writes_enabled():
        raise ServiceError(
            f"fine-tuning, dataset uploads, saving and pushing are switched off on this server ({writes_off_reason()})"
        )


def manager():
    """The server's one ``JobManager``, made on first use."""
    global _jobs
    from dtcm.jobs import JobLimits, JobManager

    with _jobs_lock:
        if _jobs is None:
            _jobs = JobManager(JobLimits.from_env())
        return _jobs


def training_defaults() -> dict:
    """``DEFAULTS`` of the training arguments (lr, batch_size, epochs, model ...), read without torch."""
    from dtcm.training.args import DEFAULTS

    return DEFAULTS


def finetune_limits() -> dict:
    """What one fine-tune may ask for on this machine; the UIs take their bounds from here.

    Returns:
        dict with ``backbones`` (offered here), ``batch_max``, ``epochs_max``, ``memory_gb`` and ``time_min``
        (the worker's limits), ``queue`` (jobs that may wait), ``alpha_max``, ``w_stc_max``, ``lr_max`` and
        ``k_range`` (low, high).
    """
    from dtcm.device import cuda_expected
    from dtcm.jobs import JobLimits

    lim = manager().limits if _jobs is not None else JobLimits.from_env()
    gpu = cuda_expected()
    memory_gb = lim.memory_bytes / (1 << 30)
    return {
        "backbones": [b for b in BACKBONES if gpu or b not in HEAVY_BACKBONES],
        "batch_max": max(1, min(BATCH_MAX, int(memory_gb / GB_PER_CLIP))),
        "epochs_max": training_defaults()["epochs"] if gpu else CPU_EPOCHS_MAX,
        "memory_gb": round(memory_gb, 1),
        "time_min": round(lim.time_s / 60, 1),
        "queue": lim.queue_size,
        "alpha_max": LOSS_WEIGHT_MAX,
        "w_stc_max": LOSS_WEIGHT_MAX,
        "lr_max": LR_MAX,
        "k_range": K_RANGE,
    }


# ---------------------------------------------------------------------------------------- temporary files
SWEEP_EVERY_S = 60.0  # how often an app removes expired uploads and temporary files, requests or not
_sweeper: threading.Thread | None = None


def start_app(name: str, folders=(), files=None) -> None:
    """Once per app process: give it its own runs, uploads and temporary folders (``name``: "gradio",
    "streamlit"), sweep them every ``SWEEP_EVERY_S``, and remove its temporary folder, ``folders`` and the
    paths ``files()`` names at shutdown."""
    global _sweeper
    from dtcm import storage

    storage.use_app(name)
    storage.clean_at_exit(storage.app_temp(), *folders, files=files)
    _exit_on_sigterm()
    with _jobs_lock:
        if _sweeper is None:
            _sweeper = threading.Thread(target=_sweep_forever, name="dtcm-sweeper", daemon=True)
            _sweeper.start()


def _exit_on_sigterm() -> None:
    """Let SIGTERM (a container or Space stopping) end the process through ``sys.exit``, so the cleanup at exit
    runs; where the server has a handler of its own (Streamlit's), or outside the main thread, it stays."""
    import signal
    import sys

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _sweep_forever() -> None:
    import logging
    import time

    while True:
        time.sleep(SWEEP_EVERY_S)
        try:
            sweep_now()
        except Exception:
            logging.getLogger("dtcm.service").exception("could not sweep the expired uploads and temporary files")


def sweep_now() -> int:
    """Remove the uploads no job uses and the temporary files older than ``DTCM_UPLOAD_TTL_S``; returns how many."""
    from dtcm import storage
    from dtcm.service.datasets import _datasets_in_use

    removed = storage.sweep(_datasets_in_use() if _jobs is not None else set())
    root = storage.app_temp()
    for visitor in list(root.iterdir()) if root.is_dir() else []:
        removed += storage.sweep_temp(visitor)  # each visitor's old files, then the folders of visitors long gone
    return removed + storage.sweep_temp(root)


def temp_file(name: str, owner: str | None = None, size: int = 0) -> str:
    """A fresh path named ``name`` in the visitor's part of the app's temporary folder, for an upload or an
    output of ``size`` bytes at most.

    The folder counts against the disk budget (a file that would pass it is refused with "the server is
    full"), and its entries older than ``DTCM_UPLOAD_TTL_S`` are removed on every call and at shutdown.
    """
    from dtcm import storage

    sweep_now()
    storage_call(storage.check_room, size)
    folder = storage.app_temp() / storage.owner_id(owner)
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # in use: the visitor's folder outlives the sweep while they are here
    return str(Path(tempfile.mkdtemp(dir=folder)) / Path(name).name)
