"""I3D, Inception-v1 inflated to 3D (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017).

A 7x7x7 stem with stride 2, two max-pools over space only, nine Inception blocks (Mixed_3b .. Mixed_5c) with
max-pools over time and space before Mixed_4b and Mixed_5b, then 1024 channels. Padding is TensorFlow's
"SAME" (the smaller half before), computed from each input's size, so any (T, H, W) works and the Kinetics
weights see exactly what they were trained on. BatchNorm is Sonnet v1's: a shift (beta) but no scale, eps 1e-3.
The head averages (2, 7, 7) windows (VALID, stride 1; smaller when the map is), then the mean over all
windows goes through dropout and a linear layer; with the released weights that is DeepMind's 1x1x1 logits
convolution followed by the mean over space and time.

Module names follow DeepMind's checkpoint (``features.Mixed_4b.Branch_1.Conv3d_0b_3x3.conv``), so the
importer (:mod:`dtcm.i3d_import`) copies by name. Inputs are RGB in [-1, 1], (B, 3, T, H, W).

Reference (400 classes): 12,689,984 parameters; 6.98 GMACs at 16x112x112, 27.8 at 16x224x224, 111 at 64x224x224.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from dtcm.backbones.layers import PooledClassifier
from dtcm.registry import register_model

__all__ = ["I3D", "BatchNorm3dNoScale", "InceptionBlock", "Unit3d", "i3d", "i3d_tiny_test", "same_padding"]

# block -> output channels of (branch 0 1x1, branch 1 1x1, branch 1 3x3, branch 2 1x1, branch 2 3x3, branch 3 1x1)
INCEPTION = OrderedDict(
    Mixed_3b=(64, 96, 128, 16, 32, 32),
    Mixed_3c=(128, 128, 192, 32, 96, 64),
    Mixed_4b=(192, 96, 208, 16, 48, 64),
    Mixed_4c=(160, 112, 224, 24, 64, 64),
    Mixed_4d=(128, 128, 256, 24, 64, 64),
    Mixed_4e=(112, 144, 288, 32, 64, 64),
    Mixed_4f=(256, 160, 320, 32, 128, 128),
    Mixed_5b=(256, 160, 320, 32, 128, 128),
    Mixed_5c=(384, 192, 384, 48, 128, 128),
)
# block -> (name, kernel, stride) of the max-pool in front of it
POOL_BEFORE = {
    "Mixed_4b": ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
}
HEAD_POOL = (2, 7, 7)  # DeepMind's average pool before the logits (VALID, stride 1)


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)


def same_padding(size, kernel, stride) -> tuple[int, ...]:
    """TensorFlow "SAME" padding of a (T, H, W) map as ``F.pad`` takes it: (W before, W after, H ..., T ...).

    Per dimension the total is ``max((ceil(n / s) - 1) * s + k - n, 0)``, the smaller half before.
    """
    pad = []
    for n, k, s in zip(reversed(size), reversed(kernel), reversed(stride), strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pad += [total // 2, total - total // 2]
    return tuple(pad)


def _symmetric(pad: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(T, H, W) padding when every dimension pads equally on both sides, else None."""
    if any(pad[i] != pad[i + 1] for i in range(0, len(pad), 2)):
        return None
    return pad[4], pad[2], pad[0]


class BatchNorm3dNoScale(nn.BatchNorm3d):
    """Sonnet v1's BatchNorm: ``(x - mean) / sqrt(var + eps) + bias``, no scale. Keys: bias, running_mean,
    running_var, num_batches_tracked. The momentum stays PyTorch's 0.1 (Sonnet's decay 0.999 is 0.001), so a
    fine-tune of a few hundred steps moves the statistics to its own footage."""

    def __init__(self, num_features: int, eps: float = 1e-3):
        super().__init__(num_features, eps=eps, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))  # F.batch_norm takes weight None with a bias


class Unit3d(nn.Module):
    """Convolution (no bias) with TF "SAME" padding, BatchNorm without scale, ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int, int] = 1, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=False)
        self.bn = BatchNorm3dNoScale(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = same_padding(x.shape[2:], self.conv.kernel_size, self.conv.stride)
        sym = _symmetric(pad)
        if sym is not None:  # the convolution pads with zeros itself, without a padded copy
            x = F.conv3d(x, self.conv.weight, None, self.conv.stride, sym)
        else:
            x = self.conv(F.pad(x, pad))
        return F.relu(self.bn(x), inplace=True)


class MaxPool3dSame(nn.Module):
    """Max-pool with TF "SAME" padding (padding never wins the max)."""

    def __init__(self, kernel: int | tuple[int, int, int], stride: int | tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = same_padding(x.shape[2:], self.kernel, self.stride)
        sym = _symmetric(pad)
        if sym is not None and all(2 * p <= k for p, k in zip(sym, self.kernel, strict=True)):
            return F.max_pool3d(x, self.kernel, self.stride, sym)  # implicit padding is -inf
        return F.max_pool3d(F.pad(x, pad, value=-math.inf), self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class InceptionBlock(nn.Module):
    """Four branches concatenated: 1x1x1; 1x1x1 -> 3x3x3; 1x1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1x1."""

    def __init__(self, cin: int, widths: tuple[int, ...]):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = widths
        self.Branch_0 = nn.Sequential(OrderedDict(Conv3d_0a_1x1=Unit3d(cin, c0)))
        self.Branch_1 = nn.Sequential(OrderedDict(Conv3d_0a_1x1=Unit3d(cin, c1a), Conv3d_0b_3x3=Unit3d(c1a, c1b, 3)))
        self.Branch_2 = nn.Sequential(OrderedDict(Conv3d_0a_1x1=Unit3d(cin, c2a), Conv3d_0b_3x3=Unit3d(c2a, c2b, 3)))
        self.Branch_3 = nn.Sequential(OrderedDict(MaxPool3d_0a_3x3=MaxPool3dSame(3, 1), Conv3d_0b_1x1=Unit3d(cin, c3)))
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.Branch_0, self.Branch_1, self.Branch_2, self.Branch_3)
        return torch.cat([b(x) for b in branches], dim=1)  # (B, out_channels, T, H, W)


class HeadPool(nn.Module):
    """DeepMind's head pooling: average (2, 7, 7) windows, VALID, stride 1 (each side clipped to the map),
    then the mean over all windows: (B, C, T, H, W) -> (B, C, 1, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = tuple(min(k, n) for k, n in zip(HEAD_POOL, x.shape[2:], strict=True))
        return F.avg_pool3d(x, kernel, stride=1).mean(dim=(2, 3, 4), keepdim=True)


class I3D(PooledClassifier):
    """I3D on clips (B, 3, T, H, W) in [-1, 1]; any T, H, W >= 1.

    Args:
        num_classes: width of the linear head (400 for the Kinetics weights); 0 for none (pooled features).
        width_mult: scales every layer's width (1.0 is the published network; tests use 0.125).
        dropout: dropout before the linear head.

    Example:
        >>> model = I3D(num_classes=11, width_mult=0.125).eval()
        >>> feats = model.forward_features(torch.randn(1, 3, 9, 40, 64))  # any T, H, W
        >>> feats.shape, model.forward_head(feats).shape
        (torch.Size([1, 128, 2, 2, 2]), torch.Size([1, 11]))
    """

    def __init__(self, num_classes: int = 400, width_mult: float = 1.0, dropout: float = 0.5):
        super().__init__()
        if not 0 < width_mult <= 4:
            raise ValueError(f"width_mult must be above 0 and at most 4, got {width_mult}")
        self.width_mult = width_mult

        def w(c: int) -> int:
            return max(1, round(c * width_mult))

        layers = OrderedDict(
            Conv3d_1a_7x7=Unit3d(3, w(64), 7, 2),
            MaxPool3d_2a_3x3=MaxPool3dSame((1, 3, 3), (1, 2, 2)),
            Conv3d_2b_1x1=Unit3d(w(64), w(64)),
            Conv3d_2c_3x3=Unit3d(w(64), w(192), 3),
            MaxPool3d_3a_3x3=MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        )
        cin = w(192)
        for name, widths in INCEPTION.items():
            if name in POOL_BEFORE:
                pool, kernel, stride = POOL_BEFORE[name]
                layers[pool] = MaxPool3dSame(kernel, stride)
            layers[name] = InceptionBlock(cin, tuple(w(c) for c in widths))
            cin = layers[name].out_channels
        self.features = nn.Sequential(layers)
        self.num_features = cin
        self.avgpool = HeadPool()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Identity())
        self.reset_classifier(num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh linear head of ``num_classes`` (``classifier.1``); 0: none, ``forward`` gives the pooled
        features (B, num_features)."""
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0, got {num_classes!r}")
        self.classifier[1] = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_features, ceil(T / 8), ceil(H / 32), ceil(W / 32))."""
        return self.features(x)


@register_model("backbone")
def i3d(num_classes: int = 400, **kwargs) -> I3D:
    """I3D (Inception-v1 3D), the Kinetics-400 layout: 12,689,984 parameters at 400 classes."""
    return I3D(num_classes, **kwargs)


@register_model("backbone")
def i3d_tiny_test(num_classes: int = 400, **kwargs) -> I3D:
    """I3D at width 0.125 for tests."""
    kwargs.setdefault("width_mult", 0.125)
    return I3D(num_classes, **kwargs)
