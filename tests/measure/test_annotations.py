"""Annotation reader and evaluation in both public layouts (QTDB-like, LUDB-like) and on real LUDB records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgcore.__main__ import main as cli_main
from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.measure import annotations as an
from tests.measure.wfdb_files import write_annotation, write_record

LUDB = Path(__file__).parent / "data" / "ludb"


def _marks(fid: dict[str, np.ndarray], beats, jitter: int = 0, rng=None, t_onset: bool = True):
    """Annotation samples and symbols ``(p) (N) (t)`` for the chosen beats, optionally jittered."""
    rng = rng or np.random.default_rng(0)
    samples, symbols = [], []
    for b in beats:

        def j() -> int:
            return int(rng.integers(-jitter, jitter + 1)) if jitter else 0

        p_peak = (fid["p_on"][b] + fid["p_off"][b]) // 2
        t_peak = (fid["t_on"][b] + fid["t_off"][b]) // 2
        waves = [
            ("p", fid["p_on"][b] + j(), p_peak, fid["p_off"][b] + j()),
            ("N", fid["qrs_on"][b] + j(), fid["r_peak"][b], fid["qrs_off"][b] + j()),
            ("t", fid["t_on"][b] + j() if t_onset else None, t_peak, fid["t_off"][b] + j()),
        ]
        for sym, on, peak, off in waves:
            if on is not None:
                samples.append(on)
                symbols.append("(")
            samples += [peak, off]
            symbols += [sym, ")"]
    return np.asarray(samples, dtype=np.int64), symbols


def test_qtdb_layout_two_leads_some_beats(tmp_path):
    """One q1c file for a 30 s, 250 Hz, two-channel record (MLII is not a standard lead name); T without onset."""
    ecg = synthetic_ecg(
        65, 170, 90, 410, fs=250.0, duration=30.0, leads=("II", "V5"), noise_mv=0.01, wander_mv=0.2, seed=2
    )
    write_record(tmp_path, "sel1", ecg.signal, 250, ["MLII", "V5"])
    beats = list(range(10, 25))
    samples, symbols = _marks(ecg.fiducials, beats, t_onset=False)
    write_annotation(tmp_path, "sel1", "q1c", samples, symbols)

    waves = an.read_annotations(tmp_path / "sel1", "q1c")
    assert list(waves) == ["q1c"]
    kinds = [w.kind for w in waves["q1c"]]
    assert kinds.count("qrs") == len(beats) and kinds.count("t") == len(beats)
    assert all(w.onset is None for w in waves["q1c"] if w.kind == "t")

    diffs = an.evaluate_record(tmp_path / "sel1", "q1c")
    assert len(diffs) == len(beats) and diffs["matched"].all()
    summary = an.summarize(diffs)
    for key, tol in an.CSE_TOLERANCE_MS.items():
        assert summary[key]["matched"] == len(beats), key
        assert summary[key]["pass"], (key, summary[key])
        assert abs(summary[key]["mean_ms"]) <= 2 * tol, (key, summary[key])


def test_ludb_layout_reference_is_supported_by_two_leads(tmp_path):
    """One file per lead; the reference of a beat is the onset / offset supported by 2 of the 8 leads
    (the delineator's rule): the 2nd-earliest onset, or with support=1 the earliest."""
    leads = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
    ecg = synthetic_ecg(75, leads=leads, noise_mv=0.01, seed=4)
    write_record(tmp_path, "7", ecg.signal, 500, [lead.lower() for lead in leads])
    beats = list(range(1, len(ecg.fiducials["r_peak"]) - 1))
    rng = np.random.default_rng(1)
    written = {}
    for lead in leads:
        samples, symbols = _marks(ecg.fiducials, beats, jitter=3, rng=rng)
        write_annotation(tmp_path, "7", lead.lower(), samples, symbols)
        written[lead.lower()] = (samples, symbols)

    waves = an.read_annotations(tmp_path / "7", "ludb")
    assert set(waves) == set(written)
    ref = an.reference_beats(waves, 500.0)
    assert len(ref) == len(beats)
    qrs_on = np.array(
        [
            [s for s, sym, nxt in zip(samples, symbols, symbols[1:]) if sym == "(" and nxt == "N"]
            for samples, symbols in written.values()
        ]
    )
    np.testing.assert_array_equal(ref["qrs_on"].to_numpy(), np.sort(qrs_on, axis=0)[1])
    np.testing.assert_array_equal(
        an.reference_beats(waves, 500.0, support=1)["qrs_on"].to_numpy(), qrs_on.min(axis=0)
    )

    diffs = an.evaluate_record(tmp_path / "7", "ludb")
    summary = an.summarize(diffs)
    for key, _tol in an.CSE_TOLERANCE_MS.items():
        assert summary[key]["matched"] == len(beats) and summary[key]["pass"], (key, summary[key])


def test_missing_annotation_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="q1c"):
        an.read_annotations(tmp_path / "sel1", "q1c")
    with pytest.raises(FileNotFoundError, match="LUDB"):
        an.read_annotations(tmp_path / "1", "ludb")


def test_real_ludb_records_against_cardiologists():
    """Three real LUDB records (12 leads): all annotated beats found, boundaries near the experts'."""
    frames = [an.evaluate_record(LUDB / str(i), "ludb") for i in (1, 2, 3)]
    for frame, i in zip(frames, (1, 2, 3)):
        assert frame["matched"].all(), f"record {i}: annotated beats not detected"
    summary = an.summarize(__import__("pandas").concat(frames, ignore_index=True))
    assert summary["beats"]["matched"] == summary["beats"]["annotated"] > 15
    for key in ("qrs_on", "qrs_off", "t_off", "p_on"):
        tol = an.CSE_TOLERANCE_MS[key]
        assert summary[key]["matched"] >= 15, key
        assert abs(summary[key]["mean_ms"]) <= 20 and summary[key]["sd_ms"] <= 1.5 * tol, (key, summary[key])
    # HR agrees with the RR of the cardiologists' QRS marks.
    ref = an.reference_beats(an.read_annotations(LUDB / "1", "ludb"), 500.0)
    from ecgcore.measure import measure

    rec = wfdb.rdrecord(str(LUDB / "1"))
    m = measure(rec.p_signal.T, 500.0, rec.sig_name)
    assert m.hr == pytest.approx(60_000 / (np.diff(ref["qrs"]).mean() * 2), abs=2)


def test_cli_eval_prints_json_per_fiducial(capsys):
    assert cli_main(["measure", "--eval-annotations", "ludb", str(LUDB / "1")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["fiducial"] for r in rows] == list(an.CSE_TOLERANCE_MS)
    assert all({"matched", "mean_ms", "sd_ms", "tolerance_sd_ms", "pass"} <= set(r) for r in rows)


def test_cli_eval_per_record_lines_come_first_and_add_up(capsys):
    """``--per-record``: one line per record before the summary; their matched counts sum to its."""
    records = [str(LUDB / str(i)) for i in (1, 2)]
    assert cli_main(["measure", "--eval-annotations", "ludb", "--per-record", *records]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r.get("record") for r in rows[:2]] == records and all("fiducial" in r for r in rows[2:])
    qrs_on = next(r for r in rows[2:] if r["fiducial"] == "qrs_on")
    assert rows[0]["qrs_on"]["matched"] + rows[1]["qrs_on"]["matched"] == qrs_on["matched"] > 0
    assert {"mean_ms", "sd_ms", "ours_only", "annotation_only"} <= set(rows[0]["t_off"])


def test_wide_qrs_with_distant_peaks_is_one_beat():
    """Bundle branch block: two leads mark the same wide QRS with peaks 120 ms apart (overlapping
    onset-offset spans); they form one beat, not two, and the next beat stays separate."""
    lead_a = an.parse_waves([100, 130, 250, 600, 630, 750], ["(", "N", ")", "(", "N", ")"])
    lead_b = an.parse_waves([105, 190, 255, 605, 690, 755], ["(", "N", ")", "(", "N", ")"])
    ref = an.reference_beats({"v1": lead_a, "v6": lead_b}, 500.0)
    assert len(ref) == 2
    assert ref["qrs_on"].tolist() == [100, 600] and ref["qrs_off"].tolist() == [255, 755]


def test_reference_support_ignores_one_leads_outlying_mark():
    """support=2: the 2nd-latest T end over leads, so one lead's late mark does not set the reference."""
    symbols = ["(", "N", ")", "(", "t", ")"]
    streams = {
        lead: an.parse_waves([100, 130, 150, 300, 350, 400 + extra], symbols)
        for lead, extra in (("i", 0), ("ii", 4), ("v1", 80))
    }
    assert an.reference_beats(streams, 500.0)["t_off"].tolist() == [480]
    assert an.reference_beats(streams, 500.0, support=2)["t_off"].tolist() == [404]
    assert an.reference_beats({"q1c": streams["v1"]}, 500.0, support=2)["t_off"].tolist() == [480]
