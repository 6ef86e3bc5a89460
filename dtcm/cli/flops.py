"""``dtcm flops``: parameters and multiply-accumulates of a DTCM model, counted on the meta device."""

from __future__ import annotations

import json


def add_cli_arguments(parser):
    parser.add_argument("--backbone", default="resnext101", help="backbone registry name")
    parser.add_argument("--enhancer", default="lightdce", choices=["lightdce", "zerodce", "none"])
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print JSON")


def cli_main(args) -> int:
    from dtcm.config import DTCMConfig

    for name in ("classes", "frames", "size", "k"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    cfg = DTCMConfig(
        backbone=args.backbone,
        num_classes=args.classes,
        class_names=tuple(f"class_{i}" for i in range(args.classes)),
        enhancer=args.enhancer,
        k=args.k,
        width_mult=args.width_mult,
    )
    from dtcm.flops import model_cost

    cost = model_cost(cfg, frames=args.frames, size=args.size, k=args.k)
    if args.json:
        print(json.dumps(cost))
    else:
        print(f"{'':10s}{'params':>14s}{'GMACs':>10s}")
        for part in ("enhancer", "backbone", "total"):
            print(f"{part:10s}{cost['params'][part]:>14,d}{cost['macs'][part] / 1e9:>10.3f}")
    return 0
