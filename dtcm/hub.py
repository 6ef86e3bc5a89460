"""Finding and loading weights (a Hub repo, a local folder or a shipped variant), model cards, prediction.

Three kinds of model spec resolve to a loaded :class:`~dtcm.model.DTCM`:

* a folder written by ``save_pretrained`` (``config.json`` + ``model.safetensors``);
* a name from the shipped weights index (``weights/index.json``, see :func:`read_index`);
* a Hugging Face Hub repo id ``owner/name`` (with an optional revision), fetched through
  ``huggingface_hub`` and its cache, so it also works offline once cached.

Every load is strict (safetensors only, every key and shape checked); a folder whose weights do not
fit its ``config.json`` raises :class:`~dtcm.model.WeightsMismatch`, and a repo that cannot be had
raises :class:`HubError` with one sentence saying why.

Example:
    >>> from dtcm.hub import resolve_model, predict
    >>> model = resolve_model("me/dtcm-mobilenetv2-synth")      # or a folder, or a shipped name
    >>> predict(model, "clip.mp4")[:2]
    [('Drink', 0.61), ('Pour', 0.17)]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dtcm.config import DTCMConfig

__all__ = [
    "HubError",
    "MODEL_CARD_CITATION",
    "default_variant",
    "hub_error",
    "is_stub_card",
    "list_variants",
    "load_clip",
    "predict",
    "quiet_hub_logging",
    "read_index",
    "recognise",
    "resolve_model",
    "weights_dir",
    "write_model_card",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "index.json"
WEIGHTS_ENV = "DTCM_WEIGHTS_DIR"

MODEL_CARD_CITATION = """@article{tu2023dtcm,
  title   = {DTCM: Joint Optimization of Dark Enhancement and Action Recognition in Videos},
  author  = {Tu, Zhigang and Liu, Yuanzhong and Zhang, Yan and Mu, Qizi and Yuan, Junsong},
  journal = {IEEE Transactions on Image Processing},
  volume  = {32},
  year    = {2023}
}"""

MISMATCH_HINT = "its model.safetensors was saved from another architecture than its config.json describes"
# The text huggingface_hub's mixin writes as README.md on save_pretrained; such a card is replaced.
_STUB_CARD_MARK = "This model has been pushed to the Hub using the [PytorchModelHubMixin]"


class HubError(OSError):
    """A model the Hub (or its local cache) cannot give, or a push it cannot take; the message says why."""


# ------------------------------------------------------------------------------------ shipped index
def weights_dir() -> Path:
    """The folder of shipped variants: ``$DTCM_WEIGHTS_DIR`` if set, else ``weights/`` beside the package."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "weights"


def read_index(folder: str | os.PathLike | None = None) -> dict:
    """Read and check the shipped weights index.

    The index is ``<weights dir>/index.json``::

        {
          "default": "dtcm_mobilenetv2_synth",
          "models": {
            "dtcm_mobilenetv2_synth": {
              "path": "weights/dtcm_mobilenetv2_synth",   # or "dtcm_mobilenetv2_synth"
              "description": "3D-MobileNetV2 + LightDCE, one-stage L_total, DarkActions-synth",
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
        out[name] = {**entry, "path": str(_variant_folder(folder, entry["path"]))}
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

    Example:
        >>> list(list_variants())
        ['dtcm_mobilenetv2_synth', 'dtcm_mobilenetv2_synth_wstc0']
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


# ------------------------------------------------------------------------------------------ loading
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

    Example:
        >>> model = resolve_model("me/dtcm-tiny", revision="main")
        >>> model = resolve_model("weights/dtcm_mobilenetv2_synth")
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


# ------------------------------------------------------------------------------------------ predict
def load_clip(config: DTCMConfig, clip: str | os.PathLike | np.ndarray):
    """One test clip as the model wants it: the dense centred window of ``clip_len`` frames, centre crop.

    Args:
        config: the model's config (clip_len, short_side, crop_size).
        clip: a video file, or decoded uint8 frames (N, H, W, 3) RGB.

    Returns:
        float32 tensor (1, 3, clip_len, crop, crop) on [0, 1].
    """
    from dtcm import video

    if isinstance(clip, np.ndarray):
        frames = np.asarray(clip)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"frames must be non-empty uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
        n = len(frames)
        start = max(n - config.clip_len, 0) // 2  # centred window, looped when the clip is short
        frames = frames[(start + np.arange(config.clip_len)) % n]
    else:
        path = Path(clip)
        if not path.is_file():
            raise FileNotFoundError(f"no such clip: {clip}")
        frames = video.read_clip(str(path), config.clip_len, sampling="dense", size=config.short_side)
    transform = video.ClipTransform(short_side=config.short_side, crop=config.crop_size, train=False)
    return transform(frames).unsqueeze(0)  # (1, 3, T, crop, crop)


def predict(
    model, clip: str | os.PathLike | np.ndarray, k: int | None = None, topk: int = 5
) -> list[tuple[str, float]]:
    """Top-k actions of one clip (1-clip centre-crop, as SPEC A7 tests), with calibrated probabilities.

    Args:
        model: a DTCM model (its config says clip_len, short_side, crop, the class names and the temperature).
        clip: a video file or uint8 frames (N, H, W, 3).
        k: frame-sharing factor; default the model's.
        topk: how many classes to return (at most the number of classes).

    Returns:
        ``[(class_name, probability), ...]``, most likely first; probabilities are
        ``softmax(logits / config.temperature)``.

    Example:
        >>> predict(resolve_model(), "dark_clip.mp4", k=4)[0]
        ('Walk', 0.87)
    """
    return recognise(model, clip, k=k, topk=topk)["top"]


def recognise(model, clip: str | os.PathLike | np.ndarray, k: int | None = None, topk: int = 5) -> dict:
    """:func:`predict` and whether the model can answer: ``{"top": [(label, prob)], "verdict": {...}}``.

    The verdict is :func:`dtcm.calibration.verdict`'s ``{"sure": bool, "reason": str, ...}``.

    Example:
        >>> r = recognise(resolve_model(), "dark_clip.mp4")
        >>> r["verdict"]["sure"], r["top"][0]
        (False, ('Pour', 0.31))
    """
    from dtcm.calibration import verdict
    from dtcm.device import infer

    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    config = model.config
    x = load_clip(config, clip)
    model.eval()
    logits = infer(model, x, k=k)[0]  # (C,) float32 logits on the CPU
    probs = (logits / config.temperature).softmax(-1)
    values, indices = probs.topk(min(topk, probs.numel()))
    top = [(config.class_names[i], float(p)) for p, i in zip(values.tolist(), indices.tolist(), strict=True)]
    return {"top": top, "verdict": verdict(logits.numpy(), config)}


# --------------------------------------------------------------------------------------- model card
def write_model_card(
    folder: str | os.PathLike,
    metrics: Mapping | None = None,
    data: str | None = None,
    settings: Mapping | None = None,
    limitations: str | Sequence[str] | None = None,
    *,
    model_name: str | None = None,
    repo_id: str | None = None,
):
    """Write ``README.md`` (a Hub model card) into a model folder, from its ``config.json`` and what is given.

    Args:
        folder: a ``save_pretrained`` folder (``config.json`` is read for architecture and preprocessing).
        metrics: evaluation results, e.g. :func:`dtcm.evaluate.evaluate`'s dict (``top1``, ``top5`` as
            fractions, ``n``, ``per_class``); other scalar entries are listed as they are.
        data: the training / evaluation data, e.g. ``"DarkActions-synth (seed 0)"``, ``"ARID v1.5 split 1"``.
            A name with "synth" in it is stated to be synthetic data; one that also says "real clips" is stated to
            be partly synthetic.
        settings: training settings (setting, alpha, w_stc, k, epochs, lr, batch size, init ...).
        limitations: sentences for the limitations section (default: the general ones).
        model_name: the card's title (default: the repo's or the folder's name).
        repo_id: the Hub repo the folder goes to, for the usage lines (default ``OWNER/<model_name>``).

    Returns:
        The ``huggingface_hub.ModelCard`` written.

    Example:
        >>> write_model_card("weights/dtcm_tiny", metrics={"top1": 0.8, "top5": 1.0, "n": 40},
        ...                  data="DarkActions-synth", settings={"setting": "one-stage L_total", "epochs": 5})
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    folder = Path(folder)
    config = _read_config(folder / CONFIG_NAME, source=str(folder))
    name = model_name or (repo_id.split("/")[-1] if repo_id else folder.resolve().name)
    synthetic = bool(data) and "synth" in data.lower()
    partly = synthetic and "real clips" in data.lower()  # synthetic and real clips together
    tags = ["video-classification", "action-recognition", "low-light", "dark-video", "dtcm", "pytorch_model_hub_mixin"]
    if synthetic:
        tags.append("synthetic-data")
    eval_results = None
    if metrics and data and metrics.get("top1") is not None:
        dataset_type = re.sub(r"[^a-z0-9]+", "-", data.split("(")[0].strip().lower()).strip("-") or "custom"
        eval_results = [
            EvalResult(
                task_type="video-classification",
                dataset_type=dataset_type,
                dataset_name=data,
                metric_type="accuracy",
                metric_value=round(float(metrics[key]) * 100, 2),
                metric_name=label,
            )
            for key, label in (("top1", "Top-1 accuracy (%)"), ("top5", "Top-5 accuracy (%)"))
            if metrics.get(key) is not None
        ]
    card_data = ModelCardData(
        library_name="dtcm",
        license="mit",
        pipeline_tag="video-classification",
        tags=tags,
        metrics=["accuracy"] if metrics else None,
        model_name=name if eval_results else None,
        eval_results=eval_results,
    )
    body = _card_body(name, repo_id or f"OWNER/{name}", config, metrics, data, synthetic, partly, settings, limitations)
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")
    card.save(folder / "README.md")
    return card


def _card_body(name, repo_id, config, metrics, data, synthetic, partly, settings, limitations) -> str:
    enhancer = {"lightdce": "LightDCE (the paper's)", "zerodce": "Zero-DCE", "none": "none"}[config.enhancer]
    backbone = config.backbone + (f" (width x{config.width_mult})" if config.width_mult != 1.0 else "")
    lines = [
        f"# {name}",
        "",
        "A DTCM model (Dark Temporal Consistency Model, Tu et al., IEEE TIP 2023) for action recognition in dark "
        "videos: a curve-estimation light enhancer cascaded with a 3D-CNN classifier and trained as one network.",
        "",
        "| | |",
        "|---|---|",
        f"| classifier | {backbone} |",
        f"| enhancer | {enhancer} |",
        f"| frame sharing k | {config.k} (one curve estimate per {config.k} frames) |",
        f"| loss weights | alpha = {config.alpha}, W_STC = {config.w_stc} |",
        f"| input | {config.clip_len} consecutive frames, short side {config.short_side}, "
        f"{config.crop_size}x{config.crop_size} crop, RGB on [0, 1] |",
        f"| classes ({config.num_classes}) | {', '.join(config.class_names)} |",
        "",
        "## Usage",
        "",
        "```python",
        "from dtcm.hub import resolve_model, predict",
        "",
        f'model = resolve_model("{repo_id}")  # or DTCM.from_pretrained(...)',
        'print(predict(model, "clip.mp4"))  # Top-5 (class, probability)',
        "```",
        "",
        f"Command line: `dtcm predict clip.mp4 --model {repo_id}`; `dtcm enhance clip.mp4 out.mp4 --model {repo_id}`.",
        "",
        "## Data",
        "",
        data or "Not stated.",
    ]
    if synthetic:
        lines += [
            "",
            ("**This is partly synthetic data.** " if partly else "**This is synthetic data.** ")
            + "DarkActions-synth is rendered procedurally (articulated 3D figures acting "
            "ARID's 11 actions over real background footage) and darkened by a low-light camera model (exposure, shot "
            "and read noise, colour cast, 8-bit H.264). It is not ARID or any real dark-video dataset, and accuracy on "
            "it says little about accuracy on real dark footage.",
        ]
    lines += ["", "## Training settings", ""]
    if settings:
        lines += ["| setting | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in settings.items()]
    else:
        lines.append("Not stated.")
    lines += ["", "## Evaluation", ""]
    if metrics:
        lines += [
            f"1-clip centre-crop ({config.clip_len} frames, {config.crop_size}x{config.crop_size}), as in the paper."
            + (f" Data: {data}." if data else ""),
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for key, value in metrics.items():
            if key in ("top1", "top5") and value is not None:
                lines.append(f"| {'Top-1' if key == 'top1' else 'Top-5'} accuracy | {100 * float(value):.2f}% |")
            elif isinstance(value, int | float | str) and not isinstance(value, bool):
                lines.append(f"| {key} | {value} |")
        per_class = metrics.get("per_class")
        if isinstance(per_class, Mapping) and per_class:
            lines += ["", "| class | accuracy |", "|---|---|"]
            lines += [f"| {c} | {'n/a' if a is None else f'{100 * float(a):.1f}%'} |" for c, a in per_class.items()]
    else:
        lines.append("Not evaluated.")
    if limitations is None:
        limitations = [
            "Trained and tested on short clips of a fixed set of actions; anything else is mapped to one of them.",
            "The enhancer is tuned for recognition, not for viewing; enhanced frames can look noisy or tinted.",
            "Accuracy depends on how close the footage is to the training data in darkness, noise and viewpoint.",
        ]
    elif isinstance(limitations, str):
        limitations = [limitations]
    if synthetic and not partly:
        limitations = [*limitations, "Trained on synthetic clips only: expect lower accuracy on real dark videos."]
    lines += ["", "## Limitations", ""] + [f"- {s}" for s in limitations]
    lines += [
        "",
        "## Citation",
        "",
        "Tu, Liu, Zhang, Mu and Yuan, *DTCM: Joint Optimization of Dark Enhancement and Action Recognition in "
        "Videos*, IEEE Transactions on Image Processing, 2023.",
        "",
        "```bibtex",
        MODEL_CARD_CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)


def is_stub_card(path: str | os.PathLike) -> bool:
    """True when ``path`` is absent or holds only the generic card ``save_pretrained`` writes."""
    path = Path(path)
    return not path.is_file() or _STUB_CARD_MARK in path.read_text(encoding="utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------ CLI
def quiet_hub_logging() -> None:
    """Keep huggingface_hub's retry warnings off a CLI's stderr, where an error is one line."""
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def add_cli_arguments(parser) -> None:
    parser.add_argument("clip", help="video file (mp4, avi, mov, mkv, webm)")
    parser.add_argument("--model", default=None, help="Hub repo id, model folder or shipped variant (default: shipped)")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub repo")
    parser.add_argument("--k", type=int, default=None, help="frame-sharing factor (default: the model's)")
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print (default 5)")
    parser.add_argument("--json", action="store_true", help='print [{"label": ..., "prob": ...}, ...]')


def cli_model(clip: str | os.PathLike, model: str | None, revision: str | None, k: int | None):
    """What the clip commands (``predict``, ``enhance``) share: check the clip and ``--k``, then load the model
    (on the device of :mod:`dtcm.device`) with huggingface_hub's retry warnings kept off stderr."""
    if not Path(clip).is_file():
        raise FileNotFoundError(f"no such clip: {clip}")
    if k is not None and k < 1:
        raise ValueError(f"--k must be >= 1, got {k}")
    quiet_hub_logging()
    from dtcm.device import to_device

    return to_device(resolve_model(model, revision=revision))


def cli_main(args) -> int:
    model = cli_model(args.clip, args.model, args.revision, args.k)
    result = recognise(model, args.clip, k=args.k, topk=args.topk)
    top, verdict = result["top"], result["verdict"]
    if args.json:
        print(json.dumps([{"label": label, "prob": round(p, 6)} for label, p in top]))
        return 0
    if not verdict["sure"]:
        print(f"not sure: {verdict['reason']}")
        print("guesses:")
    width = max(len(label) for label, _ in top)
    for rank, (label, p) in enumerate(top, 1):
        print(f"{rank}. {label:<{width}}  {100 * p:6.2f}%")
    return 0
