"""One frozen configuration for a DTCM model; it travels with the weights as ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ARID_CLASSES", "DTCMConfig", "KINETICS_MEAN_255"]

# ARID's 11 actions in ARID's own index order (classInd of ARID v1.0).
ARID_CLASSES = ("Drink", "Jump", "Pick", "Pour", "Push", "Run", "Sit", "Stand", "Turn", "Walk", "Wave")
# Hara et al.'s Kinetics mean on 0..255 pixels, the input convention of their released checkpoints.
KINETICS_MEAN_255 = (110.63666788, 103.16065604, 96.29023126)

ENHANCERS = ("lightdce", "zerodce", "none")
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
    enhancer: str = "lightdce"  # "lightdce" (the paper's), "zerodce" (baseline) or "none"
    k: int = 4  # frame-sharing factor: one curve estimate per k frames (paper default 4)
    alpha: float = 0.1  # weight of the enhancement losses in L_total (Eq. 7)
    w_stc: float = 4.0  # weight of L_STC inside the enhancement losses (Eq. 7)
    curve_iterations: int = 8  # n of the curve x <- x + r x (1 - x); R has 3 * n channels
    # Calibration (dtcm.calibration): only the probabilities shown change, never the logits.
    temperature: float = 1.0  # probabilities shown are softmax(logits / temperature); 1.0 = uncalibrated
    not_sure_below: float = 0.0  # "not sure" when the top shown probability is below this; 0 = never
    min_energy: float | None = None  # "not sure" when logsumexp(logits) is below this (unfamiliar clip); None = never
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # free-form provenance

    def __post_init__(self):
        # JSON gives lists; keep tuples so configs compare equal after a round trip.
        for name in ("class_names", "mean", "std"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}; "
                "give one name per class"
            )
        if self.enhancer not in ENHANCERS:
            raise ValueError(f"unknown enhancer {self.enhancer!r}; known: {', '.join(ENHANCERS)}")
        if not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        if self.curve_iterations < 1:
            raise ValueError(f"curve_iterations must be >= 1, got {self.curve_iterations}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0 <= self.not_sure_below <= 1:
            raise ValueError(f"not_sure_below must be a probability in [0, 1], got {self.not_sure_below!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need 3 values, one per RGB channel")

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
        return cls.from_json(Path(path).read_text())
