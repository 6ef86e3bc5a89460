"""``dtcm calibrate``: fit a variant's temperature and not-sure thresholds on held-out clips, report ECE."""

from __future__ import annotations

import json
from pathlib import Path


def add_cli_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="shipped variant or model folder (Hub ids: download first)")
    parser.add_argument("--synthetic", required=True, help="held-out synthetic split, e.g. data/synth-cal/all.txt")
    parser.add_argument(
        "--real", nargs="+", required=True, metavar="NAME=SPLIT", help="real splits, e.g. filmed=data/real-val/..."
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="write the fitted fields into the model's config.json")
    parser.add_argument(
        "--confident-only",
        action="store_true",
        help="write the threshold that only holds the answers at p >= 0.9 to 1 in 10 wrong (default: every answer)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def cli_main(args) -> int:
    from dtcm.calibration import calibrate, write_calibration
    from dtcm.hub.load import _local_folder, quiet_hub_logging, resolve_model

    real = {}
    for item in args.real:
        name, sep, split = item.partition("=")
        if not sep or not name or not Path(split).exists():
            raise ValueError(f"--real takes NAME=SPLIT with an existing split, got {item!r}")
        real[name] = split
    if not Path(args.synthetic).exists():
        raise FileNotFoundError(f"no such list or folder: {args.synthetic}")
    folder = _local_folder(args.model)
    if folder is None:
        raise ValueError(f"--model must be a shipped variant or a model folder, got {args.model!r}")
    quiet_hub_logging()
    report = calibrate(resolve_model(str(folder)), args.synthetic, real, args.batch_size)
    if args.confident_only:
        report["not_sure_below"] = report["confident_only_not_sure_below"]
        for m in report["sets"].values():
            m["after"] = m["after_confident_only"]
    if args.write:
        write_calibration(folder, report["temperature"], report["not_sure_below"], report["min_energy"])
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"temperature {report['temperature']:.3f}, not sure below p = {report['not_sure_below']:.3f} "
        f"or energy {report['min_energy']:.3f}" + (f"; written to {folder / 'config.json'}" if args.write else "")
    )
    for name, m in report["sets"].items():
        b, a = m["before"], m["after"]
        wrong = "-" if a["wrong_confident"] is None else f"{a['wrong_confident']:.0%}"
        print(
            f"  {name:<10} n {b['n']:>3}  Top-1 {b['top1']:.1%}  Top-5 {b['top5']:.1%}  ECE {b['ece']:.3f} -> "
            f"{a['ece']:.3f}  not sure {a['not_sure']:.0%}  wrong at p >= 0.9: {wrong} of {a['confident']}"
        )
    return 0
