"""dtcm.hub, dtcm.hub_push, dtcm.evaluate, dtcm.enhance_cli: loading, cards, pushing, metrics, the CLIs.

Everything runs offline: the Hub is replaced by a hand-built huggingface_hub cache folder.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported (it reads this at import)

import hashlib
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard, constants

from dtcm.cli import main
from dtcm.evaluate import _label_map, confusion_figure, evaluate, write_report
from dtcm.hub import HubError, is_stub_card, list_variants, predict, read_index, resolve_model, write_model_card
from dtcm.hub_push import push
from dtcm.model import WeightsMismatch, create_model
from dtcm.video import write_video

CLASSES = ("Drink", "Jump", "Pick")
COLOURS = {"Drink": (40, 8, 8), "Jump": (8, 40, 8), "Pick": (8, 8, 40)}  # dark solid colours per class
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # another test module may have imported huggingface_hub before the environment variable was set
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("DTCM_WEIGHTS_DIR", "/nonexistent-dtcm-weights")  # no shipped index unless a test makes one


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("dtcm_tiny_test", num_classes=3, class_names=CLASSES).eval()


@pytest.fixture(scope="module")
def model_dir(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    tiny.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_cache(model_dir, tmp_path_factory):
    """A huggingface_hub cache holding repo me/tiny at COMMIT: blobs, snapshot symlinks, refs/main."""
    cache = tmp_path_factory.mktemp("hf_cache")
    repo = cache / "models--me--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        data = (model_dir / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    return cache


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """A folder dataset: two 10-frame 40x48 clips per class, each a dark solid colour with a little noise."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        for i in range(2):
            frames = np.broadcast_to(np.array(colour, np.uint8), (10, 40, 48, 3)).copy()
            frames = np.clip(frames + rng.integers(0, 4, frames.shape), 0, 255).astype(np.uint8)
            write_video(root / name / f"{name}_{i}.mp4", frames, fps=10)
    return root


def _one_line_error(capsys, rc):
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------------ loading
def test_load_from_hf_cache_by_repo_id(tiny, hf_cache):
    model = resolve_model("me/tiny", cache_dir=hf_cache)
    assert model.config == tiny.config and _same_weights(model, tiny) and not model.training
    by_commit = resolve_model("me/tiny", revision=COMMIT, cache_dir=hf_cache)
    assert _same_weights(by_commit, tiny)
    x = torch.rand(1, 3, 8, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(model(x), tiny(x))
    with pytest.raises(HubError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        resolve_model("me/tiny", revision="v2", cache_dir=hf_cache)


def test_load_from_local_folder(tiny, model_dir):
    model = resolve_model(model_dir)
    assert model.config == tiny.config and _same_weights(model, tiny)
    with pytest.raises(ValueError, match="Hub repo ids only"):
        resolve_model(model_dir, revision="main")


def test_load_by_index_name(tiny, model_dir, tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    shutil.copytree(model_dir, weights / "tiny")
    shutil.copytree(model_dir, weights / "tiny_wstc0")
    index = {
        "default": "tiny",
        "models": {
            "tiny_wstc0": {"path": "tiny_wstc0", "description": "W_STC = 0", "w_stc": 0.0, "k": 4},
            "tiny": {"path": "weights/tiny", "description": "W_STC = 4", "w_stc": 4.0, "k": 4, "metrics": {"top1": 1}},
        },
    }
    (weights / "index.json").write_text(json.dumps(index))
    monkeypatch.setenv("DTCM_WEIGHTS_DIR", str(weights))
    variants = list_variants()
    assert list(variants) == ["tiny", "tiny_wstc0"]  # default first
    assert variants["tiny"]["default"] and variants["tiny"]["metrics"] == {"top1": 1}
    assert variants["tiny_wstc0"]["metrics"] is None and variants["tiny_wstc0"]["w_stc"] == 0.0
    assert Path(variants["tiny"]["path"]) == (weights / "tiny").resolve()
    assert _same_weights(resolve_model("tiny_wstc0"), tiny)
    assert _same_weights(resolve_model(None), tiny)  # the default
    with pytest.raises(ValueError, match="unknown model 'nope'.*shipped variants: tiny_wstc0, tiny"):
        resolve_model("nope")
    index["default"] = "missing"
    (weights / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="default 'missing' is not one of its models"):
        read_index()


def test_mismatched_architecture_is_refused(model_dir, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(model_dir, folder)
    other = create_model("dtcm_mobilenetv2_tiny_test", num_classes=3, class_names=CLASSES)
    other.save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(WeightsMismatch, match=r"does not fit the resnet_tiny_test architecture: \d+ missing keys"):
        resolve_model(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(ValueError, match="not a DTCM model"):
        resolve_model(folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors.*pickled"):
        resolve_model(folder)


def test_unknown_repo_offline_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(HubError, match="me/nothing is not in the local Hugging Face cache .* offline mode is on"):
        resolve_model("me/nothing", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        resolve_model("./no/such/dir")
    clip = tmp_path / "x.mp4"
    write_video(clip, np.zeros((4, 32, 32, 3), np.uint8), fps=5)
    err = _one_line_error(capsys, main(["predict", str(clip), "--model", "me/nothing"]))
    assert "offline mode is on" in err


# ------------------------------------------------------------------------------------- push & card
def test_push_offline_fails_clearly(model_dir, tmp_path, capsys):
    with pytest.raises(HubError, match="offline mode is on"):
        push(model_dir, "me/tiny")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="lacks config.json and model.safetensors"):
        push(empty, "me/tiny")
    err = _one_line_error(capsys, main(["push", str(model_dir), "me/tiny"]))
    assert err.startswith("dtcm push: error:") and "HF_HUB_OFFLINE" in err
    assert "README.md" in os.listdir(model_dir) and is_stub_card(model_dir / "README.md")  # untouched offline


def test_push_calls_the_hub_client(model_dir, tmp_path, monkeypatch):
    import huggingface_hub

    folder = tmp_path / "to_push"
    shutil.copytree(model_dir, folder)
    (folder / "optimizer.pt").write_bytes(b"state")
    calls = {}

    class Repo:
        repo_id = "me/tiny"

    class Commit:
        commit_url = "https://huggingface.co/me/tiny/commit/abc"

    def fake_create_repo(repo_id, **kw):
        calls["create"] = (repo_id, kw)
        return Repo()

    def fake_upload_folder(**kw):
        calls["upload"] = kw
        return Commit()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", fake_upload_folder)
    assert push(folder, "me/tiny", private=True) == Commit.commit_url
    assert calls["create"] == ("me/tiny", {"private": True, "token": None, "exist_ok": True, "repo_type": "model"})
    assert calls["upload"]["folder_path"] == str(folder) and "*.pt" in calls["upload"]["ignore_patterns"]
    assert not is_stub_card(folder / "README.md")  # the generic save_pretrained card was replaced
    assert 'resolve_model("me/tiny")' in (folder / "README.md").read_text()

    def no_network(repo_id, **kw):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "create_repo", no_network)
    with pytest.raises(HubError, match="push failed: me/tiny: the Hub cannot be reached"):
        push(folder, "me/tiny")


def test_model_card(model_dir, tmp_path):
    folder = tmp_path / "card"
    shutil.copytree(model_dir, folder)
    assert is_stub_card(folder / "README.md")  # what save_pretrained leaves
    metrics = {"top1": 0.5, "top5": 1.0, "n": 6, "per_class": {"Drink": 1.0, "Jump": 0.5, "Pick": None}}
    settings = {"setting": "one-stage L_total", "alpha": 0.1, "w_stc": 4.0, "epochs": 3}
    write_model_card(folder, metrics, data="DarkActions-synth (seed 0)", settings=settings, repo_id="me/tiny")
    card = ModelCard.load(folder / "README.md")
    assert not is_stub_card(folder / "README.md")
    assert card.data.library_name == "dtcm" and card.data.pipeline_tag == "video-classification"
    assert card.data.license == "mit" and {"action-recognition", "synthetic-data"} <= set(card.data.tags)
    assert card.data.eval_results[0].metric_value == 50.0
    text = card.text
    for expected in (
        "This is synthetic data",
        "one-stage L_total",
        "| Top-1 accuracy | 50.00% |",
        "| Pick | n/a |",
        "resnet_tiny_test",
        "Drink, Jump, Pick",
        "## Limitations",
        "Tu, Zhigang",
        "IEEE Transactions on Image Processing",
        'resolve_model("me/tiny")',
    ):
        assert expected in text, expected
    assert "Trained on synthetic clips only" in text
    write_model_card(folder, data="DarkActions-synth (synthetic) and real clips of people walking")
    text = ModelCard.load(folder / "README.md").text
    assert "This is partly synthetic data" in text and "Trained on synthetic clips only" not in text
    write_model_card(folder, data="ARID v1.5 split 1", limitations="Only daytime-darkened scenes.")
    text = ModelCard.load(folder / "README.md").text
    assert "synthetic" not in text and "Only daytime-darkened scenes." in text and "Not evaluated." in text


# ----------------------------------------------------------------------------------------- evaluate
def test_evaluate_metrics_are_consistent(tiny, dataset_dir, tmp_path):
    bad = tmp_path / "data"
    shutil.copytree(dataset_dir, bad)
    (bad / "Pick" / "broken.mp4").write_text("not a video")
    r = evaluate(tiny, bad, batch_size=4)
    conf = np.array(r["confusion"])
    assert r["n"] == 6 and r["skipped"] == 1 and conf.shape == (3, 3) and conf.sum() == 6
    assert conf.sum(1).tolist() == [2, 2, 2]
    assert r["top1"] == pytest.approx(np.trace(conf) / 6) and 0 <= r["top1"] <= r["top5"] <= 1
    assert r["top5"] == 1.0  # 3 classes: Top-5 is Top-3
    for i, name in enumerate(CLASSES):
        assert r["per_class"][name] == pytest.approx(conf[i, i] / 2)
    paths = write_report(r, tmp_path / "report")
    rows = paths["confusion_csv"].read_text().splitlines()
    assert rows[0].split(",")[1:] == list(CLASSES) and len(rows) == 4
    assert json.loads(paths["metrics"].read_text())["n"] == 6
    assert "plotly" in paths["confusion_html"].read_text()[:200000].lower()
    assert confusion_figure(r).data[0].type == "heatmap"


def test_evaluate_trained_model_and_class_checks(dataset_dir, tmp_path):
    from dtcm.data import build_dataset, collate_clips

    torch.manual_seed(0)
    model = create_model("dtcm_tiny_test", num_classes=3, class_names=CLASSES)
    train = build_dataset(dataset_dir, train=True, clip_len=8, crop=32, short_side=36, cache=True)
    batch = collate_clips([train[i] for i in range(len(train))])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(12):
        loss = torch.nn.functional.cross_entropy(model(batch["video"]), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m in model.modules():  # precise BatchNorm: running statistics of the whole (tiny) training set
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(batch["video"])
    model.eval()
    r = evaluate(model, dataset_dir)
    assert r["top1"] == 1.0 and all(v == 1.0 for v in r["per_class"].values())
    assert np.array_equal(np.array(r["confusion"]), 2 * np.eye(3, dtype=int))

    reordered = _label_map(("Drink", "Jump", "Pick"), ("Pick", "Drink", "Jump"), "x")
    assert reordered.tolist() == [1, 2, 0]
    other = tmp_path / "other"
    shutil.copytree(dataset_dir / "Drink", other / "Drink")
    shutil.copytree(dataset_dir / "Jump", other / "Wave")
    with pytest.raises(ValueError, match="not in the model: Wave; not in the data: Jump, Pick"):
        evaluate(model, other)


# --------------------------------------------------------------------------------- predict and CLIs
def test_predict(tiny, dataset_dir):
    clip = dataset_dir / "Jump" / "Jump_0.mp4"
    top = predict(tiny, clip)
    assert [name for name, _ in top] and len(top) == 3  # 3 classes: fewer than 5
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
    assert {name for name, _ in top} == set(CLASSES)
    assert len(predict(tiny, clip, k=1, topk=1)) == 1
    frames = np.full((5, 40, 48, 3), 20, np.uint8)  # shorter than clip_len: looped
    assert len(predict(tiny, frames)) == 3


def test_predict_and_evaluate_cli_json(model_dir, dataset_dir, tmp_path, capsys):
    clip = str(dataset_dir / "Drink" / "Drink_1.mp4")
    assert main(["predict", clip, "--model", str(model_dir), "--json", "--k", "2"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) == {"sure", "reason", "top5"} and isinstance(answer["sure"], bool)
    assert isinstance(answer["reason"], str) and answer["reason"]  # a sentence either way
    top = answer["top5"]
    assert len(top) == 3 and set(top[0]) == {"label", "prob"} and top[0]["label"] in CLASSES
    assert main(["predict", clip, "--model", str(model_dir)]) == 0
    assert capsys.readouterr().out.startswith("1. ")

    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model_dir), "--data", str(dataset_dir), "--json", "--out", str(out)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 6 and r["top5"] >= r["top1"]
    assert {p.name for p in out.iterdir()} == {"metrics.json", "confusion.csv", "confusion.html"}


def test_cli_bad_inputs_exit_2_with_one_line(model_dir, dataset_dir, tmp_path, capsys):
    clip = str(dataset_dir / "Drink" / "Drink_0.mp4")
    assert "no such clip" in _one_line_error(capsys, main(["predict", str(tmp_path / "none.mp4")]))
    assert "--k must be >= 1" in _one_line_error(capsys, main(["predict", clip, "--model", str(model_dir), "--k", "0"]))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    _one_line_error(capsys, main(["predict", str(not_video), "--model", str(model_dir)]))
    assert "no shipped weights" in _one_line_error(capsys, main(["predict", clip]))
    err = _one_line_error(capsys, main(["evaluate", "--model", str(model_dir), "--data", str(tmp_path / "none")]))
    assert "no such list or folder" in err
    _one_line_error(capsys, main(["evaluate", "--data", str(dataset_dir)]))  # required --model missing: argparse
    err = _one_line_error(capsys, main(["enhance", clip, str(tmp_path / "out.avi"), "--model", str(model_dir)]))
    assert ".mp4" in err


# ------------------------------------------------------------------------------------------ enhance
def test_enhance_matches_model_and_writes_h264(tiny, model_dir, tmp_path, capsys):
    from dtcm.enhance_cli import enhance_frames

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 60, (7, 30, 34, 3), dtype=np.uint8)
    out = enhance_frames(tiny, frames, k=3, estimate_size=None)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, T, H, W)
    with torch.inference_mode():
        y, _ = tiny.enhance(x, k=3)
    ref = (y[0].permute(1, 2, 3, 0) * 255).round().byte().numpy()  # (T, H, W, 3)
    assert out.shape == frames.shape and np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    small = enhance_frames(tiny, frames, k=3, estimate_size=16)
    assert small.shape == frames.shape and small.dtype == np.uint8

    src = tmp_path / "dark.mp4"
    write_video(src, np.full((6, 40, 54, 3), 12, np.uint8), fps=12)
    dst = tmp_path / "bright.mp4"
    assert main(["enhance", str(src), str(dst), "--model", str(model_dir), "--k", "2", "--estimate-size", "0"]) == 0
    assert "wrote" in capsys.readouterr().out
    with av.open(str(dst)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height, s.codec_context.pix_fmt) == ("h264", 54, 40, "yuv420p")
        assert sum(1 for _ in c.decode(video=0)) == 6
