"""The user's journey in a real browser (Debian's chromium through Playwright), against `streamlit run app.py`.

Home -> Explorer (a real PTB-XL record drawn with its 12 leads) -> build the DeepFake demo set ->
train a tiny regression model and watch it reach done -> see it in the Results table -> its saliency
heatmap. Each step is timed and screenshotted under test-output/ (look at them: the README's
screenshot comes from here); the timings go to test-output/e2e-timings.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
PROJECT = Path(__file__).resolve().parents[2]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 2000}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free localhost port with its own empty data directory."""
    home = tmp_path_factory.mktemp("e2e_home")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ECGLAB_PTBXL", "ECGLAB_PTBXL_PLUS", "ECGLAB_DEEPFAKE")
    }
    env["ECGLAB_HOME"] = str(home)
    log = open(home / "streamlit.log", "wb")  # noqa: SIM115 -- the server outlives this block; closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start: {(home / 'streamlit.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield {"url": url, "home": home}
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_page(viewport=VIEWPORT)
        tab.set_default_timeout(60_000)
        yield tab
        browser.close()


class Steps:
    """Times each step and saves a screenshot after it."""

    def __init__(self, page, out: Path):
        self.page, self.out, self.timings = page, out, {}

    def done(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)
        self.page.screenshot(path=str(self.out / f"e2e-{len(self.timings)}-{name}.png"))


def idle(page) -> None:
    """Wait until the app has finished its current script run."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option).first.click()


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")


def lead_labels(page) -> list[str]:
    """The lead names written on the ECG figure (read in one go: the figure may redraw meanwhile)."""
    return page.locator(".js-plotly-plot .annotation-text").evaluate_all("els => els.map(e => e.textContent)")


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
    assert "1 run(s) recovered" in banner and str(server["home"]) not in banner  # no absolute server path
    assert RunStore(runs).get_run("kept-through-damage")["status"] == "done"
