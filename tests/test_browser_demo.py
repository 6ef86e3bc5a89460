"""The Gradio demo as a first-time visitor meets it, in headless Chromium: an AVI upload that previews, a
clip recorded from a (fake) webcam, the timeline of a long clip, one clear error, and a phone screen.

Chromium gets a fake camera fed from a y4m file (``--use-file-for-fake-video-capture``); the app is
served as in ``test_app_gradio.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from servers import chromium
from test_app_gradio import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 120_000


def _y4m(path: Path, n: int = 40, w: int = 160, h: int = 120) -> Path:
    """A dim clip of a moving blob in YUV4MPEG2 (what Chromium's fake camera plays)."""
    import cv2

    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for t in range(n):
            img = np.full((h, w, 3), 18, np.uint8)
            cv2.circle(img, (20 + 3 * t, h // 2), 14, (50, 50, 55), -1)
            f.write(b"FRAME\n" + cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def _avi(path: Path, n: int = 20, w: int = 1280, h: int = 720) -> Path:
    """An MPEG-4 Part 2 AVI, which browsers cannot play."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(n):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 30, (h, w, 3), dtype=np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    camera = _y4m(tmp / "camera.y4m")
    fake_camera = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    with chromium(fake_camera) as browser, serve_app(tmp) as (url, default):
        yield browser, url, tmp


def _page(browser_app, width=1400, height=1000):
    browser, url, _ = browser_app
    page = browser.new_page(viewport={"width": width, "height": height})
    toasts = []
    page.expose_function("dtcmToast", lambda text: toasts.append(text))
    page.add_init_script(
        "new MutationObserver(() => document.querySelectorAll('.toast-item').forEach(t => {"
        " if (!t.dataset.seen) { t.dataset.seen = 1; setTimeout(() => t.isConnected && window.dtcmToast(t.innerText), 300); }"
        "})).observe(document, {childList: true, subtree: true});"
    )
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text("DTCM Studio").first.wait_for()
    return page, toasts


def _wait(page, condition: str, timeout: int = TIMEOUT_MS):
    page.wait_for_function(f"() => ({condition})", timeout=timeout)


def _analysed(page):
    _wait(page, "document.querySelector('#top5 .js-plotly-plot svg.main-svg')")
    return page.locator("textarea").evaluate_all("ts => ts.map(t => t.value).join('\\n')")


def test_an_avi_upload_previews_with_no_error_and_is_analysed_at_its_own_size(browser_app):
    page, toasts = _page(browser_app)
    clip = _avi(browser_app[2] / "camera_roll.avi")
    page.locator("#rec-video input[type=file]").set_input_files(str(clip))
    _wait(page, "document.querySelector('#preview-note')?.innerText.includes('Preview converted')")
    _wait(page, "(v => v && v.readyState >= 2)(document.querySelector('#rec-video video'))")
    page.wait_for_timeout(800)
    assert not [t for t in toasts if "not playable" in t.lower()], toasts
    page.locator("#analyse-btn").click()
    text = _analysed(page)
    assert "1280x720" in text, text  # the original was analysed, not the 480p preview
    page.close()


def test_a_clip_recorded_from_the_webcam_is_recognised(browser_app):
    page, toasts = _page(browser_app)
    page.locator("#rec-video button[aria-label='Capture from camera']").click()
    page.locator("#rec-video button", has_text="Click to Access Webcam").click()
    record = page.locator("#rec-video button", has_text="Record")
    record.wait_for(timeout=30_000)
    record.click()
    page.wait_for_timeout(2500)
    page.locator("#rec-video button", has_text="Stop").click()
    _wait(
        page,
        "(v => v && v.readyState >= 2 && v.src.includes('gradio_api/file'))(document.querySelector('#rec-video video'))",
    )
    page.locator("#analyse-btn").click()
    text = _analysed(page)
    assert "The actions were recognised from" in text, text
    assert not toasts, toasts
    page.close()


def test_a_long_clip_has_a_timeline_and_a_chosen_segment(browser_app):
    from dtcm import video

    page, toasts = _page(browser_app)
    clip = browser_app[2] / "long_walk.mp4"
    video.write_video(clip, np.random.default_rng(1).integers(0, 25, (200, 96, 128, 3)).astype(np.uint8), 10)
    page.locator("#rec-video input[type=file]").set_input_files(str(clip))
    page.locator("#analyse-btn").click()
    assert "of 20.0 s" in _analysed(page)
    page.get_by_text("Timeline: the action over the whole clip").click()
    page.locator("#timeline-btn").click()
    _wait(page, "document.querySelector('#timeline-plot .js-plotly-plot g.barlayer path')")
    page.locator("#segment-start input").fill("15")
    page.locator("#segment-btn").click()
    _wait(page, "[...document.querySelectorAll('textarea')].some(t => t.value.includes('(15.0-'))")
    assert not toasts, toasts
    page.close()


def test_an_error_is_one_message_and_clears_the_last_results(browser_app):
    from dtcm import video

    page, toasts = _page(browser_app)
    good = browser_app[2] / "good.mp4"
    video.write_video(good, np.random.default_rng(2).integers(0, 25, (24, 96, 128, 3)).astype(np.uint8), 10)
    page.locator("#rec-video input[type=file]").set_input_files(str(good))
    page.locator("#analyse-btn").click()
    _analysed(page)
    _wait(page, "document.querySelectorAll('#frames-before img').length > 0")
    bad = browser_app[2] / "holiday.mp4"
    bad.write_bytes(b"not a video at all\n" * 500)
    page.locator("#rec-video button[aria-label='Clear']").first.click()
    page.locator("#rec-video input[type=file]").set_input_files(str(bad))
    page.locator("#analyse-btn").click()
    _wait(page, "document.querySelector('.toast-item')")
    page.wait_for_timeout(1500)
    assert len(toasts) == 1 and "holiday.mp4" in toasts[0], toasts
    assert page.locator("#frames-before img").count() == 0  # the last run's frames are gone
    badges = page.evaluate(  # "Error" marks on components, the toast itself not counted
        "() => [...document.querySelectorAll('.error')].filter(e => e.offsetParent && "
        "!e.closest('[data-testid=toast-body]')).length"
    )
    assert badges <= 1, badges
    page.close()


def test_on_a_phone_upload_and_analyse_are_above_the_fold_and_every_tab_is_there(browser_app):
    page, _ = _page(browser_app, width=390, height=844)
    upload = page.locator("#rec-video").bounding_box()
    button = page.locator("#analyse-btn").bounding_box()
    assert upload["y"] < 844 and button["y"] + button["height"] <= 844, (upload, button)
    for name in ("Recognise", "Compare", "Fine-tune", "About"):
        assert page.get_by_role("tab", name=name).is_visible(), name
    cut = page.evaluate(
        "() => [...document.querySelectorAll('label span, button')].filter(e => e.offsetParent && "
        "e.scrollWidth > e.clientWidth + 2 && getComputedStyle(e).overflow === 'hidden').map(e => e.innerText)"
    )
    assert not cut, cut
    from test_app_gradio import EXAMPLES

    page.locator("#rec-video input[type=file]").set_input_files(str(EXAMPLES[0]))
    page.locator("#analyse-btn").click()
    _analysed(page)
    page.wait_for_timeout(500)
    cut = page.evaluate(  # a result text box that needs scrolling to be read is cut
        "() => [...document.querySelectorAll('textarea')].filter(t => t.offsetParent && t.value && "
        "t.scrollHeight > t.clientHeight + 2).map(t => t.value)"
    )
    assert not cut, cut
    page.screenshot(path=str(browser_app[2] / "phone.png"), full_page=True)
    page.close()


def test_the_example_shelf_shows_what_each_clip_is_and_loads_it(browser_app):
    page, toasts = _page(browser_app)
    shelf = page.locator("#example-shelf")
    _wait(page, "[...document.querySelectorAll('#example-shelf img')].filter(i => i.naturalWidth > 0).length >= 5")
    captions = shelf.inner_text()
    assert "Drink" in captions and "Walk" in captions and "synthetic actors" in captions, captions
    shelf.locator("img").first.click()
    _wait(page, "(v => v && v.readyState >= 2)(document.querySelector('#rec-video video'))")
    page.locator("#analyse-btn").click()
    assert "The actions were recognised from" in _analysed(page)
    assert not toasts, toasts
    page.close()
