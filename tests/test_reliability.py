"""Issue 12, "safe to put on the public internet", library side: each test names the item it covers."""

from __future__ import annotations

import json
import os
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


def _tiny_video(path, side: int):
    """A 5-frame side x side H.264 video (yuv444p, so odd sizes are possible)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = side
        s.pix_fmt = "yuv444p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((side, side, 3), 40 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good = _noise_video(root / "good.mp4")
    return {
        "good": good,
        "partly": _damage_tail(good, root / "partly.mp4", keep=0.3),  # about 16 of 60 frames decode
        "mostly": _damage_tail(good, root / "mostly.mp4", keep=0.97),  # all but the last frame or two
        "2x2": _tiny_video(root / "two.mp4", 2),
        "1x1": _tiny_video(root / "one.mp4", 1),
        "15x15": _tiny_video(root / "fifteen.mp4", 15),
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
