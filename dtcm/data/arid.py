"""ARID (Xu et al. 2020) and its UG2+ challenge variant, read from their own split lists.

Two list formats are accepted:

* ARID's ``split1_train.txt`` / ``split1_test.txt`` (``list_cvt/ARID_split1_train.txt`` in ARID v1):
  ``idx<TAB>class<TAB>Class/file.avi`` per line, no header. ``class`` is a class index or a class name.
* The UG2+ CSV, with a header naming the columns: ``VideoID,Video,ClassID`` (commas or tabs, any
  column order). ``Video`` is relative to the root; a bare file name is also looked for under
  ``root/<class name>/``.

Class indices: ARID's lists are **0-based** (Drink = 0 ... Wave = 10). 1-based lists are detected (no
label 0 and a label equal to the number of classes) or forced with ``label_base=1``; labels are
always 0-based inside the dataset. Class names come from ``class_names=``, else a ``classInd.txt``
beside the list (or in ``root`` when given) with lines ``index<TAB>name`` or ``index name``, else ARID's 11
actions (``dtcm.config.ARID_CLASSES``).

The synthetic DarkActions set is written in the same list format and read through this class.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from dtcm.config import ARID_CLASSES
from dtcm.data.base import ClipDataset, Sample, list_path, read_class_index, resolve_root, to_zero_based

__all__ = ["ARIDDataset", "find_class_index", "read_arid_list"]

PATH_COLUMNS = ("video", "path", "filename", "file")  # header names that hold the clip path
CLASS_COLUMNS = ("classid", "class", "label", "class_id")  # header names that hold the class


def read_arid_list(list_file: str | os.PathLike) -> list[tuple[str, str]]:
    """Rows of an ARID list or UG2 CSV as ``(relative path, class field)``, the class still as text."""
    list_file = Path(list_file)
    lines = [
        ln
        for ln in list_file.read_text(encoding="utf-8-sig").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise ValueError(f"{list_file} lists no clips")
    first = lines[0]
    delimiter = "\t" if "\t" in first else "," if "," in first else None
    header = [c.strip().lower().replace(" ", "") for c in _split(first, delimiter)]
    rows = []
    if any(c in PATH_COLUMNS for c in header):
        try:
            pcol = next(header.index(c) for c in PATH_COLUMNS if c in header)
            ccol = next(header.index(c) for c in CLASS_COLUMNS if c in header)
        except StopIteration:
            raise ValueError(f"{list_file}: the header {first!r} names no class column") from None
        for n, line in enumerate(lines[1:], 2):
            fields = _split(line, delimiter)
            if len(fields) <= max(pcol, ccol):
                raise ValueError(f"{list_file}:{n}: expected {len(header)} columns, got {line!r}")
            rows.append((list_path(fields[pcol]), fields[ccol].strip()))
        return rows
    for n, line in enumerate(lines, 1):
        fields = _split(line, delimiter, maxsplit=2)
        if len(fields) != 3:
            raise ValueError(
                f"{list_file}:{n}: expected 'idx<TAB>class<TAB>path' (ARID) or a CSV with a "
                f"'VideoID,Video,ClassID' header, got {line!r}"
            )
        _, a, b = (f.strip() for f in fields)
        # ARID lists put the class before the path; a headerless CSV may put it after.
        path, label = (b, a) if a.lstrip("-").isdigit() or not b.lstrip("-").isdigit() else (a, b)
        rows.append((list_path(path), label))
    return rows


def find_class_index(*folders: str | os.PathLike) -> Path | None:
    """The first ``classInd.txt`` (any letter case) in ``folders``, or None."""
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for name in ("classInd.txt", "classind.txt", "ClassInd.txt"):
            if (folder / name).is_file():
                return folder / name
        for f in sorted(folder.iterdir()):
            if f.name.lower() == "classind.txt" and f.is_file():
                return f
    return None


class ARIDDataset(ClipDataset):
    """ARID clips from a split list (or a UG2 CSV); see the module docstring for the formats.

    Args:
        root: folder the list's paths are relative to; None looks beside and above the list.
        list_file: ``split1_train.txt``-style list or UG2 CSV.
        class_names: names in label order; default from ``classInd.txt`` or ARID's 11 actions.
        label_base: 0 or 1 for the list's class indices; None detects it (ARID: 0).
        within: a folder every listed clip must lie inside (an uploaded dataset's); entries that are
            absolute or leave it raise ``ValueError`` before any file is opened.
        **clip_options: ``ClipDataset``'s keyword options (train, clip_len, crop, short_side, seed, cache,
            cache_max_frames, augment).
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        list_file: str | os.PathLike,
        *,
        class_names: Sequence[str] | None = None,
        label_base: int | None = None,
        within: str | os.PathLike | None = None,
        **clip_options,
    ):
        list_file = Path(list_file)
        rows = read_arid_list(list_file)
        if class_names is None:
            found = find_class_index(list_file.parent, *([root] if root is not None else []))
            class_names = read_class_index(found) if found else ARID_CLASSES
        class_names = tuple(class_names)
        by_name = {n.lower(): i for i, n in enumerate(class_names)}
        numeric = [c for _, c in rows if c.lstrip("-").isdigit()]
        if numeric:
            shifted = iter(to_zero_based([int(c) for c in numeric], len(class_names), label_base, str(list_file)))
        labels = []
        for path, c in rows:
            if c.lstrip("-").isdigit():
                labels.append(next(shifted))
            elif c.lower() in by_name:
                labels.append(by_name[c.lower()])
            else:
                raise ValueError(f"{list_file}: class {c!r} of {path} is not one of {', '.join(class_names)}")
        alternatives = [(p, f"{class_names[y]}/{p}") for (p, _), y in zip(rows, labels, strict=True)]
        base = resolve_root(alternatives, list_file, root, within)
        samples = [Sample(_locate(base, alts), y) for alts, y in zip(alternatives, labels, strict=True)]
        super().__init__(samples, class_names, **clip_options)
        self.root, self.list_file = base, list_file


def _split(line: str, delimiter: str | None, maxsplit: int = -1) -> list[str]:
    if delimiter == ",":
        return next(csv.reader(io.StringIO(line)))
    return line.strip().split(delimiter, maxsplit)


def _locate(base: Path, alternatives: tuple[str, ...]) -> str:
    """The first alternative that exists under ``base`` (else the first, to be skipped at load time)."""
    for p in alternatives:
        if os.path.exists(base / p):
            return str(base / p)
    return str(base / alternatives[0])
