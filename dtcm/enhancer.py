"""Curve-estimation enhancers (LightDCE, ZeroDCE) and their application to clips with frame sharing.

An enhancer maps a frame (N, 3, H, W) in [0, 1] to curve maps R (N, 3 * n, H, W) in [-1, 1]; the clip is
then brightened by n iterations of the light-enhancement curve ``x <- x + r_n * x * (1 - x)`` (SPEC A2).
With frame sharing (SPEC A3) the T frames are split into consecutive groups of k frames; R is estimated
once per group, on the group's middle frame, and applied to every frame of the group. The curve and the
keyframe rule live in ``dtcm.curves``; the estimators are registered as enhancers in ``dtcm.registry``.

LightDCE widths (chosen so the paper's numbers hold with every layer at full resolution):
    inConv 3 -> 32 (3x3, bias, ReLU)
    layers 2-4: ShuffleNetV2 basic units at 32 channels (16 + 16 split)
    layer 5: ShuffleNetV2 down-sampling unit 32 -> 56 at stride 1 (two 28-channel branches)
    layer 6: ShuffleNetV2 down-sampling unit 56 -> 56 at stride 1
    outConv 56 -> 24 (3x3, bias, Tanh)
That is 23,688 parameters (paper: 22.97K-23.77K) and 22,720 multiply-accumulates per pixel: 1.489 GMACs
on 256x256 (paper 1.51G) and 18.24 GMACs on 64x112x112 at k = 1 (paper, Table IX: 19.08G).

The scene-keeping enhancers (issue 19) ``lightdce_scene`` and ``zerodce_scene`` are the same networks with one
map per iteration (outConv to n channels): the curve lifts L = max(R, G, B) through smooth maps and colour is
carried over (``dtcm.curves.scene_maps``, ``scene_curves``); their keyframes are estimated at a short side of
at most ``SCENE_ESTIMATE``. The names ``lightdce`` and ``zerodce`` keep the paper's per-channel curves.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dtcm import registry
from dtcm.curves import (
    SCENE_ESTIMATE,
    apply_curves,
    estimate_at,
    keyframe_indices,
    num_keyframes,
    scene_curves,
    scene_maps,
)

__all__ = [
    "LightDCE",
    "ZeroDCE",
    "ClipEnhancer",
    "apply_curves",
    "check_clip",
    "channel_shuffle",
    "keyframe_indices",
    "create_enhancer",
    "estimate_scene",
    "num_keyframes",
]


def check_clip(x: torch.Tensor, name: str = "clip", check_range: bool = True) -> None:
    """Raise ValueError unless ``x`` is a (B, 3, T, H, W) float tensor with values in [0, 1]."""
    accepted = "(B, 3, T, H, W) float in [0, 1]"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {accepted}, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(f"{name} has rank {x.dim()} (shape {tuple(x.shape)}); accepted: {accepted}")
    if x.shape[1] != 3:
        raise ValueError(f"{name} has {x.shape[1]} channels (shape {tuple(x.shape)}); accepted: {accepted}")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; accepted: {accepted} (divide uint8 frames by 255)")
    if check_range and x.device.type != "meta" and x.numel():
        lo, hi = torch.aminmax(x.detach())
        if lo < -1e-4 or hi > 1 + 1e-4 or not torch.isfinite(lo + hi):
            raise ValueError(f"{name} has values in [{lo.item():.4g}, {hi.item():.4g}]; accepted: {accepted}")


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2)  # (B, C/g, g, H, W)
    return x.reshape(b, c, h, w)


def _conv_bn(cin, cout, kernel, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ShuffleBasicUnit(nn.Module):
    """ShuffleNetV2 basic unit: split channels, transform one half (1x1, 3x3 depthwise, 1x1), shuffle."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            _conv_bn(half, half, 1), _conv_bn(half, half, 3, groups=half, relu=False), _conv_bn(half, half, 1)
        )

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([a, self.branch(b)], dim=1))


class ShuffleDownUnit(nn.Module):
    """ShuffleNetV2 spatial down-sampling unit, used here at stride 1: two branches, concat, shuffle."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        half = cout // 2
        self.branch1 = nn.Sequential(_conv_bn(cin, cin, 3, groups=cin, relu=False), _conv_bn(cin, half, 1))
        self.branch2 = nn.Sequential(
            _conv_bn(cin, half, 1), _conv_bn(half, half, 3, groups=half, relu=False), _conv_bn(half, half, 1)
        )

    def forward(self, x):
        return channel_shuffle(torch.cat([self.branch1(x), self.branch2(x)], dim=1))


@registry.register_model("enhancer", "lightdce")
class LightDCE(nn.Module):
    """The paper's lightweight curve estimator (Fig. 3): (N, 3, H, W) -> (N, 3n, H, W) in [-1, 1].

    ``colour=False`` (the scene form): one map per iteration, (N, n, H, W).
    """

    def __init__(self, iterations: int = 8, width: int = 32, widths: tuple[int, int] = (56, 56), colour: bool = True):
        super().__init__()
        self.iterations = iterations
        self.in_conv = nn.Conv2d(3, width, 3, 1, 1)
        self.layer2 = ShuffleBasicUnit(width)
        self.layer3 = ShuffleBasicUnit(width)
        self.layer4 = ShuffleBasicUnit(width)
        self.layer5 = ShuffleDownUnit(width, widths[0])
        self.layer6 = ShuffleDownUnit(widths[0], widths[1])
        self.out_conv = nn.Conv2d(widths[1], (3 if colour else 1) * iterations, 3, 1, 1)
        _init_convs(self)

    def forward(self, x):
        x = F.relu(self.in_conv(x))
        x = self.layer6(self.layer5(self.layer4(self.layer3(self.layer2(x)))))
        return torch.tanh(self.out_conv(x))


@registry.register_model("enhancer", "zerodce")
class ZeroDCE(nn.Module):
    """Zero-DCE's DCE-Net (baseline): 7 plain 3x3 convs with symmetric skip concatenations; 79,416 params.

    ``colour=False`` (the scene form): one map per iteration, (N, n, H, W).
    """

    def __init__(self, iterations: int = 8, width: int = 32, colour: bool = True):
        super().__init__()
        self.iterations = iterations
        w = width
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1)
        self.conv2 = nn.Conv2d(w, w, 3, 1, 1)
        self.conv3 = nn.Conv2d(w, w, 3, 1, 1)
        self.conv4 = nn.Conv2d(w, w, 3, 1, 1)
        self.conv5 = nn.Conv2d(2 * w, w, 3, 1, 1)
        self.conv6 = nn.Conv2d(2 * w, w, 3, 1, 1)
        self.conv7 = nn.Conv2d(2 * w, (3 if colour else 1) * iterations, 3, 1, 1)
        _init_convs(self)

    def forward(self, x):
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        x5 = F.relu(self.conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.conv7(torch.cat([x1, x6], 1)))


@registry.register_model("enhancer", "lightdce_scene", scene=True)
def lightdce_scene(iterations: int = 8) -> LightDCE:
    return LightDCE(iterations, colour=False)


@registry.register_model("enhancer", "zerodce_scene", scene=True)
def zerodce_scene(iterations: int = 8) -> ZeroDCE:
    return ZeroDCE(iterations, colour=False)


def _init_convs(module: nn.Module) -> None:
    # Zero-DCE's initialisation: N(0, 0.02) weights, zero biases; BatchNorm at identity.
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ClipEnhancer(nn.Module):
    """Runs a curve estimator on keyframes of a clip and applies the curves to every frame.

    With ``curve_size``, keyframes with a longer short side are downscaled to it (bilinear, antialiased), the
    curves estimated there and upsampled back (bilinear): at 56 for 112x112 clips the estimator does a quarter
    of the work (Zero-DCE++'s trick, here in training as well as inference).

    With ``scene`` (the estimator gives n maps) the curves take the scene-keeping form of ``dtcm.curves``:
    keyframes estimated at a short side of at most ``SCENE_ESTIMATE``, smooth maps, a curve on max(R, G, B)
    and colour carried over.
    """

    def __init__(self, estimator: nn.Module, curve_size: int | None = None, scene: bool = False):
        super().__init__()
        self.estimator = estimator
        self.curve_size = curve_size
        self.scene = scene

    @property
    def iterations(self) -> int:
        return self.estimator.iterations

    def forward(self, x: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Enhance a clip.

        Args:
            x: (B, 3, T, H, W) in [0, 1].
            k: frame-sharing factor (1 = per-frame curves).
        Returns:
            (enhanced (B, 3, T, H, W), curves (B, 3 * n, G, H, W)) with G = ceil(T / k) keyframe maps;
            (B, n, G, H, W) in the scene form.
        """
        b, c, t, h, w = x.shape
        keys, groups = keyframe_indices(t, k)
        key = x[:, :, keys].transpose(1, 2).reshape(b * len(keys), c, h, w)  # (B*G, 3, H, W)
        if self.scene:
            r = estimate_scene(self.estimator, key, self.curve_size)  # (B*G, n, H, W)
        else:
            r = estimate_at(self.estimator, key, self.curve_size)  # (B*G, 3n, H, W)
        r = r.view(b, len(keys), -1, h, w).transpose(1, 2)  # (B, 3n or n, G, H, W)
        if k == 1:
            r_frames = r
        else:
            idx = torch.as_tensor(groups, device=x.device)
            r_frames = r.index_select(2, idx)  # (B, 3n or n, T, H, W)
        if not self.scene:
            return apply_curves(x, r_frames), r
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, 3, H, W)
        y = scene_curves(frames, r_frames.transpose(1, 2).reshape(b * t, -1, h, w))  # (B*T, 3, H, W)
        return y.view(b, t, c, h, w).transpose(1, 2), r  # (B, 3, T, H, W)


def estimate_scene(estimator: nn.Module, key: torch.Tensor, curve_size: int | None = None) -> torch.Tensor:
    """Scene form: keyframes (N, 3, H, W) -> smooth maps (N, n, H, W), estimated at a short side of at most
    ``SCENE_ESTIMATE`` (or ``curve_size`` if smaller; bilinear, antialiased)."""
    h, w = key.shape[-2:]
    side = min(SCENE_ESTIMATE, curve_size or SCENE_ESTIMATE)
    if min(h, w) > side:
        scale = side / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        key = F.interpolate(key, size=size, mode="bilinear", antialias=True, align_corners=False)
    return scene_maps(estimator(key), (h, w))


def create_enhancer(name: str, iterations: int = 8, curve_size: int | None = None) -> ClipEnhancer | None:
    """Build a clip enhancer by name ("lightdce", "zerodce", "lightdce_scene", "zerodce_scene"); "none" gives None."""
    if name == "none":
        return None
    if not registry.is_model("enhancer", name):
        raise ValueError(f"unknown enhancer {name!r}; known: {', '.join([*registry.list_models('enhancer'), 'none'])}")
    scene = registry.model_info("enhancer", name).get("scene", False)
    return ClipEnhancer(registry.create_model("enhancer", name, iterations=iterations), curve_size, scene)
