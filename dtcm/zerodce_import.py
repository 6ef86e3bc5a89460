"""Convert a Zero-DCE checkpoint in its authors' format into our ZeroDCE (a DTCM folder, safetensors).

The authors' file (Li-Chongyi/Zero-DCE, ``snapshots/Epoch99.pth``) is a plain state_dict with keys
``e_conv1.*`` .. ``e_conv7.*``; their DCE-Net is ours layer for layer (``e_convN`` -> ``enhancer.estimator.convN``)
but their curve is ``x + r (x^2 - x)``, ours ``x + r x (1 - x)`` (SPEC A2). Since ``r = tanh(conv7(.))``
and tanh is odd, negating conv7's weight and bias negates r exactly. The file is read with
``torch.load(weights_only=True)``: nothing in it is executed.

Example:
    $ dtcm import-zerodce Epoch99.pth weights-local/zerodce-published
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from dtcm.config import DTCMConfig
from dtcm.model import DTCM, WeightsMismatch

__all__ = ["import_zerodce", "load_zerodce_state", "write_card"]

LAYERS = 7  # e_conv1 .. e_conv7
ENHANCER_PREFIX = "enhancer.estimator."
# the folder's classifier is a small untrained one: the variant is used for its enhancer only
CONFIG = dict(backbone="shufflenetv2", width_mult=0.5, enhancer="zerodce", k=1, clip_len=4)


def load_zerodce_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the authors' state_dict and return our ZeroDCE estimator's (conv1..conv7, r negated).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a pickle with code or no tensors in it; WeightsMismatch (a ValueError) for wrong keys
            or shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever the unpickler trips on, the answer is the same
        found = re.search(r"Unsupported global: GLOBAL [\w.<>]+|Unsupported operand \d+", str(exc))
        why = f"it needs Python objects or code to load ({found.group(0)})" if found else "it could not be read"
        raise ValueError(
            f"{path} is not a plain-tensor PyTorch checkpoint: {why}, and nothing is unpickled here beyond "
            "tensors; save a plain state_dict instead"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds {type(state).__name__}, not a state_dict of tensors (e_conv1.* .. e_conv7.*)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # nn.DataParallel saves
    want = {f"e_conv{i}.{p}" for i in range(1, LAYERS + 1) for p in ("weight", "bias")}
    missing, unexpected = sorted(want - state.keys()), sorted(state.keys() - want)
    if missing or unexpected:
        raise WeightsMismatch(
            f"{path} is not a Zero-DCE checkpoint: {len(missing)} missing keys (e.g. {', '.join(missing[:2]) or '-'}) "
            f"and {len(unexpected)} unexpected (e.g. {', '.join(unexpected[:2]) or '-'}); "
            "expected e_conv1..e_conv7 weight and bias"
        )
    ours = {k.replace("e_conv", "conv"): v.float().clone() for k, v in state.items()}
    ours[f"conv{LAYERS}.weight"].neg_()  # r -> -r: their curve x + r (x^2 - x) is ours with r negated
    ours[f"conv{LAYERS}.bias"].neg_()
    return ours


def import_zerodce(path: str | Path, **overrides) -> DTCM:
    """A DTCM model whose enhancer holds the converted Zero-DCE weights (strict shape checks).

    Args:
        path: the authors' ``.pth`` (e.g. ``Epoch99.pth``).
        **overrides: DTCMConfig fields.
    Returns:
        The model in eval mode; ``model.enhancer`` reproduces the authors' forward.
    """
    state = load_zerodce_state(path)
    cfg = DTCMConfig(**CONFIG, extra={"imported_from": Path(path).name, "setting": "enhancer-only"})
    model = DTCM(cfg.replace(**overrides) if overrides else cfg)
    own = model.enhancer.estimator.state_dict()
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise WeightsMismatch(
                f"{Path(path).name} does not fit Zero-DCE's DCE-Net: e_{key} has shape {tuple(value.shape)}, "
                f"expected {tuple(own[key].shape)}"
            )
    model.enhancer.estimator.load_state_dict(state, strict=True)
    return model.eval()


def write_card(folder: Path, source: str) -> None:
    (folder / "README.md").write_text(
        "---\nlibrary_name: dtcm\ntags:\n- low-light\n- zero-dce\n---\n\n"
        "# Zero-DCE (published weights, converted)\n\n"
        f"Converted by `dtcm import-zerodce` from `{source}`: the curve estimator released by the authors of\n"
        "Zero-DCE (Guo, Li et al., CVPR 2020; Li-Chongyi/Zero-DCE). conv7 is negated so that our curve\n"
        "`x + r x (1 - x)` gives exactly their `x + r (x^2 - x)`. The classifier in this folder is untrained and\n"
        'unused: the folder is an enhancer-only variant (the app\'s "Zero-DCE (published weights)").\n\n'
        "Licence: that of the source weights (the authors state academic research only, CC BY-NC 4.0). Do not\n"
        "redistribute this folder unless that licence allows it.\n"
    )
