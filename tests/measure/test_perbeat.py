"""Per-beat delineation from per-group templates, on synthetic records whose boundaries are known.

The record: normal beats (QRS 90 ms, QT 380 ms) with some beats replaced by wide ventricular-like
beats (QRS 160 ms, QT 480 ms, opposite polarity, discordant T wave) at the same QRS onsets, so each
beat's true QRS onset, QRS offset and T offset are known by construction.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcore.__main__ import main as cli_main
from ecgcore.data.synthetic import SyntheticECG, synthetic_ecg
from ecgcore.measure import delineate as dl
from ecgcore.measure import measure
from ecgcore.measure.perbeat import delineate_beats
from ecgcore.vocab import LEADS_8
from tests.measure.wfdb_files import write_annotation, write_record

NORMAL = {"qrs": 90.0, "qt": 380.0}
WIDE = {"qrs": 160.0, "qt": 480.0}
#: Beats replaced by wide ones.
ECTOPIC = (2, 5, 8)


def _record(
    fs: float = 500.0, leads: tuple[str, ...] = LEADS_8
) -> tuple[SyntheticECG, dict[str, np.ndarray]]:
    """The mixed record and every beat's true fiducials (samples)."""
    common = {"fs": fs, "duration": 12.0, "leads": leads, "seed": 4}
    normal = synthetic_ecg(60, 160, NORMAL["qrs"], NORMAL["qt"], **common)
    wide = synthetic_ecg(
        60, 160, WIDE["qrs"], WIDE["qt"], polarity=-1.0, t_scale=-1.0, amplitude_scale=1.5, **common
    )
    assert np.array_equal(normal.fiducials["qrs_on"], wide.fiducials["qrs_on"])
    signal = normal.signal.copy()
    truth = {k: normal.fiducials[k].astype(float) for k in ("qrs_on", "qrs_off", "t_off", "r_peak")}
    for k in ECTOPIC:
        # Both records are zero 10 ms before a QRS onset (after the P wave) and 700 ms after it.
        on = int(normal.fiducials["qrs_on"][k])
        cut = slice(on - int(0.01 * fs), on + int(0.7 * fs))
        signal[:, cut] = wide.signal[:, cut]
        for key in truth:
            truth[key][k] = wide.fiducials[key][k]
    signal = signal + np.random.default_rng(0).normal(0, 0.01, signal.shape).astype(np.float32)
    return SyntheticECG(signal, fs, normal.leads, normal.fiducials), truth


def _nearest(peaks: np.ndarray, truth_r: np.ndarray, fs: float) -> np.ndarray:
    """Index of our beat nearest each true beat (every true beat must have one within 60 ms)."""
    idx = np.abs(peaks[None, :] - truth_r[:, None]).argmin(axis=1)
    assert np.all(np.abs(peaks[idx] - truth_r) <= 0.06 * fs)
    return idx


def _errors_ms(ours: np.ndarray, truth: np.ndarray, fs: float) -> np.ndarray:
    return (ours - truth) * 1000.0 / fs


def test_wide_beats_get_their_own_boundaries_where_the_dominant_projection_is_far_off():
    ecg, truth = _record()
    fs = ecg.fs
    m = measure(ecg.signal, fs, ecg.leads)
    idx = _nearest(m.r_peaks, truth["r_peak"], fs)
    wide = np.array(ECTOPIC)
    normal = np.setdiff1d(np.arange(idx.size), wide)
    # The representative beat is the normal one: its intervals are the normal beats' (within the
    # tolerance test_measure allows the representative beat).
    assert m.qrs == pytest.approx(NORMAL["qrs"], abs=20) and m.qt == pytest.approx(NORMAL["qt"], abs=20)
    # The wide beats form their own group.
    assert (
        set(m.beat_groups[idx[wide]]) == {int(m.beat_groups[idx[wide[0]]])}
        and m.beat_groups[idx[wide[0]]] > 0
    )
    assert np.all(m.beat_groups[idx[normal]] == 0)
    for key in ("qrs_on", "qrs_off", "t_off"):
        # What today's projection gives a wide beat: the representative beat's offset from its R peak.
        projected = m.r_peaks[idx[wide]] + (m.fiducials[key] - m.fiducials["r"])
        ours = m.beat_fiducials[key][idx]
        if key != "qrs_on":  # the onsets coincide by construction; the ends do not
            assert np.all(np.abs(_errors_ms(projected, truth[key][wide], fs)) > 40), key
        assert np.all(np.abs(_errors_ms(ours[wide], truth[key][wide], fs)) <= 12), (key, ours[wide])
        assert np.all(np.abs(_errors_ms(ours[normal], truth[key][normal], fs)) <= 12), key


def test_without_per_group_the_wide_beats_get_no_boundaries():
    ecg, truth = _record()
    m = measure(ecg.signal, ecg.fs, ecg.leads, per_group=False)
    idx = _nearest(m.r_peaks, truth["r_peak"], ecg.fs)
    assert np.all(np.isnan(m.beat_fiducials["qrs_off"][idx[list(ECTOPIC)]]))
    assert np.all(m.beat_groups[idx[list(ECTOPIC)]] == -1)


def test_delineate_beats_with_the_callers_groups_and_at_a_low_rate():
    """The interface the beats package calls: its own peaks and cluster labels, any order, 250 Hz (2 leads)."""
    ecg, truth = _record(fs=250.0, leads=("II", "V5"))
    fs = ecg.fs
    peaks = np.round(truth["r_peak"]).astype(np.int64)
    groups = np.zeros(peaks.size, dtype=np.int64)
    groups[list(ECTOPIC)] = 7
    order = np.random.default_rng(1).permutation(peaks.size)
    result = delineate_beats(ecg.signal, fs, peaks[order], groups[order])
    assert np.array_equal(result.groups, groups[order])
    assert result.counts == {0: peaks.size - len(ECTOPIC), 7: len(ECTOPIC)}
    width = {g: result.templates[g]["qrs_off"] - result.templates[g]["qrs_on"] for g in (0, 7)}
    assert width[7] - width[0] == pytest.approx(WIDE["qrs"] - NORMAL["qrs"], abs=12)
    back = np.argsort(order)
    for key in ("qrs_on", "qrs_off", "t_off"):
        err = _errors_ms(result.fiducials[key][back], truth[key], fs)
        assert np.all(np.abs(err) <= 16), (key, err)


def test_delineate_beats_groups_by_itself_and_checks_its_arguments():
    ecg, truth = _record()
    peaks = np.round(truth["r_peak"]).astype(np.int64)
    result = delineate_beats(ecg.signal, ecg.fs, peaks)
    wide = result.groups[list(ECTOPIC)]
    assert len(set(wide)) == 1 and wide[0] not in set(np.delete(result.groups, list(ECTOPIC)))
    err = _errors_ms(result.fiducials["t_off"], truth["t_off"], ecg.fs)
    assert np.all(np.abs(err) <= 12), err
    with pytest.raises(ValueError, match="one per beat"):
        delineate_beats(ecg.signal, ecg.fs, peaks, np.zeros(peaks.size - 1))
    with pytest.raises(ValueError, match="at least 2"):
        delineate_beats(ecg.signal, ecg.fs, peaks[:1])
    with pytest.raises(ValueError, match="outside|must lie"):
        delineate_beats(ecg.signal, ecg.fs, peaks + ecg.signal.shape[1])
    bad = ecg.signal.copy()
    bad[0, 100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        delineate_beats(bad, ecg.fs, peaks)


def test_wide_qrs_with_a_slow_limb_on_two_leads_is_delineated(monkeypatch):
    """A 140 ms QRS on two leads at 250 Hz (the QT Database's format): its slow limb ends more than
    QRS_REACH_MS after its last steep slope, which used to leave the record without a QRS (and its
    beats without boundaries, as in QT Database records sel36-sel42)."""
    ecg = synthetic_ecg(60, 200, 140, 440, fs=250.0, leads=("II", "V5"), noise_mv=0.01, seed=1)
    m = measure(ecg.signal, ecg.fs, ecg.leads)
    assert m.qrs == pytest.approx(140, abs=12)
    monkeypatch.setattr(dl, "WIDE_QRS_REACH_MS", dl.QRS_REACH_MS)
    assert measure(ecg.signal, ecg.fs, ecg.leads).qrs is None


def _write_mixed_record(directory) -> dict[str, np.ndarray]:
    """The mixed record as WFDB (2 leads, 250 Hz) with q1c marks of every QRS and T end and atr beat labels."""
    ecg, truth = _record(fs=250.0, leads=("II", "V5"))
    write_record(directory, "mix", ecg.signal, 250, ["MLII", "V5"])
    labels = ["V" if k in ECTOPIC else "N" for k in range(truth["r_peak"].size)]
    samples, symbols = [], []
    for k, label in enumerate(labels):
        t_peak = (truth["qrs_off"][k] + truth["t_off"][k]) // 2
        samples += [truth["qrs_on"][k], truth["r_peak"][k], truth["qrs_off"][k], t_peak, truth["t_off"][k]]
        symbols += ["(", label, ")", "t", ")"]
    write_annotation(directory, "mix", "q1c", np.asarray(samples), symbols)
    write_annotation(directory, "mix", "atr", truth["r_peak"], labels)
    return truth


@pytest.mark.parametrize("templates", ["group", "dominant"])
def test_cli_scores_each_beat_class(tmp_path, capsys, templates):
    """`measure --eval-annotations q1c --beat-classes atr`: a line per class; the wide (V) beats are
    delineated within a few ms with per-group templates and not at all with the dominant beat's."""
    _write_mixed_record(tmp_path)
    args = ["measure", "--eval-annotations", "q1c", "--beat-classes", "atr", "--beat-templates", templates]
    assert cli_main([*args, str(tmp_path / "mix.hea")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    classes = {line["class"]: line for line in lines if "class" in line}
    assert set(classes) == {"N", "V"} and classes["V"]["annotated_beats"] == len(ECTOPIC)
    v = classes["V"]
    if templates == "group":
        for key in ("qrs_on", "qrs_off", "t_off"):
            assert v[key]["matched"] == len(ECTOPIC) and abs(v[key]["mean_ms"]) <= 16, (key, v[key])
    else:
        assert all(v[key]["matched"] == 0 for key in ("qrs_on", "qrs_off", "t_off"))
    assert classes["N"]["qrs_off"]["matched"] >= 6


def _lobe(t: np.ndarray, start: float, stop: float, amp: float) -> np.ndarray:
    """A raised-cosine lobe from ``start`` to ``stop`` (s): zero value and slope at both ends."""
    inside = (t >= start) & (t <= stop)
    out = np.zeros_like(t)
    out[inside] = amp * 0.5 * (1 - np.cos(2 * np.pi * (t[inside] - start) / (stop - start)))
    return out


#: The paced beats' true boundaries, ms from the pacing spike's centre (the beat's fiducial).
PACED = {"qrs_on": -8.0, "qrs_off": 220.0, "t_off": 560.0}


def paced_beats(seconds: float = 30.0, rr: float = 1.0, fs: float = 250.0) -> tuple[np.ndarray, np.ndarray]:
    """Two leads of paced beats as the QT Database's sel104 shows them: ``(signal, fiducials)``.

    Each beat: the pacing spike, smeared by the recorder's own filter into a 16 ms deflection that is
    the steepest slope of the beat (at 250 Hz it is not removed as a spike), then a wide ventricular
    complex (a negative lobe ending 190 / 220 ms after the spike) and a broad T wave ending 560 ms after
    it (:data:`PACED`; at 60 paced beats per minute, so the QT of 568 ms is inside the delineator's QTc limit
    of 0.6 s). The fiducials sit on the spike, as a beat detector puts them.
    """
    t = np.arange(int(seconds * fs)) / fs
    beats = np.arange(0.5, seconds - rr, rr)
    signal = np.zeros((2, t.size))
    for b in beats:
        for lead, (spike, qrs, qrs_end, wave) in enumerate(((0.8, -0.6, 0.19, 0.25), (0.6, -0.7, 0.22, 0.3))):
            signal[lead] += _lobe(t, b - 0.008, b + 0.008, spike) + _lobe(t, b + 0.02, b + qrs_end, qrs)
            signal[lead] += _lobe(t, b + 0.26, b + 0.56, wave)
    signal += np.random.default_rng(0).normal(0, 0.01, signal.shape)
    return signal, np.round(beats * fs).astype(np.int64)


def test_paced_beats_end_their_qrs_after_the_wide_complex_not_at_its_trough(monkeypatch):
    """The smeared spike sets the slope thresholds, so the wide complex never counts as steep and its
    trough (where the slope passes through zero) looked like the QRS's end (in sel104 the S wave was
    then taken for the T wave: T offsets 300 ms early). Every beat must get the complex's end (a slope
    threshold ends a slow tail somewhat early: 40 ms allowed) and a T end within the CSE limit (30.6 ms)."""
    signal, peaks = paced_beats()
    fs = 250.0

    def errors() -> dict[str, np.ndarray]:
        found = delineate_beats(signal, fs, peaks, np.zeros(peaks.size, dtype=np.int64)).fiducials
        return {
            k: _errors_ms(found[k][1:-1], peaks[1:-1] + PACED[k] * fs / 1000, fs)
            for k in ("qrs_off", "t_off")
        }

    good = errors()
    assert np.all(np.abs(good["qrs_off"]) <= 40)
    assert np.all(np.abs(good["t_off"]) <= 30.6)
    # Without the turning-point test the QRS ends near the wide complex's trough, about 100 ms early.
    monkeypatch.setattr(dl, "TURNING_FRACTION", np.inf)
    assert np.all(errors()["qrs_off"] < -80)


def test_a_turning_point_is_passed_but_a_plateau_is_kept():
    """A QRS offset candidate far from the baseline ends the QRS when the lead stays there (an ST
    plateau, or a slow rise into a T wave that comes back to half its depth only after WIDE_QRS_REACH_MS)
    and is passed when the lead comes back (a wide wave's trough); the level is the pre-onset one, not zero."""
    fs = 250.0
    t = np.arange(150) / fs
    trough = -_lobe(t, 0.08, 0.24, 1.0)  # down to -1 at 160 ms and back by 240 ms
    # down to -1 at 160 ms, then rising 0.2 per 100 ms (too slowly to be active): half its depth at 410 ms
    plateau = np.where(t < 0.16, trough, -1.0 + 2.0 * (t - 0.16))
    candidate, back = 40, 60  # 160 ms: the slope is zero here in both; 240 ms: the trough is back
    for lead, moved in ((trough, True), (plateau, False)):
        lead = lead + 2.0  # a baseline away from zero
        active = np.abs(np.gradient(lead)) > 0.01
        off, last = dl._past_turning_points(lead, active, 15, candidate, 30, 10, 60, fs)
        if moved:  # the QRS ends where the trough is back (within 20 ms), its reach counted from the trough
            assert off is not None and abs(off - back) <= 5 and last == candidate
        else:
            assert off == candidate and last == 30
    # a turning point with no activity after it leaves the lead without an offset
    trough = trough + 2.0
    still = np.arange(t.size) < candidate
    assert (
        dl._past_turning_points(
            trough, still & (np.abs(np.gradient(trough)) > 0.01), 15, candidate, 30, 10, 60, fs
        )[0]
        is None
    )
