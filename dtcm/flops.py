"""Parameters and multiply-accumulates (MACs) of DTCM models, counted with torch.utils.flop_counter.

Counting runs on the ``meta`` device, so full-size models (ResNeXt-101 at 64x112x112) cost no compute.
FlopCounterMode counts 2 FLOPs per multiply-accumulate for convolutions and linear layers; we report MACs.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "macs_of", "model_cost"]


def count_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def macs_of(fn, *args, **kwargs) -> int:
    """Multiply-accumulates of convolutions and matrix products executed by ``fn(*args, **kwargs)``."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args, **kwargs)
    return counter.get_total_flops() // 2


def model_cost(model_or_name="dtcm_resnext101", frames: int = 64, size: int = 112, k: int | None = None, **overrides):
    """Parameters and MACs of a DTCM model on one (1, 3, frames, size, size) clip.

    Args:
        model_or_name: a variant name or DTCMConfig (built on the meta device), or a built DTCM.
        frames, size: the clip's T and H = W.
        k: frame-sharing factor (default: the config's).
        **overrides: DTCMConfig fields when building by name (e.g. ``num_classes=400``).
    Returns:
        ``{"params": {"enhancer", "backbone", "total"}, "macs": {"enhancer", "backbone", "total"}}``.
    """
    from dtcm.model import DTCM, create_model

    if isinstance(model_or_name, DTCM):
        model = model_or_name
    else:
        with torch.device("meta"):
            model = create_model(model_or_name, **overrides)
    device = next(model.parameters()).device
    x = (
        torch.zeros(1, 3, frames, size, size, device=device)
        if device.type != "meta"
        else torch.empty(1, 3, frames, size, size, device="meta")
    )
    model.eval()
    y, _ = model.enhance(x, k)
    enh = macs_of(model.enhance, x, k) if model.enhancer is not None else 0
    bb = macs_of(model.classify, y)
    pe, pb = count_params(model.enhancer), count_params(model.backbone)
    return {
        "params": {"enhancer": pe, "backbone": pb, "total": pe + pb},
        "macs": {"enhancer": enh, "backbone": bb, "total": enh + bb},
    }
