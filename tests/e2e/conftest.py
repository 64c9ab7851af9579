"""The browser tests' harness: ``streamlit run app.py`` on a free port with its own data directory, and
Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PROJECT = Path(__file__).resolve().parents[2]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 2000}


#: Counts the cells of the reproduction table's "ours" columns and how many still read "—".
OURS_MISSING_JS = """() => { let n = 0, cells = 0;
    for (const t of document.querySelectorAll('[data-testid="stMarkdown"] table')) {
      const head = [...t.querySelectorAll('thead th')].map(h => h.textContent.toLowerCase());
      for (const tr of t.querySelectorAll('tbody tr')) {
        [...tr.querySelectorAll('td')].forEach((td, i) => {
          if ((head[i] || '').includes('ours')) { cells++; if (td.textContent.trim() === '—') n++; }
        });
      } }
    return [n, cells]; }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(home: Path, **extra_env: str) -> Iterator[dict]:
    """`streamlit run app.py` on a free localhost port with ``home`` as its (empty) data directory."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ECGLAB_PTBXL", "ECGLAB_PTBXL_PLUS", "ECGLAB_DEEPFAKE")
    }
    env["ECGLAB_HOME"] = str(home)
    env.update(extra_env)
    log = open(home / "streamlit.log", "wb")  # noqa: SIM115 -- the server outlives this block; closed at exit
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
    try:
        yield {"url": url, "home": home}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a test module."""
    with streamlit_server(tmp_path_factory.mktemp("e2e_home")) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser):
    tab = browser.new_page(viewport=VIEWPORT)
    tab.set_default_timeout(60_000)
    yield tab
    tab.close()


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


def click_on_trace(page, lead: str, t: float, plot: int = 0) -> None:
    """Click the ECG figure where lead ``lead`` is drawn at ``t`` seconds (data to pixels by plotly's axes).

    The figure may be redrawn by a rerun at any moment: the lookup is retried until a drawn figure answers.
    """
    for _ in range(50):
        box = page.evaluate(
            """([n, lead, t]) => {
                const gd = document.querySelectorAll('.js-plotly-plot')[n];
                if (!gd || !gd._fullData || !gd._fullLayout || !gd._fullLayout.xaxis) return null;
                const tr = gd._fullData.find(d => d.name === lead && d.mode === 'lines');
                if (!tr) return null;
                let i = 0; while (i < tr.x.length - 1 && tr.x[i] < t) i++;
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                return [r.left + xa._offset + xa.l2p(tr.x[i]), r.top + ya._offset + ya.l2p(tr.y[i])];
            }""",
            [plot, lead, t],
        )
        if box:
            break
        page.wait_for_timeout(200)
    else:
        raise AssertionError(f"no drawn ECG figure with lead {lead}")
    page.mouse.move(box[0], box[1])
    page.wait_for_timeout(300)
    page.mouse.click(box[0], box[1])
