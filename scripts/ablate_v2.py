"""Which elements of DarkActions-synth v2 move the accuracy on real footage: one fine-tune per element switched off.

    python scripts/ablate_v2.py --init weights/dtcm-shufflenetv2-wstc4 --backgrounds ../shared/data/enhance_train \\
        --footage ../shared/data/real --real-val data/real-val --out data/ablation-v2
    python scripts/ablate_v2.py ... --arms v2 no-volume no-style   # a subset (e.g. one process per core)
    python scripts/ablate_v2.py ... --report                        # the table of the arms measured so far

Every arm renders its own clips (same seed, same count), fine-tunes the same starting model on them with the
same schedule (``dtcm train``, one-stage L_total) and is measured on the real validation set written by
``scripts/build_real_val.py`` (``filmed/`` and ``darkened/``). Arms: ``v1`` (the capsule figures), ``v2`` (every
element on, in front of the photographs of ``--backgrounds``), ``no-ELEMENT`` for each of v2's switches and ``procedural``
(v2 in front of painted scenes instead of the photographs). An arm already done is read back,
so an interrupted run goes on where it stopped. Results: ``OUT/ARM/metrics.json`` and ``OUT/ablation.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from dtcm.synthetic.render import RenderOptions

ARMS = ("v1", "v2", *(f"no-{name}" for name in RenderOptions.names()), "procedural")


def render_args(arm: str, backgrounds: str, footage: str) -> list[str]:
    """The ``dtcm make-synthetic`` flags that make one arm's clips (v1 films in front of ``footage``)."""
    if arm == "v1":
        return ["--version", "1", "--backgrounds", footage]
    if arm == "procedural":
        return ["--version", "2"]
    if arm == "v2":
        return ["--version", "2", "--backgrounds", backgrounds]
    if arm.startswith("no-") and arm[3:] in RenderOptions.names():
        return ["--version", "2", "--backgrounds", backgrounds, f"--{arm}"]
    raise ValueError(f"unknown arm {arm!r}; the arms are {', '.join(ARMS)}")


def _dtcm(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dtcm.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dtcm {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def run_arm(arm: str, args) -> dict:
    folder = Path(args.out) / arm
    metrics = folder / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())
    data, run = folder / "data", folder / "run"
    if not (data / "split1_train.txt").is_file():
        flags = ["--out", str(data), "--per-class", str(args.per_class), "--seed", str(args.seed)]
        _dtcm("make-synthetic", *flags, *render_args(arm, args.backgrounds, args.footage))
        lines = (data / "split1_train.txt").read_text() + (data / "split1_test.txt").read_text()
        (data / "split1_train.txt").write_text(lines)  # every clip trains; the measure is the real set
    if not (run / "final" / "config.json").is_file():
        _dtcm(
            "train", "--data", str(data), "--init", args.init, "--setting", "one-stage-total", "--w-stc", "4",
            "--k", "4", "--enhancer-bn", "frozen", "--lr", str(args.lr), "--lr-warmup-steps", "2",
            "--batch-size", "8", "--max-steps", str(args.steps), "--epochs", "100", "--seed", "1",
            "--num-workers", "0", "--cache", "--checkpoint-every", "0", "--no-progress",
            "--output-dir", str(run),
        )  # fmt: skip
    result = {
        "arm": arm,
        "render": render_args(arm, args.backgrounds, args.footage),
        "steps": args.steps,
        "lr": args.lr,
    }
    for part in ("filmed", "darkened"):
        out = _dtcm(
            "evaluate",
            "--model",
            str(run / "final"),
            "--data",
            str(Path(args.real_val) / part / "split1_test.txt"),
            "--json",
        )
        r = json.loads(out)
        result[part] = {"top1": r["top1"], "n": r["n"], "per_class": r.get("per_class")}
    n = result["filmed"]["n"] + result["darkened"]["n"]
    result["real"] = (
        result["filmed"]["top1"] * result["filmed"]["n"] + result["darkened"]["top1"] * result["darkened"]["n"]
    ) / n
    metrics.write_text(json.dumps(result, indent=1) + "\n")
    return result


def report(out: Path, init: str) -> str:
    rows = [json.loads((out / a / "metrics.json").read_text()) for a in ARMS if (out / a / "metrics.json").is_file()]
    base = next((r for r in rows if r["arm"] == "v2"), None)
    lines = [
        f"Fine-tuned from `{init}` on each arm's clips, measured on the real validation set (1-clip Top-1, %).",
        "",
        "| arm | filmed | darkened | real, all | vs v2 (points) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        delta = "" if base is None or r is base else f"{100 * (r['real'] - base['real']):+.1f}"
        lines.append(
            f"| {r['arm']} | {100 * r['filmed']['top1']:.1f} | {100 * r['darkened']['top1']:.1f} | "
            f"{100 * r['real']:.1f} | {delta} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "ablation.md").write_text(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", required=True, help="the model every arm starts from (a model folder)")
    p.add_argument("--backgrounds", required=True, help="real photographs for v2 (../shared/data/enhance_train)")
    p.add_argument("--footage", required=True, help="real footage for v1's clips (../shared/data/real)")
    p.add_argument("--real-val", required=True, help="folder written by scripts/build_real_val.py")
    p.add_argument("--out", default="data/ablation-v2")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--per-class", type=int, default=6)
    p.add_argument("--seed", type=int, default=21, help="render seed (the same for every arm)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--report", action="store_true", help="only write the table of the arms done")
    args = p.parse_args(argv)
    for path in (args.init, args.backgrounds, args.footage, args.real_val):
        if not Path(path).exists():
            p.error(f"no such file or folder: {path}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.report:
        for arm in args.arms:
            r = run_arm(arm, args)
            print(f"{arm}: filmed {r['filmed']['top1']:.3f}, darkened {r['darkened']['top1']:.3f}", flush=True)
    print(report(Path(args.out), args.init))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
