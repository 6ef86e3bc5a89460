"""Decode speed: decord with seeking vs sequential PyAV vs OpenCV, on a 5-minute 640x480 H.264 file.

Tasks are what training and the app ask of ``dtcm.video``: a dense 64-frame clip from the middle
of the video (SPEC A7) and a uniform 16-frame sample over the whole of it (SPEC A8). Each time is
the median of repeated runs; the test video is made once and cached.

Targets: dense 64-frame clip < 0.5 s; uniform sampling >= 5x faster than sequential decoding.

Usage:
    python3 benchmarks/decode_speed.py [--minutes 5] [--gop 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtcm import video  # noqa: E402

HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="length of the test video")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--gop", type=int, default=60, help="keyframe interval of the test video (frames)")
    p.add_argument("--repeats", type=int, default=5, help="runs per fast method (median reported)")
    p.add_argument("--slow-repeats", type=int, default=2, help="runs per sequential method")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "dtcm_bench")
    p.add_argument("--out", type=Path, default=HERE / "results" / "decode_speed.json")
    return p.parse_args(argv)


def make_video(path: Path, minutes: float, fps: int, gop: int) -> Path:
    """A moving, slightly noisy 640x480 H.264 video (x264 veryfast, crf 23), made once."""
    if path.exists():
        return path
    import av

    h, w = 480, 640
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 12, (8, h, w, 3), dtype=np.uint8)
    tmp = path.with_suffix(".part.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(tmp), "w", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": str(gop)}
        for i in range(int(minutes * 60 * fps)):
            frame = np.roll(base, 4 * i, axis=1) + noise[i % 8]
            frame[100:200, (3 * i) % 540 : (3 * i) % 540 + 100] = 255  # a moving box
            for packet in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    os.replace(tmp, path)
    return path


def opencv_read(path: Path, indices) -> np.ndarray:
    """OpenCV: seek (CAP_PROP_POS_FRAMES) where the next index is not the next frame, then read."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames, pos = [], -1
    for i in indices:
        if i != pos + 1:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, bgr = cap.read()
        if not ok:
            raise RuntimeError(f"OpenCV could not read frame {i}")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        pos = i
    cap.release()
    return np.stack(frames)


def timed(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats, "shape": list(out.shape)}


def main(args) -> dict:
    path = make_video(
        args.cache_dir / f"bench_{args.minutes:g}min_640x480_{args.fps}fps_g{args.gop}.mp4",
        args.minutes,
        args.fps,
        args.gop,
    )
    info = video.probe(path)  # also starts the decode worker, so no run pays for that
    dense = video.clip_indices(info.frames, 64, "dense")
    uniform = video.clip_indices(info.frames, 16, "uniform")
    r, s = args.repeats, args.slow_repeats
    tasks = {
        "dense 64 @ 640x480": {
            "decord+seek (worker)": (lambda: video.read_clip(path, 64, backend="decord"), r),
            "decord+seek (in-process)": (lambda: video.read_clip(path, 64, backend="decord", isolate=False), r),
            "PyAV sequential": (lambda: video.read_clip(path, 64, backend="pyav", isolate=False), s),
            "OpenCV seek+read": (lambda: opencv_read(path, dense), r),
        },
        "dense 64 @ short side 128": {
            "decord+seek (worker)": (lambda: video.read_clip(path, 64, size=128, backend="decord"), r),
            "decord+seek (in-process)": (
                lambda: video.read_clip(path, 64, size=128, backend="decord", isolate=False),
                r,
            ),
        },
        "uniform 16 @ 640x480": {
            "decord+seek (worker)": (lambda: video.read_clip(path, 16, "uniform", backend="decord"), r),
            "decord+seek (in-process)": (
                lambda: video.read_clip(path, 16, "uniform", backend="decord", isolate=False),
                r,
            ),
            "PyAV sequential": (lambda: video.read_clip(path, 16, "uniform", backend="pyav", isolate=False), s),
            "OpenCV seek+read": (lambda: opencv_read(path, uniform), r),
        },
    }
    results = []
    for task, methods in tasks.items():
        for method, (fn, repeats) in methods.items():
            row = {"task": task, "method": method, **timed(fn, repeats)}
            results.append(row)
            print(f"  {task:<28} {method:<26} {row['median_s']:8.3f} s", flush=True)

    def med(task, method):
        return next(x["median_s"] for x in results if x["task"] == task and x["method"] == method)

    dense_s = med("dense 64 @ 640x480", "decord+seek (worker)")
    speedup = med("uniform 16 @ 640x480", "PyAV sequential") / med("uniform 16 @ 640x480", "decord+seek (worker)")
    report = {
        "video": {"path": str(path), "gop": args.gop, "bytes": path.stat().st_size, **vars(info)},
        "results": results,
        "targets": {
            "dense64_s": dense_s,
            "dense64_under_0.5s": dense_s < 0.5,
            "uniform_speedup_vs_sequential": speedup,
            "uniform_speedup_at_least_5x": speedup >= 5,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],  # other work on the machine slows every column
            "platform": platform.platform(),
        },
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


def print_table(report: dict) -> None:
    v = report["video"]
    load = report["machine"]["load_average_1m"]
    print(
        f"\n{v['frames']} frames, {v['width']}x{v['height']} {v['codec']} @ {v['fps']:g} fps, GOP {v['gop']}; "
        f"{report['machine']['cpus']} CPUs, load average {load:.1f}"
    )
    methods = list(dict.fromkeys(x["method"] for x in report["results"]))
    tasks = list(dict.fromkeys(x["task"] for x in report["results"]))
    cell = {(x["task"], x["method"]): f"{x['median_s']:.3f} s" for x in report["results"]}
    print(f"| {'task (median)':<28} | " + " | ".join(f"{m:<24}" for m in methods) + " |")
    print(f"|{'-' * 30}|" + "|".join("-" * 26 for _ in methods) + "|")
    for t in tasks:
        print(f"| {t:<28} | " + " | ".join(f"{cell.get((t, m), '-'):<24}" for m in methods) + " |")
    tg = report["targets"]
    print(
        f"\ndense 64-frame clip: {tg['dense64_s']:.3f} s (target < 0.5 s: {'met' if tg['dense64_under_0.5s'] else 'MISSED'})"
    )
    print(
        f"uniform 16 vs sequential PyAV: {tg['uniform_speedup_vs_sequential']:.1f}x "
        f"(target >= 5x: {'met' if tg['uniform_speedup_at_least_5x'] else 'MISSED'})"
    )


if __name__ == "__main__":
    main(parse_args())
