"""dtcm import-zerodce: the converted model reproduces the authors' Zero-DCE forward; bad files fail clearly."""

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dtcm.cli import main as cli
from dtcm.model import DTCM
from dtcm.zerodce_import import import_zerodce, load_zerodce_state

SHARED = Path(__file__).resolve().parents[2] / "shared"
OFFICIAL = SHARED / "weights/zerodce-official/Epoch99.pth"
PHOTOS = SHARED / "data/enhance_test"
needs_official = pytest.mark.skipif(
    not OFFICIAL.exists() or not PHOTOS.exists(), reason=f"{OFFICIAL} or {PHOTOS} not present (research data)"
)


class AuthorsDCENet(nn.Module):
    """Zero-DCE's enhance_net_nopool as published (Li-Chongyi/Zero-DCE, model.py), with its own curve."""

    def __init__(self):
        super().__init__()
        n = 32
        self.e_conv1 = nn.Conv2d(3, n, 3, 1, 1, bias=True)
        self.e_conv2 = nn.Conv2d(n, n, 3, 1, 1, bias=True)
        self.e_conv3 = nn.Conv2d(n, n, 3, 1, 1, bias=True)
        self.e_conv4 = nn.Conv2d(n, n, 3, 1, 1, bias=True)
        self.e_conv5 = nn.Conv2d(n * 2, n, 3, 1, 1, bias=True)
        self.e_conv6 = nn.Conv2d(n * 2, n, 3, 1, 1, bias=True)
        self.e_conv7 = nn.Conv2d(n * 2, 24, 3, 1, 1, bias=True)

    def forward(self, x):
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        x_r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        for r in torch.split(x_r, 3, dim=1):
            x = x + r * (torch.pow(x, 2) - x)
        return x


def _photos(n=3, long_side=256):
    out = []
    for p in sorted(PHOTOS.rglob("*.jpg"))[:n] + sorted(PHOTOS.rglob("*.png"))[:1]:
        bgr = cv2.imread(str(p))
        s = long_side / max(bgr.shape[:2])
        bgr = cv2.resize(bgr, (round(bgr.shape[1] * s), round(bgr.shape[0] * s)), interpolation=cv2.INTER_AREA)
        out.append(torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1).float()[None] / 255)
    return out


@needs_official
def test_converted_model_matches_the_authors_forward(tmp_path):
    ref = AuthorsDCENet()
    ref.load_state_dict(torch.load(OFFICIAL, map_location="cpu", weights_only=True))
    assert cli(["import-zerodce", str(OFFICIAL), str(tmp_path / "z")]) == 0
    model = DTCM.from_pretrained(str(tmp_path / "z"))
    assert model.config.enhancer == "zerodce" and (tmp_path / "z/README.md").is_file()
    for img in _photos():
        with torch.no_grad():
            want = ref(img)
            got, _ = model.enhance(img[:, :, None], k=1)  # (1, 3, 1, H, W)
        assert (got[:, :, 0] - want).abs().max() <= 1e-5
        assert (want - img).abs().mean() > 0.05  # the published curves really brighten these photos


@needs_official
def test_r_is_negated_not_copied():
    state = load_zerodce_state(OFFICIAL)
    raw = torch.load(OFFICIAL, map_location="cpu", weights_only=True)
    assert torch.equal(state["conv7.weight"], -raw["e_conv7.weight"])
    assert torch.equal(state["conv1.weight"], raw["e_conv1.weight"])


def _authors_state():
    return AuthorsDCENet().state_dict()


def test_wrong_keys_fail_in_one_sentence(tmp_path):
    state = _authors_state()
    state["extra.weight"] = state.pop("e_conv7.weight")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"not a Zero-DCE checkpoint: 1 missing keys \(e.g. e_conv7.weight\)"):
        import_zerodce(tmp_path / "bad.pth")


def test_wrong_shapes_fail_in_one_sentence(tmp_path):
    state = _authors_state()
    state["e_conv7.weight"] = torch.zeros(12, 64, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"e_conv7.weight has shape \(12, 64, 3, 3\), expected \(24, 64, 3, 3\)"):
        import_zerodce(tmp_path / "bad.pth")


class Payload:
    """A custom class: weights_only loading must refuse it."""

    def __init__(self):
        self.state = _authors_state()


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickles_with_code_are_refused(tmp_path, capsys):
    torch.save(Payload(), tmp_path / "class.pth")
    with open(tmp_path / "crafted.pth", "wb") as f:
        pickle.dump(Exploit(), f)
    for name in ("class.pth", "crafted.pth"):
        with pytest.raises(ValueError, match="is not a plain-tensor PyTorch checkpoint"):
            import_zerodce(tmp_path / name)
    assert "must never run" not in capsys.readouterr().out
    assert cli(["import-zerodce", str(tmp_path / "crafted.pth"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "plain-tensor" in err


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        import_zerodce(tmp_path / "nope.pth")
