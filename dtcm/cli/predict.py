"""``dtcm predict CLIP``: the Top-5 actions of a clip, or "not sure" and the guesses."""

from __future__ import annotations

import json

from dtcm.checks import VIDEO_SUFFIXES
from dtcm.cli._common import cli_model

VIDEO_KINDS = ", ".join(s.lstrip(".") for s in VIDEO_SUFFIXES)  # "mp4, avi, mov, mkv, webm"


def add_cli_arguments(parser) -> None:
    parser.add_argument("clip", help=f"video file ({VIDEO_KINDS})")
    parser.add_argument("--model", default=None, help="Hub repo id, model folder or shipped variant (default: shipped)")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub repo")
    parser.add_argument("--k", type=int, default=None, help="frame-sharing factor (default: the model's)")
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print (default 5)")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"sure": ..., "reason": ..., "top5": [{"label": ..., "prob": ...}, ...]}',
    )


def cli_main(args) -> int:
    from dtcm.pipeline import recognise

    model = cli_model(args.clip, args.model, args.revision, args.k)
    result = recognise(model, args.clip, k=args.k, topk=args.topk)
    top, verdict = result["top"], result["verdict"]
    if args.json:
        # the verdict travels with the guesses: a script must not read a "not sure" guess as an answer
        top5 = [{"label": label, "prob": round(p, 6)} for label, p in top]
        print(json.dumps({"sure": bool(verdict["sure"]), "reason": verdict["reason"], "top5": top5}))
        return 0
    if not verdict["sure"]:
        print(f"not sure: {verdict['reason']}")
        print("guesses:")
    width = max(len(label) for label, _ in top)
    for rank, (label, p) in enumerate(top, 1):
        print(f"{rank}. {label:<{width}}  {100 * p:6.2f}%")
    return 0
