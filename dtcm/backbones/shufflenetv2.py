"""3D-ShuffleNetV2 (Köpüklü et al., "Resource Efficient 3D CNNs", 2019), an efficient baseline in SPEC A5.

A 3x3x3 stem with stride (1, 2, 2) and a 3x3x3 max-pool with stride 2, then three stages of ShuffleNetV2
units (channel split, 1x1x1 -> 3x3x3 depthwise -> 1x1x1 on one half, concatenation, channel shuffle);
the first unit of each stage strides by 2 in T, H and W. A 1x1x1 convolution widens to 1024 (2048 at
2.0x) before global pooling. Module names follow Efficient-3DCNNs (``conv1``, ``features.N.banch1/2``,
``conv_last``, ``classifier.1``) so its checkpoints load by key; ``banch`` is their spelling.

Reference (11 classes, width 1.0, 16x112x112): 1,310,455 parameters, 0.187 GMACs.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dtcm.backbones.layers import PooledClassifier, init_weights
from dtcm.registry import register_model

__all__ = ["ShuffleUnit", "ShuffleNetV2", "channel_shuffle", "shufflenetv2", "shufflenetv2_tiny_test"]

STAGE_REPEATS = (4, 8, 4)
# width multiplier -> (stem, stage 2, stage 3, stage 4, last conv) channels, as in ShuffleNetV2's Table 5
STAGE_CHANNELS = {
    0.25: (24, 32, 64, 128, 1024),
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 224, 488, 976, 2048),
}


def conv_bn_relu(inp: int, oup: int, kernel_size: int, stride: int | tuple[int, int, int] = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(inp, oup, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm3d(oup),
        nn.ReLU(inplace=True),
    )


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: (B, C, T, H, W) -> (B, C, T, H, W)."""
    b, c, t, h, w = x.shape
    x = x.view(b, groups, c // groups, t, h, w).transpose(1, 2)  # (B, C/g, g, T, H, W)
    return x.reshape(b, c, t, h, w)


def depthwise_bn(channels: int, stride: int) -> list[nn.Module]:
    # 3x3x3 depthwise convolution + BN, no activation (ShuffleNetV2's design)
    return [
        nn.Conv3d(channels, channels, 3, stride, 1, groups=channels, bias=False),
        nn.BatchNorm3d(channels),
    ]


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split channels in half, transform one half. Stride 2: two branches on
    the whole input, each giving half the output channels."""

    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if oup % 2:
            raise ValueError(f"output channels must be even, got {oup}")
        self.stride = stride
        half = oup // 2
        branch_in = half if stride == 1 else inp
        if stride == 2:
            self.banch1 = nn.Sequential(*depthwise_bn(inp, stride), *conv_bn_relu(inp, half, 1))
        self.banch2 = nn.Sequential(
            *conv_bn_relu(branch_in, half, 1), *depthwise_bn(half, stride), *conv_bn_relu(half, half, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)  # two (B, C/2, T, H, W)
            out = torch.cat((x1, self.banch2(x2)), dim=1)
        else:
            out = torch.cat((self.banch1(x), self.banch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(PooledClassifier):
    """3D-ShuffleNetV2 on clips (B, 3, T, H, W); any T >= 1 and H, W >= 16 (adaptive pooling).

    Args:
        num_classes: width of the linear head.
        width_mult: one of 0.25, 0.5, 1.0, 1.5, 2.0 (the published channel tables).
        dropout: dropout before the linear head (Efficient-3DCNNs uses 0.2).

    Example:
        >>> model = ShuffleNetV2(num_classes=11, width_mult=1.0)
        >>> model(torch.randn(2, 3, 16, 112, 112)).shape
        torch.Size([2, 11])
    """

    def __init__(self, num_classes: int = 400, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        if width_mult not in STAGE_CHANNELS:
            raise ValueError(f"width_mult must be one of {sorted(STAGE_CHANNELS)}, got {width_mult}")
        self.width_mult = width_mult
        stem, *stages, last = STAGE_CHANNELS[width_mult]
        self.num_features = last

        self.conv1 = conv_bn_relu(3, stem, 3, stride=(1, 2, 2))
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        units, inp = [], stem
        for repeats, oup in zip(STAGE_REPEATS, stages, strict=True):
            for i in range(repeats):
                units.append(ShuffleUnit(inp, oup, 2 if i == 0 else 1))
                inp = oup
        self.features = nn.Sequential(*units)
        self.conv_last = conv_bn_relu(inp, last, 1)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_features, T', H', W')."""
        x = self.maxpool(self.conv1(x))
        return self.conv_last(self.features(x))


@register_model("backbone")
def shufflenetv2(num_classes: int = 400, **kwargs) -> ShuffleNetV2:
    """3D-ShuffleNetV2 1.0x (override ``width_mult``): 1,310,455 parameters at 11 classes."""
    return ShuffleNetV2(num_classes, **kwargs)


@register_model("backbone")
def shufflenetv2_tiny_test(num_classes: int = 400, **kwargs) -> ShuffleNetV2:
    """3D-ShuffleNetV2 at width 0.25 for tests."""
    kwargs.setdefault("width_mult", 0.25)
    return ShuffleNetV2(num_classes, **kwargs)
