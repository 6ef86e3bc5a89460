"""The service the UIs call, on real files: analyse, enhance_clip, compare, fine-tune jobs."""

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dtcm import service, storage, video  # noqa: E402
from dtcm.model import create_model  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory, make_tiny_weights, serving):
    variants = {"tiny-w0": {"w_stc": 0.0}, "tiny-w4": {"w_stc": 4.0}}
    yield from serving(make_tiny_weights(tmp_path_factory.mktemp("weights"), variants, "tiny-w4", ("zerodce-real",)))


@pytest.fixture(scope="module")
def dark_clip(tmp_path_factory):
    rng = np.random.default_rng(0)
    t = np.arange(30)[:, None, None, None]
    frames = (rng.integers(0, 12, (30, 48, 64, 3)) + (t % 8)).astype(np.uint8)
    frames[:, 10:30, 20:40] += 10  # a slightly brighter square
    path = tmp_path_factory.mktemp("clips") / "dark.mp4"
    video.write_video(path, frames, 10)
    return str(path)


def test_variants_and_wstc_snapping(weights):
    assert set(service.list_variants()) == {"tiny-w0", "tiny-w4"}
    assert "zerodce-real" in service.list_variants("enhancer")
    assert service.wstc_choices() == [0.0, 4.0]
    assert service.variant_for_wstc(1.0) == "tiny-w0"
    assert service.variant_for_wstc(3.2) == "tiny-w4"
    assert service.default_variant() == "tiny-w4"


def test_analyse_dark_clip(weights, dark_clip):
    r = service.analyse(dark_clip, "tiny-w4", k=2)
    assert r["darkness"]["arid_dark"] and r["darkness"]["dv"] < -0.877 and r["darkness"]["light"] == "dark"
    assert len(r["top5"]) == 5
    probs = [p for _, p in r["top5"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert len(r["frames_before"]) == len(r["frames_after"]) == 8
    assert r["frames_before"][0].shape == (32, 32, 3) and r["frames_before"][0].dtype == np.uint8
    assert len(r["diff_before"]) == len(r["diff_after"]) > 0
    assert r["diff_before"][0].shape == (32, 32, 3)
    assert r["stc"] >= 0 and r["k"] == 2
    assert {"decode", "enhance", "classify", "total"} <= set(r["timings"])
    assert r["info"]["frames"] == 30


def test_same_model_is_cached(weights):
    assert service.get_model("tiny-w0") is service.get_model("tiny-w0")


def test_bad_inputs_are_sentences(weights, dark_clip, tmp_path):
    for k in (0, 17, 2.5, "4"):
        with pytest.raises(service.ServiceError, match="k must be a whole number from 1 to 16"):
            service.analyse(dark_clip, k=k)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(service.ServiceError) as err:
        service.analyse(str(junk))
    assert "\n" not in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(service.ServiceError, match="no video was given"):
        service.analyse(None)
    with pytest.raises(service.ServiceError, match="could not be loaded"):
        service.analyse(dark_clip, variant="no-such-variant")
    # the service keeps working after bad input
    assert len(service.analyse(dark_clip)["top5"]) == 5


def test_enhance_clip_is_playable_h264(weights, dark_clip, tmp_path):
    out = service.enhance_clip(dark_clip, "tiny-w4", k=4, out_path=str(tmp_path / "e.mp4"))
    info = video.probe(out)
    assert info.codec == "h264" and (info.width, info.height) == (64, 48) and info.frames == 30
    import av

    with av.open(out) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_compare_every_method(weights, dark_clip):
    r = service.compare(dark_clip, service.METHODS, "tiny-w4", k=4)
    assert r["_order"] == list(service.METHODS)
    assert r["none"]["stc"] == 0
    for m in ("gic", "he", "clahe", "msr", "dtcm", "zerodce"):
        assert len(r[m]["top5"]) == 5 and r[m]["stc"] >= 0, m
    assert r["he"]["stc"] > 0
    assert np.mean(r["he"]["frames_after"][0]) > np.mean(r["none"]["frames_after"][0])
    analysed = service.analyse(dark_clip, "tiny-w4", k=4)
    assert r["_darkness"] == analysed["darkness"]  # the input's light in Recognise's words, from the same frames
    for m in ("none", "dtcm"):  # every answer under Recognise's not-sure rule
        assert r[m]["verdict"]["top"][0] == r[m]["top5"][0][0] and isinstance(r[m]["verdict"]["sure"], bool)
    with pytest.raises(service.ServiceError, match="choose from"):
        service.compare(dark_clip, ["sharpen"])


def test_zip_upload_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("DTCM_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../evil.mp4", b"x")
    with pytest.raises(service.ServiceError, match="unsafe path"):
        service.prepare_dataset_upload(str(bad))
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.doc", b"x")
    with pytest.raises(service.ServiceError, match="holds no videos"):
        service.prepare_dataset_upload(str(empty))
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("set/Walk/a.mp4", b"x")
        zf.writestr("set/Run/b.mp4", b"x")
    spec = service.prepare_dataset_upload(str(good))
    assert spec.startswith("upload:")  # a name in the visitor's own uploads, no server path
    assert sorted(p.name for p in Path(service.datasets.check_dataset(spec)).iterdir()) == ["Run", "Walk"]


def test_finetune_streams_stops_and_becomes_a_variant(weights, tmp_path, monkeypatch):
    from dtcm.data.synthetic import make_synthetic

    data_root = tmp_path / "data"
    make_synthetic(data_root / "mini", per_class=2, seed=5)
    monkeypatch.setenv("DTCM_DATA_ROOT", str(data_root))
    monkeypatch.setenv("DTCM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DTCM_CACHE", str(tmp_path / "cache"))  # where saved variants go
    assert str(data_root / "mini") in service.finetune_datasets().values()
    with pytest.raises(service.ServiceError, match="outside the allowed roots"):
        service.datasets.resolve_dataset("/etc")
    st = service.start_finetune(
        str(data_root / "mini"), backbone="resnet_tiny_test", epochs=3, lr=1e-3, batch_size=2, k=4
    )
    assert st["state"] in ("preparing", "running")
    with pytest.raises(service.ServiceError, match="already running"):
        service.start_finetune(str(data_root / "mini"), backbone="resnet_tiny_test")
    deadline = time.time() + 240
    while len(service.finetune_status()["metrics"]) < 2 and time.time() < deadline:
        assert service.finetune_status()["state"] != "failed", service.finetune_status()["message"]
        time.sleep(0.2)
    at_stop = len(service.finetune_status()["metrics"])
    assert at_stop >= 2
    service.stop_finetune(wait=120)
    st = service.finetune_status()
    assert st["state"] == "stopped", st["message"]
    assert len(st["metrics"]) <= at_stop + 1  # stops within one step
    m = st["metrics"][0]
    assert {"ar", "sc", "tc", "stc", "exp", "col", "tva", "dark", "total", "acc"} <= set(m)
    fig = service.loss_figure(st)
    assert len(fig.data) >= 9
    name = st["variant"]
    assert name in service.list_variants()
    clip = next((data_root / "mini").rglob("*.mp4"))
    assert len(service.analyse(str(clip), variant=name)["top5"]) == 5
    index_before = (weights / "index.json").read_bytes()
    saved = service.save_finetuned("my-finetune")
    saved_dir = storage.saved_root()  # a data folder: the shipped weights/ and its index stay as they are
    assert (saved_dir / "my-finetune" / "model.safetensors").is_file()
    assert "my-finetune" in json.loads((saved_dir / "index.json").read_text())["models"]
    assert (weights / "index.json").read_bytes() == index_before and not (weights / "my-finetune").exists()
    assert saved == "my-finetune" and "my-finetune" in service.list_variants()


def test_analyse_says_which_frames_it_classified_and_the_timeline_covers_the_clip(weights, tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "long.mp4"
    video.write_video(path, rng.integers(0, 20, (120, 48, 64, 3)).astype(np.uint8), 10)
    clip_len = create_model("dtcm_tiny_test").config.clip_len
    centred = service.analyse(str(path))["window"]
    assert centred["frames"] == clip_len and centred["last"] - centred["first"] + 1 == clip_len
    assert abs((centred["first"] - 1) - (120 - clip_len) // 2) <= 1 and "of 120" in centred["sentence"]
    chosen = service.analyse(str(path), start_s=2.0)["window"]
    assert chosen["first"] == 21 and chosen["start_s"] == pytest.approx(2.0)
    with pytest.raises(service.ServiceError, match="segment start must be from 0 to"):
        service.analyse(str(path), start_s=60)
    tl = service.timeline(str(path), windows=6)
    assert len(tl["windows"]) == 6 and tl["duration_s"] == pytest.approx(12.0)
    assert tl["windows"][0]["first"] == 1 and tl["windows"][-1]["last"] == 120
    assert all(len(w["top5"]) == 5 and 0 <= w["p"] <= 1 for w in tl["windows"])
    assert len(service.timeline_figure(tl).data[0].x) == 6


def test_enhance_in_groups_reports_progress_and_matches_one_pass(weights, tmp_path):
    from dtcm.enhance_cli import enhance_frames

    rng = np.random.default_rng(4)
    path = tmp_path / "clip.mp4"
    video.write_video(path, rng.integers(0, 30, (150, 48, 64, 3)).astype(np.uint8), 10)
    seen = []
    r = service.enhance_video(
        str(path), k=4, out_path=str(tmp_path / "o.mp4"), on_progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (150, 150) and len(seen) == 3 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    frames, _ = video.read_video(str(path))
    whole = enhance_frames(service.get_model(), frames, 4, estimate_size=256)
    chunked = np.concatenate(
        [enhance_frames(service.get_model(), frames[i : i + 64], 4, estimate_size=256) for i in range(0, 150, 64)]
    )
    assert np.array_equal(whole, chunked)  # groups of k never straddle a chunk
    assert r["frames"] == 150


def test_enhance_a_chosen_segment_says_which_frames(weights, tmp_path):
    rng = np.random.default_rng(8)
    path = tmp_path / "long.mp4"
    video.write_video(path, rng.integers(0, 30, (100, 48, 64, 3)).astype(np.uint8), 10)
    r = service.enhance_video(str(path), out_path=str(tmp_path / "seg.mp4"), start_s=6.0)
    assert (r["first"], r["frames"]) == (61, 40)
    assert "frames 61-100 of 100 (6.0-10.0 s of 10.0 s)" in r["note"] and "at most" not in r["note"]
    assert video.probe(r["path"]).frames == 40
    with pytest.raises(service.ServiceError, match="segment start must be from 0 to under 10.0 s"):
        service.enhance_video(str(path), start_s=10.0)


def test_examples_have_captions_and_visible_previews():
    clips = service.example_clips()
    assert clips and all(caption.split(":")[0] in {"Drink", "Jump", "Pour", "Walk", "Wave"} for _, caption in clips)
    for path, img, caption in service.example_previews():
        raw = video.read_frames(path, [video.probe(path).frames // 2], size=img.shape[0])[0]
        assert img.mean() > raw.mean() + 30 and caption  # brightened: what the clip shows can be seen
