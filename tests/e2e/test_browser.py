"""The user's journey in a real browser (Debian's chromium through Playwright), against `streamlit run app.py`.

Home -> Explorer (a real PTB-XL record drawn with its 12 leads) -> build the DeepFake demo set ->
train a tiny regression model and watch it reach done -> see it in the Results table -> its saliency
heatmap. Each step is timed and screenshotted under test-output/ (look at them: the README's
screenshot comes from here); the timings go to test-output/e2e-timings.json.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import CHROMIUM, OURS_MISSING_JS, choose, fill, idle, lead_labels

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


class Steps:
    """Times each step and saves a screenshot after it."""

    def __init__(self, page, out: Path):
        self.page, self.out, self.timings = page, out, {}

    def done(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)
        self.page.screenshot(path=str(self.out / f"e2e-{len(self.timings)}-{name}.png"))


def test_a_new_user_browses_builds_trains_compares_and_explains(server, page, test_output):
    steps = Steps(page, test_output)
    url = server["url"]

    t = time.monotonic()
    page.goto(url)
    page.get_by_role("heading", name="ECG Lab").wait_for()
    page.locator('[role="gridcell"]', has_text="ptbxl:bundled").wait_for(state="attached")  # the data table
    idle(page)
    steps.done("home", t)

    t = time.monotonic()
    page.goto(f"{url}/explorer")
    page.get_by_role("heading", name="Record 6000").wait_for()
    page.locator(".js-plotly-plot .annotation-text").first.wait_for()
    idle(page)
    labels = set(lead_labels(page))
    assert {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"} <= labels
    heart_rate = page.locator('[data-testid="stMetricValue"]').first.text_content()
    assert heart_rate.endswith("bpm") and 30 < float(heart_rate.split()[0]) < 200  # measured, beside the ECG
    page.get_by_text("Representative beats: where the intervals were measured").click()
    beats = page.locator(".js-plotly-plot").nth(1)
    beats.locator(".annotation-text", has_text="V6").wait_for()  # the median beats drawn, V6 the last panel
    assert beats.locator(".legendtext", has_text="QRS onset").count() == 1
    steps.done("explorer", t)

    t = time.monotonic()
    page.goto(url)
    page.get_by_role("button", name="Build the demo set").click()
    page.get_by_text("Built: 300 generated ECGs").wait_for(timeout=240_000)
    steps.done("demo_set", t)

    t = time.monotonic()
    page.goto(f"{url}/train")
    page.get_by_role("button", name="Start training").wait_for()
    idle(page)
    choose(page, "Data", "DeepFake demo set (generated)")
    choose(page, "Model", "cnn")
    choose(page, "Sampling rate (Hz)", "100.0")
    fill(page, "Epochs", "2")
    fill(page, "Batch size", "16")
    fill(page, "Max records (0 = all)", "80")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Started run").wait_for()
    run_id = page.get_by_text("Started run").text_content().split("Started run ")[1].split(":")[0]
    page.goto(url)  # leave: a new session, as after closing the tab; the run goes on in its own process
    page.get_by_role("heading", name="ECG Lab").wait_for()
    page.goto(f"{url}/train")  # come back: the live view shows the run that is training
    page.get_by_text(f"Run {run_id} is done").wait_for(timeout=240_000)
    page.wait_for_timeout(1000)
    steps.done("train", t)

    t = time.monotonic()
    page.goto(f"{url}/results")
    page.get_by_role("heading", name="Results").wait_for()
    idle(page)
    cell = page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=run_id)
    cell.first.wait_for(state="attached")  # the grid is a canvas; its accessible cells hold the text
    assert page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text="done").count() >= 1
    steps.done("results", t)

    t = time.monotonic()
    page.goto(f"{url}/record")
    page.get_by_role("heading", name="Saliency per lead").wait_for()
    page.locator(".js-plotly-plot .heatmaplayer image").first.wait_for(timeout=120_000)
    idle(page)
    steps.done("saliency", t)

    (test_output / "e2e-timings.json").write_text(json.dumps(steps.timings, indent=2))


def test_an_upload_is_validated_in_the_browser(server, page, tmp_path, test_output):
    bad = tmp_path / "broken.hea"
    bad.write_text("this is not a WFDB header\n")
    good = tmp_path / "two_leads.csv"
    t = np.arange(0, 10, 1 / 250)
    lead_ii = 1.2 * np.exp(-((t % 0.8 - 0.4) ** 2) / 0.0004)  # a spike train at 75 bpm, 250 Hz
    good.write_text("I,II\n" + "\n".join(f"{0.5 * v:.4f},{v:.4f}" for v in lead_ii))

    page.goto(f"{server['url']}/explorer")
    choose(page, "Source", "Upload a record")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files(str(bad))
    page.get_by_text("Could not read the upload: broken.hea:").wait_for()
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(test_output / "e2e-upload-error.png"))

    page.goto(f"{server['url']}/explorer")  # a fresh session, then a good CSV
    choose(page, "Source", "Upload a record")
    uploader.set_input_files(str(good))
    fill(page, "Sampling rate of the CSV (Hz)", "250")
    page.get_by_text("250 Hz, 10.0 s").wait_for()  # the figure title once redrawn at the rate given
    idle(page)
    labels = set(lead_labels(page))
    assert {"I", "II", "III", "aVR", "aVL", "aVF"} <= labels  # the limb leads derived from I and II


@pytest.mark.slow
def test_a_reproduction_fills_its_table_in_live_and_keeps_the_tab(server, page, test_output):
    page.goto(f"{server['url']}/results")
    tab = page.get_by_role("tab", name="Reproduction tables")
    tab.click()
    choose(page, "Preset", "tiny")
    idle(page)
    missing, cells = page.evaluate(OURS_MISSING_JS)
    assert cells and missing == cells  # nothing trained yet: every "ours" cell is a dash
    t = time.monotonic()
    page.get_by_role("button", name="Reproduce: start what is missing").click()
    page.get_by_text(re.compile(r"^5/5 runs done")).wait_for(timeout=900_000)  # no reload anywhere
    page.wait_for_timeout(4000)  # one more refresh of the table
    missing, cells = page.evaluate(OURS_MISSING_JS)
    assert cells and missing < cells, "the finished runs' numbers are not in the table"
    assert tab.get_attribute("aria-selected") == "true"  # still on the tab the user chose
    page.screenshot(path=str(test_output / "e2e-reproduction-live.png"), full_page=True)
    (test_output / "e2e-reproduction-s.txt").write_text(f"{time.monotonic() - t:.1f}\n")


def test_a_damaged_run_store_is_rebuilt_and_the_banner_says_so(server, page, test_output):
    from ecgcore.runs.store import RunStore
    from ecgcore.train.config import TrainConfig

    runs = Path(server["home"]) / "runs"
    store = RunStore(runs)
    store.create_run(TrainConfig(data="deepfake:/x"), run_id="kept-through-damage")
    store.update(
        "kept-through-damage", status="done", summary={"status": "done", "headline": {"val_mae": 3.5}}
    )
    (runs / "runs.sqlite").write_bytes(b"not a database" * 100)

    page.goto(server["url"])  # the banner is the app's, above every page
    page.get_by_text("Run store repaired").wait_for()
    idle(page)
    page.screenshot(path=str(test_output / "e2e-store-repaired.png"))
    assert page.get_by_text("Traceback").count() == 0
    banner = page.locator('[data-testid="stAlert"]').filter(has_text="Run store repaired").inner_text()
    recovered = int(re.search(r"(\d+) run\(s\) recovered", banner).group(1))
    assert recovered == sum(
        1 for d in runs.iterdir() if (d / "config.json").exists()
    )  # every run dir, this one too
    assert str(server["home"]) not in banner  # no absolute server path
    assert RunStore(runs).get_run("kept-through-damage")["status"] == "done"
