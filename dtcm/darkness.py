"""Video darkness, the paper's Eq. 12-14 and the released tool's frame-vote variant (SPEC A8).

``Dv = mean over sampled frames of (S_m - Sc) / Sc`` with ``S_m`` a frame's mean luma (Y of YCrCb on
0..255) and ``Sc = 112``; a video is dark when ``Dv < -tau`` with ``tau = 0.877`` (ARID's mean darkness).
The vote variant calls a frame dark when its own score is below ``-tau`` and the video dark when the
fraction of dark frames is at least ``tau``.

The apps and the CLI tell one story on one scale, the clip's mean brightness ``Sc (1 + Dv)`` (0 black, 255
white): "dark" up to ``DARK_LUMA``, "lit" from ``LIT_LUMA``, "dim" between; ``dtcm.adaptive`` enhances in
full, holds back or enhances lightly at the same two points. The paper's threshold (brightness about 14) is
stricter: a clip below it is "as dark as ARID's clips", and ``is_dark`` keeps the paper's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DARK_LUMA",
    "LIT_LUMA",
    "SC",
    "TAU",
    "brightness",
    "light_level",
    "DarknessReport",
    "frame_luma",
    "frame_scores",
    "darkness_score",
    "is_dark",
    "is_dark_vote",
    "segment_indices",
    "video_darkness",
]

SC = 112.0  # the luma a "normal" frame has (Eq. 12)
TAU = 0.877  # ARID's mean darkness (Eq. 14)
SEGMENTS = 8  # frames sampled per video, one per equal segment
DARK_LUMA = 60.0  # mean brightness (0..255) at or below which a clip is "dark" (and enhanced in full)
LIT_LUMA = 90.0  # from this mean brightness a clip is "lit" (enhanced lightly); between the two, "dim"
BT601 = np.array([0.299, 0.587, 0.114])  # luma weights of R, G, B


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 on 0..255, got {frames.dtype}")
    return frames


def frame_luma(frames: np.ndarray) -> np.ndarray:
    """Mean luma (Y of YCrCb, BT.601 weights, 0..255) of each frame: (N, H, W, 3) uint8 -> (N,).

    The mean of Y is the weighted mean of the channel means, taken one frame at a time (exact sums in double):
    no float copy of the frames is made, whatever their size.
    """
    import cv2

    frames = _check_frames(frames)
    means = np.array([cv2.mean(np.ascontiguousarray(f))[:3] for f in frames]).reshape(-1, 3)  # (N, 3)
    return means @ BT601


def frame_scores(frames: np.ndarray, sc: float = SC) -> np.ndarray:
    """Per-frame darkness ``(S_m - Sc) / Sc`` (Eq. 12): (N,) in [-1, (255 - Sc) / Sc]."""
    return (frame_luma(frames) - sc) / sc


def darkness_score(frames: np.ndarray, sc: float = SC) -> float:
    """Dv of Eq. 13: the mean of the per-frame scores of the sampled frames."""
    return float(frame_scores(frames, sc).mean())


def brightness(dv: float) -> float:
    """Mean brightness (luma, 0..255) of a clip of darkness score ``dv``."""
    return SC * (1.0 + dv)


def light_level(dv: float) -> str:
    """The one word for a clip's light: "dark", "dim" or "lit", from its mean brightness.

    Example:
        >>> light_level(-0.8), light_level(-0.3), light_level(0.1)  # brightness 22, 78 and 123
        ('dark', 'dim', 'lit')
    """
    b = brightness(dv)
    return "dark" if b <= DARK_LUMA else ("dim" if b < LIT_LUMA else "lit")


def is_dark(dv: float, tau: float = TAU) -> bool:
    """Eq. 14: dark iff Dv < -tau."""
    return bool(dv < -tau)


def is_dark_vote(frames: np.ndarray, tau: float = TAU, sc: float = SC) -> bool:
    """The released tool's variant: dark iff the fraction of frames scoring below -tau is >= tau."""
    scores = frame_scores(frames, sc)
    return bool((scores < -tau).mean() >= tau)


def segment_indices(num_frames: int, segments: int = SEGMENTS, rng: np.random.Generator | None = None):
    """One frame index per equal segment: the middle one, or a random one when ``rng`` is given."""
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    edges = np.linspace(0, num_frames, segments + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        lo_i, hi_i = int(np.floor(lo)), max(int(np.ceil(hi)) - 1, int(np.floor(lo)))
        idx = int(rng.integers(lo_i, hi_i + 1)) if rng is not None else int((lo + hi) / 2)
        out.append(min(idx, num_frames - 1))
    return out


@dataclass
class DarknessReport:
    path: str
    dv: float
    dark: bool  # the paper's Eq. 14: as dark as ARID's clips
    dark_vote: bool  # the released tool's frame vote at the same threshold
    frames: int

    @property
    def brightness(self) -> float:
        return brightness(self.dv)

    @property
    def light(self) -> str:
        return light_level(self.dv)


def video_darkness(path: str | Path) -> DarknessReport:
    """Darkness of a video file from 8 frames, one from the middle of each of 8 equal segments."""
    from dtcm import video

    info = video.probe(path)
    idx = segment_indices(max(info.frames, 1))
    frames = video.read_frames(path, idx)
    dv = darkness_score(frames)
    return DarknessReport(str(path), dv, is_dark(dv), is_dark_vote(frames), info.frames)
