"""Video in and out for DTCM Studio (SPEC A7, B2, C): the public API.

Reading: every probe and decode runs in a long-lived decode worker (:mod:`dtcm.video.worker`); a decoder that
crashes, hangs or runs out of memory kills only the worker and the caller gets a ``VideoDecodeError``.
decord reads files that pass the PyAV probe; PyAV decodes sequentially when decord fails
(:mod:`dtcm.video.decode`).

One policy for every entry point (predict, enhance, darkness, the service): frames smaller than
``LIMITS.min_side`` (16x16) are refused by the probe, and a damaged file is refused unless
``LIMITS.min_decodable`` (90%) of its frames decode, else its decodable frames are used. The
decoders' own log lines never reach stderr; the caller gets one sentence.

Writing: ``write_video`` makes H.264 / yuv420p / faststart mp4 files that browsers play.

Model input: ``ClipTransform`` (:mod:`dtcm.video.sampling`) is the one transform from decoded frames to
(3, T, crop, crop).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from dtcm.video import worker as _worker_module
from dtcm.video.limits import (
    ACCEPTED,  # noqa: F401  (the accepted-formats sentence, for callers' own messages)
    LIMITS,
    MIN_SIDE,
    Limits,
    UnsupportedVideo,
    VideoDecodeError,
    VideoError,
    VideoInfo,
)
from dtcm.video.sampling import ClipTransform, clip_indices, to_batch
from dtcm.video.worker import _debug_alloc, _debug_crash, _debug_hang, _get_worker, _run, _WorkerDied  # noqa: F401  (test hooks)

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


def __getattr__(name: str):
    # the worker pool's live state (rebound after a fork), read through: ``video._workers``, ``DECODE_WORKERS``
    if name in ("DECODE_WORKERS", "_workers", "_worker_guard"):
        return getattr(_worker_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """
    limits = limits or LIMITS
    max_frames = limits.max_frames if max_frames is None else max_frames
    _check_count(max_frames, limits)
    meta, frames = _read(path, "video", {"max_frames": int(max_frames)}, size, backend, isolate, limits)
    return frames, meta


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 20) -> Path:
    """Write frames as an H.264 mp4 that browsers play (libx264, yuv420p, faststart).

    The same frames give the same file on every run: x264's macroblock-tree rate control is off, as with it on
    the encoded bytes varied from one call to the next in the same process (and so from run to run of a dataset
    render), even single-threaded.

    An odd width or height is cropped by one pixel, as yuv420p needs even sizes. Runs in this
    process: the frames are our own.

    Args:
        path: output file (``.mp4``); parent folders are created.
        frames: uint8 array (T, H, W, 3) RGB, or (T, H, W) grey.
        fps: frame rate, > 0.
        crf: x264 constant rate factor (lower is better quality; 0 is lossless).

    Returns:
        The path written.
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
        stream.options = {"crf": str(crf), "preset": "medium", "x264-params": "mbtree=0"}
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


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
