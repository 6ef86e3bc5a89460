"""The DTCM model: enhancer -> normalisation -> 3D-CNN classifier, trained as one network (SPEC A1).

Example:
    >>> import torch, dtcm
    >>> model = dtcm.create_model("dtcm_tiny_test").eval()
    >>> out = model(torch.rand(1, 3, 8, 32, 32), return_all=True)
    >>> out.logits.shape, out.enhanced.shape
    (torch.Size([1, 11]), torch.Size([1, 3, 8, 32, 32]))
"""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download

from dtcm import registry
from dtcm.backbones import create_backbone
from dtcm.checks import check_k
from dtcm.checksums import load_safetensors, read_json, verify_checksums, write_checksums
from dtcm.config import CONFIG_NAME, KINETICS_MEAN_255, WEIGHTS_NAME, DTCMConfig
from dtcm.enhancer import check_clip, create_enhancer

__all__ = [
    "DTCM",
    "DTCMOutput",
    "create_model",
    "list_models",
    "variant_config",
    "import_hara",
    "WeightsMismatch",
]

SAFETENSORS_NAME = WEIGHTS_NAME  # the name this module has always used


class WeightsMismatch(ValueError):
    """Weights that do not fit the architecture they are loaded into."""


@dataclass
class DTCMOutput:
    logits: torch.Tensor  # (B, num_classes)
    enhanced: torch.Tensor  # (B, 3, T, H, W) in [0, 1]
    curves: torch.Tensor | None  # (B, 3n, G, H, W) keyframe curve maps; None without an enhancer


class DTCM(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="dtcm",
    tags=["video-classification", "action-recognition", "low-light", "dtcm"],
    license="mit",
    pipeline_tag="video-classification",
):
    """Dark-video action recognition: a curve-estimation enhancer cascaded with a 3D-CNN classifier.

    Args:
        config: a DTCMConfig (or its dict form, as read from config.json).
    """

    def __init__(self, config: DTCMConfig):
        super().__init__()
        if isinstance(config, dict):
            config = DTCMConfig.from_dict(config)
        self.config = config
        self.enhancer = create_enhancer(config.enhancer, config.curve_iterations, config.curve_size)
        backbone_kwargs = {"width_mult": config.width_mult} if config.width_mult != 1.0 else {}
        self.backbone = create_backbone(config.backbone, config.num_classes, **backbone_kwargs)
        # preprocessing travels in the config, so these buffers are not saved with the weights
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1, 1), persistent=False)

    def enhance(self, x: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Enhance only: (B, 3, T, H, W) in [0, 1] -> (enhanced clip, keyframe curve maps or None)."""
        check_clip(x)
        k = self._check_k(k)
        if self.enhancer is None:
            return x, None
        return self.enhancer(x, k)

    def classify(self, y: torch.Tensor) -> torch.Tensor:
        """Normalise an (enhanced) clip in [0, 1] and classify it: (B, 3, T, H, W) -> logits (B, C)."""
        z = (y * self.config.pixel_scale - self.mean) / self.std
        return self.backbone(z)

    def forward(self, x: torch.Tensor, k: int | None = None, return_all: bool = False):
        """Classify a dark clip.

        Args:
            x: (B, 3, T, H, W) float in [0, 1].
            k: frame-sharing factor for this call; default the config's.
            return_all: also return the enhanced clip and the curve maps.
        Returns:
            logits (B, num_classes), or a DTCMOutput when ``return_all``.
        """
        y, curves = self.enhance(x, k)
        logits = self.classify(y)
        return DTCMOutput(logits, y, curves) if return_all else logits

    def _check_k(self, k):
        return check_k(k, self.config.k)

    # --------------------------------------------------------------------------------- Hub loading
    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PyTorchModelHubMixin.save_pretrained``, plus ``checksums.sha256`` of the weights (config.json and
        the card stay editable by hand)."""
        out = super().save_pretrained(save_directory, *args, **kwargs)
        write_checksums(save_directory, [SAFETENSORS_NAME])
        return out

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PyTorchModelHubMixin.from_pretrained``, naming a local folder's config.json when it is not JSON."""
        config = os.path.join(str(pretrained_model_name_or_path), CONFIG_NAME)
        if os.path.isfile(config):
            read_json(config)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        map_location="cpu",
        strict=True,
        **model_kwargs,
    ):
        # safetensors only (never a pickle), and strict key checking with a readable message.
        if os.path.isdir(model_id):
            path = Path(model_id) / SAFETENSORS_NAME
            if not path.is_file():
                raise FileNotFoundError(f"{model_id} has no {SAFETENSORS_NAME}; DTCM loads safetensors weights only")
        else:
            path = hf_hub_download(
                repo_id=model_id,
                filename=SAFETENSORS_NAME,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        model = cls(**model_kwargs)
        load_state_dict_strict(model, load_safetensors(path, device=str(map_location)), source=str(model_id))
        if os.path.isdir(model_id):  # weights that fit but changed since saving (a flipped bit); none: older folders
            verify_checksums(model_id)
        return model.eval()


def load_state_dict_strict(model: nn.Module, state: dict, source: str = "weights") -> None:
    """load_state_dict(strict=True) with an error that names the mismatch in words."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        (k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k, got, want = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (e.g. {k}: {got} in the file, {want} in the model)")
        arch = getattr(getattr(model, "config", None), "backbone", type(model).__name__)
        raise WeightsMismatch(f"{source} does not fit the {arch} architecture: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


# ------------------------------------------------------------------------------------- named variants
def register_variant(name: str, **fields) -> None:
    """Register a DTCM variant: ``create_model(name, **overrides)`` builds ``DTCMConfig(**fields)`` so overridden."""

    def build(**overrides) -> DTCM:
        cfg = DTCMConfig(**fields)
        return DTCM(cfg.replace(**overrides) if overrides else cfg)

    registry.register_model("model", name, config=dict(fields))(build)


# the paper's model: 3D-ResNeXt-101 + LightDCE, 64 frames of 112x112, k = 4
register_variant("dtcm_resnext101", backbone="resnext101", clip_len=64)
register_variant("dtcm_resnext101_16f", backbone="resnext101", clip_len=16)
register_variant("dtcm_resnet18", backbone="resnet18")
register_variant("dtcm_resnet34", backbone="resnet34")
register_variant("dtcm_resnet50", backbone="resnet50")
register_variant("dtcm_resnet101", backbone="resnet101")
# CPU-friendly backbones of the shipped demo weights
register_variant("dtcm_mobilenetv2", backbone="mobilenetv2")
register_variant("dtcm_shufflenetv2", backbone="shufflenetv2")
# I3D from DeepMind's Kinetics-400 weights (dtcm import-i3d): RGB in [-1, 1], 32 frames of 224x224
I3D_INPUT = dict(pixel_scale=2.0, mean=(1.0, 1.0, 1.0), std=(1.0, 1.0, 1.0))  # the backbone sees 2 x - 1
register_variant("dtcm_i3d", backbone="i3d", clip_len=32, crop_size=224, short_side=256, **I3D_INPUT)
# baselines
register_variant("zerodce_resnext101", backbone="resnext101", clip_len=64, enhancer="zerodce", k=1)
register_variant("resnext101", backbone="resnext101", clip_len=64, enhancer="none")
# toy sizes for tests
register_variant("dtcm_tiny_test", backbone="resnet_tiny_test", clip_len=8, crop_size=32, short_side=36)
register_variant(
    "dtcm_mobilenetv2_tiny_test", backbone="mobilenetv2_tiny_test", clip_len=8, crop_size=32, short_side=36
)
register_variant("dtcm_i3d_tiny_test", backbone="i3d_tiny_test", clip_len=8, crop_size=32, short_side=36, **I3D_INPUT)


def variant_config(name: str) -> DTCMConfig:
    """The config a variant name stands for, without building the model."""
    return DTCMConfig(**registry.model_info("model", name)["config"])


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return registry.list_models("model")


def create_model(name_or_config: str | DTCMConfig, **overrides) -> DTCM:
    """Build a DTCM model from a variant name or a config, with fields overridden.

    Args:
        name_or_config: a name from ``list_models()`` or a DTCMConfig.
        **overrides: DTCMConfig fields, e.g. ``num_classes=400, k=8``.
    Returns:
        A freshly initialised DTCM.

    Example:
        >>> create_model("dtcm_tiny_test", num_classes=5).config.num_classes
        5
    """
    if isinstance(name_or_config, DTCMConfig):
        return DTCM(name_or_config.replace(**overrides) if overrides else name_or_config)
    return registry.create_model("model", name_or_config, **overrides)


# variant name -> its DTCMConfig fields (read by dtcm.train); derived from the registry, never edited by hand
_VARIANTS: dict[str, dict] = {n: registry.model_info("model", n)["config"] for n in registry.list_models("model")}


# --------------------------------------------------------------------------------- Hara checkpoints
# the "arch" of Hara's released checkpoints -> our backbone (registered with hara_arch in dtcm.backbones.resnet)
_HARA_ARCH = {
    registry.model_info("backbone", n)["hara_arch"]: n
    for n in registry.list_models("backbone", hara=True)
    if "hara_arch" in registry.model_info("backbone", n)
}


def import_hara(path: str | Path, backbone: str | None = None, enhancer: str = "lightdce", **overrides) -> DTCM:
    """Load a checkpoint released by Hara et al. (3D-ResNets-PyTorch) into a DTCM model.

    The file is a dict ``{epoch, arch, state_dict, optimizer}`` whose keys carry a ``module.`` prefix and
    may lack ``num_batches_tracked``. It is read with ``torch.load(weights_only=True)`` (no unpickling of
    code) and copied into the backbone with strict key and shape checks. The input convention of those
    weights (0..255 pixels minus the Kinetics mean) goes into the config. The enhancer starts fresh.

    Args:
        path: the .pth file.
        backbone: our backbone name; default inferred from the checkpoint's ``arch``.
        enhancer: "lightdce", "zerodce" or "none".
        **overrides: more DTCMConfig fields (e.g. ``clip_len=64``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle with code in it, or not a torch file at all
        raise ValueError(f"{path} is not a plain-tensor PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state_dict of tensors (expected Hara's {{'state_dict': ...}} layout)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if backbone is None:
        arch = str(ckpt.get("arch", "")).lower()
        if arch not in _HARA_ARCH:
            raise ValueError(
                f"cannot tell the architecture of {path} (arch={arch!r}); pass backbone=, one of "
                + ", ".join(sorted(set(_HARA_ARCH.values())))
            )
        backbone = _HARA_ARCH[arch]
    if "fc.weight" not in state:
        raise WeightsMismatch(f"{path} has no fc.weight, so it is not a Hara 3D-ResNet checkpoint")
    num_classes = int(state["fc.weight"].shape[0])
    cfg = DTCMConfig(
        backbone=backbone,
        num_classes=num_classes,
        class_names=tuple(f"class_{i}" for i in range(num_classes)),
        pixel_scale=255.0,
        mean=KINETICS_MEAN_255,
        std=(1.0, 1.0, 1.0),
        enhancer=enhancer,
        extra={"imported_from": path.name},
    )
    model = DTCM(cfg.replace(**overrides) if overrides else cfg)
    own = model.backbone.state_dict()
    for key, value in own.items():  # Hara's older files carry no BatchNorm step counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    load_state_dict_strict(model.backbone, state, source=f"{path.name} ({backbone} expected)")
    return model
