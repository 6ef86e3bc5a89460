"""Testing a model on a labelled split: 1-clip centre-crop Top-1 / Top-5 (SPEC A7), per class, confusion.

Every clip is its dense centred window of ``clip_len`` frames at the model's short side, centre-cropped,
read through the same dataset code as training (``dtcm.data.build_dataset(..., train=False)``). Clips
that cannot be decoded are skipped and counted, never fatal. Training's validation (``evaluate_loader``)
counts its hits with the same ``topk_hits``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dtcm.checks import check_k
from dtcm.device import infer

__all__ = ["confusion_figure", "evaluate", "evaluate_loader", "topk_hits", "write_report"]

logger = logging.getLogger(__name__)


def evaluate(
    model,
    data,
    batch_size: int = 4,
    num_workers: int = 0,
    *,
    k: int | None = None,
    split: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """1-clip centre-crop accuracy of a model on a split.

    Args:
        model: a DTCM model; its config gives clip_len, crop_size, short_side and the class names.
        data: a list file or folder (anything ``dtcm.data.build_dataset`` reads) or a built test dataset.
            Its class names must be the model's (any order); otherwise a ValueError names the difference.
        batch_size: clips per forward pass.
        num_workers: DataLoader worker processes for decoding.
        k: frame-sharing factor; default the model's.
        split: which split's list to take inside a folder of lists (ARID has 1-3).
        progress: called as ``progress(clips_done, clips_total)`` after every batch.

    Returns:
        ``{"top1": float, "top5": float, "per_class": {name: float | None}, "n": int, "skipped": int,
        "confusion": [[int]], "class_names": [str], "k": int}``: accuracies are fractions of ``n``, the
        clips evaluated; Top-5 is Top-min(5, classes); ``confusion[i][j]`` counts clips of class i predicted
        as j (model order); a class without clips has per-class accuracy None.
    """
    from dtcm.data import collate_clips

    config = model.config
    names = tuple(config.class_names)
    dataset = _dataset(data, config, split)
    label_map = _label_map(tuple(dataset.class_names), names, str(data))
    k = check_k(k, config.k)
    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_clips
    )
    c = len(names)
    confusion = np.zeros((c, c), dtype=np.int64)
    top5_hits, skipped, reasons, done = 0, 0, [], 0
    model.eval()
    for batch in loader:
        skipped += len(batch["skipped"])
        reasons += [f"{p}: {r}" for p, r in zip(batch["skipped"], batch["reasons"], strict=True)]
        done += len(batch["skipped"]) + len(batch["label"])
        if len(batch["label"]):
            logits = infer(model, batch["video"], k=k)  # (B, C) float32, CPU
            labels = label_map[batch["label"]]  # (B,) in model order
            top, _, hits5 = topk_hits(logits, labels)  # (B, 5)
            top5_hits += hits5
            np.add.at(confusion, (labels.numpy(), top[:, 0].numpy()), 1)
        if progress is not None:
            progress(done, len(dataset))
    n = int(confusion.sum())
    if n == 0:
        first = "; ".join(reasons[:2])
        raise ValueError(f"none of the {len(dataset)} clips of {data} could be read ({first})")
    if skipped:
        logger.warning("evaluated %d clips, skipped %d unreadable ones", n, skipped)
    per_row = confusion.sum(1)
    per_class = {name: (float(confusion[i, i] / per_row[i]) if per_row[i] else None) for i, name in enumerate(names)}
    return {
        "top1": float(np.trace(confusion) / n),
        "top5": float(top5_hits / n),
        "per_class": per_class,
        "n": n,
        "skipped": skipped,
        "confusion": confusion.tolist(),
        "class_names": list(names),
        "k": k,
    }


def _dataset(data, config, split: int):
    from dtcm.data import ClipDataset, build_dataset

    if isinstance(data, ClipDataset):
        if data.train:
            raise ValueError("evaluate needs a test dataset (train=False: centred window, centre crop)")
        if (data.clip_len, data.crop, data.short_side) != (config.clip_len, config.crop_size, config.short_side):
            logger.warning(
                "dataset clips are T=%d crop=%d short_side=%d; the model was trained on T=%d crop=%d short_side=%d",
                data.clip_len,
                data.crop,
                data.short_side,
                config.clip_len,
                config.crop_size,
                config.short_side,
            )
        return data
    return build_dataset(
        data,
        train=False,
        clip_len=config.clip_len,
        crop=config.crop_size,
        short_side=config.short_side,
        split=split,
    )


def _label_map(data_names: tuple[str, ...], model_names: tuple[str, ...], source: str) -> torch.Tensor:
    """Dataset label -> model label, by class name; a ValueError when the two sets of names differ."""
    if data_names == model_names:
        return torch.arange(len(model_names))
    unknown = [n for n in data_names if n not in model_names]
    if unknown or len(set(data_names)) != len(data_names):
        absent = [n for n in model_names if n not in data_names]
        raise ValueError(
            f"the classes of {source} do not match the model's: not in the model: {', '.join(unknown[:6]) or '-'}; "
            f"not in the data: {', '.join(absent[:6]) or '-'} (model classes: {', '.join(model_names)})"
        )
    index = {name: i for i, name in enumerate(model_names)}
    return torch.tensor([index[n] for n in data_names])


def topk_hits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Top-min(5, classes) predictions of (B, C) logits, best first, and how many of (B,) labels are in the
    Top-1 and in the Top-5: ``(top (B, 5), hits1, hits5)``."""
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, 5)
    return top, int((top[:, 0] == labels).sum()), int((top == labels[:, None]).any(dim=1).sum())


@torch.no_grad()
def evaluate_loader(model, loader, k: int | None = None, device: str | torch.device | None = None) -> dict:
    """1-clip centre-crop accuracy of ``model`` (a DTCM) over a loader of ``collate_clips`` batches.

    Args:
        model: a DTCM (not DDP-wrapped).
        loader: yields ``{"video": (B, 3, T, H, W), "label": (B,), "skipped": [...]}``; empty batches pass.
        k: frame-sharing factor (default the model's).
        device: where to run (default the model's).
    Returns:
        ``{"top1", "top5"}`` as fractions in [0, 1] (None without clips), ``"n"`` clips, ``"correct1"``,
        ``"correct5"`` counts and ``"skipped"`` files. Top-5 is Top-min(5, classes).
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    c1 = c5 = n = skipped = 0
    for batch in loader:
        skipped += len(batch["skipped"])
        if len(batch["label"]) == 0:
            continue
        logits = model(batch["video"].to(device), k=k).float()
        labels = batch["label"].to(device)
        _, hits1, hits5 = topk_hits(logits, labels)
        c1, c5, n = c1 + hits1, c5 + hits5, n + len(labels)
    model.train(was_training)
    return {
        "top1": c1 / n if n else None,
        "top5": c5 / n if n else None,
        "n": n,
        "correct1": c1,
        "correct5": c5,
        "skipped": skipped,
    }


# ------------------------------------------------------------------------------------------ reports
def confusion_figure(result: dict, normalize: bool = True):
    """A plotly heatmap of the confusion matrix (rows: true class, columns: predicted).

    Args:
        result: :func:`evaluate`'s dict.
        normalize: colour by the fraction of each true class (the cell text always shows counts).

    Returns:
        ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    counts = np.asarray(result["confusion"], dtype=np.int64)  # (C, C)
    names = list(result["class_names"])
    rows = counts.sum(1, keepdims=True)
    z = counts / np.maximum(rows, 1) if normalize else counts
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalize else None,
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} clips<extra></extra>",
            colorbar={"title": "fraction" if normalize else "clips"},
        )
    )
    fig.update_layout(
        title=f"Confusion: Top-1 {100 * result['top1']:.1f}%, Top-5 {100 * result['top5']:.1f}% ({result['n']} clips)",
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        width=max(420, 48 * len(names) + 220),
        height=max(380, 44 * len(names) + 180),
    )
    return fig


def write_report(result: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``metrics.json``, ``confusion.csv`` and ``confusion.html`` (self-contained plotly) to a folder.

    Returns:
        ``{"metrics": path, "confusion_csv": path, "confusion_html": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "confusion_csv": out / "confusion.csv",
        "confusion_html": out / "confusion.html",
    }
    paths["metrics"].write_text(json.dumps(result, indent=2) + "\n")
    with open(paths["confusion_csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *result["class_names"]])
        for name, row in zip(result["class_names"], result["confusion"], strict=True):
            writer.writerow([name, *row])
    confusion_figure(result).write_html(paths["confusion_html"], include_plotlyjs=True)  # works offline
    return paths


# ------------------------------------------------------------------------------------------------ CLI
