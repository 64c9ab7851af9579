"""The figure builders: ECG paper geometry, where leads and fiducials land, and the agreement plots."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore import viz
from ecgcore.vocab import LEADS_12

FS = 100.0


def constant_leads(n_samples: int = 1000) -> np.ndarray:
    """Each lead a flat line at its own level (lead i at 0.01 * i mV), so a point tells which lead it came from."""
    return np.repeat((np.arange(12) * 0.01)[:, None], n_samples, axis=1)


def test_paper_is_25_mm_per_s_and_10_mm_per_mv_with_1_and_5_mm_grid():
    fig = viz.ecg_paper(constant_leads(), FS, LEADS_12)
    x, y = fig.layout.xaxis, fig.layout.yaxis
    assert (x.minor.dtick, x.dtick) == (0.04, 0.2)  # 1 mm and 5 mm at 25 mm/s
    assert (y.minor.dtick, y.dtick) == (0.1, 0.5)  # 1 mm and 5 mm at 10 mm/mV
    assert y.scaleanchor == "x" and y.scaleratio == pytest.approx(10 / 25)


def test_3x4_layout_puts_each_lead_in_its_column_and_adds_a_lead_ii_rhythm_strip():
    signal = constant_leads()
    fig = viz.ecg_paper(signal, FS, LEADS_12)
    labels = [a.text.replace("<b>", "").replace("</b>", "") for a in fig.layout.annotations]
    assert labels == ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6", "II"]
    drawn = [t for t in fig.data if t.name in LEADS_12 and t.mode == "lines"]
    x = np.concatenate([np.asarray(t.x, float) for t in drawn])
    y = np.concatenate([np.asarray(t.y, float) for t in drawn])
    # first row (baseline 0): V4 drawn from 7.5 s to 10 s at its own level
    v4 = (x >= 7.5) & (x < 10) & (np.abs(y) < 1)
    assert np.allclose(y[v4], signal[LEADS_12.index("V4"), 0])
    # rhythm strip: lead II over the whole 10 s, four rows down
    strip = np.abs(y + 3 * viz.ROW_PITCH_MV) < 1
    assert np.allclose(y[strip] + 3 * viz.ROW_PITCH_MV, signal[1, 0])
    assert x[strip].min() == 0 and x[strip].max() == pytest.approx(9.99)


def test_fiducials_are_marked_on_every_drawn_lead_at_their_time():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(12, 1000))
    fig = viz.ecg_paper(
        signal,
        FS,
        LEADS_12,
        layout="rows",
        shown=["I", "V2"],
        fiducials={"qrs_on": np.array([120, np.nan, -1, 640])},
    )
    marks = next(t for t in fig.data if t.name == "QRS onset")
    assert np.allclose(marks.x, [1.2, 6.4, 1.2, 6.4])
    expected = [
        signal[0, 120],
        signal[0, 640],
        signal[7, 120] - viz.ROW_PITCH_MV,
        signal[7, 640] - viz.ROW_PITCH_MV,
    ]
    assert np.allclose(marks.y, expected)


def test_no_lead_to_draw_and_mismatched_attribution_are_clear_errors():
    with pytest.raises(ValueError, match="select at least one lead"):
        viz.ecg_paper(constant_leads(), FS, LEADS_12, shown=[])
    with pytest.raises(ValueError, match="does not match the signal"):
        viz.saliency_paper(constant_leads(), FS, LEADS_12, np.ones((8, 1000)))


def test_saliency_heatmap_has_one_row_per_lead_under_the_trace():
    attribution = np.zeros((12, 1000))
    attribution[3, 500:520] = 5.0
    fig = viz.saliency_paper(constant_leads(), FS, LEADS_12, attribution)
    heat = fig.data[0]
    assert heat.type == "heatmap" and np.asarray(heat.z).shape == (12, 500)  # 20 ms cells
    z = np.asarray(heat.z)[::-1]  # drawn bottom row first
    assert np.allclose(z[3, 250:260], 1.0) and np.count_nonzero(z) == 10


def test_bland_altman_shows_bias_and_limits_of_agreement():
    measured = np.array([100.0, 110, 120, 130])
    predicted = measured + np.array([2.0, 4, 6, 8])
    fig = viz.bland_altman(measured, predicted, "qrs")
    lines = sorted(shape.y0 for shape in fig.layout.shapes)
    sd = np.std([2, 4, 6, 8], ddof=1)
    assert lines == pytest.approx([5 - 1.96 * sd, 5, 5 + 1.96 * sd])


def test_representative_beats_sit_in_their_3x4_panels_with_the_boundaries_through_all():
    fs, n = 500.0, 400  # 0.8 s beats
    median = constant_leads(n)
    fig = viz.representative_beats(
        median, fs, LEADS_12, {"qrs_on": 0.3, "t_off": 0.7, "p_on": float("nan"), "r": 0.35}
    )
    labels = [a.text.replace("<b>", "").replace("</b>", "") for a in fig.layout.annotations]
    assert labels == list(LEADS_12)
    x, y = np.asarray(fig.data[0].x, float), np.asarray(fig.data[0].y, float)
    pitch = 0.8 + viz.BEAT_GAP_S
    # V5: second row, fourth column, at its own level
    v5 = (x >= 3 * pitch) & (np.abs(y + viz.ROW_PITCH_MV) < 1)
    assert np.allclose(y[v5] + viz.ROW_PITCH_MV, median[LEADS_12.index("V5"), 0]) and v5.sum() == n
    names = [t.name for t in fig.data[1:]]
    assert names == ["QRS onset", "T offset"]  # P onset missing, R is no boundary
    qrs_x = np.asarray(fig.data[1].x, float)
    assert sorted(set(np.round(qrs_x[np.isfinite(qrs_x)], 6))) == pytest.approx(
        [c * pitch + 0.3 for c in range(4)]
    )
    assert np.isfinite(qrs_x).sum() == 2 * 12  # one line per panel


def test_representative_beats_of_non_standard_leads_fill_rows_of_four():
    fig = viz.representative_beats(np.zeros((2, 100)), 250.0, ["MLII", "V5"], {"qrs_on": 0.1})
    x, y = np.asarray(fig.data[0].x, float), np.asarray(fig.data[0].y, float)
    pitch = 0.4 + viz.BEAT_GAP_S
    assert np.allclose(y[np.isfinite(y)], 0.0)  # MLII is no 3x4 lead: both in one row
    assert x[np.isfinite(x)].max() == pytest.approx(pitch + 99 / 250)
    with pytest.raises(ValueError, match="do not match 3 lead"):
        viz.representative_beats(np.zeros((2, 100)), 250.0, ["I", "II", "V1"], {})


def test_every_row_starts_with_a_1_mv_200_ms_calibration_pulse_before_0_s():
    fig = viz.ecg_paper(constant_leads(), FS, LEADS_12)  # 3 rows of four + the rhythm strip
    pulse = next(t for t in fig.data if t.name == "1 mV calibration")
    x, y = np.asarray(pulse.x, float), np.asarray(pulse.y, float)
    for r in range(4):
        base = -r * viz.ROW_PITCH_MV
        row = np.isfinite(y) & (np.abs(y - base - 0.5) <= 0.5 + 1e-9)
        high = x[row & np.isclose(y, base + 1.0)]
        assert high.max() - high.min() == pytest.approx(0.2)  # 5 mm wide at 25 mm/s
        assert y[row].max() - y[row].min() == pytest.approx(1.0)  # 10 mm tall at 10 mm/mV
        assert x[row].max() < 0  # left of the record's 0 s: never over the signal
    assert fig.layout.xaxis.range[0] < x[np.isfinite(x)].min()


def test_hover_reads_the_lead_time_and_amplitude_in_mv_every_10_ms():
    signal = np.random.default_rng(1).normal(size=(12, 5000))  # 10 s at 500 Hz
    fig = viz.ecg_paper(signal, 500.0, LEADS_12, layout="rows")
    v2 = next(t for t in fig.data if t.name == "V2" and t.mode == "markers")
    assert np.allclose(v2.x, np.arange(1000) * 0.01)  # a point every 10 ms
    assert np.allclose(v2.customdata, signal[LEADS_12.index("V2"), ::5], atol=1e-4)  # mV, not the plot offset
    assert np.allclose(np.asarray(v2.y) - np.asarray(v2.customdata), -7 * viz.ROW_PITCH_MV, atol=1e-4)
    assert "V2" in v2.hovertemplate and "s" in v2.hovertemplate and "mV" in v2.hovertemplate
    line = next(t for t in fig.data if t.name == "V2" and t.mode == "lines")
    assert len(line.x) == 5000  # the trace itself at full resolution


def test_one_lead_per_row_labels_are_pinned_to_the_left_edge_so_zooming_keeps_them():
    fig = viz.ecg_paper(constant_leads(), FS, LEADS_12, layout="rows", shown=["I", "V6"])
    labels = {a.text: a for a in fig.layout.annotations}
    assert set(labels) == {"<b>I</b>", "<b>V6</b>"}
    assert all(a.xref == "paper" for a in labels.values())
    assert labels["<b>V6</b>"].y == pytest.approx(-viz.ROW_PITCH_MV + 1.1)  # on its own row


def test_calipers_give_interval_rate_and_amplitude_difference():
    reading = viz.caliper((1.20, 0.1), (2.00, 1.6))
    assert reading.dt_ms == pytest.approx(800) and reading.bpm == pytest.approx(75)
    assert reading.dmv == pytest.approx(1.5)
    assert reading.text() == "Δt 800 ms (75 bpm) · Δ +1.50 mV"
    assert viz.caliper((1.0, 0.0), (1.0, 0.5)).bpm is None  # the same instant: no rate
    fig = viz.ecg_paper(constant_leads(), FS, LEADS_12, calipers=[(1.2, 0.1), (2.0, 0.2)])
    assert any(a.text == "Δt 800 ms" for a in fig.layout.annotations)
    verticals = [s for s in fig.layout.shapes if s.x0 == s.x1 and s.x0 in (1.2, 2.0)]
    assert len(verticals) == 2


def test_ecg_paper_keeps_paper_colours_and_dark_ink_whatever_the_app_theme():
    fig = viz.ecg_paper(constant_leads(), FS, LEADS_12)
    assert fig.layout.plot_bgcolor == viz._PAPER and fig.layout.paper_bgcolor == "white"
    assert (
        fig.layout.font.color == viz._INK and fig.layout.xaxis.color == viz._INK
    )  # not the theme's text colour
    assert (
        fig.layout.legend.x == 0 and fig.layout.legend.xanchor == "left"
    )  # clear of the toolbar (top right)


def test_learning_curves_draw_the_streamed_loss_at_fractional_epochs():
    import pandas as pd

    epochs = pd.DataFrame({"epoch": [0], "step": [10], "train_loss": [1.0], "val_loss": [1.1], "mae": [5.0]})
    steps = pd.DataFrame({"step": [5, 10, 15], "epoch": [0, 0, 1], "train_loss": [1.2, 0.9, 0.8]})
    fig = viz.learning_curves({"r": epochs}, "mae", steps={"r": steps}, steps_per_epoch={"r": 10.0})
    streamed = next(t for t in fig.data if t.name == "r train (per step)")
    assert np.allclose(streamed.x, [0.5, 1.0, 1.5]) and np.allclose(streamed.y, [1.2, 0.9, 0.8])
    only_steps = viz.learning_curves(
        {"r": epochs.iloc[:0]}, None, steps={"r": steps}, steps_per_epoch={"r": 10.0}
    )
    assert [t.name for t in only_steps.data] == ["r train (per step)"]  # before the first epoch ends


def test_holter_strip_draws_each_lead_about_its_own_baseline():
    """A recorder's DC offset (5 mV, -3 mV) must not push a lead off its row of paper."""
    t = np.arange(2500) / 250
    signal = np.stack([5 + np.sin(2 * np.pi * t), -3 + 0.5 * np.sin(2 * np.pi * t)])
    fig = viz.holter_strip(signal, 250, ("A", "B"), 0.0, np.array([100]), ["V"])
    lines = {
        tr.name: np.asarray(tr.y, dtype=float) for tr in fig.data if tr.mode == "lines" and tr.name in "AB"
    }
    low, high = fig.layout.yaxis.range
    for y in lines.values():
        assert low < y.min() and y.max() < high  # on the paper
    # both rows keep their amplitude and their spacing: the medians differ by the rows' distance only
    assert np.ptp(lines["A"]) == pytest.approx(2.0, abs=0.01) and np.ptp(lines["B"]) == pytest.approx(
        1.0, abs=0.01
    )
    assert [a.text for a in fig.layout.annotations if "V" in (a.text or "")] == ["<b>V</b>"]


def test_holter_strip_draws_wave_boundaries_inside_the_strip_only():
    signal = np.zeros((2, 2500))
    marks = {"qrs_on": np.array([100.0, np.nan, 3000.0]), "t_off": np.array([200.0])}
    fig = viz.holter_strip(signal, 250, ("A", "B"), 0.0, np.array([120]), ["N"], boundaries=marks)
    dotted = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert sorted(s.x0 for s in dotted) == [0.4, 0.8]  # NaN and the beat past the strip are not drawn
    plain = viz.holter_strip(signal, 250, ("A", "B"), 0.0, np.array([120]), ["N"])
    assert not [s for s in plain.layout.shapes if s.line.dash == "dot"]


def test_interval_trend_plots_qt_qtc_and_rr_with_gaps():
    trend = {
        "qt_ms": [400.0, None, 410.0],
        "qtc_bazett_ms": [500.0, None, 505.0],
        "qtc_fridericia_ms": [464.2, None, 470.0],
        "rr_ms": [640.0, None, 660.0],
    }
    fig = viz.interval_trend(trend)
    by_name = {tr.name: np.asarray(tr.y, dtype=float) for tr in fig.data}
    assert set(by_name) == {"QT", "QTc Bazett", "QTc Fridericia", "RR"}
    assert by_name["QTc Bazett"][0] == 500.0 and np.isnan(by_name["QT"][1])
    rr = next(tr for tr in fig.data if tr.name == "RR")
    assert rr.yaxis == "y2" and np.allclose(np.asarray(rr.x, dtype=float), [0, 1 / 60, 2 / 60])
