"""Issue 12, "safe to put on the public internet", library side: each test names the item it covers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dtcm.config import DTCMConfig

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------- item 16
@pytest.mark.parametrize(
    "change, field",
    [
        ({"curve_iterations": 1e8}, "curve_iterations"),
        ({"curve_iterations": 100_000}, "curve_iterations"),
        ({"std": [0, 0, 0]}, "std"),
        ({"mean": [0.4, float("nan"), 0.4]}, "mean"),
        ({"class_names": "DrinkJumpPi", "num_classes": 11}, "class_names"),
        ({"class_names": [1, 2], "num_classes": 2}, "class_names"),
        ({"clip_len": 0}, "clip_len"),
        ({"clip_len": 16.5}, "clip_len"),
        ({"crop_size": 200, "short_side": 128}, "crop_size"),
        ({"pixel_scale": 0}, "pixel_scale"),
        ({"width_mult": -1}, "width_mult"),
        ({"alpha": "big"}, "alpha"),
        ({"k": True}, "k"),
        ({"backbone": 3}, "backbone"),
        ({"extra": []}, "extra"),
    ],
)
def test_config_json_is_range_checked_naming_the_field(tmp_path, change, field):
    data = {**DTCMConfig().to_dict(), **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=field) as info:
        DTCMConfig.load(path)
    assert "\n" not in str(info.value)


def test_shipped_configs_still_load():
    from dtcm.hub import list_variants

    for entry in list_variants().values():
        DTCMConfig.load(f"{entry['path']}/config.json")


# ------------------------------------------------------------------------------- items 14 and 17: video
def _noise_video(path, frames=60, h=48, w=64):
    """A valid H.264 mp4 (index first) of noise frames: every frame costs about the same bytes."""
    from dtcm.video import write_video

    rng = np.random.default_rng(0)
    return write_video(path, rng.integers(0, 255, (frames, h, w, 3), dtype=np.uint8), fps=10, crf=30)


def _damage_tail(src, dst, keep: float):
    """Overwrite the frame data after the first ``keep`` of it with noise; the index stays intact."""
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat") + 8
    cut = start + int((len(data) - start) * keep)
    data[cut:] = np.random.default_rng(1).integers(0, 255, len(data) - cut, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def _levels(side: int) -> np.ndarray:
    """5 flat side x side frames of rising grey: encoded yuv444p, so odd sizes are possible."""
    return np.stack([np.full((side, side, 3), 40 * i, np.uint8) for i in range(5)])


@pytest.fixture(scope="module")
def videos(tmp_path_factory, encode_video):
    root = tmp_path_factory.mktemp("videos")
    good = _noise_video(root / "good.mp4")
    return {
        "good": good,
        "partly": _damage_tail(good, root / "partly.mp4", keep=0.3),  # about 16 of 60 frames decode
        "mostly": _damage_tail(good, root / "mostly.mp4", keep=0.97),  # all but the last frame or two
        "2x2": encode_video(root / "two.mp4", _levels(2), pix_fmt="yuv444p"),
        "1x1": encode_video(root / "one.mp4", _levels(1), pix_fmt="yuv444p"),
        "15x15": encode_video(root / "fifteen.mp4", _levels(15), pix_fmt="yuv444p"),
    }


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from dtcm.model import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    create_model("dtcm_tiny_test").save_pretrained(folder)
    return folder


def _entry_points(model_folder, out_dir):
    """Every way a user hands a clip to the product, each as path -> result (raises on refusal)."""
    from dtcm import darkness, service, video
    from dtcm.enhance_cli import enhance_file
    from dtcm.hub import predict, resolve_model

    model = resolve_model(str(model_folder))
    variant = str(model_folder)
    return {
        "read_clip": lambda p: video.read_clip(p, 8, size=36),
        "read_frames": lambda p: video.read_frames(p, [0, 30, 59]),
        "read_video": lambda p: video.read_video(p, size=36),
        "darkness": lambda p: darkness.video_darkness(p),
        "predict": lambda p: predict(model, p),
        "enhance": lambda p: enhance_file(model, p, out_dir / f"{Path(p).stem}_out.mp4"),
        "service.analyse": lambda p: service.analyse(p, variant=variant),
        "service.compare": lambda p: service.compare(p, methods=("none", "dtcm"), variant=variant),
    }


def test_partly_decodable_video_gets_one_answer_everywhere(videos, tiny_model, tmp_path):  # item 14
    from dtcm.video import probe

    assert probe(videos["partly"]).frames == 60  # the index promises every frame; most do not decode
    messages = set()
    for call in _entry_points(tiny_model, tmp_path).values():
        with pytest.raises(ValueError, match=r"only \d+ of its 60 frames") as info:  # service: ServiceError
            call(videos["partly"])
        messages.add(str(info.value))
        call(videos["mostly"])  # a lost frame or two at the end: the decodable frames are used, everywhere
    assert len(messages) == 1 and "\n" not in messages.pop()


@pytest.mark.parametrize("size", ["1x1", "2x2", "15x15"])
def test_frames_below_16x16_are_refused_everywhere(videos, tiny_model, tmp_path, size):  # item 17
    from dtcm.video import MIN_SIDE, UnsupportedVideo, probe

    assert MIN_SIDE == 16
    with pytest.raises(UnsupportedVideo, match=f"{size} pixels.*16x16") as info:
        probe(videos[size])
    for call in _entry_points(tiny_model, tmp_path).values():
        with pytest.raises(ValueError) as refused:
            call(videos[size])
        assert str(refused.value) == str(info.value)


@pytest.mark.parametrize("command, clip, error", [("predict", "2x2", "16x16"), ("darkness", "partly", "only")])
def test_cli_stderr_holds_only_the_clean_error(videos, tiny_model, command, clip, error):  # items 14, 17
    argv = [sys.executable, "-m", "dtcm.cli", command, str(videos[clip])]
    if command == "predict":
        argv += ["--model", str(tiny_model)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"dtcm {command}: error: ") and error in lines[0]


# ------------------------------------------------------------------------------- items 4 and 5: data
def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not opened")  # building a dataset only checks that listed files exist
    return path


def _seed_folder(folder: Path, names, listed) -> Path:
    """folder/Drink/<names> on disk and folder/split1_train.txt listing ``listed``."""
    for n in names:
        _touch(folder / "Drink" / n)
    lines = [f"{i}\t0\tDrink/{n}" for i, n in enumerate(listed)]
    (folder / "split1_train.txt").write_text("\n".join(lines) + "\n")
    return folder / "split1_train.txt"


def test_missing_file_never_switches_the_root_to_a_sibling(tmp_path, caplog):  # item 4
    import logging

    from dtcm.data import ARIDDataset, build_dataset

    listed = ["a.mp4", "b.mp4", "c.mp4"]
    own = _seed_folder(tmp_path / "seed0", ["a.mp4", "c.mp4"], listed)  # b.mp4 went missing here
    _seed_folder(tmp_path / "seed1", listed, listed)  # another seed beside it holds all three
    with caplog.at_level(logging.WARNING, logger="dtcm.data"):
        for ds in (ARIDDataset(None, own), build_dataset(tmp_path / "seed0", train=True)):
            assert ds.root == tmp_path / "seed0"
            assert [s.path for s in ds.samples] == [str(tmp_path / "seed0" / "Drink" / n) for n in listed]
    assert "1 of the 3 clips" in caplog.text and "b.mp4" in caplog.text and "skipped" in caplog.text

    # the clips live in a folder beside the list (ARID's list_cvt/ and clips_v1.5/): found, if it is the only one
    lists = tmp_path / "arid" / "list_cvt"
    lists.mkdir(parents=True)
    (lists / "split1_train.txt").write_text(own.read_text())
    for n in listed:
        _touch(tmp_path / "arid" / "clips_v1.5" / "Drink" / n)
    assert ARIDDataset(None, lists / "split1_train.txt").root == tmp_path / "arid" / "clips_v1.5"
    _touch(tmp_path / "arid" / "clips_v1" / "Drink" / "a.mp4")  # two candidates: no guessing
    with pytest.raises(FileNotFoundError, match="clips_v1.*clips_v1.5.*root="):
        ARIDDataset(None, lists / "split1_train.txt")


@pytest.mark.parametrize("reader", ["arid", "dark48"])
@pytest.mark.parametrize("entry", ["absolute", "dotdot"])
def test_list_entries_outside_the_containment_root_are_refused(tmp_path, reader, entry):  # item 5
    from dtcm.data import build_dataset

    secret = _touch(tmp_path / "server" / "private" / "secret.mp4")  # exists: it must not be opened or counted
    upload = tmp_path / "server" / "uploads" / "u1"
    _touch(upload / "Drink" / "a.mp4")
    bad = str(secret) if entry == "absolute" else "../../private/secret.mp4"
    rows = ["Drink/a.mp4", bad]
    if reader == "arid":
        text = "".join(f"{i}\t0\t{p}\n" for i, p in enumerate(rows))
    else:
        text = "".join(f"{p} 0\n" for p in rows)
    (upload / "split1_train.txt").write_text(text)
    assert len(build_dataset(upload, train=True)) == 2  # without a containment root, as before
    with pytest.raises(ValueError, match="outside") as info:
        build_dataset(upload, train=True, within=upload)
    assert "secret.mp4" in str(info.value) and "\n" not in str(info.value)


def test_uploaded_zip_lists_cannot_reach_outside_the_upload(tmp_path, monkeypatch):  # item 5, the service
    import time
    import zipfile

    from dtcm import service

    monkeypatch.setenv("DTCM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DTCM_RUNS_DIR", str(tmp_path / "runs"))
    secret = _touch(tmp_path / "elsewhere" / "secret.mp4")
    zpath = tmp_path / "upload.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("set/Drink/a.mp4", b"x")
        zf.writestr("set/Jump/b.mp4", b"x")
        for half in ("train", "test"):
            zf.writestr(f"set/split1_{half}.txt", f"0\t0\tDrink/a.mp4\n1\t1\tJump/b.mp4\n2\t1\t{secret}\n")
    spec = service.prepare_dataset_upload(str(zpath))
    service.start_finetune(spec, backbone="resnet_tiny_test", max_steps=1)
    deadline = time.time() + 120
    while service.finetune_status()["state"] in ("preparing", "running") and time.time() < deadline:
        time.sleep(0.2)
    status = service.finetune_status()
    assert status["state"] == "failed" and "outside" in status["message"] and "secret.mp4" in status["message"]
    assert status["variant"] is None


# ------------------------------------------------------------------------- items 11, 12, 13: training
CLASSES = ("Drink", "Jump", "Pick")
# 6 clips, batch 2: 3 optimizer steps per epoch, 6 in two epochs; checkpoints at 2, 4, 6
TRAIN = ["--model", "dtcm_tiny_test", "--batch-size", "2", "--epochs", "2", "--lr", "3e-3", "--num-workers", "0"]
TRAIN += ["--checkpoint-every", "2", "--no-progress", "--seed", "7"]


def _train_clip(label: int, i: int) -> np.ndarray:
    t, y, x = np.meshgrid(np.arange(12), np.arange(40), np.arange(48), indexing="ij")
    frames = np.repeat(((x * (2 + i) + y * 3 + t * (4 + 3 * label)) % 32).astype(np.uint8)[..., None], 3, axis=-1)
    frames[..., label] += 30
    return frames  # (12, 40, 48, 3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, one_thread) -> Path:
    from dtcm.video import write_video

    root = tmp_path_factory.mktemp("clips")
    for label, name in enumerate(CLASSES):
        for i in range(2):
            write_video(root / name / f"{name}_{i}.mp4", _train_clip(label, i), fps=12)
    return root


def _train(data: Path, out: Path, *extra: str) -> dict:
    from dtcm.train import main, parse_args

    return main(parse_args(["--data", str(data), "--output-dir", str(out), *TRAIN, *extra]))


@pytest.fixture(scope="module")
def finished_run(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert _train(clips, out)["steps"] == 6
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_from_an_older_checkpoint_keeps_newer_ones(clips, finished_run, tmp_path):  # item 12
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = {d.name: _tree(d) for d in [*run.glob("checkpoint-*"), run / "final"]}
    assert sorted(before) == ["checkpoint-2", "checkpoint-4", "checkpoint-6", "final"]
    with pytest.raises(ValueError, match="checkpoint-4, checkpoint-6 and final.*--overwrite-newer") as info:
        _train(clips, run, "--resume", str(run / "checkpoint-2"))
    assert "\n" not in str(info.value)
    assert {d.name: _tree(d) for d in [*run.glob("checkpoint-*"), run / "final"]} == before  # nothing touched

    summary = _train(clips, run, "--resume", str(run / "checkpoint-2"), "--overwrite-newer")
    assert summary["steps"] == 6 and (run / "checkpoint-6").is_dir()


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "bitflip":
        data[-3] ^= 0x10  # a bit of the last tensor's data: the file still parses
        path.write_bytes(bytes(data))
    else:
        path.write_text('{"global_step": 6, ')


@pytest.mark.parametrize(
    "how, name",
    [("truncated", "model/model.safetensors"), ("bitflip", "model/model.safetensors"), ("json", "state.json")],
)
def test_damaged_checkpoint_is_named_and_resume_falls_back(clips, finished_run, tmp_path, caplog, how, name):  # 11
    import logging

    from dtcm.model import create_model
    from dtcm.train import load_checkpoint

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "final")  # as after a run killed just after its last checkpoint
    assert (run / "checkpoint-6" / "checksums.sha256").is_file()
    _damage(run / "checkpoint-6" / name, how)
    with pytest.raises(ValueError, match=f"checkpoint-6.*{name}") as info:
        load_checkpoint(run / "checkpoint-6", create_model("dtcm_tiny_test"))
    assert "\n" not in str(info.value)
    with caplog.at_level(logging.WARNING, logger="dtcm.train"):
        summary = _train(clips, run, "--resume")
    assert "checkpoint-6" in caplog.text and "checkpoint-4" in caplog.text and "damaged" in caplog.text
    assert summary["steps"] == 6 and (run / "final" / "model.safetensors").is_file()


def test_checksums_of_model_folders(tmp_path):  # item 11: save_pretrained folders
    from dtcm.hub import resolve_model
    from dtcm.model import DTCM, create_model

    folder = tmp_path / "m"
    create_model("dtcm_tiny_test").save_pretrained(folder)
    assert "model.safetensors" in (folder / "checksums.sha256").read_text()
    resolve_model(str(folder))
    _damage(folder / "model.safetensors", "bitflip")
    for load in (resolve_model, DTCM.from_pretrained):
        with pytest.raises(ValueError, match="model.safetensors") as info:
            load(str(folder))
        assert "\n" not in str(info.value)
    _damage(folder / "model.safetensors", "truncated")
    (folder / "checksums.sha256").unlink()  # a folder written before checksums: still named when broken
    with pytest.raises(ValueError, match=f"{folder}.*model.safetensors"):
        DTCM.from_pretrained(str(folder))
    create_model("dtcm_tiny_test").save_pretrained(folder)
    (folder / "checksums.sha256").unlink()
    resolve_model(str(folder))  # and loads when intact
    (folder / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json"):
        DTCMConfig.load(folder / "config.json")


def test_bad_clips_are_skipped_for_every_batch_size(clips, tmp_path):  # item 13
    mixed = tmp_path / "mixed"
    for name in CLASSES:  # one good clip and one bad file per class: some batch of 2 keeps one clip
        (mixed / name).mkdir(parents=True)
        shutil.copy(clips / name / f"{name}_0.mp4", mixed / name)
        (mixed / name / "broken.mp4").write_bytes(b"not a video")
    summary = _train(mixed, tmp_path / "run", "--epochs", "1", "--checkpoint-every", "0")
    assert summary["status"] == "finished" and summary["skipped_files"] == 3
    assert summary["dropped_clips"] >= 1  # a batch that bad files shrank to one clip is dropped and counted


def test_a_run_without_one_usable_clip_fails_and_saves_no_model(tmp_path, monkeypatch, one_thread):  # item 13
    import time

    from dtcm import service

    bad = tmp_path / "data" / "bad"
    for name in CLASSES[:2]:
        (bad / name).mkdir(parents=True)
        (bad / name / "x.mp4").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no usable clip") as info:
        _train(bad, tmp_path / "run", "--epochs", "1")
    assert "\n" not in str(info.value) and not (tmp_path / "run" / "final").exists()
    assert not list((tmp_path / "run").glob("checkpoint-*"))

    monkeypatch.setenv("DTCM_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("DTCM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DTCM_RUNS_DIR", str(tmp_path / "runs"))
    before = set(service.list_variants("all"))
    service.start_finetune(str(bad), backbone="resnet_tiny_test", max_steps=2, batch_size=2)
    deadline = time.time() + 300
    while service.finetune_status()["state"] in ("preparing", "running") and time.time() < deadline:
        time.sleep(0.2)
    status = service.finetune_status()
    assert status["state"] == "failed" and "no usable clip" in status["message"], status["message"]
    assert status["variant"] is None and set(service.list_variants("all")) == before
