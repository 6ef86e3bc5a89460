"""Enhancers: parameter counts, curves, frame sharing, bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dtcm.curves import SCENE_BLACK, SCENE_KNEE, SCENE_LOCAL, scene_curves, scene_maps
from dtcm.enhancer import (
    ClipEnhancer,
    LightDCE,
    ZeroDCE,
    apply_curves,
    check_clip,
    create_enhancer,
    keyframe_indices,
)
from dtcm.flops import macs_of


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts():
    assert n_params(ZeroDCE()) == 79_416
    assert 22_900 <= n_params(LightDCE()) <= 23_800


def test_macs_match_the_paper():
    with torch.device("meta"):
        light, zero = LightDCE(), ZeroDCE()
        clip = ClipEnhancer(LightDCE())
        assert macs_of(zero, torch.empty(1, 3, 112, 112)) / (112 * 112) == pytest.approx(79_200, rel=0.001)
        assert macs_of(zero, torch.empty(1, 3, 112, 112)) / 1e9 == pytest.approx(0.993, rel=0.002)
        assert macs_of(light, torch.empty(1, 3, 256, 256)) / 1e9 == pytest.approx(1.51, rel=0.05)
        table_ix = {1: 19.08, 2: 9.55, 4: 4.77, 8: 2.38, 16: 1.19}
        for k, gmacs in table_ix.items():
            got = macs_of(clip, torch.empty(1, 3, 64, 112, 112), k) / 1e9
            assert got == pytest.approx(gmacs, rel=0.05), (k, got)


def test_full_resolution_curve_maps():
    r = LightDCE()(torch.rand(2, 3, 20, 28))
    assert r.shape == (2, 24, 20, 28)
    assert r.abs().max() <= 1


def test_zero_curve_is_identity():
    x = torch.rand(2, 3, 4, 8, 8)
    assert torch.equal(apply_curves(x, torch.zeros(2, 24, 4, 8, 8)), x)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=24, max_size=24),
    st.lists(st.floats(0, 1), min_size=3, max_size=3),
)
def test_curves_stay_in_unit_range(rs, xs):
    x = torch.tensor(xs, dtype=torch.float64).view(1, 3, 1, 1)
    r = torch.tensor(rs, dtype=torch.float64).view(1, 24, 1, 1)
    # the unclamped iteration itself stays in [0, 1]; the clamp is only a numeric guard
    y = x.clone()
    for i in range(8):
        y = y + r[:, 3 * i : 3 * i + 3] * y * (1 - y)
    assert y.min() >= 0 and y.max() <= 1
    assert torch.allclose(apply_curves(x, r), y)


def test_positive_curve_brightens():
    x = torch.full((1, 3, 1, 4, 4), 0.1)
    assert (apply_curves(x, torch.ones(1, 24, 1, 4, 4)) > 0.5).all()


@pytest.mark.parametrize("t,k", [(16, 4), (10, 4), (7, 16), (5, 1), (9, 2)])
def test_keyframes_are_group_middles(t, k):
    keys, groups = keyframe_indices(t, k)
    assert len(keys) == math.ceil(t / k)
    assert len(groups) == t
    for g, key in enumerate(keys):
        members = [i for i in range(t) if groups[i] == g]
        assert members == list(range(g * k, min(g * k + k, t)))
        assert key == members[0] + len(members) // 2


class CountingEstimator(torch.nn.Module):
    """Records which frames the curve estimator sees."""

    iterations = 8

    def __init__(self):
        super().__init__()
        self.net = LightDCE()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.net(x)


def test_estimation_runs_on_keyframes_only():
    t, k = 10, 4
    est = CountingEstimator()
    enh = ClipEnhancer(est)
    x = torch.rand(1, 3, t, 16, 16)
    enh(x, k)
    (seen,) = est.seen
    keys, _ = keyframe_indices(t, k)
    assert seen.shape[0] == math.ceil(t / k) == 3
    for i, key in enumerate(keys):
        assert torch.equal(seen[i], x[0, :, key])


def test_identical_frames_give_same_output_for_any_k():
    enh = create_enhancer("lightdce").eval()
    frame = torch.rand(1, 3, 1, 16, 16)
    x = frame.expand(1, 3, 8, 16, 16).contiguous()
    with torch.no_grad():
        y1, _ = enh(x, 1)
        y8, _ = enh(x, 8)
    assert torch.allclose(y1, y8, atol=1e-6)


def test_shared_curves_within_a_group():
    enh = create_enhancer("lightdce").eval()
    x = torch.rand(1, 3, 8, 16, 16)
    with torch.no_grad():
        y, r = enh(x, 4)
    assert r.shape == (1, 24, 2, 16, 16)
    assert torch.allclose(y[:, :, 5], apply_curves(x[:, :, 5], r[:, :, 1]))


@pytest.mark.parametrize(
    "bad,needle",
    [
        (torch.rand(3, 4, 8, 8), "rank 4"),
        (torch.rand(1, 4, 2, 8, 8), "4 channels"),
        (torch.randint(0, 255, (1, 3, 2, 8, 8), dtype=torch.uint8), "uint8"),
        (torch.rand(1, 3, 2, 8, 8) * 255, "values in"),
        (torch.full((1, 3, 2, 8, 8), float("nan")), "values in"),
    ],
)
def test_bad_input_names_problem_and_accepted(bad, needle):
    with pytest.raises(ValueError, match=needle) as err:
        check_clip(bad)
    assert "(B, 3, T, H, W) float in [0, 1]" in str(err.value)


def test_unknown_enhancer_lists_known():
    with pytest.raises(ValueError, match="lightdce, lightdce_scene, zerodce, zerodce_scene, none"):
        create_enhancer("retinex")


# ------------------------------------------------------------------- the scene form (issue 19)
@pytest.mark.parametrize("name", ["lightdce_scene", "zerodce_scene"])
def test_scene_form_shapes_range_and_a_gradient_on_every_parameter(name):
    enh = create_enhancer(name)
    assert enh.scene and not create_enhancer(name.removesuffix("_scene")).scene
    cin = 56 if name == "lightdce_scene" else 64  # the last conv's inputs; it gives 8 maps instead of 24
    assert n_params(enh) == n_params(create_enhancer(name.removesuffix("_scene"))) - 16 * (9 * cin + 1)
    x = torch.rand(2, 3, 5, 70, 90) * 0.3
    y, r = enh(x, 2)
    assert y.shape == x.shape and r.shape == (2, 8, 3, 70, 90)  # one map per iteration, G = 3
    assert y.min() >= 0 and y.max() <= 1 and r.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enh.parameters() if p.requires_grad)


def test_scene_maps_are_a_global_curve_plus_a_bounded_smooth_local_term():
    r = torch.rand(3, 8, 32, 48) * 2 - 1
    s = scene_maps(r, (64, 96))
    assert s.shape == (3, 8, 64, 96)
    mean = r.mean((2, 3), keepdim=True)
    assert ((s - mean).abs() <= SCENE_LOCAL * (r - mean).abs().amax((2, 3), keepdim=True) + 1e-6).all()
    assert torch.allclose(scene_maps(torch.full((1, 8, 16, 16), 0.3), (40, 40)), torch.full((1, 8, 40, 40), 0.3))
    assert (s[..., 1:, :] - s[..., :-1, :]).abs().max() < 0.05  # smooth: no pixel-to-pixel steps


def test_scene_curves_lift_max_rgb_exactly_and_keep_colour():
    x = torch.rand(1, 3, 40, 40) * 0.1 + torch.linspace(0.1, 0.8, 40) * torch.tensor([1.0, 0.3, 0.1]).view(1, 3, 1, 1)
    r = torch.full((1, 8, 40, 40), 0.3)  # an orange ramp, noisy; the curve reaches the knee part of the way
    y = scene_curves(x, r)
    lum = x.amax(1, keepdim=True)
    lit = lum >= SCENE_BLACK  # above the near-black blend, max(R, G, B) is exactly the curve of L
    curve = lum
    for _ in range(8):
        curve = curve + 0.3 * curve * (1 - curve)
    knee = 1 - SCENE_KNEE * (1 - lum)  # highlights roll off below this
    assert (curve > knee).any() and (curve < knee).any()
    assert torch.allclose(y.amax(1, keepdim=True)[lit], torch.minimum(curve, knee)[lit], atol=1e-6)
    assert (y.amax(1) < 250 / 255).all()  # nothing blown out
    assert (y.argmax(1) == 0).all()  # still orange: red dominates everywhere
    flat = torch.tensor([0.5, 0.3, 0.2]).view(1, 3, 1, 1).expand(1, 3, 12, 12)
    assert torch.allclose(scene_curves(flat, torch.zeros(1, 8, 12, 12)), flat)  # zero curves: identity


def test_scene_curves_with_global_maps_keep_the_order_of_light():
    x = torch.rand(1, 3, 50, 50) * 0.4 + 0.1  # above the near-black blend
    y = scene_curves(x, torch.full((1, 8, 50, 50), 0.5))
    lx, ly = x.amax(1).flatten(), y.amax(1).flatten()
    order = lx.argsort()
    assert (ly[order][1:] >= ly[order][:-1] - 1e-6).all()


def test_per_channel_names_keep_the_papers_curves():
    enh = create_enhancer("lightdce").eval()
    x = torch.rand(1, 3, 4, 16, 16) * 0.3
    with torch.no_grad():
        y, r = enh(x, 1)
        r_ref = enh.estimator(x.transpose(1, 2).reshape(4, 3, 16, 16)).view(1, 4, 24, 16, 16).transpose(1, 2)
    assert torch.equal(r, r_ref) and torch.equal(y, apply_curves(x, r_ref))
