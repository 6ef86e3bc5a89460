"""No-reference enhancement quality on real photos or clips: the measures the project holds its enhancers to.

Each enhancer runs over a folder of photos (jpg, png, bmp, webp) and/or clips, every input shrunk so its long
side is at most ``long_side``; the measures are defined in ``dtcm.quality_measures`` and pooled here:

    luma_out       mean output luma over all inputs
    dark_luma_out  mean output luma of the inputs darker than luma 60
    loe            lightness order error (mean over inputs; a clip's is the mean over its frames)
    chroma_noise   chroma noise of the output, grey levels (mean over inputs)
    blown_pct      % of output pixels whose brightest channel is >= 250
    false_colour   % of clearly coloured 32x32 input patches whose dominant channel changes (hue flips)
    cast           local colour cast over 32x32 patches, x100
    lit_change     mean absolute luma change (grey levels) on inputs that are already lit (luma > 90)
    stc            L_STC (SPEC A6) of the enhanced clips (clips only)
    ms_per_mp      enhancement time per megapixel of input, milliseconds

Example:
    $ dtcm quality ../shared/data/enhance_test --zerodce-published ../shared/weights/zerodce-official/Epoch99.pth
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dtcm.checks import IMAGE_SUFFIXES, SCAN_VIDEO_SUFFIXES, files_under, is_image
from dtcm.pipeline import ESTIMATE_SIZE
from dtcm.quality_measures import DARK_LUMA, LIT_LUMA, frame_stats

__all__ = ["frame_stats", "measure", "load_inputs", "contact_sheet", "learned", "classical", "identity", "METRICS"]

METRICS = {  # key -> column header
    "luma_out": "mean luma",
    "dark_luma_out": "luma of dark (<60) in",
    "loe": "LOE",
    "chroma_noise": "chroma noise",
    "blown_pct": "blown-out %",
    "false_colour": "false colour %",
    "cast": "local cast x100",
    "lit_change": "change on lit (>90)",
    "stc": "L_STC (clips)",
    "ms_per_mp": "ms / MP",
}
DIGITS = {"stc": 4, "blown_pct": 2, "false_colour": 2, "chroma_noise": 2}  # decimals in the table; else 1


def _stc(x: np.ndarray, y: np.ndarray) -> float:
    import torch

    from dtcm.losses import stc_loss

    def to5(v):
        return torch.from_numpy(v).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, T, H, W)

    return float(stc_loss(to5(y), to5(x)))


def measure(inputs: list[np.ndarray], enhance: Callable[[np.ndarray], np.ndarray]) -> tuple[dict, list]:
    """Every metric of one enhancer over uint8 (T, H, W, 3) inputs.

    Returns:
        (metrics keyed as ``METRICS`` (None where no input qualifies), the outputs in input order).
    """
    stats, outputs, seconds, megapixels, stcs = [], [], 0.0, 0.0, []
    for x in inputs:
        t = time.perf_counter()
        y = enhance(x)
        seconds += time.perf_counter() - t
        megapixels += x.shape[0] * x.shape[1] * x.shape[2] / 1e6
        if y.shape != x.shape or y.dtype != np.uint8:
            raise ValueError(f"an enhancer returned {y.dtype} {y.shape} for {x.dtype} {x.shape}; it must keep both")
        stats.append(frame_stats(x, y))
        outputs.append(y)
        if len(x) > 1:
            stcs.append(_stc(x, y))
    dark = [s["luma_out"] for s in stats if s["luma_in"] < DARK_LUMA]
    lit = [s["change"] for s in stats if s["luma_in"] > LIT_LUMA]
    coloured = sum(s["coloured"] for s in stats)
    metrics = {
        "luma_out": float(np.mean([s["luma_out"] for s in stats])),
        "dark_luma_out": float(np.mean(dark)) if dark else None,
        "loe": float(np.mean([s["loe"] for s in stats])),
        "chroma_noise": float(np.mean([s["chroma_noise"] for s in stats])),
        "blown_pct": 100 * float(np.mean([s["blown"] for s in stats])),
        "false_colour": 100 * sum(s["flipped"] for s in stats) / coloured if coloured else None,
        "cast": 100 * sum(s["cast_sum"] for s in stats) / max(1, sum(s["patches"] for s in stats)),
        "lit_change": float(np.mean(lit)) if lit else None,
        "stc": float(np.mean(stcs)) if stcs else None,
        "ms_per_mp": 1000 * seconds / max(megapixels, 1e-9),
        "inputs": len(inputs),
        "dark_inputs": len(dark),
        "lit_inputs": len(lit),
        "coloured_patches": coloured,
    }
    return metrics, outputs


# ------------------------------------------------------------------------------------------ inputs
def _shrink(frames: np.ndarray, long_side: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    s = long_side / max(h, w)
    if s >= 1:
        return frames
    size = (max(2, round(w * s)), max(2, round(h * s)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def load_inputs(
    paths: list[Path], long_side: int = 640, max_frames: int = 16, darken: float | None = None, seed: int = 0
) -> list[np.ndarray]:
    """Photos and clips as uint8 (T, H, W, 3), long side <= ``long_side``; clips give their first frames.

    ``darken`` films every input with the low-light camera model at that exposure (e.g. 0.05), seeded.
    """
    from dtcm.data.photos import film
    from dtcm.images import read_image

    rng = np.random.default_rng(seed)
    out = []
    for p in paths:
        if is_image(p):
            frames = read_image(p)[None]
        else:
            from dtcm import video

            frames, _ = video.read_video(p, size=None, max_frames=max_frames)
        frames = _shrink(frames, long_side)
        out.append(film(frames, rng, darken) if darken else frames)
    return out


def list_inputs(root: str | Path, split: str = "all") -> list[Path]:
    """Photos and clips under ``root`` (or the one file); ``split`` = all, train or held-out (dtcm.data.photos)."""
    from dtcm.data.photos import split_photos

    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such file or folder: {root}")
    ok = IMAGE_SUFFIXES + SCAN_VIDEO_SUFFIXES
    paths = files_under(root, ok)
    if not paths:
        raise ValueError(f"{root} holds no photos or clips; accepted: {', '.join(ok)}")
    if split not in ("all", "train", "held-out"):
        raise ValueError(f"split must be all, train or held-out, got {split!r}")
    if split != "all":
        paths = split_photos(paths)[0 if split == "train" else 1]
    return paths


# --------------------------------------------------------------------------------------- enhancers
def _load(spec: str):
    """A model folder, variant or repo id; or the Zero-DCE authors' ``.pth``, converted in memory (nothing written)."""
    if str(spec).endswith(".pth"):
        from dtcm.zerodce_import import import_zerodce

        return import_zerodce(spec)
    from dtcm.hub import resolve_model

    return resolve_model(spec)


def learned(
    spec: str, k: int | None = None, adaptive: bool = False, estimate_size: int | None = ESTIMATE_SIZE
) -> Callable[[np.ndarray], np.ndarray]:
    """A model's enhancer as uint8 frames -> frames, as ``dtcm enhance`` runs it.

    A photo gets k = 1 and full-size curves; a clip the model's k (or ``k``) and curves estimated on keyframes
    of short side ``estimate_size`` (None: full size). ``adaptive`` applies the pipeline's decision for inputs
    that are not dark (dtcm.adaptive).
    """
    from dtcm import adaptive as adapt
    from dtcm.darkness import darkness_score, segment_indices
    from dtcm.pipeline import enhance_frames

    model = _load(spec)

    def run(frames):
        if len(frames) == 1:
            y = enhance_frames(model, frames, k=1, estimate_size=None)
        else:
            y = enhance_frames(model, frames, k=k, estimate_size=estimate_size)
        if not adaptive:
            return y
        dv = darkness_score(frames[segment_indices(len(frames))])
        decision = adapt.decide(dv, adapt.luma_change(frames, y))
        return adapt.apply_decision(frames, y, decision)

    return run


def classical(name: str) -> Callable[[np.ndarray], np.ndarray]:
    from dtcm.classic import enhance_classic

    return lambda frames: enhance_classic(name, frames)


def identity(frames: np.ndarray) -> np.ndarray:
    """The input itself: the table's reference row (LOE 0, the input's own chroma noise and luma)."""
    return frames.copy()


# ----------------------------------------------------------------------------------- contact sheet
def _cell(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` shrunk to fit a (W, H) box, centred on dark grey: columns line up whatever the aspect ratio."""
    w, h = size
    s = min(w / img.shape[1], h / img.shape[0])
    small = cv2.resize(
        img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))), interpolation=cv2.INTER_AREA
    )
    out = np.full((h, w, 3), 32, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def contact_sheet(
    inputs: list[np.ndarray], outputs: dict[str, list], path: str | Path, rows: int = 8, cell=(200, 150)
) -> Path:
    """A PNG grid: one row per input (evenly spaced, the middle frame of clips), input then each enhancer."""
    pick = np.linspace(0, len(inputs) - 1, min(rows, len(inputs))).round().astype(int)
    names = ["input", *outputs]
    lines = []
    for i in pick:
        cells = [inputs[i]] + [outputs[n][i] for n in outputs]
        lines.append(np.concatenate([_cell(c[len(c) // 2], cell) for c in cells], 1))
    header = np.full((24, cell[0] * len(names), 3), 255, np.uint8)
    for j, n in enumerate(names):
        cv2.putText(header, n, (j * cell[0] + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, *lines], 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[:, :, ::-1])
    return path


# ------------------------------------------------------------------------------------------ report
def format_table(results: dict[str, dict]) -> str:
    """A Markdown table: one row per enhancer, one column per metric (``-`` where none qualifies)."""
    head = "| enhancer | " + " | ".join(METRICS.values()) + " |"
    rows = [head, "|" + "---|" * (len(METRICS) + 1)]
    for name, m in results.items():
        cells = ["-" if m[key] is None else f"{m[key]:.{DIGITS.get(key, 1)}f}" for key in METRICS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
