"""Your own clips: one sub-folder per class, video files inside (any depth below the class folder).

Labels are the sorted folder names' positions unless ``class_names`` fixes the order (e.g. a model's
classes when evaluating); then folders not named there are left out with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from dtcm.checks import DATASET_VIDEO_SUFFIXES
from dtcm.data.base import ClipDataset, Sample

__all__ = ["VIDEO_EXTENSIONS", "FolderDataset", "class_folders"]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = DATASET_VIDEO_SUFFIXES  # the name this module has always exported


def class_folders(root: str | os.PathLike) -> list[Path]:
    """The visible sub-folders of ``root``, sorted by name."""
    root = Path(root)
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))), key=lambda d: d.name)


class FolderDataset(ClipDataset):
    """Clips from ``root/<class>/**/<video>``.

    Args:
        root: folder with one sub-folder per class.
        class_names: label order; default the sorted folder names.
        extensions: video file suffixes to pick up (case-insensitive).
        within: a folder every clip must lie inside once links are followed (an uploaded dataset's).
        **clip_options: ``ClipDataset``'s keyword options, as for ``ARIDDataset``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        class_names: Sequence[str] | None = None,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        within: str | os.PathLike | None = None,
        **clip_options,
    ):
        root = Path(root)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder; expected one sub-folder per class")
        folders = class_folders(root)
        if not folders:
            raise FileNotFoundError(f"{root} has no class sub-folders; expected root/<class>/<video>")
        if class_names is None:
            class_names = tuple(d.name for d in folders)
        class_names = tuple(class_names)
        index = {name: i for i, name in enumerate(class_names)}
        suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        samples = []
        for d in folders:
            if d.name not in index:
                logger.warning("leaving out %s: %r is not one of the class names", d, d.name)
                continue
            files = sorted(f for f in d.rglob("*") if f.suffix.lower() in suffixes and f.is_file())
            samples += [Sample(str(f), index[d.name]) for f in files]
        if within is not None:
            inside = Path(within).resolve()
            outside = [s.path for s in samples if not Path(s.path).resolve().is_relative_to(inside)]
            if outside:
                raise ValueError(
                    f"{len(outside)} clips of {root} lie outside {inside} through links (e.g. {outside[0]}); "
                    "a dataset may only hold files inside its own folder"
                )
        if not samples:
            raise FileNotFoundError(f"no videos ({', '.join(sorted(suffixes))}) in the class folders of {root}")
        super().__init__(samples, class_names, **clip_options)
        self.root = root
