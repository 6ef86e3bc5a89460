"""Bounds on the work one request can cause (issue 21: C1, H1, H3, M5, M6, L4, L6).

Each test names the row it reproduces. Hostile files are made here, in ``tmp_path``, at their real sizes: a
few kilobytes that stand for gigabytes of decoded pixels. Peak memory is measured in a subprocess through
the real service functions.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from dtcm import images, service, video
from dtcm.model import create_model

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------- helpers
def _flat_video(path: Path, width: int, height: int, frames: int = 20, codec: str = "libx264") -> Path:
    """A video of ``frames`` flat dark frames at width x height, encoded with PyAV (a few KB)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            s.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 20, np.uint8), format="rgb24")
        for _ in range(frames):
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _rle_bmp(path: Path, width: int, height: int) -> Path:
    """An 8-bit RLE BMP whose pixel data is one end-of-bitmap code: ~1 KB for any width x height."""
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    data = b"\x00\x01"  # end of bitmap: every pixel is palette entry 0
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(data), 2835, 2835, 256, 0)  # BI_RLE8
    path.write_bytes(b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data)
    return path


def _one_bit_png(path: Path, width: int, height: int) -> Path:
    """A 1-bit greyscale PNG of width x height, all black: its zlib stream is ~1/1000 of its pixels' bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    body = b"".join(z.compress(row * 256) for _ in range(height // 256)) + z.compress(row * (height % 256)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def weights(tmp_path, serving):
    """A served weights folder of one toy model that samples like the shipped ones (128-pixel short side)."""
    wdir = tmp_path / "weights"
    create_model("dtcm_tiny_test", short_side=128, crop_size=112, clip_len=16).save_pretrained(wdir / "tiny")
    entry = {"path": "tiny", "description": "tiny", "w_stc": 4.0, "k": 4, "metrics": {}}
    (wdir / "index.json").write_text(json.dumps({"default": "tiny", "models": {"tiny": entry}}))
    yield from serving(wdir)


def _peak_mb(calls: list[tuple[str, str]], wdir: Path, tmp_path: Path) -> dict:
    """Run ``service.<op>(path)`` for each (op, path) in a fresh interpreter: what each call answered, and the
    peak resident memory (MB, ``VmHWM``: ``ru_maxrss`` would count the forked parent's pages) of that server
    process and of its decode workers."""
    code = textwrap.dedent(
        f"""
        import json, os
        os.environ["DTCM_WEIGHTS_DIR"] = {str(wdir)!r}
        from dtcm import service
        from dtcm.video import worker

        def hwm(pid="self"):
            with open(f"/proc/{{pid}}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024

        out = []
        for op, path in {calls!r}:
            try:
                getattr(service, op)(path)
                out.append("ok")
            except service.ServiceError as e:
                out.append(str(e))
        workers = [hwm(w.proc.pid) for w in worker._workers if w.proc is not None]
        print(json.dumps({{"answers": out, "server_mb": hwm(), "worker_mb": workers}}))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    r["peak_mb"] = r["server_mb"] + sum(r["worker_mb"])
    return r


# ---------------------------------------------------------------------------------------------- C1
def test_c1_extreme_aspect_ratio_is_refused_with_a_sentence(tmp_path):
    wide = _flat_video(tmp_path / "wide.mp4", 16384, 16)
    assert wide.stat().st_size < 10_000  # a few KB that decoded at a 128-pixel short side were 6.6 GB
    with pytest.raises(video.UnsupportedVideo) as e:
        video.probe(wide)
    msg = str(e.value)
    assert "16384x16" in msg and "1024:1" in msg and f"{video.LIMITS.max_aspect:g}:1 accepted" in msg
    assert "\n" not in msg and str(tmp_path) not in msg
    tall = _flat_video(tmp_path / "tall.webm", 16, 32768, frames=3, codec="libvpx-vp9")
    with pytest.raises(video.UnsupportedVideo, match="16x32768 pixels, an aspect ratio of 2048:1"):
        video.probe(tall)


def test_c1_decoded_frames_are_capped_in_long_side_and_pixels_whatever_the_size_asked(tmp_path):
    """Even where the shape is allowed, the output is bounded: a short side asked for never grows the long side
    past ``max_long_side`` nor a frame past ``max_frame_pixels``."""
    lim = video.Limits(max_aspect=1e6)  # let the shape through, to see the scaling bound
    wide = _flat_video(tmp_path / "wide.mp4", 16384, 16, frames=4)
    for frames in (
        video.read_clip(wide, 4, size=128, limits=lim, isolate=False),
        video.read_frames(wide, [0, 3], size=720, limits=lim, isolate=False),
        video.read_video(wide, limits=lim, isolate=False)[0],
    ):
        n, h, w, _ = frames.shape
        assert max(h, w) <= lim.max_long_side and h * w <= lim.max_frame_pixels, frames.shape
    # the widest accepted shape, at the model's short side: frames as asked, nothing capped
    ok = _flat_video(tmp_path / "ok.mp4", 1024, 128, frames=3)
    assert video.read_clip(ok, 2, size=128, isolate=False).shape == (2, 128, 1024, 3)
    with pytest.raises(ValueError, match="16384x16 pixels have an aspect ratio beyond the 8:1 accepted"):
        video.to_batch(np.zeros((2, 16, 16384, 3), np.uint8))  # would have scaled each to 128x131072


def test_c1_luma_is_measured_without_a_float_copy_of_the_frames():
    from dtcm import darkness

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    y = small.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # the definition (N, H, W)
    np.testing.assert_allclose(darkness.frame_luma(small), y.mean(axis=(1, 2)), rtol=0, atol=1e-9)
    import tracemalloc

    big = np.full((2, 512, 4096, 3), 40, np.uint8)  # 12.6 MB; a float64 copy would be 100 MB
    tracemalloc.start()
    assert darkness.frame_luma(big) == pytest.approx([40.0, 40.0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20, f"{peak / 1e6:.0f} MB allocated"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_c1_and_h1_files_through_the_service_stay_under_1_gb(tmp_path, weights):
    """The issue's files through analyse, compare and timeline (and the photo bombs through analyse) in a
    fresh server process: every one answered with a sentence, the process tree's peak under 1 GB (before the
    fix: 6.6 GB for analyse of the 16384x16 H.264 alone)."""
    wide = _flat_video(tmp_path / "wide.mp4", 16384, 16)
    webm = _flat_video(tmp_path / "wide.webm", 32768, 16, codec="libvpx-vp9")
    bmp = _rle_bmp(tmp_path / "bomb.bmp", 32768, 32768)
    png = _one_bit_png(tmp_path / "bomb.png", 32768, 32768)
    calls = [("analyse", str(wide)), ("compare", str(wide)), ("timeline", str(wide)), ("analyse", str(webm))]
    calls += [("analyse", str(bmp)), ("analyse", str(png)), ("compare", str(png))]
    r = _peak_mb(calls, weights, tmp_path)
    for (op, path), answer in zip(calls, r["answers"], strict=True):
        assert answer != "ok" and "accepted" in answer and str(tmp_path) not in answer, (op, path, answer)
    assert r["peak_mb"] < 1024, r


# ---------------------------------------------------------------------------------------------- H1
@pytest.mark.parametrize("make", [_rle_bmp, _one_bit_png], ids=["rle8-bmp", "1bit-png"])
def test_h1_image_bomb_is_refused_from_its_header_before_any_decode(tmp_path, monkeypatch, make):
    bomb = make(tmp_path / ("bomb.bmp" if make is _rle_bmp else "bomb.png"), 32768, 32768)
    assert bomb.stat().st_size < 200_000  # 3.2 GB of RGB once decoded
    decoded = []
    monkeypatch.setattr(images.cv2, "imread", lambda *a, **k: decoded.append(a) or None)
    with pytest.raises(images.ImageError) as e:
        images.read_image(bomb)
    assert not decoded, "the pixels were decoded before the size was checked"
    msg = str(e.value)
    assert f"{images.MAX_IMAGE_PIXELS / 1e6:.0f} million accepted" in msg and "\n" not in msg
    assert str(tmp_path) not in msg


def test_h1_every_path_checks_the_header(tmp_path, weights, monkeypatch):
    """The service (Streamlit's and Gradio's photo corner), the CLI and Gradio's own photo box all refuse
    before decoding."""
    from dtcm.cli import main

    bomb = _one_bit_png(tmp_path / "bomb.png", 32768, 32768)
    monkeypatch.setattr(images.cv2, "imread", lambda *a, **k: pytest.fail("decoded"))
    for fn in (service.analyse, service.compare):
        with pytest.raises(service.ServiceError, match="more than the 50 million accepted"):
            fn(str(bomb))
    assert main(["enhance", str(bomb), str(tmp_path / "out.png"), "--model", str(weights / "tiny")]) != 0
    import gradio as gr
    from gradio.data_classes import FileData

    from dtcm.ui_gradio.photo import photo_input

    with gr.Blocks():
        box = photo_input()
    with pytest.raises(gr.Error, match="more than the 50 million accepted"):
        box.preprocess(FileData(path=str(bomb), orig_name="bomb.png"))


def test_l4_a_long_thin_photo_is_refused_in_a_sentence_not_an_assertion(tmp_path, weights):
    thin = _one_bit_png(tmp_path / "thin.png", 1_000_000, 16)
    with pytest.raises(service.ServiceError, match="1000000x16 pixels, an aspect ratio of 62500:1"):
        service.analyse(str(thin))


# ---------------------------------------------------------------------------------------------- H3
def test_h3_compare_runs_each_method_once_whatever_the_list(tmp_path, weights, monkeypatch):
    from dtcm.service import comparison

    clip = _flat_video(tmp_path / "clip.mp4", 64, 48, frames=16)
    runs = []
    through = comparison._through
    monkeypatch.setattr(comparison, "_through", lambda m, *a: runs.append(m) or through(m, *a))
    r = service.compare(str(clip), ["none"] * 2000 + ["dtcm", "none", "dtcm"])  # held a model slot 160 s
    assert r["_order"] == ["none", "dtcm"] and runs == ["none", "dtcm"]
    assert comparison.check_methods(list(comparison.ALL_METHODS) * 100) == list(comparison.ALL_METHODS)
    for bad, said in (([], "at least one"), (["none", "x" * 10_000], "unknown enhancers"), ([None], "unknown")):
        with pytest.raises(service.ServiceError, match=said) as e:
            service.compare(str(clip), bad)
        assert len(str(e.value)) < 300


# ---------------------------------------------------------------------------------------------- L6
def test_l6_pixel_scale_is_range_checked_on_load(tmp_path):
    from dtcm.config import DTCMConfig
    from dtcm.model import DTCM

    create_model("dtcm_tiny_test").save_pretrained(tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    for bad in (1e30, 0.001, -1):
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "pixel_scale": bad}))
        with pytest.raises(ValueError, match=r"pixel_scale must be a number from 1 \(pixels on 0..1\) to 255") as e:
            DTCM.from_pretrained(tmp_path / "m")
        assert repr(bad) in str(e.value) or f"{bad:g}" in str(e.value)
    for good in (1.0, 2.0, 255.0):  # ours, I3D's, the Hara checkpoints'
        assert DTCMConfig(pixel_scale=good).pixel_scale == good


# ---------------------------------------------------------------------------------------------- M5
def test_m5_enhance_is_capped_in_frames_and_pixels_and_says_so(tmp_path, weights, monkeypatch):
    from dtcm.service import enhance

    clip = video.write_video(tmp_path / "long.mp4", np.full((400, 48, 64, 3), 20, np.uint8), 30)
    lim = enhance.enhance_limits()
    assert lim == {"frames": 300, "pixels": 30_000_000}  # was 900 frames and 200 million: 267 s at 1080p, k = 1
    r = service.enhance_video(str(clip), out_path=str(tmp_path / "out.mp4"))
    assert (r["frames"], r["source_frames"]) == (300, 400) and "at most 300 frames" in r["note"]
    monkeypatch.setattr(enhance, "ENHANCE_MAX_PIXELS", 300 * 32 * 24)  # the size drops first
    r = service.enhance_video(str(clip), out_path=str(tmp_path / "small.mp4"), start_s=2.0)
    assert r["frames"] <= 300 and r["frames"] * r["width"] * r["height"] <= 300 * 32 * 24 and r["width"] < 64
    monkeypatch.undo()
    import app

    shown = json.dumps(app.demo.get_config_file(), default=str)  # the Gradio page states the bound
    assert enhance.enhance_limit_sentence() in shown and "300 frames" in shown and "30 million pixels" in shown
    assert "DTCM_ENHANCE_MAX_FRAMES" in (ROOT / "docs" / "SECURITY.md").read_text()


# ---------------------------------------------------------------------------------------------- M6
def test_m6_the_private_preview_shares_the_model_budget_and_its_work_is_bounded(tmp_path, encode_video):
    import app
    from dtcm.service import previews

    fns = {fn.name: fn for fn in app.demo.fns.values()}
    preview, analyse = fns["preview_upload"], fns["analyse"]
    assert preview.api_visibility == "private"  # off the API page; the browser still calls it by number
    assert (preview.concurrency_id, preview.concurrency_limit) == (analyse.concurrency_id, analyse.concurrency_limit)
    eight_k = video.VideoInfo(frames=900, fps=30.0, width=7680, height=4320, duration=30.0, codec="hevc", rotation=0)
    assert previews.preview_frames(eight_k) == 90  # decoding 8K costs its full size: 39 s for 900 frames before
    avi = encode_video(tmp_path / "long.avi", np.full((400, 32, 48, 3), 30, np.uint8), codec="mpeg4", rate=30)
    r = service.preview_video(str(avi), out_dir=str(tmp_path))
    assert r["transcoded"] and "its first 300 of 400 frames" in r["note"]
    assert video.probe(r["path"], isolate=False).frames == 300


# ---------------------------------------------------------------------------------------------- L4
def test_l4_writes_off_by_a_space_say_why(monkeypatch):
    import gradio as gr

    from dtcm.service import server
    from dtcm.ui_gradio import layout

    monkeypatch.delenv("DTCM_FINETUNE", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/dtcm")
    with pytest.raises(service.ServiceError) as e:
        server.check_writes()
    said = str(e.value)
    assert "=0" not in said and "the default on a Hugging Face Space" in said and "DTCM_FINETUNE=1" in said
    with gr.Blocks() as demo:
        layout.finetune_tab()
    shown = json.dumps(demo.get_config_file(), default=str)
    assert "DTCM_FINETUNE=0" not in shown and "the default on a Hugging Face Space" in shown
    monkeypatch.setenv("DTCM_FINETUNE", "0")
    with pytest.raises(service.ServiceError, match=r"\(DTCM_FINETUNE=0\)"):
        server.check_writes()


def test_l4_a_video_track_without_samples_is_not_called_audio(tmp_path):
    import av

    with av.open(str(tmp_path / "empty.mp4"), "w") as c:  # a recording stopped before its first frame
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    with pytest.raises(video.VideoDecodeError) as e:
        video.probe(tmp_path / "empty.mp4")
    assert "holds no frames at all" in str(e.value) and "audio" not in str(e.value)


def test_l4_a_photo_pil_cannot_read_gets_a_sentence_in_gradio(tmp_path):
    import gradio as gr
    from gradio.data_classes import FileData

    from dtcm.ui_gradio.photo import photo_input

    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # a JPEG's first bytes, then nothing
    with gr.Blocks():
        box = photo_input()
    with pytest.raises(gr.Error) as e:
        box.preprocess(FileData(path=str(broken), orig_name="holiday.jpg"))
    assert "'holiday.jpg' could not be decoded as an image" in e.value.message and str(tmp_path) not in e.value.message


@pytest.mark.parametrize("name", ["Walk\u202eklaW", "Jump\nrm -rf", "Drink\u200b", "Run\u2028"])
def test_l4_class_names_with_bidi_or_line_breaks_are_refused(tmp_path, name):
    from dtcm.data import FolderDataset

    for label in ("Sit", name):
        (tmp_path / "set" / label).mkdir(parents=True)
        video.write_video(tmp_path / "set" / label / "a.mp4", np.full((4, 32, 32, 3), 9, np.uint8), 10)
    with pytest.raises(ValueError, match=r"cannot be shown \(U\+[0-9A-F]{4}\)") as e:
        FolderDataset(tmp_path / "set")
    assert "\n" not in str(e.value) and "\u202e" not in str(e.value)


def _family_hwm_mb(root_pid: int) -> dict[int, float]:
    """Peak resident memory (MB, ``VmHWM``) of ``root_pid`` and of every process below it, by pid."""
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            kids = [Path(t, "children").read_text().split() for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        out[pid] = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
        todo += [int(k) for ks in kids for k in ks]
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_c1_and_h1_files_at_the_real_gradio_server_two_at_once(tmp_path):
    """``python app.py`` as a visitor reaches it: the C1 files twice at once and the H1 photos, each answered
    with a sentence; the server then still analyses a clip, and its process tree never passed 1 GB."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file
    from test_app_gradio import EXAMPLES, serve_app

    wide = _flat_video(tmp_path / "wide.mp4", 16384, 16)
    webm = _flat_video(tmp_path / "wide.webm", 32768, 16, codec="libvpx-vp9")
    png = _one_bit_png(tmp_path / "bomb.png", 32768, 32768)
    with serve_app(tmp_path / "srv") as (url, default):
        kids = [pid for pid in _family_hwm_mb(os.getpid()) if b"app.py" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))

        def ask(args):
            *inputs, api = args
            try:
                client.predict(*inputs, api_name=api)
                return "ok"
            except Exception as e:  # gradio_client's AppError carries the app's sentence
                return str(e)

        calls = [(handle_file(str(wide)), default, 4, "/analyse")] * 2
        calls += [
            (handle_file(str(webm)), ["none", "dtcm"], default, 4, "/compare"),
            (handle_file(str(png)), default, "/enhance_photo"),
        ]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, calls))
        fine = client.predict(handle_file(str(EXAMPLES[0])), default, 4, api_name="/analyse")
        peaks = {pid: mb for k in kids for pid, mb in _family_hwm_mb(k).items()}  # the server and its decoders
    assert len(kids) == 1 and all(a != "ok" and "accepted" in a for a in answers), answers
    assert fine and sum(peaks.values()) < 1024, peaks
