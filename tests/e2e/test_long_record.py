"""A long upload in a real browser: the Explorer draws an overview of the whole record and a window of it on
ECG paper; moving the window redraws it at its time in the record."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CHROMIUM, choose, fill, idle
from tests.factories import make_long_wfdb

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

#: The drawn figures' x ranges and first whole-second tick labels, read from plotly's own layout.
AXES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => [
    gd._fullLayout.xaxis.range, [...gd.querySelectorAll('.xaxislayer-above text')].map(t => t.textContent).filter(t => t)])"""


def test_a_two_hour_upload_is_an_overview_and_a_window_that_moves(server, page, tmp_path, test_output):
    header = make_long_wfdb(tmp_path, hours=2.0)
    page.goto(f"{server['url']}/explorer")
    choose(page, "Source", "Upload a record")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        [str(header), str(header.with_suffix(".dat"))]
    )
    page.get_by_text("too long to draw whole").wait_for()
    page.locator(".js-plotly-plot .gtitle", has_text="the whole record").wait_for()
    idle(page)
    (overview_range, overview_ticks), (window_range, _), *_ = page.evaluate(AXES_JS)
    assert overview_range == [0, 7200] and "1:00:00" in overview_ticks and "2:00:00" in overview_ticks
    assert window_range[1] == 10
    fill(page, "Start at (s)", "5400")
    page.locator(".js-plotly-plot .gtitle", has_text="1:30:00–1:30:10 of 2:00:00").wait_for()
    idle(page)
    _, (window_range, window_ticks), *_ = page.evaluate(AXES_JS)
    assert 5399.6 < window_range[0] < 5400 and window_range[1] == 5410
    assert window_ticks[0] == "1:30:00" and window_ticks[-1] == "1:30:10"
    page.screenshot(path=str(test_output / "e2e-long-record.png"), full_page=True)
