"""What one training step runs for each setting (the module DDP wraps) and the losses it optimises.

Settings (the paper's Table VI plus the zero-reference enhancer):
    one-stage-total  joint, L_total = L_AR + alpha (W_STC L_STC + L_Dark) (Eq. 7); the default
    one-stage-ar     joint, cross-entropy only
    two-stage        the enhancer frozen (no gradients, eval mode), the classifier trained with L_AR on the
                     enhanced clip
    enhancer-only    zero-reference: W_STC L_STC + L_Dark, no labels needed; the backbone is frozen and unused
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dtcm.training.terms import TERMS

__all__ = ["TERMS", "TrainStep", "compute_losses"]


class TrainStep(nn.Module):
    """What DDP wraps: runs the parts of a DTCM model that a setting trains.

    ``forward(x) -> (logits or None, enhanced (B, 3, T, H, W), curves or None)``. Frozen parts get no
    gradients and stay in eval mode.
    """

    def __init__(self, model, setting: str, k: int, enhancer_bn: str = "batch"):
        super().__init__()
        self.model, self.setting, self.k = model, setting, k
        self.enhancer_bn = enhancer_bn
        self._fast = None  # two-stage: the frozen enhancer's folded copy, made on first use
        if setting == "two-stage" and model.enhancer is not None:
            model.enhancer.requires_grad_(False)
        if setting == "enhancer-only":
            if model.enhancer is None:
                raise ValueError("setting enhancer-only needs an enhancer (lightdce or zerodce), got enhancer none")
            model.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.setting == "two-stage" and self.model.enhancer is not None:
            self.model.enhancer.eval()
        if self.setting == "enhancer-only":
            self.model.backbone.eval()
        if mode and self.enhancer_bn == "frozen" and self.model.enhancer is not None:
            for m in self.model.enhancer.modules():  # normalise with the running statistics, and keep them
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def _frozen_enhance(self, x):
        """Two-stage: the frozen enhancer through its folded inference copy (same outputs to ~1e-6, about 8x
        faster), built once. Its outputs are inference tensors, used as they are: nothing backpropagates
        into them, and the classifier's first layer saves its own normalised input, not them."""
        if self.model.enhancer is None:
            return x, None
        if self._fast is None:
            from dtcm.inference import optimize_for_inference

            # kept in a tuple so that it is not a submodule: checkpoints hold the model only
            self._fast = (optimize_for_inference(self.model.enhancer.eval()),)
        return self._fast[0](x.float(), self.k)

    def forward(self, x):
        if self.setting == "enhancer-only":
            y, curves = self.model.enhance(x, self.k)
            return None, y, curves
        if self.setting == "two-stage":
            y, curves = self._frozen_enhance(x)
            return self.model.classify(y), y, curves
        out = self.model(x, k=self.k, return_all=True)
        return out.logits, out.enhanced, out.curves


def compute_losses(setting, logits, labels, x, y, curves, alpha, w_stc) -> dict[str, torch.Tensor]:
    """Every loss term of Eq. 1-7 plus ``loss``, the objective of the setting."""
    from dtcm.losses import action_loss, total_loss

    if curves is None:  # no enhancer: only the action term exists
        ar = action_loss(logits, labels)
        terms = {name: ar.new_zeros(()) for name in TERMS}
        terms.update(ar=ar, total=ar)
    else:
        terms = total_loss(logits, labels, x, y.float(), curves.float(), alpha, w_stc)
    if setting in ("two-stage", "one-stage-ar"):
        terms["loss"] = terms["ar"]
    elif setting == "enhancer-only":
        terms["loss"] = w_stc * terms["stc"] + terms["dark"]
    else:
        terms["loss"] = terms["total"]
    return terms
