"""The Gradio app end to end: ``python app.py`` served in a subprocess, driven with ``gradio_client``.

The server gets a temporary weights folder: the shipped variants (``weights/index.json``, fast CPU
models) when they exist, else a tiny untrained model, so saving a fine-tune never touches the repo.
``serve_app`` is shared with ``test_browser_gradio.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from servers import free_port, stop  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
EXAMPLES = sorted((ROOT / "examples").glob("*.mp4"))
START_TIMEOUT_S = 120
FIXTURE_VARIANT = "tiny"  # the untrained stand-in served when no weights index exists
WEIGHTS_ENV = "DTCM_APP_TEST_WEIGHTS"  # serve this weights folder's index instead of weights/ (e.g. for screenshots)


# ------------------------------------------------------------------------------------------ helpers
def make_weights_dir(folder: Path) -> tuple[Path, str]:
    """A weights folder for the server: the shipped index (or ``$DTCM_APP_TEST_WEIGHTS``'s) with absolute
    paths, else a tiny model.

    Returns:
        (the folder, the default variant's name).
    """
    folder.mkdir(parents=True, exist_ok=True)
    shipped = Path(os.environ.get(WEIGHTS_ENV) or ROOT / "weights") / "index.json"
    if shipped.is_file():
        index = json.loads(shipped.read_text())
        for entry in index["models"].values():
            p = Path(entry["path"])
            if not p.is_absolute():
                p = next((b / p for b in (shipped.parent, ROOT) if (b / p).is_dir()), shipped.parent / p)
            entry["path"] = str(p.resolve())
        default = index.get("default") or next(iter(index["models"]))
    else:
        import dtcm

        # short side 64, not the tiny default 36: decord can hang on 320x240 H.264 scaled to 48x36
        dtcm.create_model("dtcm_tiny_test", short_side=64).save_pretrained(folder / FIXTURE_VARIANT)
        entry = {
            "path": FIXTURE_VARIANT,
            "description": "tiny untrained test model",
            "w_stc": 4.0,
            "k": 4,
            "metrics": {},
        }
        index = {"default": FIXTURE_VARIANT, "models": {FIXTURE_VARIANT: entry, "tiny_w0": {**entry, "w_stc": 0.0}}}
        default = FIXTURE_VARIANT
    (folder / "index.json").write_text(json.dumps(index, indent=2))
    return folder, default


@contextlib.contextmanager
def serve_app(tmp: Path):
    """Run ``python app.py`` on a free port with a temporary weights folder; yields (url, default variant)."""
    weights, default = make_weights_dir(tmp / "weights")
    port = free_port()
    env = dict(
        os.environ,
        DTCM_WEIGHTS_DIR=str(weights),
        DTCM_CACHE=str(tmp / "cache"),
        DTCM_RUNS_DIR=str(tmp / "runs"),
        DTCM_DATA_ROOT=str(tmp / "data"),
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
        OMP_NUM_THREADS="1",
    )
    log = open(tmp / "app.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, str(APP)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{(tmp / 'app.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "gradio_api/info", timeout=2).read()
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"app.py did not serve within {START_TIMEOUT_S} s:\n{(tmp / 'app.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url, default
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    with serve_app(tmp) as (url, default):
        yield url, default, tmp


@pytest.fixture(scope="module")
def client(server):
    return Client(server[0], verbose=False)


def _analyse(client, variant, clip=None, k=4):
    return client.predict(handle_file(str(clip or EXAMPLES[0])), variant, k, api_name="/analyse")


# ------------------------------------------------------------------------------------------- tests
def test_app_imports_no_torch():
    source = APP.read_text()
    assert not re.search(r"^\s*(import torch|from torch)", source, flags=re.M), "app.py must not import torch"


def test_examples_are_small_h264_clips():
    import av

    assert len(EXAMPLES) >= 4, "examples/ needs several clips (run scripts/make_examples.py)"
    assert sum(p.stat().st_size for p in EXAMPLES) < 1 << 20
    classes = {"drink", "jump", "pick", "pour", "push", "run", "sit", "stand", "turn", "walk", "wave"}
    assert all(p.stem.removeprefix("dark_") in classes for p in EXAMPLES)  # only the project's own renders
    for p in EXAMPLES:
        with av.open(str(p)) as c:
            stream = c.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p"), p.name


def test_analyse_returns_top5(client, server):
    out = _analyse(client, server[1])
    darkness, model, _, plot, stc, *galleries, slider, verdict, timings, result = out
    assert verdict.startswith("**Not sure") or verdict.startswith(f"**Recognised: {result['top5'][0]['label']}")
    assert re.match(r"(Dark|Dim|Lit): mean brightness \d+ of 255", darkness) and server[1] in model
    assert len(result["top5"]) == 5
    probs = [t["prob"] for t in result["top5"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert plot["type"] == "plotly" and result["top5"][0]["label"] in plot["plot"]
    assert np.isfinite(stc) and result["variant"] == server[1] and result["k"] == 4
    assert all(len(g) >= 2 and Path(g[0]["image"]).is_file() for g in galleries)
    from PIL import Image

    before, after = (Image.open(p) for p in slider)  # the full-size pair: the clip's own size
    assert before.size == after.size == (result["info"]["width"], result["info"]["height"])
    assert {"decode", "enhance", "classify", "total"} <= {row[0] for row in timings["data"]}


def test_enhance_returns_browser_playable_mp4(client, server):
    import av

    path, note = client.predict(handle_file(str(EXAMPLES[0])), server[1], 4, api_name="/enhance")
    assert "Enhanced" in note
    with av.open(path) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    with av.open(str(EXAMPLES[0])) as c:
        source = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    assert len(frames) == len(source) and frames[0].shape == source[0].shape
    h, w = source[0].shape[:2]
    assert f"all {len(source)} frames at the clip's own size, {w}x{h}" in note  # says exactly what it made


def test_long_clip_timeline_and_a_chosen_segment(client, server, tmp_path):
    from dtcm import video

    rng = np.random.default_rng(5)
    clip = tmp_path / "long.mp4"
    video.write_video(clip, rng.integers(0, 25, (200, 96, 128, 3)).astype(np.uint8), 10)  # 20 s
    text = _analyse(client, server[1], clip=clip)[2]
    assert re.search(r"\d+ frames, \d+-\d+ of 200 \(\d+\.\d-\d+\.\d s of 20\.0 s\)", text), text
    figure, note = client.predict(handle_file(str(clip)), server[1], 4, api_name="/timeline")
    assert figure["type"] == "plotly" and "windows of" in note and "over 20.0 s" in note
    out = client.predict(handle_file(str(clip)), server[1], 4, 15.0, api_name="/analyse_segment")
    assert out[-1]["window"]["start_s"] == pytest.approx(15.0) and "(15.0-" in out[2]
    with pytest.raises(AppError, match="segment start must be from 0 to"):
        client.predict(handle_file(str(clip)), server[1], 4, 99.0, api_name="/analyse_segment")
    path, note = client.predict(handle_file(str(clip)), server[1], 4, 15.0, api_name="/enhance_segment")
    assert "frames 151-200 of 200 (15.0-20.0 s of 20.0 s)" in note and Path(path).is_file()


def test_eight_concurrent_requests_all_succeed(client, server):
    jobs = [handle_file(str(EXAMPLES[i % len(EXAMPLES)])) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda clip: client.predict(clip, server[1], 4, api_name="/analyse"), jobs))
    assert all(len(r[-1]["top5"]) == 5 for r in results)


@pytest.mark.parametrize("k", [0, 17, 2.5])
def test_out_of_range_k_is_refused_clearly(client, server, k):
    with pytest.raises(AppError) as err:
        _analyse(client, server[1], k=k)
    message = str(err.value)
    assert re.search(r"\b(16|1)\b", message) and "Traceback" not in message, message


def test_garbage_upload_is_refused_and_the_next_request_succeeds(client, server, tmp_path):
    garbage = tmp_path / "holiday.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes())
    with pytest.raises(AppError) as err:
        _analyse(client, server[1], clip=garbage)
    message = str(err.value)
    assert "holiday.mp4" in message and "upload" in message and "Traceback" not in message, message
    assert len(_analyse(client, server[1])[-1]["top5"]) == 5


def test_wrong_file_type_and_unknown_variant_are_refused(client, server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(AppError, match="not a video file"):
        _analyse(client, server[1], clip=text)
    with pytest.raises(AppError, match="unknown model variant 'nope'"):
        _analyse(client, "nope")


def test_compare_gives_each_enhancer_its_row(client, server):
    methods = ["none", "he", "clahe", "dtcm"]
    frames, diffs, light, plot, table, result = client.predict(
        handle_file(str(EXAMPLES[-1])), methods, server[1], 4, api_name="/compare"
    )
    assert [row[0] for row in table["data"]] == ["None (input)", "HE (histogram eq.)", "CLAHE", "DTCM"]
    assert set(result) == {*methods, "input"} and all(len(result[m]["top5"]) == 5 for m in methods)
    assert light == f"The input is {result['input']['verdict']}."  # Recognise's sentence
    assert result["none"]["stc"] == pytest.approx(0.0, abs=1e-9)  # the input against itself
    assert len(frames) == 4 * len(methods) and frames[0]["caption"] == "input"
    assert plot["type"] == "plotly"
    with pytest.raises(AppError, match="at least one enhancer"):
        client.predict(handle_file(str(EXAMPLES[0])), [], server[1], 4, api_name="/compare")


def _wait_for(client, states, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.predict(api_name="/finetune_status")[2]
        if status["state"] in states:
            return status
        time.sleep(1.0)
    pytest.fail(f"the fine-tune did not reach {states} in {timeout} s; last status: {status}")


def test_finetune_on_an_uploaded_zip_then_recognise_save(client, server, tmp_path):
    archive = tmp_path / "my_clips.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in EXAMPLES:
            zf.write(p, f"my_clips/{p.stem.split('_')[-1].title()}/{p.name}")
    update = client.predict(handle_file(str(archive)), api_name="/dataset_upload")  # the dropdown, updated
    dataset = update["value"]
    assert dataset.startswith("upload:") and dataset.endswith("/my_clips")  # a name, no server path (issue 21)
    assert update["choices"][-1][1] == dataset

    status = client.predict(api_name="/finetune_status")[2]
    assert status["state"] == "idle"
    client.predict(dataset, "resnet_tiny_test", 0.1, 4, 4, 1, 1e-4, 2, "auto", 2, api_name="/finetune_start")
    status = _wait_for(client, ("finished", "stopped", "failed"))
    assert status["state"] == "finished", status["message"]
    text = client.predict(api_name="/finetune_status")[0]
    assert re.search(r"validation after epoch \d+: Top-1 \d+%", text), text  # a score at the end
    assert "Trained from fresh weights, so there is no start model to compare with" in text  # another backbone
    assert status["steps_logged"] >= 1 and {"ar", "stc", "dark", "total", "acc"} <= set(status["last"])
    variant = status["variant"]

    result = _analyse(client, variant)[-1]  # the fine-tune is selectable at once
    assert result["variant"] == variant and len(result["top5"]) == 5

    saved_to, *dropdowns = client.predict("ft-test", api_name="/finetune_save")
    assert all("ft-test" in [c[1] for c in d["choices"]] for d in dropdowns)  # every dropdown offers it at once
    assert saved_to == "ft-test" and (server[2] / "cache" / "saved" / "ft-test" / "config.json").is_file()
    assert not (server[2] / "weights" / "ft-test").exists()  # saves never go into the shipped weights/ (issue 21)
    with pytest.raises(AppError, match="already exists"):
        client.predict("ft-test", api_name="/finetune_save")
    with pytest.raises(AppError, match="owner/name"):
        client.predict("not a repo id", "", api_name="/finetune_push")


def test_a_photo_is_enhanced_and_recognition_is_said_to_need_a_clip(client, server, tmp_path):
    import cv2
    from PIL import Image

    photo = tmp_path / "night.png"
    rng = np.random.default_rng(9)
    cv2.imwrite(str(photo), rng.integers(0, 25, (120, 160, 3), dtype=np.uint8))
    (before, after), note = client.predict(handle_file(str(photo)), server[1], api_name="/enhance_photo")
    with Image.open(before) as b, Image.open(after) as a:
        assert b.size == a.size == (160, 120)
        assert np.asarray(a).mean() > np.asarray(b).mean()  # a dark photo comes out brighter
    assert "Recognition needs a clip" in note
