"""What the user interfaces call: analyse a clip, enhance it, compare enhancers, run fine-tune jobs.

Both UIs (``app.py`` for Gradio, ``streamlit_app.py`` and ``pages/``) import this package and nothing of
torch; every function returns plain data (numpy arrays, floats, lists, dicts) and, where a chart is
wanted, a plotly figure. Errors a user can cause are ``ServiceError`` (a ``ValueError``) with one human
sentence; the UIs show it as is.

What lives where (each name below is re-exported here; module state and tunables such as ``_cache``,
``_runtime_variants``, ``SLOT_WAIT_S``, ``_jobs`` or ``ENHANCE_MAX_PIXELS`` are read and patched in their
own module):

    ui          what both UIs display: labels, help texts, k choices, accepted suffixes, result sentences
    inputs      ServiceError and the checks of what a visitor sends (k, a file, a start time)
    models      the variant cache: list_variants, default_variant, get_model, register_variant, model slots
    predict     the classifier's part of a call: logits under autocast, calibrated Top-k
    panels      sampled frames and RGB-difference maps before/after
    analysis    analyse (clip or photo) and timeline
    enhance     enhance_video and enhance_clip
    comparison  compare: one clip through every enhancer
    previews    the example clips, their previews, a browser-playable copy of an upload
    figures     every plotly figure (top5_figure, timeline_figure, loss_figure)
    server      the write switch, the job manager and finetune_limits
    datasets    what a fine-tune trains on, and uploaded zips
    finetune    a visitor's fine-tune: defaults, start, status, resume, stop, save, push
"""

from __future__ import annotations

from dtcm.service.analysis import FULL_SIZE_SHORT_SIDE, TIMELINE_WINDOWS, analyse, timeline
from dtcm.service.comparison import ALL_METHODS, ENHANCER_ONLY, METHODS, PUBLISHED_ENV, compare
from dtcm.service.datasets import (
    DATA_ROOT_ENV,
    MAX_ZIP_BYTES,
    MAX_ZIP_FILES,
    SYNTHETIC_SMALL,
    finetune_datasets,
    prepare_dataset_upload,
)
from dtcm.service.enhance import ENHANCE_CHUNK_GROUPS, enhance_clip, enhance_video
from dtcm.service.figures import loss_figure, timeline_figure, top5_figure
from dtcm.service.finetune import (
    finetune_defaults,
    finetune_status,
    new_owner_key,
    push_finetuned,
    resume_finetune,
    save_finetuned,
    start_finetune,
    stop_finetune,
)
from dtcm.service.inputs import ServiceError
from dtcm.service.models import (
    MODEL_CACHE_SIZE,
    MODEL_CONCURRENCY,
    class_names,
    default_variant,
    get_model,
    list_variants,
    model_slot,
    register_variant,
    variant_for_wstc,
    wstc_choices,
)
from dtcm.service.panels import rgb_diff_maps
from dtcm.service.previews import (
    BROWSER_PLAYABLE,
    EXAMPLES_ENV,
    PREVIEW_SHORT_SIDE,
    example_clips,
    example_previews,
    preview_video,
)
from dtcm.service.server import BACKBONES, HEAVY_BACKBONES, RUNS_ROOT_ENV, WRITES_ENV, finetune_limits, writes_enabled
from dtcm.service.ui import (
    ACTIVE_JOB_STATES,
    COMPARE_HELP,
    DARKNESS_HELP,
    K_CHOICES,
    K_HELP,
    K_RANGE,
    LOSS_NAMES,
    METHOD_LABELS,
    SHOWN_FRAMES,
    VIDEO_SUFFIXES,
    VIDEO_TYPES,
    VIDEO_TYPES_TEXT,
    darkness_label,
    darkness_sentence,
    not_sure_sentence,
)

__all__ = [
    # ui
    "ACTIVE_JOB_STATES",
    "COMPARE_HELP",
    "DARKNESS_HELP",
    "K_CHOICES",
    "K_HELP",
    "K_RANGE",
    "LOSS_NAMES",
    "METHOD_LABELS",
    "SHOWN_FRAMES",
    "VIDEO_SUFFIXES",
    "VIDEO_TYPES",
    "VIDEO_TYPES_TEXT",
    "darkness_label",
    "darkness_sentence",
    "not_sure_sentence",
    # inputs
    "ServiceError",
    # models
    "MODEL_CACHE_SIZE",
    "MODEL_CONCURRENCY",
    "class_names",
    "default_variant",
    "get_model",
    "list_variants",
    "model_slot",
    "register_variant",
    "variant_for_wstc",
    "wstc_choices",
    # panels, analysis, enhance, comparison, previews, figures
    "rgb_diff_maps",
    "FULL_SIZE_SHORT_SIDE",
    "TIMELINE_WINDOWS",
    "analyse",
    "timeline",
    "ENHANCE_CHUNK_GROUPS",
    "enhance_clip",
    "enhance_video",
    "ALL_METHODS",
    "ENHANCER_ONLY",
    "METHODS",
    "PUBLISHED_ENV",
    "compare",
    "BROWSER_PLAYABLE",
    "EXAMPLES_ENV",
    "PREVIEW_SHORT_SIDE",
    "example_clips",
    "example_previews",
    "preview_video",
    "loss_figure",
    "timeline_figure",
    "top5_figure",
    # server, datasets, finetune
    "BACKBONES",
    "HEAVY_BACKBONES",
    "RUNS_ROOT_ENV",
    "WRITES_ENV",
    "finetune_limits",
    "writes_enabled",
    "DATA_ROOT_ENV",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_FILES",
    "SYNTHETIC_SMALL",
    "finetune_datasets",
    "prepare_dataset_upload",
    "finetune_defaults",
    "finetune_status",
    "new_owner_key",
    "push_finetuned",
    "resume_finetune",
    "save_finetuned",
    "start_finetune",
    "stop_finetune",
]
