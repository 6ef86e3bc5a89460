"""What a video may be: every bound the decoder applies, the errors for what falls outside, what a probe learns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCEPTED",
    "LIMITS",
    "MIN_SIDE",
    "Limits",
    "UnsupportedVideo",
    "VideoDecodeError",
    "VideoError",
    "VideoInfo",
]

ACCEPTED = "an MP4, MOV, AVI, MKV or WebM video (H.264, HEVC, VP8/VP9, AV1 or MPEG-4)"


@dataclass(frozen=True)
class Limits:
    """Every bound on what the decoder accepts and holds, in one place."""

    max_duration_s: float = 3600.0  # longer files are refused; shorter ones are sampled, never decoded whole
    max_input_pixels: int = 7680 * 4320  # coded frame area above 8K is refused
    max_short_side: int = 720  # with size=None, frames come back at most this short side (4K -> 720p)
    max_long_side: int = 2048  # frames come back at most this long side, whatever size was asked for
    max_frame_pixels: int = 2048 * 720  # frames come back at most this many pixels each, whatever size was asked for
    max_aspect: float = 8.0  # a long side more than this many times the short side is refused (panoramas: 2-6)
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

    def aspect_problem(self, w: int, h: int) -> str | None:
        """The words for a frame of w x h pixels beyond ``max_aspect`` ("WxH pixels, an aspect ratio of ..."),
        or None when its shape is accepted: the one rule for videos, frames and photos."""
        if max(w, h) <= self.max_aspect * min(w, h):
            return None
        ratio = max(w, h) / max(min(w, h), 1)
        return f"{w}x{h} pixels, an aspect ratio of {ratio:.0f}:1, beyond the {self.max_aspect:g}:1 accepted"


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
