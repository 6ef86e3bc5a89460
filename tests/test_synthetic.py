"""DarkActions-synth: classes, darkness, determinism, ARID-format lists, the loader, the CLI (SPEC B3)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from dtcm.config import ARID_CLASSES
from dtcm.darkness import darkness_score, segment_indices, video_darkness
from dtcm.data import synthetic as syn
from dtcm.data.arid import ARIDDataset

SEED = 3


def _decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _read_list(path: Path) -> list[tuple[int, int, str]]:
    rows = []
    for line in path.read_text().splitlines():
        idx, cls, rel = line.split("\t")
        rows.append((int(idx), int(cls), rel))
    return rows


@pytest.fixture(scope="module")
def dark_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, syn.make_synthetic(out, per_class=2, seed=SEED)


def test_classes_are_arids_in_order():
    assert syn.ACTIONS == ARID_CLASSES and len(syn.ACTIONS) == 11
    assert syn._action_name(3) == syn._action_name("pour") == "Pour"
    with pytest.raises(ValueError, match="unknown action"):
        syn.render_clip("Dance", np.random.default_rng(0))


def test_render_is_deterministic_per_seed():
    a, meta = syn.render_clip("Pour", np.random.default_rng(5), num_frames=12)
    b, _ = syn.render_clip("Pour", np.random.default_rng(5), num_frames=12)
    c, _ = syn.render_clip("Pour", np.random.default_rng(6), num_frames=12)
    assert a.shape == (12, syn.SIZE[1], syn.SIZE[0], 3) and a.dtype == np.uint8
    assert meta["action"] == "Pour" and meta["class_id"] == 3
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5  # another figure, view and background
    np.testing.assert_array_equal(syn.darken(a, np.random.default_rng(1)), syn.darken(a, np.random.default_rng(1)))
    assert not np.array_equal(syn.darken(a, np.random.default_rng(1)), syn.darken(a, np.random.default_rng(2)))


def test_darken_exposure_and_errors():
    bright = np.full((4, 32, 48, 3), 160, np.uint8)
    low = syn.darken(bright, np.random.default_rng(0), exposure=0.01)
    high = syn.darken(bright, np.random.default_rng(0), exposure=0.08)
    assert low.shape == bright.shape and low.dtype == np.uint8
    assert low.mean() < high.mean() < 60
    dv = darkness_score(syn.darken(bright, np.random.default_rng(0))[segment_indices(4)])
    assert -0.95 < dv < -0.8  # auto exposure aims at ARID's darkness
    with pytest.raises(ValueError, match="uint8"):
        syn.darken(bright.astype(np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="exposure"):
        syn.darken(bright, np.random.default_rng(0), exposure=0.0)


def test_dark_clips_match_arid_darkness(dark_set):
    out, summary = dark_set
    assert summary["clips"] == 22 and not summary["bright"]
    paths = sorted(out.glob("*/*.mp4"))
    assert len(paths) == 22
    dvs = [video_darkness(p).dv for p in paths]  # 8 segment-sampled frames of the written files
    assert -0.92 <= np.mean(dvs) <= -0.84, dvs
    assert -0.92 <= summary["mean_dv"] <= -0.84
    assert all(-1 < dv < -0.75 for dv in dvs)


def test_lists_are_arid_format_80_20(dark_set):
    out, _ = dark_set
    assert split_sizes(60) == (48, 12) and split_sizes(10) == (8, 2) and split_sizes(5) == (4, 1)
    assert syn.split_indices(1) == ([0], [])
    classes = [line.split("\t") for line in (out / "classInd.txt").read_text().splitlines()]
    assert classes == [[str(i), name] for i, name in enumerate(ARID_CLASSES)]
    train, test = _read_list(out / "split1_train.txt"), _read_list(out / "split1_test.txt")
    assert len(train) == len(test) == 11  # 2 per class: 1 + 1
    ids = [r[0] for r in train + test]
    assert len(set(ids)) == len(ids) and {r[2] for r in train}.isdisjoint(r[2] for r in test)
    for _, cls, rel in train + test:
        folder, name = rel.split("/")
        assert folder == ARID_CLASSES[cls] and name.startswith(folder) and name.endswith(".mp4")
        assert (out / rel).is_file()
    meta = json.loads((out / "synthetic.json").read_text())
    assert len(meta["clip_params"]) == 22 and meta["seed"] == SEED


def split_sizes(n):
    train, test = syn.split_indices(n)
    assert sorted(train + test) == list(range(n))
    return len(train), len(test)


def test_lists_load_through_arid_dataset(dark_set):
    out, _ = dark_set
    ds = ARIDDataset(out, out / "split1_train.txt", train=True, clip_len=16)
    assert len(ds) == 11 and tuple(ds.class_names) == ARID_CLASSES
    assert sorted(ds.labels) == list(range(11))
    item = ds[0]
    assert tuple(item["video"].shape) == (3, 16, 112, 112)
    test = ARIDDataset(out, out / "split1_test.txt", clip_len=16)
    assert [test[i]["label"] for i in range(len(test))] == test.labels


def test_cli_bright_parallel_matches_serial(dark_set, tmp_path, capsys):
    from dtcm.cli import main

    out = tmp_path / "bright"
    args = ["make-synthetic", "--out", str(out), "--per-class", "1", "--seed", str(SEED), "--workers", "2", "--bright"]
    assert main(args) == 0
    assert "wrote 11 bright clips" in capsys.readouterr().out
    assert (out / "contact_sheet.png").stat().st_size > 10_000
    assert len(_read_list(out / "split1_train.txt")) == 11 and (out / "split1_test.txt").read_text() == ""
    # clip 0 of a class depends on (seed, class, 0) only: the parallel bright set and the serial dark set
    # hold the same scene, so darkening the bright parameters must reproduce the serial run's darkness
    dark_meta = {m["path"]: m for m in json.loads((dark_set[0] / "synthetic.json").read_text())["clip_params"]}
    for m in json.loads((out / "synthetic.json").read_text())["clip_params"]:
        assert m["dv_dark"] == dark_meta[m["path"]]["dv_dark"]
        assert m["camera"] == dark_meta[m["path"]]["camera"]
    bright = _decode(out / "Wave/Wave_0000.mp4")
    assert bright.shape == (syn.NUM_FRAMES, syn.SIZE[1], syn.SIZE[0], 3)
    assert bright.mean() > 3 * _decode(dark_set[0] / "Wave/Wave_0000.mp4").mean()


def test_missing_footage_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv(syn.FOOTAGE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=syn.FOOTAGE_ENV):
        syn.render_clip("Walk", np.random.default_rng(0), num_frames=2)


def test_merged_splits_load_every_clip_of_both_sets(dark_set, tmp_path):
    import shutil
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from merge_splits import merge

    first = dark_set[0]
    other = tmp_path / "other"
    shutil.copytree(first, other)
    counts = merge(tmp_path / "union", [first, other])
    own = {half: len(_read_list(first / f"split1_{half}.txt")) for half in ("train", "test")}
    assert counts == {half: 2 * n for half, n in own.items()}
    from dtcm.data import build_dataset

    ds = build_dataset(tmp_path / "union", train=True, clip_len=8, crop=32, short_side=40)
    assert len(ds) == counts["train"] and ds.class_names == ARID_CLASSES
    assert (
        ds[0]["video"].shape == (3, 8, 32, 32)
        and ds[len(ds) - 1]["label"] == _read_list(other / "split1_train.txt")[-1][1]
    )
    (other / "classInd.txt").write_text("0\tOnly\n")
    with pytest.raises(ValueError, match="class lists differ"):
        merge(tmp_path / "bad", [first, other])


# ------------------------------------------------------------------------------------ v2 and a plain clone
# v1 as main rendered it before the v2 package (render_clip on seeds [11, class, 0], 8 frames at 96x72 over
# vtest.avi, then darken(rng [11, 1])): sha256 of the bright and the dark frames
V1_REFERENCE = {
    "Walk": (
        "59ed9258c20c4d29906bafd0a3ab08b18a6025789f4764cfe7989b2f1434a9b8",
        "eb470f6986970053197a2fd4efe6381958967023cddc8430ace8fe3126d280ed",
    ),
    "Pour": (
        "be1ebd2aa5dde5af7f2f47fda2c3666ac5650d75ca54e707f18dd2a60e36a264",
        "ed1d956a20e57de194b874e7112126158483bce8ca2b7ea1037c3f28616015a8",
    ),
    "Sit": (
        "094eb033f530b8c4e03f1cfe0e2263ec6c96d7083567e414e6b329c6b0994752",
        "d511317d241a0df8caed70f727aeccf86d5d9361f980fe15935dd120bdb3ddf1",
    ),
}


@pytest.fixture
def plain_clone(tmp_path, monkeypatch):
    """No real footage anywhere: the alias unset and ../shared/data/real out of sight."""
    from dtcm.synthetic import backgrounds

    monkeypatch.delenv(syn.FOOTAGE_ENV, raising=False)
    monkeypatch.setattr(backgrounds, "footage_dir", lambda: tmp_path / "no-shared" / "real")
    return tmp_path


def test_make_synthetic_needs_no_data(plain_clone):
    out = plain_clone / "set"
    summary = syn.make_synthetic(out, per_class=2, seed=1, num_frames=8)
    assert summary["clips"] == 22 and summary["backgrounds"] == "procedural" and summary["version"] == 2
    assert len(sorted(out.glob("*/*.mp4"))) == 22
    assert len(_read_list(out / "split1_train.txt")) == len(_read_list(out / "split1_test.txt")) == 11
    params = json.loads((out / "synthetic.json").read_text())["clip_params"]
    assert {p["background"]["kind"] for p in params} == {"procedural"}
    assert len({p["background"]["scene"] for p in params}) >= 3  # streets, rooms, yards, car parks
    assert -0.95 < summary["mean_dv"] < -0.8
    frames, meta = syn.render_clip("Sit", np.random.default_rng(0), num_frames=4, version=1)  # v1 too
    assert frames.shape == (4, syn.SIZE[1], syn.SIZE[0], 3) and meta["background"]["kind"] == "procedural"


def test_v1_renders_what_it_did_before(monkeypatch, shared_data):
    import hashlib

    footage = shared_data / "real" / "vtest.avi"
    monkeypatch.setenv(syn.FOOTAGE_ENV, str(footage.parent))  # v1 over the shared footage, as before
    for name, (bright_sha, dark_sha) in V1_REFERENCE.items():
        rng = np.random.default_rng([11, syn.ACTIONS.index(name), 0])
        frames, _ = syn.render_clip(name, rng, num_frames=8, size=(96, 72), version=1)
        dark = syn.darken(frames, np.random.default_rng([11, 1]))
        assert hashlib.sha256(frames.tobytes()).hexdigest() == bright_sha, name
        assert hashlib.sha256(dark.tobytes()).hexdigest() == dark_sha, name
    rng = np.random.default_rng([11, 3, 0])
    again, _ = syn.render_clip("Pour", rng, num_frames=8, size=(96, 72), version=1, backgrounds=footage)
    assert hashlib.sha256(again.tobytes()).hexdigest() == V1_REFERENCE["Pour"][0]


def test_backgrounds_folder_of_photographs(plain_clone):
    import cv2

    photos = plain_clone / "photos" / "nested"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(2):
        cv2.imwrite(str(photos / f"p{k}.png"), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    frames, meta = syn.render_clip(
        "Wave", np.random.default_rng(1), num_frames=4, size=(64, 48), backgrounds=photos.parent
    )
    assert frames.shape == (4, 48, 64, 3) and meta["background"]["kind"] == "photo"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        syn.render_clip("Wave", np.random.default_rng(1), num_frames=2, backgrounds=plain_clone / "nowhere")
    (plain_clone / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no videos"):
        syn.make_synthetic(plain_clone / "x", per_class=1, backgrounds=plain_clone / "empty")


def test_render_options_switch_each_element_off(plain_clone):
    off = syn.RenderOptions(**dict.fromkeys(syn.RenderOptions.names(), False))
    rng = lambda: np.random.default_rng(4)  # noqa: E731
    plain, meta_off = syn.render_clip("Walk", rng(), num_frames=6, size=(64, 48), options=off)
    full, meta_on = syn.render_clip("Walk", rng(), num_frames=6, size=(64, 48))
    assert meta_off["lights"] == [] and meta_off["camera_move"] == {} and meta_off["motion_blur"] == 0.0
    assert meta_off["distractors"] == [] and "look" not in meta_off and meta_off["style"] == {}
    assert "look" in meta_on and meta_on["motion_blur"] > 0 and meta_on["camera_move"]["zoom"][0] > 1
    assert np.abs(plain.astype(int) - full.astype(int)).mean() > 3
    for name in syn.RenderOptions.names():  # each switch alone changes the clip (or, distractors, may not)
        one, _ = syn.render_clip("Walk", rng(), num_frames=6, size=(64, 48), options=syn.RenderOptions(**{name: False}))
        assert name in ("distractors", "compression") or not np.array_equal(one, full), name
    with pytest.raises(ValueError, match="version must be one of"):
        syn.render_clip("Walk", rng(), version=3)
    with pytest.raises(ValueError, match="v1 has none"):
        syn.render_clip("Walk", rng(), version=1, options=off)


def test_v2_people_vary_in_size_and_place(plain_clone):
    metas = [
        syn.render_clip(a, np.random.default_rng(s), num_frames=2, size=(64, 48))[1]
        for s, a in enumerate(syn.ACTIONS * 2)
    ]
    shares = [m["share"] for m in metas]
    assert 0.2 <= min(shares) < 0.4 and 0.7 < max(shares) <= 0.9, shares
    assert len({m["look"]["hair"] for m in metas}) >= 3 and len({m["look"]["legwear"] for m in metas}) >= 2
    clock, style = syn_actions().actor_style(np.random.default_rng(0), np.arange(40) / 15)
    assert np.all(np.diff(clock) > 0) and 0.85 <= style["tempo"] <= 1.2


def syn_actions():
    from dtcm.synthetic import actions

    return actions


def test_procedural_scenes_and_compression():
    seen = set()
    for kind in syn.SCENE_KINDS:
        a, info = syn.procedural_scene(np.random.default_rng(0), (96, 64), kind)
        b, _ = syn.procedural_scene(np.random.default_rng(0), (96, 64), kind)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (64, 96, 3) and info["kind"] == kind and a.std() > 10
        seen.add(a.tobytes())
    assert len(seen) == len(syn.SCENE_KINDS)
    with pytest.raises(ValueError, match="unknown scene kind"):
        syn.procedural_scene(np.random.default_rng(0), (96, 64), "beach")
    frames = np.random.default_rng(0).integers(0, 40, (2, 32, 48, 3), dtype=np.uint8)
    squeezed = syn.compress(frames, np.random.default_rng(0))
    assert squeezed.shape == frames.shape and not np.array_equal(squeezed, frames)
    with pytest.raises(ValueError, match="quality"):
        syn.compress(frames, np.random.default_rng(0), quality=(0, 50))


def test_cli_switches_version_and_backgrounds(plain_clone, capsys):
    from dtcm.cli import main

    out = plain_clone / "cli"
    args = ["make-synthetic", "--out", str(out), "--per-class", "1", "--frames", "8", "--no-camera", "--no-distractors"]
    assert main(args) == 0
    assert "backgrounds: procedural" in capsys.readouterr().out
    options = json.loads((out / "synthetic.json").read_text())["options"]
    assert options == {**dict.fromkeys(syn.RenderOptions.names(), True), "camera": False, "distractors": False}
    assert main([*args[:7], "--version", "1", "--no-blur"]) == 2
    assert "v1 has none" in capsys.readouterr().err
    assert main([*args[:7], "--backgrounds", str(plain_clone / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_v2_people_have_human_proportions():
    """A figure standing face-on, painted alone: a head ~1/11 of the height wide, shoulders ~1/4, two legs."""
    from dtcm.synthetic import body as bd
    from dtcm.synthetic import draw, figure

    eye = np.array([0.0, 0.9, 6.0])
    for seed in range(3):
        rng = np.random.default_rng(seed)
        b = bd.sample_body(rng)
        look = figure.sample_look(rng, b)
        look = figure.Look(**{**look.__dict__, "hair_style": "bald", "jacket": None, "legwear": "trousers"})
        joints = bd.solve([bd.pose()], b, "fixed", 0.0, np.zeros(1))[0]
        cam = draw.Camera(eye, draw.look_at(eye, np.array([0.0, 0.9, 0.0])))
        cam.f, cam.cx, cam.cy = 900.0, 160.0, 160.0  # the figure is ~260 px tall
        canvas = np.zeros((320, 320, 3), np.float32)
        mask = figure.paint_figure(canvas, figure.figure_parts(joints, b, look), cam, np.array([0.0, -1.0]), 1.0) > 0.5
        rows = np.flatnonzero(mask.any(1))
        top, height = rows[0], rows[-1] - rows[0]
        at = (top + np.array([0.06, 0.2, 0.75]) * height).astype(int)  # head, shoulders, shins
        head, shoulders, shins = mask.sum(1)[at] / height
        assert 0.07 < head < 0.11 and 0.22 < shoulders < 0.34 and shoulders > 2.5 * head, seed
        assert 0.1 < shins < 0.7 * shoulders, seed  # two legs
        assert canvas[mask].std() > 5, seed  # shaded, not flat
