"""What the app and browser tests share: a free port, stopping a served app, and Debian's chromium."""

from __future__ import annotations

import shutil
import socket
import subprocess

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
