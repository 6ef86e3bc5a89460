"""Datasets of labelled dark clips: ARID, Dark-48, a folder per class, all through one ``ClipDataset``.

``build_dataset`` picks the reader from a path; every dataset yields
``{"video": (3, T, H, W) float32 on [0, 1], "label": int, "path": str}`` (or ``{"skipped": path,
"reason": ...}`` for a bad file) and carries ``class_names`` for the model config.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from dtcm.checks import LIST_SUFFIXES
from dtcm.data.arid import ARIDDataset, read_arid_list
from dtcm.data.base import ClipDataset, Sample, collate_clips, read_class_index
from dtcm.data.dark48 import Dark48Dataset, read_dark48_list
from dtcm.data.folder import VIDEO_EXTENSIONS, FolderDataset, class_folders

__all__ = [
    "ARIDDataset",
    "ClipDataset",
    "Dark48Dataset",
    "FolderDataset",
    "Sample",
    "VIDEO_EXTENSIONS",
    "build_dataset",
    "collate_clips",
    "detect_list_format",
    "find_split_list",
    "read_arid_list",
    "read_class_index",
    "read_dark48_list",
]

logger = logging.getLogger(__name__)

NOT_LISTS = ("classind", "mapping", "readme", "license", "requirements")  # .txt files that are no split


def build_dataset(
    spec: str | os.PathLike,
    train: bool = False,
    clip_len: int = 16,
    crop: int = 112,
    short_side: int = 128,
    *,
    split: int = 1,
    root: str | os.PathLike | None = None,
    class_names: tuple[str, ...] | None = None,
    label_base: int | None = None,
    seed: int = 0,
    cache: bool = False,
    within: str | os.PathLike | None = None,
    augment: str = "none",
) -> ClipDataset:
    """One entry point for every dataset format, chosen from the path.

    * a ``.csv`` or ARID-style ``.txt`` list (``idx<TAB>class<TAB>path``): :class:`ARIDDataset`;
    * any other ``.txt`` list (``path label`` / ``dir num_frames label``): :class:`Dark48Dataset`;
    * a folder holding split lists (``*split1*train*.txt`` / ``*test*`` or ``*val*``, up to two levels
      down, as ARID, Dark-48 and the synthetic set ship): the list for ``train`` and ``split``;
    * a folder with ``train/`` and ``test/`` (or ``val/``) sub-folders of class folders: that half;
    * any other folder: :class:`FolderDataset` (one sub-folder per class).

    Args:
        spec: list file or folder.
        train: training clips (random start and crop) or test clips (centred window, centre crop).
        clip_len: T, consecutive frames per clip.
        crop: network input height = width.
        short_side: frames are resized so their short side is this before cropping.
        split: which split's lists to pick inside a folder (ARID has 1-3).
        root: folder the list's paths are relative to (default: found beside or above the list).
        class_names: label order to impose (default: the dataset's own).
        label_base: 0 or 1 for the list's class indices; None detects it.
        seed: base seed of the clip sampling (see ``ClipDataset.set_epoch``).
        cache: keep decoded frames in memory across epochs.
        within: a folder the dataset must stay inside (an uploaded or server dataset's own folder): a
            list entry that is absolute or leaves it raises ``ValueError`` before any file is opened.
        augment: training augmentation (``dtcm.data.augment.AUGMENTS``); ignored when ``train`` is False.

    Returns:
        A ``ClipDataset`` with ``class_names``.
    """
    path = Path(spec).expanduser()
    if within is not None and not path.resolve().is_relative_to(Path(within).resolve()):
        raise ValueError(f"the dataset {spec} is outside {within}, the folder it must stay in")
    common = dict(train=train, clip_len=clip_len, crop=crop, short_side=short_side, seed=seed, cache=cache)
    common["augment"] = augment
    if path.is_dir():
        lists = find_split_list(path, train, split)
        if lists is not None:
            logger.info("reading %s split %d from %s", "train" if train else "test", split, lists)
            path = lists
        else:
            halves = {d.name.lower(): d for d in class_folders(path)}
            wanted = ("train",) if train else ("test", "val", "valid", "validation")
            half = next((halves[w] for w in wanted if w in halves), None)
            if half is not None and "train" in halves and class_folders(half):
                path = half
            return FolderDataset(path, class_names=class_names, within=within, **common)
    if not path.is_file():
        raise FileNotFoundError(f"{spec} is neither a list file (.txt, .csv) nor a folder")
    kind = detect_list_format(path)
    if kind == "arid":
        return ARIDDataset(root, path, class_names=class_names, label_base=label_base, within=within, **common)
    return Dark48Dataset(root, path, class_names=class_names, label_base=label_base, within=within, **common)


def detect_list_format(list_file: str | os.PathLike) -> str:
    """``"arid"`` (ARID list or UG2 CSV) or ``"dark48"`` (``path label`` / ``dir n label``)."""
    list_file = Path(list_file)
    if list_file.suffix.lower() not in LIST_SUFFIXES:
        raise ValueError(f"{list_file}: a split list must be .txt or .csv, got {list_file.suffix!r}")
    if list_file.suffix.lower() == ".csv":
        return "arid"
    if any(word in list_file.name.lower() for word in NOT_LISTS[:1]):
        raise ValueError(f"{list_file} is a class index, not a split list; pass the train or test list")
    with open(list_file, encoding="utf-8-sig") as f:
        first = next((ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")), "")
    fields = first.split("\t") if "\t" in first else first.split()
    if "video" in first.lower().replace(" ", "") and not first.split()[-1].lstrip("-").isdigit():
        return "arid"  # a header such as VideoID<TAB>ClassID<TAB>Video
    if len(fields) == 3 and fields[0].isdigit() and not fields[2].isdigit():
        return "arid"  # idx class path
    return "dark48"


def find_split_list(folder: str | os.PathLike, train: bool, split: int = 1) -> Path | None:
    """The train or test list of ``split`` inside ``folder`` (up to two levels down), or None if it has none.

    A folder that holds lists but none for the requested half raises ``FileNotFoundError``.
    """
    folder = Path(folder)
    found = []
    for pattern in ("*", "*/*", "*/*/*"):
        for suffix in LIST_SUFFIXES:
            found += [
                f
                for f in folder.glob(pattern + suffix)
                if f.is_file() and not any(w in f.name.lower() for w in NOT_LISTS)
            ]
    if not found:
        return None
    rel = {f: f.relative_to(folder).as_posix().lower() for f in found}
    words = ("train",) if train else ("test", "val")
    for word in words:
        hits = [f for f in found if word in f.name.lower()]
        numbered = [f for f in hits if re.search(r"split_?\d", rel[f])]
        if numbered:
            hits = [f for f in numbered if re.search(rf"split_?0*{split}(?!\d)", rel[f])]
        if hits:
            hits.sort(key=lambda f: (len(f.relative_to(folder).parts), len(f.name), f.name))
            return hits[0]
    lists = [rel[f] for f in found if re.search(r"train|test|val", f.name.lower())]
    if not lists:
        return None
    raise FileNotFoundError(
        f"{folder} holds split lists ({', '.join(sorted(lists)[:6])}) but none for "
        f"{'train' if train else 'test/val'} split {split}"
    )
