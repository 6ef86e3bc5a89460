"""Old import path of :mod:`dtcm.hub.push`."""

from dtcm.hub.push import IGNORE_PATTERNS, push

__all__ = ["IGNORE_PATTERNS", "push"]
