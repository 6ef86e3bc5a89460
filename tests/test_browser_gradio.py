"""The Gradio app in headless Chromium: upload a clip, see every result render, play the enhanced video.

Drives Debian's ``chromium`` (never a downloaded browser) through playwright and saves the screenshots
``screenshot_gradio_recognise.png`` and ``screenshot_gradio_compare.png`` to a temporary folder, or, when real
weights are served (``weights/`` or ``$DTCM_APP_TEST_WEIGHTS``) and ``$DTCM_SCREENSHOT_DIR`` names a folder
(``DTCM_SCREENSHOT_DIR=docs`` refreshes the README's pictures), to that folder: the test suite itself
leaves the working tree as it found it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from servers import chromium, street_clip
from test_app_gradio import EXAMPLES, FIXTURE_VARIANT, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a served app in Chromium: the slow selection

RESULT_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def app_page(tmp_path_factory):
    """The app in a headless Chromium page, and the folder its screenshots go to."""
    tmp = tmp_path_factory.mktemp("browser")
    with chromium() as browser, serve_app(tmp) as (url, default):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("DTCM Studio").first.wait_for()
        # screenshots of the untrained stand-in would mislead: they never go to the asked folder
        wanted = os.environ.get("DTCM_SCREENSHOT_DIR")
        yield page, (Path(wanted) if wanted and default != FIXTURE_VARIANT else tmp)
        assert not errors, f"JavaScript errors on the page: {errors}"


def _wait(page, condition: str, what: str, timeout: int = RESULT_TIMEOUT_MS) -> None:
    """Wait until the JS expression ``condition`` holds; an error toast ends the wait with its text."""
    js = f"() => ({condition}) ? 'ok' : (document.querySelector('.toast-wrap')?.innerText.trim() || false)"
    outcome = page.wait_for_function(js, timeout=timeout).json_value()
    if outcome != "ok":
        shot = Path(tempfile.gettempdir()) / "dtcm_app_failure.png"
        page.screenshot(path=str(shot), full_page=True)
        pytest.fail(f"waiting for {what}, the app showed an error: {outcome!r} (screenshot: {shot})")


def _screenshot(page, path: Path) -> None:
    """A full-page screenshot as a 256-colour PNG (a third of the size; fine for UI and thumbnails)."""
    from PIL import Image

    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def _gallery_images_loaded(page, elem_id: str) -> int:
    return page.evaluate(
        "id => [...document.querySelectorAll(`#${id} img`)].filter(i => i.complete && i.naturalWidth > 0).length",
        elem_id,
    )


def test_recognise_shows_every_result_and_plays_the_enhanced_clip(app_page):
    page, shots = app_page
    clip = street_clip() or next(p for p in EXAMPLES if "walk" in p.name)
    page.locator("#rec-video input[type=file]").set_input_files(str(clip))
    page.locator("#rec-video video").wait_for(timeout=30_000)  # the upload preview
    page.locator("#analyse-btn").click()

    _wait(page, "document.querySelector('#top5 .js-plotly-plot svg.main-svg')", "the Top-5 chart")
    assert page.locator("#top5 .js-plotly-plot g.bars path, #top5 .js-plotly-plot .barlayer path").count() >= 5
    for gallery in ("frames-before", "frames-after", "diff-before", "diff-after"):
        loaded = f"[...document.querySelectorAll('#{gallery} img')].some(i => i.complete && i.naturalWidth > 0)"
        _wait(page, loaded, f"the {gallery} gallery")
        assert _gallery_images_loaded(page, gallery) >= 4, gallery

    video = page.locator("#enhanced video")
    _wait(page, "(v => v && (v.readyState >= 2 || v.error))(document.querySelector('#enhanced video'))", "the video")
    state = video.evaluate("v => ({ready: v.readyState, error: v.error && v.error.code, width: v.videoWidth})")
    assert state["error"] is None and state["ready"] >= 2 and state["width"] > 0, state
    assert "not playable" not in page.locator("#enhanced").inner_text().lower()
    page.wait_for_timeout(500)  # let the layout settle after the last images
    _screenshot(page, shots / "screenshot_gradio_recognise.png")


def test_compare_tab_renders_every_enhancer(app_page):
    page, shots = app_page
    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-video video").wait_for(timeout=30_000)  # carried over from Recognise
    page.locator("#compare-btn").click()
    _wait(page, "document.querySelector('#compare-plot .js-plotly-plot svg.main-svg')", "the comparison chart")
    _wait(
        page, "[...document.querySelectorAll('#cmp-frames img')].filter(i => i.naturalWidth > 0).length >= 8", "frames"
    )
    page.wait_for_timeout(500)
    _screenshot(page, shots / "screenshot_gradio_compare.png")
