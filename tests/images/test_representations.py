"""Charts land on the right pixels; GAF / MTF / RP match pyts and the textbook definitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ecgcore.data.representations import (
    MAJOR,
    MINOR,
    PAPER,
    TRACE,
    chart_layout,
    field_image,
    gaf,
    lead_importance,
    mtf,
    paa,
    render_chart,
    rp,
)
from ecgcore.vocab import LEADS_12

FS = 500.0
# 4 columns x 2.5 s at 25 mm/s = 250 mm over 1000 px; 4 rows x 25 mm = 100 mm over 400 px: 4 px/mm both ways
EXACT = chart_layout("3x4+II", width=1000, height=400, row_mm=25.0, grid=False)


def _flat_with_pulse(lead: str, t0: float, t1: float, mv: float = 1.0) -> np.ndarray:
    x = np.zeros((12, int(10 * FS)), np.float32)
    x[LEADS_12.index(lead), int(t0 * FS) : int(t1 * FS)] = mv
    return x


def test_pulse_lands_on_known_pixels_at_25mm_s_and_10mm_mv():
    chart = render_chart(_flat_with_pulse("V1", 6.0, 6.5), FS, LEADS_12, EXACT)
    img = chart.image
    assert EXACT.px_per_mm == (4.0, 4.0)
    # V1 is column 3 (t 5-7.5 s, x 500-750), row 1 (baseline y 50); 1 mV = 10 mm = 40 px up: row 10
    # 6.0-6.5 s = 25 mm * 1 .. 1.5 s after the column start = x 600..650
    assert (img[10, 602:648] == TRACE).all()
    assert (img[50, 602:648] == PAPER).all()
    assert (img[50, 505:595] == TRACE).all() and (img[10, 505:595] == PAPER).all()
    assert (img[50, 655:745] == TRACE).all()
    # the steps are vertical strokes at x 600 and 650 joining rows 10 and 50
    assert (img[12:48, 599:602] == TRACE).any(axis=1).all()
    # no other panel moves: V2 (row 2 of column 3, baseline 150) and the lead II rhythm strip (baseline 350)
    assert (img[150, 505:745] == TRACE).all() and not (img[100:140, 500:750] == TRACE).any()
    assert not (img[300:340, :] == TRACE).any()
    (v1,) = [p for p in chart.panels if p.lead == "V1"]
    assert (v1.x0, v1.x1, v1.y0, v1.y1, v1.t0, v1.t1) == (500, 750, 0, 100, 5.0, 7.5)


def test_negative_amplitude_goes_down_and_rhythm_strip_shows_whole_record():
    chart = render_chart(_flat_with_pulse("II", 8.0, 9.0, mv=-0.5), FS, LEADS_12, EXACT)
    img = chart.image
    # lead II's own panel: column 1 (0-2.5 s) shows nothing of the pulse at 8-9 s
    assert not (img[100:200, 0:250] == TRACE)[: 140 - 100].any()
    # the rhythm strip (row 4, baseline 350) shows it at x 800-900, 0.5 mV = 20 px down: row 370
    assert (img[370, 805:895] == TRACE).all() and (img[350, 805:895] == PAPER).all()
    assert (img[350, 10:790] == TRACE).all()


def test_limb_leads_are_derived_and_grid_is_drawn():
    x = np.zeros((2, 5000), np.float32)
    x[0] = 1.0  # I = 1 mV, II = 0 -> III = -1, aVR = -0.5, aVL = 1, aVF = -0.5
    layout = chart_layout("3x4+II", width=1000, height=400, row_mm=25.0)
    img = render_chart(x, FS, ["I", "II"], layout).image
    assert (img[10, 10:240] == TRACE).all()  # I = 1 mV: row 1 column 1 (baseline 50, 40 px up)
    assert (img[290, 10:240] == TRACE).all()  # III = -1 mV: row 3 (baseline 250, 40 px down)
    assert (img[70, 260:490] == TRACE).all()  # aVR = -0.5 mV: row 1 column 2, 20 px down
    assert (img[110, 260:490] == TRACE).all()  # aVL = 1 mV: row 2 column 2, 40 px up
    assert (img[2, 3], img[2, 4], img[2, 20]) == (PAPER, MINOR, MAJOR)  # 1 mm = 4 px, 5 mm = 20 px


def test_lead_importance_sums_attribution_per_panel():
    chart = render_chart(np.zeros((12, 5000), np.float32), FS, LEADS_12, EXACT)
    attribution = np.zeros((400, 1000))
    attribution[0:100, 500:750] = 1.0  # V1's panel
    attribution[300:400, 0:1000] = 0.25  # the rhythm strip (lead II)
    share = lead_importance(attribution, chart.panels)
    assert share["V1"] == pytest.approx(25000 / 50000)
    assert share["II"] == pytest.approx(25000 / 50000)
    assert share["V2"] == 0.0


def _reference_fields(x: np.ndarray, size: int, n_bins: int) -> dict[str, np.ndarray]:
    """GAF / MTF / RP from their definitions, with loops (slow, obviously right)."""
    n = len(x)
    b = np.linspace(0, n, size + 1).astype(int)
    z = np.array([x[b[i] : b[i + 1]].mean() for i in range(size)])
    c = 2 * (z - z.min()) / (z.max() - z.min()) - 1
    phi = np.arccos(c)
    gasf = np.array([[np.cos(phi[i] + phi[j]) for j in range(size)] for i in range(size)])
    gadf = np.array([[np.sin(phi[i] - phi[j]) for j in range(size)] for i in range(size)])
    q = np.percentile(x, np.linspace(0, 100, n_bins + 1)[1:-1])
    bins = np.searchsorted(q, x, side="left")
    w = np.zeros((n_bins, n_bins))
    for a, bb in zip(bins[:-1], bins[1:]):
        w[a, bb] += 1
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1)
    full = w[bins[:, None], bins[None, :]]
    mtf_ = np.array(
        [[full[b[i] : b[i + 1], b[j] : b[j + 1]].mean() for j in range(size)] for i in range(size)]
    )
    rp_ = np.abs(z[:, None] - z[None, :])
    return {"gasf": gasf, "gadf": gadf, "mtf": mtf_, "rp": rp_}


@pytest.mark.parametrize("n,size", [(300, 30), (257, 32), (64, 64)])
def test_fields_match_their_definitions(n, size):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, n))
    mine = {
        "gasf": gaf(x, size),
        "gadf": gaf(x, size, "difference"),
        "mtf": mtf(x, size, 6),
        "rp": rp(x, size),
    }
    for lead in range(3):
        ref = _reference_fields(x[lead], size, 6)
        for kind in ref:
            np.testing.assert_allclose(mine[kind][lead], ref[kind], atol=1e-5, err_msg=kind)


_PYTS = """
import json, sys, numpy as np
from pyts.image import GramianAngularField, MarkovTransitionField, RecurrencePlot
from pyts.approximation import PiecewiseAggregateApproximation
x = np.load(sys.argv[1]); size = int(sys.argv[2])
z = PiecewiseAggregateApproximation(window_size=None, output_size=size, overlapping=False).fit_transform(x)
np.savez(sys.argv[3],
    gasf=GramianAngularField(image_size=size).fit_transform(x),
    gadf=GramianAngularField(image_size=size, method="difference").fit_transform(x),
    mtf=MarkovTransitionField(image_size=size, n_bins=8).fit_transform(x),
    rp=RecurrencePlot().fit_transform(z))
"""


def test_fields_match_pyts_on_random_series(tmp_path):
    pytest.importorskip("pyts")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 500)).cumsum(axis=1)
    np.save(tmp_path / "x.npy", x)
    # numba off: pyts otherwise compiles its kernels at import (20-70 s here); the maths is the same
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    subprocess.run(
        [sys.executable, "-c", _PYTS, str(tmp_path / "x.npy"), "40", str(tmp_path / "ref.npz")],
        check=True,
        env=env,
        timeout=120,
    )
    ref = np.load(tmp_path / "ref.npz")
    mine = {"gasf": gaf(x, 40), "gadf": gaf(x, 40, "difference"), "mtf": mtf(x, 40, 8), "rp": rp(x, 40)}
    for kind, value in mine.items():
        np.testing.assert_allclose(value, ref[kind], atol=1e-5, err_msg=json.dumps(kind))


def test_paa_and_uint8_fields():
    x = np.arange(10.0)[None]
    np.testing.assert_allclose(paa(x, 5), [[0.5, 2.5, 4.5, 6.5, 8.5]])
    with pytest.raises(ValueError, match="PAA size"):
        paa(x, 11)
    img = field_image(np.vstack([np.linspace(-1, 1, 128), np.linspace(1, -1, 128)]), "gasf", 16)
    assert img.dtype == np.uint8 and img.shape == (2, 16, 16)
    assert img[0, 0, 0] == 255 and img[0, 0, -1] == 0  # cos(0 + 0) = 1 ; cos(pi + 0) = -1
    assert field_image(np.ones((1, 64)), "rp", 8).max() == 0
    with pytest.raises(ValueError, match="unknown field"):
        field_image(x, "xyz")
