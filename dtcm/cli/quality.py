"""``dtcm quality INPUTS``: no-reference enhancement quality of our enhancers and classical ones on photos or
clips, as a table or JSON (the input itself is the first row), with an optional contact sheet.

    $ dtcm quality ../shared/data/enhance_test --zerodce-published ../shared/weights/zerodce-official/Epoch99.pth
    $ dtcm quality a.mp4 b.mp4 --max-frames 1 --zerodce '' --classic '' --sheet reports/q.png
"""

from __future__ import annotations

import json
import os

from dtcm.pipeline import DEFAULT_ENHANCER, ESTIMATE_SIZE, PUBLISHED_ENV


def add_cli_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", help="folders of photos (jpg, png, bmp, webp) and/or clips, or files")
    parser.add_argument("--model", default=DEFAULT_ENHANCER, help="our enhancer: a variant, folder or repo id")
    parser.add_argument("--zerodce", default="zerodce-real", help="our retrained Zero-DCE ('' to leave out)")
    parser.add_argument(
        "--zerodce-published",
        default=None,
        help=f"the authors' Epoch99.pth or a folder made by dtcm import-zerodce (default: ${PUBLISHED_ENV})",
    )
    parser.add_argument("--classic", default="he,clahe,gic", help="classical enhancers, comma-separated")
    parser.add_argument("--k", type=int, default=None, help="frame sharing on clips (default: each model's)")
    parser.add_argument(
        "--estimate-size",
        type=int,
        default=ESTIMATE_SIZE,
        help=f"keyframe short side for curves on clips (0: full size; default {ESTIMATE_SIZE}, as dtcm enhance)",
    )
    parser.add_argument("--split", default="all", choices=["all", "train", "held-out"], help="photo split")
    parser.add_argument("--long-side", type=int, default=640)
    parser.add_argument("--max-frames", type=int, default=16, help="frames read from each clip")
    parser.add_argument("--darken", type=float, default=None, help="film the inputs at this exposure first")
    parser.add_argument("--no-adaptive", action="store_true", help="leave out 'ours (adaptive)'")
    parser.add_argument("--sheet", default=None, help="write a contact sheet PNG here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cli_main(args) -> int:
    from dtcm.quality import (
        classical,
        contact_sheet,
        format_table,
        identity,
        learned,
        list_inputs,
        load_inputs,
        measure,
    )

    published = args.zerodce_published or os.environ.get(PUBLISHED_ENV)
    paths = [p for root in args.inputs for p in list_inputs(root, args.split)]
    inputs = load_inputs(paths, args.long_side, args.max_frames, args.darken)
    size = args.estimate_size or None
    methods = {"input": identity, "ours": learned(args.model, args.k, estimate_size=size)}
    if not args.no_adaptive:
        methods["ours (adaptive)"] = learned(args.model, args.k, adaptive=True, estimate_size=size)
    if args.zerodce:
        methods["zero-dce (trained here)"] = learned(args.zerodce, args.k, estimate_size=size)
    if published:
        methods["zero-dce (published)"] = learned(published, args.k, estimate_size=size)
    for name in filter(None, args.classic.split(",")):
        methods[name] = classical(name)
    results, outputs = {}, {}
    for name, fn in methods.items():
        results[name], outputs[name] = measure(inputs, fn)
    if args.sheet:
        shown = {n: o for n, o in outputs.items() if n not in ("input", "ours (adaptive)")}  # the sheet has the input
        contact_sheet(inputs, shown, args.sheet)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"{len(inputs)} inputs from {', '.join(args.inputs)} (long side <= {args.long_side})")
        print(format_table(results))
    return 0
