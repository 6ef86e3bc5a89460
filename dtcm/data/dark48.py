"""Dark-48 (the DTCM paper's dark subset of 48 actions) and any list in the same mmaction-style format.

* ``classInd.txt``: ``index<TAB>name`` (or ``index name``) per line, 0- or 1-based.
* Video lists: ``path label`` per line, whitespace-separated (paths may hold spaces).
* Rawframe lists: ``dir num_frames label`` per line; ``dir`` holds ``img_00001.jpg`` ... (1-based),
  read with OpenCV (converted to RGB); this path does not touch ``dtcm.video``.

Labels follow the class index's base: a list with no label 0 and a label equal to the number of
classes is taken as 1-based (or force ``label_base``). Class names come from ``class_names=``, else
``class_file=``, else a ``classInd.txt`` beside the list or in ``root`` (when given), else the folder each class's
clips sit in, else ``class_0 ...``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dtcm.data.arid import find_class_index
from dtcm.data.base import (
    ClipDataset,
    Sample,
    infer_class_names,
    list_path,
    read_class_index,
    resolve_root,
    to_zero_based,
)

__all__ = ["Dark48Dataset", "read_dark48_list"]


def read_dark48_list(list_file: str | os.PathLike) -> list[tuple[str, int | None, int]]:
    """Rows ``(path, num_frames or None, label as written)`` of a video or rawframe list."""
    list_file = Path(list_file)
    rows = []
    for n, line in enumerate(list_file.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        three = line.rsplit(None, 2)
        two = line.rsplit(None, 1)
        if len(three) == 3 and _is_int(three[1]) and _is_int(three[2]):
            rows.append((list_path(three[0]), int(three[1]), int(three[2])))
        elif len(two) == 2 and _is_int(two[1]):
            rows.append((list_path(two[0]), None, int(two[1])))
        else:
            raise ValueError(f"{list_file}:{n}: expected 'path label' or 'dir num_frames label', got {line!r}")
    if not rows:
        raise ValueError(f"{list_file} lists no clips")
    return rows


class Dark48Dataset(ClipDataset):
    """Clips from a Dark-48 video or rawframe list; see the module docstring for the formats.

    Args:
        root: folder the list's paths are relative to; None looks beside and above the list.
        list_file: the ``path label`` or ``dir num_frames label`` list.
        class_file: a ``classInd.txt``; default: one beside the list or in ``root``.
        class_names: names in label order (overrides ``class_file``).
        label_base: 0 or 1 for the list's labels; None detects it.
        within: a folder every listed clip must lie inside, as for ``ARIDDataset``.
        **clip_options: ``ClipDataset``'s keyword options, as for ``ARIDDataset``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        list_file: str | os.PathLike,
        *,
        class_file: str | os.PathLike | None = None,
        class_names: Sequence[str] | None = None,
        label_base: int | None = None,
        within: str | os.PathLike | None = None,
        **clip_options,
    ):
        list_file = Path(list_file)
        rows = read_dark48_list(list_file)
        if class_names is None:
            class_file = class_file or find_class_index(list_file.parent, *([root] if root is not None else []))
            class_names = read_class_index(class_file) if class_file else None
        raw = [label for _, _, label in rows]
        if class_names is None:
            base = label_base if label_base is not None else 0
            labels = [v - base for v in raw]
            if min(labels) < 0:
                raise ValueError(f"{list_file}: negative label {min(labels) + base} with label_base={base}")
            class_names = infer_class_names([p for p, _, _ in rows], labels, max(labels) + 1)
        else:
            labels = to_zero_based(raw, len(class_names), label_base, str(list_file))
        base_dir = resolve_root([p for p, _, _ in rows], list_file, root, within)
        samples = [Sample(str(base_dir / p), y, num_frames=nf) for (p, nf, _), y in zip(rows, labels, strict=True)]
        super().__init__(samples, class_names, **clip_options)
        self.root, self.list_file = base_dir, list_file


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
