"""``dtcm import-hara CHECKPOINT OUT_DIR``: a Hara et al. Kinetics checkpoint as a DTCM model folder."""

from __future__ import annotations


def add_cli_arguments(parser):
    parser.add_argument("checkpoint", help="Hara et al. .pth checkpoint")
    parser.add_argument("out_dir", help="folder to write (config.json + model.safetensors)")
    parser.add_argument("--backbone", default=None, help="our backbone name (default: from the file's arch)")
    parser.add_argument("--enhancer", default="lightdce", choices=["lightdce", "zerodce", "none"])
    parser.add_argument("--clip-len", type=int, default=None)


def cli_main(args) -> int:
    overrides = {"clip_len": args.clip_len} if args.clip_len else {}
    from dtcm.model import import_hara

    model = import_hara(args.checkpoint, backbone=args.backbone, enhancer=args.enhancer, **overrides)
    model.save_pretrained(args.out_dir)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out_dir}: {model.config.backbone}, {model.config.num_classes} classes, {n:,} parameters")
    return 0
