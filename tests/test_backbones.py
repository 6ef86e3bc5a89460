"""Backbones (SPEC A5): exact parameter counts, MACs on the meta device, Hara / Efficient-3DCNNs key
names, and shape / NaN / gradient checks for every registered backbone at toy sizes."""

import pytest
import torch
import torch.nn.functional as F

from dtcm.backbones import HARA_COMPATIBLE, count_macs, create_backbone, list_backbones

REFERENCE_PARAMS = [
    ("resnext101", 11, 47_543_755),
    ("resnext101", 400, 48_340_816),
    ("mobilenetv2", 11, 2_368_139),
    ("shufflenetv2", 11, 1_310_455),
]
REFERENCE_MACS = [
    ("resnext101", (1, 3, 64, 112, 112), 38.27e9),
    ("resnext101", (1, 3, 16, 112, 112), 9.57e9),
    ("mobilenetv2", (1, 3, 16, 112, 112), 0.519e9),
    ("shufflenetv2", (1, 3, 16, 112, 112), 0.187e9),
]


def meta_backbone(name, num_classes=11, **overrides):
    with torch.device("meta"):
        return create_backbone(name, num_classes, **overrides)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,num_classes,expected", REFERENCE_PARAMS)
def test_param_counts_exact(name, num_classes, expected):
    assert n_params(meta_backbone(name, num_classes)) == expected


@pytest.mark.parametrize("name,shape,expected", REFERENCE_MACS)
def test_macs_match_reference(name, shape, expected):
    assert count_macs(meta_backbone(name), shape) == pytest.approx(expected, rel=0.01)


def test_count_macs_restores_training_mode():
    model = meta_backbone("resnet_tiny_test")
    count_macs(model, (1, 3, 4, 32, 32))
    assert model.training


def test_resnext101_stage_shapes():
    model = meta_backbone("resnext101")
    shapes = {}

    def record(name):
        def hook(module, inputs, output):
            shapes[name] = tuple(output.shape)

        return hook

    for name in ("maxpool", "layer1", "layer2", "layer3", "layer4"):
        getattr(model, name).register_forward_hook(record(name))
    model(torch.empty(1, 3, 64, 112, 112, device="meta"))
    assert shapes == {
        "maxpool": (1, 64, 32, 28, 28),
        "layer1": (1, 256, 32, 28, 28),
        "layer2": (1, 512, 16, 14, 14),
        "layer3": (1, 1024, 8, 7, 7),
        "layer4": (1, 2048, 4, 4, 4),
    }
    assert model.num_features == 2048


def test_hara_key_names():
    keys = meta_backbone("resnext101").state_dict().keys()
    for key in ("conv1.weight", "bn1.running_mean", "layer3.22.conv2.weight", "layer3.22.bn3.bias"):
        assert key in keys
    for key in ("layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight", "fc.weight", "fc.bias"):
        assert key in keys
    assert set(HARA_COMPATIBLE) <= set(list_backbones())


def test_resnet_shortcuts():
    # Hara's ResNet-18/34 weights use shortcut A (no parameters); B adds 1x1x1 conv + BN from layer2 on
    keys_a = meta_backbone("resnet18").state_dict().keys()
    keys_b = meta_backbone("resnet18", shortcut="B").state_dict().keys()
    assert not any("downsample" in k for k in keys_a)
    assert "layer2.0.downsample.0.weight" in keys_b and "layer1.0.downsample.0.weight" not in keys_b
    assert "layer1.0.downsample.0.weight" in meta_backbone("resnet50").state_dict()
    with pytest.raises(ValueError, match="shortcut"):
        meta_backbone("resnet18", shortcut="C")


def test_efficient_3dcnns_key_names():
    keys = meta_backbone("mobilenetv2").state_dict().keys()
    assert {"features.0.0.weight", "features.1.conv.3.weight", "features.2.conv.7.weight"} <= keys
    assert {"features.18.0.weight", "classifier.1.weight"} <= keys
    keys = meta_backbone("shufflenetv2").state_dict().keys()
    assert {"conv1.0.weight", "features.0.banch1.0.weight", "features.1.banch2.6.bias"} <= keys
    assert {"conv_last.0.weight", "classifier.1.weight"} <= keys
    assert "features.1.banch1.0.weight" not in keys


@pytest.mark.parametrize("width_mult", [0.2, 0.5, 2.0])
def test_mobilenetv2_width_mult(width_mult):
    model = meta_backbone("mobilenetv2", width_mult=width_mult)
    assert model.num_features == (2560 if width_mult == 2.0 else 1280)
    assert model(torch.empty(2, 3, 16, 112, 112, device="meta")).shape == (2, 11)


def test_bad_width_mult_fails_loudly():
    with pytest.raises(ValueError, match="0.25, 0.5, 1.0, 1.5, 2.0"):
        meta_backbone("shufflenetv2", width_mult=0.7)
    with pytest.raises(ValueError, match="width_mult"):
        meta_backbone("mobilenetv2", width_mult=3.0)


def test_unknown_name_lists_known():
    with pytest.raises(ValueError) as err:
        create_backbone("resnet7", 11)
    for name in list_backbones():
        assert name in str(err.value)


def test_registry_names():
    names = list_backbones()
    assert names == sorted(names)
    full = {"resnet18", "resnet34", "resnet50", "resnet101", "resnext101", "mobilenetv2", "shufflenetv2"}
    assert full <= set(names)
    assert {"resnet_tiny_test", "mobilenetv2_tiny_test", "shufflenetv2_tiny_test"} <= set(names)


@pytest.mark.parametrize("name", [n for n in list_backbones() if n.endswith("_tiny_test")])
@pytest.mark.parametrize("shape", [(1, 3, 4, 32, 32), (1, 3, 1, 16, 16), (2, 3, 5, 24, 40)])
def test_tiny_eval_any_size(name, shape):
    torch.manual_seed(0)
    model = create_backbone(name, 7).eval()
    with torch.no_grad():
        y = model(torch.rand(shape))
    assert y.shape == (shape[0], 7)
    assert torch.isfinite(y).all()


FULL_SIZE_SLOW = ("resnext101", "resnet50", "resnet101", "i3d")  # full-size networks: the slow selection


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in FULL_SIZE_SLOW else n for n in list_backbones()]
)
def test_forward_backward_every_parameter(name):
    # 48x48 keeps the last feature map larger than 1x1 so every BN bias gets a non-zero gradient
    # (on a 1x1x1 map a BN shift feeding only linear layers and another BN has no effect)
    torch.manual_seed(0)
    model = create_backbone(name, 5)
    x = torch.rand(2, 3, 4, 48, 48)
    y = model(x)
    assert y.shape == (2, 5)
    assert torch.isfinite(y).all()
    assert model.num_features == model.forward_features(x).shape[1]
    F.cross_entropy(y, torch.tensor([0, 4])).backward()
    for key, p in model.named_parameters():
        assert p.grad is not None, key
        assert torch.isfinite(p.grad).all(), key
        assert p.grad.abs().sum() > 0, key
