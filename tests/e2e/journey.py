"""Time the four user journeys in a real browser: ``PYTHONPATH=. python tests/e2e/journey.py [--out FILE]``.

Starts ``streamlit run app.py`` on a fresh data directory and measures, with Debian's chromium:

- ``first_load``: the Home page from a cold server to its data table;
- ``record_drawn``: the Explorer from its URL to the first record's ECG with lead labels;
- ``reproduction_to_results``: Table 1 with the ``tiny`` preset, from the Reproduce click until the
  table shows numbers (``reload_needed`` says whether only a browser reload showed them);
- ``upload_to_saliency``: a WFDB upload (two files) on Record & saliency until the heatmap is drawn.

Seconds of wall time on whatever machine runs it (say how busy it was when you quote them).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import ARGS, CHROMIUM, OURS_MISSING_JS, PROJECT, click_on_trace, streamlit_server

SAMPLE = PROJECT / "assets" / "ptbxl-sample" / "records500" / "06000"


def _idle(page) -> None:
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=600_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--shots", type=Path, default=None, help="save a screenshot per journey here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="ecglab-journey-"))
    times: dict[str, float | bool] = {}
    with streamlit_server(home) as server:
        url = server["url"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(600_000)

            def shot(name: str) -> None:
                if args.shots:
                    args.shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(args.shots / f"journey-{name}.png"))

            t = time.monotonic()
            page.goto(url)
            page.get_by_role("heading", name="ECG Lab").wait_for()
            page.locator('[role="gridcell"]', has_text="ptbxl:bundled").wait_for(state="attached")
            _idle(page)
            times["first_load"] = round(time.monotonic() - t, 1)
            shot("home")

            t = time.monotonic()
            page.goto(f"{url}/explorer")
            page.locator(".js-plotly-plot .annotation-text").first.wait_for()
            _idle(page)
            times["record_drawn"] = round(time.monotonic() - t, 1)
            if page.get_by_text("Clear calipers").count():  # this version has calipers: show them
                page.get_by_text("Fiducials", exact=True).click()
                _idle(page)
                click_on_trace(page, "II", 0.6)
                page.get_by_text("first point II").wait_for()
                _idle(page)
                click_on_trace(page, "II", 1.4)
                page.get_by_text("Δt", exact=False).first.wait_for()
                _idle(page)
            shot("explorer")

            page.goto(f"{url}/results")
            page.get_by_role("tab", name="Reproduction tables").click()
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").first.click()
            page.get_by_role("option", name="tiny").first.click()
            _idle(page)
            t = time.monotonic()
            page.get_by_role("button", name="Reproduce: start what is missing").click()
            missing_js = OURS_MISSING_JS
            reload_needed = False
            while True:
                page.wait_for_timeout(2000)
                if page.get_by_text("5/5 runs done").count():
                    break
                if time.monotonic() - t > 900:
                    raise TimeoutError("the reproduction did not finish in 15 min")
            done_at = time.monotonic() - t
            for _ in range(10):  # does the table show numbers without a reload?
                missing, cells = page.evaluate(missing_js)
                if cells and not missing:
                    break
                page.wait_for_timeout(1000)
            else:
                reload_needed = True
                page.reload()
                page.get_by_role("tab", name="Reproduction tables").click()
                _idle(page)
            times["reproduction_runs_done"] = round(done_at, 1)
            times["reproduction_to_results"] = round(time.monotonic() - t, 1)
            times["reload_needed"] = reload_needed
            shot("results")
            if args.shots:  # Compare: tick the first two runs in the Runs tab
                page.get_by_role("tab", name="Runs").click()
                _idle(page)
                grid = page.locator('[data-testid="stDataFrame"]').first
                box = grid.bounding_box()
                for row in (1, 2):
                    page.mouse.click(box["x"] + 18, box["y"] + 35 * row + 17)
                    _idle(page)
                page.get_by_role("tab", name="Compare").click()
                _idle(page)
                page.wait_for_timeout(1500)
                shot("compare")

            page.goto(f"{url}/record")
            page.get_by_text("Upload a file").first.click()
            _idle(page)
            t = time.monotonic()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
                [str(SAMPLE / "06000_hr.hea"), str(SAMPLE / "06000_hr.dat")]
            )
            page.locator(".js-plotly-plot .heatmaplayer image").first.wait_for()
            _idle(page)
            times["upload_to_saliency"] = round(time.monotonic() - t, 1)
            shot("record")
            browser.close()
    text = json.dumps(times, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
