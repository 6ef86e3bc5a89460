"""dtcm.video: probing, isolated decoding of odd uploads, writing, and the model-input transform."""

import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from dtcm import video
from dtcm.video import (
    ClipTransform,
    Limits,
    UnsupportedVideo,
    VideoDecodeError,
    VideoError,
    clip_indices,
    probe,
    read_clip,
    read_frames,
    read_video,
    to_batch,
    write_video,
)

VTEST = Path(__file__).resolve().parents[2] / "shared/data/real/vtest.avi"
needs_vtest = pytest.mark.skipif(not VTEST.exists(), reason=f"{VTEST} not present")


def _ramp(t, h, w):
    """A moving colour ramp, (t, h, w, 3) uint8, with a distinct mean per frame."""
    y, x = np.mgrid[0:h, 0:w]
    r, g = x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1)
    frames = [np.stack([(r + 9 * i) % 256, g, np.full_like(x, min(30 + 20 * i, 255))], -1) for i in range(t)]
    return np.stack(frames).astype(np.uint8)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 40-frame 64x48 H.264 mp4 written by write_video, with its source frames."""
    frames = _ramp(40, 48, 64)
    return write_video(tmp_path_factory.mktemp("v") / "small.mp4", frames, fps=20, crf=0), frames


# ------------------------------------------------------------------------------------------ real footage


@needs_vtest
def test_probe_vtest():
    info = probe(VTEST)
    assert (info.frames, info.fps, info.width, info.height, info.rotation) == (795, 10.0, 768, 576, 0)
    assert info.duration == pytest.approx(79.5)


@needs_vtest
def test_decord_matches_pyav_on_vtest():
    a = read_clip(VTEST, 64, start=300, backend="decord")
    b = read_clip(VTEST, 64, start=300, backend="pyav")
    assert a.shape == b.shape == (64, 576, 768, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(np.int16) - b).max() <= 2
    # frame-accurate: consecutive frames differ, and each matches its own index, not a neighbour
    assert not np.array_equal(a[0], a[1])
    assert np.array_equal(read_frames(VTEST, [300, 363], backend="decord"), a[[0, 63]])


# ------------------------------------------------------------------------------------------ isolation


def test_crash_and_hang_become_errors_and_next_call_works(small):
    path, _ = small
    for how in ("segfault", "abort"):
        with pytest.raises(VideoDecodeError, match="crashed"):
            video._debug_crash(how)
        assert probe(path).frames == 40
    t = time.monotonic()
    with pytest.raises(VideoDecodeError, match="longer than"):
        video._debug_hang(1.0)
    assert time.monotonic() - t < 5
    assert read_clip(path, 4).shape == (4, 48, 64, 3)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_memory_blowup_becomes_error(small):
    with pytest.raises(VideoDecodeError, match="memory"):
        video._debug_alloc(video.LIMITS.worker_memory_bytes + (1 << 30))
    assert probe(small[0]).frames == 40


def test_worker_is_reused(small):
    probe(small[0])
    proc = video._get_worker().proc
    read_clip(small[0], 8)
    assert video._get_worker().proc is proc and proc.poll() is None


def test_a_long_read_does_not_hold_up_a_short_one(small, tmp_path):
    import threading

    rng = np.random.default_rng(0)
    long = tmp_path / "long.mp4"
    video.write_video(long, rng.integers(0, 255, (300, 240, 320, 3), dtype=np.uint8), 30)
    probe(small[0])  # one worker up
    done = threading.Event()
    t = threading.Thread(target=lambda: (video.read_video(long), done.set()))
    t.start()
    try:
        deadline = time.monotonic() + 20
        while not any(w.lock.locked() for w in video._workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert probe(small[0]).frames == 40
        assert not done.is_set(), "the long read ended first: the test did not overlap them"
    finally:
        t.join(120)


def _probe_frames(path):
    return probe(path).frames


def test_forked_process_gets_its_own_worker(small):
    import multiprocessing

    probe(small[0])
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_probe_frames, (str(small[0]),)) == 40
    assert probe(small[0]).frames == 40


# ------------------------------------------------------------------------------------------ odd uploads


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        probe(tmp_path / "empty.mp4")


def test_random_bytes(tmp_path):
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(VideoError, match="MP4"):
        read_clip(tmp_path / "noise.mp4", 8)


def test_text_file(tmp_path):
    (tmp_path / "notes.mp4").write_text("these are my holiday notes\n" * 20)
    with pytest.raises(VideoDecodeError, match="text file"):
        probe(tmp_path / "notes.mp4")


def test_still_image_and_audio_only(tmp_path):
    import cv2

    (tmp_path / "photo.mp4").write_bytes(cv2.imencode(".png", _ramp(1, 32, 32)[0])[1].tobytes())
    with pytest.raises(UnsupportedVideo, match="still image"):
        probe(tmp_path / "photo.mp4")
    with av.open(str(tmp_path / "voice.m4a"), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    with pytest.raises(UnsupportedVideo, match="no video stream"):
        probe(tmp_path / "voice.m4a")


@pytest.mark.parametrize("isolate", [True, False])
def test_truncated_mp4(tmp_path, small, isolate, encode_video):
    # index at the end (no faststart), cut in half: the index is gone
    frames = small[1]
    data = encode_video(tmp_path / "rec.mp4", frames).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="truncated"):
        probe(tmp_path / "cut.mp4", isolate=isolate)
    # index first (faststart), frame data cut: the frames that are there are used
    data = small[0].read_bytes()
    (tmp_path / "cut_fast.mp4").write_bytes(data[: len(data) * 6 // 10])
    n = probe(tmp_path / "cut_fast.mp4").frames
    assert 0 < n < 40
    clip = read_clip(tmp_path / "cut_fast.mp4", 8, "uniform", isolate=isolate)
    assert clip.shape == (8, 48, 64, 3)
    with pytest.raises(ValueError, match="frame indices"):
        read_frames(tmp_path / "cut_fast.mp4", [39])


def test_unknown_codec(tmp_path, encode_video):
    data = encode_video(tmp_path / "m.avi", _ramp(3, 32, 32), codec="mpeg4").read_bytes()
    (tmp_path / "odd.avi").write_bytes(data.replace(b"FMP4", b"ZQZQ"))  # a FourCC no decoder knows
    with pytest.raises(UnsupportedVideo, match="codec"):
        read_clip(tmp_path / "odd.avi", 4)


def test_one_frame_video_loops(tmp_path):
    path = write_video(tmp_path / "one.mp4", _ramp(1, 32, 48), fps=25)
    assert probe(path).frames == 1
    for sampling in ("dense", "uniform"):
        clip = read_clip(path, 6, sampling)
        assert clip.shape == (6, 32, 48, 3) and (clip == clip[0]).all()


def test_vp9_webm(tmp_path, encode_video):
    if "libvpx-vp9" not in av.codecs_available:
        pytest.skip("no VP9 encoder in this PyAV build")
    src = _ramp(12, 48, 64)
    path = encode_video(
        tmp_path / "clip.webm",
        src,
        codec="libvpx-vp9",
        options={"crf": "10", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    )
    info = probe(path)
    assert (info.codec, info.frames, info.width, info.height) == ("vp9", 12, 64, 48)
    clip = read_clip(path, 12)
    assert np.abs(clip.astype(int) - src).mean() < 6
    assert np.abs(read_clip(path, 12, backend="pyav").astype(int) - clip).mean() < 2


def test_variable_frame_rate(tmp_path, encode_video):
    src = _ramp(30, 32, 32)
    pts = np.cumsum([0] + [33 if i % 3 else 100 for i in range(29)])  # 10-30 fps
    path = encode_video(tmp_path / "vfr.mp4", src, rate=30, pts=pts.tolist())
    info = probe(path)
    assert info.frames == 30 and 10 < info.fps < 31
    clip = read_clip(path, 30)
    assert np.abs(clip.astype(int) - src).mean(axis=(1, 2, 3)).max() < 8  # every frame in order
    assert np.abs(read_clip(path, 30, backend="pyav").astype(int) - clip).mean() < 2


def test_tiny_video(tmp_path):
    path = write_video(tmp_path / "tiny.mp4", _ramp(10, 16, 16), fps=10)
    assert read_clip(path, 4).shape == (4, 16, 16, 3)
    assert read_clip(path, 4, size=32).shape == (4, 32, 32, 3)


def test_4k_read_at_bounded_size(tmp_path, encode_video):
    src = np.zeros((2, 2160, 3840, 3), np.uint8)
    src[:, :, 1920:] = 200
    path = encode_video(tmp_path / "uhd.mp4", src)
    info = probe(path)
    assert (info.width, info.height) == (3840, 2160)
    clip = read_clip(path, 2)
    assert clip.shape == (2, video.LIMITS.max_short_side, 1280, 3)
    assert clip[:, :, :600].max() < 20 and clip[:, :, 680:].min() > 180
    assert read_clip(path, 2, size=112).shape == (2, 112, 200, 3)
    tight = Limits(max_output_bytes=2 * 3 * 320 * 180)
    assert read_clip(path, 2, limits=tight).shape == (2, 180, 320, 3)


def test_grayscale_video(tmp_path, encode_video):
    src = _ramp(6, 32, 48)[..., :1].repeat(3, -1)
    path = encode_video(tmp_path / "grey.mkv", src, codec="ffv1", pix_fmt="gray", fmt="gray")
    assert probe(path).frames == 6  # mkv stores no frame count: counted from packets
    clip = read_clip(path, 6)
    assert (clip[..., 0] == clip[..., 1]).all() and (clip[..., 1] == clip[..., 2]).all()
    assert np.abs(clip.astype(int) - src).max() <= 1


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_is_shown_upright(tmp_path, rotation, encode_video):
    src = np.zeros((4, 32, 64, 3), np.uint8)
    src[:, :8, :8] = 255  # a white corner marks the orientation
    path = encode_video(tmp_path / "phone.mp4", src, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    upright = np.rot90(src[0], rotation // 90)
    assert (info.height, info.width) == upright.shape[:2]
    for backend in ("auto", "pyav"):
        clip = read_clip(path, 4, backend=backend)
        assert clip.shape[1:3] == upright.shape[:2]
        assert np.abs(clip[0].astype(int) - upright).mean() < 4
    assert read_clip(path, 2, size=16).shape[1:3] == ((32, 16) if rotation % 180 else (16, 32))


def test_isolated_and_in_process_agree(small):
    path, _ = small
    for kw in ({}, {"sampling": "uniform", "size": 32}):
        assert np.array_equal(read_clip(path, 8, **kw), read_clip(path, 8, isolate=False, **kw))
    assert probe(path) == probe(path, isolate=False)


def test_read_video_and_frames(small):
    path, src = small
    frames, fps = read_video(path)
    assert frames.shape == (40, 48, 64, 3) and fps == 20
    assert np.abs(frames.astype(int) - src).mean() < 3
    assert read_video(path, max_frames=5, size=24)[0].shape == (5, 24, 32, 3)
    picked = read_frames(path, [7, 0, 7])
    assert np.array_equal(picked, frames[[7, 0, 7]])
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        read_frames(path, [40])


def test_bad_arguments(small):
    with pytest.raises(FileNotFoundError):
        probe("no/such/file.mp4")
    with pytest.raises(ValueError, match="sampling"):
        read_clip(small[0], 8, "random")
    with pytest.raises(ValueError, match="frame count"):
        read_clip(small[0], 0)
    with pytest.raises(ValueError, match="start"):
        read_clip(small[0], 8, start=40)


# ------------------------------------------------------------------------------------------ sampling


def test_clip_indices():
    assert clip_indices(100, 4).tolist() == [48, 49, 50, 51]  # centred window
    assert clip_indices(100, 4, start=10).tolist() == [10, 11, 12, 13]
    assert clip_indices(3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]  # looped
    assert clip_indices(10, 5, start=8).tolist() == [8, 9, 8, 9, 8]
    assert clip_indices(80, 8, "uniform").tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert clip_indices(2, 4, "uniform").tolist() == [0, 0, 1, 1]


# ------------------------------------------------------------------------------------------ writing


def test_write_video_plays_in_browsers(tmp_path):
    src = _ramp(12, 47, 33)  # odd sizes are cropped to even
    path = write_video(tmp_path / "out" / "enhanced.mp4", src, fps=12.5)
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: the index comes first
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height) == ("h264", "yuv420p", 32, 46)
        assert float(s.average_rate) == 12.5
    for backend in ("decord", "pyav"):
        clip = read_clip(path, 12, backend=backend)
        assert clip.shape == (12, 46, 32, 3)
        assert np.abs(clip.astype(int) - src[:, :46, :32]).mean() < 4
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", src.astype(np.float32), fps=10)


def test_write_video_gives_the_same_file_every_time(tmp_path):
    # a dim, noisy, moving clip: with x264's macroblock tree on, 3 of 6 writes of it differed in the same process
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:144, 0:192]
    scene = np.stack([(np.sin((xx + 3 * t) / 9) + np.cos((yy - 2 * t) / 7)) * 12 + 20 for t in range(16)])
    frames = np.clip(scene[..., None] + rng.normal(0, 3, (16, 144, 192, 3)), 0, 255).astype(np.uint8)
    files = {write_video(tmp_path / f"{i}.mp4", frames, fps=15).read_bytes() for i in range(6)}
    assert len(files) == 1


# ------------------------------------------------------------------------------------------ transform


def test_transform_shapes_and_range():
    frames = _ramp(5, 240, 320)
    x = ClipTransform()(frames)
    assert x.shape == (3, 5, 112, 112) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1 and x.is_contiguous()
    assert to_batch(frames).shape == (1, 3, 5, 112, 112)
    assert torch.equal(to_batch(frames)[0], x)
    assert ClipTransform(short_side=16, crop=16)(_ramp(2, 8, 12)).shape == (3, 2, 16, 16)  # upscaled
    with pytest.raises(ValueError):
        ClipTransform(short_side=100, crop=112)


def test_transform_crops():
    frames = _ramp(3, 240, 320)
    train = ClipTransform(train=True)
    a = train(frames, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, train(frames, generator=torch.Generator().manual_seed(0)))
    crops = {train(frames, generator=torch.Generator().manual_seed(s)).sum().item() for s in range(6)}
    assert len(crops) > 1
    rng = np.random.default_rng(1)
    assert train(frames, generator=rng).shape == (3, 3, 112, 112)
    test = ClipTransform()
    assert torch.equal(test(frames), test(frames))
    # the centre crop of the 128x170 resize is columns 29..140
    import cv2

    small = cv2.resize(frames[0], (171, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(test(frames)[:, 0].permute(1, 2, 0).numpy() * 255 - small[8:120, 29:141]).max() < 1e-3
