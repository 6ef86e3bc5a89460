"""SHA-256 checksums written beside saved files (checkpoints, model folders) and checked before they are read.

``checksums.sha256`` holds one ``<sha256>  <relative path>`` line per file, the format ``sha256sum -c``
reads. A folder without it (written before checksums existed) still loads; a truncated, altered or
unparsable file raises :class:`DamagedFile` with one sentence naming it.

Example:
    >>> import tempfile; from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp()); _ = (folder / "model.safetensors").write_bytes(b"weights")
    >>> write_checksums(folder).name                # every file below the folder
    'checksums.sha256'
    >>> verify_checksums(folder)                    # True, or DamagedFile naming the file
    True
    >>> _ = (folder / "model.safetensors").write_bytes(b"changed")
    >>> verify_checksums(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    dtcm.checksums.DamagedFile: ...
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["CHECKSUMS_NAME", "DamagedFile", "load_safetensors", "read_json", "verify_checksums", "write_checksums"]

CHECKSUMS_NAME = "checksums.sha256"


class DamagedFile(ValueError):
    """A saved file that is truncated, altered or unreadable; the message names it."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(folder: str | os.PathLike, names: list[str] | None = None) -> Path:
    """Write ``folder/checksums.sha256`` for ``names`` (paths relative to ``folder``; default every file)."""
    folder = Path(folder)
    if names is None:
        names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    names = [n for n in names if n != CHECKSUMS_NAME]
    path = folder / CHECKSUMS_NAME
    path.write_text("".join(f"{_sha256(folder / n)}  {n}\n" for n in names))
    return path


def verify_checksums(folder: str | os.PathLike) -> bool:
    """Check every file ``checksums.sha256`` lists; False when the folder has none (nothing to check).

    Raises:
        DamagedFile: a listed file is missing or its bytes changed, or the checksum file is unreadable.
    """
    folder = Path(folder)
    path = folder / CHECKSUMS_NAME
    if not path.is_file():
        return False
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DamagedFile(f"{path} is damaged: line {n} is not '<sha256>  <file>'")
        target = folder / name
        if not target.is_file():
            raise DamagedFile(f"{folder} is damaged: {name} is missing")
        if _sha256(target) != digest:
            raise DamagedFile(f"{folder} is damaged: {name} does not match its checksum (truncated or altered)")
    return True


def read_json(path: str | os.PathLike):
    """``json.loads`` of a file, naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedFile(f"{path} is not valid JSON ({e})") from None


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict:
    """``safetensors.torch.load_file``, naming the file when it is truncated or not safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=device)
    except SafetensorError as e:
        raise DamagedFile(f"{path} is damaged or not a safetensors file ({e})") from None
