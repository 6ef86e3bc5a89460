"""Training speed and memory of DTCM on this CPU for frame-sharing k = 1 and k = 4 (SPEC A3).

One training step is what ``dtcm.train`` does: the joint forward (LightDCE on the keyframes, curves on
every frame, the shipped 3D-ShuffleNetV2 by default), every loss of Eq. 1-7, backward, gradient clipping and an AdamW step, on
random dark clips (B, 3, 16, 112, 112). Each k runs in its own subprocess so that its peak memory (the
process's maximum RSS) is its own; "training memory" is that peak minus the RSS just before the first
step (model and optimizer built), i.e. what the activations and gradients cost.

Targets: k = 4 needs at most 0.75x the training memory of k = 1, and trains faster. With ``--curve-size N``
the k = 4 step is measured once more with the curves estimated on keyframes downscaled to a short side of N
(``dtcm train --curve-size``), and the report gives what that buys against full-size estimation.

Timing uses one intra-op thread by default: on shared cores, OpenMP threads that spin while other processes
hold the cores make multi-threaded timings swing by 10x. Steps are reported as median and best.

Usage:
    python3 benchmarks/train_speed.py [--batch-size 4] [--steps 3] [--model dtcm_shufflenetv2] [--curve-size 56]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model", default="dtcm_shufflenetv2", help="variant from dtcm.model.list_models() (default: the shipped one)"
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--clip-len", type=int, default=16)
    p.add_argument("--crop", type=int, default=112)
    p.add_argument("--steps", type=int, default=4, help="timed steps per k (after one warm-up step)")
    p.add_argument("--ks", default="1,4", help="frame-sharing factors to compare")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads; 0: torch's default")
    p.add_argument("--out", type=Path, default=HERE / "results" / "train_speed.json")
    p.add_argument("--curve-size", type=int, default=None, help="also time k = 4 with curves estimated at this size")
    p.add_argument("--worker-k", type=int, default=None, help=argparse.SUPPRESS)  # internal: measure one k
    return p.parse_args(argv)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure(args, k: int, curve_size: int | None = None) -> dict:
    """Run in a fresh process: build the model, one warm-up step, then time ``args.steps`` steps."""
    import torch

    sys.path.insert(0, str(REPO))
    from dtcm.model import create_model
    from dtcm.train import TrainStep, compute_losses

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model, clip_len=args.clip_len, crop_size=args.crop, k=k, curve_size=curve_size)
    step_module = TrainStep(model, "one-stage-total", k).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    b, t, s = args.batch_size, args.clip_len, args.crop
    g = torch.Generator().manual_seed(0)
    x = torch.rand(b, 3, t, s, s, generator=g) * 0.15  # dark clips in [0, 0.15]
    labels = torch.randint(0, model.config.num_classes, (b,), generator=g)

    def step():
        logits, y, curves = step_module(x)
        loss = compute_losses("one-stage-total", logits, labels, x, y, curves, 0.1, 4.0)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    base_rss = _rss_mb()
    t0 = time.perf_counter()
    step()  # warm-up: first-call overheads and the optimizer state
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = _peak_rss_mb()
    median = statistics.median(times)
    return {
        "k": k,
        "curve_size": curve_size,
        "step_s_median": median,
        "step_s_min": min(times),
        "step_s": times,
        "warmup_s": warmup_s,
        "clips_per_s": b / median,
        "clips_per_s_best": b / min(times),
        "base_rss_mb": base_rss,
        "peak_rss_mb": peak,
        "train_mem_mb": peak - base_rss,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker_k is not None:
        print("RESULT " + json.dumps(measure(args, args.worker_k, args.curve_size)), flush=True)
        return 0
    import torch

    runs = [(int(v), None) for v in args.ks.split(",")] + ([(4, args.curve_size)] if args.curve_size else [])
    rows = []
    for k, curve in runs:
        cmd = [sys.executable, __file__, "--worker-k", str(k), "--model", args.model]
        cmd += ["--curve-size", str(curve)] if curve else []
        cmd += ["--batch-size", str(args.batch_size), "--clip-len", str(args.clip_len), "--crop", str(args.crop)]
        cmd += ["--steps", str(args.steps)] + (["--threads", str(args.threads)] if args.threads else [])
        print(f"measuring k = {k}" + (f", curves at {curve}" if curve else "") + " ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        rows.append(json.loads(lines[-1].removeprefix("RESULT ")))

    by_k = {r["k"]: r for r in rows if r["curve_size"] is None}
    report = {
        "benchmark": "train_speed",
        "model": args.model,
        "batch_size": args.batch_size,
        "clip": f"{args.clip_len}x{args.crop}x{args.crop}",
        "setting": "one-stage-total (Eq. 7), AdamW, clip 1.0",
        "torch": torch.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1m": os.getloadavg()[0],
        "results": rows,
    }
    if 1 in by_k and 4 in by_k:
        one, four = by_k[1], by_k[4]
        report["memory_ratio_k4_k1"] = four["train_mem_mb"] / one["train_mem_mb"]
        report["peak_rss_ratio_k4_k1"] = four["peak_rss_mb"] / one["peak_rss_mb"]
        report["speedup_k4_over_k1"] = four["clips_per_s"] / one["clips_per_s"]
        report["target_memory_met"] = report["memory_ratio_k4_k1"] <= 0.75
        report["target_speed_met"] = report["speedup_k4_over_k1"] > 1.0
    small = next((r for r in rows if r["curve_size"]), None)
    if small and 4 in by_k:
        report["speedup_curve_size_over_k4"] = small["clips_per_s"] / by_k[4]["clips_per_s"]
        report["memory_ratio_curve_size_k4"] = small["train_mem_mb"] / by_k[4]["train_mem_mb"]
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def print_table(report: dict) -> None:
    print(
        f"\n{report['model']}, batch {report['batch_size']}, {report['clip']}, {report['setting']}; "
        f"{report['machine']}, torch {report['torch']}, load {report['load_average_1m']:.1f}"
    )
    print("| k | curves at | step s (median / min) | clips/s (median / best) | peak RSS (MB) | training memory (MB) |")
    print("|---|---|---|---|---|---|")
    for r in report["results"]:
        print(
            f"| {r['k']} | {r.get('curve_size') or 'full size'} | {r['step_s_median']:.2f} / {r['step_s_min']:.2f} | "
            f"{r['clips_per_s']:.2f} / {r['clips_per_s_best']:.2f} | {r['peak_rss_mb']:.0f} | {r['train_mem_mb']:.0f} |"
        )
    if "memory_ratio_k4_k1" in report:
        print(
            f"k = 4 vs k = 1: training memory x{report['memory_ratio_k4_k1']:.2f} (target <= 0.75: "
            f"{'met' if report['target_memory_met'] else 'NOT met'}), peak RSS x{report['peak_rss_ratio_k4_k1']:.2f}, "
            f"speed x{report['speedup_k4_over_k1']:.2f} (target > 1: "
            f"{'met' if report['target_speed_met'] else 'NOT met'})"
        )
    if "speedup_curve_size_over_k4" in report:
        print(
            f"k = 4, curves on downscaled keyframes vs full size: speed x{report['speedup_curve_size_over_k4']:.2f}, "
            f"training memory x{report['memory_ratio_curve_size_k4']:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
