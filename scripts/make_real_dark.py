"""Cut the real footage into short clips and film them with the low-light camera model.

The result trains the zero-reference enhancers (``lightdce-real``, ``zerodce-real``): no labels are used,
so the folder holds one class, ``real``. The last ``--holdout`` frames of the footage are left out so
that tests can check the enhancer on frames it never saw.

    python scripts/make_real_dark.py --out data/real-dark --clips 48 --seed 0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from dtcm import video
from dtcm.data.synthetic import darken

HOLDOUT = 160  # final frames of vtest.avi never used for training


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", type=int, default=HOLDOUT)
    args = p.parse_args(argv)
    src = next(
        Path(
            os.environ.get("DTCM_REAL_FOOTAGE") or Path(__file__).resolve().parents[1].parent / "shared/data/real"
        ).glob("*.avi")
    )  # the footage beside the repository
    frames, _ = video.read_video(src, size=192)
    frames = frames[: len(frames) - args.holdout]
    rng = np.random.default_rng(args.seed)
    out = Path(args.out) / "real"
    out.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    for i in range(args.clips):
        t0 = int(rng.integers(0, len(frames) - args.frames))
        scale = rng.uniform(0.67, 1.0)  # random zoom: crop then resize to short side 128
        ch, cw = int(h * scale), int(w * scale)
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        clip = frames[t0 : t0 + args.frames, y0 : y0 + ch, x0 : x0 + cw]
        clip = np.stack([cv2.resize(f, (170, 128), interpolation=cv2.INTER_AREA) for f in clip])
        if rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        video.write_video(out / f"real_{i:04d}.mp4", darken(np.ascontiguousarray(clip), rng), 10)
    print(f"wrote {args.clips} dark clips to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
