"""``log.jsonl``: one JSON record per line (start / resume / step / epoch / end / diverged), main process only."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

__all__ = ["Log", "finite_or_none", "json_default", "logger"]

logger = logging.getLogger("dtcm.train")  # every training module logs under the name its messages always had


class Log:
    """log.jsonl on the main process: one JSON object per line, flushed as written.

    Resuming (``keep_until_step`` given) first drops what a killed run wrote after its checkpoint.
    """

    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None):
        self.path, self.enabled = path, enabled
        if enabled and keep_until_step is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines() if _kept(line, keep_until_step)]
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{line}\n" for line in kept))
            os.replace(tmp, path)

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record, default=json_default) + "\n")


def _kept(line: str, keep_until_step: int) -> bool:
    """Whether a line of an earlier run's log survives a resume from ``keep_until_step``."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return False  # a line cut by the kill
    step = rec.get("step", 0)
    return (
        rec.get("type") in ("start", "resume")
        or (rec.get("type") == "step" and step <= keep_until_step)
        or (rec.get("type") == "epoch" and step < keep_until_step)
    )


def json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
