"""Old import path of the enhancement functions, now in :mod:`dtcm.pipeline` (the command: :mod:`dtcm.cli.enhance`)."""

from dtcm.cli.enhance import resolve_enhancer_spec
from dtcm.pipeline import (
    DEFAULT_ENHANCER,
    PUBLISHED_ENV,
    enhance_file,
    enhance_frames,
    enhance_image_file,
    fast_enhancer,
)

__all__ = [
    "DEFAULT_ENHANCER",
    "PUBLISHED_ENV",
    "enhance_file",
    "enhance_frames",
    "enhance_image_file",
    "fast_enhancer",
    "resolve_enhancer_spec",
]
