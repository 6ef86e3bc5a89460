"""``dtcm enhance IN OUT``: a dark clip in, its enhanced version out as a browser-playable H.264 mp4.

The clip is enhanced at its own resolution by the model's curve estimator with frame sharing (SPEC A3):
curves are estimated on one keyframe per group of k frames and applied to every frame of the group.
With ``estimate_size`` the keyframes are downscaled (short side) for estimation and the curve maps
upsampled back, which keeps large clips fast (the Zero-DCE++ idea); 0 / None estimates at full size.

Example:
    $ dtcm enhance dark.mp4 bright.mp4 --k 4 --estimate-size 256
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["enhance_file", "enhance_frames"]


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
    try:  # the fused fast path, when installed; the plain one below computes the same thing
        from dtcm.inference import fast_enhance

        return fast_enhance(frames, model.enhancer.estimator, k, estimate_size=estimate_size)
    except (ImportError, NotImplementedError):
        return _enhance_by_groups(model.enhancer.estimator, frames, k, estimate_size)


def _enhance_by_groups(estimator, frames: np.ndarray, k: int, estimate_size: int | None, batch: int = 8) -> np.ndarray:
    """The same computation as ``model.enhance`` (one curve map per group of k frames), in bounded memory.

    Used when ``dtcm.inference.fast_enhance`` is not installed. Groups of k frames start at 0, k, 2k, ...;
    the keyframe is the group's middle frame; up to ``batch`` keyframes go through the estimator at once.
    """
    from dtcm.enhancer import apply_curves, keyframe_indices

    device = next(estimator.parameters()).device
    t, h, w, _ = frames.shape
    keys, _ = keyframe_indices(t, k)
    out = np.empty_like(frames)
    estimator.eval()
    with torch.inference_mode():
        for first in range(0, len(keys), batch):
            groups = range(first, min(first + batch, len(keys)))
            key = _to_tensor(frames[[keys[g] for g in groups]], device)  # (G, 3, H, W)
            small = _downscale(key, estimate_size)  # (G, 3, h', w')
            r = estimator(small)  # (G, 3n, h', w')
            if r.shape[-2:] != (h, w):
                r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=False)  # (G, 3n, H, W)
            for j, g in enumerate(groups):
                s, e = g * k, min(g * k + k, t)
                y = apply_curves(_to_tensor(frames[s:e], device), r[j : j + 1])  # (e - s, 3, H, W)
                out[s:e] = (y * 255).round_().clamp_(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
    return out


def _to_tensor(frames: np.ndarray, device) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) on [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float().div_(255)


def _downscale(x: torch.Tensor, short_side: int | None) -> torch.Tensor:
    h, w = x.shape[-2:]
    if short_side is None or min(h, w) <= short_side:
        return x
    scale = short_side / min(h, w)
    return F.interpolate(x, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")


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


def add_cli_arguments(parser) -> None:
    parser.add_argument("input", help="dark clip (mp4, avi, mov, mkv, webm)")
    parser.add_argument("output", help="enhanced clip to write (.mp4, H.264)")
    parser.add_argument("--model", default=None, help="Hub repo id, model folder or shipped variant (default: shipped)")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub repo")
    parser.add_argument("--k", type=int, default=None, help="frame-sharing factor (default: the model's)")
    parser.add_argument(
        "--estimate-size", type=int, default=256, help="keyframe short side for curve estimation (0: full size)"
    )
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")


def cli_main(args) -> int:
    from dtcm.hub import quiet_hub_logging, resolve_model

    if not Path(args.input).is_file():
        raise FileNotFoundError(f"no such clip: {args.input}")
    if Path(args.output).suffix.lower() != ".mp4":
        raise ValueError(f"the output must be an .mp4 file (H.264), got {args.output!r}")
    if args.k is not None and args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    quiet_hub_logging()
    model = resolve_model(args.model, revision=args.revision)
    if torch.cuda.is_available():
        model = model.cuda()
    r = enhance_file(
        model, args.input, args.output, k=args.k, estimate_size=args.estimate_size, max_frames=args.max_frames
    )
    print(
        f"wrote {r['path']}: {r['frames']} frames, {r['width']}x{r['height']} at {r['fps']:.3g} fps, "
        f"k={r['k']}, {r['seconds']:.1f} s"
    )
    return 0
