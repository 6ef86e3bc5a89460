"""Where the web apps write, and how much: uploads, fine-tune runs, temporary files and saved variants.

Every folder the server writes into lives under one cache root and counts against one disk budget; a
request that would pass it gets "the server is full" instead of filling the disk. Each app (``use_app``)
keeps its runs, uploads and temporary files in folders of its own, so two apps on one host never prune
each other's; each visitor's uploads live in a folder of their own (``visitor_uploads``), bounded per
visitor. Uploads and runs are removed when their job ends or after a short time, temporary files after
the same time and at shutdown; saving a variant is atomic, named by a fixed pattern, written to the saved
folder (never the shipped ``weights/``) and bounded per visitor. Torch-free.

Settings: ``DTCM_CACHE`` (the root, default ``~/.cache/dtcm``), ``DTCM_RUNS_DIR`` (fine-tune runs, default
under the root), ``DTCM_SAVED_DIR`` (saved variants, default under the root), ``DTCM_DISK_BUDGET_GB`` (10),
``DTCM_UPLOAD_GB_PER_VISITOR`` (2), ``DTCM_UPLOAD_TTL_S`` (1800, uploads and temporary files),
``DTCM_KEEP_RUNS`` (3), ``DTCM_MAX_SAVED`` (10 per visitor), ``DTCM_APP`` (the app's own sub-folders).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
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
    "app_temp",
    "cache_root",
    "check_room",
    "clean_at_exit",
    "owner_id",
    "prune_runs",
    "public_text",
    "runs_root",
    "save_variant",
    "saved_root",
    "sweep",
    "sweep_temp",
    "uploads_root",
    "use_app",
    "visitor_uploads",
]

SAVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a saved variant's folder name
RESERVED_NAMES = {"index", "recipes", "final", "runs", "uploads", "tmp"}  # folders and files weights/ uses itself
APP_ENV = "DTCM_APP"  # the app's name: its runs, uploads and temporary files get folders of their own
LOCAL_OWNER = "local"  # the folder of work started without a visitor key (Python, the CLI)
_save_lock = threading.Lock()
_cleaned_at_exit: set[str] = set()


class StorageError(ValueError):
    """A write the server refuses, in one sentence."""


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise StorageError(f"{name} must be a number, got {os.environ[name]!r}") from None


def use_app(name: str) -> None:
    """Give this process's runs, uploads and temporary files sub-folders named ``name``, unless ``DTCM_APP``
    names them already; set in the environment, so the training workers it starts use the same folders."""
    os.environ.setdefault(APP_ENV, name)


def _app_name() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", os.environ.get(APP_ENV, ""))


def _per_app(base: Path) -> Path:
    name = _app_name()
    return base / name if name else base


def cache_root() -> Path:
    root = Path(os.environ.get("DTCM_CACHE", Path.home() / ".cache" / "dtcm")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def uploads_root() -> Path:
    return _per_app(cache_root() / "uploads")


def _runs_base() -> Path:
    return Path(os.environ.get("DTCM_RUNS_DIR", cache_root() / "runs")).expanduser()


def runs_root() -> Path:
    return _per_app(_runs_base())


def saved_root() -> Path:
    """Where visitors' saved variants live, with their own ``index.json``: a data folder, not ``weights/``."""
    return Path(os.environ.get("DTCM_SAVED_DIR", cache_root() / "saved")).expanduser()


def app_temp() -> Path:
    """This app's folder of temporary files (uploads being read, enhanced clips): swept, counted, cleaned."""
    return _per_app(cache_root() / "tmp")


def owner_id(owner: str | None) -> str:
    """The folder name of a visitor key: a hash, so the key itself is never written to disk."""
    if owner is None:
        return LOCAL_OWNER
    return hashlib.sha256(str(owner).encode()).hexdigest()[:24]


def visitor_uploads(owner: str | None) -> Path:
    """The folder of one visitor's unpacked uploads; nobody else's requests reach into it."""
    return uploads_root() / owner_id(owner)


def public_text(text: str) -> str:
    """``text`` with the server's folders replaced by short names, for a sentence a visitor sees."""
    from dtcm.hub.index import weights_dir

    folders = {
        uploads_root(): "<uploads>",
        runs_root(): "<runs>",
        saved_root(): "<saved>",
        app_temp(): "<tmp>",
        cache_root(): "<cache>",
        weights_dir(): "<weights>",
        Path(__file__).resolve().parents[1]: "<server>",
        Path(tempfile.gettempdir()): "<tmp>",
        Path.home(): "~",
    }
    pairs = set()
    for folder, name in folders.items():
        pairs.add((str(folder), name))
        with contextlib.suppress(OSError):
            pairs.add((str(folder.resolve()), name))
    for folder, name in sorted(pairs, key=lambda p: -len(p[0])):  # the deepest folder names first
        if len(folder) > 1:
            text = text.replace(folder, name)
    return text


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
    """Bytes the apps have written under their folders (uploads, runs, temporary files, saved variants, the
    rendered synthetic set), every app of this host together."""
    roots = {cache_root(), _runs_base(), saved_root(), *(Path(d) for d in extra_dirs)}
    roots = {r.resolve() for r in roots}
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


def check_visitor_room(owner: str | None, extra_bytes: int) -> None:
    """Refuse an upload that would take one visitor past ``DTCM_UPLOAD_GB_PER_VISITOR`` of unpacked files."""
    cap = int(_env_number("DTCM_UPLOAD_GB_PER_VISITOR", 2) * (1 << 30))
    folder = visitor_uploads(owner)
    held = _size(folder) if folder.exists() else 0
    if held + int(extra_bytes) > cap:
        raise StorageError(
            f"your uploads would unpack to {(held + int(extra_bytes)) / (1 << 30):.2f} GB, and one visitor may hold "
            f"{cap / (1 << 30):.2f} GB on this server; wait for your earlier uploads to expire or upload a smaller zip"
        )


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _old(path: Path, now: float, ttl: float) -> bool:
    try:
        return now - path.lstat().st_mtime > ttl
    except OSError:
        return False


def sweep(keep: set[Path] = frozenset(), now: float | None = None) -> int:
    """Remove uploads older than ``DTCM_UPLOAD_TTL_S`` that no job uses; returns the folders removed.

    Uploads are ``<uploads>/<visitor>/<digest>``; a visitor's folder goes once it is empty and old.
    """
    ttl = _env_number("DTCM_UPLOAD_TTL_S", 1800)
    now = time.time() if now is None else now
    keep = {Path(p).resolve() for p in keep}
    root = uploads_root()
    removed = 0
    for visitor in list(root.iterdir()) if root.is_dir() else []:
        uploads = list(visitor.iterdir()) if visitor.is_dir() and not visitor.is_symlink() else [visitor]
        for d in uploads:
            held = any(k == d.resolve() or k.is_relative_to(d.resolve()) for k in keep)
            if not held and _old(d, now, ttl):
                _remove(d)
                removed += 1
        if visitor.is_dir() and not any(visitor.iterdir()) and _old(visitor, now, ttl):
            visitor.rmdir()
    return removed


def sweep_temp(folder: str | Path | None = None, now: float | None = None) -> int:
    """Remove entries of a temporary folder (default ``app_temp()``) older than ``DTCM_UPLOAD_TTL_S``."""
    ttl = _env_number("DTCM_UPLOAD_TTL_S", 1800)
    now = time.time() if now is None else now
    folder = Path(folder) if folder is not None else app_temp()
    removed = 0
    for entry in list(folder.iterdir()) if folder.is_dir() else []:
        if _old(entry, now, ttl):
            _remove(entry)
            removed += 1
    return removed


def clean_at_exit(*folders: str | Path, files=None) -> None:
    """Remove ``folders`` (and the paths ``files()`` names then) when this process ends; each is registered once."""
    for folder in folders:
        if str(folder) not in _cleaned_at_exit:
            _cleaned_at_exit.add(str(folder))
            atexit.register(shutil.rmtree, str(folder), ignore_errors=True)
    if files is not None:
        atexit.register(_remove_files, files)


def _remove_files(files) -> None:
    """Remove the files ``files()`` names, and each one's folder once it is empty (a web framework's cache)."""
    for path in map(Path, list(files())):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
            path.parent.rmdir()


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


def remove_upload(path: str | Path, owner: str | None = None) -> None:
    """Delete ``owner``'s unpacked upload that holds ``path``; a path outside their own uploads is left alone."""
    path, root = Path(path).resolve(), visitor_uploads(owner).resolve()
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
        raise StorageError(f"a variant named {name} already exists; choose another name")


def save_variant(
    src: str | Path, weights_dir: str | Path, name: str, entry: dict, owner: str | None = None, taken=()
) -> Path:
    """Copy a model folder into ``weights_dir/name`` and list it in ``index.json``, atomically.

    The copy and the index are written under fresh temporary names and renamed into place; on any
    failure both temporaries are removed and nothing is listed. Each visitor (``owner``) may save at most
    ``DTCM_MAX_SAVED`` variants (entries marked ``saved_here`` with their ``saved_by``); ``taken`` are
    names used elsewhere (the shipped variants).
    """
    wdir = Path(weights_dir)
    index_path = wdir / "index.json"
    who = owner_id(owner)
    with _save_lock:
        index = json.loads(index_path.read_text()) if index_path.is_file() else {"default": None, "models": {}}
        models = index.setdefault("models", {})
        on_disk = {p.name for p in wdir.iterdir()} if wdir.is_dir() else set()
        check_save_name(name, set(models) | on_disk | set(taken))
        limit = int(_env_number("DTCM_MAX_SAVED", 10))
        mine = [e for e in models.values() if e.get("saved_here") and e.get("saved_by", LOCAL_OWNER) == who]
        if len(mine) >= limit:
            raise StorageError(
                f"you have saved {limit} fine-tunes on this server, the limit per visitor; push to the Hub"
            )
        check_room(_size(Path(src)))
        wdir.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(dir=wdir, prefix=".saving-"))
        try:
            shutil.copytree(src, tmp_dir / "m", ignore=shutil.ignore_patterns("*.pt", "*.bin", "optimizer*"))
            models[name] = {**entry, "path": name, "saved_here": True, "saved_by": who}
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
