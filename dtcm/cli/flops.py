"""``dtcm flops``: parameters and multiply-accumulates of a DTCM model, counted on the meta device.

Example:
    $ dtcm flops --model dtcm_i3d            # the variant's backbone, enhancer, k, clip length and size
    $ dtcm flops --backbone resnext101 --frames 64 --size 112
"""

from __future__ import annotations

import json

# what the flags mean when neither they nor --model say otherwise (the paper's DTCM-ResNeXt-101 setting)
FALLBACK = dict(backbone="resnext101", enhancer="lightdce", classes=11, frames=64, size=112, k=4, width_mult=1.0)


def add_cli_arguments(parser):
    parser.add_argument("--model", help="DTCM variant to count, e.g. dtcm_i3d (its settings; flags override them)")
    parser.add_argument("--backbone", help=f"backbone registry name (default {FALLBACK['backbone']})")
    parser.add_argument("--enhancer", choices=["lightdce", "zerodce", "none"])
    parser.add_argument("--classes", type=int)
    parser.add_argument("--frames", type=int, help=f"T (default the variant's clip length, else {FALLBACK['frames']})")
    parser.add_argument("--size", type=int, help=f"H = W (default the variant's crop, else {FALLBACK['size']})")
    parser.add_argument("--k", type=int)
    parser.add_argument("--width-mult", type=float)
    parser.add_argument("--json", action="store_true", help="print JSON")


def _settings(args) -> dict:
    """The flags given, over the variant's settings (``--model``), over FALLBACK."""
    settings = dict(FALLBACK)
    if args.model:
        from dtcm.model import variant_config

        cfg = variant_config(args.model)
        settings.update(
            backbone=cfg.backbone,
            enhancer=cfg.enhancer,
            classes=cfg.num_classes,
            frames=cfg.clip_len,
            size=cfg.crop_size,
            k=cfg.k,
            width_mult=cfg.width_mult,
        )
    settings.update({name: getattr(args, name) for name in FALLBACK if getattr(args, name) is not None})
    return settings


def cli_main(args) -> int:
    from dtcm.config import DTCMConfig

    s = _settings(args)
    for name in ("classes", "frames", "size", "k"):
        if s[name] < 1:
            raise ValueError(f"--{name} must be >= 1, got {s[name]}")
    cfg = DTCMConfig(
        backbone=s["backbone"],
        num_classes=s["classes"],
        class_names=tuple(f"class_{i}" for i in range(s["classes"])),
        enhancer=s["enhancer"],
        k=s["k"],
        width_mult=s["width_mult"],
    )
    from dtcm.flops import model_cost

    cost = model_cost(cfg, frames=s["frames"], size=s["size"], k=s["k"])
    if args.json:
        print(json.dumps(cost))
    else:
        print(f"{'':10s}{'params':>14s}{'GMACs':>10s}   ({s['backbone']}, {s['frames']}x{s['size']}x{s['size']})")
        for part in ("enhancer", "backbone", "total"):
            print(f"{part:10s}{cost['params'][part]:>14,d}{cost['macs'][part] / 1e9:>10.3f}")
    return 0
