"""Video in and out for DTCM Studio (SPEC A7, B2, C).

Reading: every probe and decode runs in a long-lived decode worker, a fresh Python interpreter
(exec'd like multiprocessing's 'spawn', so no fork of a parent that holds threads or torch) talking
over a socket pair. A decoder that segfaults, hangs or runs out of memory kills only the worker; the
caller gets a ``VideoDecodeError`` with a human message and the next call starts a new worker. Frames
come back as raw bytes straight into the caller's array. decord (seeking, decoding only the frames
asked for) reads files that pass the PyAV probe; PyAV decodes sequentially when decord fails.

One policy for every entry point (predict, enhance, darkness, the service): frames smaller than
``LIMITS.min_side`` (16x16) are refused by the probe, and a damaged file is refused unless
``LIMITS.min_decodable`` (90%) of its frames decode, else its decodable frames are used. The
decoders' own log lines never reach stderr; the caller gets one sentence.

Writing: ``write_video`` makes H.264 / yuv420p / faststart mp4 files that browsers play.

Model input: ``ClipTransform`` is the one transform from decoded frames to (3, T, crop, crop).

Example:
    >>> info = probe("clip.mp4")
    >>> frames = read_clip("clip.mp4", 16, sampling="dense", size=128)  # (16, 128, W, 3) uint8
    >>> x = to_batch(frames)  # (1, 3, 16, 112, 112) float32 in [0, 1]
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import json
import logging
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "LIMITS",
    "MIN_SIDE",
    "ClipTransform",
    "Limits",
    "UnsupportedVideo",
    "VideoDecodeError",
    "VideoError",
    "VideoInfo",
    "clip_indices",
    "probe",
    "read_clip",
    "read_frames",
    "read_video",
    "to_batch",
    "write_video",
]

log = logging.getLogger(__name__)

ACCEPTED = "an MP4, MOV, AVI, MKV or WebM video (H.264, HEVC, VP8/VP9, AV1 or MPEG-4)"


@dataclass(frozen=True)
class Limits:
    """Every bound on what the decoder accepts and holds, in one place."""

    max_duration_s: float = 3600.0  # longer files are refused; shorter ones are sampled, never decoded whole
    max_input_pixels: int = 7680 * 4320  # coded frame area above 8K is refused
    max_short_side: int = 720  # with size=None, frames come back at most this short side (4K -> 720p)
    max_frames: int = 900  # frames one call returns at most (read_video keeps the first ones)
    max_output_bytes: int = 768 << 20  # frames one call returns; resolution drops to fit
    worker_memory_bytes: int = 4 << 30  # address-space limit (RLIMIT_AS) of the worker, set as it starts
    probe_timeout_s: float = 20.0  # one probe, worker start-up excluded
    decode_timeout_s: float = 30.0  # one read, plus the per-frame allowance; PyAV then gets as long again
    decode_timeout_per_frame_s: float = 0.1  # added to decode_timeout_s per frame asked for
    start_timeout_s: float = 30.0  # worker start-up (interpreter + PyAV + decord imports)
    decode_threads: int = 2  # decoder threads per worker
    min_side: int = 16  # frames narrower or lower than this are refused (no action can be seen in them)
    min_decodable: float = 0.9  # a damaged file is used when this fraction of its frames decodes, else refused


LIMITS = Limits()
MIN_SIDE = LIMITS.min_side


class VideoError(ValueError):
    """Base class for every problem with an input video."""


class VideoDecodeError(VideoError):
    """The file could not be decoded: empty, not a video, truncated, or the decoder crashed or hung."""


class UnsupportedVideo(VideoError):
    """The file is a video, but one this product does not accept (codec, size, length)."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns about a video. Width and height are as displayed (rotation applied)."""

    frames: int  # decodable frames (a truncated file counts only what is there)
    fps: float  # average frame rate
    width: int
    height: int
    duration: float  # seconds
    codec: str  # FFmpeg codec name, e.g. "h264", "hevc", "vp9", "av1"
    rotation: int  # display rotation, counter-clockwise degrees in {0, 90, 180, 270}; reads apply it


# ----------------------------------------------------------------------------------------------------
# Public API


def probe(path: str | os.PathLike, *, isolate: bool = True, limits: Limits | None = None) -> VideoInfo:
    """Open a video with PyAV, decode its first frame, and report what it is.

    Args:
        path: the video file.
        isolate: probe in the decode worker (default); False probes in this process.
        limits: bounds to apply; ``LIMITS`` by default.

    Returns:
        A ``VideoInfo``.

    Raises:
        FileNotFoundError: no such file.
        VideoDecodeError: empty, not a video, truncated beyond use, or the decoder crashed or hung.
        UnsupportedVideo: no video stream, an unknown codec, a still image, too long or too large.

    Example:
        >>> probe("shared/data/real/vtest.avi").frames
        795
    """
    limits = limits or LIMITS
    meta, _ = _run("probe", {"path": _check_path(path)}, limits, isolate, limits.probe_timeout_s)
    return meta


def read_clip(
    path: str | os.PathLike,
    num_frames: int,
    sampling: str = "dense",
    start: int | None = None,
    size: int | None = None,
    *,
    backend: str = "auto",
    isolate: bool = True,
    limits: Limits | None = None,
) -> np.ndarray:
    """Read a clip of ``num_frames`` frames, as the model samples them (SPEC A7, A8).

    Args:
        path: the video file.
        num_frames: frames to return, 1..``limits.max_frames``.
        sampling: "dense" = consecutive frames from ``start`` (None: the centred window), looped
            when the video is shorter; "uniform" = the middle frame of each of ``num_frames`` equal
            segments of the whole video.
        start: first frame index for dense sampling.
        size: short side of the returned frames in pixels (aspect kept, even width and height);
            None keeps the video's size up to ``limits.max_short_side``.
        backend: "auto" (decord, PyAV when decord fails), "decord" or "pyav".
        isolate: decode in the worker process (default); False decodes in this process.
        limits: bounds to apply; ``LIMITS`` by default.

    Returns:
        uint8 array (num_frames, H, W, 3), RGB, display orientation.

    Example:
        >>> read_clip("clip.mp4", 64, size=128).shape
        (64, 128, 170, 3)
    """
    if sampling not in ("dense", "uniform"):
        raise ValueError(f"sampling must be 'dense' or 'uniform', got {sampling!r}")
    limits = limits or LIMITS
    _check_count(num_frames, limits)
    args = {"num_frames": int(num_frames), "sampling": sampling, "start": start}
    return _read(path, "clip", args, size, backend, isolate, limits)[1]


def read_frames(
    path: str | os.PathLike,
    indices,
    size: int | None = None,
    *,
    backend: str = "auto",
    isolate: bool = True,
    limits: Limits | None = None,
) -> np.ndarray:
    """Read the frames at ``indices`` (any order, repeats allowed), e.g. for the darkness score.

    Args:
        path: the video file.
        indices: frame indices in [0, ``probe(path).frames``); on a damaged file that is still accepted
            they are scaled onto the frames that decode.
        size, backend, isolate, limits: as in ``read_clip``.

    Returns:
        uint8 array (len(indices), H, W, 3), RGB.

    Example:
        >>> read_frames("clip.mp4", [0, 10, 20]).shape[0]
        3
    """
    limits = limits or LIMITS
    indices = np.asarray(indices)
    if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D sequence of integers, got shape {indices.shape}")
    _check_count(len(indices), limits)
    args = {"indices": indices.astype(np.int64)}
    return _read(path, "frames", args, size, backend, isolate, limits)[1]


def read_video(
    path: str | os.PathLike,
    size: int | None = None,
    max_frames: int | None = None,
    *,
    backend: str = "auto",
    isolate: bool = True,
    limits: Limits | None = None,
) -> tuple[np.ndarray, float]:
    """Read a whole clip from its first frame, e.g. to enhance it at its own resolution.

    At most ``max_frames`` (default ``limits.max_frames``) frames are read; the resolution drops
    (aspect kept) when they would not fit in ``limits.max_output_bytes``.

    Args:
        path: the video file.
        size: short side in pixels; None keeps the video's size within the limits.
        max_frames: frames to read at most.
        backend, isolate, limits: as in ``read_clip``.

    Returns:
        (frames uint8 (N, H, W, 3) RGB, fps).

    Example:
        >>> frames, fps = read_video("clip.mp4")
    """
    limits = limits or LIMITS
    max_frames = limits.max_frames if max_frames is None else max_frames
    _check_count(max_frames, limits)
    meta, frames = _read(path, "video", {"max_frames": int(max_frames)}, size, backend, isolate, limits)
    return frames, meta


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 20) -> Path:
    """Write frames as an H.264 mp4 that browsers play (libx264, yuv420p, faststart).

    An odd width or height is cropped by one pixel, as yuv420p needs even sizes. Runs in this
    process: the frames are our own.

    Args:
        path: output file (``.mp4``); parent folders are created.
        frames: uint8 array (T, H, W, 3) RGB, or (T, H, W) grey.
        fps: frame rate, > 0.
        crf: x264 constant rate factor (lower is better quality; 0 is lossless).

    Returns:
        The path written.

    Example:
        >>> write_video("out.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=25)
    """
    from fractions import Fraction

    import av

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)  # (T, H, W, 3)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) array, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    if h < 2 or w < 2:
        raise ValueError(f"frames must be at least 2x2 pixels, got {frames.shape[1]}x{frames.shape[2]}")
    frames = frames[:, :h, :w]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def clip_indices(total: int, num_frames: int, sampling: str = "dense", start: int | None = None) -> np.ndarray:
    """Frame indices for a clip (SPEC A7 dense, A8 uniform), looping a video shorter than the clip.

    Example:
        >>> clip_indices(10, 4, "uniform").tolist()
        [1, 3, 6, 8]
    """
    if total < 1:
        raise ValueError(f"the video has no frames (total={total})")
    if sampling == "uniform":
        return np.minimum(((np.arange(num_frames) + 0.5) * total / num_frames).astype(np.int64), total - 1)
    if sampling != "dense":
        raise ValueError(f"sampling must be 'dense' or 'uniform', got {sampling!r}")
    if start is None:
        start = max(0, (total - num_frames) // 2)
    if not 0 <= start < total:
        raise ValueError(f"start must be in [0, {total}) for this {total}-frame video, got {start}")
    return start + np.arange(num_frames, dtype=np.int64) % min(num_frames, total - start)


@dataclass(frozen=True)
class ClipTransform:
    """Decoded frames -> model input (SPEC A7): short-side resize, then a random (train) or centre crop.

    Call with uint8 (T, H, W, 3) RGB; returns torch float32 (3, T, crop, crop) in [0, 1]. In train
    mode pass ``generator`` (a ``torch.Generator`` or ``numpy.random.Generator``) for a reproducible
    crop; without one torch's global generator is used.

    Example:
        >>> x = ClipTransform(train=True)(frames, generator=torch.Generator().manual_seed(0))
    """

    short_side: int = 128  # frames are resized so the short side is this (SPEC A7)
    crop: int = 112  # square crop fed to the backbone
    train: bool = False  # random crop when True, centre crop otherwise

    def __post_init__(self):
        if not 1 <= self.crop <= self.short_side:
            raise ValueError(f"need 1 <= crop <= short_side, got crop={self.crop}, short_side={self.short_side}")

    def __call__(self, frames: np.ndarray, generator=None):
        import cv2
        import torch

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        t, h, w, _ = frames.shape
        scale = self.short_side / min(h, w)
        nh, nw = max(self.crop, round(h * scale)), max(self.crop, round(w * scale))
        y0, x0 = (nh - self.crop) // 2, (nw - self.crop) // 2
        if self.train:
            y0, x0 = _randint(nh - self.crop + 1, generator), _randint(nw - self.crop + 1, generator)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        out = np.empty((t, self.crop, self.crop, 3), np.uint8)
        for i, frame in enumerate(frames):
            if (nh, nw) != (h, w):
                frame = cv2.resize(frame, (nw, nh), interpolation=interp)
            out[i] = frame[y0 : y0 + self.crop, x0 : x0 + self.crop]
        x = torch.from_numpy(out).permute(3, 0, 1, 2).contiguous()  # (3, T, crop, crop)
        return x.float().div_(255)


def to_batch(frames: np.ndarray, short_side: int = 128, crop: int = 112):
    """Frames (T, H, W, 3) uint8 -> test-mode model input (1, 3, T, crop, crop) float32 in [0, 1]."""
    return ClipTransform(short_side, crop, train=False)(frames).unsqueeze(0)


def _randint(high: int, generator) -> int:
    if high <= 1:
        return 0
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(high))
    import torch

    return int(torch.randint(high, (1,), generator=generator))


# ----------------------------------------------------------------------------------------------------
# Argument checks and the calls into the decode worker (parent side)


def _check_path(path) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such video file: {path}")
    return str(path.resolve())


def _check_count(n, limits: Limits) -> None:
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= limits.max_frames:
        raise ValueError(f"the frame count must be an integer in [1, {limits.max_frames}], got {n!r}")


def _read(path, op, args, size, backend, isolate, limits):
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 2):
        raise ValueError(f"size must be an integer short side >= 2 pixels or None, got {size!r}")
    args = {"path": _check_path(path), "op": op, "size": size, "backend": backend, **args}
    n = args.get("num_frames") or args.get("max_frames") or len(args["indices"])
    timeout = limits.decode_timeout_s + n * limits.decode_timeout_per_frame_s
    try:
        return _run("read", args, limits, isolate, timeout)
    except _WorkerDied as e:
        if backend != "auto":
            raise VideoDecodeError(str(e)) from None
        log.warning("%s; retrying %s with PyAV", e, Path(path).name)
    try:
        return _run("read", {**args, "backend": "pyav"}, limits, isolate, timeout)
    except _WorkerDied as e:
        raise VideoDecodeError(str(e)) from None


def _run(op, args, limits, isolate, timeout):
    """One request: in this process, or in the worker (crash, hang and memory become errors)."""
    if not isolate:
        try:
            return _handle(op, {**args, "limits": limits})
        except (VideoError, MemoryError):
            raise
        except Exception as e:
            kind, message = _error_reply(e, args["path"], 0)
            if kind == "ValueError":
                raise
            raise _ERRORS[kind](message) from e
    try:
        return _get_worker().call((op, {**args, "limits": limits}), timeout, limits)
    except _WorkerDied as e:
        if op == "read":
            raise
        raise VideoDecodeError(str(e)) from None


def _debug_crash(how: str = "segfault") -> None:
    """Test hook: make the decode worker die ("segfault" or "abort"); raises VideoDecodeError."""
    _run("crash", {"how": how, "path": "debug"}, LIMITS, True, LIMITS.decode_timeout_s)


def _debug_hang(timeout_s: float = 2.0) -> None:
    """Test hook: make the decode worker hang; raises VideoDecodeError after ``timeout_s``."""
    _run("hang", {"path": "debug"}, LIMITS, True, timeout_s)


def _debug_alloc(nbytes: int) -> None:
    """Test hook: make the decode worker allocate ``nbytes`` (beyond its limit: VideoDecodeError)."""
    _run("alloc", {"nbytes": int(nbytes), "path": "debug"}, LIMITS, True, LIMITS.decode_timeout_s)


# ----------------------------------------------------------------------------------------------------
# Probing and decoding (in the worker, or in this process with isolate=False)


class _ShortStream(Exception):
    """The stream ended after ``decoded`` frames, before the frames asked for."""

    def __init__(self, decoded: int):
        super().__init__(f"only {decoded} frames could be decoded")
        self.decoded = decoded


_probe_cache: collections.OrderedDict = collections.OrderedDict()  # (path, size, mtime, limits) -> VideoInfo
_probe_lock = threading.Lock()


def _handle(op, args):
    """Serve one request; returns (meta, frames or None)."""
    if op == "probe":
        return _probe_cached(args["path"], args["limits"]), None
    if op == "read":
        return _read_impl(**args)
    if op == "crash":
        import ctypes

        if args["how"] == "abort":
            os.abort()
        ctypes.string_at(0)  # null dereference: SIGSEGV
    if op == "hang":
        time.sleep(1e9)
    if op == "alloc":
        block = bytearray(args["nbytes"])
        return len(block), None
    raise ValueError(f"unknown request {op!r}")


def _probe_cached(path: str, limits: Limits) -> VideoInfo:
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns, limits)
    with _probe_lock:
        if key in _probe_cache:
            _probe_cache.move_to_end(key)
            return _probe_cache[key]
    info = _probe_impl(path, limits)
    with _probe_lock:
        _probe_cache[key] = info
        if len(_probe_cache) > 4096:
            _probe_cache.popitem(last=False)
    return info


def _probe_impl(path: str, limits: Limits) -> VideoInfo:
    import av

    name = repr(Path(path).name)
    nbytes = os.path.getsize(path)
    if nbytes == 0:
        raise VideoDecodeError(f"{name} is empty (0 bytes); please upload {ACCEPTED}.")
    with open(path, "rb") as f:
        head = f.read(4096)
    if _looks_like_text(head):
        raise VideoDecodeError(f"{name} is a text file, not a video; please upload {ACCEPTED}.")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError as e:
        if head[4:8] in (b"ftyp", b"mdat", b"free", b"wide"):  # an mp4/mov whose index never arrived
            raise VideoDecodeError(
                f"{name} is truncated or damaged (its index is missing, e.g. an interrupted upload or "
                f"recording); please upload the complete file as {ACCEPTED}."
            ) from None
        raise VideoDecodeError(
            f"{name} is not a video that can be read ({_ffmpeg_reason(e)}); please upload {ACCEPTED}."
        ) from None
    with container:
        formats = set(container.format.name.split(","))
        if "image2" in formats or any(f.endswith("_pipe") for f in formats):  # png_pipe, jpeg_pipe, ...
            raise UnsupportedVideo(f"{name} is a still image, not a video; please upload {ACCEPTED}.")
        if not container.streams.video:
            raise UnsupportedVideo(f"{name} has no video stream (audio only?); please upload {ACCEPTED}.")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None or ctx.codec is None or not ctx.codec.is_decoder:
            raise UnsupportedVideo(f"{name} uses a codec this server cannot decode; please upload {ACCEPTED}.")
        codec = ctx.codec.canonical_name  # the format, not the decoder: "av1", not "libdav1d"
        if ctx.width * ctx.height > limits.max_input_pixels:
            raise UnsupportedVideo(
                f"{name} is {ctx.width}x{ctx.height}, larger than the largest accepted frame "
                f"({limits.max_input_pixels / 1e6:.0f} megapixels, 8K); please upload a smaller video."
            )
        tb = stream.time_base
        duration = float(stream.duration * tb) if stream.duration and tb else 0.0
        if not duration and container.duration:
            duration = container.duration / av.time_base
        if duration > limits.max_duration_s:
            raise UnsupportedVideo(
                f"{name} is {duration / 60:.0f} minutes long, longer than the {limits.max_duration_s / 60:.0f} "
                f"minutes accepted; please upload a shorter clip."
            )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frames = stream.frames or _count_packets(container, stream, limits)
        frames = _frames_in_file(stream, frames, nbytes)
        first = _first_frame(container, stream, name, codec)
    if not fps or not math.isfinite(fps) or fps > 1000:
        fps = frames / duration if duration else 25.0
    if not duration:
        duration = frames / fps
    if frames < 1:
        raise VideoDecodeError(f"{name} holds no decodable frames (truncated or damaged); please upload {ACCEPTED}.")
    rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
    w, h = (first.width, first.height) if rotation % 180 == 0 else (first.height, first.width)
    if min(w, h) < limits.min_side:
        raise UnsupportedVideo(
            f"{name} is {w}x{h} pixels, smaller than the smallest accepted frame ({limits.min_side}x"
            f"{limits.min_side}); please upload a larger video."
        )
    return VideoInfo(frames, fps, w, h, duration, codec, rotation)


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="replace")
    return sum(c != "\ufffd" and (c.isprintable() or c.isspace()) for c in text) >= 0.95 * len(text)


def _ffmpeg_reason(e) -> str:
    return str(getattr(e, "strerror", None) or e).strip().rstrip(".").lower()


def _count_packets(container, stream, limits: Limits) -> int:
    """Frame count from demuxing (no decoding), for containers that do not store it (mkv, webm)."""
    cap = int(limits.max_duration_s * 240)
    n = 0
    for packet in container.demux(stream):
        n += packet.size > 0
        if n > cap:
            break
    container.seek(0, stream=stream)
    return n


def _frames_in_file(stream, frames: int, nbytes: int) -> int:
    """Frames whose data is in the file, when the container indexes every frame (mp4, mov, avi)."""
    entries = stream.index_entries
    if frames and len(entries) == frames:
        ends = [e.pos + e.size for e in entries]
        if max(ends) > nbytes:
            return sum(end <= nbytes for end in ends)
    return frames


def _first_frame(container, stream, name, codec):
    import av

    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as e:
        raise VideoDecodeError(
            f"{name} could not be decoded ({codec}: {_ffmpeg_reason(e)}); please upload {ACCEPTED}."
        ) from None
    raise VideoDecodeError(f"{name} holds no decodable frames (truncated or damaged); please upload {ACCEPTED}.")


def _even(x: float) -> int:
    return max(2, int(x / 2 + 0.5) * 2)


def _out_size(info: VideoInfo, size, n: int, limits: Limits) -> tuple[int, int]:
    """(width, height) to return: the requested short side, capped so n frames fit the byte budget."""
    w, h = info.width, info.height
    short = min(w, h)
    scale = (size if size else min(short, limits.max_short_side)) / short
    budget = limits.max_output_bytes / (3 * max(n, 1))
    if w * h * scale * scale > budget:
        scale = math.sqrt(budget / (w * h))
    if scale == 1 and w % 2 == 0 and h % 2 == 0:
        return w, h
    return _even(w * scale), _even(h * scale)


def _read_impl(path, op, size, backend, limits, **args):
    info = _probe_cached(path, limits)
    name = repr(Path(path).name)

    def indices_for(total):
        if op == "clip":
            return clip_indices(total, args["num_frames"], args["sampling"], args["start"])
        if op == "video":
            return np.arange(min(total, args["max_frames"]), dtype=np.int64)
        idx = args["indices"]
        if idx.size and (idx.min() < 0 or idx.max() >= total):
            raise ValueError(f"frame indices must be in [0, {total}) for {name}, got {idx.min()}..{idx.max()}")
        return idx

    indices = indices_for(info.frames)
    width, height = _out_size(info, size, len(np.unique(indices)), limits)
    meta = info.fps if op == "video" else None
    if not indices.size:
        return meta, np.zeros((0, height, width, 3), np.uint8)
    try:
        return meta, _decode(path, info, indices, width, height, backend, limits)
    except _ShortStream as e:
        _check_decodable(name, e.decoded, info.frames, limits)
        if op == "frames":  # the same places in the video, on the frames that decode
            indices = indices * e.decoded // info.frames
        else:
            indices = indices_for(e.decoded)
        return meta, _decode(path, info, indices, width, height, "pyav", limits)


def _check_decodable(name: str, decoded: int, total: int, limits: Limits) -> None:
    """The one policy for damaged files: refused unless ``limits.min_decodable`` of their frames decode."""
    if decoded < max(1, limits.min_decodable * total):
        raise VideoDecodeError(
            f"{name} is truncated or damaged: only {decoded} of its {total} frames could be decoded (at least "
            f"{limits.min_decodable:.0%} are needed); please upload the complete file as {ACCEPTED}."
        )


def _decode(path, info, indices, width, height, backend, limits):
    uniq, inverse = np.unique(indices, return_inverse=True)
    out = np.empty((len(uniq), height, width, 3), np.uint8)  # (N_unique, H, W, 3)
    if backend != "pyav":
        try:
            _decode_decord(path, info, uniq, out, limits)
            backend = None
        except Exception as e:  # decord raises its own error types, and plain RuntimeError
            if backend == "decord":
                raise VideoDecodeError(f"decord could not decode {Path(path).name!r}: {e}") from None
            log.info("decord failed on %s (%s); decoding with PyAV", Path(path).name, e)
    if backend is not None:
        _decode_pyav(path, info, uniq, out, limits)
    if len(uniq) == len(indices) and (uniq == indices).all():
        return out
    return out[inverse.reshape(-1)]


def _decode_decord(path, info, uniq, out, limits):
    import decord

    n, height, width = out.shape[:3]
    # decord applies the rotation itself, but its width/height arguments break on rotated files, so
    # rotated files are decoded at full size and resized here.
    native = (width, height) == (info.width, info.height)
    # decord's scaler hangs on some files at tiny target sizes (seen at a 36-pixel short side): below
    # 64 pixels decode at full size and resize here.
    tiny = min(width, height) < 64
    kwargs = {} if native or info.rotation or tiny else {"width": width, "height": height}
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=limits.decode_threads, **kwargs)
    if len(reader) < info.frames:
        raise RuntimeError(f"decord sees {len(reader)} frames, the probe {info.frames}")
    chunk = max(1, min(16, (64 << 20) // (3 * info.width * info.height)))  # bounds decord's own batch
    for i in range(0, n, chunk):
        batch = reader.get_batch(uniq[i : i + chunk].tolist()).asnumpy()  # (<=chunk, h, w, 3)
        if batch.shape[1:] != (height, width, 3):
            if batch.shape[1:] != (info.height, info.width, 3):
                raise RuntimeError(f"decord returned frames of shape {batch.shape[1:]}")
            batch = _resize(batch, width, height)
        out[i : i + len(batch)] = batch


def _decode_pyav(path, info, uniq, out, limits):
    import av

    height, width = out.shape[1:3]
    k = info.rotation // 90
    coded = (width, height) if k % 2 == 0 else (height, width)
    wanted, last, i = 0, int(uniq[-1]), 0
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = limits.decode_threads
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:  # a damaged packet: skip it, as players do
                continue
            for frame in frames:
                if i == uniq[wanted]:
                    image = frame.to_ndarray(width=coded[0], height=coded[1], format="rgb24", interpolation="AREA")
                    out[wanted] = np.rot90(image, k) if k else image
                    wanted += 1
                    if wanted == len(uniq):
                        return
                i += 1
                if i > last:
                    return
    raise _ShortStream(i)


def _resize(frames, width, height):
    import cv2

    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


# ----------------------------------------------------------------------------------------------------
# The decode worker


_ERRORS = {"VideoDecodeError": VideoDecodeError, "UnsupportedVideo": UnsupportedVideo, "ValueError": ValueError}


class _WorkerDied(Exception):
    """The worker crashed, hung or was killed; the message is for the user."""


def _msg_default(obj):
    # Messages between the worker and its parent are JSON: nothing that a decoder could forge is unpickled.
    if isinstance(obj, (Limits, VideoInfo)):
        return {"__type__": type(obj).__name__, **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        return {"__type__": "ndarray", "dtype": str(obj.dtype), "data": obj.tolist()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot send {type(obj).__name__} to the decode worker")


def _msg_object(d: dict):
    kind = d.pop("__type__", None)
    if kind == "ndarray":
        return np.asarray(d["data"], dtype=d["dtype"])
    if kind in ("Limits", "VideoInfo"):
        return (Limits if kind == "Limits" else VideoInfo)(**d)
    return d


def _send_msg(sock, obj) -> None:
    data = json.dumps(obj, default=_msg_default).encode()
    sock.sendall(struct.pack("<Q", len(data)) + data)


def _recv_into(sock, view, deadline) -> None:
    pos = 0
    while pos < len(view):
        if deadline is not None:
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
        got = sock.recv_into(view[pos:])
        if not got:
            raise EOFError
        pos += got


def _recv_msg(sock, deadline):
    header = bytearray(8)
    _recv_into(sock, memoryview(header), deadline)
    data = bytearray(struct.unpack("<Q", header)[0])
    _recv_into(sock, memoryview(data), deadline)
    return json.loads(data, object_hook=_msg_object)


class _Worker:
    """One decode worker process, started on first use and restarted after a crash or timeout."""

    def __init__(self):
        self.pid = os.getpid()  # the process that owns this worker (a forked copy must not use it)
        self.lock = threading.Lock()
        self.proc = self.sock = None

    def call(self, request, timeout, limits):
        """Send one request and wait at most ``timeout`` seconds for its reply and frames."""
        name = repr(Path(request[1]["path"]).name)
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start(limits)
            try:
                _send_msg(self.sock, (*request, timeout))
                deadline = time.monotonic() + timeout
                status, meta, shape = _recv_msg(self.sock, deadline)  # or ("err", class name, message)
                frames = None
                if status == "ok" and shape is not None:
                    frames = np.empty(shape, np.uint8)
                    _recv_into(self.sock, memoryview(frames).cast("B"), deadline)
            except TimeoutError:
                self.stop(kill=True)
                raise _WorkerDied(
                    f"Reading {name} took longer than {timeout:g} s and was stopped; the file may be "
                    f"damaged or unusually encoded, please upload {ACCEPTED}."
                ) from None
            except (EOFError, OSError):
                why = _exit_reason(self.stop())
                raise _WorkerDied(
                    f"The video decoder crashed on {name} ({why}); the file is probably damaged or "
                    f"unusually encoded, please upload {ACCEPTED}."
                ) from None
            except BaseException:  # e.g. KeyboardInterrupt mid-transfer: the stream is out of step
                self.stop(kill=True)
                raise
        if status == "err":
            raise _ERRORS[meta](shape)
        return meta, frames

    def _start(self, limits):
        self.stop()
        ours, theirs = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        code = "from dtcm.video import _worker_main; _worker_main()"
        cmd = [sys.executable, "-c", code, str(theirs.fileno()), str(limits.worker_memory_bytes)]
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        self.sock = ours
        try:
            _recv_msg(ours, time.monotonic() + limits.start_timeout_s)  # "ready"
        except (EOFError, OSError):
            self.stop(kill=True)
            raise VideoDecodeError("The video decoder could not be started; please try again.") from None

    def stop(self, kill: bool = False):
        """Stop the worker; returns its exit code (negative: killed by that signal)."""
        proc, sock, self.proc, self.sock = self.proc, self.sock, None, None
        if sock is not None:
            sock.close()  # an idle worker exits on end-of-file
        if proc is None:
            return None
        if kill:
            proc.kill()
        try:
            return proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


DECODE_WORKERS = max(1, int(os.environ.get("DTCM_DECODE_WORKERS", "2")))  # decoder processes at most
_workers: list[_Worker] = []  # started on demand: a long read never holds up a short one behind it
_worker_guard = threading.Lock()


def _exit_reason(code) -> str:
    if code == -signal.SIGKILL:
        return "killed, probably for running out of memory"
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _get_worker() -> _Worker:
    """An idle decode worker; a new one while fewer than ``DECODE_WORKERS`` run; else the first (wait)."""
    with _worker_guard:
        if _workers and _workers[0].pid != os.getpid():
            _workers.clear()
        for w in _workers:
            if not w.lock.locked():
                return w
        if len(_workers) < DECODE_WORKERS:
            _workers.append(_Worker())
            return _workers[-1]
        return _workers[0]


def _forget_worker():
    # A forked copy of this process (e.g. a DataLoader worker) starts its own decode workers.
    global _workers, _worker_guard
    _workers, _worker_guard = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


@atexit.register
def _stop_worker():
    for w in _workers:
        if w.pid == os.getpid():
            w.stop()


def _worker_main() -> None:
    """Entry point of the decode worker: serve requests until the parent closes the socket."""
    fd, memory = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if memory:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import av
    import decord

    av.logging.set_level(av.logging.ERROR)  # FFmpeg's messages reach PyAV's exceptions ...
    decord.logging.set_level(decord.logging.QUIET)
    logging.getLogger().addHandler(logging.NullHandler())  # ... but never this process's stderr
    sock = socket.socket(fileno=fd)
    _send_msg(sock, "ready")
    while True:
        try:
            op, args, timeout = _recv_msg(sock, None)
        except (EOFError, OSError):
            return  # the parent closed the socket, or died
        # SIGALRM's default action ends this process even inside native code that holds the GIL, so a
        # hung decoder cannot outlive a parent that died before it could kill it.
        signal.alarm(math.ceil(timeout) + 5)
        frames = None
        try:
            meta, frames = _handle(op, args)
            reply = ("ok", meta, None if frames is None else frames.shape)
        except Exception as e:
            reply = ("err", *_error_reply(e, args.get("path", ""), memory))
        try:
            _send_msg(sock, reply)
            if frames is not None:
                sock.sendall(memoryview(np.ascontiguousarray(frames)).cast("B"))
        except OSError:
            return
        finally:
            signal.alarm(0)
        reply = frames = None  # an idle worker holds no frames


def _error_reply(e: Exception, path: str, memory: int) -> tuple[str, str]:
    """(error class name, message) for an exception raised while serving a request."""
    import av

    name = repr(Path(path).name)
    if isinstance(e, VideoError):
        return type(e).__name__, str(e)
    if isinstance(e, MemoryError):
        return "VideoDecodeError", (
            f"Decoding {name} needed more than the {memory / 2**30:.1f} GiB of memory allowed; "
            "please upload a shorter or smaller video."
        )
    if isinstance(e, ValueError) and not isinstance(e, av.FFmpegError):
        return "ValueError", str(e)  # a bad argument, e.g. a frame index past the end
    return "VideoDecodeError", f"{name} could not be decoded ({type(e).__name__}: {e}); please upload {ACCEPTED}."
