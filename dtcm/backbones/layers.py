"""What the 3D backbones share: their weight initialisation and the pooled linear head."""

from __future__ import annotations

import torch
import torch.nn as nn


def init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """Initialise as Hara's and Köpüklü's 3D networks do: 3D convolutions Kaiming-normal (fan-out, ReLU),
    BatchNorm weight 1 and bias 0; with ``linear_std``, Linear layers N(0, linear_std) with bias 0 (else
    PyTorch's default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


class PooledClassifier(nn.Module):
    """Base of the backbones whose head is global average pooling then ``self.classifier``.

    Subclasses define ``forward_features`` and the modules ``avgpool`` and ``classifier``.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_features, T', H', W') -> logits (B, num_classes)."""
        return self.classifier(self.avgpool(x).flatten(1))  # pooled: (B, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
