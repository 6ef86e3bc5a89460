"""dtcm quality: each measure on hand-made cases, the pipeline's lit-clip decision, and the command."""

import json

import cv2
import numpy as np
import pytest

from dtcm import adaptive, quality
from dtcm.cli import main
from dtcm.model import create_model


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
    assert f"softened to {100 * adaptive.LIT_BUDGET / 40:.0f} %" in lit.sentence
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


def test_quality_command_json_and_contact_sheet(folder, tmp_path_factory, capsys):
    model_dir = tmp_path_factory.mktemp("m") / "tiny"
    create_model("dtcm_tiny_test").save_pretrained(model_dir)
    sheet = tmp_path_factory.mktemp("r") / "sheet.png"
    argv = ["quality", str(folder), "--model", str(model_dir), "--zerodce", "", "--json", "--sheet", str(sheet)]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) == {"ours", "ours (adaptive)", "he", "clahe", "gic"}
    for m in r.values():
        assert set(quality.METRICS) <= set(m) and m["inputs"] == 4 and m["lit_inputs"] == 1
    assert r["ours (adaptive)"]["lit_change"] <= adaptive.LIT_BUDGET + 0.5
    img = cv2.imread(str(sheet))
    assert img.shape[:2] == (24 + 4 * 150, 5 * 200)  # header + 4 rows; input + 4 enhancers, 200x150 cells


def test_quality_command_rejects_an_empty_folder(tmp_path, capsys):
    assert main(["quality", str(tmp_path)]) == 2
    assert "holds no photos or clips" in capsys.readouterr().err
