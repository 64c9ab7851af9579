"""The ECG viewer and the page URLs in a real browser: a fresh server's deep link opens clean, the strip has
its calibration pulses and a hover readout, calipers measure, ← / → step through records, several
uploads can each be viewed."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.conftest import CHROMIUM, VIEWPORT, choose, click_on_trace, idle, streamlit_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
NOT_FOUND = "does not seem to exist"


def test_a_fresh_servers_deep_links_open_their_page_without_a_page_not_found(tmp_path, browser):
    for path, heading in (("record", "Record & saliency"), ("train", "Train")):
        home = tmp_path / path
        home.mkdir()
        with streamlit_server(home) as server:  # a new server each time: the first request is the deep link
            tab = browser.new_page(viewport=VIEWPORT)
            tab.goto(f"{server['url']}/{path}")
            tab.get_by_role("heading", name=heading).wait_for(timeout=60_000)
            idle(tab)
            tab.wait_for_timeout(1500)  # the notice, when it came, came right after the first run
            assert tab.get_by_text(NOT_FOUND).count() == 0
            assert (
                tab.locator('[data-testid="stSidebarNav"]').count() == 1
            )  # the app's navigation, not a bare page
            tab.close()


def test_enter_in_a_train_field_does_not_start_a_run(tmp_path, browser):
    from tests.factories import make_deepfake_dir

    folder = make_deepfake_dir(tmp_path / "deepfake", 12, seed=2)  # data that can train: the button is live
    home = tmp_path / "home"
    home.mkdir()
    with streamlit_server(home, ECGLAB_DEEPFAKE=str(folder)) as server:
        tab = browser.new_page(viewport=VIEWPORT)
        tab.goto(f"{server['url']}/train")
        start = tab.get_by_role("button", name="Start training")
        start.wait_for()
        idle(tab)
        assert start.is_enabled()
        for label in ("Epochs", "Batch size"):
            box = tab.get_by_label(label, exact=True)
            box.fill("3")
            box.press("Enter")
            idle(tab)
        tab.wait_for_timeout(1500)
        assert tab.get_by_text("Started run").count() == 0
        assert tab.get_by_text("No runs yet").count() == 1
        assert not any(d.is_dir() for d in (home / "runs").glob("*"))  # no run directory was created
        tab.close()


def test_the_strip_has_calibration_pulses_hover_readout_and_calipers(server, page):
    page.goto(f"{server['url']}/explorer")
    page.get_by_role("heading", name="Record 6000").wait_for()
    page.locator(".js-plotly-plot .annotation-text").first.wait_for()
    idle(page)
    pulses = page.locator(".js-plotly-plot").first.evaluate(
        "gd => { const t = gd._fullData.find(d => d.name === '1 mV calibration');"
        " return t ? [Math.max(...t.y.filter(Number.isFinite)), t.x.filter(Number.isFinite).length] : null; }"
    )
    assert (
        pulses is not None and pulses[0] == pytest.approx(1.0) and pulses[1] == 4 * 6
    )  # 4 rows, 6 corners each
    width = page.locator(".js-plotly-plot").first.bounding_box()["width"]
    assert (
        width > 0.8 * page.viewport_size["width"] - 300
    )  # the strip uses the page's width (less the sidebar)
    page.get_by_text("Fiducials", exact=True).click()  # markers off: the clicks land on the trace itself
    idle(page)
    page.wait_for_function(
        "() => { const gd = document.querySelector('.js-plotly-plot');"
        " return gd && gd._fullData && !gd._fullData.some(d => d.name === 'QRS onset'); }"
    )
    click_on_trace(page, "II", 1.0, plot=0)  # hover first: the readout names lead, time and mV
    assert re.search(
        r"II .*s · -?\d+\.\d\d mV",
        page.locator(".js-plotly-plot").first.locator(".hoverlayer").text_content(),
    )
    page.get_by_text("first point II").wait_for()
    idle(page)
    click_on_trace(page, "II", 1.8, plot=0)
    reading = page.get_by_text(re.compile(r"Δt \d+ ms \(\d+ bpm\) · Δ [+-]\d\.\d\d mV")).first
    reading.wait_for()
    text = page.locator('[data-testid="stMarkdown"]', has_text="Calipers").first.text_content()
    dt = int(re.search(r"Δt (\d+) ms", text).group(1))
    t_a, t_b = (float(v) for v in re.findall(r"II (\d+\.\d{3}) s", text))
    assert abs(t_a - 1.0) < 0.15 and abs(t_b - 1.8) < 0.15  # the points clicked (nearest 10 ms readout point)
    assert dt == round((t_b - t_a) * 1000)
    bpm = int(re.search(r"\((\d+) bpm\)", text).group(1))
    assert bpm == round(60000 / dt)


def _press(page, key: str, shown: str, expected: str) -> None:
    """Press ``key`` on the page (not in a field) once the buttons that bind it are on screen; a press the
    browser took before Streamlit bound the shortcut (the heading still ``shown``) is pressed once more."""
    page.get_by_role("button", name="Next").wait_for()
    page.get_by_role("button", name="Previous").wait_for()
    for attempt in range(2):
        page.get_by_role("heading", name="Explorer").click()
        page.keyboard.press(key)
        try:
            page.get_by_role("heading", name=expected).wait_for(timeout=20_000 if attempt == 0 else 60_000)
            return
        except PlaywrightTimeoutError:
            if attempt or not page.get_by_role("heading", name=shown).is_visible():
                raise


def test_arrow_keys_and_buttons_step_through_the_records(server, page):
    page.goto(f"{server['url']}/explorer")
    page.get_by_role("heading", name="Record 6000").wait_for()
    idle(page)
    _press(page, "ArrowRight", "Record 6000", "Record 6001")
    idle(page)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="Record 6002").wait_for()
    idle(page)
    _press(page, "ArrowLeft", "Record 6002", "Record 6001")


def _csv(path, bpm: float) -> None:
    t = np.arange(0, 10, 1 / 250)
    period = 60 / bpm
    lead_ii = 1.2 * np.exp(-((t % period - period / 2) ** 2) / 0.0004)
    path.write_text("I,II\n" + "\n".join(f"{0.5 * v:.4f},{v:.4f}" for v in lead_ii))


def test_two_uploads_are_listed_and_each_can_be_viewed(server, page, tmp_path):
    first, second = tmp_path / "slow.csv", tmp_path / "fast.csv"
    _csv(first, 60)
    _csv(second, 100)
    page.goto(f"{server['url']}/explorer")
    choose(page, "Source", "Upload a record")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(first), str(second)])
    page.get_by_text("Uploaded records (2)").wait_for()
    idle(page)

    def shown() -> tuple[str, str]:
        page.wait_for_timeout(500)
        title = page.locator(".js-plotly-plot .gtitle").first.text_content()
        return title.split(" — ")[0], page.locator('[data-testid="stMetricValue"]').first.text_content()

    first_view = shown()
    assert first_view[0] == "slow"
    page.get_by_role("button", name="Next").click()
    page.locator(".js-plotly-plot .gtitle", has_text="fast").wait_for()
    idle(page)
    second_view = shown()
    assert second_view[0] == "fast" and second_view[1] != first_view[1]  # its own measurement too
    page.get_by_role("button", name="Previous").click()
    page.locator(".js-plotly-plot .gtitle", has_text="slow").wait_for()
    idle(page)
    assert shown() == first_view
