"""Weights on disk and on the Hub: the shipped index, strict loading, model cards and pushing.

Three kinds of model spec resolve to a loaded :class:`~dtcm.model.DTCM` (:func:`resolve_model`): a folder
written by ``save_pretrained``, a name from the shipped weights index (:mod:`dtcm.hub.index`) or a Hugging Face
Hub repo id ``owner/name``. Prediction lives in :mod:`dtcm.pipeline`; ``predict``, ``recognise`` and
``load_clip`` are re-exported here for the model cards' usage lines. Nothing here imports torch until a model
is loaded.

Files: ``index.py`` (weights/index.json), ``load.py`` (resolve_model, Hub errors), ``card.py`` (model cards),
``push.py`` (``dtcm push``).
"""

from dtcm.hub.card import MODEL_CARD_CITATION, is_stub_card, write_model_card
from dtcm.hub.index import INDEX_NAME, WEIGHTS_ENV, default_variant, list_variants, read_index, weights_dir, write_index
from dtcm.hub.load import (
    CONFIG_NAME,
    MISMATCH_HINT,
    WEIGHTS_NAME,
    HubError,
    _local_folder,  # noqa: F401  (dtcm calibrate takes folders and shipped names only)
    hub_error,
    quiet_hub_logging,
    resolve_model,
)
from dtcm.pipeline import load_clip, predict, recognise

__all__ = [
    "CONFIG_NAME",
    "INDEX_NAME",
    "MISMATCH_HINT",
    "MODEL_CARD_CITATION",
    "WEIGHTS_ENV",
    "WEIGHTS_NAME",
    "HubError",
    "default_variant",
    "hub_error",
    "is_stub_card",
    "list_variants",
    "load_clip",
    "predict",
    "quiet_hub_logging",
    "read_index",
    "recognise",
    "resolve_model",
    "weights_dir",
    "write_index",
    "write_model_card",
]
