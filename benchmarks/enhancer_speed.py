"""Enhancer speed (issue 2): ZeroDCE (k = 1) vs LightDCE (k = 1, 2, 4, 8, 16) on one 1x3x64x112x112 clip, CPU.

Every case runs once per round and the rounds are interleaved (the order rotates), so the load of a shared
machine falls on all cases alike; the tables give medians over rounds of the wall-clock time (and of the
process CPU time, a load-robust check) and ratios computed within the run.

* main: the eager eval-mode ``ClipEnhancer`` (under ``torch.no_grad``) and ``optimize_for_inference`` of it.
* steps: what each optimisation step of ``dtcm.inference`` gives, cumulatively, for LightDCE at k = 1 and 4
  and for ZeroDCE at k = 1 (which gets every step that applies to it).

* scene: the scene-keeping LightDCE (``lightdce_scene``, issue 19: keyframes estimated at a short side of 64,
  smooth maps, a curve on max(R, G, B), colour carried over) at every k, and what its curve step (maps + curves)
  costs alone, in percent of its enhance time (timed with an estimator that returns zeros at once).

Targets: LightDCE at k = 4 at least 8x faster than ZeroDCE at k = 1, and LightDCE at k = 1 no slower than
ZeroDCE at k = 1; the scene LightDCE at k = 4 at least 8x faster than ZeroDCE at k = 1. Judged fast against fast (ZeroDCE gets the same fused curves, channels-last memory and
oneDNN kernels) and also reported against the eager ZeroDCE. Writes benchmarks/results/enhancer_speed.json.

Usage:
    python3 benchmarks/enhancer_speed.py [--repeats 7] [--threads 1] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtcm.enhancer import ClipEnhancer, create_enhancer  # noqa: E402
from dtcm.inference import FastClipEnhancer, FastZeroDCE, FoldedLightDCE, optimize_for_inference  # noqa: E402

OUT = Path(__file__).parent / "results" / "enhancer_speed.json"
KS = (1, 2, 4, 8, 16)


@dataclass
class Case:
    name: str
    module: nn.Module
    k: int
    threads: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    max_diff: float = float("nan")

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        torch.set_num_threads(self.threads)
        with torch.no_grad():
            return self.module(x, self.k)

    def timed(self, x: torch.Tensor) -> None:
        torch.set_num_threads(self.threads)
        t, c = time.perf_counter(), time.process_time()
        with torch.no_grad():
            self.module(x, self.k)
        self.cpu.append(time.process_time() - c)
        self.wall.append(time.perf_counter() - t)

    @property
    def ms(self) -> float:
        return 1000 * statistics.median(self.wall)

    @property
    def cpu_ms(self) -> float:
        return 1000 * statistics.median(self.cpu)


def randomized(name: str) -> ClipEnhancer:
    """An eval-mode enhancer with non-trivial weights and BN statistics (speed does not depend on them)."""
    g = torch.Generator().manual_seed(0)
    enhancer = create_enhancer(name)
    with torch.no_grad():
        for m in enhancer.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return enhancer.eval()


class ZeroMaps(nn.Module):
    """An estimator that costs nothing: zero maps, to time the curve step alone."""

    def __init__(self, channels: int, iterations: int = 8):
        super().__init__()
        self.channels, self.iterations = channels, iterations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.channels, *x.shape[2:])


def bn_folded(enhancer: ClipEnhancer) -> ClipEnhancer:
    """Step 1 alone: the eager module with each conv + BatchNorm pair fused (torch.nn.utils.fusion)."""
    out = copy.deepcopy(enhancer)
    for seq in [m for m in out.modules() if isinstance(m, nn.Sequential)]:
        if len(seq) >= 2 and isinstance(seq[0], nn.Conv2d) and isinstance(seq[1], nn.BatchNorm2d):
            seq[0], seq[1] = fuse_conv_bn_eval(seq[0], seq[1]), nn.Identity()
    return out


def build_cases(
    light: ClipEnhancer, zero: ClipEnhancer, threads: int, default_threads: int, compile_: bool, scene: ClipEnhancer
):
    """(cases by name, main-table rows, step-table rows); a step row maps "light k1"/"light k4"/"zero k1" to a case."""
    cases: dict[str, Case] = {}

    def add(name, module, k, n_threads=threads):
        cases.setdefault(name, Case(name, module, k, n_threads))
        return name

    def fast(est, **kw):
        return FastClipEnhancer(est, **kw).eval()

    steps_light = [
        ("eager (eval, no_grad)", light),
        ("+ BatchNorm folded into convs", bn_folded(light)),
        ("+ split/cat/shuffle folded into weights", ClipEnhancer(FoldedLightDCE(light.estimator, False, False)).eval()),
        ("+ fused curves, 1 keyframe/call, inference_mode", fast(FoldedLightDCE(light.estimator, False, False))),
        ("+ channels-last", fast(FoldedLightDCE(light.estimator, True, False))),
        ("+ oneDNN fused conv+activation", fast(FoldedLightDCE(light.estimator, True, True, pack=False))),
        ("+ weights packed once (final)", optimize_for_inference(light)),
    ]
    steps_zero = [
        ("eager (eval, no_grad)", zero),
        ("+ fused curves, 1 keyframe/call, inference_mode", fast(FastZeroDCE(zero.estimator, False, False))),
        ("+ channels-last", fast(FastZeroDCE(zero.estimator, True, False))),
        ("+ oneDNN fused conv+activation", fast(FastZeroDCE(zero.estimator, True, True, pack=False))),
        ("+ weights packed once (final)", optimize_for_inference(zero)),
    ]
    if compile_:
        steps_light.append(("torch.compile(estimator) instead of 5-6", optimize_for_inference(light, compile=True)))
        steps_zero.append(("torch.compile(estimator) instead of 5-6", optimize_for_inference(zero, compile=True)))
    steps = []
    for label, module in steps_light:
        row = {
            "step": label,
            "light k1": add(f"light k1 | {label}", module, 1),
            "light k4": add(f"light k4 | {label}", module, 4),
        }
        zero_module = dict(steps_zero).get(label)
        if zero_module is not None:
            row["zero k1"] = add(f"zero k1 | {label}", zero_module, 1)
        steps.append(row)
    final = steps_light[6][1], steps_zero[4][1]
    if default_threads != threads:
        label = f"final, {default_threads} threads (torch default here)"
        steps.append({"step": label, "light k1": add(f"light k1 | {label}", final[0], 1, default_threads),
                      "light k4": add(f"light k4 | {label}", final[0], 4, default_threads),
                      "zero k1": add(f"zero k1 | {label}", final[1], 1, default_threads)})  # fmt: skip

    main = [
        (
            "ZeroDCE",
            1,
            add("zero k1 | eager (eval, no_grad)", zero, 1),
            add("zero k1 | + weights packed once (final)", final[1], 1),
        )
    ]
    for k in KS:
        main.append(
            (
                "LightDCE",
                k,
                add(f"light k{k} | eager (eval, no_grad)", light, k),
                add(f"light k{k} | + weights packed once (final)", final[0], k),
            )
        )
    scene_fast = optimize_for_inference(scene)
    for k in KS:
        main.append(
            ("LightDCE scene", k, add(f"scene k{k} | eager", scene, k), add(f"scene k{k} | final", scene_fast, k))
        )
    add("curves alone k4 | paper's fused curves", FastClipEnhancer(ZeroMaps(24)).eval(), 4)
    add("curves alone k4 | scene maps + curves", FastClipEnhancer(ZeroMaps(8), scene=True).eval(), 4)
    return cases, main, steps


def main(args: argparse.Namespace) -> dict:
    default_threads = torch.get_num_threads()
    x = torch.rand(1, 3, args.frames, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 0.25
    light, zero, scene = randomized("lightdce"), randomized("zerodce"), randomized("lightdce_scene")
    cases, main_rows, steps = build_cases(light, zero, args.threads, default_threads, args.compile, scene)

    reference = {}  # eager outputs, to check that every variant computes the same thing
    for case in cases.values():  # warm-up (and compile) round, not timed
        y, _ = case.run(x)
        key = (case.name.split(" |")[0].split()[0], case.k)
        if case.module in (light, zero, scene):
            reference[key] = y
    for case in cases.values():
        if case.name.startswith("curves alone"):
            continue
        y, _ = case.run(x)
        case.max_diff = (y - reference[(case.name.split()[0], case.k)]).abs().max().item()

    order = list(cases.values())
    load_before = os.getloadavg()
    for r in range(args.repeats):
        shift = r * len(order) // args.repeats
        for case in order[shift:] + order[:shift] if r % 2 == 0 else (order[shift:] + order[:shift])[::-1]:
            case.timed(x)
        print(f"round {r + 1}/{args.repeats} done", flush=True)
    load_after = os.getloadavg()
    torch.set_num_threads(default_threads)

    zero_eager, zero_fast = cases[main_rows[0][2]], cases[main_rows[0][3]]
    print(
        f"\nLoad average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} CPUs; {args.threads} thread(s)"
    )
    print("\nMain table: median wall ms (median CPU ms); speed-up = ZeroDCE k=1 time / this time")
    head = f"{'model':9} {'k':>3} {'eager ms':>18} {'fast ms':>18} {'fast/eager':>10} {'vs Zero fast':>12} {'vs Zero eager':>13} {'max|dy|':>8}"
    print(head)
    table = []
    for model, k, e_name, f_name in main_rows:
        e, f = cases[e_name], cases[f_name]
        row = {"model": model, "k": k, "eager_ms": e.ms, "fast_ms": f.ms, "eager_cpu_ms": e.cpu_ms, "fast_cpu_ms": f.cpu_ms,
               "speedup_vs_eager_self": e.ms / f.ms, "ratio_vs_zero_fast": zero_fast.ms / f.ms,
               "ratio_vs_zero_eager": zero_eager.ms / f.ms, "ratio_vs_zero_fast_cpu": zero_fast.cpu_ms / f.cpu_ms,
               "eager_ratio_vs_zero_eager": zero_eager.ms / e.ms, "max_abs_diff": f.max_diff}  # fmt: skip
        table.append(row)
        print(f"{model:9} {k:>3} {e.ms:>9.1f} ({e.cpu_ms:>6.1f}) {f.ms:>9.1f} ({f.cpu_ms:>6.1f}) {e.ms / f.ms:>9.2f}x "
              f"{zero_fast.ms / f.ms:>11.2f}x {zero_eager.ms / f.ms:>12.2f}x {f.max_diff:>8.1e}")  # fmt: skip
    print(
        "(eager LightDCE vs eager ZeroDCE: "
        + ", ".join(f"k={r['k']} {r['eager_ratio_vs_zero_eager']:.2f}x" for r in table[1:])
        + ")"
    )

    print(
        "\nStep table (cumulative): median wall ms (median CPU ms); last column = ZeroDCE k=1 / LightDCE k=4, same step"
    )
    print(f"{'step':52} {'LightDCE k=1':>20} {'LightDCE k=4':>20} {'ZeroDCE k=1':>20} {'Zero1/Light4':>12}")
    step_rows = []
    for row in steps:
        got = {key: cases[name] for key, name in row.items() if key != "step"}
        cells = [
            f"{got[key].ms:>10.1f} ({got[key].cpu_ms:>6.1f})" if key in got else f"{'-':>19}"
            for key in ("light k1", "light k4", "zero k1")
        ]
        ratio = got["zero k1"].ms / got["light k4"].ms if "zero k1" in got else float("nan")
        print(f"{row['step']:52} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20} {ratio:>11.2f}x")
        step_rows.append({"step": row["step"], **{f"{key}_ms": c.ms for key, c in got.items()},
                          **{f"{key}_cpu_ms": c.cpu_ms for key, c in got.items()},
                          **{f"{key}_max_abs_diff": c.max_diff for key, c in got.items()}, "zero1_over_light4": ratio})  # fmt: skip

    alone = {c.name.split("| ")[1]: c for c in cases.values() if c.name.startswith("curves alone")}
    scene_k4 = next(r for r in table if r["model"] == "LightDCE scene" and r["k"] == 4)
    light_k4 = next(r for r in table if r["model"] == "LightDCE" and r["k"] == 4)
    curve_cost = {
        "scene_curve_step_ms": alone["scene maps + curves"].ms,
        "scene_curve_step_pct_of_scene_k4": 100 * alone["scene maps + curves"].ms / scene_k4["fast_ms"],
        "paper_curve_step_ms": alone["paper's fused curves"].ms,
        "paper_curve_step_pct_of_light_k4": 100 * alone["paper's fused curves"].ms / light_k4["fast_ms"],
    }
    print(
        f"\nCurve step alone at k = 4 (zero-cost estimator): scene maps + curves {curve_cost['scene_curve_step_ms']:.1f} ms"
        f" = {curve_cost['scene_curve_step_pct_of_scene_k4']:.0f} % of the scene LightDCE's {scene_k4['fast_ms']:.1f} ms;"
        f" the paper's fused curves {curve_cost['paper_curve_step_ms']:.1f} ms"
        f" = {curve_cost['paper_curve_step_pct_of_light_k4']:.0f} % of LightDCE's {light_k4['fast_ms']:.1f} ms"
    )
    k4, k1 = table[1 + KS.index(4)], table[1]
    targets = {
        "light_scene_k4_8x_vs_zero_fast": scene_k4["ratio_vs_zero_fast"] >= 8,
        "light_k4_8x_vs_zero_fast": k4["ratio_vs_zero_fast"] >= 8,
        "light_k4_8x_vs_zero_eager": k4["ratio_vs_zero_eager"] >= 8,
        "light_k1_not_slower_than_zero_fast": k1["ratio_vs_zero_fast"] >= 1,
        "light_k1_not_slower_than_zero_eager": k1["ratio_vs_zero_eager"] >= 1,
    }
    print("\nTargets: " + ", ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets.items()))
    result = {
        "config": {
            "frames": args.frames,
            "size": args.size,
            "repeats": args.repeats,
            "threads": args.threads,
            "default_threads": default_threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
        },  # fmt: skip
        "main": table,
        "curve_step": curve_cost,
        "steps": step_rows,
        "targets": targets,
        "cases": {
            c.name: {
                "k": c.k,
                "threads": c.threads,
                "wall_ms": [1000 * t for t in c.wall],
                "cpu_ms": [1000 * t for t in c.cpu],
                "max_abs_diff": c.max_diff,
            }
            for c in cases.values()
        },  # fmt: skip
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return result


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians over them)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the main runs (1 is the robust choice on a shared machine)",
    )
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the estimators (compiles ~20 s)")
    p.add_argument("--out", type=Path, default=OUT)
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
