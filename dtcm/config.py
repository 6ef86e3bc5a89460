"""One frozen configuration for a DTCM model; it travels with the weights as ``config.json``."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dtcm.video import LIMITS

CONFIG_NAME = "config.json"  # a model folder: this file and WEIGHTS_NAME (save_pretrained writes both)
WEIGHTS_NAME = "model.safetensors"
MIN_CURVE_SIZE = 8  # the smallest short side curves may be estimated at (config curve_size, dtcm train --curve-size)

__all__ = ["ARID_CLASSES", "DTCMConfig", "KINETICS_MEAN_255"]

# ARID's 11 actions in ARID's own index order (classInd of ARID v1.0).
ARID_CLASSES = ("Drink", "Jump", "Pick", "Pour", "Push", "Run", "Sit", "Stand", "Turn", "Walk", "Wave")
# Hara et al.'s Kinetics mean on 0..255 pixels, the input convention of their released checkpoints.
KINETICS_MEAN_255 = (110.63666788, 103.16065604, 96.29023126)

# the enhancers registered in dtcm.enhancer, and "none"; kept here so a config validates without torch
# (tests/test_registry.py checks that the two agree)
# (the *_scene names: the scene-keeping curves of issue 19, opted into by new weights)
ENHANCERS = ("lightdce", "lightdce_scene", "zerodce", "zerodce_scene", "none")
# Bounds a config.json must keep (clip_len's is the decoder's LIMITS.max_frames): beyond them a model
# cannot be built in memory or a clip cannot be read.
MAX_CURVE_ITERATIONS = 32  # the paper uses 8; R has 3 * n channels
MAX_WIDTH_MULT = 4.0  # the papers' backbones use 0.2-2.0
MAX_CLASSES = 100_000
MAX_SHORT_SIDE = 4096
MAX_K = 1024
PIXEL_SCALE_RANGE = (1.0, 255.0)  # what the backbones take: 0..1 (ours), 0..2 (I3D, then mean 1), 0..255 (Hara)
CALIBRATION_FIELDS = ("temperature", "not_sure_below", "min_energy")  # fitted for one set of weights


@dataclass(frozen=True)
class DTCMConfig:
    """Everything needed to rebuild a model and to feed it: architecture, preprocessing, training knobs.

    Example:
        >>> cfg = DTCMConfig(backbone="mobilenetv2", num_classes=11)
        >>> DTCMConfig.from_json(cfg.to_json()) == cfg
        True
    """

    backbone: str = "resnext101"  # registry name in dtcm.backbones
    width_mult: float = 1.0  # width multiplier (MobileNetV2 / ShuffleNetV2 only)
    num_classes: int = 11  # size of the classifier head
    class_names: tuple[str, ...] = ARID_CLASSES  # one name per class, in label order
    clip_len: int = 16  # T: consecutive frames per clip (paper: 16 or 64)
    crop_size: int = 112  # H = W of the network input
    short_side: int = 128  # frames are resized so their short side is this before cropping
    pixel_scale: float = 1.0  # the backbone sees (x * pixel_scale - mean) / std; Hara checkpoints: 255
    mean: tuple[float, float, float] = (0.4339, 0.4045, 0.3776)  # per channel, in pixel_scale units
    std: tuple[float, float, float] = (0.2254, 0.2195, 0.2137)  # per channel, in pixel_scale units
    enhancer: str = "lightdce"  # "lightdce" (the paper's), "zerodce" (baseline), their "*_scene" forms or "none"
    k: int = 4  # frame-sharing factor: one curve estimate per k frames (paper default 4)
    alpha: float = 0.1  # weight of the enhancement losses in L_total (Eq. 7)
    w_stc: float = 4.0  # weight of L_STC inside the enhancement losses (Eq. 7)
    curve_iterations: int = 8  # n of the curve x <- x + r x (1 - x); R has 3 * n channels
    curve_size: int | None = None  # keyframes downscaled to this short side for curve estimation; None = full size
    # Calibration (dtcm.calibration): only the probabilities shown change, never the logits.
    temperature: float = 1.0  # probabilities shown are softmax(logits / temperature); 1.0 = uncalibrated
    not_sure_below: float = 0.0  # "not sure" when the top shown probability is below this; 0 = never
    min_energy: float | None = None  # "not sure" when logsumexp(logits) is below this (unfamiliar clip); None = never
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # free-form provenance

    def __post_init__(self):
        # JSON gives lists; keep tuples so configs compare equal after a round trip.
        for name in ("class_names", "mean", "std"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ValueError(f"{name} must be a list, got {type(value).__name__} {value!r}"[:200])
            object.__setattr__(self, name, tuple(value))
        _check(isinstance(self.backbone, str) and self.backbone, "backbone", self.backbone, "a backbone name")
        _check_number(self, "width_mult", 0.0, MAX_WIDTH_MULT, low_open=True)
        _check_int(self, "num_classes", 1, MAX_CLASSES)
        _check(all(isinstance(n, str) for n in self.class_names), "class_names", self.class_names, "class names")
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}; "
                "give one name per class"
            )
        _check_int(self, "clip_len", 1, LIMITS.max_frames)
        _check_int(self, "short_side", 1, MAX_SHORT_SIDE)
        _check_int(self, "crop_size", 1, self.short_side)
        low, high = PIXEL_SCALE_RANGE
        _check(
            _is_number(self.pixel_scale) and low <= self.pixel_scale <= high,
            "pixel_scale",
            self.pixel_scale,
            f"a number from {low:g} (pixels on 0..1) to {high:g} (pixels on 0..255)",
        )
        for name in ("mean", "std"):
            values = getattr(self, name)
            low = 0.0 if name == "std" else -math.inf
            ok = len(values) == 3 and all(_is_number(v) and low < v < math.inf for v in values)
            _check(ok, name, values, "3 finite numbers, one per RGB channel" + (", each > 0" if name == "std" else ""))
        if self.enhancer not in ENHANCERS:
            raise ValueError(f"unknown enhancer {self.enhancer!r}; known: {', '.join(ENHANCERS)}")
        _check_int(self, "k", 1, MAX_K)
        _check_number(self, "alpha", 0.0, math.inf)
        _check_number(self, "w_stc", 0.0, math.inf)
        _check_int(self, "curve_iterations", 1, MAX_CURVE_ITERATIONS)
        _check(
            self.curve_size is None
            or (
                isinstance(self.curve_size, int)
                and not isinstance(self.curve_size, bool)
                and self.curve_size >= MIN_CURVE_SIZE
            ),
            "curve_size",
            self.curve_size,
            f"None or a short side of at least {MIN_CURVE_SIZE} pixels",
        )
        _check(isinstance(self.extra, dict), "extra", self.extra, "a JSON object")
        _check_number(self, "temperature", 0.0, math.inf, low_open=True)
        _check_number(self, "not_sure_below", 0.0, 1.0)
        _check(
            self.min_energy is None or (_is_number(self.min_energy) and math.isfinite(self.min_energy)),
            "min_energy",
            self.min_energy,
            "a finite number or null",
        )

    def replace(self, **changes) -> DTCMConfig:
        """A copy with some fields changed (keeps class_names consistent when num_classes changes)."""
        if "num_classes" in changes and "class_names" not in changes:
            n = changes["num_classes"]
            names = self.class_names if len(self.class_names) == n else tuple(f"class_{i}" for i in range(n))
            changes["class_names"] = names
        return dataclasses.replace(self, **changes)

    def uncalibrated(self) -> DTCMConfig:
        """A copy with the calibration fields at their defaults: what new weights (a fine-tune) start with."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in CALIBRATION_FIELDS}
        return dataclasses.replace(self, **defaults)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for name in ("class_names", "mean", "std"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DTCMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DTCMConfig:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DTCMConfig:
        from dtcm.checksums import read_json

        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object of config fields, got {type(data).__name__}")
        return cls.from_dict(data)


# ------------------------------------------------------------------------------------------ checks
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _check(ok, name: str, value, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {accepted}, got {value!r}"[:300])


def _check_int(cfg, name: str, low: int, high: int) -> None:
    value = getattr(cfg, name)
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    _check(ok, name, value, f"an integer from {low} to {high}")


def _check_number(cfg, name: str, low: float, high: float, low_open: bool = False) -> None:
    value = getattr(cfg, name)
    ok = _is_number(value) and (low < value if low_open else low <= value) and value <= high and math.isfinite(value)
    bounds = f"above {low:g}" if low_open else f"at least {low:g}"
    _check(ok, name, value, f"a finite number {bounds}" + (f" and at most {high:g}" if math.isfinite(high) else ""))
