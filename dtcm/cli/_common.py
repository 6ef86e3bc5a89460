"""What several commands share: loading the model a clip command names."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cli_model"]


def cli_model(clip: str | os.PathLike, model: str | None, revision: str | None, k: int | None):
    """What the clip commands (``predict``, ``enhance``) share: check the clip and ``--k``, then load the model
    (on the device of :mod:`dtcm.device`) with huggingface_hub's retry warnings kept off stderr."""
    if not Path(clip).is_file():
        raise FileNotFoundError(f"no such clip: {clip}")
    if k is not None and k < 1:
        raise ValueError(f"--k must be >= 1, got {k}")
    from dtcm.device import to_device
    from dtcm.hub import quiet_hub_logging, resolve_model

    quiet_hub_logging()
    return to_device(resolve_model(model, revision=revision))
