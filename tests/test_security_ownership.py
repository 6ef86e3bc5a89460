"""A public deployment, part two: who owns what, and the disk (issue 21, rows H2, H4, M1-M4, L1-L3, L5).

Each test names the row it reproduces and runs the real service functions on a server laid out under
``tmp_path``; no training worker is started (a finished job is put in the real job manager by hand where
saving needs one). The Streamlit helpers run over a light stand-in of ``st``.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dtcm import service, storage  # noqa: E402
from dtcm.jobs import Job  # noqa: E402
from dtcm.model import create_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
A, B = "visitor-a-0123456789abcdef", "visitor-b-0123456789abcdef"
EXIT_ON_SIGTERM = service.server._exit_on_sigterm  # the fixture replaces it; the shutdown test puts it back


@pytest.fixture
def server(tmp_path, monkeypatch, make_tiny_weights):
    """A server's folders in tmp: tiny weights, a data root with a two-class folder, cache and runs."""
    make_tiny_weights(tmp_path / "weights", {"tiny": {}}, "tiny")
    for label in ("Walk", "Jump"):
        (tmp_path / "data" / "mini" / label).mkdir(parents=True)
        (tmp_path / "data" / "mini" / label / f"{label}.mp4").write_bytes(b"x")
    for var, sub in (("DTCM_WEIGHTS_DIR", "weights"), ("DTCM_DATA_ROOT", "data"), ("DTCM_CACHE", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("DTCM_RUNS_DIR", str(tmp_path / "runs"))
    for var in ("DTCM_FINETUNE", "SPACE_ID", "DTCM_APP", "DTCM_SAVED_DIR", "DTCM_MAX_SAVED", "DTCM_UPLOAD_TTL_S"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(storage, "_cleaned_at_exit", set())
    monkeypatch.setattr(service.server, "_jobs", None)
    monkeypatch.setattr(service.server, "_sweeper", SimpleNamespace())  # no background sweeper in tests
    monkeypatch.setattr(service.server, "_exit_on_sigterm", lambda: None)  # nor a SIGTERM handler in pytest
    monkeypatch.setattr(service.models, "_runtime_variants", {})
    service.models._cache.clear()
    yield tmp_path
    service.models._cache.clear()


def _zip(path: Path, payload: bytes = b"x", top: str = "set") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/Walk/a.mp4", payload)
        zf.writestr(f"{top}/Jump/b.mp4", payload)
    return path


def _finetuned(server: Path, name: str, owner: str | None) -> None:
    """A finished fine-tune of ``owner`` as the service keeps one: a job in the manager, its model registered."""
    final = server / "runs" / name / "final"
    create_model("dtcm_tiny_test").save_pretrained(final)
    service.register_variant(name, final, w_stc=4.0, k=4, owner=owner)
    jobs = service.server.manager()
    job = Job(name, owner, {"output_dir": str(final.parent)}, {"dataset": "mini"}, state="finished", variant=name)
    with jobs.lock:
        jobs.jobs[job.id] = job


@pytest.fixture
def at_exit(monkeypatch):
    """What is registered with ``atexit`` meanwhile, run by calling the list's items."""
    calls = []
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **kw: calls.append(lambda: fn(*a, **kw)))
    return calls


def _stand_in_st(cookie: str | None = None, job: str | None = None) -> SimpleNamespace:
    cookies = {"_streamlit_xsrf": cookie} if cookie else {}
    return SimpleNamespace(
        session_state={}, query_params={"job": job} if job else {}, context=SimpleNamespace(cookies=cookies)
    )


# ------------------------------------------------------------------------------- H2: Streamlit's files
def test_h2_streamlit_files_are_counted_swept_and_removed_at_shutdown(server, monkeypatch, at_exit):
    import streamlit_app

    monkeypatch.delenv("DTCM_APP", raising=False)  # importing the app names its folders; this test does it itself
    service.start_app("streamlit")
    monkeypatch.setattr(streamlit_app, "st", _stand_in_st("browser-a"))
    upload = SimpleNamespace(name="clip.mp4", file_id="f1", size=4000, getbuffer=lambda: b"x" * 4000)
    path = Path(streamlit_app.keep_upload("clip", upload))
    assert path.read_bytes() == b"x" * 4000
    assert path.is_relative_to(storage.cache_root()) and path.is_relative_to(storage.app_temp())  # not $TMPDIR
    assert storage.used_bytes() >= 4000  # counted in the disk budget
    enhanced = Path(service.temp_file("enhanced.mp4", A))  # where the Recognise page writes the enhanced clip
    assert enhanced.parent.is_relative_to(storage.app_temp())

    monkeypatch.setenv("DTCM_DISK_BUDGET_GB", str(6000 / (1 << 30)))
    big = SimpleNamespace(name="big.mp4", file_id="f2", size=4000, getbuffer=lambda: b"x" * 4000)
    with pytest.raises(service.ServiceError, match="the server is full"):
        streamlit_app.keep_upload("other", big)
    monkeypatch.delenv("DTCM_DISK_BUDGET_GB")

    monkeypatch.setenv("DTCM_UPLOAD_TTL_S", "60")
    old = time.time() - 120
    for p in (path, path.parent):
        os.utime(p, (old, old))
    service.temp_file("later.mp4", B)  # any later request sweeps what is older than the time to live
    assert not path.exists()
    spec = service.prepare_dataset_upload(str(_zip(server / "set.zip")), owner=A)
    folder = Path(service.datasets.check_dataset(spec, A))
    for p in (folder, folder.parent):
        os.utime(p, (old, old))
    assert service.server.sweep_now() >= 1 and not folder.exists()  # what the app's sweeper runs every minute

    assert storage.app_temp().exists()
    for call in at_exit:
        call()
    assert not storage.app_temp().exists(), "the app's temporary folder outlived the server"


# ------------------------------------------------------------------------------- H4: uploads are their owner's
def test_h4_an_upload_is_reachable_only_by_the_visitor_who_uploaded_it(server):
    with pytest.raises(service.ServiceError) as refused:
        service.datasets.check_dataset("/nope", A)
    assert str(server) not in str(refused.value) and "uploads" not in str(refused.value)  # names no root
    spec = service.prepare_dataset_upload(str(_zip(server / "mine.zip")), owner=A)
    folder = Path(service.datasets.check_dataset(spec, A))
    assert sorted(p.name for p in folder.iterdir()) == ["Jump", "Walk"]

    every_upload = storage.cache_root() / "uploads"
    for root in (every_upload, storage.uploads_root(), storage.visitor_uploads(B), folder.parent):
        with pytest.raises(service.ServiceError, match="outside the allowed roots"):
            service.datasets.check_dataset(str(root), B)  # no root of uploads is a dataset
    for other in (str(folder), str(folder.parent), "upload:", "upload:../" + folder.parent.parent.name):
        with pytest.raises(service.ServiceError):
            service.datasets.check_dataset(other, B)
    with pytest.raises(service.ServiceError):
        service.datasets.check_dataset(spec, B)  # the same name means B's own upload, which does not exist
    with pytest.raises(service.ServiceError, match="outside the allowed roots"):
        service.start_finetune(str(folder), backbone="resnet_tiny_test", max_steps=1, owner=B)
    assert service.finetune_status(B)["state"] == "idle"

    service.datasets.forget_upload(str(folder), B)  # what another visitor's job does at its end
    assert folder.is_dir(), "another visitor's job deleted this visitor's upload"
    service.datasets.forget_upload(str(folder), A)
    assert not folder.exists()


# ------------------------------------------------------------------------------- M1: private fine-tunes
def test_m1_an_unsaved_finetune_is_private_to_its_owner(server):
    _finetuned(server, "finetune-a", A)
    assert "finetune-a" in service.list_variants(owner=A)
    assert "finetune-a" not in service.list_variants(owner=B) and "finetune-a" not in service.list_variants()
    with pytest.raises(service.ServiceError, match="no variant"):
        service.get_model("finetune-a", owner=B)
    with service.as_visitor(B), pytest.raises(service.ServiceError, match="no variant"):
        service.get_model("finetune-a")  # what analyse, enhance and compare call
    with service.as_visitor(B), pytest.raises(service.ServiceError, match="no variant"):
        service.class_names("finetune-a")
    with pytest.raises(service.ServiceError, match="no variant 'finetune-a' to start from"):
        service.start_finetune(
            str(server / "data" / "mini"), backbone="resnet_tiny_test", init="finetune-a", max_steps=1, owner=B
        )
    for call in (lambda: service.save_finetuned("stolen", owner=B), lambda: service.push_finetuned("b/x", "hf_x", B)):
        with pytest.raises(service.ServiceError, match="no finished fine-tune"):
            call()
    with service.as_visitor(A):
        assert service.get_model("finetune-a") is service.get_model("finetune-a", owner=A)


# ------------------------------------------------------------------------------- M2: saves
def test_m2_saves_go_to_a_data_folder_with_a_quota_per_visitor(server, monkeypatch):
    monkeypatch.setenv("DTCM_MAX_SAVED", "1")
    index_before = (server / "weights" / "index.json").read_bytes()
    _finetuned(server, "finetune-a", A)
    assert service.save_finetuned("a-one", owner=A) == "a-one"  # a name, no server path
    saved = storage.saved_root()
    assert (saved / "a-one" / "model.safetensors").is_file() and "a-one" in json.loads(
        (saved / "index.json").read_text()
    )["models"]
    assert not saved.resolve().is_relative_to(ROOT)
    assert (server / "weights" / "index.json").read_bytes() == index_before and not (
        server / "weights" / "a-one"
    ).exists()
    with pytest.raises(service.ServiceError, match="limit per visitor"):
        service.save_finetuned("a-two", owner=A)

    _finetuned(server, "finetune-b", B)
    with pytest.raises(service.ServiceError, match="already exists"):
        service.save_finetuned("tiny", owner=B)  # a shipped name
    assert service.save_finetuned("b-one", owner=B) == "b-one"  # A's saves leave B's quota whole
    assert {"a-one", "b-one", "tiny"} <= set(service.list_variants(owner=B))  # saved variants are for everyone
    assert service.get_model("a-one", owner=B) is not None


# ------------------------------------------------------------------------------- M3: two apps on one host
def test_m3_two_apps_on_one_host_never_prune_each_others_runs(server, monkeypatch):
    monkeypatch.setenv("DTCM_KEEP_RUNS", "1")
    monkeypatch.setenv("DTCM_APP", "gradio")
    gradio_runs = []
    for i in range(2):
        gradio_runs.append(storage.runs_root() / f"finetune-g{i}")
        (gradio_runs[-1] / "final").mkdir(parents=True)
    gradio_uploads = storage.uploads_root()
    monkeypatch.setenv("DTCM_APP", "streamlit")
    assert storage.uploads_root() != gradio_uploads
    for i in range(3):
        (storage.runs_root() / f"finetune-s{i}" / "final").mkdir(parents=True)
        time.sleep(0.01)
    removed = storage.prune_runs()  # a Streamlit job's end
    assert len(removed) == 2 and all(Path(r).is_relative_to(storage.runs_root()) for r in removed)
    assert all(run.is_dir() for run in gradio_runs), "a Streamlit job's end removed a Gradio visitor's run"


# ------------------------------------------------------------------------------- M4: zip bombs
def test_m4_unpacked_bytes_are_capped_per_visitor(server, monkeypatch):
    monkeypatch.setenv("DTCM_UPLOAD_GB_PER_VISITOR", str(30_000 / (1 << 30)))
    first = service.prepare_dataset_upload(str(_zip(server / "one.zip", b"a" * 10_000)), owner=A)  # 20 KB unpacked
    with pytest.raises(service.ServiceError, match="one visitor may hold"):
        service.prepare_dataset_upload(str(_zip(server / "two.zip", b"b" * 10_000)), owner=A)
    assert Path(service.datasets.check_dataset(first, A)).is_dir()
    assert service.prepare_dataset_upload(str(server / "two.zip"), owner=B).startswith("upload:")  # B's own budget
    assert not list(storage.visitor_uploads(A).glob(".*partial")), "a refused upload left files behind"


# ------------------------------------------------------------------------------- L1: no server paths
def test_l1_no_server_path_reaches_a_visitor(server):
    spec = service.prepare_dataset_upload(str(_zip(server / "clips.zip", top="clips")), owner=A)
    assert spec.startswith("upload:") and spec.endswith("/clips") and str(server) not in spec
    messages = []
    for call in (
        lambda: service.datasets.check_dataset("/nope", A),
        lambda: service.datasets.check_dataset(str(storage.cache_root() / "uploads"), A),
        lambda: service.datasets.check_dataset("upload:gone", A),
        lambda: service.get_model("finetune-gone", owner=A),
    ):
        if not messages:
            service.register_variant("finetune-gone", server / "runs" / "finetune-gone" / "final", owner=A)
        with pytest.raises(service.ServiceError) as refused:
            call()
        messages.append(str(refused.value))
    for text in messages:
        assert str(server) not in text and str(Path.home()) not in text, text
    assert "no such model folder" in messages[-1] and "<runs>" in messages[-1]
    jobs = service.server.manager()  # a worker's error that names a file of the server
    failed = Job("j1", A, {"output_dir": str(server / "runs" / "r1")}, {}, state="failed")
    failed.message = f"the fine-tune failed: cannot read {storage.visitor_uploads(A)}/abc/Walk/a.mp4"
    with jobs.lock:
        jobs.jobs[failed.id] = failed
    status = service.finetune_status(A)
    assert str(server) not in json.dumps(status) and "<uploads>" in status["message"], status["message"]
    page = (ROOT / "pages" / "3_Fine-tune.py").read_text()
    assert "Unpacked to" not in page and "Saved to {path}" not in page


# ------------------------------------------------------------------------------- L2: identical zips
def test_l2_identical_zips_from_two_visitors_do_not_share_a_folder(server):
    archive = _zip(server / "same.zip")
    spec_a = service.prepare_dataset_upload(str(archive), owner=A)
    spec_b = service.prepare_dataset_upload(str(archive), owner=B)
    folder_a, folder_b = (Path(service.datasets.check_dataset(s, o)) for s, o in ((spec_a, A), (spec_b, B)))
    assert folder_a != folder_b
    service.datasets.forget_upload(str(folder_a), A)  # A's job has finished
    assert not folder_a.exists() and sorted(p.name for p in folder_b.iterdir()) == ["Jump", "Walk"]


# ------------------------------------------------------------------------------- L3: the ?job= key
def test_l3_a_job_key_in_the_address_works_only_in_the_browser_it_was_made_for(server, monkeypatch):
    import streamlit_app

    key = service.new_owner_key(holder="browser-a")
    assert service.claim_owner_key(key, "browser-a") == key
    assert service.claim_owner_key(key, "browser-b") is None and service.claim_owner_key(key, None) is None
    assert service.claim_owner_key(service.new_owner_key(), "browser-a") is None  # a key made for no browser

    def xsrf(token: bytes, mask: bytes) -> str:  # Streamlit's cookie as Tornado writes it: masked afresh each load
        return f"2|{mask.hex()}|{bytes(b ^ mask[i % 4] for i, b in enumerate(token)).hex()}|1765000000"

    token = bytes(range(16))
    monkeypatch.setattr(streamlit_app, "st", _stand_in_st(xsrf(token, b"\x01\x02\x03\x04")))
    made = streamlit_app.visitor(in_address=True)
    assert streamlit_app.st.query_params["job"] == made
    reload = _stand_in_st(xsrf(token, b"\x09\x08\x07\x06"), job=made)  # the same browser, a fresh mask
    monkeypatch.setattr(streamlit_app, "st", reload)
    assert streamlit_app.visitor() == made
    strangers = (_stand_in_st(xsrf(bytes(16), b"\x01\x02\x03\x04"), job=made), _stand_in_st(None, job=made))
    for stranger in strangers:  # a shared link opened in another browser
        monkeypatch.setattr(streamlit_app, "st", stranger)
        assert streamlit_app.visitor(in_address=True) != made and stranger.query_params["job"] != made


# ------------------------------------------------------------------------------- L5: temporary folders
def test_l5_the_gradio_apps_temporary_files_are_removed_at_shutdown(server, monkeypatch, at_exit):
    import app

    out_dir = server / "dtcm_app"
    (out_dir / "images").mkdir(parents=True)
    (out_dir / "enhanced_1.mp4").write_bytes(b"x")
    served = server / "gradio" / "abc" / "upload.mp4"
    served.parent.mkdir(parents=True)
    served.write_bytes(b"x")
    monkeypatch.setattr(app, "OUT_DIR", out_dir)
    monkeypatch.setattr(app.demo, "temp_file_sets", [{str(served)}])
    monkeypatch.setattr(app.demo, "launch", lambda **kw: None)
    monkeypatch.setattr(app.threading, "Thread", lambda **kw: SimpleNamespace(start=lambda: None))
    monkeypatch.setattr(app, "on_zero_gpu", lambda: False)
    monkeypatch.setattr(service.server, "_exit_on_sigterm", EXIT_ON_SIGTERM)  # over the stand-ins of signal below
    handlers = {}
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_DFL)
    monkeypatch.setattr(signal, "signal", lambda signum, handler: handlers.setdefault(signum, handler))
    app.main()
    with pytest.raises(SystemExit):  # a container stopping the server ends it through the cleanup at exit
        handlers[signal.SIGTERM](signal.SIGTERM, None)
    assert storage.runs_root() == server / "runs" / "gradio"  # its own runs: Streamlit's jobs never prune them
    for call in at_exit:
        call()
    assert not out_dir.exists() and not served.parent.exists(), "temporary files outlived the server"


# ------------------------------------------------------------------------------- the Gradio handlers (H4, M1)
def _handler(app, api_name: str):
    return next(f for f in app.demo.fns.values() if f.api_name == api_name).fn


def test_h4_m1_gradio_passes_the_visitor_key_to_uploads_and_model_calls(tmp_path):
    import fakes

    with fakes.installed() as fake:
        import app

        ft = app.ft
        a = _handler(app, "remember_owner")("", {})[ft.known]
        b = _handler(app, "remember_owner")("", {})[ft.known]
        assert a["owner"] != b["owner"]
        out = _handler(app, "dataset_upload")(str(_zip(tmp_path / "clips.zip")), a)
        assert out[ft.dataset].value == "upload:clips" and out[ft.known]["owner"] == a["owner"]
        assert [kw["owner"] for name, _, kw in fake.calls if name == "prepare_dataset_upload"] == [a["owner"]]

        start = _handler(app, "finetune_start")
        a = start("upload:clips", "resnet_tiny_test", 0.1, 4, 4, 1, 1e-4, 2, "auto", 2, a)[ft.known]
        a = _handler(app, "finetune_stop")(a)[ft.known]  # the fake's job ends with the variant finetune-fake

        def offered(known: dict) -> list[str]:  # a fresh page of that visitor: its dropdowns are filled anew
            return [v for _, v in _handler(app, "finetune_status")({"owner": known["owner"]})[app.rec.variant].choices]

        assert "finetune-fake" in offered(a) and "finetune-fake" not in offered(b)
        clip = str(ROOT / "examples" / next(p.name for p in (ROOT / "examples").glob("*.mp4")))
        with pytest.raises(Exception, match="unknown model variant 'finetune-fake'"):
            app.analyse(clip, "finetune-fake", 4, b)
        with pytest.raises(Exception, match="unknown model variant 'finetune-fake'"):
            app.compare(clip, ["none"], "finetune-fake", 4, b)
        assert app.analyse(clip, "finetune-fake", 4, a)[app.rec.result_json]
