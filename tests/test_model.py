"""The DTCM model: every variant at toy size, Hub round trip offline, Hara import, k overrides."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

import dtcm
from dtcm.backbones import list_backbones
from dtcm.config import DTCMConfig
from dtcm.model import DTCM, WeightsMismatch, create_model, import_hara

TINY_BACKBONES = [b for b in list_backbones() if b.endswith("_tiny_test")]


@pytest.mark.parametrize("backbone", TINY_BACKBONES)
@pytest.mark.parametrize("enhancer", ["lightdce", "zerodce", "none"])
def test_every_tiny_model_trains(backbone, enhancer):
    torch.manual_seed(0)
    model = create_model("dtcm_tiny_test", backbone=backbone, enhancer=enhancer, num_classes=5)
    x = torch.rand(2, 3, 8, 32, 32) * 0.3
    out = model(x, return_all=True)
    assert out.logits.shape == (2, 5)
    assert out.enhanced.shape == x.shape
    assert torch.isfinite(out.logits).all()
    out.logits.logsumexp(1).sum().backward()  # a training-mode step: finite gradients everywhere
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # In eval mode BatchNorm uses running statistics, so a bias that a following training-mode
    # BatchNorm would cancel exactly must still receive a gradient: every parameter is reachable.
    model.zero_grad()
    out = model.eval()(x, return_all=True)
    loss = out.logits.logsumexp(1).sum() + (out.enhanced.mean() if enhancer != "none" else 0)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, f"zero gradient on {name}"


def test_k_can_be_overridden_per_call():
    model = create_model("dtcm_tiny_test").eval()
    with torch.no_grad():  # a freshly initialised estimator is nearly the identity; make it act
        for p in model.enhancer.parameters():
            p.normal_(0, 0.5)
    x = torch.rand(1, 3, 8, 32, 32) * 0.3
    with torch.no_grad():
        a = model(x, k=1, return_all=True)
        b = model(x, k=8, return_all=True)
        c = model(x, return_all=True)  # config k = 4
    assert a.curves.shape[2] == 8 and b.curves.shape[2] == 1 and c.curves.shape[2] == 2
    assert not torch.allclose(a.enhanced, b.enhanced)
    with pytest.raises(ValueError, match="k must be an integer"):
        model(x, k=0)


def test_enhance_only_path():
    model = create_model("dtcm_tiny_test").eval()
    x = torch.rand(1, 3, 8, 32, 32) * 0.3
    y, curves = model.enhance(x, k=2)
    assert y.shape == x.shape and curves.shape == (1, 24, 4, 32, 32)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\) float in \[0, 1\]"):
        model.enhance(x * 255)


@pytest.mark.parametrize("name", ["dtcm_tiny_test", "dtcm_mobilenetv2_tiny_test"])
def test_save_and_load_round_trip_offline(tmp_path, name):
    model = create_model(name, num_classes=4, class_names=("a", "b", "c", "d"), w_stc=2.0).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    loaded = DTCM.from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert isinstance(loaded.config.class_names, tuple)
    x = torch.rand(1, 3, 8, 32, 32) * 0.3
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=1e-6)


def test_load_refuses_other_architecture(tmp_path):
    create_model("dtcm_tiny_test").save_pretrained(tmp_path)
    cfg = DTCMConfig.load(tmp_path / "config.json").replace(backbone="mobilenetv2_tiny_test")
    cfg.save(tmp_path / "config.json")
    with pytest.raises(WeightsMismatch, match="does not fit the mobilenetv2_tiny_test architecture"):
        DTCM.from_pretrained(tmp_path)


def test_load_refuses_pickle_only_folder(tmp_path):
    model = create_model("dtcm_tiny_test")
    model.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="safetensors"):
        DTCM.from_pretrained(tmp_path)


def test_create_model_errors_and_names():
    with pytest.raises(ValueError, match="known: .*dtcm_resnext101"):
        create_model("dtcm_vgg")
    with pytest.raises(ValueError, match="known: .*resnext101"):
        create_model("dtcm_tiny_test", backbone="vgg16")
    m = dtcm.create_model(DTCMConfig(backbone="resnet_tiny_test", num_classes=3, class_names=("x", "y", "z")))
    assert m.config.num_classes == 3


def _hara_checkpoint(path, backbone="resnet_tiny_test", num_classes=7, drop_counters=True, arch="resnet-18"):
    from dtcm.backbones import create_backbone

    torch.manual_seed(1)
    src = create_backbone(backbone, num_classes).eval()
    # make BatchNorm statistics non-trivial so a wrong copy would show
    with torch.no_grad():
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    if drop_counters:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 200, "arch": arch, "state_dict": state, "optimizer": {}}, path)
    return src


def test_import_hara_gives_the_same_logits(tmp_path):
    ckpt = tmp_path / "hara.pth"
    src = _hara_checkpoint(ckpt)
    model = import_hara(ckpt, backbone="resnet_tiny_test", enhancer="none").eval()
    assert model.config.pixel_scale == 255 and model.config.num_classes == 7
    clip = torch.rand(2, 3, 8, 32, 32)
    hara_input = clip * 255 - torch.tensor(dtcm.config.KINETICS_MEAN_255).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(clip), src(hara_input), atol=1e-4)
        with_enh = import_hara(ckpt, backbone="resnet_tiny_test").eval()
        assert torch.allclose(with_enh.classify(clip), src(hara_input), atol=1e-4)


def test_import_hara_refuses_wrong_architecture(tmp_path):
    ckpt = tmp_path / "hara.pth"
    _hara_checkpoint(ckpt, backbone="resnext_tiny_test")
    with pytest.raises(WeightsMismatch, match="does not fit"):
        import_hara(ckpt, backbone="resnet_tiny_test")
    with pytest.raises(ValueError, match="cannot tell the architecture"):
        _hara_checkpoint(ckpt, arch="c3d")
        import_hara(ckpt)


def test_import_hara_cli(tmp_path):
    from dtcm.cli import main

    ckpt = tmp_path / "hara.pth"
    _hara_checkpoint(ckpt)
    assert main(["import-hara", str(ckpt), str(tmp_path / "out"), "--backbone", "resnet_tiny_test"]) == 0
    assert DTCM.from_pretrained(tmp_path / "out").config.num_classes == 7
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main(["import-hara", str(tmp_path / "junk.pth"), str(tmp_path / "o2")]) == 2


def test_resnext101_keys_follow_hara():
    with torch.device("meta"):
        keys = set(create_model("dtcm_resnext101").backbone.state_dict())
    assert {"conv1.weight", "layer3.22.conv2.weight", "layer1.0.downsample.0.weight", "fc.weight"} <= keys
