"""The files the Gradio app serves: result images named by their content, enhanced clips, upload previews."""

from __future__ import annotations

import collections
import hashlib
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from dtcm import service

__all__ = ["OUT_DIR", "gallery", "image_file", "original_of", "prune_outputs", "remember_preview"]

OUT_DIR = Path(tempfile.gettempdir()) / "dtcm_app"  # enhanced clips and images; pruned after OUT_TTL_S
OUT_TTL_S = 3600
PREVIEWS_MAX = 512
_previews: collections.OrderedDict[str, str] = collections.OrderedDict()  # preview file name -> the upload


def image_file(img: np.ndarray) -> str:
    """An image as a WebP file named by its content, written once and atomically.

    Galleries get files, not arrays: Gradio rewrites the cached file of an array on every request, so two
    identical requests at once could truncate a file while it is being downloaded.
    """
    ok, data = cv2.imencode(
        ".webp", cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, 90]
    )
    if not ok:
        raise service.ServiceError("an image of the result could not be encoded")
    folder = OUT_DIR / "images"
    path = folder / f"{hashlib.sha256(data.tobytes()).hexdigest()[:32]}.webp"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".img-")
        with os.fdopen(fd, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, path)
    return str(path)


def gallery(images, first_caption: str | None = None) -> list[tuple[str, str | None]]:
    """A gallery's value: image files, the first one captioned."""
    return [(image_file(img), first_caption if i == 0 else None) for i, img in enumerate(images)]


def prune_outputs() -> None:
    """Delete the clips and images served more than ``OUT_TTL_S`` ago."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for p in [*OUT_DIR.glob("*.mp4"), *OUT_DIR.glob("images/*.webp")]:
        try:
            if now - p.stat().st_mtime > OUT_TTL_S:
                p.unlink()
        except OSError:
            pass


def remember_preview(preview: str, upload: str) -> None:
    """Keep which upload a browser-playable preview stands for (the most recent ``PREVIEWS_MAX``)."""
    _previews[Path(preview).name] = upload
    while len(_previews) > PREVIEWS_MAX:
        _previews.popitem(last=False)


def original_of(path: str) -> str | None:
    """The upload behind a preview the player shows, when it still exists; None for any other file."""
    original = _previews.get(Path(path).name)
    return original if original is not None and Path(original).is_file() else None
