"""What the user interfaces call: analyse a clip, enhance it, compare enhancers, run fine-tune jobs.

Both UIs (``app.py`` for Gradio, ``streamlit_app.py`` and ``pages/``) import this package and nothing of
torch; every function returns plain data (numpy arrays, floats, lists, dicts) and, where a chart is
wanted, a plotly figure. Errors a user can cause are ``ServiceError`` (a ``ValueError``) with one human
sentence; the UIs show it as is.

What lives where; the package re-exports each module's ``__all__`` (``predict`` serves the others only).
Module state and tunables (``models._cache``, ``models._runtime_variants``, ``models.SLOT_WAIT_S``,
``server._jobs``, ``enhance.ENHANCE_MAX_PIXELS``) are not re-exported: read and patch them in their module.

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

from dtcm.service import (
    analysis,
    comparison,
    datasets,
    enhance,
    figures,
    finetune,
    inputs,
    models,
    panels,
    previews,
    server,
    ui,
)
from dtcm.service.analysis import *  # noqa: F403
from dtcm.service.comparison import *  # noqa: F403
from dtcm.service.datasets import *  # noqa: F403
from dtcm.service.enhance import *  # noqa: F403
from dtcm.service.figures import *  # noqa: F403
from dtcm.service.finetune import *  # noqa: F403
from dtcm.service.inputs import *  # noqa: F403
from dtcm.service.models import *  # noqa: F403
from dtcm.service.panels import *  # noqa: F403
from dtcm.service.previews import *  # noqa: F403
from dtcm.service.server import *  # noqa: F403
from dtcm.service.ui import *  # noqa: F403

_MODULES = (ui, inputs, models, panels, analysis, enhance, comparison, previews, figures, server, datasets, finetune)
__all__ = [name for module in _MODULES for name in module.__all__]
