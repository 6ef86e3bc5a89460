"""``dtcm import-zerodce CHECKPOINT OUT_DIR``: the Zero-DCE authors' weights as an enhancer-only DTCM folder."""

from __future__ import annotations

from pathlib import Path


def add_cli_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="the authors' Zero-DCE .pth (a plain state_dict, e_conv1..e_conv7)")
    parser.add_argument("out_dir", help="folder to write (config.json, model.safetensors, README.md)")


def cli_main(args) -> int:
    from dtcm.zerodce_import import import_zerodce, write_card

    model = import_zerodce(args.checkpoint)
    out = Path(args.out_dir)
    model.save_pretrained(out)
    write_card(out, Path(args.checkpoint).name)
    n = sum(p.numel() for p in model.enhancer.parameters())
    print(f"wrote {out}: Zero-DCE from {Path(args.checkpoint).name}, {n:,} enhancer parameters, r negated")
    print(f"point the apps at it with DTCM_ZERODCE_PUBLISHED={out}")
    return 0
