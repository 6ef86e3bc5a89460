"""What ``build_real_train.py`` and ``build_real_val.py`` share: resizing, scoring and writing ARID-format clip sets.

Both write clips resized to short side 128 under ``out/<condition>/<Class>/<name>.mp4``, ARID-format
``split1_*.txt`` lists and ``classInd.txt``, and a JSON summary with per-condition counts and mean Dv.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dtcm import darkness, video
from dtcm.config import ARID_CLASSES
from dtcm.data.synthetic import _darken

ROOT = Path(__file__).resolve().parents[1]
HOLDOUT_LIST = ROOT / "weights" / "recipes" / "real_val_holdout.txt"
SHORT_SIDE = 128
VTEST = "real/vtest.avi"  # a street of people walking: its last VTEST_TAIL frames are validation, the rest training
VTEST_TAIL = 160


def natural_key(name: str) -> list:
    """Sort key that orders ``w2`` before ``w10``."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name)]


def resize(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames with short side ``SHORT_SIDE`` and even sizes (yuv420p needs them)."""
    h, w = frames.shape[1:3]
    scale = SHORT_SIDE / min(h, w)
    size = (round(w * scale) // 2 * 2, round(h * scale) // 2 * 2)  # (W, H), even for yuv420p
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def read(path: Path) -> tuple[np.ndarray, float]:
    """A video's frames, decoded and resized to short side ``SHORT_SIDE`` (see :func:`resize`), and its fps."""
    frames, fps = video.read_video(path, size=SHORT_SIDE)
    return resize(frames), fps


def darken(frames: np.ndarray, seed: list[int], target_dv: float | None = None) -> tuple[np.ndarray, float]:
    """Frames through the low-light camera model, seeded by ``seed``, and the exposure it chose."""
    dim, info = _darken(frames, np.random.default_rng(seed), target_dv=target_dv)
    return dim, info["exposure"]


def class_id(cls: str) -> int:
    return ARID_CLASSES.index(cls)


def score(frames: np.ndarray) -> float:
    """Dv of a clip, over the darkness module's segment frames, to 4 decimals."""
    return round(float(darkness.darkness_score(frames[darkness.segment_indices(len(frames))])), 4)


def write_clip(out: Path, condition: str, cls: str, name: str, frames, fps, exposure, source: str) -> dict:
    """Write ``out/condition/cls/name.mp4``; returns its entry for the JSON summary."""
    path = f"{condition}/{cls}/{name}.mp4"
    video.write_video(out / path, frames, fps)
    return {"path": path, "class": cls, "condition": condition, "source": source} | {
        "frames": len(frames),
        "fps": fps,
        "dv": score(frames),
        "exposure": exposure,
    }


def write_split(path: Path, rows: list[tuple[int, str]]) -> None:
    """An ARID-format list: ``index<TAB>class id<TAB>path`` per ``(class id, path)`` row."""
    path.write_text("".join(f"{j}\t{c}\t{p}\n" for j, (c, p) in enumerate(rows)))


def write_class_index(folder: Path) -> None:
    (folder / "classInd.txt").write_text("".join(f"{c}\t{n}\n" for c, n in enumerate(ARID_CLASSES)))


def summarise(entries: list[dict], conditions) -> dict:
    """``{"clips", "counts": {condition: {class: n}}, "mean_dv": {condition: Dv}}`` of the written entries."""
    counts = {c: {} for c in conditions}
    for e in entries:
        counts[e["condition"]][e["class"]] = counts[e["condition"]].get(e["class"], 0) + 1
    dv = {c: round(float(np.mean([e["dv"] for e in entries if e["condition"] == c])), 3) for c in conditions}
    return {"clips": len(entries), "counts": counts, "mean_dv": dv}


def write_summary(path: Path, summary: dict, entries: list[dict]) -> None:
    path.write_text(json.dumps(summary | {"entries": entries}, indent=1) + "\n")


def main(doc: str, build: Callable, default_out: str, headline: Callable, argv=None) -> int:
    """The scripts' command line: ``--shared``, ``--out``, ``--seed``; prints ``headline(summary, out)`` and counts."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--out", default=default_out, help="output folder (inside the git-ignored data/)")
    p.add_argument("--seed", type=int, default=0, help="seed of the camera model's noise (default 0)")
    args = p.parse_args(argv)
    s = build(Path(args.shared), Path(args.out), args.seed)
    print(headline(s, args.out))
    for condition, counts in s["counts"].items():
        per = ", ".join(f"{c} {n}" for c, n in sorted(counts.items()))
        print(f"  {condition}: {per} (mean Dv {s['mean_dv'][condition]:.3f})")
    return 0
