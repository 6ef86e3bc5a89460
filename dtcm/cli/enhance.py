"""``dtcm enhance IN OUT``: a dark clip in, its enhanced version out as a browser-playable H.264 mp4; or a
photo (jpg, png, bmp, webp) in and an enhanced photo of the same size out.

    $ dtcm enhance dark.mp4 bright.mp4 --k 4 --estimate-size 256
    $ dtcm enhance night.jpg night_bright.png --model zerodce-published   # $DTCM_ZERODCE_PUBLISHED
"""

from __future__ import annotations

import os
from pathlib import Path

from dtcm.checks import is_image
from dtcm.cli._common import cli_model
from dtcm.cli.predict import VIDEO_KINDS
from dtcm.pipeline import DEFAULT_ENHANCER, ESTIMATE_SIZE, PUBLISHED_ENV


def resolve_enhancer_spec(spec: str | None) -> str:
    """``--model``: None -> the shipped enhancer; ``zerodce-published`` -> the folder in $DTCM_ZERODCE_PUBLISHED."""
    if spec is None:
        return DEFAULT_ENHANCER
    if spec == "zerodce-published":
        folder = os.environ.get(PUBLISHED_ENV)
        if not folder:
            raise ValueError(f"--model zerodce-published needs {PUBLISHED_ENV}=FOLDER (made by dtcm import-zerodce)")
        return folder
    return spec


def add_cli_arguments(parser) -> None:
    parser.add_argument("input", help=f"dark clip ({VIDEO_KINDS}) or photo (jpg, png, bmp, webp)")
    parser.add_argument("output", help="enhanced clip to write (.mp4, H.264), or an image file for a photo")
    parser.add_argument(
        "--model",
        default=None,
        help=f"Hub repo id, model folder or variant (default: {DEFAULT_ENHANCER}); "
        f"zerodce-published reads ${PUBLISHED_ENV}",
    )
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub repo")
    parser.add_argument("--k", type=int, default=None, help="frame-sharing factor (default: the model's)")
    parser.add_argument(
        "--estimate-size",
        type=int,
        default=None,
        help=f"keyframe short side for curve estimation (0: full size; default {ESTIMATE_SIZE} for clips, "
        "full size for photos)",
    )
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")


def cli_main(args) -> int:
    from dtcm.pipeline import enhance_file, enhance_image_file

    if is_image(args.input):
        model = cli_model(args.input, resolve_enhancer_spec(args.model), args.revision, args.k)
        r = enhance_image_file(model, args.input, args.output, estimate_size=args.estimate_size or None)
        print(f"wrote {r['path']}: {r['width']}x{r['height']}, {r['seconds']:.1f} s")
        return 0
    if Path(args.output).suffix.lower() != ".mp4":
        raise ValueError(f"the output must be an .mp4 file (H.264), got {args.output!r}")
    model = cli_model(args.input, resolve_enhancer_spec(args.model), args.revision, args.k)
    size = ESTIMATE_SIZE if args.estimate_size is None else args.estimate_size
    r = enhance_file(model, args.input, args.output, k=args.k, estimate_size=size, max_frames=args.max_frames)
    print(
        f"wrote {r['path']}: {r['frames']} frames, {r['width']}x{r['height']} at {r['fps']:.3g} fps, "
        f"k={r['k']}, {r['seconds']:.1f} s"
    )
    return 0
