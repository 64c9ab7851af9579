"""``python -m ecgcore data summary`` and ``data deepfake``."""

from __future__ import annotations

import json

from ecgcore.__main__ import main
from tests.factories import make_deepfake_dir


def test_summary_of_the_bundled_sample(capsys):
    assert main(["data", "summary", "--source", "ptbxl", "--path", "assets/ptbxl-sample"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert (summary["rows"], summary["records"], summary["missing_files"]) == (11, 10, 1)
    assert summary["fs"] == 500 and summary["superclasses"]["NORM"] == 9 and summary["single_label"] == 9
    assert summary["folds"] == {"2": 1, "3": 1, "4": 2, "5": 1, "6": 2, "7": 1, "10": 2}
    assert "warning: PTB-XL" in out.err and "ecg_id 1" in out.err


def test_summary_of_a_deepfake_folder(tmp_path, capsys):
    root = make_deepfake_dir(tmp_path / "df", 5)
    assert main(["data", "summary", "--source", "deepfake", "--path", str(root)]) == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert set(labels) == {"hr", "pr", "qrs", "qt"} and labels["hr"]["n"] == 5 and labels["qt"]["sd"] > 0


def test_summary_of_the_wrong_kind_of_folder_fails_clearly(tmp_path, capsys):
    assert main(["data", "summary", "--source", "deepfake", "--path", "assets/ptbxl-sample"]) == 2
    assert "is not a DeepFake ECG folder" in capsys.readouterr().err
    assert main(["data", "summary", "--source", "ptbxl", "--path", str(tmp_path)]) == 2
    assert "is not a PTB-XL folder" in capsys.readouterr().err


def test_deepfake_generation_command(tmp_path, capsys):
    out = tmp_path / "gen"
    assert (
        main(
            [
                "data",
                "deepfake",
                "--out",
                str(out),
                "--n",
                "2",
                "--seed",
                "3",
                "--batch-size",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["records"] == 2 and "2/2" in captured.err  # the progress bar
    assert sorted(p.name for p in out.glob("*.asc")) == ["0.asc", "1.asc"]
