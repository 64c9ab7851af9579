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


def test_the_default_baseline_follows_the_runs_normalisation_and_is_named(regression_run):
    from ecgcore.predict import Predictor

    z = load_predictor(regression_run["run_id"], runs_dir=regression_run["runs_dir"])
    record = read_record(_test_records(regression_run, 1)[0])
    summary, attr = explain_record(z, record, n_steps=8)
    assert z.prep.normalize == "zscore" and summary["baseline"] == "zeros"
    assert "each lead's mean" in summary["baseline_meaning"]
    # the same weights behind a min-max input: zero would be each lead's minimum, not an absent signal
    minmax = Predictor(
        z.model, {**z.meta, "preprocessing": {**z.meta["preprocessing"], "normalize": "minmax"}}
    )
    summary, attr = explain_record(minmax, record, n_steps=8)
    assert summary["baseline"] == attr.baseline == "lead_mean"
    assert summary["baseline_meaning"].startswith("lead_mean = a flat line at each lead's mean")
    x = minmax.prepare(record)[0].numpy()
    assert attr.baseline_score != pytest.approx(attr.score)  # the baseline is the lead-mean line, not x
    explicit = explain_record(minmax, record, baseline="zeros", n_steps=8)[0]
    assert "NOT an absent signal" in explicit["baseline_meaning"]
    assert x.min() >= 0.0  # min-max input: zero is each lead's minimum


def _csv(path, signal, leads) -> str:
    import pandas as pd

    pd.DataFrame(np.asarray(signal).T, columns=list(leads)).to_csv(path, index=False)
    return str(path)


def test_predict_refuses_flags_and_rejects_a_tampered_checkpoint(regression_run, tmp_path, capsys):
    import shutil

    from safetensors.torch import save as st_save

    from ecgcore.data.synthetic import synthetic_ecg
    from ecgcore.guard import OUTSIDE
    from ecgcore.train.checkpoint import read_checkpoint

    run = ["--run", regression_run["run_id"], "--runs-dir", str(regression_run["runs_dir"])]
    meta = load_predictor(regression_run["run_id"], runs_dir=regression_run["runs_dir"]).meta
    leads = meta["preprocessing"]["leads"]

    def predict(path: str, fs: float) -> dict:
        assert cli(["predict", *run, "--fs", str(fs), path]) == 0
        return json.loads(capsys.readouterr().out)

    flat = predict(_csv(tmp_path / "flat.csv", np.zeros((len(leads), 5000)), leads), 500)
    assert "flat" in flat["refused"] and "intervals" not in flat  # a reason, no number
    ecg = synthetic_ecg(68, 160, 90, 400, fs=500.0, duration=10.0, leads=leads, noise_mv=0.01, seed=3)
    normal = predict(_csv(tmp_path / "normal.csv", ecg.signal, leads), 500)
    assert normal["refused"] is None and set(normal["intervals"]) == set(meta["targets"])
    assert not any("implausible" in f for f in normal["flags"])
    halved = predict(_csv(tmp_path / "halved.csv", ecg.signal, leads), 250)  # 500 Hz samples, header 250
    assert any("250 Hz" in f and "at 500 Hz it would be plausible" in f for f in halved["flags"])
    assert any(OUTSIDE in f for f in halved["flags"])  # its measured QT (~800 ms) was never trained on

    tampered = tmp_path / "tampered"
    shutil.copytree(regression_run["runs_dir"] / regression_run["run_id"], tampered)
    best = tampered / "best.safetensors"
    state, saved = read_checkpoint(best)
    best.write_bytes(st_save(state, metadata={"ecglab": json.dumps({**saved, "target_sd": [1.0] * 4})}))
    assert cli(["predict", "--run", str(tampered), "--fs", "500", str(tmp_path / "normal.csv")]) == 2
    err = capsys.readouterr().err
    assert str(best) in err and "digest mismatch" in err


def test_the_report_refuses_a_flat_line_and_prints_the_flags(regression_run, tmp_path, capsys):
    from ecgcore.data.synthetic import synthetic_ecg

    predictor = load_predictor(regression_run["run_id"], runs_dir=regression_run["runs_dir"])
    leads = predictor.meta["preprocessing"]["leads"]
    flat = _csv(tmp_path / "flat.csv", np.zeros((len(leads), 5000)), leads)
    run = ["--run", regression_run["run_id"], "--runs-dir", str(regression_run["runs_dir"])]
    assert cli(["report", *run, "--fs", "500", flat, "--out", str(tmp_path / "flat.pdf")]) == 2
    assert "no prediction: every lead the model reads is flat" in capsys.readouterr().err
    assert not (tmp_path / "flat.pdf").exists()
    ecg = synthetic_ecg(68, 160, 90, 400, fs=500.0, duration=10.0, leads=leads, noise_mv=0.01, seed=3)
    record = read_record(_csv(tmp_path / "halved.csv", ecg.signal, leads), fs=250.0)
    summary, _ = explain_record(predictor, record, n_steps=4)
    flags = summary["prediction"]["flags"]
    assert flags and all(f"Check: {f}" in render_report_lines(summary) for f in flags)


def render_report_lines(summary: dict) -> list[str]:
    from ecgcore.explain.report import _prediction_lines

    return _prediction_lines(summary)


def test_default_saliency_runs_ig_to_the_completeness_tolerance_and_reports_its_steps(
    regression_run, monkeypatch
):
    from ecgcore.explain import attributions
    from ecgcore.explain.attributions import IG_FIRST_STEPS, IG_TOLERANCE

    predictor = load_predictor(regression_run["run_id"], runs_dir=regression_run["runs_dir"])
    record = read_record(_test_records(regression_run, 1)[0])
    summary, _ = explain_record(predictor, record, target="qt")
    tried = summary["ig_tried"]
    assert tried[0][1] == IG_FIRST_STEPS and summary["ig_steps"] == tried[-1][1]
    assert summary["ig_gap"] < IG_TOLERANCE and summary["ig_precision"] in ("bf16", "fp32")
    # a tolerance the first count cannot meet: the steps double and the summary says how many it took
    calls = []
    real = attributions.integrated_gradients
    monkeypatch.setattr(attributions, "integrated_gradients", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(attributions, "IG_MAX_STEPS", 8)
    strict, _ = explain_record(predictor, record, target="qt", n_steps=2, tolerance=1e-9, precision="fp32")
    assert calls[0][5:] == (None, 1e-9, "fp32")  # (internal_batch_size, tolerance, precision) passed on
    assert [t[1] for t in strict["ig_tried"]][:3] == [2, 4, 8] and strict["ig_steps"] == strict["ig_tried"][
        -1
    ][1]
    fixed, _ = explain_record(predictor, record, target="qt", n_steps=4, tolerance=None)
    assert fixed["ig_steps"] == 4 and len(fixed["ig_tried"]) == 1
