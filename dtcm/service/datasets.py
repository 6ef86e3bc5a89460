"""What a fine-tune may train on: the small synthetic set, server folders, and a visitor's own uploaded zips.

An upload is unpacked into that visitor's folder and named back to them as ``upload:NAME``; only the same
visitor key reaches it, trains on it, and has it removed when their job ends.
"""

from __future__ import annotations

import os
from pathlib import Path

from dtcm.checks import LIST_SUFFIXES
from dtcm.service.inputs import ServiceError, check_path, storage_call
from dtcm.service.server import check_writes, manager
from dtcm.service.ui import ACTIVE_JOB_STATES, VIDEO_SUFFIXES, VIDEO_TYPES

__all__ = [
    "DATA_ROOT_ENV",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_FILES",
    "SYNTHETIC_SMALL",
    "UPLOAD_PREFIX",
    "finetune_datasets",
    "prepare_dataset_upload",
]

SYNTHETIC_SMALL = "synthetic:small"  # a small DarkActions-synth set, rendered on first use
SYNTHETIC_SMALL_PER_CLASS = 5  # clips per action of that set
SYNTHETIC_SMALL_SEED = 20261128
DATA_ROOT_ENV = "DTCM_DATA_ROOT"  # server folders a fine-tune may read from live under this root
MAX_ZIP_BYTES = 2 << 30  # an uploaded dataset may unpack to at most this many bytes
MAX_ZIP_FILES = 20_000
UPLOAD_PREFIX = "upload:"  # a visitor's unpacked zip, named inside their own uploads folder
_DATA_SUFFIXES = (*VIDEO_SUFFIXES, ".m4v", *LIST_SUFFIXES, ".jpg", ".jpeg", ".png")  # clips, lists, raw frames


def _data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, Path(__file__).resolve().parents[2] / "data")).resolve()


def _uploads(owner: str | None = None) -> Path:
    """The visitor's own folder of unpacked uploads."""
    from dtcm import storage

    return storage.visitor_uploads(owner).resolve()


def finetune_datasets() -> dict[str, str]:
    """Datasets a fine-tune can use: label -> spec (``synthetic:small`` or a folder under the data root)."""
    out = {"DarkActions-synth, small (rendered on first use)": SYNTHETIC_SMALL}
    root = _data_root()
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if any(d.glob("*split*.txt")) or any(d.glob("*/*.mp4")) or any(d.glob("*/*.avi")):
                out[f"{d.name} (server folder)"] = str(d)
    return out


def check_dataset(spec: str, owner: str | None = None) -> str:
    """The dataset folder a spec names, if it is one this visitor may train on (rendering waits for the worker).

    A spec is ``synthetic:small``, a folder under the data root, or ``upload:NAME`` (what
    ``prepare_dataset_upload`` returned to this visitor). An upload is reachable only by the visitor who
    uploaded it; the folder of every upload is never a dataset itself. Errors name no server folder.
    """
    from dtcm import storage

    if spec == SYNTHETIC_SMALL:
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ServiceError("choose a dataset to fine-tune on, or upload a zip of class folders")
    mine = _uploads(owner)
    if spec.startswith(UPLOAD_PREFIX):
        path = (mine / spec[len(UPLOAD_PREFIX) :]).resolve()
        ok = path.is_relative_to(mine) and path != mine
    else:
        path = Path(spec).resolve()
        every_upload = (storage.cache_root() / "uploads").resolve()  # the uploads of every app and visitor
        if path.is_relative_to(every_upload):
            ok = path.is_relative_to(mine) and path != mine
        else:
            ok = path.is_relative_to(_data_root())
    shown = storage.public_text(spec)  # the visitor's own words, with any server folder in them shortened
    if not ok:
        raise ServiceError(
            f"the dataset folder {shown!r} is outside the allowed roots: choose a prepared dataset, or one you uploaded"
        )
    if not path.exists():
        raise ServiceError(f"the dataset {shown!r} does not exist (an upload is kept for 30 minutes; upload it again)")
    return str(path)


def resolve_dataset(spec: str, owner: str | None = None) -> str:
    """The folder or list to train on: checked, and the synthetic set rendered when it is asked for."""
    spec = check_dataset(spec, owner)
    if spec == SYNTHETIC_SMALL:
        from dtcm import storage
        from dtcm.data.synthetic import make_synthetic

        folder = storage.cache_root() / "synth-small"
        if not (folder / "split1_train.txt").is_file():
            make_synthetic(folder, per_class=SYNTHETIC_SMALL_PER_CLASS, seed=SYNTHETIC_SMALL_SEED)
        return str(folder)
    return spec


def prepared_data(spec: str, val_spec: str | None, owner: str | None = None) -> dict:
    """Run in the training worker: render or check the dataset, then train on it."""
    data = resolve_dataset(spec, owner)
    return {
        "data": data,
        "data_root": data if Path(data).is_dir() else str(Path(data).parent),  # its lists name files inside it
        "val_data": resolve_dataset(val_spec, owner) if val_spec else data,
    }


def dataset_label(spec: str, owner: str | None = None) -> str:
    """How a visitor's dataset is named back to them (no server paths)."""
    if spec == SYNTHETIC_SMALL:
        return "DarkActions-synth, small"
    path = Path(spec)
    return f"{path.name} (uploaded)" if path.resolve().is_relative_to(_uploads(owner)) else path.name


def forget_upload(dataset: str | None, owner: str | None = None) -> None:
    """Remove ``owner``'s uploaded dataset once their fine-tune is done with it; server folders and other
    visitors' uploads stay."""
    from dtcm import storage

    if dataset and dataset != SYNTHETIC_SMALL:
        storage.remove_upload(dataset, owner)


def _datasets_in_use() -> set[Path]:
    jobs = manager()
    with jobs.lock:
        live = [j for j in jobs.jobs.values() if j.state in ACTIVE_JOB_STATES]
    return {Path(j.args["_dataset"]) for j in live if j.args.get("_dataset") not in (None, SYNTHETIC_SMALL)}


# ------------------------------------------------------------------------------------------ uploads
def prepare_dataset_upload(zip_path, owner: str | None = None) -> str:
    """Unpack an uploaded zip of class folders (or ARID/Dark-48 lists with their videos) safely.

    Refuses absolute paths, ``..``, links, non-media files, archives that unpack beyond ``MAX_ZIP_BYTES``
    or ``MAX_ZIP_FILES``, and any that would take the visitor past ``DTCM_UPLOAD_GB_PER_VISITOR`` or the
    server past its disk budget. The upload lands in the visitor's own folder (``owner``: their key), so an
    identical zip from another visitor is a separate copy. Unused uploads are removed after
    ``DTCM_UPLOAD_TTL_S``; a used one when its fine-tune ends.

    Returns:
        The dataset spec for ``start_finetune`` with the same ``owner``: ``"upload:NAME"``, no server path.

    Example:
        ``spec = prepare_dataset_upload("clips.zip", owner=key)``, then ``start_finetune(spec, owner=key)``.
    """
    import hashlib
    import zipfile

    from dtcm import storage

    check_writes()
    zip_path = check_path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise ServiceError("the dataset upload is not a zip archive: zip a folder with one sub-folder per class")
    storage_call(storage.sweep, _datasets_in_use())
    digest = hashlib.sha256(Path(zip_path).read_bytes()).hexdigest()[:16]
    mine = storage.visitor_uploads(owner)
    mine.mkdir(parents=True, exist_ok=True)
    dest = (mine / digest).resolve()
    with zipfile.ZipFile(zip_path) as zf:
        keep = _media_members(zf, dest)
        if not dest.is_dir():
            _unpack(zf, keep, dest, owner)
        os.utime(dest)  # a fresh upload of the same zip restarts its time
    # a single top-level folder is the dataset itself
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and not any(entries[0].glob("*.mp4")):
        return f"{UPLOAD_PREFIX}{digest}/{entries[0].name}"
    return f"{UPLOAD_PREFIX}{digest}"


def _media_members(zf, dest: Path) -> list:
    """The zip's clips, lists and frames, after refusing it whole if it is too large or names an unsafe path."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_FILES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
        raise ServiceError(f"the zip is too large: at most {MAX_ZIP_FILES} files and {MAX_ZIP_BYTES >> 30} GB")
    keep = []
    for info in infos:
        name = info.filename
        target = (dest / name).resolve()
        if name.startswith(("/", "\\")) or not target.is_relative_to(dest) or (info.external_attr >> 28) == 0xA:
            raise ServiceError(f"the zip holds an unsafe path {name!r}; only relative paths inside it are accepted")
        if Path(name).suffix.lower() in _DATA_SUFFIXES and "__MACOSX" not in name:
            keep.append(info)
    if not keep:
        raise ServiceError(f"the zip holds no videos: put one folder per class with {'/'.join(VIDEO_TYPES)} files")
    return keep


def _unpack(zf, keep: list, dest: Path, owner: str | None) -> None:
    """Extract ``keep`` into a partial folder within the visitor's and the server's budget, then move it to
    ``dest`` at once."""
    import shutil

    from dtcm import storage

    size = sum(i.file_size for i in keep)
    storage_call(storage.check_visitor_room, owner, size)
    storage_call(storage.check_room, size)
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        for info in keep:
            zf.extract(info, partial)
        os.replace(partial, dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
