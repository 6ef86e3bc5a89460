"""3D-ResNet-18/34/50/101 and 3D-ResNeXt-101 (Hara et al., CVPR 2018), through one parametric class.

The paper's default classifier is 3D-ResNeXt-101 (SPEC A5): a 7x7x7 stem with stride (1, 2, 2), a
3x3x3 max-pool with stride 2, four stages of bottleneck blocks with a 32-group 3x3x3 convolution and
expansion 2, global average pooling and a linear head. Shapes at 64x112x112:

    (B, 3, 64, 112, 112) -> stem (B, 64, 64, 56, 56) -> pool (B, 64, 32, 28, 28)
    -> layer1 (B, 256, 32, 28, 28) -> layer2 (B, 512, 16, 14, 14) -> layer3 (B, 1024, 8, 7, 7)
    -> layer4 (B, 2048, 4, 4, 4) -> pool + fc (B, num_classes)

Module names follow Hara's code (``conv1``, ``bn1``, ``layerL.i.conv1..3``, ``bnN``,
``layerL.i.downsample.0/1``, ``fc``) so the released Kinetics checkpoints load by key.

Shortcuts. Type "B" is a 1x1x1 convolution + BN wherever the shape changes (including layer1 of the
bottleneck nets, whose 64 stem channels differ from the stage width). Type "A" subsamples and pads the
new channels with zeros, so it has no parameters. Hara's released Kinetics weights use A for ResNet-18
and -34 and B for ResNet-50, -101 and ResNeXt-101; the builders default to that. His 2020 release
(``r3d18_K_200ep`` and friends) uses B for every depth: pass ``shortcut="B"`` for those.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dtcm.backbones.layers import init_weights
from dtcm.registry import register_model

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet3d",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnext101",
    "resnet_tiny_test",
    "resnext_tiny_test",
]

SHORTCUTS = ("A", "B")


class ZeroPadShortcut(nn.Module):
    """Shortcut type A: stride-subsample, then zero-pad the channels up to ``out_channels``."""

    def __init__(self, out_channels: int, stride: int):
        super().__init__()
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        x = x[:, :, ::s, ::s, ::s]
        # pad only the channel dim (the 4th pair from the end of F.pad's list)
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


class BasicBlock(nn.Module):
    """Two 3x3x3 convolutions; ResNet-18/34."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
    ):
        super().__init__()
        if cardinality != 1:
            raise ValueError(f"BasicBlock takes cardinality 1, got {cardinality}")
        self.conv1 = nn.Conv3d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1x1 -> 3x3x3 (grouped when ``cardinality > 1``) -> 1x1x1; ResNet-50/101 and ResNeXt.

    Width of the middle convolution: ``planes`` for ResNet, ``cardinality * planes // 32`` for ResNeXt
    (Hara's rule, equal to ``planes`` at cardinality 32). Output: ``planes * expansion`` channels.
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        expansion: int = 4,
    ):
        super().__init__()
        width = planes if cardinality == 1 else cardinality * planes // 32
        if width < cardinality or width % cardinality:
            raise ValueError(f"bottleneck width {width} (planes {planes}) must split into {cardinality} groups")
        self.expansion = expansion
        self.conv1 = nn.Conv3d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, planes * expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet3d(nn.Module):
    """3D ResNet / ResNeXt on clips (B, 3, T, H, W); any T >= 1 and H, W >= 16 (adaptive pooling).

    Args:
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50/101, ResNeXt).
        layers: blocks per stage, e.g. ``(3, 4, 23, 3)``.
        num_classes: width of the linear head.
        planes: per-stage block width (the output is ``planes * expansion``).
        stem_width: output channels of the 7x7x7 stem.
        cardinality: groups of the bottleneck's 3x3x3 convolution (1 = plain ResNet).
        expansion: bottleneck expansion (4 for ResNet, 2 for Hara's ResNeXt); basic blocks use 1.
        shortcut: ``"A"`` (zero-pad, no parameters) or ``"B"`` (1x1x1 conv + BN), used where shapes change.
        dropout: dropout before ``fc`` (Hara's nets have none: 0.0).

    Example:
        >>> model = ResNet3d("bottleneck", (3, 4, 23, 3), 11, planes=(128, 256, 512, 1024),
        ...                  cardinality=32, expansion=2)
        >>> model(torch.randn(1, 3, 16, 112, 112)).shape
        torch.Size([1, 11])
    """

    def __init__(
        self,
        block: str,
        layers: tuple[int, ...],
        num_classes: int = 400,
        planes: tuple[int, ...] = (64, 128, 256, 512),
        stem_width: int = 64,
        cardinality: int = 1,
        expansion: int = 4,
        shortcut: str = "B",
        dropout: float = 0.0,
    ):
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        if len(layers) != len(planes):
            raise ValueError(f"layers {tuple(layers)} and planes {tuple(planes)} differ in length")
        self.block = block
        self.cardinality = cardinality
        self.expansion = 1 if block == "basic" else expansion
        self.shortcut = shortcut
        self.inplanes = stem_width

        self.conv1 = nn.Conv3d(3, stem_width, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        for i, (n, p) in enumerate(zip(layers, planes, strict=True)):
            # stage modules are named layer1..layer4 like Hara's
            self.add_module(f"layer{i + 1}", self._make_layer(p, n, stride=1 if i == 0 else 2))
        self.num_layers = len(layers)
        self.num_features = self.inplanes
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)

        init_weights(self)

    def _block(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> nn.Module:
        if self.block == "basic":
            return BasicBlock(inplanes, planes, stride, downsample, self.cardinality)
        return Bottleneck(inplanes, planes, stride, downsample, self.cardinality, self.expansion)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out = planes * self.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            if self.shortcut == "A":
                downsample = ZeroPadShortcut(out, stride)
            else:
                downsample = nn.Sequential(
                    nn.Conv3d(self.inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm3d(out)
                )
        layers = [self._block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        layers += [self._block(out, planes, 1, None) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_features, T', H', W'), the last stage's map."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_features, T', H', W') -> logits (B, num_classes)."""
        x = self.avgpool(x).flatten(1)  # (B, num_features)
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# --- builders: Hara's released configurations (shortcut A for 18/34, B otherwise) ---
# hara=True: state_dict keys follow Hara's 3D-ResNets layout (conv1, bn1, layerL.i.*, fc), so a Hara checkpoint of
# the same configuration loads by key once its "module." prefix is stripped; hara_arch: the "arch" his files carry


@register_model("backbone", hara=True, hara_arch="resnet-18")
def resnet18(num_classes: int = 400, **kwargs) -> ResNet3d:
    """3D-ResNet-18 (basic blocks [2, 2, 2, 2], shortcut A like Hara's Kinetics weights)."""
    kwargs.setdefault("shortcut", "A")
    return ResNet3d("basic", (2, 2, 2, 2), num_classes, **kwargs)


@register_model("backbone", hara=True, hara_arch="resnet-34")
def resnet34(num_classes: int = 400, **kwargs) -> ResNet3d:
    """3D-ResNet-34 (basic blocks [3, 4, 6, 3], shortcut A like Hara's Kinetics weights)."""
    kwargs.setdefault("shortcut", "A")
    return ResNet3d("basic", (3, 4, 6, 3), num_classes, **kwargs)


@register_model("backbone", hara=True, hara_arch="resnet-50")
def resnet50(num_classes: int = 400, **kwargs) -> ResNet3d:
    """3D-ResNet-50 (bottlenecks [3, 4, 6, 3], expansion 4, shortcut B)."""
    return ResNet3d("bottleneck", (3, 4, 6, 3), num_classes, **kwargs)


@register_model("backbone", hara=True, hara_arch="resnet-101")
def resnet101(num_classes: int = 400, **kwargs) -> ResNet3d:
    """3D-ResNet-101 (bottlenecks [3, 4, 23, 3], expansion 4, shortcut B)."""
    return ResNet3d("bottleneck", (3, 4, 23, 3), num_classes, **kwargs)


@register_model("backbone", hara=True, hara_arch="resnext-101")
def resnext101(num_classes: int = 400, **kwargs) -> ResNet3d:
    """3D-ResNeXt-101, the paper's classifier: 47,543,755 parameters at 11 classes."""
    defaults = dict(planes=(128, 256, 512, 1024), cardinality=32, expansion=2, shortcut="B")
    return ResNet3d("bottleneck", (3, 4, 23, 3), num_classes, **{**defaults, **kwargs})


@register_model("backbone", hara=True)
def resnet_tiny_test(num_classes: int = 400, **kwargs) -> ResNet3d:
    """A one-block-per-stage basic ResNet at 1/8 width, with shortcut B so downsample keys exist."""
    defaults = dict(planes=(8, 16, 32, 64), stem_width=8, shortcut="B")
    return ResNet3d("basic", (1, 1, 1, 1), num_classes, **{**defaults, **kwargs})


@register_model("backbone", hara=True)
def resnext_tiny_test(num_classes: int = 400, **kwargs) -> ResNet3d:
    """A one-block-per-stage ResNeXt (cardinality 4, expansion 2) for tests."""
    defaults = dict(planes=(32, 64, 128, 256), stem_width=8, cardinality=4, expansion=2, shortcut="B")
    return ResNet3d("bottleneck", (1, 1, 1, 1), num_classes, **{**defaults, **kwargs})
