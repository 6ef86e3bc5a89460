"""Every loss of SPEC A6 against a slow loop reference, plus the values the definitions imply."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from dtcm import losses as L
from dtcm.enhancer import create_enhancer

torch.manual_seed(0)


# ------------------------------------------------------------------------- slow references (loops)
def ref_region(img):  # (3, H, W) -> list of lists of region means
    h, w = img.shape[1] // 4, img.shape[2] // 4
    g = img.mean(0)
    return [[g[4 * a : 4 * a + 4, 4 * b : 4 * b + 4].mean().item() for b in range(w)] for a in range(h)]


def ref_scf(y, p):  # one frame pair (3, H, W)
    Y, P = ref_region(y), ref_region(p)
    h, w = len(Y), len(Y[0])
    total = 0.0
    for a, b in itertools.product(range(h), range(w)):
        for da, db in itertools.product((-1, 0, 1), repeat=2):
            if (da, db) == (0, 0):
                continue
            a2, b2 = a + da, b + db
            if 0 <= a2 < h and 0 <= b2 < w:
                total += (abs(Y[a][b] - Y[a2][b2]) - abs(P[a][b] - P[a2][b2])) ** 2
    return total / (h * w)


def ref_sc(y, x):  # (B, 3, T, H, W)
    vals = [ref_scf(y[b, :, t], x[b, :, t]) for b in range(y.shape[0]) for t in range(y.shape[2])]
    return sum(vals) / len(vals)


def ref_tc(y, x):
    vals = []
    for b in range(y.shape[0]):
        for t in range(y.shape[2] - 1):
            dy = (y[b, :, t + 1] - y[b, :, t]).abs()
            dx = (x[b, :, t + 1] - x[b, :, t]).abs()
            vals.append(ref_scf(dy, dx))
    return sum(vals) / len(vals)


def ref_exp(y):
    vals = []
    for b, t in itertools.product(range(y.shape[0]), range(y.shape[2])):
        g = y[b, :, t].mean(0)
        for a, c in itertools.product(range(g.shape[0] // 16), range(g.shape[1] // 16)):
            vals.append((g[16 * a : 16 * a + 16, 16 * c : 16 * c + 16].mean().item() - 0.6) ** 2)
    return sum(vals) / len(vals)


def ref_col(y):
    vals = []
    for b, t in itertools.product(range(y.shape[0]), range(y.shape[2])):
        j = [y[b, c, t].mean().item() for c in range(3)]
        vals.append((j[0] - j[1]) ** 2 + (j[0] - j[2]) ** 2 + (j[1] - j[2]) ** 2)
    return sum(vals) / len(vals)


def ref_tva(a):  # (B, C, G, H, W)
    vals = []
    B, C, G, H, W = a.shape
    for b, c, g in itertools.product(range(B), range(C), range(G)):
        m = a[b, c, g]
        for i, j in itertools.product(range(H - 1), range(W - 1)):
            gx = (m[i, j + 1] - m[i, j]).abs().item()
            gy = (m[i + 1, j] - m[i, j]).abs().item()
            vals.append((gx + gy) ** 2)
    return sum(vals) / len(vals)


@pytest.fixture
def pair():
    x = torch.rand(2, 3, 3, 16, 20, dtype=torch.float64) * 0.2
    y = (x + torch.rand_like(x) * 0.5).clamp(0, 1)
    return x, y


def test_spatial_consistency_matches_loop(pair):
    x, y = pair
    assert L.spatial_consistency(y, x).item() == pytest.approx(ref_sc(y, x), abs=1e-6, rel=1e-6)


def test_temporal_consistency_matches_loop(pair):
    x, y = pair
    assert L.temporal_consistency(y, x).item() == pytest.approx(ref_tc(y, x), abs=1e-6, rel=1e-6)


def test_region_grid_crops_to_multiple_of_four():
    x = torch.rand(1, 3, 1, 18, 23, dtype=torch.float64)
    y = torch.rand_like(x)
    want = ref_sc(y[..., :16, :20], x[..., :16, :20])
    assert L.spatial_consistency(y, x).item() == pytest.approx(want, abs=1e-6)


def test_exposure_color_tva_match_loops():
    y = torch.rand(2, 3, 2, 32, 48, dtype=torch.float64)
    a = torch.rand(1, 6, 2, 7, 9, dtype=torch.float64) * 2 - 1
    assert L.exposure_loss(y).item() == pytest.approx(ref_exp(y), abs=1e-6)
    assert L.color_constancy_loss(y).item() == pytest.approx(ref_col(y), abs=1e-6)
    assert L.illumination_smoothness_loss(a).item() == pytest.approx(ref_tva(a), abs=1e-6)


def test_known_values():
    x = torch.rand(1, 3, 4, 16, 16)
    assert L.spatial_consistency(x, x).item() == 0
    assert L.temporal_consistency(x, x).item() == 0
    assert L.stc_loss(x, x).item() == 0
    assert L.exposure_loss(torch.full((1, 3, 2, 32, 32), 0.6)).item() == pytest.approx(0, abs=1e-12)
    grey = torch.rand(1, 1, 2, 16, 16).expand(1, 3, 2, 16, 16)
    assert L.color_constancy_loss(grey).item() == 0
    assert L.illumination_smoothness_loss(torch.full((1, 24, 2, 9, 9), 0.3)).item() == 0


def test_terms_are_positive_when_they_should_be():
    x = torch.rand(1, 3, 4, 16, 16) * 0.1
    y = torch.rand_like(x)
    assert L.spatial_consistency(y, x) > 0 and L.temporal_consistency(y, x) > 0
    red = torch.zeros(1, 3, 1, 16, 16)
    red[:, 0] = 1
    assert L.color_constancy_loss(red).item() == pytest.approx(2.0)
    assert L.exposure_loss(torch.zeros(1, 3, 1, 16, 16)).item() == pytest.approx(0.36)


def test_single_frame_clip_has_zero_tc():
    x = torch.rand(1, 3, 1, 16, 16)
    assert L.temporal_consistency(torch.rand_like(x), x).item() == 0


def test_total_loss_is_weighted_sum_and_reaches_every_parameter():
    from dtcm.model import create_model

    model = create_model("dtcm_tiny_test")
    x = torch.rand(2, 3, 8, 32, 32) * 0.2
    labels = torch.tensor([1, 3])
    out = model(x, k=4, return_all=True)
    d = L.total_loss(out.logits, labels, x, out.enhanced, out.curves, alpha=0.3, w_stc=2.0)
    assert set(d) == {"ar", "sc", "tc", "stc", "exp", "col", "tva", "dark", "total"}
    dark = d["exp"] + 0.5 * d["col"] + 20 * d["tva"]
    assert torch.allclose(d["dark"], dark)
    assert torch.allclose(d["stc"], d["sc"] + d["tc"])
    assert torch.allclose(d["ar"], F.cross_entropy(out.logits, labels))
    assert torch.allclose(d["total"], d["ar"] + 0.3 * (2.0 * d["stc"] + d["dark"]))
    d["total"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_zero_reference_total_without_logits():
    e = create_enhancer("lightdce")
    x = torch.rand(1, 3, 4, 16, 16) * 0.1
    y, curves = e(x, 2)
    d = L.total_loss(None, None, x, y, curves, alpha=1.0, w_stc=4.0)
    assert d["ar"].item() == 0
    assert torch.allclose(d["total"], 4.0 * d["stc"] + d["dark"])
    d["total"].backward()
    assert all(p.grad is not None for p in e.parameters())


# ------------------------------------------------------------------- light order (issue 19, ours)
def ref_order(y, x, size):  # (N, 3, H, W), H and W multiples of size
    total, count = 0.0, 0
    for yf, xf in zip(y, x, strict=True):
        ly, lx = (F.avg_pool2d(f.amax(0)[None, None], f.shape[-1] // size).flatten().tolist() for f in (yf, xf))
        for i, j in itertools.product(range(size * size), repeat=2):
            total += max(0.0, -(lx[i] - lx[j]) * (ly[i] - ly[j]))
            count += 1
    return total / count


def test_order_loss_matches_loop_and_sees_flips():
    x = torch.rand(2, 3, 16, 16)
    y = torch.rand(2, 3, 16, 16)
    assert L.order_loss(y, x, size=4).item() == pytest.approx(ref_order(y, x, 4), rel=1e-5)
    assert L.order_loss(0.2 + 0.7 * x, x, size=4) == 0  # a lift that keeps every order
    ramp = torch.linspace(0, 1, 16).expand(1, 3, 16, 16)  # light rising left to right
    assert L.order_loss(1 - ramp, ramp, size=4) > 0.05  # the negative swaps every pair of columns
    clip = torch.rand(1, 3, 2, 16, 16, requires_grad=True)
    L.order_loss(1 - clip, clip.detach(), size=4).backward()  # (B, 3, T, H, W) too, with a gradient
    assert clip.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 16x16"):
        L.order_loss(x[..., :8, :8], x[..., :8, :8])
