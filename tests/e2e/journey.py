"""Time the four user journeys in a real browser: ``python tests/e2e/journey.py [--out FILE]``.

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
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
SAMPLE = PROJECT / "assets" / "ptbxl-sample" / "records500" / "06000"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECGLAB_")}
    env["ECGLAB_HOME"] = str(home)
    port = _port()
    url = f"http://localhost:{port}"
    log = open(home / "streamlit.log", "wb")  # noqa: SIM115
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
    times: dict[str, float | bool] = {}
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
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
            shot("explorer")

            page.goto(f"{url}/results")
            page.get_by_role("tab", name="Reproduction tables").click()
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").first.click()
            page.get_by_role("option", name="tiny").first.click()
            _idle(page)
            t = time.monotonic()
            page.get_by_role("button", name="Reproduce: start what is missing").click()
            missing_js = """() => { let n = 0, cells = 0;
                for (const t of document.querySelectorAll('table')) {
                  const head = [...t.querySelectorAll('th')].map(h => h.textContent.toLowerCase());
                  for (const tr of t.querySelectorAll('tbody tr')) {
                    [...tr.querySelectorAll('td')].forEach((td, i) => {
                      if ((head[i] || '').includes('ours')) { cells++; if (td.textContent.trim() === '—') n++; }
                    });
                  } }
                return [n, cells]; }"""
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    text = json.dumps(times, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
