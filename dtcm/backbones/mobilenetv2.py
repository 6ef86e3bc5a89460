"""3D-MobileNetV2 (Köpüklü et al., "Resource Efficient 3D CNNs", 2019), an efficient baseline in SPEC A5.

Inverted residual blocks with 3x3x3 depthwise convolutions, ReLU6 and linear 1x1x1 projections. The
stem is a 3x3x3 convolution with stride (1, 2, 2); four stages then stride by 2 in T, H and W, so a
16x112x112 clip ends as a 1x4x4 map before global pooling. Module layout and names follow
Efficient-3DCNNs (``features.N...``, ``classifier.1``) so its checkpoints load by key.

Reference (11 classes, width 1.0, 16x112x112): 2,368,139 parameters, 0.519 GMACs.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dtcm.backbones.layers import PooledClassifier, init_weights
from dtcm.registry import register_model

__all__ = ["InvertedResidual", "MobileNetV2", "mobilenetv2", "mobilenetv2_tiny_test"]

# (expand ratio t, output channels c, repeats n, stride of the first repeat s)
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def conv_bn_relu6(inp: int, oup: int, kernel_size: int, stride: int | tuple[int, int, int] = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(inp, oup, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm3d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """[1x1x1 expand ->] 3x3x3 depthwise -> 1x1x1 linear projection; residual when shapes agree."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if expand_ratio == 1 else list(conv_bn_relu6(inp, hidden, 1))
        layers += [
            nn.Conv3d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm3d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv3d(hidden, oup, 1, bias=False),
            nn.BatchNorm3d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(PooledClassifier):
    """3D-MobileNetV2 on clips (B, 3, T, H, W); any T >= 1 and H, W >= 16 (adaptive pooling).

    Args:
        num_classes: width of the linear head.
        width_mult: channel multiplier, 0.2-2.0 (Köpüklü's rounding: ``int(c * width_mult)``; the last
            1x1x1 convolution keeps 1280 channels unless ``width_mult > 1``).
        dropout: dropout before the linear head (Efficient-3DCNNs uses 0.2).

    Example:
        >>> model = MobileNetV2(num_classes=11, width_mult=1.0)
        >>> model(torch.randn(2, 3, 16, 112, 112)).shape
        torch.Size([2, 11])
    """

    def __init__(self, num_classes: int = 400, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        if not 0.2 <= width_mult <= 2.0:
            raise ValueError(f"width_mult must be in [0.2, 2.0], got {width_mult}")
        self.width_mult = width_mult
        inp = int(32 * width_mult)
        self.num_features = int(1280 * width_mult) if width_mult > 1.0 else 1280

        features = [conv_bn_relu6(3, inp, 3, stride=(1, 2, 2))]
        for t, c, n, s in STAGES:
            oup = int(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
        features.append(conv_bn_relu6(inp, self.num_features, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

        init_weights(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_features, T', H', W')."""
        return self.features(x)


@register_model("backbone")
def mobilenetv2(num_classes: int = 400, **kwargs) -> MobileNetV2:
    """3D-MobileNetV2 1.0x (override ``width_mult`` for 0.2-2.0): 2,368,139 parameters at 11 classes."""
    return MobileNetV2(num_classes, **kwargs)


@register_model("backbone")
def mobilenetv2_tiny_test(num_classes: int = 400, **kwargs) -> MobileNetV2:
    """3D-MobileNetV2 at width 0.2 for tests."""
    kwargs.setdefault("width_mult", 0.2)
    return MobileNetV2(num_classes, **kwargs)
