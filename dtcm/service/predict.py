"""The classifier's part of a service call: logits under the device's autocast, calibrated Top-k.

Analyse and Compare classify through here (the timeline through ``dtcm.device.infer``), so the model's
output is read one way everywhere in the service; the probabilities and the Top-k are ``dtcm.pipeline``'s,
the same as ``dtcm predict``'s. The classifier runs on the enhanced clip here (not ``pipeline.classify``'s
whole model) because the service decides between enhancing, softening and skipping in between.
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
    from dtcm.pipeline import probabilities, top_k

    return top_k(probabilities(logits.float().cpu(), cfg.temperature)[0], cfg.class_names, k)
