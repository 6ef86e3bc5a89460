"""Publishing a model folder to the Hugging Face Hub (``dtcm push DIR REPO_ID``).

The folder is checked before anything is sent: it must hold ``config.json`` and ``model.safetensors``
that load strictly into a DTCM model; a model card is written when it has none (or only the generic one
``save_pretrained`` leaves). Pickled weights, optimizer state and hidden files are never uploaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from dtcm.hub.card import is_stub_card, write_model_card
from dtcm.hub.load import CONFIG_NAME, WEIGHTS_NAME, HubError, hub_error, resolve_model

__all__ = ["IGNORE_PATTERNS", "push"]

# training leftovers that do not belong in a model repo
IGNORE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle", "optimizer*", "scheduler*", ".*", "*/.*"]


def push(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    login: bool = True,
) -> str:
    """Create (or reuse) a model repo and upload a model folder to it.

    Args:
        folder: a ``save_pretrained`` folder (``config.json`` + ``model.safetensors`` [+ ``README.md``]).
        repo_id: ``owner/name`` (or ``name`` for the logged-in user's namespace).
        private: create the repo as private (an existing repo keeps its visibility).
        token: Hub token with write access (default: ``HF_TOKEN`` or the ``hf auth login`` one).
        commit_message: the commit's message.

    Returns:
        The URL of the commit.

    Raises:
        FileNotFoundError: the folder or one of its two files is missing.
        WeightsMismatch / ValueError: the folder does not load as a DTCM model.
        HubError: offline, not logged in, no permission, or the network failed.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not login and not token:
        raise HubError(f"cannot push to {repo_id}: a token is needed (this machine's own login is not used here)")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such model folder: {folder}")
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {' and '.join(missing)}; write it with model.save_pretrained()")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(f"bad repo id {repo_id!r}: {e}") from None
    if constants.HF_HUB_OFFLINE:
        raise HubError(f"cannot push {folder} to {repo_id}: offline mode is on (HF_HUB_OFFLINE=1); unset it first")
    resolve_model(folder)  # strict load: never publish weights that do not fit their config
    if is_stub_card(folder / "README.md"):
        write_model_card(folder, repo_id=repo_id)

    from huggingface_hub import create_repo, upload_folder

    try:
        repo = create_repo(repo_id, private=private, token=token, exist_ok=True, repo_type="model")
        commit = upload_folder(
            repo_id=repo.repo_id,
            folder_path=str(folder),
            repo_type="model",
            token=token,
            commit_message=commit_message or f"Upload DTCM model from {folder.name}",
            ignore_patterns=IGNORE_PATTERNS,
        )
    except Exception as e:
        err = _push_error(e, repo_id)
        if err is None:
            raise
        raise err from None
    return str(getattr(commit, "commit_url", commit))


def _push_error(exc: Exception, repo_id: str) -> HubError | None:
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    if isinstance(exc, LocalTokenNotFoundError):
        return HubError(f"cannot push to {repo_id}: not logged in (run `hf auth login` or set HF_TOKEN)")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return HubError(f"cannot push to {repo_id}: the token is missing, invalid or has no write access ({status})")
    err = hub_error(exc, repo_id)
    if err is not None:
        return HubError(f"push failed: {err}")
    return None
