"""Latency of what the app does, on this machine: ``analyse`` and ``enhance_clip``.

* analyse on a 10-second 320x240 dark clip with the shipped CPU variant, and with DTCM-ResNeXt-101
  (random weights, the paper's 64x112x112 input): median of repeats and the stage breakdown.
* enhance_clip frames per second at 320x240 and 640x480 for k = 1 and 4.

Targets (2-core CPU): analyse < 1.5 s (CPU variant) and < 8 s (ResNeXt-101); enhance_clip >= 30 frames/s
at 320x240 with k = 4. Prints a table and writes benchmarks/results/app_latency.json.

    python benchmarks/app_latency.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from dtcm import service, video
from dtcm.data.synthetic import darken
from dtcm.model import create_model

OUT = Path(__file__).parent / "results" / "app_latency.json"


def make_clip(folder: Path, size: tuple[int, int], seconds: float = 10, fps: float = 25) -> str:
    """A dark clip of real footage (vtest.avi) at ``size`` (W, H), darkened by the camera model."""
    footage = Path(
        os.environ.get("DTCM_REAL_FOOTAGE") or Path(__file__).resolve().parents[1].parent / "shared/data/real"
    )  # beside the repository
    frames, _ = video.read_video(next(footage.glob("*.avi")), size=size[1])
    n = int(seconds * fps)
    frames = np.stack([cv2.resize(frames[i % len(frames)], size, interpolation=cv2.INTER_AREA) for i in range(n)])
    path = folder / f"dark_{size[0]}x{size[1]}.mp4"
    video.write_video(path, darken(frames, np.random.default_rng(0)), fps)
    return str(path)


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-resnext", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="dtcm_bench_"))
    clip_s = make_clip(tmp, (320, 240))
    clip_l = make_clip(tmp, (640, 480))
    results = {"analyse": {}, "enhance_clip": {}}

    variants = {"cpu": service.default_variant()}
    if not args.skip_resnext:
        create_model("dtcm_resnext101").save_pretrained(tmp / "resnext")
        service.register_variant("dtcm-resnext101-random", tmp / "resnext", description="random weights")
        variants["resnext101"] = "dtcm-resnext101-random"
    for label, name in variants.items():
        service.analyse(clip_s, name)  # load the model and warm up
        med, out = timed(lambda name=name: service.analyse(clip_s, name), args.repeats)
        results["analyse"][label] = {"variant": name, "median_s": med, "stages_s": out["timings"]}
        stages = ", ".join(f"{k} {v:.3f}" for k, v in out["timings"].items())
        print(f"analyse [{label}: {name}] median {med:.3f} s  ({stages})")

    n_frames = video.probe(clip_s).frames
    for clip, res in ((clip_s, "320x240"), (clip_l, "640x480")):
        for k in (1, 4):
            service.enhance_clip(clip, None, k, out_path=str(tmp / "warm.mp4"))
            med, _ = timed(lambda clip=clip, k=k: service.enhance_clip(clip, None, k, out_path=str(tmp / "e.mp4")), 3)
            fps = n_frames / med
            results["enhance_clip"][f"{res}_k{k}"] = {"median_s": med, "frames": n_frames, "fps": fps}
            print(f"enhance_clip {res} k={k}: {med:.2f} s for {n_frames} frames = {fps:.1f} frames/s")

    cpu = results["analyse"]["cpu"]["median_s"]
    results["targets"] = {
        "analyse_cpu_under_1.5s": cpu < 1.5,
        "analyse_resnext_under_8s": results["analyse"].get("resnext101", {}).get("median_s", 0) < 8,
        "enhance_320x240_k4_at_least_30fps": results["enhance_clip"]["320x240_k4"]["fps"] >= 30,
    }
    print(json.dumps(results["targets"]))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
