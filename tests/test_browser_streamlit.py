"""The Streamlit app served for real and driven by headless Chromium: upload, results, a playable clip.

Starts ``streamlit run streamlit_app.py`` on a free port (shipped weights when ``weights/index.json``
exists, else a tiny model), uploads a dark clip on the Recognise page through the file input, waits for
the Top-5 chart, the frame images and the enhanced ``<video>``, checks the browser can play that video
(``readyState >= 2``: it decodes our H.264) and saves ``screenshot_streamlit_recognise.png`` in a temporary
folder, or in ``$DTCM_SCREENSHOT_DIR`` when that names one (``DTCM_SCREENSHOT_DIR=docs`` refreshes the README's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import CHROMIUM, chromium, free_port, stop, street_clip
from test_streamlit import make_clip, make_weights

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium"),
    pytest.mark.timeout(240),
]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT_NAME = "screenshot_streamlit_recognise.png"


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not come up in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port; yields its base URL."""
    tmp = tmp_path_factory.mktemp("streamlit_server")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not (ROOT / "weights" / "index.json").is_file():
        env["DTCM_WEIGHTS_DIR"] = str(make_weights(tmp / "weights"))
    port = free_port()
    log = tmp / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.mark.slow  # the whole Recognise run in Chromium; the phone layout test below stays in the default run
def test_recognise_page_in_chromium(server, tmp_path):
    clip = street_clip() or make_clip(tmp_path / "dark_street.mp4")  # real walkers when ../shared is there
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(f"{server}/Recognise", wait_until="domcontentloaded")
        page.get_by_text("Upload a dark clip").wait_for(timeout=60_000)
        page.locator("input[type=file]").first.set_input_files(str(clip))

        page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=stImage] img').length >= 16"
            " && [...document.querySelectorAll('[data-testid=stImage] img')].every(i => i.complete)",
            timeout=60_000,
        )
        # the enhanced clip comes last: wait for it, or for an error in its place (any other alert)
        said = ("Not sure", "Enhanced", "Already bright enough", "Left as it is")  # verdict and decision
        known = " || ".join(f"a.innerText.startsWith({s!r})" for s in (*said, "Upload a dark clip"))
        page.wait_for_function(
            "document.querySelector('video') || [...document.querySelectorAll('[data-testid=stAlert]')]"
            f".some(a => !({known}))",
            timeout=120_000,
        )
        alerts = page.locator("[data-testid=stAlert]").all_inner_texts()
        assert not [a for a in alerts if not a.startswith(said)], alerts
        page.wait_for_function("document.querySelector('video').readyState >= 2", timeout=60_000)
        assert page.get_by_text("Top-1 action").count() == 1
        assert page.get_by_text("Page not found").count() == 0
        assert page.locator("[data-testid=stDownloadButton]").count() == 1

        # the page is done drawing (no spinner), then keep a picture of it for the README
        page.wait_for_function("!document.querySelector('[data-testid=stSpinner]')", timeout=60_000)
        # play a moment and pause, so the player shows a decoded frame rather than its loading spinner
        page.evaluate(
            """async () => {
                const v = document.querySelector('video');
                v.muted = true;
                await v.play();
                await new Promise(r => setTimeout(r, 700));
                v.pause();
            }"""
        )
        page.wait_for_function("document.querySelector('video').currentTime > 0", timeout=10_000)
        # Streamlit scrolls inside its main pane, so grow the window to the content to take it whole
        height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
        page.set_viewport_size({"width": 1440, "height": min(max(height, 1000), 4000)})
        page.wait_for_timeout(500)
        shot = Path(os.environ.get("DTCM_SCREENSHOT_DIR") or tmp_path) / SCREENSHOT_NAME
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_on_a_phone_the_upload_is_above_the_fold_and_every_page_is_reachable(server):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{server}/Recognise", wait_until="domcontentloaded")
        page.get_by_text("Upload a dark clip").wait_for(timeout=60_000)
        upload = page.locator("[data-testid=stFileUploaderDropzone]").first.bounding_box()
        assert upload["y"] + upload["height"] <= 844, upload
        page.locator(
            "[data-testid=stExpandSidebarButton], [data-testid=stSidebarCollapsedControl] button"
        ).first.click()
        nav = page.locator("[data-testid=stSidebarNav]")
        nav.wait_for(timeout=30_000)
        for name in ("Recognise", "Compare", "Fine-tune"):
            assert nav.get_by_text(name).first.is_visible(), name
