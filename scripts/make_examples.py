"""Make the demo's example clips: dark synthetic actions in ``examples/``, and optionally a darkened real clip.

Every clip goes through the same low-light camera model as the training data
(:func:`dtcm.data.synthetic.darken`) and is written as a browser-playable H.264 mp4. Deterministic from
the seed; ``examples/`` holds only the project's own renders (well under 1 MB, committed). A real clip is
made only from footage you point at, into a folder outside the repository that the apps show first when
``DTCM_EXAMPLES_DIR`` names it: research footage is never committed.

Usage:
    python scripts/make_examples.py                  # writes examples/dark_<action>.mp4
    python scripts/make_examples.py --footage ../shared/data/real/vtest.avi --real-out data/examples-real
    DTCM_EXAMPLES_DIR=data/examples-real python app.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dtcm import video  # noqa: E402
from dtcm.darkness import darkness_score, segment_indices  # noqa: E402
from dtcm.data.synthetic import FPS, darken, render_clip  # noqa: E402

ACTIONS = ("Drink", "Jump", "Pour", "Wave", "Walk")  # one synthetic clip each
REAL_SECONDS, REAL_SIZE = 6.0, (320, 240)  # (W, H); the footage's last seconds
CRF = 23  # x264 quality: keeps most of the dark noise the enhancer brightens; the folder stays < 1 MB


def make_synthetic(out: Path, seed: int) -> list[Path]:
    """One dark clip per action of ``ACTIONS``; returns the files written."""
    written = []
    for i, action in enumerate(ACTIONS):
        frames, _ = render_clip(action, np.random.default_rng([seed, i]), version=1)  # the committed examples are v1
        dark = darken(frames, np.random.default_rng([seed, i, 1]))
        path = out / f"dark_{action.lower()}.mp4"
        video.write_video(path, dark, FPS, crf=CRF)
        written.append(path)
    return written


def make_real(src: Path, out: Path, seed: int, name: str = "dark_street_walk.mp4") -> Path:
    """The last ~6 s of real footage (e.g. OpenCV's vtest.avi: people walking) at 320x240, darkened like ARID.

    The last seconds because that is the part of vtest.avi that the real validation set holds out and no
    training run sees (``scripts/build_real_val.py``): what the app says about it is not a memorised answer.
    """
    if not Path(src).is_file():
        raise FileNotFoundError(f"no such footage file: {src}")
    info = video.probe(src)
    idx = np.arange(max(0, info.frames - int(REAL_SECONDS * info.fps)), info.frames)  # (N,) the last seconds
    frames = video.read_frames(src, idx)  # (N, H, W, 3) at the file's size
    frames = np.stack([cv2.resize(f, REAL_SIZE, interpolation=cv2.INTER_AREA) for f in frames])
    dark = darken(frames, np.random.default_rng([seed, 99]))
    path = Path(out) / name
    video.write_video(path, dark, info.fps, crf=CRF)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples", help="output folder")
    parser.add_argument("--seed", type=int, default=2023, help="seed of the renderer and the camera noise")
    parser.add_argument("--footage", type=Path, default=None, help="real footage to darken into --real-out")
    parser.add_argument("--real-out", type=Path, default=ROOT / "data" / "examples-real", help="not committed")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = make_synthetic(args.out, args.seed)
    if args.footage is not None:
        args.real_out.mkdir(parents=True, exist_ok=True)
        paths.append(make_real(args.footage, args.real_out, args.seed))
    total = 0
    for p in paths:
        frames = video.read_frames(p, segment_indices(video.probe(p).frames))
        size = p.stat().st_size
        total += size
        print(f"{p.name:28s} {size / 1024:7.1f} KB  Dv = {darkness_score(frames):+.3f}")
    print(f"{'total':28s} {total / 1024:7.1f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
