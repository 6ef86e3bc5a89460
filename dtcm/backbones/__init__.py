"""Action classifiers (SPEC A5): 3D ResNets / ResNeXt (Hara et al.), 3D MobileNetV2 / ShuffleNetV2
(Köpüklü et al.) and I3D (Carreira & Zisserman), built by name.

Every backbone takes clips (B, 3, T, H, W), has ``num_features`` (the width before the linear head) and
``forward(x) -> (B, num_classes)`` logits; ``forward_features`` and ``forward_head`` split the two.

Example:
    >>> from dtcm.backbones import create_backbone, count_macs
    >>> model = create_backbone("resnext101", num_classes=11)
    >>> sum(p.numel() for p in model.parameters())
    47543755
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from dtcm import registry
from dtcm.backbones.i3d import I3D
from dtcm.backbones.mobilenetv2 import MobileNetV2
from dtcm.backbones.resnet import ResNet3d
from dtcm.backbones.shufflenetv2 import ShuffleNetV2

__all__ = [
    "HARA_COMPATIBLE",
    "I3D",
    "MobileNetV2",
    "ResNet3d",
    "ShuffleNetV2",
    "count_macs",
    "create_backbone",
    "list_backbones",
]

# backbones whose state_dict keys follow Hara's 3D-ResNets layout (registered with hara=True in resnet.py)
HARA_COMPATIBLE = frozenset(registry.list_models("backbone", hara=True))


def list_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`, sorted."""
    return registry.list_models("backbone")


def create_backbone(name: str, num_classes: int, **overrides) -> nn.Module:
    """Build a registered backbone.

    Args:
        name: one of :func:`list_backbones`, e.g. ``"resnext101"`` or ``"mobilenetv2"``.
        num_classes: width of the classification head.
        **overrides: constructor options, e.g. ``width_mult=0.5``, ``dropout=0.0``, ``shortcut="B"``.

    Returns:
        The model, in training mode, on the current default device.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones) or a bad option value.

    Example:
        >>> model = create_backbone("mobilenetv2", num_classes=11, width_mult=0.5)
        >>> model(torch.randn(1, 3, 16, 112, 112)).shape
        torch.Size([1, 11])
    """
    build = registry.model_entrypoint("backbone", name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return build(num_classes=num_classes, **overrides)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and linear layers; BN, pooling and
    activations are not counted), measured with ``FlopCounterMode`` (which counts 2 FLOPs per MAC).

    The input is a zero tensor on the model's device; build large models under
    ``torch.device("meta")`` so nothing is computed. The model runs in eval mode, then its mode is
    restored.

    Args:
        model: any module taking one tensor.
        input_shape: e.g. ``(1, 3, 64, 112, 112)``.

    Returns:
        The MAC count as an int.

    Example:
        >>> with torch.device("meta"):
        ...     model = create_backbone("resnext101", num_classes=11)
        >>> round(count_macs(model, (1, 3, 64, 112, 112)) / 1e9, 2)
        38.27
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(tuple(input_shape), device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
