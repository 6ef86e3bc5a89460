"""GPU figures in one run: analyse latency, enhancer throughput, joint training speed and memory, bf16 agreement.

Everything runs on the device of :mod:`dtcm.device` (CUDA when present; ``DTCM_DEVICE`` forces one), under
its precision policy (bf16 autocast for the classifier on CUDA, float32 elsewhere). Sections:

* ``analyse``: latency of one clip. The shipped variant through ``service.analyse`` on an example clip
  (decode included, per-stage timings) and model-only (enhance + classify) for it and for DTCM-ResNeXt-101
  built from config at 64x112x112 with random weights.
* ``enhancer``: LightDCE throughput on 1080p frames at k = 1, 4, 16: the model's ``ClipEnhancer`` on the
  device, and the whole-video path of ``dtcm enhance`` (``fast_enhance``, keyframes estimated at 256).
* ``train``: one joint training step (L_total, Eq. 7; AdamW, clipping) of DTCM-ResNeXt-101 64x112x112 at
  k = 1 and k = 4: clips/s and peak memory (CUDA: peak allocated; CPU: the process's peak RSS). The paper
  reports 3,037 MB at k = 1 and 2,073 MB at k = 4.
* ``bf16``: logits under bf16 autocast against float32 (TF32 off) for the shipped variant on the example
  clips and for DTCM-ResNeXt-101 on random clips: max abs difference and top-1 agreement.

Each section is time-boxed (repeats stop at its budget, 40 s; an alarm ends it at 60 s) and a failing
section is written into the JSON as ``{"status": "failed", "error": ...}`` while the others go on, so the
full run fits in 5 minutes on a GPU such as an H200; ``--quick`` uses tiny sizes and takes seconds on a CPU.

Usage:
    python scripts/device_check.py --out docs/device_check.json
    python scripts/device_check.py --quick --out /tmp/device_check.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dtcm import device, hub, service  # noqa: E402
from dtcm.enhance_cli import enhance_frames  # noqa: E402
from dtcm.model import create_model  # noqa: E402
from dtcm.train import TrainStep, compute_losses  # noqa: E402

SHIPPED = ROOT / "weights" / "dtcm-shufflenetv2-wstc4"
EXAMPLES = sorted((ROOT / "examples").glob("*.mp4"))
KS = (1, 4, 16)
PAPER_TRAIN_MB = {1: 3037, 4: 2073}  # ResNeXt-101 + LightDCE, 64x112x112 (the paper)


@dataclass(frozen=True)
class Sizes:
    big: str  # the large model (a dtcm.model variant)
    clip_len: int  # T of the large model
    crop: int  # H = W of the large model
    frame_hw: tuple[int, int]  # the enhancer's frames (H, W)
    frames: int  # frames per enhancer call
    train_batch: int  # clips per training step
    train_steps: int  # timed training steps per k (after one warm-up step)
    examples: int  # example clips of the bf16 check (shipped variant)
    random_clips: int  # random clips of the bf16 check (large model)
    repeats: int  # timed repeats of a latency
    budget_s: float  # soft time budget per section; the alarm ends it at 1.5x this


FULL = Sizes("dtcm_resnext101", 64, 112, (1080, 1920), 16, 1, 5, 6, 8, 10, 40.0)
QUICK = Sizes("dtcm_tiny_test", 8, 32, (72, 128), 8, 2, 2, 1, 2, 2, 20.0)


class SectionTimeout(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds: float):
    """Raise SectionTimeout in the main thread after ``seconds`` (the section's hard time box)."""

    def handler(signum, frame):
        raise SectionTimeout(f"ran past its {seconds:.0f} s time box")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def timed(fn, dev, repeats: int, budget_s: float) -> dict:
    """One warm-up call, then up to ``repeats`` timed calls within ``budget_s``; milliseconds."""
    fn()
    device.synchronize(dev)
    times, end = [], time.perf_counter() + budget_s
    while len(times) < repeats and (not times or time.perf_counter() < end):
        t = time.perf_counter()
        fn()
        device.synchronize(dev)
        times.append(time.perf_counter() - t)
    return {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times), "runs": len(times)}


def dark_clips(n: int, t: int, s: int, dev, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, t, s, s, generator=g) * 0.15).to(dev)  # (n, 3, T, S, S) in [0, 0.15]


def big_model(sizes: Sizes, dev):
    """DTCM-ResNeXt-101 (or the quick stand-in) from config with random weights, built on the device."""
    torch.manual_seed(0)
    with dev:
        return create_model(sizes.big, clip_len=sizes.clip_len, crop_size=sizes.crop)


def shipped_model():
    return device.to_device(hub.resolve_model(str(SHIPPED)))


# ---------------------------------------------------------------------------------------------- sections
def section_analyse(sizes: Sizes, dev) -> dict:
    out = {}
    if EXAMPLES:
        variant = SHIPPED.name if SHIPPED.name in service.list_variants() else None
        last = {}

        def run():
            last.update(service.analyse(str(EXAMPLES[0]), variant=variant))

        out["service_analyse"] = {"clip": EXAMPLES[0].name, **timed(run, dev, sizes.repeats, sizes.budget_s / 3)}
        out["service_analyse"]["stages_ms"] = {k: 1000 * v for k, v in last["timings"].items()}
    for name, model in (("shipped", shipped_model()), (sizes.big, big_model(sizes, dev))):
        cfg = model.eval().config
        x = dark_clips(1, cfg.clip_len, cfg.crop_size, dev)
        row = {"clip": f"{cfg.clip_len}x{cfg.crop_size}x{cfg.crop_size}", "k": cfg.k}
        row.update(timed(lambda m=model, x=x: device.infer(m, x), dev, sizes.repeats, sizes.budget_s / 3))
        out[name] = row
        del model
    return out


def section_enhancer(sizes: Sizes, dev) -> dict:
    model = shipped_model().eval()
    h, w = sizes.frame_hw
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(sizes.frames, h, w, 3, generator=g) * 40).to(torch.uint8).numpy()  # dark uint8 frames
    x = torch.from_numpy(frames).to(dev).permute(3, 0, 1, 2)[None].float().div_(255)  # (1, 3, T, H, W)
    out = {"frames": sizes.frames, "frame": f"{w}x{h}"}
    per = sizes.budget_s / (2 * len(KS))
    for k in KS:

        def clip_enhancer(k=k):
            with torch.inference_mode():
                model.enhance(x, k)

        r = timed(clip_enhancer, dev, sizes.repeats, per)
        out[f"k{k}"] = {"clip_enhancer_fps": sizes.frames / (r["median_ms"] / 1000), "clip_enhancer": r}
    try:  # the folded fast path is CPU-tuned: if it fails on this device, keep the figures above
        for k in KS:
            r = timed(lambda k=k: enhance_frames(model, frames, k, estimate_size=256), dev, 2, per)
            out[f"k{k}"].update(enhance_frames_fps=sizes.frames / (r["median_ms"] / 1000), enhance_frames=r)
    except Exception as exc:
        out["enhance_frames_error"] = f"{type(exc).__name__}: {exc}"
    return out


def section_train(sizes: Sizes, dev) -> dict:
    model = big_model(sizes, dev)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    x = dark_clips(sizes.train_batch, sizes.clip_len, sizes.crop, dev)
    labels = torch.randint(0, model.config.num_classes, (sizes.train_batch,)).to(dev)
    precision = "bf16" if device.autocast_dtype(dev) is not None else "float32"
    out = {"model": sizes.big, "clip": f"{sizes.clip_len}x{sizes.crop}x{sizes.crop}", "batch": sizes.train_batch}
    out["precision"], out["paper_mb"] = precision, {f"k{k}": mb for k, mb in PAPER_TRAIN_MB.items()}
    for k in (1, 4):
        step_module = TrainStep(model, "one-stage-total", k).train()

        def step(step_module=step_module):
            with device.autocast(dev):
                logits, y, curves = step_module(x)
            loss = compute_losses("one-stage-total", logits.float(), labels, x, y, curves, 0.1, 4.0)["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step()  # the optimizer state exists from here on, so both k start from the same memory
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        r = timed(step, dev, sizes.train_steps, sizes.budget_s / 2)
        row = {**r, "clips_per_s": sizes.train_batch / (r["median_ms"] / 1000)}
        if dev.type == "cuda":
            row["peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
            row["train_mem_mb"] = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
        else:
            row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's, so far
        out[f"k{k}"] = row
    return out


def _agreement(model, clips, dev) -> dict:
    """float32 logits (TF32 off) against the policy's: enhancer float32, classifier under bf16 autocast (forced
    on a CPU too, where the policy itself stays float32)."""

    def bf16(c):
        y, _ = model.enhance(c[None])
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            return model.classify(y).float().cpu()

    with torch.inference_mode():
        with tf32(False):
            ref = torch.cat([model(c[None]).float().cpu() for c in clips])  # (N, C)
        low = torch.cat([bf16(c) for c in clips])  # (N, C)
    diff = (ref - low).abs()
    return {
        "clips": len(clips),
        "max_abs_diff": float(diff.max()),
        "max_logit": float(ref.abs().max()),
        "top1_agreement": float((ref.argmax(1) == low.argmax(1)).float().mean()),
    }


@contextlib.contextmanager
def tf32(enabled: bool):
    """True float32 on CUDA (TF32 off) inside; restores the settings after."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def section_bf16(sizes: Sizes, dev) -> dict:
    model = shipped_model().eval()
    clips = [hub.load_clip(model.config, p)[0].to(dev) for p in EXAMPLES[: sizes.examples]]
    clips = clips or list(dark_clips(sizes.random_clips, model.config.clip_len, model.config.crop_size, dev))
    out = {"shipped": _agreement(model, clips, dev)}
    big = big_model(sizes, dev).eval()
    out[sizes.big] = _agreement(big, list(dark_clips(sizes.random_clips, sizes.clip_len, sizes.crop, dev, 1)), dev)
    return out


SECTIONS = {"analyse": section_analyse, "enhancer": section_enhancer, "train": section_train, "bf16": section_bf16}


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds on a CPU), to test the script")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    return p.parse_args(argv)


def run_section(name: str, sizes: Sizes, dev) -> dict:
    t = time.perf_counter()
    try:
        with alarm(1.5 * sizes.budget_s):
            result = {"status": "ok", **SECTIONS[name](sizes, dev)}
    except Exception as exc:  # one failing section must not lose the others
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    result["seconds"] = time.perf_counter() - t
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    unknown = sorted(set(args.sections.split(",")) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; accepted: {', '.join(SECTIONS)}")
    sizes = QUICK if args.quick else FULL
    if args.quick:
        torch.set_num_threads(1)
    dev = device.resolve_device()
    t0 = time.perf_counter()
    report = {
        "script": "device_check",
        "quick": args.quick,
        "device": dev.type,
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "sizes": asdict(sizes),
    }
    for name in args.sections.split(","):
        print(f"{name} ...", flush=True)
        report[name] = run_section(name, sizes, dev)
        print(f"{name}: {report[name]['status']} in {report[name]['seconds']:.1f} s", flush=True)
    report["seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(report[n]["status"] == "ok" for n in args.sections.split(",")) else 1


if __name__ == "__main__":
    sys.exit(main())
