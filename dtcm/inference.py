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
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dtcm.enhancer import (
    ClipEnhancer,
    LightDCE,
    ShuffleBasicUnit,
    ShuffleDownUnit,
    ZeroDCE,
    check_clip,
    keyframe_indices,
)

__all__ = [
    "ConvAct",
    "FoldedLightDCE",
    "FastZeroDCE",
    "FastClipEnhancer",
    "fold_conv_bn",
    "optimize_for_inference",
    "fast_enhance",
]


@functools.cache
def onednn_pointwise_available() -> bool:
    """Whether oneDNN's fused convolution + activation op exists here and agrees with ``F.conv2d``."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise.default
        g = torch.Generator().manual_seed(0)
        x = torch.rand(1, 4, 6, 5, generator=g).contiguous(memory_format=torch.channels_last)
        w, w2, b = (
            torch.randn(4, 1, 3, 3, generator=g),
            torch.randn(3, 4, 3, 3, generator=g),
            torch.randn(4, generator=g),
        )
        ok = torch.allclose(
            op(x, w, b, [1, 1], [1, 1], [1, 1], 4, "relu", [], ""), F.conv2d(x, w, b, 1, 1, 1, 4).relu()
        )
        ok &= torch.allclose(
            op(x, w2, None, [1, 1], [1, 1], [1, 1], 1, "tanh", [], ""), F.conv2d(x, w2, None, 1, 1).tanh()
        )
        return bool(ok)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


class ConvAct(nn.Module):
    """A stride-1 convolution with a fused activation ("none", "relu" or "tanh"), for inference.

    With ``fused`` on a CPU, float32, it calls oneDNN's convolution + activation op; on the first such call
    (``pack``) the weight is reordered into oneDNN's layout for that input shape and the call's arguments
    are kept, so later calls go straight to the kernel. The module is a frozen snapshot: build a new one
    after changing ``weight``.
    """

    def __init__(self, weight, bias, act: str = "none", groups: int = 1, fused: bool = True, pack: bool = True):
        super().__init__()
        if act not in ("none", "relu", "tanh"):
            raise ValueError(f"act {act!r}; accepted: none, relu, tanh")
        self.register_buffer("weight", weight.detach().clone().contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().clone().contiguous())
        self.act, self.groups, self.padding = act, groups, weight.shape[-1] // 2
        self.fused, self.pack = fused and onednn_pointwise_available(), pack
        self._onednn_args: tuple | None = None  # (weight in oneDNN layout, bias, padding, ...) after a first call

    def _apply(self, fn, recurse=True):
        self._onednn_args = None  # .to() / .float() etc.: the cached oneDNN weight would be stale
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` without ``nn.Module.__call__``'s overhead (the estimators call ~20 of these per frame)."""
        if self._onednn_args is not None and x.is_cpu and x.dtype == torch.float32:
            return torch.ops.mkldnn._convolution_pointwise.default(x, *self._onednn_args)
        if self.fused and x.is_cpu and x.dtype == torch.float32 and self.weight.is_cpu and self.weight.dtype == x.dtype:
            p, one, w = [self.padding] * 2, [1, 1], self.weight
            if self.pack and x.is_contiguous(memory_format=torch.channels_last):
                w = torch.ops.mkldnn._reorder_convolution_weight(w, p, one, one, self.groups, list(x.shape))
            self._onednn_args = (w, self.bias, p, one, one, self.groups, self.act, [], "")
            return self.run(x)
        y = F.conv2d(x, self.weight, self.bias, padding=self.padding, groups=self.groups)
        if self.act == "relu":
            return y.relu_()
        return y.tanh_() if self.act == "tanh" else y


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution equal to ``bn(conv(x))`` in eval mode (running statistics)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (Cout,)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale.view(-1, 1, 1, 1), bias


def _shuffled(first: list[int], second: list[int]) -> list[int]:
    """Where the channels of ``channel_shuffle(cat(a, b), 2)`` live, given where a's and b's channels live."""
    return [slot for pair in zip(first, second, strict=True) for slot in pair]


def _runs(slots: list[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive slots, as (start, stop, index of the run's first slot in ``slots``)."""
    runs: list[tuple[int, int, int]] = []
    for q, p in enumerate(slots):
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1, runs[-1][2])
        else:
            runs.append((p, p + 1, q))
    return runs


def _scatter(w: torch.Tensor, size: int, index: list[int], dim: int = 0) -> torch.Tensor:
    """Zeros of w's shape with ``size`` along ``dim``, and w's slice j at index[j] there."""
    shape = list(w.shape)
    shape[dim] = size
    return w.new_zeros(shape).index_copy(dim, torch.as_tensor(index), w)


class FoldedLightDCE(nn.Module):
    """LightDCE with BatchNorm, split, concatenation and shuffle folded into the weights (inference only).

    ``where[j]`` is the physical channel, in the buffer that flows between units, of the channel j that the
    eager module has at that point; the consumers' weights are permuted (and zero-padded where they read the
    whole buffer) to match, once, here.
    """

    def __init__(self, net: LightDCE, channels_last: bool = True, fused: bool = True, pack: bool = True):
        super().__init__()
        self.iterations = net.iterations
        self.channels_last = channels_last

        def conv(w, b, act="none", groups=1):
            return ConvAct(w, b, act, groups, fused, pack)

        width = net.in_conv.out_channels
        self.in_conv = conv(net.in_conv.weight, net.in_conv.bias, "relu")
        where = list(range(width))  # in_conv writes the eager order
        self.basic, self.basic_runs = nn.ModuleList(), []
        for unit in (net.layer2, net.layer3, net.layer4):
            assert isinstance(unit, ShuffleBasicUnit)
            half = width // 2
            slots = sorted(where[half:])  # the half this unit transforms; its output overwrites these slots
            (w1, b1), (wd, bd), (w3, b3) = (fold_conv_bn(s[0], s[1]) for s in unit.branch)
            w1 = _scatter(w1, width, where[half:], dim=1)  # reads the whole buffer: zero weights on the other half
            self.basic.append(nn.ModuleList([conv(w1, b1, "relu"), conv(wd, bd, groups=half), conv(w3, b3, "relu")]))
            self.basic_runs.append(_runs(slots))  # output channel q goes to slot slots[q]
            where = _shuffled(where[:half], slots)
        self.down = nn.ModuleList()
        for unit in (net.layer5, net.layer6):
            assert isinstance(unit, ShuffleDownUnit)
            (wd1, bd1), (w11, b11) = (fold_conv_bn(s[0], s[1]) for s in unit.branch1)
            (w21, b21), (wd2, bd2), (w23, b23) = (fold_conv_bn(s[0], s[1]) for s in unit.branch2)
            half, cin = w11.shape[0], len(where)
            # the input arrives in `where` order: permute the channels of the two convs that read it
            branch1 = nn.ModuleList(
                [
                    conv(_scatter(wd1, cin, where), _scatter(bd1, cin, where), groups=cin),
                    conv(_scatter(w11, cin, where, dim=1), b11, "relu"),
                ]
            )
            branch2 = nn.ModuleList(
                [
                    conv(_scatter(w21, cin, where, dim=1), b21, "relu"),
                    conv(wd2, bd2, groups=half),
                    conv(w23, b23, "relu"),
                ]
            )
            self.down.append(nn.ModuleList([branch1, branch2]))
            where = _shuffled(list(range(half)), list(range(half, 2 * half)))  # cat(branch1, branch2); no shuffle
        self.out_conv = conv(_scatter(net.out_conv.weight, len(where), where, dim=1), net.out_conv.bias, "tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> curve maps (N, 3n, H, W) in [-1, 1] (channels-last memory if enabled)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        p = self.in_conv.run(x)  # (N, 32, H, W), channels in `where` order
        for (conv1, dw, conv3), runs in zip(self.basic, self.basic_runs, strict=True):
            h = conv3.run(dw.run(conv1.run(p)))  # (N, 16, H, W)
            for s, e, q in runs:
                p[:, s:e] = h[:, q : q + e - s]  # the new half overwrites the half it replaces
        for (dw1, conv1), (conv21, dw2, conv23) in self.down:
            a = conv1.run(dw1.run(p))  # (N, half, H, W)
            v = conv23.run(dw2.run(conv21.run(p)))  # (N, half, H, W)
            p = torch.cat([a, v], 1)  # (N, 2 * half, H, W); the shuffle is in the next weights
        return self.out_conv.run(p)


class FastZeroDCE(nn.Module):
    """ZeroDCE for inference: the same convolutions, channels-last memory, fused activations."""

    def __init__(self, net: ZeroDCE, channels_last: bool = True, fused: bool = True, pack: bool = True):
        super().__init__()
        self.iterations = net.iterations
        self.channels_last = channels_last
        convs = [getattr(net, f"conv{i}") for i in range(1, 8)]
        acts = ["relu"] * 6 + ["tanh"]
        self.convs = nn.ModuleList(
            ConvAct(c.weight, c.bias, a, 1, fused, pack) for c, a in zip(convs, acts, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> curve maps (N, 3n, H, W) in [-1, 1] (channels-last memory if enabled)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        c1, c2, c3, c4, c5, c6, c7 = (c.run for c in self.convs)
        x1 = c1(x)
        x2 = c2(x1)
        x3 = c3(x2)
        x4 = c4(x3)
        x5 = c5(torch.cat([x3, x4], 1))
        x6 = c6(torch.cat([x2, x5], 1))
        return c7(torch.cat([x1, x6], 1))


def _apply_curves_(y: torch.Tensor, x: torch.Tensor, maps: Sequence[torch.Tensor], tmp: torch.Tensor) -> torch.Tensor:
    """y <- the light-enhancement curve of x with the maps r_1..r_n (SPEC A2); y may be x.

    x, y and tmp have one shape; each map broadcasts to it (over the k frames of a group). Same arithmetic,
    element for element, whatever the layout, so the tensor and uint8 paths agree.
    """
    src = x
    for r in maps:
        torch.addcmul(src, src, src, value=-1, out=tmp)  # x (1 - x)
        torch.addcmul(src, tmp, r, out=y)  # x + r x (1 - x)
        src = y
    return y.clamp_(0, 1)  # numeric guard only, as in apply_curves


class FastClipEnhancer(nn.Module):
    """Inference-only :class:`ClipEnhancer`: same call and outputs, folded estimator and fused curves.

    Args:
        estimator: a :class:`FoldedLightDCE` or :class:`FastZeroDCE` (or any module (N, 3, H, W) -> (N, 3n, H, W)
            with an ``iterations`` attribute).
        frames_per_call: keyframes per estimator call; 1 keeps a 112x112 keyframe's activations in cache.
        chunk_frames: about how many frames are enhanced at a time (whole groups).

    Its outputs are inference tensors (``torch.inference_mode``): fine to read, normalise and classify, not
    to backpropagate through; train with the original :class:`ClipEnhancer`.
    """

    def __init__(self, estimator: nn.Module, frames_per_call: int = 1, chunk_frames: int = 16):
        super().__init__()
        self.estimator = estimator
        self.frames_per_call = frames_per_call
        self.chunk_frames = chunk_frames

    @property
    def iterations(self) -> int:
        return self.estimator.iterations

    def estimate(self, frames: torch.Tensor, keys: list[int], out: torch.Tensor) -> torch.Tensor:
        """Curve maps of ``frames[:, keys]``: (3, T, H, W) -> ``out`` (len(keys), 3n, H, W)."""
        step = self.frames_per_call
        for i in range(0, len(keys), step):
            if step == 1:
                key = frames[:, keys[i] : keys[i] + 1].transpose(0, 1)  # (1, 3, H, W) view, no gather
            else:
                key = frames[:, keys[i : i + step]].transpose(0, 1)  # (f, 3, H, W)
            out[i : i + step] = self.estimator(key)
        return out

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Enhance a clip.

        Args:
            x: (B, 3, T, H, W) in [0, 1].
            k: frame-sharing factor (1 = per-frame curves).
        Returns:
            (enhanced (B, 3, T, H, W), curves (B, 3n, G, H, W)) with G = ceil(T / k), as ``ClipEnhancer``.
        """
        check_clip(x, check_range=False)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        x = x.contiguous()
        b, c, t, h, w = x.shape
        keys, _ = keyframe_indices(t, k)
        g, n = len(keys), self.iterations
        y = torch.empty_like(x)
        curves = x.new_empty(b, g, 3 * n, h, w)  # returned as a (B, 3n, G, H, W) view, as ClipEnhancer does
        per_chunk = max(1, self.chunk_frames // k)  # groups per chunk
        tmp = x.new_empty(c, per_chunk * k, h, w)
        for bi in range(b):
            for g0 in range(0, g, per_chunk):
                g1 = min(g, g0 + per_chunk)
                r = self.estimate(x[bi], keys[g0:g1], out=curves[bi, g0:g1]).transpose(0, 1)  # (3n, Gc, H, W)
                f0, f1 = g0 * k, min(t, g1 * k)
                full = (f1 - f0) // k  # groups of exactly k frames; the clip's last group may be shorter
                for ga, gb, fa, fb in ((0, full, f0, f0 + full * k), (full, g1 - g0, f0 + full * k, f1)):
                    if fb > fa:
                        shape = (c, gb - ga, (fb - fa) // (gb - ga), h, w)  # (3, G', k', H, W)
                        maps = [r[3 * i : 3 * i + 3, ga:gb, None] for i in range(n)]  # (3, G', 1, H, W) each
                        xv, yv = x[bi, :, fa:fb].view(shape), y[bi, :, fa:fb].view(shape)
                        _apply_curves_(yv, xv, maps, tmp[:, : fb - fa].view(shape))
        return y, curves.transpose(1, 2)


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
    return FastClipEnhancer(est, frames_per_call=frames_per_call, chunk_frames=chunk_frames).eval()


def _curves_hwc(fast: FastClipEnhancer, key: torch.Tensor, estimate_size: int | None) -> torch.Tensor:
    """Curve maps of one uint8 keyframe (H, W, 3) as (n, H, W, 3) float, estimated at ``estimate_size``."""
    h, w, _ = key.shape
    device = next(fast.estimator.buffers()).device
    x = key.permute(2, 0, 1)[None].to(device).float().div_(255)  # (1, 3, H, W), channels-last memory
    small = estimate_size is not None and min(h, w) > estimate_size
    if small:
        scale = estimate_size / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    r = fast.estimator(x)  # (1, 3n, h', w')
    if small:
        r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=False)  # stays in [-1, 1]
    n = r.shape[1] // 3
    return r[0].permute(1, 2, 0).reshape(h, w, n, 3).permute(2, 0, 1, 3).contiguous().cpu()  # (n, H, W, 3)


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
        block_elements: values per block in the curve step (cache size; 2**18 floats = 1 MiB).
    Returns:
        (T, H, W, 3) uint8, the enhanced frames (rounded to the nearest grey level).

    Example:
        >>> fast = optimize_for_inference(create_enhancer("lightdce"))
        >>> out = fast_enhance(frames, fast, k=4, estimate_size=128)
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        raise ValueError(f"frames must be a (T, H, W, 3) uint8 numpy array, got {got}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
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
    with torch.inference_mode():
        for g, key in enumerate(keys):
            f0, f1 = g * k, min(t, g * k + k)
            r = _curves_hwc(enhancer, src[key], estimate_size)  # (n, H, W, 3)
            rows = max(1, block_elements // ((f1 - f0) * w * 3))
            tmp = torch.empty(f1 - f0, min(rows, h), w, 3)
            for y0 in range(0, h, rows):
                y1 = min(h, y0 + rows)
                x = src[f0:f1, y0:y1].float().div_(255)  # (f, rows, W, 3)
                _apply_curves_(x, x, list(r[:, y0:y1]), tmp[:, : y1 - y0])
                dst[f0:f1, y0:y1] = x.mul_(255).round_()  # exact integers in [0, 255]: the cast is exact
    return out
