"""The shipped weights index, ``<weights dir>/index.json``: its one reader and its one writer.

The index names the variants the apps offer and which is the default; each entry's ``path`` is a model folder
(``config.json`` + ``model.safetensors``). ``description``, ``w_stc``, ``k`` and ``metrics`` are for the UIs; the
model's own ``config.json`` stays the authority for how to run it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["INDEX_NAME", "WEIGHTS_ENV", "default_variant", "list_variants", "read_index", "weights_dir", "write_index"]

INDEX_NAME = "index.json"
WEIGHTS_ENV = "DTCM_WEIGHTS_DIR"


def weights_dir() -> Path:
    """The folder of shipped variants: ``$DTCM_WEIGHTS_DIR`` if set, else ``weights/`` beside the package."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "weights"


def read_index(folder: str | os.PathLike | None = None, *, raw: bool = False) -> dict:
    """Read and check the shipped weights index.

    The index is ``<weights dir>/index.json``::

        {
          "default": "dtcm-shufflenetv2-wstc4",
          "models": {
            "dtcm-shufflenetv2-wstc4": {
              "path": "dtcm-shufflenetv2-wstc4",   # or "weights/dtcm-shufflenetv2-wstc4"
              "description": "DTCM, 3D-ShuffleNetV2 + LightDCE, W_STC = 4 (the paper's choice)",
              "w_stc": 4.0, "k": 4,
              "metrics": {"top1": 0.81, "top5": 0.98, "n": 220}
            }
          }
        }

    ``path`` is relative to the weights folder, or to the folder above it (the repository root, as in
    ``"weights/NAME"``), or absolute. ``description``, ``w_stc``, ``k`` and ``metrics`` are for the UIs
    (the model's own ``config.json`` stays the authority for how to run it).

    Args:
        folder: the weights folder; default :func:`weights_dir`.
        raw: keep each ``path`` as written (to change the index and :func:`write_index` it back).

    Returns:
        ``{"default": str | None, "models": {name: entry}}`` with each entry's ``path`` made absolute.
        An absent index gives ``{"default": None, "models": {}}``.
    """
    folder = Path(folder) if folder is not None else weights_dir()
    index_file = folder / INDEX_NAME
    if not index_file.is_file():
        return {"default": None, "models": {}}
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{index_file} is not valid JSON: {e}") from None
    models = index.get("models") if isinstance(index, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f'{index_file} needs {{"default": NAME, "models": {{NAME: {{"path": ...}}}}}}')
    out = {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ValueError(f'{index_file}: model {name!r} needs a "path" (its folder)')
        out[name] = entry if raw else {**entry, "path": str(_variant_folder(folder, entry["path"]))}
    default = index.get("default")
    if default is not None and default not in out:
        raise ValueError(f"{index_file}: default {default!r} is not one of its models ({', '.join(out)})")
    return {"default": default, "models": out}


def _variant_folder(folder: Path, path: str) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for base in (folder, folder.parent):  # relative to the weights dir, else to the repo root
        if (base / p).is_dir():
            return (base / p).resolve()
    return (folder / p).resolve()


def list_variants(folder: str | os.PathLike | None = None) -> dict[str, dict]:
    """The shipped variants of the weights index, default first.

    Returns:
        name -> the index entry with ``path`` made absolute, ``description``, ``w_stc``, ``k`` and
        ``metrics`` present (None when the index leaves them out), and ``default`` (bool); any other
        keys of the entry are kept.
    """
    index = read_index(folder)
    out = {}
    for name, entry in index["models"].items():
        out[name] = {
            "description": None,
            "w_stc": None,
            "k": None,
            "metrics": None,
            **entry,
            "default": name == index["default"],
        }
    return dict(sorted(out.items(), key=lambda item: not item[1]["default"]))


def default_variant(folder: str | os.PathLike | None = None) -> str | None:
    """The index's default variant name (None when nothing is shipped)."""
    index = read_index(folder)
    return index["default"] or next(iter(index["models"]), None)


def write_index(index: dict, folder: str | os.PathLike | None = None) -> Path:
    """Write ``index`` (``{"default": NAME, "models": {NAME: entry}}``) as ``<folder>/index.json``, atomically.

    The file is written under a temporary name beside it and renamed into place, so a reader sees the old
    index or the new one, never half of one.

    Args:
        index: the index as it goes on disk (entries' ``path`` relative to the weights folder).
        folder: the weights folder; default :func:`weights_dir`.

    Returns:
        The path of the index written.
    """
    folder = Path(folder) if folder is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".index-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(index, indent=2) + "\n")
        os.replace(tmp, folder / INDEX_NAME)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return folder / INDEX_NAME
