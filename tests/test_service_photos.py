"""The service on photos (enhanced, not classified), its lit-clip decision and the published Zero-DCE entry."""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dtcm import service, still, video  # noqa: E402
from dtcm.images import write_image  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory, make_tiny_weights, serving):
    yield from serving(make_tiny_weights(tmp_path_factory.mktemp("weights"), {"tiny": {}}, "tiny", ("zerodce-real",)))


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    img = np.random.default_rng(0).integers(0, 25, (48, 70, 3), dtype=np.uint8)
    return str(write_image(tmp_path_factory.mktemp("p") / "night.jpg", img))


def test_analyse_a_photo_enhances_and_says_recognition_needs_a_clip(weights, photo):
    r = service.analyse(photo, "tiny")
    assert r["top5"] == [] and r["stc"] is None and r["note"] == still.IMAGE_NOTE
    assert r["frames_after"][0].shape == (48, 70, 3)
    assert r["enhancement"]["action"] in ("enhance", "soften", "skip") and r["enhancement"]["sentence"]
    with pytest.raises(service.ServiceError, match="this is a photo"):
        service.enhance_clip(photo, "tiny")


def test_compare_a_photo_runs_every_enhancer_without_classifying(weights, photo):
    r = service.compare(photo, ["none", "he", "zerodce", "dtcm"], "tiny")
    assert r["_note"] == still.IMAGE_NOTE
    for m in ("none", "he", "zerodce", "dtcm"):
        assert r[m]["top5"] == [] and r[m]["frames_after"][0].shape == (48, 70, 3), m
    assert np.mean(r["he"]["frames_after"][0]) > np.mean(r["none"]["frames_after"][0])


def test_analyse_a_lit_clip_reports_the_decision(weights, tmp_path):
    frames = np.random.default_rng(1).integers(110, 150, (20, 48, 64, 3), dtype=np.uint8)
    path = tmp_path / "lit.mp4"
    video.write_video(path, frames, 10)
    r = service.analyse(str(path), "tiny", k=4)
    e = r["enhancement"]
    assert e["luma"] > 90 and e["strength"] * e["change"] <= 10 + 1e-6
    assert e["action"] in ("soften", "skip", "enhance") and e["sentence"].startswith("Already bright enough")
    d = r["darkness"]  # the light is told once, on the one scale, with its number (issue 22)
    assert d["light"] == "lit" and f"{round(d['brightness'])} of 255" in d["verdict"]
    out, _ = video.read_video(service.enhance_clip(str(path), "tiny", k=4, out_path=str(tmp_path / "e.mp4")))
    src, _ = video.read_video(path)
    luma = np.array([0.299, 0.587, 0.114])
    assert abs(float((out.astype(float) @ luma).mean() - (src.astype(float) @ luma).mean())) <= 10 + 2  # + codec


def test_published_zerodce_is_labelled_and_explained_when_absent(weights, photo, monkeypatch):
    assert service.METHOD_LABELS["zerodce-published"] == "Zero-DCE (published weights)"
    assert service.METHOD_LABELS["zerodce"] == "Zero-DCE (trained here)"
    monkeypatch.delenv(service.PUBLISHED_ENV, raising=False)
    r = service.compare(photo, ["zerodce-published"], "tiny")
    assert service.PUBLISHED_ENV in r["zerodce-published"]["error"]
    monkeypatch.setenv(service.PUBLISHED_ENV, str(weights / "zerodce-real"))
    r = service.compare(photo, ["zerodce-published"], "tiny")
    assert r["zerodce-published"]["frames_after"][0].shape == (48, 70, 3)
