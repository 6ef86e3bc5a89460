"""Writing DarkActions-synth: clips, ARID-format split lists, a summary and a contact sheet; the CLI.

``make_synthetic`` renders every ``(class, index)`` from its own seed, darkens it with the low-light
camera (v2 then adds compression blocks) and writes H.264 mp4 files that :class:`dtcm.data.arid.ARIDDataset`
reads exactly like ARID. It needs no data: backgrounds are painted unless a folder is given.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from dtcm.darkness import darkness_score, segment_indices
from dtcm.synthetic.actions import ACTIONS
from dtcm.synthetic.backgrounds import resolve_backgrounds
from dtcm.synthetic.lowlight import _darken, compress
from dtcm.synthetic.render import FPS, NUM_FRAMES, SIZE, RenderOptions, check_version, render_clip

__all__ = ["contact_sheet", "make_synthetic", "split_indices"]


def split_indices(per_class: int) -> tuple[list[int], list[int]]:
    """Deterministic 80/20 split of one class's clip indices: (train, test), the test ones last.

    Example:
        >>> split_indices(10)
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    n_test = 0 if per_class == 1 else max(1, round(0.2 * per_class))
    return list(range(per_class - n_test)), list(range(per_class - n_test, per_class))


def _clip_path(class_id: int, index: int) -> str:
    name = ACTIONS[class_id]
    return f"{name}/{name}_{index:04d}.mp4"


def _init_worker():
    cv2.setNumThreads(1)  # one process per core already


def _render_job(job) -> tuple[dict, tuple | None]:
    """Render, darken and write one clip; the seeds come from (seed, class, index) only."""
    from dtcm.video import write_video

    out, class_id, index, seed, bright, num_frames, keep, version, options, source = job
    rng = np.random.default_rng([seed, class_id, index])
    kw = {"version": version, "options": options, "backgrounds": source}
    frames, meta = render_clip(ACTIONS[class_id], rng, num_frames=num_frames, **kw)
    dark = None
    if not bright or keep:
        dark, info = _darken(frames, np.random.default_rng([seed, class_id, index, 1]))
        if version == 2 and options.compression:
            dark = compress(dark, np.random.default_rng([seed, class_id, index, 2]))
        meta["camera"] = info
        meta["dv_dark"] = round(darkness_score(dark[segment_indices(len(dark))]), 4)
    meta["dv_bright"] = round(darkness_score(frames[segment_indices(len(frames))]), 4)
    meta["path"] = _clip_path(class_id, index)
    write_video(Path(out) / meta["path"], frames if bright else dark, FPS)
    return meta, ((frames, dark) if keep else None)


def contact_sheet(rows, path: str | os.PathLike, frames_per_row: int = 5) -> Path:
    """A PNG with one row per class: ``frames_per_row`` bright frames, then the same frames dark.

    Args:
        rows: ``(label, bright (T, H, W, 3), dark (T, H, W, 3))`` per row, uint8 RGB.
        path: the PNG to write.
        frames_per_row: frames of each version, evenly spaced over the clip.
    """
    label_w, gap, head = 76, 8, 22
    blocks = []
    for label, bright, dark in rows:
        idx = np.linspace(0, len(bright) - 1, frames_per_row).round().astype(int)
        h, w = bright.shape[1:3]
        tag = np.zeros((h, label_w, 3), np.uint8)
        cv2.putText(tag, label, (4, h // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        spacer = np.zeros((h, gap, 3), np.uint8)
        blocks.append(np.concatenate([tag, *bright[idx], spacer, *dark[idx]], 1))
    sheet = np.concatenate(blocks, 0)
    header = np.zeros((head, sheet.shape[1], 3), np.uint8)
    w = rows[0][1].shape[2]
    for x, text in (
        (label_w + 4, "bright (rendered)"),
        (label_w + frames_per_row * w + gap + 4, "dark (low-light camera)"),
    ):
        cv2.putText(header, text, (x, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    path = Path(path)
    cv2.imwrite(str(path), np.concatenate([header, sheet], 0)[..., ::-1])  # RGB -> BGR
    return path


def make_synthetic(
    out: str | os.PathLike,
    per_class: int,
    seed: int = 0,
    bright: bool = False,
    num_workers: int = 1,
    num_frames: int = NUM_FRAMES,
    *,
    version: int = 2,
    options: RenderOptions | None = None,
    backgrounds: str | os.PathLike | None = None,
) -> dict:
    """Write DarkActions-synth: ``out/Class/Class_0000.mp4`` ..., ARID-format lists and a contact sheet.

    ``split1_train.txt`` / ``split1_test.txt`` hold ``idx<TAB>class_id<TAB>Class/file.mp4`` lines (0-based
    class ids, 80/20 per class, the last clips of each class are the test ones), ``classInd.txt`` holds
    ``index<TAB>name`` (0-based), ``synthetic.json`` the summary and every clip's parameters, and
    ``contact_sheet.png`` clip 0 of every class, bright and dark.

    Args:
        out: output folder (created; existing clips of the same names are overwritten).
        per_class: clips per class.
        seed: base seed; clip ``i`` of class ``c`` depends only on ``(seed, c, i)``.
        bright: write the rendered clips instead of the darkened ones.
        num_workers: worker processes (the result does not depend on it).
        num_frames: frames per clip (at 15 fps).
        version: 2 (the default) or 1 (v1's capsule figures, frame for frame as before).
        options: v2's switches (:class:`RenderOptions`); None is all on.
        backgrounds: a folder of real videos and/or photographs to film in front of; None: ``$DTCM_REAL_FOOTAGE``
            if set, else procedural scenes, so no data is needed.

    Returns:
        A summary dict: counts, darkness (mean/min/max Dv of the dark clips), timings, paths.
    """
    _check_args(per_class, num_workers, num_frames, seed)
    check_version(version, options)
    options = RenderOptions() if version == 2 and options is None else options
    source = resolve_backgrounds(backgrounds, version)  # fails here, before any work, on a bad folder
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [
        (str(out), c, i, seed, bright, num_frames, i == 0, version, options, source)
        for c in range(len(ACTIONS))
        for i in range(per_class)
    ]
    num_workers = min(num_workers, len(jobs))
    results = _run_jobs(jobs, num_workers)
    seconds = time.perf_counter() - start
    lines = _write_lists(out, per_class)
    sheet = contact_sheet([(ACTIONS[m["class_id"]], *kept) for m, kept in results if kept], out / "contact_sheet.png")

    metas = [m for m, _ in results]
    summary = {"out": str(out), "classes": list(ACTIONS), "per_class": per_class, "clips": len(metas)}
    summary |= {"train": len(lines["train"]), "test": len(lines["test"]), "seed": seed, "version": version}
    summary |= _settings(options, source, bright, num_frames) | _darkness(metas)
    summary |= {"seconds": round(seconds, 2), "seconds_per_clip": round(seconds / len(metas), 3)}
    summary |= {"workers": num_workers, "contact_sheet": str(sheet)}
    (out / "synthetic.json").write_text(json.dumps(summary | {"clip_params": metas}, indent=1) + "\n")
    return summary


def _settings(options, source, bright: bool, num_frames: int) -> dict:
    return {
        "options": asdict(options) if options is not None else None,
        "backgrounds": source.root if source is not None else "procedural",
        "bright": bright,
        "frames": num_frames,
        "fps": FPS,
        "size": list(SIZE),
    }


def _darkness(metas: list[dict]) -> dict:
    """Mean/min/max Dv of the darkened clips (for ``bright``: of clip 0 per class, the only ones darkened)."""
    dvs = np.array([m["dv_dark"] for m in metas if "dv_dark" in m])
    return {
        "mean_dv": round(float(dvs.mean()), 4),
        "min_dv": round(float(dvs.min()), 4),
        "max_dv": round(float(dvs.max()), 4),
    }


def _check_args(per_class: int, num_workers: int, num_frames: int, seed: int) -> None:
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if num_frames < 8:
        raise ValueError(f"num_frames must be >= 8, got {num_frames}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _run_jobs(jobs: list, num_workers: int) -> list:
    if num_workers == 1:
        return [_render_job(j) for j in jobs]
    # spawned workers: nothing of the caller's threads (torch, cv2) is inherited mid-state
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(num_workers, mp.get_context("spawn"), initializer=_init_worker) as pool:
        return list(pool.map(_render_job, jobs, chunksize=1))


def _write_lists(out: Path, per_class: int) -> dict[str, list[str]]:
    """``split1_{train,test}.txt`` and ``classInd.txt``; returns the lines of each split."""
    train_idx, test_idx = split_indices(per_class)
    lines = {"train": [], "test": []}
    for c in range(len(ACTIONS)):
        for part, indices in (("train", train_idx), ("test", test_idx)):
            lines[part] += [f"{c * per_class + i}\t{c}\t{_clip_path(c, i)}" for i in indices]
    for part in ("train", "test"):
        (out / f"split1_{part}.txt").write_text("".join(line + "\n" for line in lines[part]))
    (out / "classInd.txt").write_text("".join(f"{c}\t{name}\n" for c, name in enumerate(ACTIONS)))
    return lines
