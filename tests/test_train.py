"""dtcm.train: the loop learns and logs every term, resumes exactly after kill -9 (also mid-checkpoint), runs on
two processes, survives non-finite losses, streams metrics to a callback that can stop it, and trains every
setting. Toy sizes throughout: dtcm_tiny_test (T = 8, 32x32) on 6 short clips of 3 classes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dtcm.model import DTCM, create_model
from dtcm.train import (
    DEFAULTS,
    KILL_IN_CHECKPOINT_ENV,
    TERMS,
    TrainingDiverged,
    latest_checkpoint,
    load_checkpoint,
    main,
    parse_args,
)

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("Drink", "Jump", "Pick")
# 6 clips, batch 2: 3 optimizer steps per epoch, 6 in two epochs; checkpoints at 2, 4, 6
BASE = ["--model", "dtcm_tiny_test", "--batch-size", "2", "--epochs", "2", "--lr", "3e-3", "--num-workers", "0"]
BASE += ["--checkpoint-every", "2", "--no-progress", "--seed", "7"]


def _clip(label: int, i: int, t: int = 12, h: int = 40, w: int = 48) -> np.ndarray:
    """A (T, H, W, 3) uint8 dark clip: a moving texture tinted by the class."""
    tt, y, x = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    texture = ((x * (2 + i) + y * 3 + tt * (4 + 3 * label)) % 32).astype(np.uint8)
    frames = np.repeat(texture[..., None], 3, axis=-1)
    frames[..., label] += 30
    return frames


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """root/classes/<Class>/<Class>_<i>.mp4 (2 per class) and root/flat/*.mp4 (unlabelled)."""
    from dtcm.video import write_video

    root = tmp_path_factory.mktemp("train_data")
    for label, name in enumerate(CLASSES):
        for i in range(2):
            write_video(root / "classes" / name / f"{name}_{i}.mp4", _clip(label, i), fps=12)
    for i in range(2):
        write_video(root / "flat" / f"night_{i}.mp4", _clip(i, i + 2), fps=12)
    return root


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data / "classes"), "--output-dir", str(out), *BASE, *extra]


def _records(out: Path, kind: str | None = None) -> list[dict]:
    recs = []
    for line in (out / "log.jsonl").read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            continue
    return [r for r in recs if kind is None or r["type"] == kind]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _assert_same_weights(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=lambda m, key=key: f"{key}: {m}")


def _run(argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out.decode(errors="replace")


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """An uninterrupted in-process run of BASE: 6 steps over 2 epochs."""
    out = tmp_path_factory.mktemp("reference") / "run"
    summary = main(parse_args(_args(data, out, "--val-data", str(data / "classes"))))
    assert summary["status"] == "finished" and summary["steps"] == 6
    return out


# ------------------------------------------------------------------------------------------------------ (1)
def test_loss_falls_and_log_has_every_term(reference, data, tmp_path):
    longer = tmp_path / "longer"  # 8 epochs: two epochs of 3 batches are too few to see the loss fall
    main(parse_args(_args(data, longer, "--epochs", "8", "--checkpoint-every", "0")))
    means = [e["train_loss"] for e in _records(longer, "epoch")]  # each over the same 6 clips
    assert np.mean(means[-2:]) < 0.8 * np.mean(means[:2]), means
    steps = _records(reference, "step")
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    for r in steps:
        for key in (*TERMS, "acc", "lr", "grad_norm", "epoch"):
            assert key in r, key
        assert r["nonfinite"] is False and np.isfinite(r["loss"]) and 0 <= r["acc"] <= 1
        assert r["loss"] == pytest.approx(r["total"]) and r["total"] == pytest.approx(
            r["ar"] + 0.1 * (4 * r["stc"] + r["dark"]), rel=1e-5
        )
    epochs = _records(reference, "epoch")
    assert steps[0]["lr"] == pytest.approx(3e-3) and steps[-1]["lr"] < steps[0]["lr"]  # cosine decays
    assert [e["epoch"] for e in epochs] == [0, 1]
    for e in epochs:
        assert e["skipped_files"] == 0 and 0 <= e["train_acc"] <= 1
        assert e["val_n"] == 6 and 0 <= e["val_top1"] <= e["val_top5"] <= 1
    cfg = json.loads((reference / "final" / "config.json").read_text())
    assert cfg["class_names"] == list(CLASSES) and cfg["num_classes"] == 3
    assert (cfg["k"], cfg["alpha"], cfg["w_stc"]) == (4, 0.1, 4.0)
    model = DTCM.from_pretrained(reference / "final")
    assert model.config.class_names == CLASSES
    # kept: the newest 3 checkpoints, each complete; args re-usable as a recipe
    assert sorted(p.name for p in reference.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert set(json.loads((reference / "train_args.json").read_text())) == set(DEFAULTS)


# ------------------------------------------------------------------------------------------------------ (2)
def test_kill_mid_epoch_then_resume_is_exact(data, reference, tmp_path):
    out = tmp_path / "run"
    proc = _run(
        [sys.executable, "-m", "dtcm.train", *_args(data, out, "--val-data", str(data / "classes"))]
        + ["--debug-step-delay", "1.5"]
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill -9 once step 3 (epoch 0, after checkpoint-2) ran
        log = out / "log.jsonl"
        if log.is_file() and any(r["type"] == "step" and r["step"] >= 3 for r in _records(out)):
            proc.kill()
            break
        time.sleep(0.1)
    _finish(proc)
    assert proc.returncode == -9, "the run ended before it could be killed"
    ckpt = latest_checkpoint(out)
    assert ckpt.name == "checkpoint-2"
    state = json.loads((ckpt / "state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 2)  # the middle of the first epoch

    resumed = _run(
        [sys.executable, "-m", "dtcm.train", *_args(data, out, "--val-data", str(data / "classes"))] + ["--resume"]
    )
    text = _finish(resumed)
    assert resumed.returncode == 0, text
    _assert_same_weights(_weights(out / "final"), _weights(reference / "final"))
    steps = [r["step"] for r in _records(out, "step")]
    assert steps == [1, 2, 3, 4, 5, 6]  # what the killed run did after checkpoint-2 was dropped from the log
    assert [r["epoch"] for r in _records(out, "epoch")] == [0, 1]


# ------------------------------------------------------------------------------------------------------ (3)
def test_kill_during_checkpoint_write_keeps_previous(data, reference, tmp_path):
    out = tmp_path / "run"
    proc = _run([sys.executable, "-m", "dtcm.train", *_args(data, out)], env={KILL_IN_CHECKPOINT_ENV: "4"})
    text = _finish(proc)
    assert proc.returncode == -9, text
    assert (out / ".tmp-checkpoint-4" / "model").is_dir()  # died half-way through checkpoint-4
    assert not (out / "checkpoint-4").exists()
    ckpt = latest_checkpoint(out)
    assert ckpt == out / "checkpoint-2"
    model = create_model("dtcm_tiny_test", num_classes=3, class_names=CLASSES)
    state = load_checkpoint(ckpt, model, rank=None)
    assert state["global_step"] == 2
    assert DTCM.from_pretrained(ckpt / "model").config.class_names == CLASSES
    # and the run resumes from it (in-process) to the same weights
    summary = main(parse_args(_args(data, out, "--resume")))
    assert summary["steps"] == 6 and not (out / ".tmp-checkpoint-4").exists()
    _assert_same_weights(_weights(out / "final"), _weights(reference / "final"))


# ------------------------------------------------------------------------------------------------------ (4)
def test_torchrun_two_processes_agree(data, tmp_path):
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun not found")
    argv = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "dtcm.train"]
    argv += _args(data, out, "--max-steps", "2")
    proc = _run(argv)
    text = _finish(proc, timeout=170)
    assert proc.returncode == 0, text[-3000:]
    assert _records(out, "start")[0]["world_size"] == 2
    end = _records(out, "end")[0]
    assert end["steps"] == 2 and len(end["rank_weights_sha256"]) == 2
    assert len(set(end["rank_weights_sha256"])) == 1
    assert _records(out, "step")[0]["clips"] == 4  # two clips from each process


# ------------------------------------------------------------------------------------------------------ (5)
def test_nonfinite_step_is_skipped(data, tmp_path):
    out = tmp_path / "run"
    summary = main(
        parse_args(_args(data, out, "--max-steps", "3", "--checkpoint-every", "1", "--debug-nan-steps", "2"))
    )
    steps = _records(out, "step")
    assert [r["nonfinite"] for r in steps] == [False, True, False]
    assert steps[1]["loss"] is None and summary["nonfinite_steps"] == 1 and summary["status"] == "finished"
    # the skipped step changed nothing: not the weights, not the BatchNorm statistics
    _assert_same_weights(_weights(out / "checkpoint-1" / "model"), _weights(out / "checkpoint-2" / "model"), atol=0)
    assert np.isfinite(steps[2]["loss"])


def test_nonfinite_streak_stops_with_checkpoint_intact(data, tmp_path):
    out = tmp_path / "run"
    args = _args(data, out, "--checkpoint-every", "1", "--debug-nan-steps", "2,3,4,5", "--max-nonfinite", "3")
    with pytest.raises(TrainingDiverged, match="3 optimizer steps in a row had a non-finite loss") as info:
        main(parse_args(args))
    assert [r["step"] for r in _records(out, "step")] == [1, 2, 3, 4]
    assert _records(out, "diverged")[0]["step"] == 4
    assert not (out / "final").exists() and not (out / "checkpoint-4").exists()
    last = latest_checkpoint(out)
    assert info.value.last_checkpoint == str(last) and last.name == "checkpoint-3"
    _assert_same_weights(_weights(last / "model"), _weights(out / "checkpoint-1" / "model"), atol=0)
    # the CLI says it in one line with exit status 1
    from dtcm.cli import main as cli

    assert cli(["train", *_args(data, tmp_path / "cli", "--debug-nan-steps", "1", "--max-nonfinite", "1")]) == 1


# ------------------------------------------------------------------------------------------------------ (6)
def test_callback_streams_metrics_and_stops(data, tmp_path):
    seen = []

    def callback(metrics):
        seen.append(metrics)
        return metrics["type"] == "step" and metrics["step"] == 2

    out = tmp_path / "cb"
    summary = main(parse_args(_args(data, out, "--checkpoint-every", "0")), callback=callback)
    assert [m["step"] for m in seen if m["type"] == "step"] == [1, 2]
    assert all(key in seen[0] for key in (*TERMS, "acc", "lr", "epoch", "step"))
    assert summary["status"] == "stopped" and summary["steps"] == 2
    assert latest_checkpoint(out).name == "checkpoint-2" and (out / "final" / "model.safetensors").is_file()

    stop = threading.Event()
    out = tmp_path / "event"
    summary = main(
        parse_args(_args(data, out, "--checkpoint-every", "0")), callback=lambda m: stop.set(), stop_event=stop
    )
    assert summary["status"] == "stopped" and summary["steps"] == 1
    # a stopped run resumes to the end
    summary = main(parse_args(_args(data, out, "--resume", "--max-steps", "3")))
    assert summary["status"] == "finished" and summary["steps"] == 3


def test_two_stage_enhances_with_the_folded_copy_of_the_frozen_enhancer():
    from dtcm.train import TrainStep

    torch.manual_seed(0)
    model = create_model("dtcm_tiny_test", num_classes=3, class_names=CLASSES)
    for m in model.enhancer.modules():  # non-trivial running statistics, so that folding them matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    step = TrainStep(model, "two-stage", k=2).train()
    x = torch.rand(2, 3, 8, 32, 32) * 0.3
    with torch.no_grad():
        want_y, want_curves = model.enhance(x, 2)  # the enhancer stays in eval mode under TrainStep.train()
    logits, y, curves = step(x)
    assert torch.allclose(y, want_y, atol=1e-5) and torch.allclose(curves, want_curves, atol=1e-5)
    logits.sum().backward()  # the folded copy's outputs feed a classifier that trains
    assert all(p.grad is None for p in model.enhancer.parameters())
    assert any(p.grad is not None for p in model.backbone.parameters())
    assert not any(n.startswith("_fast") for n, _ in step.named_modules())  # not part of checkpoints


def _saved_start(tmp_path):
    """A toy model saved as an --init folder, and its weights."""
    initial = create_model("dtcm_tiny_test", num_classes=3, class_names=CLASSES)
    initial.save_pretrained(tmp_path / "start")
    return tmp_path / "start", initial.state_dict()


@pytest.mark.parametrize("enhancer_bn", ["batch", "frozen"])
def test_enhancer_batch_norm_batch_or_frozen(enhancer_bn, data, tmp_path):
    start, before = _saved_start(tmp_path)
    out = tmp_path / "run"
    summary = main(parse_args(_args(data, out, "--max-steps", "2", "--init", str(start), "--enhancer-bn", enhancer_bn)))
    assert summary["status"] == "finished"
    after = _weights(out / "final")
    stats = [k for k in before if k.startswith("enhancer.") and k.endswith(("running_mean", "running_var"))]
    weights = [k for k in before if k.startswith("enhancer.") and k.endswith(".weight")]
    assert stats and weights
    assert any(not torch.equal(before[k], after[k]) for k in weights)  # the enhancer trains either way
    stats_moved = any(not torch.equal(before[k], after[k]) for k in stats)
    assert stats_moved == (enhancer_bn == "batch")
    assert json.loads((out / "train_args.json").read_text())["enhancer_bn"] == enhancer_bn
    with pytest.raises(SystemExit):
        parse_args(_args(data, out, "--enhancer-bn", "sometimes"))


# ------------------------------------------------------------------------------------------------------ (7)
@pytest.mark.parametrize("setting", ["one-stage-total", "one-stage-ar", "two-stage", "enhancer-only"])
def test_settings(setting, data, tmp_path):
    start, before = _saved_start(tmp_path)
    out = tmp_path / "run"
    extra = ["--setting", setting, "--max-steps", "2", "--init", str(start)]
    if setting == "two-stage":
        extra += ["--enhancer-init", str(start)]
    argv = _args(data, out, *extra)
    if setting == "enhancer-only":
        argv[1] = str(data / "flat")  # no labels, no class folders
    summary = main(parse_args(argv))
    assert summary["status"] == "finished"
    after = _weights(out / "final")
    changed = {
        part: any(not torch.equal(before[k], after[k]) for k in before if k.startswith(part))
        for part in ("enhancer.", "backbone.")
    }
    step = _records(out, "step")[-1]
    if setting == "two-stage":  # frozen: parameters and BatchNorm statistics untouched
        assert not changed["enhancer."] and changed["backbone."]
        assert step["loss"] == pytest.approx(step["ar"])
    elif setting == "enhancer-only":
        assert changed["enhancer."] and not changed["backbone."]
        assert step["acc"] is None and step["ar"] == 0
        assert step["loss"] == pytest.approx(4 * step["stc"] + step["dark"])
        assert DTCM.from_pretrained(out / "final").config.num_classes == 3  # the init's head is kept
    else:
        assert changed["enhancer."] and changed["backbone."]
        assert step["loss"] == pytest.approx(step["ar" if setting == "one-stage-ar" else "total"])


def test_init_with_other_class_count_loads_all_but_the_head(data, tmp_path):
    start = tmp_path / "k400"
    src = create_model("dtcm_tiny_test", num_classes=5, temperature=3.0, not_sure_below=0.5, min_energy=1.0)
    src.save_pretrained(start)
    out = tmp_path / "run"
    main(parse_args(_args(data, out, "--init", str(start), "--max-steps", "1", "--lr", "1e-12", "--weight-decay", "0")))
    after = DTCM.from_pretrained(out / "final")
    assert after.config.num_classes == 3
    assert after.config == after.config.uncalibrated()  # the init's calibration does not fit new weights
    for name, p in after.named_parameters():
        if name.startswith("backbone.fc"):
            assert p.shape[0] == 3
        else:
            torch.testing.assert_close(p, dict(src.named_parameters())[name], atol=1e-6, rtol=0)


def test_curve_size_trains_and_is_saved_with_the_model(data, tmp_path):
    out = tmp_path / "run"
    main(parse_args(_args(data, out, "--curve-size", "16", "--max-steps", "2")))
    model = DTCM.from_pretrained(out / "final")
    assert model.config.curve_size == 16 and model.enhancer.curve_size == 16
    assert json.loads((out / "train_args.json").read_text())["curve_size"] == 16
    with pytest.raises(ValueError, match="curve_size must be an integer >= 8, got 4"):
        main(parse_args(_args(data, tmp_path / "bad", "--curve-size", "4")))
    with pytest.raises(ValueError, match="curve_size must be None or a short side of at least 8 pixels, got 4"):
        model.config.replace(curve_size=4)


# ------------------------------------------------------------------------------------------------------ args
def test_recipe_then_flags(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"_comment": "test", "lr": 0.5, "w-stc": 2, "data": "x", "batch_size": 3}))
    args = parse_args(["--recipe", str(recipe), "--lr", "0.25"])
    assert (args.lr, args.w_stc, args.batch_size, args.data, args.alpha) == (0.25, 2, 3, "x", DEFAULTS["alpha"])
    recipe.write_text(json.dumps({"learning_rate": 1}))
    with pytest.raises(ValueError, match="unknown keys"):
        parse_args(["--recipe", str(recipe)])
    with pytest.raises(ValueError, match="no training data"):
        parse_args([])
    with pytest.raises(ValueError, match="k must be"):
        parse_args(["--data", "x", "--k", "0"])


def test_shipped_recipes_parse():
    for path in sorted((REPO / "weights" / "recipes").glob("*.json")):
        args = parse_args(["--recipe", str(path), "--data", "x"])
        assert args.setting in ("one-stage-total", "one-stage-ar", "two-stage", "enhancer-only"), path


def test_fresh_run_refuses_a_folder_with_checkpoints(data, reference):
    with pytest.raises(ValueError, match="--resume"):
        main(parse_args(_args(data, reference)))


def test_bad_files_are_skipped_and_counted(data, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(data / "classes", mixed)
    (mixed / "Drink" / "broken.mp4").write_bytes(b"this is not a video")
    out = tmp_path / "run"
    argv = _args(data, out, "--batch-size", "7", "--epochs", "1")
    argv[1] = str(mixed)
    summary = main(parse_args(argv))
    step, epoch = _records(out, "step")[0], _records(out, "epoch")[0]
    assert (step["clips"], step["skipped_files"], epoch["skipped_files"]) == (6, 1, 1)
    assert summary["skipped_files"] == 1 and np.isfinite(step["loss"])

    bad = tmp_path / "bad"
    for name in CLASSES[:2]:
        (bad / name).mkdir(parents=True)
        (bad / name / "x.mp4").write_bytes(b"garbage")
    argv = _args(data, tmp_path / "bad_run", "--epochs", "1")
    argv[1] = str(bad)
    with pytest.raises(ValueError, match="no usable clip.*2 clips read were skipped"):  # issue 12, item 13
        main(parse_args(argv))  # every batch is empty: steps pass without updates, then the run fails
    assert _records(tmp_path / "bad_run", "step")[0]["clips"] == 0
    assert not (tmp_path / "bad_run" / "final").exists()
