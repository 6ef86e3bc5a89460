"""What a visitor sends, checked once: ``ServiceError`` and the rules for k, a file, a start time.

Library errors a visitor can cause (a bad video, a full disk) become a ``ServiceError`` with the
library's own sentence, so the UIs show every problem the same way.
"""

from __future__ import annotations

from pathlib import Path

from dtcm.service.ui import K_RANGE, VIDEO_TYPES_TEXT

__all__ = ["ServiceError"]


class ServiceError(ValueError):
    """A problem the user can fix, in one sentence."""


def check_k(k) -> int | None:
    """k as an int within ``K_RANGE`` (a whole float is accepted), or None for the variant's own."""
    if k is None:
        return None
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not K_RANGE[0] <= k <= K_RANGE[1]:
        raise ServiceError(f"k must be a whole number from {K_RANGE[0]} to {K_RANGE[1]}, got {k!r}")
    return k


def check_path(path) -> str:
    """The path of an existing file, as a string."""
    if path is None or str(path) == "":
        raise ServiceError(f"no video was given: upload a clip ({VIDEO_TYPES_TEXT}) or pick an example")
    if not Path(path).is_file():
        raise ServiceError(f"the file {Path(path).name!r} does not exist (it may have expired; upload it again)")
    return str(path)


def check_seconds(start_s) -> float:
    """A segment start as a float number of seconds (its range is the caller's rule)."""
    try:
        return float(start_s)
    except (TypeError, ValueError):
        raise ServiceError(f"the segment start must be a number of seconds, got {start_s!r}") from None


def video_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with a ``dtcm.video.VideoError`` turned into a ``ServiceError``."""
    from dtcm.video import VideoError

    return _translated(VideoError, fn, *args, **kwargs)


def image_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with a ``dtcm.images.ImageError`` turned into a ``ServiceError``."""
    from dtcm.images import ImageError

    return _translated(ImageError, fn, *args, **kwargs)


def storage_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with a ``dtcm.storage.StorageError`` turned into a ``ServiceError``."""
    from dtcm.storage import StorageError

    return _translated(StorageError, fn, *args, **kwargs)


def _translated(error: type[Exception], fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except error as exc:
        raise ServiceError(str(exc)) from None
