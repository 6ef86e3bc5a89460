"""The config round trip and the darkness score of SPEC A8."""

import json

import numpy as np
import pytest

from dtcm.config import ARID_CLASSES, DTCMConfig
from dtcm.darkness import (
    darkness_score,
    frame_luma,
    is_dark,
    is_dark_vote,
    segment_indices,
)


def test_config_round_trips_through_json(tmp_path):
    cfg = DTCMConfig(backbone="mobilenetv2", width_mult=0.5, k=8, w_stc=2.0, extra={"note": "x"})
    assert DTCMConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "c.json")
    again = DTCMConfig.load(tmp_path / "c.json")
    assert again == cfg and isinstance(again.mean, tuple)
    assert json.loads(cfg.to_json())["class_names"] == list(ARID_CLASSES)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="class_names has 11 names but num_classes is 5"):
        DTCMConfig(num_classes=5)
    with pytest.raises(ValueError, match="unknown enhancer"):
        DTCMConfig(enhancer="retinex")
    with pytest.raises(ValueError, match="unknown config keys"):
        DTCMConfig.from_dict({"backbone": "x", "colour": 1})
    assert DTCMConfig().replace(num_classes=3).class_names == ("class_0", "class_1", "class_2")


def frames_of_luma(values, h=8, w=8):
    return np.stack([np.full((h, w, 3), v, np.uint8) for v in values])


def test_known_luma_gives_exact_dv():
    f = frames_of_luma([14, 28, 56, 112])
    assert frame_luma(f).tolist() == pytest.approx([14, 28, 56, 112])
    want = np.mean([(14 - 112) / 112, (28 - 112) / 112, (56 - 112) / 112, 0.0])
    assert darkness_score(f) == pytest.approx(want, abs=1e-12)
    assert darkness_score(frames_of_luma([0])) == -1.0
    assert is_dark(-0.9) and not is_dark(-0.877) and not is_dark(-0.5)


def test_luma_uses_bt601_weights():
    f = np.zeros((1, 2, 2, 3), np.uint8)
    f[..., 0] = 100
    assert frame_luma(f)[0] == pytest.approx(29.9)


def test_vote_variant_by_hand():
    # 8 frames: 7 very dark (score -0.91), 1 bright. Fraction dark = 7/8 = 0.875 < 0.877 -> not dark.
    f = frames_of_luma([10] * 7 + [200])
    assert not is_dark_vote(f)
    # all 8 dark -> fraction 1.0 >= 0.877 -> dark; Dv alone is also dark
    g = frames_of_luma([10] * 8)
    assert is_dark_vote(g) and is_dark(darkness_score(g))
    # Dv can call a video dark that the vote does not: frames alternate 0 and 24 (scores -1, -0.786)
    h = frames_of_luma([0, 24] * 4)
    assert is_dark(darkness_score(h)) and not is_dark_vote(h)


def test_segment_indices():
    assert segment_indices(80) == [5, 15, 25, 35, 45, 55, 65, 75]
    assert segment_indices(3) == [0, 0, 0, 1, 1, 2, 2, 2]
    rng = np.random.default_rng(0)
    idx = segment_indices(80, rng=rng)
    assert all(10 * i <= v < 10 * (i + 1) for i, v in enumerate(idx))


def test_bad_frames():
    with pytest.raises(ValueError, match="uint8"):
        darkness_score(np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        darkness_score(np.zeros((2, 4, 4), np.uint8))
