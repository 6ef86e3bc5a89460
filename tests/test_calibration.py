"""Honest confidence: the calibration math on hand-made logits, the config fields, and the "not sure" path
through the service, the CLI and both UIs."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dtcm import service, video  # noqa: E402
from dtcm.calibration import (  # noqa: E402
    calibrate_logits,
    ece,
    ece_floor,
    energy,
    fit_temperature,
    measure,
    min_energy_for,
    not_sure_below_for,
    softmax,
    verdict,
    write_calibration,
)
from dtcm.cli import main  # noqa: E402
from dtcm.config import DTCMConfig  # noqa: E402
from dtcm.model import create_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- math
def test_temperature_of_a_two_class_set_is_exact():
    # every clip has logits (2, 0) and 3 of 4 are class 0: the NLL is least where sigmoid(2 / T) = 3/4
    assert fit_temperature([[2.0, 0.0]] * 4, [0, 0, 0, 1]) == pytest.approx(2 / math.log(3), rel=1e-6)
    # all right: the sharper the better, up to the search's bound
    assert fit_temperature([[2.0, 0.0]] * 3, [0, 0, 0], bounds=(0.1, 10)) == pytest.approx(0.1, rel=1e-6)


def test_temperature_recovers_the_one_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 5))
    p = softmax(logits, 2.5)
    labels = (rng.random((len(p), 1)) > p.cumsum(1)).sum(1)  # one draw from each row's distribution
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.03)
    assert ece(softmax(logits, 2.5), labels) < 0.02 < ece(softmax(logits), labels)


def test_temperature_is_fitted_on_the_synthetic_clips_not_pulled_by_confident_real_mistakes():
    rng = np.random.default_rng(1)

    def drawn(n, t):  # logits whose labels follow softmax(logits / t)
        logits = rng.normal(0, 3, (n, 5))
        labels = (rng.random((n, 1)) > softmax(logits, t).cumsum(1)).sum(1)
        return {"logits": logits, "labels": labels}

    real = drawn(60, 1.0)
    real["logits"][:6] = [20.0, 0, 0, 0, 0]  # six clips of an unseen place, called class 0 at p ~ 1
    real["labels"][:6] = 1
    sets = {"synthetic": drawn(1000, 1.2), "filmed": real, "seed13": drawn(1000, 1.2)}
    r = calibrate_logits(sets, ("filmed",))
    assert r["temperature"] == pytest.approx(1.2, rel=0.1)
    assert r["fitted_on"] == "synthetic" and set(r["sets"]) == {"synthetic", "filmed", "seed13", "real"}
    both = [np.concatenate([sets["synthetic"][k], real[k]]) for k in ("logits", "labels")]
    assert fit_temperature(*both) > 1.3  # what fitting on both would have done
    after = r["sets"]["seed13"]["after"]
    assert after["ece"] < 0.08 and 0 < after["ece_floor"] < 0.08  # a set only measured, with the fitted T
    assert r["sets"]["real"]["before"]["n"] == 60
    with pytest.raises(ValueError, match="need a 'synthetic' set"):
        calibrate_logits({"filmed": real}, ("filmed",))


def test_ece_floor_is_the_sampling_error_of_a_calibrated_model():
    p = softmax(np.random.default_rng(2).normal(0, 2, (60, 4)))
    floor = ece_floor(p)
    assert 0.05 < floor < 0.2  # sixty clips cannot show an ECE much below this
    assert ece_floor(np.repeat(p, 50, axis=0)) < floor / 4  # 3000 clips can
    assert ece_floor([[1.0, 0.0]] * 10) == 0.0


def test_ece_by_hand():
    assert ece([[0.9, 0.1], [0.9, 0.1]], [0, 1]) == pytest.approx(0.4)  # confidence 0.9, accuracy 0.5
    assert ece([[0.75, 0.25]] * 4, [0, 0, 0, 1]) == pytest.approx(0.0)  # calibrated
    # two bins: 0.55 (one right of one) and 1.0 (the top bin; one wrong of one)
    assert ece([[0.55, 0.45], [1.0, 0.0]], [0, 1], bins=15) == pytest.approx(0.5 * 0.45 + 0.5 * 1.0)
    with pytest.raises(ValueError, match="labels must be class indices in 0..1"):
        ece([[0.5, 0.5]], [2])


def test_energy_and_thresholds_by_hand():
    assert energy([[0.0, 0.0], [1000.0, 0.0]]) == pytest.approx([math.log(2), 1000.0])
    assert min_energy_for(np.arange(101.0)[:, None], share=0.95) == pytest.approx(5.0)  # one class: energy = logit
    # 0.3 is wrong: keeping it makes 1 in 3 wrong, so the answers start at 0.6
    assert not_sure_below_for([0.95, 0.6, 0.3], [True, True, False]) == 0.6
    assert not_sure_below_for([0.95, 0.6, 0.3], [False, True, True]) > 0.95  # a wrong confident answer: none left
    assert not_sure_below_for([0.95, 0.6, 0.3], [True, False, False], every_answer=False) == 0.0


def test_measure_counts_wrong_confident_answers():
    logits = np.log([[0.95, 0.05], [0.92, 0.08], [0.6, 0.4]])
    m = measure(logits, [0, 1, 1])
    assert (m["top1"], m["confident"], m["wrong_confident"], m["not_sure"]) == (pytest.approx(1 / 3), 2, 0.5, 0.0)
    m = measure(logits, [0, 1, 1], not_sure_below=0.93)
    assert (m["confident"], m["wrong_confident"], m["not_sure"]) == (1, 0.0, pytest.approx(2 / 3))
    assert m["answered_top1"] == 1.0  # the one answer left is right
    assert measure(logits, [0, 1, 1], not_sure_below=0.99)["answered_top1"] is None


# ------------------------------------------------------------------------------------------ config
def test_calibration_fields_round_trip_and_old_configs_load(tmp_path):
    cfg = DTCMConfig(temperature=4.5, not_sure_below=0.7, min_energy=2.5)
    assert DTCMConfig.from_json(cfg.to_json()) == cfg
    old = json.loads(DTCMConfig().to_json())
    for name in ("temperature", "not_sure_below", "min_energy"):
        old.pop(name)
    loaded = DTCMConfig.from_dict(old)
    assert (loaded.temperature, loaded.not_sure_below, loaded.min_energy) == (1.0, 0.0, None)
    with pytest.raises(ValueError, match="temperature must be a finite number above 0, got 0"):
        DTCMConfig(temperature=0)
    with pytest.raises(ValueError, match="not_sure_below must be a finite number at least 0 and at most 1, got 1.5"):
        DTCMConfig(not_sure_below=1.5)
    assert cfg.uncalibrated() == DTCMConfig()  # what a fine-tune of a calibrated model starts from
    for folder in sorted((ROOT / "weights").glob("dtcm-*")):
        DTCMConfig.load(folder / "config.json")  # the shipped ones, calibrated or not


def test_write_calibration_changes_only_probabilities(tmp_path):
    import torch

    torch.manual_seed(0)
    model = create_model("dtcm_tiny_test").eval()
    model.save_pretrained(tmp_path)
    write_calibration(tmp_path, 3.0, 0.5, 1.25)
    again = type(model).from_pretrained(str(tmp_path)).eval()
    assert (again.config.temperature, again.config.not_sure_below, again.config.min_energy) == (3.0, 0.5, 1.25)
    assert again.config.replace(temperature=1.0, not_sure_below=0.0, min_energy=None) == model.config
    x = torch.rand(1, 3, 4, 32, 32) * 0.2
    with torch.inference_mode():
        assert torch.equal(model(x), again(x))  # the logits do not change


def test_verdict_reasons():
    cfg = DTCMConfig(num_classes=2, class_names=("Walk", "Sit"), temperature=2.0, not_sure_below=0.7, min_energy=1.0)
    sure = verdict([4.0, 0.0], cfg)  # softmax([2, 0]) = 0.88
    assert sure["sure"] and sure["top"] == ("Walk", pytest.approx(0.8808, abs=1e-4))
    low = verdict([1.0, 0.0], cfg)  # 0.62 < 0.7
    assert not low["sure"] and "Walk, has only 62% probability" in low["reason"]
    odd = verdict([-3.0, -3.0], cfg)  # energy -3 + ln 2 < 1
    assert not odd["sure"] and "looks unlike the clips the model was trained on" in odd["reason"]


# -------------------------------------------------------------------- the not-sure path end to end
@pytest.fixture(scope="module")
def unsure_weights(tmp_path_factory):
    """A tiny model whose threshold (p >= 1) it cannot reach, as the default variant."""
    root = tmp_path_factory.mktemp("weights")
    create_model("dtcm_tiny_test", not_sure_below=1.0, temperature=2.0).save_pretrained(root / "unsure")
    entry = {"path": "unsure", "description": "tiny, never sure", "w_stc": 4.0, "k": 4, "metrics": {}}
    (root / "index.json").write_text(json.dumps({"default": "unsure", "models": {"unsure": entry}}))
    return root


@pytest.fixture
def unsure(unsure_weights, monkeypatch):
    monkeypatch.setenv("DTCM_WEIGHTS_DIR", str(unsure_weights))
    service.models._cache.clear()
    yield unsure_weights
    service.models._cache.clear()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 20, (24, 48, 64, 3)).astype(np.uint8)
    return str(video.write_video(tmp_path_factory.mktemp("clip") / "dark.mp4", frames, 10))


def test_analyse_says_not_sure_and_keeps_the_guesses(unsure, clip):
    r = service.analyse(clip, k=4)
    assert r["verdict"]["sure"] is False and "below 100%" in r["verdict"]["reason"]
    assert len(r["top5"]) == 5 and r["top5"][0][0] == r["verdict"]["top"][0]
    assert r["top5"][0][1] == pytest.approx(r["verdict"]["top"][1], abs=1e-6)  # both at temperature 2
    assert service.not_sure_sentence(r["verdict"]).startswith("Not sure what this is: the best guess")


def test_predict_cli_prints_not_sure_then_guesses(unsure, clip, capsys):
    assert main(["predict", clip, "--model", str(unsure / "unsure")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("not sure: the best guess") and lines[1] == "guesses:"
    assert [line.split(".")[0] for line in lines[2:]] == ["1", "2", "3", "4", "5"]


def test_gradio_handler_says_not_sure_above_the_chart(unsure, clip):
    pytest.importorskip("gradio")
    import app

    out = app.analyse(clip, "unsure", 4)  # {component: value}
    plot, verdict, result = out[app.rec.top5], out[app.rec.verdict], out[app.rec.result_json]
    assert verdict.strip("*").startswith("Not sure what this is:")  # in plain words, above the chart
    assert plot.layout.title.text == "Its guesses, not an answer"
    assert result["verdict"]["sure"] is False


def test_streamlit_recognise_says_not_sure(unsure, clip):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/1_Recognise.py").run()
    at.file_uploader[0].set_value(("dark.mp4", Path(clip).read_bytes(), "video/mp4"))
    at.run()
    assert not at.exception, at.exception
    assert any(w.value.startswith("Not sure what this is:") for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Top-1 action"] == "not sure"


def test_real_val_holdout_list_matches_the_rule(shared_data):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_real_val", ROOT / "scripts" / "build_real_val.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    listed = [ln for ln in build.HOLDOUT_LIST.read_text().splitlines() if ln and not ln.startswith("#")]
    assert listed == build.holdout(shared_data)
    assert all((shared_data / "actions_train" / f).is_file() for f in listed)


def test_real_train_builder_leaves_the_holdout_out(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_real_train", ROOT / "scripts" / "build_real_train.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for rel in ("Walk/w1.mp4", "Walk/w2.mp4", "Walk/w10.mp4", "Sit/s1.mp4", "Jump/j1.mp4"):
        (tmp_path / "actions_train" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "actions_train" / rel).write_bytes(b"")
    held = {"Walk/w10.mp4", "Jump/j1.mp4"}
    assert build.training_files(tmp_path, held) == ["Walk/w1.mp4", "Walk/w2.mp4", "Sit/s1.mp4"]
    with pytest.raises(FileNotFoundError, match="stale"):
        build.training_files(tmp_path, held | {"Sit/s9.mp4"})
    with pytest.raises(RuntimeError, match="Walk/w10.mp4"):
        build.check_no_holdout([("raw/Walk/w1.mp4", "Walk/w1.mp4"), ("dark0/Walk/w10.mp4", "Walk/w10.mp4")], held)
    listed = build.read_holdout()  # the committed list: never empty
    assert listed and all("/" in h for h in listed)
