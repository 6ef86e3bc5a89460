"""Inference-only clip enhancers (SPEC A2-A4): folded LightDCE, fused ZeroDCE and the fused-curve clip path.

Built from a trained :class:`~dtcm.enhancer.ClipEnhancer` by :func:`dtcm.inference.optimize_for_inference`;
the module docstring of ``dtcm.inference`` lists what is folded and fused and why.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from dtcm.curves import apply_curves_, estimate_at, keyframe_indices, scene_curves_
from dtcm.enhancer import LightDCE, ShuffleBasicUnit, ShuffleDownUnit, ZeroDCE, check_clip, estimate_scene

__all__ = [
    "ConvAct",
    "FastClipEnhancer",
    "FastZeroDCE",
    "FoldedLightDCE",
    "fold_conv_bn",
    "onednn_pointwise_available",
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


class FastClipEnhancer(nn.Module):
    """Inference-only :class:`ClipEnhancer`: same call and outputs, folded estimator and fused curves.

    Args:
        estimator: a :class:`FoldedLightDCE` or :class:`FastZeroDCE` (or any module (N, 3, H, W) -> (N, 3n, H, W)
            with an ``iterations`` attribute).
        frames_per_call: keyframes per estimator call; 1 keeps a 112x112 keyframe's activations in cache.
        chunk_frames: about how many frames are enhanced at a time (whole groups).
        curve_size: as the :class:`ClipEnhancer` it was built from.
        scene: the scene-keeping curves (``dtcm.curves.scene_curves_``), as the :class:`ClipEnhancer`.

    Its outputs are inference tensors (``torch.inference_mode``): fine to read, normalise and classify, not
    to backpropagate through; train with the original :class:`ClipEnhancer`.
    """

    def __init__(
        self,
        estimator: nn.Module,
        frames_per_call: int = 1,
        chunk_frames: int = 16,
        curve_size: int | None = None,
        scene: bool = False,
    ):
        super().__init__()
        self.estimator = estimator
        self.frames_per_call = frames_per_call
        self.chunk_frames = chunk_frames
        self.curve_size = curve_size  # as the ClipEnhancer it was built from
        self.scene = scene

    @property
    def iterations(self) -> int:
        return self.estimator.iterations

    def estimate(self, frames: torch.Tensor, keys: list[int], out: torch.Tensor) -> torch.Tensor:
        """Curve maps of ``frames[:, keys]``: (3, T, H, W) -> ``out`` (len(keys), 3n or n, H, W)."""
        if self.scene:
            for i, key in enumerate(keys):
                out[i : i + 1] = estimate_scene(
                    self.estimator, frames[:, key : key + 1].transpose(0, 1), self.curve_size
                )
            return out
        step = self.frames_per_call
        for i in range(0, len(keys), step):
            if step == 1:
                key = frames[:, keys[i] : keys[i] + 1].transpose(0, 1)  # (1, 3, H, W) view, no gather
            else:
                key = frames[:, keys[i : i + step]].transpose(0, 1)  # (f, 3, H, W)
            out[i : i + step] = estimate_at(self.estimator, key, self.curve_size)
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
        curves = x.new_empty(b, g, (1 if self.scene else 3) * n, h, w)  # returned as (B, 3n or n, G, H, W)
        if self.scene:
            for bi in range(b):
                self.estimate(x[bi], keys, out=curves[bi])
                for gi in range(g):
                    f0, f1 = gi * k, min(t, gi * k + k)
                    frames = x[bi, :, f0:f1].transpose(0, 1).contiguous()  # (k', 3, H, W)
                    y[bi, :, f0:f1] = scene_curves_(frames, curves[bi, gi : gi + 1]).transpose(0, 1)
            return y, curves.transpose(1, 2)
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
                        apply_curves_(yv, xv, maps, tmp[:, : fb - fa].view(shape))
        return y, curves.transpose(1, 2)
