"""The Streamlit UI (``streamlit_app.py`` + ``pages/``) driven headless through ``streamlit.testing``.

Tests of wiring and formatting (the sidebar, the example picker, the comparison's layout, how an error is
shown) run over the light stand-in of the service (``tests/fakes``, the ``fake`` fixture). The end-to-end
ones run against the real service with the shipped weights when ``weights/index.json`` exists, else a tiny
model; the fine-tune test always uses a tiny model so it stays fast and writes nothing into the repository.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import fakes
import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")
UI_FILES = [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]
TIMEOUT = 120  # seconds one script run may take (first model load on a busy 2-core machine)


def make_weights(folder: Path) -> Path:
    """A weights folder with a tiny model listed twice, as W_STC 4 (default) and W_STC 0."""
    import dtcm

    dtcm.create_model("dtcm_tiny_test").save_pretrained(folder / "tiny")
    entry = {"path": "tiny", "k": 4, "metrics": {"top1": 0.5}}
    index = {
        "default": "tiny",
        "models": {
            "tiny": {**entry, "description": "tiny test model, W_STC 4", "w_stc": 4.0},
            "tiny_wstc0": {**entry, "description": "tiny test model, W_STC 0", "w_stc": 0.0},
        },
    }
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def make_clip(path: Path, seed: int = 0) -> Path:
    """A dark, random-ish 24-frame 160x120 H.264 clip: a noisy blob drifting over a dim gradient."""
    from dtcm import video

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:120, 0:160]
    frames = []
    for t in range(24):
        blob = 25 * np.exp(-((xx - 30 - 4 * t) ** 2 + (yy - 60) ** 2) / 300.0)
        base = 6 + 8 * xx / 160 + blob + rng.normal(0, 2, (120, 160))
        frame = np.stack([base * 0.9, base, base * 1.2], axis=-1)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    video.write_video(path, np.stack(frames), 12)
    return path


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "dark_clip.mp4")


@pytest.fixture
def weights(tiny_weights, monkeypatch) -> Path:
    """The shipped weights when they exist, else the tiny model."""
    if (ROOT / "weights" / "index.json").is_file():
        monkeypatch.delenv("DTCM_WEIGHTS_DIR", raising=False)
        return ROOT / "weights"
    monkeypatch.setenv("DTCM_WEIGHTS_DIR", str(tiny_weights))
    return tiny_weights


@pytest.fixture
def fake():
    """The UI over the fake service (no model): its two variants are "tiny" (W_STC 4) and "tiny_wstc0"."""
    with fakes.installed() as service:
        yield service


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def upload(at: AppTest, path: Path, name: str | None = None) -> AppTest:
    at.file_uploader[0].set_value((name or path.name, path.read_bytes(), "video/mp4"))
    return at.run()


def elements(at: AppTest, kind: str) -> list:
    return list(at.get(kind))


# ------------------------------------------------------------------------------------------- tests
def test_ui_imports_no_torch():
    pattern = re.compile(r"^\s*(import torch|from torch)\b", re.MULTILINE)
    assert len(UI_FILES) == 4
    for f in UI_FILES:
        assert not pattern.search(f.read_text()), f"{f.name} imports torch; the UI must go through dtcm.service"


def test_home_and_sidebar_snap_to_trained_wstc(fake):
    at = open_page()
    assert at.title[0].value == "DTCM Studio"
    assert at.session_state["variant"] == "tiny"
    assert {m.label for m in at.metric} >= {"Backbone", "W_STC", "k (trained)"}
    slider = at.sidebar.select_slider[0]
    assert list(slider.options) == ["0.0", "4.0"] and slider.value == 4.0
    at.sidebar.slider[0].set_value(9).run()
    slider.set_value(0.0).run()
    assert at.session_state["variant"] == "tiny_wstc0"
    assert at.session_state["k"] == 9  # choosing W_STC keeps the visitor's k
    at.sidebar.selectbox[0].select("tiny").run()
    assert at.session_state["w_stc"] == 4.0
    assert not at.exception and not at.error


def test_recognise_upload_shows_results(weights, clip):
    at = open_page("pages/1_Recognise.py")
    assert at.info  # the invitation to upload
    upload(at, clip)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert float(labels["Brightness"].split()[0]) < 112
    assert labels["Light"] in ("dark", "dim", "lit")  # the clip's light, not a verdict on the action
    assert {"Top-1 action", "Flicker (L_STC)"} <= set(labels)
    from dtcm import service

    shown = len(at.image) - bool(service.example_previews())  # less the examples' previews (one element)
    assert shown == 6  # the full-size pair, frames before/after, difference maps before/after
    assert elements(at, "plotly_chart")
    assert "total" in list(at.table[0].value["stage"])  # the timings table
    assert elements(at, "video"), "the enhanced clip is not shown"
    assert elements(at, "download_button")
    # a rerun with the same input comes from the session, not the model
    t = time.perf_counter()
    at.run()
    assert time.perf_counter() - t < 5 and not at.error


def test_recognise_picks_an_example(fake):
    at = open_page("pages/1_Recognise.py")
    picker = at.selectbox(key="recognise_example")
    examples = [p for p in picker.options if p != "(none)"]
    if not examples:
        pytest.skip("no clips in examples/")
    picker.select_index(1).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Light" in {m.label for m in at.metric} and "Verdict" not in {m.label for m in at.metric}


@pytest.mark.parametrize(("dv", "word"), [(-0.92, "dark"), (-0.4, "dim"), (0.1, "lit")])
def test_recognise_and_compare_tell_one_darkness_story(fake, clip, dv, word):
    fake.DV[:] = [dv]
    at = open_page("pages/1_Recognise.py")
    upload(at, clip)
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert labels["Light"] == word and labels["Brightness"] == f"{112 * (1 + dv):.0f} of 255"
    text = " ".join([c.value for c in at.caption] + [i.value for i in at.info])
    assert f"{word.capitalize()}: mean brightness {112 * (1 + dv):.0f} of 255" in text
    assert "not ARID-dark" not in text and "the clip is dark" not in text
    if word == "lit":
        assert "Already bright enough: enhanced lightly" in text

    at = open_page("pages/2_Compare.py")
    upload(at, clip)
    assert not at.exception and not at.error, [e.value for e in at.error]
    light = f"**The input is {word}: mean brightness {112 * (1 + dv):.0f} of 255"
    assert any(m.value.startswith(light) for m in at.markdown)  # Recognise's words for the same clip


def test_compare_applies_recognises_not_sure_rule(fake, clip):
    at = open_page("pages/2_Compare.py")
    upload(at, clip)
    assert not at.exception, at.exception
    said = [m.value for m in at.markdown if m.value.startswith("Brightness")]
    assert "Top-1 **not sure (best guess Drink, 50%)**" in said[0]  # the fake's first enhancer is not sure
    assert all("not sure" not in s for s in said[1:])
    rows = at.dataframe[0].value
    assert rows["top-1"][0] == "not sure (best guess Drink, 50%)"


def test_recognise_garbage_is_an_error_not_a_traceback(fake, tmp_path):
    garbage = tmp_path / "holiday.mp4"
    garbage.write_bytes(b"this is not a video\n" * 200)
    at = open_page("pages/1_Recognise.py")
    upload(at, garbage)
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "holiday.mp4" in message and "Traceback" not in message
    assert not at.metric and not elements(at, "plotly_chart")


def test_compare_shows_every_method(fake, clip):
    at = open_page("pages/2_Compare.py")
    upload(at, clip)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    headers = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert len(headers) == 7
    assert elements(at, "plotly_chart")  # Top-5 of every method that has weights
    assert len(at.dataframe) == 1  # the summary table
    at.multiselect(key="compare_methods").set_value(["none", "he"]).run()
    assert len([m for m in at.markdown if m.value.startswith("#### ")]) == 2


def test_finetune_starts_and_stops_a_two_step_job(tiny_weights, tmp_path, monkeypatch):
    from dtcm import service, video

    monkeypatch.setenv("DTCM_WEIGHTS_DIR", str(tiny_weights))
    for var, sub in (("DTCM_DATA_ROOT", "data"), ("DTCM_CACHE", "cache"), ("DTCM_RUNS_DIR", "runs")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    rng = np.random.default_rng(1)
    for label in ("Drink", "Jump"):
        (tmp_path / "data" / "tiny" / label).mkdir(parents=True)
        for i in range(2):
            frames = rng.integers(0, 40, (16, 48, 64, 3)).astype(np.uint8)
            video.write_video(tmp_path / "data" / "tiny" / label / f"{label}_{i}.mp4", frames, 12)

    at = open_page("pages/3_Fine-tune.py")
    at.selectbox(key="ft_dataset").select("tiny (server folder)")
    at.selectbox(key="ft_backbone").select("resnet_tiny_test")
    at.number_input(key="ft_batch").set_value(2)
    at.number_input(key="ft_max_steps").set_value(2)
    at.run()
    buttons = {b.label: b for b in at.button}
    start, stop = buttons["Start"], buttons["Stop"]
    assert stop.disabled and buttons["Resume"].disabled  # nothing to stop or resume yet
    start.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    key = at.session_state["ft_owner"]  # the job belongs to this visitor's key
    assert at.query_params["job"] == key  # kept in the address, so a reload still owns the job
    assert service.finetune_status(key)["settings"]["max_steps"] == 2
    buttons = {b.label: b for b in at.button}
    assert buttons["Start"].disabled and not buttons["Stop"].disabled
    buttons["Stop"].click().run()
    assert not at.exception

    deadline = time.monotonic() + 120
    while service.finetune_status(key)["state"] in ("queued", "preparing", "running", "stopping"):
        assert time.monotonic() < deadline, "the fine-tune did not stop"
        time.sleep(0.2)
    status = service.finetune_status(key)
    assert status["state"] in ("stopped", "finished"), status["message"]

    # the session shows the finished job and offers to keep it
    at.run()
    assert not at.exception and not at.error
    assert any(status["state"].capitalize() in m.value for m in at.markdown)
    labels = [b.label for b in at.button]
    assert "Save on this server" in labels and "Push to the Hub" in labels
    assert status["variant"] in at.sidebar.selectbox[0].options

    # a fresh session at the same address from another browser (the test app sends no cookie) gets a key of
    # its own: the address alone is no bearer token, and the job and its model stay the first visitor's
    other = AppTest.from_file(APP, default_timeout=TIMEOUT)
    other.query_params["job"] = key
    other.run()
    other.switch_page("pages/3_Fine-tune.py").run()
    assert not other.exception and not other.error
    assert other.session_state["ft_owner"] != key and other.query_params["job"] != key
    assert "Save on this server" not in [b.label for b in other.button]
    assert status["variant"] not in other.sidebar.selectbox[0].options

    # another visitor (no key) sees neither the job nor a way to save, push or stop it
    other = open_page("pages/3_Fine-tune.py")
    labels = [b.label for b in other.button]
    assert "Save on this server" not in labels and "Push to the Hub" not in labels
    assert service.finetune_status(other.session_state["ft_owner"])["state"] == "idle"


def test_streamlit_telemetry_is_off():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False


def test_recognise_states_the_frames_the_label_set_and_draws_a_timeline(tiny_weights, monkeypatch, tmp_path):
    from dtcm import video

    monkeypatch.setenv("DTCM_WEIGHTS_DIR", str(tiny_weights))
    rng = np.random.default_rng(6)
    clip = tmp_path / "long.mp4"
    video.write_video(clip, rng.integers(0, 25, (120, 96, 128, 3)).astype(np.uint8), 10)
    at = open_page("pages/1_Recognise.py")
    upload(at, clip)
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = " ".join(c.value for c in at.caption)
    assert re.search(r"recognised from \d+ frames, \d+-\d+ of 120", captions), captions
    assert "The model knows 11 actions: Drink" in captions
    assert re.search(r"Enhanced all 120 frames at the clip's own size, 128x96", captions), captions
    next(b for b in at.button if b.label == "Recognise every part of the clip").click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2  # the Top-5 and the timeline
    at.number_input(key="recognise_start").set_value(5.0).run()
    assert not at.exception and not at.error
    assert at.session_state["analysis"]["value"]["window"]["start_s"] == pytest.approx(5.0)
    assert at.session_state["enhanced"]["value"]["first"] == 51  # enhanced from the segment on
    assert "frames 51-120 of 120" in " ".join(c.value for c in at.caption)


def test_recognise_enhances_a_photo_and_says_recognition_needs_a_clip(tiny_weights, monkeypatch, tmp_path):
    import cv2

    monkeypatch.setenv("DTCM_WEIGHTS_DIR", str(tiny_weights))
    photo = tmp_path / "night.png"
    cv2.imwrite(str(photo), np.random.default_rng(9).integers(0, 25, (120, 160, 3), dtype=np.uint8))
    at = open_page("pages/1_Recognise.py")
    uploader = next(u for u in at.get("file_uploader") if u.label == "Photo")
    uploader.set_value(("night.png", photo.read_bytes(), "image/png")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Recognition needs a clip" in i.value for i in at.info)
