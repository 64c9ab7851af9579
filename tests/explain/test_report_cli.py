"""The per-record report and the ``explain`` / ``report`` commands, on runs made by the real trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

from ecgcore.__main__ import main as cli
from ecgcore.data.preprocess import shape_record
from ecgcore.explain.report import DISCLAIMER, explain_record, render_report
from ecgcore.io import read_record
from ecgcore.predict import load_predictor


def _test_records(run: dict, n: int) -> list[str]:
    ids = json.loads((run["runs_dir"] / run["run_id"] / "records.json").read_text())["test"][:n]
    return [str(run["data"] / f"{record_id}.asc") for record_id in ids]


def test_report_command_writes_a_pdf_and_a_png(regression_run, test_output, capsys):
    record = _test_records(regression_run, 1)[0]
    pdf, png = test_output / "explain_report.pdf", test_output / "explain_report.png"  # kept to look at
    code = cli(
        [
            "report",
            "--run",
            regression_run["run_id"],
            "--runs-dir",
            str(regression_run["runs_dir"]),
            record,
            "--out",
            str(pdf),
            "--out",
            str(png),
        ]
    )
    assert code == 0
    written = json.loads(capsys.readouterr().out)
    assert written["written"] == [str(pdf), str(png)] and written["target"] == "hr"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") >= 1 and data.rstrip().endswith(b"%%EOF")
    image = imread(png)
    assert image.ndim == 3 and image.shape[0] > 1000 and image.shape[1] > 1000
    assert image[..., :3].std() > 0.05  # not a blank page


def test_report_shows_prediction_measurement_and_disclaimer(regression_run):
    predictor = load_predictor(regression_run["run_id"], runs_dir=regression_run["runs_dir"])
    record = read_record(_test_records(regression_run, 1)[0])
    summary, attr = explain_record(predictor, record, target="qt", n_steps=16)
    assert summary["target"] == "qt" and summary["target_index"] == 3
    assert set(summary["measured"]) == {"hr", "pr", "qrs", "qt"} and summary["measured"]["qt"] is not None
    fig = render_report(
        summary,
        attr,
        shape_record(record, predictor.prep),
        predictor.prep.fs,
        predictor.prep.leads,
        predictor.meta,
    )
    text = "\n".join(t.get_text() for t in fig.texts)
    assert DISCLAIMER in text
    qt, measured = summary["prediction"]["intervals"]["qt"], summary["measured"]["qt"]
    line = next(line for line in text.splitlines() if line.startswith("QT interval:"))  # plain names, units
    assert f"{qt:.0f} ms (model)" in line and f"{measured:.0f} ms (measured from the ECG)" in line
    assert "model's QT interval" in text and "Technical detail" in text and "Integrated Gradients" in text
    assert summary["top_leads"][0][0] in text and regression_run["run_id"] in text


def test_explain_command_prints_json_per_record_with_faithfulness(regression_run, tmp_path, capsys):
    records = _test_records(regression_run, 2)
    code = cli(
        [
            "explain",
            "--run",
            regression_run["run_id"],
            "--runs-dir",
            str(regression_run["runs_dir"]),
            "--method",
            "ig",
            "--baseline",
            "lead_mean",
            "--target",
            "qrs",
            "--steps",
            "16",
            "--eval",
            "--png",
            str(tmp_path / "attr.png"),
            *records,
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, records):
        out = json.loads(line)
        assert out["method"] == "ig" and out["baseline"] == "lead_mean" and out["target"] == "qrs"
        assert sum(out["lead_importance"].values()) == pytest.approx(1.0)
        assert set(out["wave_importance"]) == {"P", "QRS", "ST", "T", "other"}
        deletion, randomisation = out["faithfulness"]["deletion"], out["faithfulness"]["randomisation"]
        curve, random_curve = np.array(deletion["curve"]), np.array(deletion["random_curve"])
        assert len(curve) == len(random_curve) == deletion["n_steps"] + 1
        # both deletions start from the untouched record and end at the all-baseline input
        assert curve[0] == pytest.approx(random_curve[0], abs=1e-4)
        assert curve[-1] == pytest.approx(random_curve[-1], abs=1e-4)
        fractions = np.linspace(0.0, 1.0, len(curve))
        assert deletion["auc"] == pytest.approx(np.trapezoid(curve, fractions), abs=1e-6)
        assert deletion["random_auc"] == pytest.approx(np.trapezoid(random_curve, fractions), abs=1e-6)
        span = curve[0] - curve[-1]
        gain = (deletion["random_auc"] - deletion["auc"]) * np.sign(span) / abs(span)
        assert deletion["gain"] == pytest.approx(gain) and deletion["beats_random"] == (gain > 0)
        # a map from re-initialised weights must not rank the samples as the trained model's does
        assert randomisation["mode"] == "full" and len(randomisation["steps"]) == 1
        assert randomisation["spearman"] == randomisation["steps"][0]["spearman"] < 0.9
        assert imread(out["png"]).shape[0] > 100 and out["png"].endswith(
            f"_{read_record(path).record_id}.png"
        )


def test_explain_command_errors_are_specific(regression_run, tmp_path, capsys):
    base = ["explain", "--run", regression_run["run_id"], "--runs-dir", str(regression_run["runs_dir"])]
    record = _test_records(regression_run, 1)[0]
    assert cli([*base, "--target", "MI", record]) == 2
    assert "unknown target 'MI'" in capsys.readouterr().err
    assert cli([*base, str(tmp_path / "missing.asc")]) == 2
    assert f"{tmp_path / 'missing.asc'}: no such record" in capsys.readouterr().err
    assert (
        cli(["explain", "--run", "no-such-run", "--runs-dir", str(regression_run["runs_dir"]), record]) == 2
    )
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_calibrated_probabilities_reach_the_report(classification_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECGLAB_HOME", str(classification_run["home"]))
    runs_dir, run_id = classification_run["runs_dir"], classification_run["run_id"]
    assert cli(["explain", "--run", run_id, "--runs-dir", str(runs_dir), "--calibrate", "temperature"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["temperature"] > 0 and set(fitted["mean_class_ece"]) == {"val", "test"}
    record_id = json.loads((runs_dir / run_id / "records.json").read_text())["test"][0]
    folder = f"{(int(record_id) // 1000) * 1000:05d}"
    record = classification_run["data"] / "records100" / folder / f"{int(record_id):05d}_lr"
    pdf = tmp_path / "cls.pdf"
    assert cli(["report", "--run", run_id, "--runs-dir", str(runs_dir), str(record), "--out", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    capsys.readouterr()
    assert cli(["predict", "--run", run_id, "--runs-dir", str(runs_dir), str(record)]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["calibration"]["temperature"] == pytest.approx(fitted["temperature"])
    assert sum(predicted["calibrated_probabilities"].values()) == pytest.approx(1.0)
    predictor = load_predictor(run_id, runs_dir=runs_dir)
    summary, attr = explain_record(
        predictor, read_record(record), method="saliency", run_dir=runs_dir / run_id
    )
    fig = render_report(
        summary,
        attr,
        shape_record(read_record(record), predictor.prep),
        predictor.prep.fs,
        predictor.prep.leads,
        predictor.meta,
        runs_dir / run_id,
    )
    text = "\n".join(t.get_text() for t in fig.texts)
    assert f"T = {fitted['temperature']:.2f}" in text and "calibrated" in text
    probs = summary["prediction"]["calibrated_probabilities"]
    assert summary["target"] == summary["prediction"]["predicted"][0]
    assert sum(probs.values()) == pytest.approx(1.0) and not np.isclose(
        summary["prediction"]["calibration"]["temperature"], 1.0
    )
