"""dtcm quality: each measure on hand-made cases, the pipeline's lit-clip decision, and the command."""

import json

import cv2
import numpy as np
import pytest
import torch

from dtcm import adaptive, quality, video
from dtcm.cli import main
from dtcm.model import create_model
from dtcm.quality_measures import chroma_noise, loe


def _rows(levels, counts, w=50):
    """A (sum(counts), w, 3) uint8 image of horizontal bands, band i at grey ``levels[i]``, ``counts[i]`` rows."""
    return np.concatenate([np.full((n, w, 3), v, np.uint8) for v, n in zip(levels, counts, strict=True)])


def test_loe_is_zero_for_an_order_preserving_curve():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 64, (50, 50, 3), dtype=np.uint8)
    assert loe(x, x * 4 + 3) == 0  # strictly increasing on every channel: L = max keeps every pair's order
    big = np.repeat(np.repeat(x, 2, 0), 2, 1)  # 100x100 of 2x2 blocks: the bilinear 50x50 resize gives x back
    assert loe(big, big * 4 + 3) == 0
    assert loe(x, np.full_like(x, 128)) > 0  # a flat output loses the order of everything unequal


def test_loe_counts_changed_pairs_of_swapped_regions_by_hand():
    # bands of 500, 750 and 1250 pixels at L 20, 50 and 90; the output swaps the darkest and the brightest band
    x = _rows((20, 50, 90), (10, 15, 25))
    x[:10, :, 1:] = 5  # colour the first band: L = max(R, G, B) is still 20
    y = _rows((90, 50, 20), (10, 15, 25))
    # every pair of pixels from different bands changes order: mean count = 2 (500*750 + 500*1250 + 750*1250) / 2500
    assert loe(x, y) == 2 * (500 * 750 + 500 * 1250 + 750 * 1250) / 2500 == 1550
    # ties count: a flat input and an output with a brighter top half; (>= holds both ways in the input) so each
    # bottom pixel changes against the 1250 top pixels, each top pixel against none: 1250 * 1250 / 2500
    assert loe(np.full((50, 50, 3), 40, np.uint8), _rows((60, 40), (25, 25))) == 625


def test_loe_and_chroma_noise_of_a_clip_are_means_over_its_frames():
    x = _rows((0, 80), (25, 25))[None].repeat(2, 0)  # (2, 50, 50, 3)
    y = x.copy()
    y[1] = 255 - x[1]  # the second frame swaps its halves: 1250; the first is unchanged: 0
    s = quality.frame_stats(x, y)
    assert s["loe"] == 625 and s["chroma_noise"] == pytest.approx(0, abs=1e-9)


def test_chroma_noise_is_zero_on_flat_chroma():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 30, 1), dtype=np.uint8).repeat(3, 2)  # any luma, Cb = Cr = 0
    assert chroma_noise(grey) == pytest.approx(0, abs=1e-9)
    assert chroma_noise(np.full((40, 30, 3), (200, 60, 10), np.uint8)) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("h, w", [(10, 12), (4, 6), (32, 48)])
def test_chroma_noise_of_a_checkerboard_by_hand(h, w):
    # red (200, 0, 0) and black alternate pixel by pixel: Cb steps by 0.168736 * 200 and Cr by 0.5 * 200. Inside,
    # a pixel's 5x5 window holds 13 of its own colour and 12 of the other, so |C - box5(C)| = 12/25 of the step.
    # With edge padding the box is separable, box5(C) = mean + (step/2) q(i) q(j) p(i) p(j) with p = +-1 the
    # board's sign and q = 3/5, -1/5, 1/5 ... 1/5, -1/5, 3/5 along an even side: mean q = 1/5 as inside, so
    # the image mean is again (step/2) (1 - 1/25) = 12/25 of the step, averaged over Cb and Cr.
    board = (np.indices((h, w)).sum(0) % 2 == 0)[..., None] * np.array([200, 0, 0], np.uint8)
    expected = 12 / 25 * (0.168736 * 200 + 0.5 * 200) / 2
    assert chroma_noise(board.astype(np.uint8)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(32.0993, abs=1e-4)


def _coloured(h=64, w=96):
    """Four clearly coloured 32x32 patch columns (red, green, blue, orange) and a grey one, dim."""
    img = np.full((1, h, w, 3), 40, np.uint8)
    img[:, :32, :32] = (90, 20, 20)
    img[:, :32, 32:64] = (20, 90, 20)
    img[:, :32, 64:96] = (20, 20, 90)
    img[:, 32:, :32] = (90, 50, 10)
    return img


def test_false_colour_counts_dominant_channel_flips_only():
    x = _coloured()
    brighter = quality.frame_stats(x, np.clip(x.astype(int) * 2, 0, 255).astype(np.uint8))
    assert brighter["coloured"] == 4 and brighter["flipped"] == 0
    assert brighter["cast_sum"] < 1e-3  # doubling every channel keeps chromaticity
    swapped = quality.frame_stats(x, x[..., ::-1].copy())  # red <-> blue
    assert swapped["flipped"] == 3  # red, blue and orange flip; green keeps its lead
    assert swapped["cast_sum"] > 0.5


def test_blown_out_and_lit_change():
    x = np.full((1, 40, 40, 3), 100, np.uint8)
    y = x.copy()
    y[:, :10] = 252  # a quarter of the rows at >= 250
    m, _ = quality.measure([x], lambda f: y)
    assert m["blown_pct"] == pytest.approx(25.0)
    assert m["lit_inputs"] == 1 and m["lit_change"] == pytest.approx(0.25 * 152, rel=1e-3)
    assert m["dark_luma_out"] is None and m["stc"] is None


def test_stc_is_measured_on_clips_and_zero_for_identity():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 40, (4, 32, 32, 3), dtype=np.uint8)
    same, _ = quality.measure([clip], lambda f: f)
    he, _ = quality.measure([clip], quality.classical("he"))
    assert same["stc"] == 0 and he["stc"] > 0


def test_decision_enhances_dark_softens_lit_and_skips_tiny_changes():
    dark = adaptive.decide(-0.8, 60.0)
    assert (dark.action, dark.strength) == ("enhance", 1.0)
    lit = adaptive.decide(-0.05, 40.0)  # luma 106: LIT_BUDGET grey levels allowed
    assert lit.action == "soften" and lit.strength * lit.change == pytest.approx(adaptive.LIT_BUDGET)
    assert adaptive.LIT_BUDGET <= 10
    assert f"enhanced lightly, at {100 * adaptive.LIT_BUDGET / 40:.0f}% strength" in lit.sentence
    assert adaptive.decide(0.5, 0.5).action == "skip"
    assert adaptive.decide(-0.1, 6.0).action == "enhance"  # a lit clip the enhancer barely touches
    with pytest.raises(ValueError, match="finite"):
        adaptive.decide(float("nan"), 1.0)


def test_apply_decision_blends_exactly():
    x = np.full((2, 4, 4, 3), 100, np.uint8)
    y = np.full((2, 4, 4, 3), 180, np.uint8)
    d = adaptive.decide(-0.05, adaptive.luma_change(x, y))
    out = adaptive.apply_decision(x, y, d)
    assert adaptive.luma_change(x, out) == pytest.approx(adaptive.LIT_BUDGET, abs=0.5)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i, suffix in enumerate((".png", ".jpg", ".bmp")):
        img = rng.integers(0, 30, (70, 90 + 10 * i, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"p{i}{suffix}"), img)
    cv2.imwrite(str(tmp_path / "lit.png"), np.full((64, 64, 3), 150, np.uint8))
    return tmp_path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("m") / "tiny"
    create_model("dtcm_tiny_test").save_pretrained(model_dir)
    return model_dir


def test_quality_command_json_and_contact_sheet(folder, tiny_model, tmp_path_factory, capsys):
    sheet = tmp_path_factory.mktemp("r") / "sheet.png"
    argv = ["quality", str(folder), "--model", str(tiny_model), "--zerodce", "", "--json", "--sheet", str(sheet)]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) == {"input", "ours", "ours (adaptive)", "he", "clahe", "gic"}
    for m in r.values():
        assert set(quality.METRICS) <= set(m) and m["inputs"] == 4 and m["lit_inputs"] == 1
    assert r["input"]["loe"] == 0 and r["input"]["lit_change"] == 0 and r["input"]["cast"] == 0
    assert r["ours"]["chroma_noise"] > 0 and r["he"]["loe"] >= 0
    assert r["ours (adaptive)"]["lit_change"] <= adaptive.LIT_BUDGET + 0.5
    img = cv2.imread(str(sheet))
    assert img.shape[:2] == (24 + 4 * 150, 5 * 200)  # header + 4 rows; input + 4 enhancers, 200x150 cells


def _authors_checkpoint(path):
    """A random state_dict in the Zero-DCE authors' format (e_conv1..e_conv7 of a 32-channel DCE-Net)."""
    shapes = {1: (32, 3), 2: (32, 32), 3: (32, 32), 4: (32, 32), 5: (32, 64), 6: (32, 64), 7: (24, 64)}  # (out, in)
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, (out, inp) in shapes.items():
        state[f"e_conv{i}.weight"] = torch.randn(out, inp, 3, 3, generator=g) * 0.01
        state[f"e_conv{i}.bias"] = torch.zeros(out)
    torch.save(state, path)
    return path


def test_quality_command_on_a_photo_and_a_clip_with_the_published_weights(tmp_path, tiny_model, capsys):
    rng = np.random.default_rng(1)
    photo = tmp_path / "night.png"
    cv2.imwrite(str(photo), rng.integers(0, 40, (48, 64, 3), dtype=np.uint8))
    clip = video.write_video(tmp_path / "dark.mp4", rng.integers(0, 30, (6, 48, 64, 3)).astype(np.uint8), 10)
    pth = _authors_checkpoint(tmp_path / "Epoch99.pth")
    argv = ["quality", str(photo), str(clip), "--model", str(tiny_model), "--zerodce", "", "--classic", "he"]
    assert main([*argv, "--zerodce-published", str(pth), "--no-adaptive", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r) == ["input", "ours", "zero-dce (published)", "he"]
    for m in r.values():
        assert m["inputs"] == 2 and m["stc"] is not None  # the clip's frames give L_STC; the photo does not
        assert m["loe"] >= 0 and m["chroma_noise"] >= 0
    assert r["input"]["stc"] == 0 and r["input"]["loe"] == 0
    assert main([*argv, "--no-adaptive"]) == 0
    table = capsys.readouterr().out
    assert "| LOE | chroma noise |" in table and "| input | " in table


def test_quality_command_rejects_an_empty_folder(tmp_path, capsys):
    assert main(["quality", str(tmp_path)]) == 2
    assert "holds no photos or clips" in capsys.readouterr().err
