"""Enhancers: parameter counts, curves, frame sharing, bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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
    with pytest.raises(ValueError, match="lightdce, zerodce, none"):
        create_enhancer("retinex")
