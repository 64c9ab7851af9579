"""The PTB-XL -> G12EC study end to end at toy size: run counts, tables, refusals and the leakage check."""

from __future__ import annotations

import math

import pytest

from ecgcore.cli import main as cli_main
from ecgcore.data.challenge import LeakageError
from ecgcore.experiments import DataRequired, DataSources, check_data, plan, reproduce
from ecgcore.runs.store import RunStore
from tests.challenge_factories import make_toy_g12ec, make_toy_ptbxl


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> DataSources:
    """40 PTB-XL-layout records (100 Hz) and 40 Georgia records (500 Hz) with the toy statements."""
    root = tmp_path_factory.mktemp("study")
    return DataSources(ptbxl=make_toy_ptbxl(root / "ptbxl"), g12ec=make_toy_g12ec(root / "g12ec"))


@pytest.mark.slow
def test_g12ec_transfer_end_to_end(toy, tmp_path):
    runs = tmp_path / "runs"
    result = reproduce("g12ec-transfer", "tiny", toy, runs_dir=runs, out_dir=tmp_path / "out")
    assert not result.failed and len(result.trained) == 9 and not result.reused
    table = result.table
    macro = table[table["metric"] == "auc"].set_index(["model", "setting"])
    assert len(macro) == 9 and set(macro["status"]) == {"done"}
    assert macro.loc[("xresnet1d101", "G12EC alone"), "published_test"] == 0.843
    assert macro.loc[("inception1d", "G12EC alone"), "published_test"] == 0.685
    assert math.isnan(macro.loc[("resnet1d_wang", "G12EC fine-tuned"), "published_test"])
    per_class = table[table["metric"].str.startswith("auc:")]
    assert len(per_class) == 9 * 18  # every class keeps its row, the rare ones with an empty AUC
    sehyp = per_class[per_class["metric"] == "auc:SEHYP"]
    assert sehyp["ours_test"].isna().all()  # no SEHYP record in the toy data: no AUC, not dropped
    done = macro.dropna(subset=["ci_low_test"])
    assert len(done) and (done["ci_low_test"] <= done["ci_high_test"]).all()
    store = RunStore(runs)
    fine = store.get_run(macro.loc[("xresnet1d101", "G12EC fine-tuned"), "run_id"])
    source = macro.loc[("xresnet1d101", "PTB-XL pretraining"), "run_id"]
    assert fine["config"]["transfer"] == {
        "sources": [source],
        "approach": "pretrained",
        "strategy": "gradual_unfreeze",
        "lr_factor": 2.6,
        "init": "pretrained",
    }
    assert "rare_classes" in fine["summary"] and "SEHYP" in fine["summary"]["rare_classes"]["test"]
    assert "0.843" in result.markdown and "AUC (macro)" in result.markdown
    again = reproduce("g12ec-transfer", "tiny", toy, runs_dir=runs, out_dir=tmp_path / "out")
    assert len(again.reused) == 9 and not again.trained


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "runs"),
    [
        ("g12ec-fractions", 5),
        ("ptbxl-fractions", 5),
        ("downsampling", 12),
        ("frequency", 6),
    ],
)
def test_every_study_experiment_runs_at_toy_size(toy, tmp_path, name, runs):
    result = reproduce(name, "tiny", toy, runs_dir=tmp_path / "runs", out_dir=tmp_path / "out")
    assert not result.failed and len(result.trained) == runs
    assert len(plan(name, "tiny", toy, tmp_path / "runs")) == runs
    table = result.table
    assert table.loc[table["metric"] == "auc", "status"].eq("done").all()
    if name == "downsampling":
        assert sorted(set(table["fs_hz"])) == [50.0, 100.0, 250.0, 500.0]
    if name == "frequency":
        macro = table[table["metric"] == "auc"].set_index(["input", "setting"])
        assert macro.loc[("fft-real", "PTB-XL"), "published_test"] == 0.664
        assert math.isnan(macro.loc[("fft-imaginary", "G12EC fine-tuned"), "published_test"])
        store = RunStore(tmp_path / "runs")
        assert (
            store.get_run(macro.loc[("fft-real", "PTB-XL"), "run_id"])["config"]["representation"]
            == "fft-real"
        )


def test_calibration_end_to_end_and_reuse(toy, tmp_path):
    """The quick one of the six (3 runs): trained, then reused; ECE before / after per run."""
    result = reproduce("calibration", "tiny", toy, runs_dir=tmp_path / "runs", out_dir=tmp_path / "out")
    assert not result.failed and len(result.trained) == 3
    table = result.table
    assert list(table["setting"].unique()) == ["PTB-XL pretraining", "G12EC alone", "G12EC fine-tuned"]
    assert set(table["metric"]) == {"ece", "ece (temperature)", "ece (platt)"} and len(table) == 9
    assert table["ours_test"].between(0, 1).all() and table["ours_val"].between(0, 1).all()
    again = reproduce("calibration", "tiny", toy, runs_dir=tmp_path / "runs", out_dir=tmp_path / "out")
    assert len(again.reused) == 3 and not again.trained


def test_the_study_refuses_without_g12ec_and_names_the_folder(toy, tmp_path, capsys):
    without = DataSources(ptbxl=toy.ptbxl)
    with pytest.raises(DataRequired, match=r"(?s)no Challenge folder was given.*georgia/.*challenge:DIR"):
        check_data("downsampling", without)
    code = cli_main(
        [
            "reproduce",
            "g12ec-transfer",
            "--preset",
            "tiny",
            "--data",
            f"ptbxl:{toy.ptbxl}",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 2 and "needs the user's PTB-XL and G12EC" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or RunStore(tmp_path / "runs").list_runs().empty


def test_leakage_check_fires_when_a_ptbxl_record_is_on_both_sides(toy, tmp_path, capsys):
    both = make_toy_g12ec(
        tmp_path / "challenge", hr_ids=(3, 17)
    )  # PTB-XL ecg_id 3 and 17 as HR00003, HR00017
    sources = DataSources(ptbxl=toy.ptbxl, g12ec=both, g12ec_db="Georgia,PTB_XL")
    with pytest.raises(LeakageError, match=r"2 PTB-XL records .*ecg_id 3 \(HR00003\), ecg_id 17"):
        check_data("g12ec-transfer", sources)
    check_data("g12ec-transfer", DataSources(ptbxl=toy.ptbxl, g12ec=both))  # Georgia only: no overlap
    code = cli_main(
        [
            "reproduce",
            "calibration",
            "--preset",
            "tiny",
            "--data",
            f"ptbxl:{toy.ptbxl}",
            "--data",
            f"challenge:{both};db=Georgia,PTB_XL",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 2 and "HR00003" in capsys.readouterr().err


def test_fine_tuning_refuses_a_target_holding_its_pretraining_records(toy, tmp_path):
    """The trainer's own guard: a Challenge HR record is the PTB-XL record of the same ecg_id."""
    from ecgcore.experiments import get_experiment, get_preset
    from ecgcore.experiments.definitions import resolve
    from ecgcore.runs import run_training as train
    from ecgcore.train.transfer import LeakageError as TransferLeakage

    both = make_toy_g12ec(tmp_path / "challenge", hr_ids=tuple(range(1, 41)))
    sources = DataSources(ptbxl=toy.ptbxl, g12ec=both, g12ec_db="Georgia,PTB_XL")
    specs = {s.name: s for s in get_experiment("calibration").build(get_preset("tiny"), sources)}
    source = train(specs["ptbxl/xresnet1d101"].config, runs_dir=tmp_path / "runs")
    fine = resolve(specs["g12ec-finetuned/xresnet1d101"], {"ptbxl/xresnet1d101": source["id"]})
    with pytest.raises(TransferLeakage, match=r"ptbxl record\(s\) of source run"):
        train(fine, runs_dir=tmp_path / "runs")
