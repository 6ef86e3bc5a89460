"""Inference-only fast path for the clip enhancers (SPEC A2-A4): folded estimators and fused curves.

``optimize_for_inference(enhancer)`` returns a copy of a :class:`~dtcm.enhancer.ClipEnhancer` with the same
call and the same ``(enhanced, curves)`` as the eval-mode original (to ~1e-6), several times faster on a
CPU. The original module is not touched, so training keeps the plain eager path. What changes:

1. BatchNorm is folded into the convolution before it (eval-mode running statistics).
2. LightDCE's channel split, concatenation and channel shuffle disappear: the three basic units work in
   place on one buffer (each reads the whole buffer, with zero weights on the pass-through half, and
   overwrites the half it replaces), and every shuffle becomes a fixed permutation of the next
   convolution's input channels, folded into the weights once.
3. The estimator runs in channels-last (NHWC) memory, one keyframe at a time so that its activations stay
   in cache, through oneDNN's fused convolution + activation op with weights reordered once into oneDNN's
   layout (``torch.ops.mkldnn._convolution_pointwise``; probed once, plain ``F.conv2d`` where missing).
4. Curve application is fused: R is never repeated over the k frames of a group (the clip is viewed as
   (3, G, k, H, W) and each R_i as (3, G, 1, H, W)), and each of the n iterations is two ``addcmul``
   passes into preallocated buffers, a few groups at a time.
5. ``compile=True`` also runs the estimator through ``torch.compile`` (slower than 1-4 on the CPUs measured
   in ``benchmarks/enhancer_speed.py``, so off by default); if compiling fails, the eager copy is used.

:func:`fast_enhance` is the whole-video path: uint8 frames (T, H, W, 3) in and out, optionally estimating
the curves on a downscaled keyframe and upsampling them bilinearly (the Zero-DCE++ idea).

The folded and fused modules (1-4) live in ``dtcm.fast_enhancers`` and the curve arithmetic in
``dtcm.curves``; this module builds them and re-exports the modules' names.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn as nn

from dtcm.checks import check_k
from dtcm.curves import apply_curves_, curves_hwc, keyframe_indices, scene_curves_
from dtcm.enhancer import ClipEnhancer, LightDCE, ZeroDCE, estimate_scene
from dtcm.fast_enhancers import (
    ConvAct,
    FastClipEnhancer,
    FastZeroDCE,
    FoldedLightDCE,
    fold_conv_bn,
    onednn_pointwise_available,
)

__all__ = [
    "ConvAct",
    "FoldedLightDCE",
    "FastZeroDCE",
    "FastClipEnhancer",
    "fold_conv_bn",
    "onednn_pointwise_available",
    "optimize_for_inference",
    "fast_enhance",
]


class _Compiled(nn.Module):
    """``torch.compile`` of an estimator that falls back to the eager module if compiling fails."""

    def __init__(self, est: nn.Module):
        super().__init__()
        self.eager = est
        self.iterations = est.iterations
        self.compiled = torch.compile(est, options={"freezing": True})
        self.failed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.failed:
            try:
                return self.compiled(x)
            except Exception as err:  # any compiler error: the eager module computes the same thing
                self.failed = True
                warnings.warn(
                    f"torch.compile failed ({type(err).__name__}: {err}); using the eager estimator", stacklevel=2
                )
        return self.eager(x)


def optimize_for_inference(
    enhancer: ClipEnhancer,
    channels_last: bool = True,
    fused: bool = True,
    pack: bool = True,
    compile: bool = False,
    frames_per_call: int = 1,
    chunk_frames: int = 16,
) -> FastClipEnhancer:
    """A fast inference copy of a clip enhancer (LightDCE or ZeroDCE); the original is not modified.

    Args:
        enhancer: a :class:`ClipEnhancer`; its current weights and BatchNorm running statistics are used,
            whatever its train/eval mode (the copy equals ``enhancer.eval()``). The copy is a snapshot: build
            a new one after further training.
        channels_last: run the estimator in NHWC memory (faster with oneDNN on CPUs).
        fused: use oneDNN's fused convolution + activation op when available (CPU, float32).
        pack: with ``fused``, reorder each weight once into oneDNN's layout.
        compile: also ``torch.compile`` the estimator (the first call compiles for 10-30 s; slower than the
            eager path on the CPUs measured, so off by default; falls back to eager if compiling fails).
        frames_per_call: keyframes per estimator call.
        chunk_frames: about how many frames are enhanced at a time.
    Returns:
        A :class:`FastClipEnhancer`: ``(x (B, 3, T, H, W), k) -> (enhanced, curves)`` like the original, under
        ``torch.inference_mode``.

    Example:
        >>> from dtcm.enhancer import create_enhancer
        >>> fast = optimize_for_inference(create_enhancer("lightdce"))
        >>> y, r = fast(torch.rand(1, 3, 16, 112, 112) * 0.2, k=4)
        >>> y.shape, r.shape
        (torch.Size([1, 3, 16, 112, 112]), torch.Size([1, 24, 4, 112, 112]))
    """
    if not isinstance(enhancer, ClipEnhancer):
        raise ValueError(f"expected a ClipEnhancer (LightDCE or ZeroDCE inside), got {type(enhancer).__name__}")
    net = enhancer.estimator
    with torch.no_grad():
        if isinstance(net, LightDCE):
            est = FoldedLightDCE(net, channels_last, fused and not compile, pack)
        elif isinstance(net, ZeroDCE):
            est = FastZeroDCE(net, channels_last, fused and not compile, pack)
        else:
            raise ValueError(f"no fast path for estimator {type(net).__name__}; accepted: LightDCE, ZeroDCE")
    est = est.eval()
    if compile:
        est = _Compiled(est)
    fast = FastClipEnhancer(est, frames_per_call, chunk_frames, enhancer.curve_size, enhancer.scene)
    return fast.eval()


def fast_enhance(
    frames: np.ndarray,
    enhancer: nn.Module,
    k: int = 1,
    estimate_size: int | None = None,
    block_elements: int = 1 << 18,
) -> np.ndarray:
    """Enhance uint8 video frames with frame sharing, at native resolution, without float copies of the clip.

    Each group of k frames gets the curves of its middle frame (SPEC A3); the curves are applied to the
    group in row blocks of about ``block_elements`` values, so memory stays at a few frames' worth whatever
    T is. To enhance a long video chunk by chunk, give chunks whose length is a multiple of k: the groups
    then match the whole-video result.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        enhancer: a :class:`FastClipEnhancer` (from :func:`optimize_for_inference`; build it once) or a
            :class:`ClipEnhancer` (optimised on every call).
        k: frame-sharing factor, >= 1.
        estimate_size: if set, each keyframe is downscaled (bilinear, antialiased) so its short side is
            ``estimate_size`` pixels, the curves are estimated there and upsampled bilinearly to (H, W)
            (Zero-DCE++); estimation then costs the same whatever the resolution. None: native resolution.
            The scene form estimates at a short side of at most ``dtcm.curves.SCENE_ESTIMATE`` either way.
        block_elements: values per block in the curve step (cache size; 2**18 floats = 1 MiB).
    Returns:
        (T, H, W, 3) uint8, the enhanced frames (rounded to the nearest grey level).
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        raise ValueError(f"frames must be a (T, H, W, 3) uint8 numpy array, got {got}")
    check_k(k)
    if estimate_size is not None and (not isinstance(estimate_size, int) or estimate_size < 8):
        raise ValueError(f"estimate_size must be None or an int >= 8, got {estimate_size!r}")
    if isinstance(enhancer, ClipEnhancer):
        enhancer = optimize_for_inference(enhancer)
    if not isinstance(enhancer, FastClipEnhancer):
        raise ValueError(f"enhancer must be a FastClipEnhancer or a ClipEnhancer, got {type(enhancer).__name__}")
    t, h, w, _ = frames.shape
    with warnings.catch_warnings():  # a read-only array (e.g. from a decoder) is fine: it is only read
        warnings.simplefilter("ignore", UserWarning)
        src = torch.from_numpy(np.ascontiguousarray(frames))  # (T, H, W, 3) uint8, shares memory
    out = np.empty_like(frames)
    dst = torch.from_numpy(out)
    keys, _ = keyframe_indices(t, k)
    device = next(enhancer.estimator.buffers()).device
    with torch.inference_mode():
        if enhancer.scene:
            _scene_enhance(src, dst, keys, k, enhancer.estimator, estimate_size, device)
            return out
        for g, key in enumerate(keys):
            f0, f1 = g * k, min(t, g * k + k)
            r = curves_hwc(enhancer.estimator, src[key], estimate_size, device)  # (n, H, W, 3)
            rows = max(1, block_elements // ((f1 - f0) * w * 3))
            tmp = torch.empty(f1 - f0, min(rows, h), w, 3)
            for y0 in range(0, h, rows):
                y1 = min(h, y0 + rows)
                x = src[f0:f1, y0:y1].float().div_(255)  # (f, rows, W, 3)
                apply_curves_(x, x, list(r[:, y0:y1]), tmp[:, : y1 - y0])
                dst[f0:f1, y0:y1] = x.mul_(255).round_()  # exact integers in [0, 255]: the cast is exact
    return out


def _scene_enhance(src, dst, keys, k, estimator, estimate_size, device) -> None:
    """``fast_enhance`` in the scene form: uint8 (T, H, W, 3) ``src`` -> ``dst``, one frame at a time."""
    for g, key in enumerate(keys):
        x = src[key].permute(2, 0, 1)[None].to(device).float().div_(255)  # (1, 3, H, W)
        r = estimate_scene(estimator, x, estimate_size)  # (1, n, H, W)
        for f in range(g * k, min(len(src), g * k + k)):
            x = src[f].permute(2, 0, 1)[None].to(device).float().div_(255)  # (1, 3, H, W)
            y = scene_curves_(x, r)[0].permute(1, 2, 0)  # (H, W, 3)
            dst[f] = y.mul_(255).round_().cpu()  # exact integers in [0, 255]: the cast is exact
