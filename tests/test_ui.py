"""What both UIs share: the fake service's contract, torch-free imports, one set of form defaults, the handlers.

The Gradio handlers and the presentation helpers run over the fake service (``tests/fakes``); the contract
test holds the fake to the real service's names and signatures, and the defaults test reads the real one.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import fakes
import pytest

pytest.importorskip("gradio")
pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "pages").glob("*.py"))
UI_FILES = [ROOT / "app.py", ROOT / "streamlit_app.py", *PAGES, ROOT / "dtcm" / "presentation.py"]
UI_FILES += sorted((ROOT / "dtcm" / "ui_gradio").glob("*.py"))
EXAMPLE = sorted((ROOT / "examples").glob("*.mp4"))[0]


def _service_names() -> set[str]:
    """Every ``service.<name>`` the UI files use."""
    names = set()
    for f in UI_FILES:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "service":
                names.add(node.attr)
    return names


def test_the_fake_service_has_every_name_the_uis_use_with_the_real_signature():
    from fakes import service as fake

    from dtcm import service as real

    names = _service_names()
    assert {"analyse", "compare", "start_finetune", "finetune_status"} <= names
    for name in sorted(names):
        assert hasattr(real, name), f"the UIs use service.{name}, which the service does not have"
        assert hasattr(fake, name), f"tests/fakes/service.py lacks {name}"
        if inspect.isfunction(getattr(real, name)):
            want = list(inspect.signature(getattr(real, name)).parameters)
            assert list(inspect.signature(getattr(fake, name)).parameters) == want, name
    assert fake.ServiceError is real.ServiceError


def test_importing_the_uis_and_running_every_page_imports_no_torch(tmp_path):
    code = (
        "import sys\n"
        "import app\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"for page in (None, *{[str(p.relative_to(ROOT)) for p in PAGES]!r}):\n"
        "    at = AppTest.from_file('streamlit_app.py', default_timeout=60).run()\n"
        "    if page:\n"
        "        at.switch_page(page).run()\n"
        "    assert not at.exception, (page, at.exception)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "assert not heavy, heavy[:5]\n"
    )
    # no weights: nothing for the service to load, so only the UIs' own imports count
    env = {**os.environ, "DTCM_WEIGHTS_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _streamlit_finetune_form() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/3_Fine-tune.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def real_app(monkeypatch):
    """The Gradio app built here, over the real service and the repository's weights (or none)."""
    monkeypatch.delenv("DTCM_WEIGHTS_DIR", raising=False)
    with fakes.fresh_ui():
        import app

        yield app


def test_both_fine_tune_forms_start_from_the_config_and_the_services_bounds(real_app):
    from dtcm import presentation, service
    from dtcm.config import DTCMConfig

    cfg, defaults, limits = DTCMConfig(), service.finetune_defaults(), service.finetune_limits()
    assert (defaults["alpha"], defaults["w_stc"], defaults["k"]) == (cfg.alpha, cfg.w_stc, cfg.k)
    at, ft = _streamlit_finetune_form(), real_app.ft
    number = {key: at.number_input(key=key) for key in ("ft_alpha", "ft_w_stc", "ft_epochs", "ft_lr", "ft_batch")}
    k_slider = at.slider(key="ft_k")
    for gradio, streamlit, want in (
        (ft.alpha, number["ft_alpha"], defaults["alpha"]),
        (ft.wstc, number["ft_w_stc"], defaults["w_stc"]),
        (ft.epochs, number["ft_epochs"], defaults["epochs"]),
        (ft.lr, number["ft_lr"], defaults["lr"]),
        (ft.batch, number["ft_batch"], defaults["batch_size"]),
    ):
        assert gradio.value == streamlit.value == want, gradio.label
        assert (gradio.minimum, gradio.maximum) == (streamlit.min, streamlit.max), gradio.label
    assert ft.k.value == k_slider.value == defaults["k"] == cfg.k
    assert [v for _, v in ft.k.choices] == list(service.K_CHOICES)
    assert (k_slider.min, k_slider.max) == service.K_RANGE
    assert ft.epochs.maximum == limits["epochs_max"] and ft.batch.maximum == limits["batch_max"]
    assert ft.backbone.value == at.selectbox(key="ft_backbone").value == defaults["backbone"]
    # the forms' upper bounds are the service's own: one step beyond is refused
    for field, name in (("alpha", "alpha"), ("w_stc", "W_STC")):
        too_big = presentation.finetune_form()[field]["maximum"] + 0.5
        with pytest.raises(service.ServiceError, match=f"{name} must be between 0 and {too_big - 0.5:g}"):
            service.start_finetune(**{field: too_big})


# ------------------------------------------------------------------------------- over the fake service
@pytest.fixture
def gradio_app():
    with fakes.installed() as service:
        import app

        yield app, service


def _returned(app, api_name: str, *args) -> dict:
    """What the handler behind ``api_name`` returns, checked to fill exactly the outputs of its event."""
    fn = next(f for f in app.demo.fns.values() if f.api_name == api_name)
    out = fn.fn(*args)
    assert set(out) == set(fn.outputs), api_name
    return out


def test_gradio_handlers_fill_every_output_of_their_event(gradio_app):
    app, service = gradio_app
    rec, cmp, ft = app.rec, app.cmp, app.ft
    out = _returned(app, "analyse", str(EXAMPLE), "tiny", 4)
    assert out[rec.verdict] == "**Recognised: Drink** (60%)."
    assert out[rec.model_used] == "tiny (W_STC 4, k = 4)"
    assert out[rec.darkness].startswith("Dark: mean brightness 9 of 255") and "Enhanced in full" in out[rec.darkness]
    assert out[rec.clip_info].startswith("24 frames, 32x24 at 10 fps. The actions were recognised from 16 frames")
    assert [t["label"] for t in out[rec.result_json]["top5"]][0] == "Drink" and out[rec.timings][-1][0] == "total"
    assert _returned(app, "analyse_segment", str(EXAMPLE), "tiny", 4, 0.5)[rec.result_json]["window"]["start_s"] == 0.5
    assert "windows of 16 frames every 0.8 s" in _returned(app, "timeline", str(EXAMPLE), "tiny", 4)[rec.tl_note]
    assert "Enhanced all 24 frames" in _returned(app, "enhance", str(EXAMPLE), "tiny", 4)[rec.enhanced_note]

    out = _returned(app, "compare", str(EXAMPLE), ["none", "he", "dtcm"], "tiny", 4)
    assert [row[0] for row in out[cmp.table]] == ["None (input)", "HE (histogram eq.)", "DTCM"]
    assert len(out[cmp.frames]) == 3 * 4 and out[cmp.frames][0][1] == "input" and out[cmp.frames][4][1] == "HE"

    known = _returned(app, "remember_owner", "", {})[ft.known]
    out = _returned(
        app, "finetune_start", "synthetic:small", "resnet_tiny_test", 0.1, 4, 4, 1, 1e-4, 2, "auto", 2, known
    )
    assert "step 1 of 4, about 1 min 30 s left" in out[ft.status] and out[ft.timer].active
    started = [kwargs for name, _, kwargs in service.calls if name == "start_finetune"]
    assert len(started) == 1 and started[0]["backbone"] == "resnet_tiny_test"
    out = _returned(app, "finetune_stop", out[ft.known])
    assert out[ft.status].startswith("stopped") and "new variant: finetune-fake" in out[ft.status]
    assert "finetune-fake" in [v for _, v in out[rec.variant].choices]  # every dropdown offers it at once
    assert _returned(app, "finetune_save", "mine", out[ft.known])[ft.saved_to] == "mine"  # a name, no server path


def test_gradio_errors_are_one_sentence(gradio_app, tmp_path, monkeypatch):
    import gradio as gr

    app, service = gradio_app
    with pytest.raises(gr.Error, match="'holiday.mp4' could not be read as a video; upload a clip"):
        (tmp_path / "holiday.mp4").write_bytes(b"not a video")
        app.analyse(str(tmp_path / "holiday.mp4"), "tiny", 4)  # the service's sentence, as it is
    with pytest.raises(gr.Error, match="'notes.txt' is not a video file this app reads; upload mp4, avi"):
        app.analyse(str(tmp_path / "notes.txt"), "tiny", 4)
    monkeypatch.setattr(service, "compare", lambda *a: 1 / 0)
    with pytest.raises(gr.Error, match="Something went wrong on the server while doing that; please try again"):
        app.compare(str(EXAMPLE), ["none"], "tiny", 4)


def test_presentation_helpers():
    from dtcm import presentation as ui

    assert ui.spread(list(range(8)), 4) == [0, 2, 5, 7] and ui.spread([9], 4) == [9, 9, 9, 9]
    assert ui.percent(0.8712) == "87.1" and ui.percent(96.36) == "96.4" and ui.percent(None) == "-"
    for dv, word in ((-0.92, "dark"), (-0.4, "dim"), (0.1, "lit")):
        assert ui.darkness_word({"verdict": ui.service.darkness_sentence(dv), "light": word}) == word
    assert ui.progress_text({"step": 3, "total_steps": 9, "eta_s": 90}) == "step 3 of 9, about 1 min 30 s left"
    assert ui.VIDEO_TYPES == ("mp4", "avi", "mov", "mkv", "webm") and "jpeg" in ui.PHOTO_TYPES


def test_a_worse_finetune_says_so_in_both_apps_and_is_not_recommended(gradio_app):
    app, service = gradio_app
    ft, rec = app.ft, app.rec
    known = _returned(app, "remember_owner", "", {})[ft.known]
    out = _returned(
        app, "finetune_start", "synthetic:small", "resnet_tiny_test", 0.1, 4, 4, 1, 1e-4, 2, "auto", 2, known
    )
    out = _returned(app, "finetune_stop", out[ft.known])  # the fake's fine-tune ends worse than its start
    assert "Worse than the model it started from (tiny): Top-1 9% against 45% on the same 11" in out[ft.status]
    assert "not recommended; the default variant is unchanged" in out[ft.status]
    labels = dict((v, label) for label, v in out[rec.variant].choices)
    assert "worse than its start: not recommended" in labels["finetune-fake"]
    _returned(app, "finetune_save", "ux-test", out[ft.known])
    assert "saved as ux-test" in _returned(app, "finetune_status", out[ft.known])[ft.status]

    at = _streamlit_finetune_form()
    owner = at.session_state["ft_owner"]
    service.start_finetune("synthetic:small", owner=owner)
    service.stop_finetune(owner=owner)
    at.run()
    assert not at.exception, at.exception
    assert any(w.value.startswith("Worse than the model it started from (tiny)") for w in at.warning)
    assert any("but not recommended; the default variant is unchanged" in c.value for c in at.caption)
    from dtcm import presentation as ui

    assert any(ui.FINETUNE_PROMISE in c.value for c in at.caption)  # both tabs say so before a run starts
    assert any(ui.FINETUNE_PROMISE in str(getattr(b, "value", "")) for b in app.demo.blocks.values())


@pytest.mark.parametrize(("dv", "word"), [(-0.92, "dark"), (-0.4, "dim"), (0.1, "lit")])
def test_gradio_tells_one_darkness_story_and_compare_is_not_sure_like_recognise(gradio_app, dv, word):
    app, service = gradio_app
    service.DV[:] = [dv]
    rec, cmp = app.rec, app.cmp
    said = _returned(app, "analyse", str(EXAMPLE), "tiny", 4)[rec.darkness]
    brightness = f"mean brightness {112 * (1 + dv):.0f} of 255 (dark up to 60, lit from 90)"
    assert said.startswith(f"{word.capitalize()}: {brightness}")
    assert "ARID-dark" not in said and "the clip is dark" not in said  # one word for the clip, said once
    assert ("Already bright enough: enhanced lightly" in said) == (word == "lit")
    out = _returned(app, "compare", str(EXAMPLE), ["none", "he", "dtcm"], "tiny", 4)
    assert out[cmp.light].startswith(f"The input is {word}: {brightness}")
    assert [row[3] for row in out[cmp.table]] == [
        "not sure (best guess Drink, 50%)",
        "Drink (51%)",
        "Drink (52%)",
    ]
    assert out[cmp.result_json]["none"]["verdict"]["sure"] is False


def test_every_accuracy_says_on_what_data_and_about_links_the_results(gradio_app, monkeypatch):
    app, service = gradio_app
    from dtcm import presentation as ui

    monkeypatch.setitem(service.VARIANTS, "tiny", {**service.VARIANTS["tiny"], "metrics": {"top1": 0.886, "n": 132}})
    ours = app.results_md()
    assert "| tiny | 4.0 | 4 | 88.6 | - | 132 synthetic test clips" in ours and "tiny_wstc0" not in ours  # no number
    assert "docs/RESULTS.md" in ours and "Table VI" not in ours  # linked, not copied in
    assert len(ui.ABOUT_MD) < 3000 and "docs/RESULTS.md" in ui.ABOUT_MD
    assert ui.accuracy_text({"top1": 0.27, "n": 11, "data": "validation clips of X"}) == (
        "Top-1 27.0% on 11 validation clips of X"
    )

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    said = [m.value for m in at.markdown if m.value.startswith("**Accuracy:**")]
    assert said == [
        "**Accuracy:** Top-1 88.6% on 132 synthetic test clips (DarkActions-synth, a seed no training run used)."
    ]
    assert not [m for m in at.metric if m.label.startswith("top")]  # no bare "top1 88.6%" tile
