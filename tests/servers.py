"""What the app and browser tests share: a free port, stopping a served app, and Debian's chromium."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")  # Debian's package; never a browser that playwright downloads
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def street_clip() -> Path | None:
    """Real people walking, darkened like ARID, made at test time from ``../shared`` (never committed): the last
    seconds of vtest.avi, which the real validation set holds out from training. None without the shared data."""
    import importlib.util
    import tempfile

    root = Path(__file__).resolve().parents[1]
    src = root.parent / "shared" / "data" / "real" / "vtest.avi"
    if not src.is_file():
        return None
    spec = importlib.util.spec_from_file_location("make_examples", root / "scripts" / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_real(src, Path(tempfile.mkdtemp(prefix="dtcm_street_")), seed=2023)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """Terminate a served app, and kill it if it has not exited after ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def chromium(extra_args: list[str] | None = None):
    """Debian's chromium driven by playwright, closed afterwards; the test is skipped when either is missing."""
    if CHROMIUM is None:
        pytest.skip("no chromium executable on PATH (apt-get install chromium) to drive headless")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *(extra_args or [])])
        try:
            yield browser
        finally:
            browser.close()
