"""``python -m ecgcore reproduce`` end to end on small fixtures, with the tiny preset (toy models, 1 epoch)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ecgcore.__main__ import main
from ecgcore.experiments import data_sources, plan
from ecgcore.experiments.published import TABLE1_MAE, TABLE2
from ecgcore.runs.store import RunStore
from tests.factories import make_deepfake_dir, make_ptbxl_dir


def _n_runs(runs_dir) -> int:
    return len(RunStore(runs_dir).list_runs()) if (runs_dir / "runs.sqlite").exists() else 0


@pytest.mark.parametrize("experiment", ["table2", "transfer", "fractions"])
def test_classification_without_ptbxl_says_what_it_needs_and_runs_nothing(experiment, tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["reproduce", experiment, "--preset", "quick", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code != 0
    assert "https://physionet.org/content/ptb-xl/1.0.3/" in err and "--data ptbxl:DIR" in err
    assert "Nothing was run" in err
    assert _n_runs(runs) == 0 and not (tmp_path / "out").exists()


def test_the_bundled_sample_is_refused(tmp_path, capsys, ptbxl_sample):
    code = main(["reproduce", "table2", "--data", "ptbxl:bundled", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code != 0 and "bundled 11-record PTB-XL sample" in err
    assert _n_runs(tmp_path / "runs") == 0


def test_a_copy_of_the_bundled_sample_is_refused_too(tmp_path, capsys, ptbxl_sample):
    import shutil

    copy = shutil.copytree(ptbxl_sample, tmp_path / "ptbxl")
    assert main(["reproduce", "table2", "--data", f"ptbxl:{copy}", "--runs-dir", str(tmp_path / "runs")]) != 0
    assert "bundled" in capsys.readouterr().err


def test_table1_on_a_deepfake_folder_prints_and_writes_the_table_and_reuses_runs(tmp_path, capsys):
    data = make_deepfake_dir(tmp_path / "deepfake", 40, seed=3)
    runs, out = tmp_path / "runs", tmp_path / "out"
    args = [
        "reproduce",
        "table1",
        "--preset",
        "tiny",
        "--data",
        f"deepfake:{data}",
        "--runs-dir",
        str(runs),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert (
        "| Model | Metric | Ours train | Ours val | Baseline train | Baseline val | Published train |"
        in printed
    )
    assert "1D-CNN" in printed and "preset 'tiny'" in printed
    table = pd.read_csv(out / "table1.csv")
    assert len(table) == 5 * 4 and set(table["target"]) == {"hr", "pr", "qrs", "qt"}
    for column in ("ours_train", "ours_val", "baseline_train", "baseline_val"):
        assert table[column].notna().all() and (table[column] > 0).all(), column
    row = table[(table["model"] == "vit") & (table["target"] == "pr")].iloc[0]
    assert row["published_val"] == TABLE1_MAE["vit"]["pr"]["val"]
    assert row["published_train"] == TABLE1_MAE["vit"]["pr"]["train"]
    # the train columns are the run's own training rows: the trivial baseline there is the mean absolute
    # deviation of the training labels from their mean
    from ecgcore.data import open_source

    records = json.loads((runs / row["run_id"] / "records.json").read_text())
    index = open_source(f"deepfake:{data}").index.set_index("record_id")
    pr_train = index.loc[records["train"], "pr"]
    assert math.isclose(row["baseline_train"], (pr_train - pr_train.mean()).abs().mean(), rel_tol=1e-6)
    saved = json.loads((out / "table1.json").read_text())
    assert saved["settings"]["preset"] == "tiny" and len(saved["rows"]) == 20 and saved["citation"]["url"]
    n_runs = _n_runs(runs)
    assert n_runs == 5
    assert main(args) == 0  # everything is reused: no new run, the same numbers
    assert _n_runs(runs) == n_runs
    again = pd.read_csv(out / "table1.csv")
    pd.testing.assert_frame_equal(table, again)


def test_runs_on_relabelled_data_are_not_reused(tmp_path):
    """Relabelled data keeps every configuration key; the finished runs must still count as missing."""
    data = make_deepfake_dir(tmp_path / "deepfake", 40, seed=3)
    sources = data_sources([f"deepfake:{data}"], None)
    runs = tmp_path / "runs"
    assert (
        main(
            ["reproduce", "table1", "--preset", "tiny", "--data", f"deepfake:{data}", "--runs-dir", str(runs)]
        )
        == 0
    )
    assert {p.status for p in plan("table1", "tiny", sources, runs)} == {"done"}
    truth = data / "deepfake_ground_truth.csv"
    labels = pd.read_csv(truth)
    labels["qrs"] = labels["qrs"] + 10.0  # e.g. intervals re-measured by a newer algorithm
    labels.to_csv(truth, index=False)
    assert {p.status for p in plan("table1", "tiny", sources, runs)} == {"missing"}


@pytest.fixture(scope="module")
def ptbxl_fixture(tmp_path_factory):
    """A PTB-XL-format folder with every superclass single-labelled in train and validation."""
    return make_ptbxl_dir(tmp_path_factory.mktemp("ptbxl") / "ptbxl", 80, seed=0)


def test_classification_experiments_end_to_end_on_a_ptbxl_fixture(ptbxl_fixture, tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    base = ["--preset", "tiny", "--data", f"ptbxl:{ptbxl_fixture}", "--runs-dir", str(runs)]
    deepfake = make_deepfake_dir(tmp_path / "deepfake", 40, seed=4)

    assert main(["reproduce", "table2", *base, "--out", str(out)]) == 0
    table2 = pd.read_csv(out / "table2.csv")
    assert len(table2) == 5 * 2 and set(table2["metric"]) == {"accuracy", "auc"}
    assert table2[["ours_train", "ours_val", "baseline_val"]].notna().all().all()
    auc = table2[table2["metric"] == "auc"]
    assert (auc["baseline_val"] == 0.5).all()  # a constant prior ranks nothing
    cnn_acc = table2[(table2["model"] == "cnn") & (table2["metric"] == "accuracy")].iloc[0]
    assert cnn_acc["published_val"] == TABLE2["cnn"]["val"]["accuracy"]
    n_table2 = _n_runs(runs)
    assert n_table2 == 5

    assert main(["reproduce", "transfer", *base, "--data", f"deepfake:{deepfake}", "--out", str(out)]) == 0
    transfer = pd.read_csv(out / "transfer.csv")
    settings = transfer.drop_duplicates(["setting", "approach", "strategy"])
    assert sorted(settings["setting"]) == ["deepfake", "deepfake", "ptbxl", "ptbxl", "scratch"]
    assert transfer[["ours_val", "baseline_val"]].notna().all().all()
    assert transfer["published_val"].isna().all()  # the study's Tables 1-2 have no transfer numbers
    # 1 scratch + 2 settings x (4-target + QRS-only regression) + 2 settings x 2 approaches x 1 strategy
    assert _n_runs(runs) == n_table2 + 1 + 4 + 4
    printed = capsys.readouterr().out
    assert "measured by ecgcore.measure" in printed  # no PTB-XL+ given: says where the labels came from

    n_before = _n_runs(runs)
    assert main(["reproduce", "fractions", *base, "--data", f"deepfake:{deepfake}", "--out", str(out)]) == 0
    fractions = pd.read_csv(out / "fractions.csv")
    assert sorted(set(fractions["fraction"])) == [0.5, 1.0]
    # reused: the DeepFake backbone and the 100 % scratch run; new: both 50 % runs and the 100 % fine-tuned
    # one (the tiny preset's transfer experiment used the linear probe, fractions fine-tunes discriminatively)
    assert _n_runs(runs) == n_before + 3

    assert main(["reproduce", "table2", *base, "--out", str(out)]) == 0  # second time: nothing new
    assert _n_runs(runs) == n_before + 3
    assert math.isclose(pd.read_csv(out / "table2.csv")["ours_val"].sum(), table2["ours_val"].sum())


def test_plan_and_launch_missing_start_only_what_can_start(tmp_path, monkeypatch):
    from ecgcore.experiments import DataSources, launch_missing, plan, plan_frame
    from ecgcore.runs import worker

    sources = DataSources(ptbxl=tmp_path / "ptbxl", deepfake=tmp_path / "deepfake")
    planned = plan_frame(plan("transfer", "quick", sources, tmp_path / "runs"))
    waiting = planned[planned["status"] == "waiting"]
    assert set(planned["status"]) == {"missing", "waiting"}
    assert waiting["name"].str.startswith("transfer/").all() and len(waiting) == 12

    # a stopped run with the same configuration and a checkpoint is resumed, not started again
    first = plan("transfer", "quick", sources, tmp_path / "runs")[0]
    store = RunStore(tmp_path / "runs")
    stopped = store.create_run(first.config)
    store.update(stopped, status="interrupted", last_checkpoint="last.safetensors")
    again = plan("transfer", "quick", sources, tmp_path / "runs")[0]
    assert (again.status, again.run_id) == ("resumable", stopped)

    launched, resumed = [], []
    monkeypatch.setattr(
        worker, "launch", lambda config, runs_dir=None: launched.append(config) or f"id{len(launched)}"
    )
    monkeypatch.setattr(worker, "resume", lambda run_id, runs_dir=None: resumed.append(run_id) or run_id)
    monkeypatch.setattr("ecgcore.experiments.planning.check_data", lambda experiment, sources: None)
    ids = launch_missing("transfer", "quick", sources, tmp_path / "runs", limit=2)
    assert ids == [stopped, "id1"] and resumed == [stopped] and not any(c.transfer for c in launched)
    assert launch_missing("transfer", "quick", sources, tmp_path / "runs") == [
        stopped,
        "id2",
        "id3",
        "id4",
        "id5",
    ]


def test_a_ptbxl_plus_folder_without_its_features_table_is_refused(ptbxl_fixture, tmp_path, capsys):
    args = [
        "reproduce",
        "transfer",
        "--preset",
        "tiny",
        "--data",
        f"ptbxl:{ptbxl_fixture}",
        "--plus",
        str(tmp_path),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    assert main(args) != 0
    assert "12sl_features.csv" in capsys.readouterr().err and _n_runs(tmp_path / "runs") == 0
