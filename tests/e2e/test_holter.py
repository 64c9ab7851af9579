"""The Holter page end to end in a real browser: open a record from a folder, watch the analysis's progress
bar move, see the Holter summary, the overview and the QT/QTc trend, merge two clusters and relabel the merged one, then find
its beats in the ectopic list and jump to one in the strip, where its label and its intervals are shown.
A second test opens the shipped example record with one button.

The record is generated (4 minutes, 2 leads, 250 Hz): two halves of opposite polarity, so clustering
finds two morphologies whatever the shipped model says; relabelling them V makes every beat ectopic.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record
from tests.e2e.conftest import CHROMIUM, choose, idle

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

#: Records every text the progress bar shows (the analysis of a short record takes about a second).
WATCH_PROGRESS_JS = """() => { window.__progress = [];
  new MutationObserver(() => {
    for (const bar of document.querySelectorAll('[data-testid="stProgress"]')) {
      const text = bar.textContent.trim(); const seen = window.__progress;
      if (text && seen[seen.length - 1] !== text) seen.push(text);
    } }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true}); }"""


def tab(page, name: str) -> None:
    page.locator('[data-testid="stTab"]:visible', has_text=name).last.click()
    idle(page)


def titles(page) -> list[str]:
    """The titles of the figures drawn in the open tab (waits for plotly to draw one)."""
    page.locator(".js-plotly-plot:visible .gtitle").first.wait_for()
    return page.locator(".js-plotly-plot:visible .gtitle").evaluate_all("els => els.map(e => e.textContent)")


def cluster_titles(page) -> list[str]:
    """The gallery's figure titles ("N · 60 beats" ...)."""
    return [t for t in titles(page) if "beats" in t]


def test_holter_page_analyses_merges_relabels_and_jumps(server, page, tmp_path, test_output):
    halves = [
        synthetic_ecg(hr=72, fs=250, duration=120, leads=("II", "V1"), rr_jitter=0.04, noise_mv=0.02, seed=s)
        for s in (1, 2)
    ]
    signal = np.concatenate([halves[0].signal, -halves[1].signal], axis=1)
    write_record(tmp_path, "holter-e2e", signal, 250.0)

    page.goto(f"{server['url']}/holter")
    idle(page)
    box = page.get_by_label("Folder with WFDB records (.hea + .dat) or EDF files")
    box.fill(str(tmp_path))
    box.press("Enter")
    idle(page)
    choose(page, "Record", "holter-e2e")
    idle(page)
    assert "holter-e2e: 0.07 h, 250 Hz" in page.locator('[data-testid="stMarkdown"]').all_inner_texts()[-1]

    page.evaluate(WATCH_PROGRESS_JS)
    page.get_by_role("button", name="Analyse").click()
    page.locator('[data-testid="stMetric"]').first.wait_for()
    idle(page)
    progress = page.evaluate("window.__progress")
    assert any(p.startswith("R peaks") for p in progress) and any(
        p.startswith("classifying") for p in progress
    )
    assert len(progress) >= 2, progress  # it moved (a 4-minute record is one analysis window per pass)
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    n_beats = int(metrics[0].split()[-1].replace(",", ""))
    assert abs(n_beats - sum(len(h.fiducials["r_peak"]) for h in halves)) <= 2
    # the Summary tab opens first: the Holter summary's sections
    summary = page.locator('[data-testid="stTable"]:visible').all_inner_texts()
    assert any("Ventricular ectopy (V)" in t for t in summary) and any("Pauses" in t for t in summary)
    tab(page, "Overview")
    overview = titles(page)
    assert "Heart rate per minute" in overview and any(t.startswith("Beat classes") for t in overview)
    page.screenshot(path=str(test_output / "e2e-holter-1-overview.png"), full_page=True)

    tab(page, "Intervals")
    assert "QT and QTc per minute" in titles(page)
    medians = page.locator('[data-testid="stMetric"]:visible').filter(has_text="median QT").inner_text()
    assert 370 <= int(medians.split()[-2]) <= 430  # synthetic_ecg's QT is 400 ms

    tab(page, "Clusters")
    before = cluster_titles(page)
    assert len(before) == 2, before  # the two polarities
    page.get_by_role("button", name="Merge").click()
    # wait for the rerun's gallery (on a loaded machine the rerun may start after idle()'s first look)
    expect(page.locator(".js-plotly-plot .gtitle").filter(has_text=" beats")).to_have_count(1, timeout=60_000)
    idle(page)
    tab(page, "Clusters")
    after = cluster_titles(page)
    assert len(after) == 1 and after[0].endswith(f"{n_beats} beats"), after
    choose(page, "class", "V")
    idle(page)
    page.get_by_role("button", name="Relabel").click()
    v_metric = page.locator('[data-testid="stMetric"]').filter(has_text="V").first
    expect(v_metric).to_contain_text(f"{n_beats:,}", timeout=60_000)
    idle(page)
    assert v_metric.inner_text().split()[-1] == f"{n_beats:,}"
    page.screenshot(path=str(test_output / "e2e-holter-2-clusters.png"), full_page=True)

    tab(page, "Ectopic beats")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Jump to").first.click()
    page.keyboard.type("150.")
    page.get_by_role("option").first.wait_for()
    picked = page.get_by_role("option").first.inner_text()
    page.get_by_role("option").first.click()
    idle(page)
    page.get_by_role("button", name="Show in the strip").click()
    idle(page)
    tab(page, "Strip")
    beat_s = float(picked.split(" s")[0])
    start_box = page.locator('[data-testid="stNumberInput"] input:visible').last
    expect(start_box).not_to_have_value(re.compile(r"^0(\.0+)?$"), timeout=60_000)  # the jump's rerun
    start = float(start_box.input_value())
    assert start == pytest.approx(beat_s - 5.0, abs=0.01)
    # the strip of the beat's moment (plotly redraws it after the rerun: wait for its title)
    expect(page.locator(".js-plotly-plot .gtitle").filter(has_text=f"from {start:.1f} s")).to_have_count(
        1, timeout=60_000
    )
    # every beat of the 10 s strip, now V
    expect(
        page.locator(".js-plotly-plot .annotation-text").filter(has_text=re.compile("^V$"))
    ).not_to_have_count(0, timeout=60_000)
    labels = page.locator(".js-plotly-plot .annotation-text").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    assert labels.count("V") >= 8 and "N" not in labels, labels
    # the beats in view with their PR, QRS and QT (a canvas grid: its cells are not in the DOM)
    strip_tab = page.get_by_role("tabpanel", name="Strip")  # the Events tab draws an event's strip too
    expect(strip_tab.get_by_text("Dotted lines: QRS onset and offset")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]:visible')).to_have_count(1)
    page.screenshot(path=str(test_output / "e2e-holter-3-strip.png"), full_page=True)


def test_holter_page_opens_the_example_record(server, page, test_output):
    page.goto(f"{server['url']}/holter")
    idle(page)
    page.get_by_role("button", name="Open the example record").click()
    expect(
        page.locator('[data-testid="stMarkdown"]').filter(has_text="sel853: 0.25 h, 250 Hz")
    ).to_have_count(1, timeout=60_000)
    idle(page)
    page.get_by_role("button", name="Analyse").click()
    page.locator('[data-testid="stMetric"]').first.wait_for()
    idle(page)
    n_beats = int(page.locator('[data-testid="stMetric"]').first.inner_text().split()[-1].replace(",", ""))
    assert abs(n_beats - 1118) <= 25  # the record's reference labels: 1,113 beats and 5 artefact marks
    tab(page, "Intervals")
    assert "QT and QTc per minute" in titles(page)
    page.screenshot(path=str(test_output / "e2e-holter-4-example.png"), full_page=True)
