"""``dtcm quality INPUTS``: no-reference enhancement quality of our enhancers and classical ones on photos or
clips, as a table or JSON, with an optional contact sheet.

    $ dtcm quality ../shared/data/enhance_test --zerodce-published runs/zerodce-published --sheet reports/q.png
"""

from __future__ import annotations

import json
import os

from dtcm.pipeline import DEFAULT_ENHANCER, PUBLISHED_ENV


def add_cli_arguments(parser) -> None:
    parser.add_argument("inputs", help="a folder of photos (jpg, png, bmp, webp) and/or clips, or one file")
    parser.add_argument("--model", default=DEFAULT_ENHANCER, help="our enhancer: a variant, folder or repo id")
    parser.add_argument("--zerodce", default="zerodce-real", help="our retrained Zero-DCE ('' to leave out)")
    parser.add_argument(
        "--zerodce-published",
        default=None,
        help=f"a folder made by dtcm import-zerodce (default: ${PUBLISHED_ENV})",
    )
    parser.add_argument("--classic", default="he,clahe,gic", help="classical enhancers, comma-separated")
    parser.add_argument("--k", type=int, default=None, help="frame sharing on clips (default: each model's)")
    parser.add_argument("--split", default="all", choices=["all", "train", "held-out"], help="photo split")
    parser.add_argument("--long-side", type=int, default=640)
    parser.add_argument("--max-frames", type=int, default=16, help="frames read from each clip")
    parser.add_argument("--darken", type=float, default=None, help="film the inputs at this exposure first")
    parser.add_argument("--no-adaptive", action="store_true", help="leave out 'ours (adaptive)'")
    parser.add_argument("--sheet", default=None, help="write a contact sheet PNG here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cli_main(args) -> int:
    from dtcm.quality import classical, contact_sheet, format_table, learned, list_inputs, load_inputs, measure

    published = args.zerodce_published or os.environ.get(PUBLISHED_ENV)
    inputs = load_inputs(list_inputs(args.inputs, args.split), args.long_side, args.max_frames, args.darken)
    methods = {"ours": learned(args.model, args.k)}
    if not args.no_adaptive:
        methods["ours (adaptive)"] = learned(args.model, args.k, adaptive=True)
    if args.zerodce:
        methods["zero-dce (trained here)"] = learned(args.zerodce, args.k)
    if published:
        methods["zero-dce (published)"] = learned(published, args.k)
    for name in filter(None, args.classic.split(",")):
        methods[name] = classical(name)
    results, outputs = {}, {}
    for name, fn in methods.items():
        results[name], outputs[name] = measure(inputs, fn)
    if args.sheet:
        contact_sheet(inputs, {n: o for n, o in outputs.items() if n != "ours (adaptive)"}, args.sheet)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"{len(inputs)} inputs from {args.inputs} (long side <= {args.long_side})")
        print(format_table(results))
    return 0
