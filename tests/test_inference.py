"""Inference fast path: equal to the eval-mode enhancer, original untouched, uint8 whole-clip path."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from dtcm.enhancer import ClipEnhancer, LightDCE, ZeroDCE, create_enhancer
from dtcm.inference import FastClipEnhancer, fast_enhance, optimize_for_inference

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def randomized(name: str, seed: int = 0) -> ClipEnhancer:
    """An enhancer with non-trivial weights and BatchNorm statistics (curves well inside (-1, 1))."""
    g = torch.Generator().manual_seed(seed)
    enhancer = create_enhancer(name)
    with torch.no_grad():
        for m in enhancer.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 1.2 / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.6 - 0.3)
    return enhancer


def dark_clip(b=2, t=10, h=20, w=24, seed=1):
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 0.3


@pytest.mark.parametrize("name", ["lightdce", "zerodce"])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_matches_eval_mode_original(name, k):
    enhancer = randomized(name).eval()
    x = dark_clip()  # T = 10: the last group is shorter for k = 3 and 4
    with torch.no_grad():
        y0, r0 = enhancer(x, k)
    assert 0.1 < r0.abs().mean() < 0.9  # non-trivial, unsaturated curves
    y1, r1 = optimize_for_inference(enhancer, chunk_frames=5)(x, k)
    assert y1.shape == y0.shape and r1.shape == r0.shape
    torch.testing.assert_close(r1, r0, rtol=0, atol=1e-5)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)


def test_curve_size_estimates_on_downscaled_keyframes_in_both_paths():
    enhancer = randomized("lightdce", seed=4).eval()
    x = dark_clip(b=1, t=8, h=32, w=40)
    small = copy.deepcopy(enhancer)
    small.curve_size = 16
    with torch.no_grad():
        y_full, r_full = enhancer(x, 4)
        y, r = small(x, 4)
        key = x[:, :, [2, 6]].transpose(1, 2).reshape(2, 3, 32, 40)  # the two keyframes
        by_hand = torch.nn.functional.interpolate(
            enhancer.estimator(torch.nn.functional.interpolate(key, size=(16, 20), mode="bilinear", antialias=True)),
            size=(32, 40),
            mode="bilinear",
        )
    torch.testing.assert_close(r[0].transpose(0, 1), by_hand, rtol=0, atol=1e-6)
    assert (r - r_full).abs().mean() > 1e-3 and y.shape == y_full.shape  # a different estimate, same shapes
    y1, r1 = optimize_for_inference(small)(x, 4)  # the fast copy keeps the setting
    torch.testing.assert_close(r1, r, rtol=0, atol=1e-5)
    torch.testing.assert_close(y1, y, rtol=0, atol=1e-5)
    big = copy.deepcopy(enhancer)
    big.curve_size = 32  # not smaller than the frames: full size
    torch.testing.assert_close(big(x, 4)[1], r_full, rtol=0, atol=0)


@pytest.mark.parametrize(
    "options", [{"channels_last": False}, {"fused": False}, {"pack": False}, {"frames_per_call": 3}]
)
def test_every_option_matches(options):
    enhancer = randomized("lightdce", seed=3).eval()
    x = dark_clip(b=1, t=7, h=17, w=13)
    with torch.no_grad():
        y0, r0 = enhancer(x, 2)
    y1, r1 = optimize_for_inference(enhancer, **options)(x, 2)
    torch.testing.assert_close(r1, r0, rtol=0, atol=1e-5)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)


def test_original_is_untouched_and_still_trains():
    enhancer = randomized("lightdce").train()
    before = copy.deepcopy(enhancer.state_dict())
    fast = optimize_for_inference(enhancer)  # from train mode: uses the running statistics, like eval()
    x = dark_clip()
    y1, _ = fast(x, 4)
    assert enhancer.training and all(p.requires_grad for p in enhancer.parameters())
    after = enhancer.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.data_ptr() == b.data_ptr() for p in enhancer.parameters() for b in fast.buffers())
    with torch.no_grad():
        y0, _ = copy.deepcopy(enhancer).eval()(x, 4)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)

    opt = torch.optim.SGD(enhancer.parameters(), lr=0.1)
    y, r = enhancer(x, 4)
    ((y - 0.6) ** 2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enhancer.parameters())
    opt.step()
    assert not torch.equal(enhancer.estimator.out_conv.weight, before["estimator.out_conv.weight"])
    y2, _ = fast(x, 4)  # the fast copy is a snapshot: training the original does not change it
    torch.testing.assert_close(y2, y1, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["lightdce", "zerodce"])
def test_uint8_path_matches_tensor_path(name):
    fast = optimize_for_inference(randomized(name).eval())
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 70, size=(7, 24, 30, 3), dtype=np.uint8)
    out = fast_enhance(frames, fast, k=3, block_elements=1000)  # several row blocks per group
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, T, H, W)
    y, _ = fast(x, 3)
    ref = (y[0].permute(1, 2, 3, 0) * 255).round().to(torch.uint8).numpy()
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    assert np.abs(out.astype(int) - frames).mean() > 1  # the curves did change the frames


def test_estimate_size_downscales_and_brightens():
    enhancer = create_enhancer("lightdce").eval()
    with torch.no_grad():
        enhancer.estimator.out_conv.bias.fill_(0.8)  # positive curves: a brightening enhancer
    fast = optimize_for_inference(enhancer)
    seen = []
    fast.estimator.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    rng = np.random.default_rng(1)
    frames = rng.integers(5, 40, size=(6, 64, 80, 3), dtype=np.uint8)
    out = fast_enhance(frames, fast, k=4, estimate_size=16)
    assert seen == [(1, 3, 16, 20)] * 2  # two groups (4 + 2 frames), each estimated at short side 16
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert out.mean() > frames.mean() + 20
    native = fast_enhance(frames, fast, k=4)
    assert np.abs(out.astype(int) - native.astype(int)).mean() < 3  # smooth curves: nearly the native result


def test_accepts_a_plain_clip_enhancer():
    enhancer = randomized("zerodce").eval()
    frames = np.full((3, 8, 8, 3), 30, dtype=np.uint8)
    np.testing.assert_array_equal(
        fast_enhance(frames, enhancer, k=2), fast_enhance(frames, optimize_for_inference(enhancer), k=2)
    )


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken_compile(module, **kwargs):
        def compiled(*args):
            raise RuntimeError("no C++ compiler here")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    enhancer = randomized("lightdce").eval()
    fast = optimize_for_inference(enhancer, compile=True)
    x = dark_clip(b=1, t=5)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        y1, _ = fast(x, 2)
    with torch.no_grad():
        y0, _ = enhancer(x, 2)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)


def test_read_only_frames():
    frames = np.full((2, 8, 8, 3), 30, dtype=np.uint8)
    frames.flags.writeable = False
    fast_enhance(frames, optimize_for_inference(create_enhancer("zerodce")))


def test_bad_input_fails_loudly():
    fast = optimize_for_inference(create_enhancer("lightdce"))
    with pytest.raises(ValueError, match="uint8"):
        fast_enhance(np.zeros((2, 8, 8, 3), dtype=np.float32), fast)
    with pytest.raises(ValueError, match="uint8"):
        fast_enhance(np.zeros((8, 8, 3), dtype=np.uint8), fast)
    with pytest.raises(ValueError, match="k must be"):
        fast_enhance(np.zeros((2, 8, 8, 3), dtype=np.uint8), fast, k=0)
    with pytest.raises(ValueError, match="k must be"):
        fast(torch.rand(1, 3, 4, 8, 8), 0)
    with pytest.raises(ValueError, match="channels"):
        fast(torch.rand(1, 4, 4, 8, 8), 1)
    with pytest.raises(ValueError, match="ClipEnhancer"):
        optimize_for_inference(LightDCE())
    with pytest.raises(ValueError, match="no fast path"):
        optimize_for_inference(ClipEnhancer(nn.Conv2d(3, 24, 3, padding=1)))
    assert isinstance(optimize_for_inference(ClipEnhancer(ZeroDCE())), FastClipEnhancer)


# ------------------------------------------------------------------- the scene form (issue 19)
@pytest.mark.parametrize("name", ["lightdce_scene", "zerodce_scene"])
@pytest.mark.parametrize("k", [1, 3])
def test_scene_form_fast_path_matches_eval_mode_original(name, k):
    enhancer = randomized(name).eval()
    x = dark_clip(h=70, w=90)  # estimated at a short side of 64, maps upsampled back
    with torch.no_grad():
        y0, r0 = enhancer(x, k)
    fast = optimize_for_inference(enhancer)
    assert fast.scene
    y1, r1 = fast(x, k)
    torch.testing.assert_close(r1, r0, rtol=0, atol=1e-5)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)


def test_scene_form_uint8_path_within_one_grey_level_on_a_real_sized_frame():
    enhancer = randomized("lightdce_scene", seed=2).eval()
    g = np.random.default_rng(0)
    frames = (g.random((3, 480, 640, 3)) ** 2 * 70).astype(np.uint8)  # dark, most values near black
    out = fast_enhance(frames, optimize_for_inference(enhancer), k=2)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, T, H, W)
    with torch.no_grad():
        ref = enhancer(x, 2)[0][0].permute(1, 2, 3, 0).mul(255).round().byte().numpy()  # the training path
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert out.mean() > frames.mean()  # it did brighten


def test_shipped_scene_weights_same_picture_in_training_and_inference():
    from dtcm.model import DTCM
    from dtcm.pipeline import enhance_frames

    model = DTCM.from_pretrained(Path(__file__).resolve().parents[1] / "weights" / "lightdce-real").eval()
    assert model.config.enhancer == "lightdce_scene"
    g = np.random.default_rng(3)
    frames = (g.random((2, 480, 640, 3)) ** 3 * 80).astype(np.uint8)  # a real-sized dark photo pair
    out = enhance_frames(model, frames, k=2)  # what dtcm enhance and the app run
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, T, H, W)
    with torch.no_grad():
        ref = model.enhance(x, 2)[0][0].permute(1, 2, 3, 0).mul(255).round().byte().numpy()  # the training path
    assert np.abs(out.astype(int) - ref).max() <= 1
