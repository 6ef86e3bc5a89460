"""Where the web apps write, and how much: uploads, fine-tune runs, outputs and saved variants.

Every folder the server writes into lives under one cache root and counts against one disk budget; a
request that would pass it gets "the server is full" instead of filling the disk. Uploads and runs are
removed when their job ends or after a short time, and saving a variant is atomic, named by a fixed
pattern and bounded in number. Torch-free.

Settings: ``DTCM_CACHE`` (the root, default ``~/.cache/dtcm``), ``DTCM_RUNS_DIR`` (fine-tune runs, default
under the root), ``DTCM_DISK_BUDGET_GB`` (10), ``DTCM_UPLOAD_TTL_S`` (1800), ``DTCM_KEEP_RUNS`` (3),
``DTCM_MAX_SAVED`` (10).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

from dtcm.hub.index import write_index

__all__ = [
    "StorageError",
    "cache_root",
    "check_room",
    "prune_runs",
    "runs_root",
    "save_variant",
    "sweep",
    "uploads_root",
]

SAVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a saved variant's folder name in weights/
RESERVED_NAMES = {"index", "recipes", "final", "runs", "uploads", "tmp"}  # folders and files weights/ uses itself
_save_lock = threading.Lock()


class StorageError(ValueError):
    """A write the server refuses, in one sentence."""


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise StorageError(f"{name} must be a number, got {os.environ[name]!r}") from None


def cache_root() -> Path:
    root = Path(os.environ.get("DTCM_CACHE", Path.home() / ".cache" / "dtcm")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def uploads_root() -> Path:
    return cache_root() / "uploads"


def runs_root() -> Path:
    return Path(os.environ.get("DTCM_RUNS_DIR", cache_root() / "runs")).expanduser()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def used_bytes(extra_dirs: tuple[Path, ...] = ()) -> int:
    """Bytes the server has written under its folders (uploads, runs, outputs, the rendered synthetic set)."""
    roots = {cache_root().resolve(), runs_root().resolve(), *(Path(d).resolve() for d in extra_dirs)}
    roots = {r for r in roots if not any(o != r and r.is_relative_to(o) for o in roots)}  # count nested once
    return sum(_size(r) for r in roots if r.exists())


def check_room(extra_bytes: int, extra_dirs: tuple[Path, ...] = ()) -> None:
    """Refuse a write of ``extra_bytes`` that would take the server past ``DTCM_DISK_BUDGET_GB``."""
    budget = int(_env_number("DTCM_DISK_BUDGET_GB", 10) * (1 << 30))
    used = used_bytes(extra_dirs)
    if used + int(extra_bytes) > budget:
        raise StorageError(
            f"the server is full: it holds {used / (1 << 30):.1f} GB of uploads and runs and may hold "
            f"{budget / (1 << 30):.1f} GB; try again later or with a smaller file"
        )


def sweep(keep: set[Path] = frozenset(), now: float | None = None) -> int:
    """Remove uploads older than ``DTCM_UPLOAD_TTL_S`` that no job uses; returns the folders removed."""
    ttl = _env_number("DTCM_UPLOAD_TTL_S", 1800)
    now = time.time() if now is None else now
    keep = {Path(p).resolve() for p in keep}
    root = uploads_root()
    removed = 0
    if root.is_dir():
        for d in root.iterdir():
            held = any(k == d.resolve() or k.is_relative_to(d.resolve()) for k in keep)
            if not held and now - d.stat().st_mtime > ttl:
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
                removed += 1
    return removed


def trim_folder(folder: str | Path, max_bytes: int, min_age_s: float = 30.0) -> int:
    """Delete the oldest files under ``folder`` (older than ``min_age_s``) until it holds at most ``max_bytes``.

    For caches the server does not name itself, e.g. the web framework's raw uploads. Returns bytes freed.
    """
    files = []
    for dirpath, _, names in os.walk(folder):
        for n in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, n))
                files.append((st.st_mtime, st.st_size, os.path.join(dirpath, n)))
    total, freed, now = sum(f[1] for f in files), 0, time.time()
    for mtime, size, path in sorted(files):
        if total - freed <= max_bytes:
            break
        if now - mtime >= min_age_s:
            with contextlib.suppress(OSError):
                os.unlink(path)
                freed += size
    return freed


def remove_upload(path: str | Path) -> None:
    """Delete an unpacked upload (the folder directly under the uploads root that holds ``path``)."""
    path, root = Path(path).resolve(), uploads_root().resolve()
    if path.is_relative_to(root) and path != root:
        shutil.rmtree(root / path.relative_to(root).parts[0], ignore_errors=True)


def prune_runs(keep_dirs: set[str] = frozenset()) -> list[str]:
    """Keep the newest ``DTCM_KEEP_RUNS`` fine-tune runs (and ``keep_dirs``); returns the run folders removed."""
    keep_n = int(_env_number("DTCM_KEEP_RUNS", 3))
    root = runs_root()
    if not root.is_dir():
        return []
    runs = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    removed = []
    for d in runs[keep_n:]:
        if str(d) not in keep_dirs:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


def drop_checkpoints(run_dir: str | Path) -> None:
    """Delete a finished run's intermediate checkpoints; ``final/`` (the model) stays."""
    for d in Path(run_dir).glob("checkpoint-*"):
        shutil.rmtree(d, ignore_errors=True)


def check_save_name(name: str, taken) -> None:
    if not isinstance(name, str) or not SAVE_NAME.fullmatch(name) or name.lower() in RESERVED_NAMES:
        raise StorageError(
            f"{name!r} cannot name a variant: use 1-64 letters, digits, '-' and '_', starting with a letter or digit "
            f"(not {', '.join(sorted(RESERVED_NAMES))})"
        )
    if name in taken:
        raise StorageError(f"weights/{name} already exists; choose another name")


def save_variant(src: str | Path, weights_dir: str | Path, name: str, entry: dict) -> Path:
    """Copy a model folder into ``weights_dir/name`` and list it in ``index.json``, atomically.

    The copy and the index are written under fresh temporary names and renamed into place; on any
    failure both temporaries are removed and nothing is listed. At most ``DTCM_MAX_SAVED`` variants are
    saved from the apps (entries marked ``saved_here``).
    """
    wdir = Path(weights_dir)
    index_path = wdir / "index.json"
    with _save_lock:
        index = json.loads(index_path.read_text()) if index_path.is_file() else {"default": name, "models": {}}
        models = index.setdefault("models", {})
        on_disk = {p.name for p in wdir.iterdir()} if wdir.is_dir() else set()
        check_save_name(name, set(models) | on_disk)
        limit = int(_env_number("DTCM_MAX_SAVED", 10))
        if sum(bool(e.get("saved_here")) for e in models.values()) >= limit:
            raise StorageError(f"this server already holds {limit} saved fine-tunes, its limit; push yours to the Hub")
        check_room(_size(Path(src)))
        wdir.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(dir=wdir, prefix=".saving-"))
        try:
            shutil.copytree(src, tmp_dir / "m", ignore=shutil.ignore_patterns("*.pt", "*.bin", "optimizer*"))
            models[name] = {**entry, "path": name, "saved_here": True}
            os.replace(tmp_dir / "m", wdir / name)
            write_index(index, wdir)  # the one writer of index.json, atomic itself
        except BaseException:
            if name not in _listed(index_path):  # the copy landed but the index did not: take it back
                shutil.rmtree(wdir / name, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return wdir / name


def _listed(index_path: Path) -> set[str]:
    try:
        return set(json.loads(index_path.read_text()).get("models", {}))
    except (OSError, ValueError):
        return set()
