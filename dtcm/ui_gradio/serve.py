"""What the Gradio server does beside answering requests: warm the model up and bound the upload cache."""

from __future__ import annotations

import logging
import time

from dtcm import service

__all__ = ["cap_upload_cache", "warm_up"]

log = logging.getLogger("dtcm.app")


def warm_up() -> None:
    """Load the default model and start the decoder once, so the first visitor does not wait for them."""
    examples = service.example_clips()
    try:
        service.default_variant()
    except Exception:
        return
    if not examples:
        return
    t = time.perf_counter()
    try:
        service.analyse(examples[0][0], None, None)
        log.info("warmed up in %.1f s", time.perf_counter() - t)
    except Exception:
        log.exception("warm-up on %s failed", examples[0][0])


def cap_upload_cache(max_bytes: int, period_s: float = 10.0) -> None:
    """Keep Gradio's folder of raw uploads and served files under ``max_bytes``, oldest first (runs forever)."""
    from gradio.utils import get_upload_folder

    from dtcm.storage import trim_folder

    while True:
        try:
            freed = trim_folder(get_upload_folder(), max_bytes)
            if freed:
                log.warning("upload cache over its limit: removed %.1f MB of the oldest files", freed / 1e6)
        except Exception:
            log.exception("could not trim the upload cache")
        time.sleep(period_s)
