"""Probing and decoding, in the decode worker (or in this process with ``isolate=False``).

decord (seeking, decoding only the frames asked for) reads files that pass the PyAV probe; PyAV decodes
sequentially when decord fails. A damaged file is used when ``Limits.min_decodable`` of its frames decode.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from dtcm.video.limits import ACCEPTED, Limits, UnsupportedVideo, VideoDecodeError, VideoInfo
from dtcm.video.sampling import clip_indices

log = logging.getLogger("dtcm.video")


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
            if not len(container.streams):  # FFmpeg lists no track that holds no samples
                raise VideoDecodeError(
                    f"{name} holds no frames at all (an empty or unfinished recording); please upload {ACCEPTED}."
                )
            what = ", only audio" if container.streams.audio else ""
            raise UnsupportedVideo(f"{name} has no video stream{what}; please upload {ACCEPTED}.")
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
    if problem := limits.aspect_problem(w, h):
        raise UnsupportedVideo(f"{name} is {problem}; please upload a video of a usual shape.")
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
    """(width, height) to return: the requested short side, capped in long side, pixels per frame and so that n
    frames fit the byte budget (aspect kept)."""
    w, h = info.width, info.height
    short = min(w, h)
    scale = (size if size else min(short, limits.max_short_side)) / short
    scale = min(scale, limits.max_long_side / max(w, h), math.sqrt(limits.max_frame_pixels / (w * h)))
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
