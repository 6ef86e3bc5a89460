"""dtcm.registry: one registry behind create_backbone, create_enhancer and create_model."""

import pytest

from dtcm import registry
from dtcm.backbones import HARA_COMPATIBLE, list_backbones
from dtcm.config import ENHANCERS
from dtcm.model import _HARA_ARCH, _VARIANTS, list_models, variant_config


def test_each_kind_lists_what_its_old_function_lists():
    assert registry.list_models("backbone") == list_backbones()
    assert registry.list_models("model") == list_models()
    assert [*registry.list_models("enhancer"), "none"] == list(ENHANCERS)  # config validates without torch


def test_tags_give_the_hara_tables():
    assert set(registry.list_models("backbone", hara=True)) == HARA_COMPATIBLE
    assert _HARA_ARCH == {
        "resnext-101": "resnext101",
        "resnet-18": "resnet18",
        "resnet-34": "resnet34",
        "resnet-50": "resnet50",
        "resnet-101": "resnet101",
    }


def test_variants_keep_their_configs():
    assert set(_VARIANTS) == set(list_models())
    cfg = variant_config("zerodce_resnext101")
    assert (cfg.backbone, cfg.clip_len, cfg.enhancer, cfg.k) == ("resnext101", 64, "zerodce", 1)
    assert registry.create_model("model", "dtcm_tiny_test", num_classes=3).config.num_classes == 3


def test_unknown_names_and_kinds_fail_loudly():
    with pytest.raises(ValueError, match="unknown backbone 'resnet7'; known: i3d, i3d_tiny_test, mobilenetv2, "):
        registry.create_model("backbone", "resnet7")
    with pytest.raises(ValueError, match="unknown kind 'loss'"):
        registry.list_models("loss")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_model("enhancer", "lightdce")(object)
