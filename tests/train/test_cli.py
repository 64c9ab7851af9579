import json
from pathlib import Path

from ecgcore.__main__ import main


def test_train_then_predict_from_the_command_line(deepfake_spec, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    code = main(
        [
            "train",
            "--task",
            "regression",
            "--targets",
            "hr,qt",
            "--data",
            deepfake_spec,
            "--model",
            "cnn",
            "--model-kwargs",
            '{"widths": [16, 16, 32], "head_hidden": 32}',
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--fs",
            "100",
            "--runs-dir",
            runs,
            "--seed",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0  # stdout holds only the JSON summary (the progress bar goes to stderr)
    summary = json.loads(captured.out)
    assert summary["status"] == "done" and summary["names"] == ["hr", "qt"]
    assert set(summary["metrics"]["test"]["per_target"]) == {"hr", "qt"} and "baseline" in summary

    records = sorted(Path(deepfake_spec.split(":", 1)[1]).glob("*.asc"))[:2]
    assert main(["predict", "--run", summary["id"], "--runs-dir", runs, *map(str, records)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"] for line in lines] == [str(r) for r in records]
    assert all(set(line["intervals"]) == {"hr", "qt"} for line in lines)

    assert main(["runs", "list", "--runs-dir", runs]) == 0
    assert summary["id"] in capsys.readouterr().out
    assert main(["runs", "show", summary["id"], "--runs-dir", runs]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "done" and [e["epoch"] for e in shown["epochs"]] == [0, 1]


def test_command_line_errors_are_specific(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--task",
                "regression",
                "--data",
                "deepfake:" + str(tmp_path / "missing"),
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "missing is not a directory (expected a DeepFake ECG folder)" in capsys.readouterr().err
    assert main(["train", "--schedule", "cosine", "--data", "deepfake:x"]) == 2
    assert "schedule" in capsys.readouterr().err
    assert main(["predict", "--run", "nope", "--runs-dir", str(tmp_path), "x.asc"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["runs", "show", "--runs-dir", str(tmp_path)]) == 2
