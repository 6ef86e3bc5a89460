"""The classifier's part of a service call: logits under the device's autocast, calibrated Top-k.

Analyse and Compare classify through here (the timeline through ``dtcm.device.infer``), so the model's
output is read one way everywhere in the service.
"""

from __future__ import annotations

__all__ = ["classify", "topk"]


def classify(model, y):
    """(B, num_classes) logits of enhanced clips ``y`` (B, 3, T, H, W), under the model device's autocast."""
    from dtcm import device

    with device.autocast(device.device_of(model)):
        return model.classify(y)


def topk(logits, cfg, k: int = 5) -> list[tuple[str, float]]:
    """The first row's ``k`` best (label, probability), calibrated: softmax(logits / ``cfg.temperature``)."""
    import torch

    probs = torch.softmax(logits.float().cpu() / cfg.temperature, dim=-1)[0]
    vals, idx = probs.topk(min(k, probs.numel()))
    return [(cfg.class_names[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)]
