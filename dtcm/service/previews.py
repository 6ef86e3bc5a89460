"""What the browser is shown before any model runs: the example clips, their previews, a playable upload."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

from dtcm.service.inputs import check_path, video_call
from dtcm.service.ui import VIDEO_SUFFIXES

__all__ = [
    "BROWSER_PLAYABLE",
    "EXAMPLES_ENV",
    "PREVIEW_SHORT_SIDE",
    "example_clips",
    "example_previews",
    "preview_frames",
    "preview_video",
]

EXAMPLES_ENV = "DTCM_EXAMPLES_DIR"  # an operator's folder of more example clips (e.g. real footage), shown first
BROWSER_PLAYABLE = {(".mp4", "h264"), (".m4v", "h264"), (".webm", "vp8"), (".webm", "vp9"), (".mp4", "av1")}
PREVIEW_SHORT_SIDE = 480  # a transcoded preview is at most this short side
PREVIEW_MAX_FRAMES = 300  # and at most this many frames from the start (10 s at 30 fps)
PREVIEW_MAX_DECODED = 3e9  # and at most this many source pixels decoded (frames x width x height: 90 frames of 8K)
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"  # the project's own clips


def example_clips() -> list[tuple[str, str]]:
    """The demo's examples as (path, caption): the operator's folder first, then the project's own clips.

    The project's own (``examples/dark_<action>.mp4``) are rendered by ``scripts/make_examples.py``:
    synthetic actors in the dark, captioned with their true action. Nothing in ``examples/`` comes from
    outside the project.
    """
    out = []
    extra = os.environ.get(EXAMPLES_ENV)
    for folder, is_own in ((Path(extra).expanduser(), False) if extra else (None, False), (EXAMPLES_DIR, True)):
        if folder is None or not folder.is_dir():
            continue
        for f in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
            stem = f.stem.removeprefix("dark_").replace("_", " ")
            caption = f"{stem.title()}: synthetic actor, ARID-dark" if is_own else f"{stem} (from {folder.name}/)"
            out.append((str(f), caption))
    return out


def example_previews() -> list[tuple[str, np.ndarray, str]]:
    """Each example's middle frame, brightened so a visitor can see what it shows: (path, image, caption)."""
    out = []
    for path, caption in example_clips():
        try:
            out.append((path, _preview_frame(path, Path(path).stat().st_mtime), caption))
        except Exception:  # an operator's unreadable file gets no preview; it stays in the list
            continue
    return out


@functools.lru_cache(maxsize=64)
def _preview_frame(path: str, mtime: float) -> np.ndarray:
    from dtcm import video

    info = video.probe(path)
    frame = video.read_frames(path, [max(info.frames // 2, 0)], size=min(info.width, info.height, 160))[0]
    luma = max(float(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).mean()), 1.0)
    gamma = np.clip(np.log(110 / 255) / np.log(luma / 255), 0.2, 1.0)  # a plain gamma lift, for the eye only
    lut = (255 * (np.arange(256) / 255) ** gamma).round().astype(np.uint8)
    return lut[frame]


def preview_video(path, out_dir=None) -> dict:
    """A file the browser can play for an upload: the upload itself when it is, else an H.264 copy.

    AVI, MOV, MKV, HEVC or MPEG-4 Part 2 uploads are decoded with PyAV (no ffmpeg binary needed) and
    written as H.264: at most ``PREVIEW_MAX_FRAMES`` frames from the start, fewer where decoding them would pass
    ``PREVIEW_MAX_DECODED`` source pixels (a large frame costs its full size to decode), at a 480-pixel short
    side; the note says so.

    Returns:
        dict with ``path`` (what to show), ``transcoded`` (bool) and ``note`` (empty when nothing changed).
    """
    import tempfile

    from dtcm import video

    path = check_path(path)
    info = video_call(video.probe, path)
    if (Path(path).suffix.lower(), info.codec) in BROWSER_PLAYABLE and info.rotation == 0:
        return {"path": path, "transcoded": False, "note": ""}
    size = min(info.width, info.height, PREVIEW_SHORT_SIDE)
    keep = preview_frames(info)
    frames, fps = video_call(video.read_video, path, size=size, max_frames=keep)
    fd, out = tempfile.mkstemp(suffix=".mp4", prefix="preview_", dir=out_dir)
    os.close(fd)
    try:
        video.write_video(out, frames, fps)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise
    n, h, w = frames.shape[:3]
    part = "" if n >= info.frames else f", its first {n} of {info.frames} frames"
    note = (
        f"Preview converted from {info.codec} to H.264 for the browser ({w}x{h}{part}); the analysis uses the original."
    )
    return {"path": out, "transcoded": True, "note": note}


def preview_frames(info) -> int:
    """How many frames from the start a preview of this video decodes: its work follows the bound, not the file."""
    from dtcm import video

    by_pixels = int(PREVIEW_MAX_DECODED // max(info.width * info.height, 1))
    return max(1, min(PREVIEW_MAX_FRAMES, video.LIMITS.max_frames, by_pixels))
