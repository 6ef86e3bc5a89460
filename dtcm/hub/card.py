"""Model cards: the ``README.md`` a model folder carries to the Hub, written from its ``config.json``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from dtcm.hub.load import CONFIG_NAME, _read_config

__all__ = ["MODEL_CARD_CITATION", "is_stub_card", "write_model_card"]

MODEL_CARD_CITATION = """@article{tu2023dtcm,
  title   = {DTCM: Joint Optimization of Dark Enhancement and Action Recognition in Videos},
  author  = {Tu, Zhigang and Liu, Yuanzhong and Zhang, Yan and Mu, Qizi and Yuan, Junsong},
  journal = {IEEE Transactions on Image Processing},
  volume  = {32},
  year    = {2023}
}"""
# The text huggingface_hub's mixin writes as README.md on save_pretrained; such a card is replaced.
_STUB_CARD_MARK = "This model has been pushed to the Hub using the [PytorchModelHubMixin]"
CITATION_TEXT = (
    "Tu, Liu, Zhang, Mu and Yuan, *DTCM: Joint Optimization of Dark Enhancement and Action Recognition in "
    "Videos*, IEEE Transactions on Image Processing, 2023."
)
DEFAULT_LIMITATIONS = (
    "Trained and tested on short clips of a fixed set of actions; anything else is mapped to one of them.",
    "The enhancer is tuned for recognition, not for viewing; enhanced frames can look noisy or tinted.",
    "Accuracy depends on how close the footage is to the training data in darkness, noise and viewpoint.",
)


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
    """
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    config = _read_config(folder / CONFIG_NAME, source=str(folder))
    name = model_name or (repo_id.split("/")[-1] if repo_id else folder.resolve().name)
    synthetic = bool(data) and "synth" in data.lower()
    partly = synthetic and "real clips" in data.lower()  # synthetic and real clips together
    tags = ["video-classification", "action-recognition", "low-light", "dark-video", "dtcm", "pytorch_model_hub_mixin"]
    if synthetic:
        tags.append("synthetic-data")
    eval_results = _eval_results(metrics, data)
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


def _eval_results(metrics: Mapping | None, data: str | None) -> list | None:
    """The card's machine-readable Top-1 / Top-5 (in %), when both metrics and their data are given."""
    from huggingface_hub import EvalResult

    if not (metrics and data and metrics.get("top1") is not None):
        return None
    dataset_type = re.sub(r"[^a-z0-9]+", "-", data.split("(")[0].strip().lower()).strip("-") or "custom"
    return [
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


def _card_body(name, repo_id, config, metrics, data, synthetic, partly, settings, limitations) -> str:
    lines = [*_summary_lines(name, repo_id, config), "", "## Data", "", data or "Not stated."]
    if synthetic:
        lines += ["", _synthetic_note(partly)]
    lines += ["", "## Training settings", ""]
    if settings:
        lines += ["| setting | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in settings.items()]
    else:
        lines.append("Not stated.")
    lines += ["", "## Evaluation", "", *(_evaluation_lines(config, metrics, data) if metrics else ["Not evaluated."])]
    lines += ["", "## Limitations", ""] + [f"- {s}" for s in _limitations(limitations, synthetic, partly)]
    lines += ["", "## Citation", "", CITATION_TEXT, "", "```bibtex", MODEL_CARD_CITATION, "```", ""]
    return "\n".join(lines)


def _summary_lines(name, repo_id, config) -> list[str]:
    """The title, what a DTCM model is, its architecture and input table, and how to run it."""
    enhancer = {"lightdce": "LightDCE (the paper's)", "zerodce": "Zero-DCE", "none": "none"}[config.enhancer]
    backbone = config.backbone + (f" (width x{config.width_mult})" if config.width_mult != 1.0 else "")
    return [
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
    ]


def _synthetic_note(partly: bool) -> str:
    return (
        ("**This is partly synthetic data.** " if partly else "**This is synthetic data.** ")
        + "DarkActions-synth is rendered procedurally (articulated 3D figures acting "
        "ARID's 11 actions over real background footage) and darkened by a low-light camera model (exposure, shot "
        "and read noise, colour cast, 8-bit H.264). It is not ARID or any real dark-video dataset, and accuracy on "
        "it says little about accuracy on real dark footage."
    )


def _evaluation_lines(config, metrics: Mapping, data: str | None) -> list[str]:
    """The protocol, a metric table (accuracies in %, other scalars as they are) and per-class accuracy."""
    lines = [
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
    return lines


def _limitations(limitations, synthetic: bool, partly: bool) -> list[str]:
    if limitations is None:
        limitations = DEFAULT_LIMITATIONS
    elif isinstance(limitations, str):
        limitations = [limitations]
    if synthetic and not partly:
        limitations = [*limitations, "Trained on synthetic clips only: expect lower accuracy on real dark videos."]
    return list(limitations)


def is_stub_card(path: str | os.PathLike) -> bool:
    """True when ``path`` is absent or holds only the generic card ``save_pretrained`` writes."""
    path = Path(path)
    return not path.is_file() or _STUB_CARD_MARK in path.read_text(encoding="utf-8", errors="replace")
