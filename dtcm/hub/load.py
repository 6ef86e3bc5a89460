"""Finding and loading weights: a local folder, a shipped variant name or a Hugging Face Hub repo id.

Every load is strict (safetensors only, every key and shape checked); a folder whose weights do not fit its
``config.json`` raises :class:`~dtcm.model.WeightsMismatch`, and a repo that cannot be had raises
:class:`HubError` with one sentence saying why. Hub repos come through ``huggingface_hub`` and its cache, so
they also load offline once cached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dtcm.config import CONFIG_NAME, WEIGHTS_NAME, DTCMConfig
from dtcm.hub.index import INDEX_NAME, default_variant, read_index, weights_dir

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "HubError", "hub_error", "quiet_hub_logging", "resolve_model"]


MISMATCH_HINT = "its model.safetensors was saved from another architecture than its config.json describes"


class HubError(OSError):
    """A model the Hub (or its local cache) cannot give, or a push it cannot take; the message says why."""


def resolve_model(
    spec: str | os.PathLike | None = None,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    map_location: str = "cpu",
):
    """Load a DTCM model from a folder, a shipped variant name or a Hub repo id, strictly.

    The spec is tried in this order: an existing folder, a name in the weights index, a Hub repo id.

    Args:
        spec: folder, variant name or ``owner/name``; None loads the index's default variant.
        revision: branch, tag or commit of a Hub repo (Hub repo ids only).
        cache_dir: Hugging Face cache folder (default: huggingface_hub's, ``$HF_HUB_CACHE``).
        token: Hub token for private repos (default: the logged-in one).
        local_files_only: never touch the network, use the cache only.
        map_location: device the weights are loaded to.

    Returns:
        The model in eval mode.

    Raises:
        HubError: a repo that is not on the Hub, not cached while offline, or a network failure.
        WeightsMismatch: weights that do not fit the architecture of their ``config.json``.
        FileNotFoundError: a folder without ``config.json`` / ``model.safetensors``.
        ValueError: a spec that is none of the three, or a config that is not a DTCM config.
    """
    from dtcm.model import DTCM, WeightsMismatch

    if spec is None or str(spec).strip() == "":
        name = default_variant()
        if name is None:
            raise ValueError(
                f"no model given and no shipped weights ({weights_dir() / INDEX_NAME} is absent); "
                "pass a folder, a Hub repo id or a variant name"
            )
        spec = name
    spec = str(spec)
    folder = _local_folder(spec)
    if folder is not None:
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repo ids only, but {spec!r} is a local folder")
        _check_folder(folder)
        _read_config(folder / CONFIG_NAME, source=str(folder))
        try:
            return DTCM.from_pretrained(str(folder), map_location=map_location).eval()
        except WeightsMismatch as e:
            raise WeightsMismatch(f"{e}; {MISMATCH_HINT}") from None

    repo_id = _as_repo_id(spec)
    where = f"{repo_id}@{revision}" if revision else repo_id
    kwargs = dict(revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only)
    from huggingface_hub import hf_hub_download

    try:
        config_file = hf_hub_download(repo_id=repo_id, filename=CONFIG_NAME, **kwargs)
    except Exception as e:
        _raise_hub_error(e, where, CONFIG_NAME, cache_dir)
    _read_config(Path(config_file), source=where)
    try:
        model = DTCM.from_pretrained(repo_id, map_location=map_location, **kwargs)
    except WeightsMismatch as e:
        raise WeightsMismatch(f"{e}; {MISMATCH_HINT}") from None
    except Exception as e:
        _raise_hub_error(e, where, WEIGHTS_NAME, cache_dir)
    return model.eval()


def _local_folder(spec: str) -> Path | None:
    """The folder a spec names (an existing folder or a shipped variant), None for a repo id; may raise."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    index = read_index()
    if spec in index["models"]:
        folder = Path(index["models"][spec]["path"])
        if not folder.is_dir():
            raise FileNotFoundError(f"shipped variant {spec!r} points to {folder}, which is not a folder")
        return folder
    if path.is_file():
        raise ValueError(f"{spec} is a file; pass the folder holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    looks_like_path = path.is_absolute() or spec.startswith((".", "~")) or spec.endswith(("/", os.sep))
    if looks_like_path or spec.count("/") > 1 or (os.sep != "/" and os.sep in spec):
        raise FileNotFoundError(f"no such model folder: {spec}")
    return None


def _as_repo_id(spec: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    names = list(read_index()["models"])
    known = f"; shipped variants: {', '.join(names)}" if names else ""
    if "/" not in spec:
        raise ValueError(f"unknown model {spec!r}: not a folder, not a shipped variant, not a Hub id owner/name{known}")
    try:
        validate_repo_id(spec)
    except HFValidationError:
        raise ValueError(f"{spec!r} is neither a folder nor a valid Hub repo id (owner/name){known}") from None
    return spec


def _check_folder(folder: Path) -> None:
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir())[:8]
        hint = (
            " (pickled .bin/.pt weights are not loaded; re-save with save_pretrained)"
            if any(n.endswith((".bin", ".pt", ".pth")) for n in present)
            else ""
        )
        raise FileNotFoundError(
            f"{folder} is not a DTCM model folder: it lacks {' and '.join(missing)} "
            f"(it holds: {', '.join(present) or 'nothing'}){hint}"
        )


def _read_config(path: Path, source: str) -> DTCMConfig:
    """Parse and validate a config.json, so a non-DTCM repo fails before any weights are built."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{source}: {CONFIG_NAME} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or "backbone" not in data:
        raise ValueError(f"{source} is not a DTCM model: its {CONFIG_NAME} has no 'backbone'")
    try:
        return DTCMConfig.from_dict(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: bad {CONFIG_NAME}: {e}") from None


def _raise_hub_error(exc: Exception, where: str, filename: str, cache_dir) -> None:
    """Re-raise a huggingface_hub or network exception as one HubError sentence; anything else unchanged."""
    err = hub_error(exc, where, filename, cache_dir)
    if err is None:
        raise exc
    raise err from None


def hub_error(exc: Exception, where: str, filename: str = WEIGHTS_NAME, cache_dir=None) -> HubError | None:
    """The HubError that explains a huggingface_hub or network exception, or None for any other exception."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = cache_dir or constants.HF_HUB_CACHE
    if constants.HF_HUB_OFFLINE:
        why = "offline mode is on (HF_HUB_OFFLINE=1)"
    else:
        why = "the Hub cannot be reached"
    if isinstance(exc, GatedRepoError):
        return HubError(f"{where} is gated: accept its terms on huggingface.co and log in (hf auth login)")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(
            f"no model repo {where} on the Hub (if it is private, log in with `hf auth login` or set HF_TOKEN)"
        )
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"{where}: the repo has no such revision")
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return HubError(
            f"{where} is not in the local Hugging Face cache ({cache}) and {why}; "
            "download it once with network access, or pass a local folder or a shipped variant name"
        )
    if isinstance(exc, EntryNotFoundError):
        return HubError(f"{where} has no {filename}; a DTCM repo holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    if isinstance(exc, HfHubHTTPError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return HubError(f"the Hub refused {where}: {first}")
    if _is_network_error(exc):
        return HubError(f"{where}: {why} ({type(exc).__name__}: {exc})")
    return None


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(c.__module__.split(".")[0] in ("httpx", "httpx2", "requests", "urllib3") for c in type(exc).__mro__)


def quiet_hub_logging() -> None:
    """Keep huggingface_hub's retry warnings off a CLI's stderr, where an error is one line."""
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
