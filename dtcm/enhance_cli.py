"""``dtcm enhance IN OUT``: a dark clip in, its enhanced version out as a browser-playable H.264 mp4; or a
photo (jpg, png, bmp, webp) in and an enhanced photo of the same size out.

The clip is enhanced at its own resolution by the model's curve estimator with frame sharing (SPEC A3):
curves are estimated on one keyframe per group of k frames and applied to every frame of the group.
With ``estimate_size`` the keyframes are downscaled (short side) for estimation and the curve maps
upsampled back, which keeps large clips fast (the Zero-DCE++ idea); 0 / None estimates at full size.

Example:
    $ dtcm enhance dark.mp4 bright.mp4 --k 4 --estimate-size 256
    $ dtcm enhance night.jpg night_bright.png --model zerodce-published   # $DTCM_ZERODCE_PUBLISHED
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

__all__ = ["enhance_file", "enhance_frames", "enhance_image_file", "DEFAULT_ENHANCER", "PUBLISHED_ENV"]

DEFAULT_ENHANCER = "lightdce-real"  # the shipped enhancer trained on real photographs
PUBLISHED_ENV = "DTCM_ZERODCE_PUBLISHED"  # a folder made by dtcm import-zerodce


def enhance_frames(model, frames: np.ndarray, k: int | None = None, estimate_size: int | None = None) -> np.ndarray:
    """Enhance a whole decoded clip with a DTCM model's enhancer.

    Args:
        model: a DTCM model with an enhancer (``config.enhancer`` not "none").
        frames: uint8 (T, H, W, 3) RGB, any size.
        k: frame-sharing factor; default the model's.
        estimate_size: short side the keyframes are scaled to for curve estimation; None or 0 = full size.

    Returns:
        uint8 (T, H, W, 3), the enhanced frames.

    Example:
        >>> out = enhance_frames(model, frames, k=4, estimate_size=256)
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if model.enhancer is None:
        raise ValueError(f"this model has no enhancer (enhancer={model.config.enhancer!r}); pick a DTCM model")
    k = model.config.k if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if estimate_size is not None and estimate_size < 0:
        raise ValueError(f"estimate_size must be >= 0 (0: full size), got {estimate_size}")
    estimate_size = estimate_size or None
    from dtcm.inference import fast_enhance

    return fast_enhance(frames, fast_enhancer(model), k, estimate_size=estimate_size)


def fast_enhancer(model):
    """The model's enhancer optimised for inference (BatchNorm folded, fused curves), built once per model.

    The copy is a snapshot: a model that trains further gets a new one when its weights change.
    """
    from dtcm.inference import optimize_for_inference

    version = sum(p._version for p in model.enhancer.parameters())  # in-place updates bump tensor versions
    cached = getattr(model, "_dtcm_fast_enhancer", None)
    if cached is None or cached[0] != version:
        cached = (version, optimize_for_inference(model.enhancer))
        model._dtcm_fast_enhancer = cached
    return cached[1]


def enhance_file(
    model,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    k: int | None = None,
    estimate_size: int | None = 256,
    max_frames: int | None = None,
) -> dict:
    """Read a clip, enhance it at its own resolution, write an H.264 mp4 (libx264, yuv420p, faststart).

    Args:
        model: a DTCM model with an enhancer.
        src: the input video.
        dst: the output ``.mp4`` (folders are created).
        k: frame-sharing factor; default the model's.
        estimate_size: keyframe short side for curve estimation (None / 0: full size).
        max_frames: read at most this many frames (default: the video reader's limit).

    Returns:
        ``{"path", "frames", "height", "width", "fps", "k", "seconds"}``.
    """
    from dtcm import video

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no such clip: {src}")
    if dst.suffix.lower() != ".mp4":
        raise ValueError(f"the output must be an .mp4 file (H.264), got {dst.name!r}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError("the output would overwrite the input; choose another path")
    t0 = time.perf_counter()
    frames, fps = video.read_video(src, size=None, max_frames=max_frames)
    out = enhance_frames(model, frames, k=k, estimate_size=estimate_size)
    video.write_video(dst, out, float(fps or 25.0))
    return {
        "path": str(dst),
        "frames": len(out),
        "height": out.shape[1] // 2 * 2,
        "width": out.shape[2] // 2 * 2,
        "fps": float(fps or 25.0),
        "k": model.config.k if k is None else k,
        "seconds": time.perf_counter() - t0,
    }


def enhance_image_file(model, src, dst, estimate_size: int | None = None) -> dict:
    """Enhance one photo (jpg, png, bmp, webp) into an image file of the same size (format from ``dst``).

    Returns:
        ``{"path", "height", "width", "seconds"}``.
    """
    from dtcm.images import IMAGE_SUFFIXES, is_image, read_image, write_image

    if not is_image(dst):
        raise ValueError(f"a photo in gives a photo out: name the output with one of {', '.join(IMAGE_SUFFIXES)}")
    if Path(dst).exists() and Path(dst).resolve() == Path(src).resolve():
        raise ValueError("the output would overwrite the input; choose another path")
    t0 = time.perf_counter()
    image = read_image(src)
    out = enhance_frames(model, image[None], k=1, estimate_size=estimate_size)[0]
    write_image(dst, out)
    return {"path": str(dst), "height": out.shape[0], "width": out.shape[1], "seconds": time.perf_counter() - t0}


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
    parser.add_argument("input", help="dark clip (mp4, avi, mov, mkv, webm) or photo (jpg, png, bmp, webp)")
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
        help="keyframe short side for curve estimation (0: full size; default 256 for clips, full size for photos)",
    )
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")


def cli_main(args) -> int:
    from dtcm.hub import cli_model
    from dtcm.images import is_image

    if is_image(args.input):
        model = cli_model(args.input, resolve_enhancer_spec(args.model), args.revision, args.k)
        r = enhance_image_file(model, args.input, args.output, estimate_size=args.estimate_size or None)
        print(f"wrote {r['path']}: {r['width']}x{r['height']}, {r['seconds']:.1f} s")
        return 0
    if Path(args.output).suffix.lower() != ".mp4":
        raise ValueError(f"the output must be an .mp4 file (H.264), got {args.output!r}")
    model = cli_model(args.input, resolve_enhancer_spec(args.model), args.revision, args.k)
    size = 256 if args.estimate_size is None else args.estimate_size
    r = enhance_file(model, args.input, args.output, k=args.k, estimate_size=size, max_frames=args.max_frames)
    print(
        f"wrote {r['path']}: {r['frames']} frames, {r['width']}x{r['height']} at {r['fps']:.3g} fps, "
        f"k={r['k']}, {r['seconds']:.1f} s"
    )
    return 0
