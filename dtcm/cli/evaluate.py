"""``dtcm evaluate``: 1-clip centre-crop Top-1/Top-5 of a model on a split, printed or as JSON, with a report."""

from __future__ import annotations

import json
from pathlib import Path

from dtcm.device import to_device
from dtcm.evaluate import evaluate, write_report

__all__ = ["add_cli_arguments", "cli_main"]


def add_cli_arguments(parser) -> None:
    parser.add_argument("--model", default=None, help="Hub repo id, model folder or shipped variant (default: shipped)")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub repo")
    parser.add_argument("--data", required=True, help="split list (ARID / Dark-48 .txt, .csv) or dataset folder")
    parser.add_argument("--split", type=int, default=1, help="split number inside a folder of lists (default 1)")
    parser.add_argument("--k", type=int, default=None, help="frame-sharing factor (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--out", default=None, help="folder for metrics.json, confusion.csv and confusion.html")


def cli_main(args) -> int:
    from dtcm.hub import quiet_hub_logging, resolve_model

    if not Path(args.data).exists():
        raise FileNotFoundError(f"no such list or folder: {args.data}")
    quiet_hub_logging()
    model = to_device(resolve_model(args.model, revision=args.revision))
    result = evaluate(model, args.data, args.batch_size, args.num_workers, k=args.k, split=args.split)
    if args.out:
        write_report(result, args.out)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Top-1 {100 * result['top1']:.2f}%  Top-5 {100 * result['top5']:.2f}%  ({result['n']} clips", end="")
    print(f", {result['skipped']} skipped)" if result["skipped"] else ")")
    width = max(len(n) for n in result["class_names"])
    for name, acc in result["per_class"].items():
        print(f"  {name:<{width}}  {'   n/a' if acc is None else f'{100 * acc:6.2f}%'}")
    if args.out:
        print(f"wrote {args.out}/metrics.json, confusion.csv, confusion.html")
    return 0
