"""TrainConfig.transfer is a typed, frozen TransferConfig; runs stored with the old dict form still load."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3

import pytest

from ecgcore.runs.store import STORE_NAME, RunStore, repair
from ecgcore.train.config import DEFAULT_LR_FACTOR, TrainConfig, TransferConfig

#: A classification run's config.json as the run store wrote it while ``transfer`` was a plain dict
#: (the experiments and the Train page named sources, approach and strategy only).
OLD_CONFIG = {
    **TrainConfig(task="classification", data="ptbxl:/data/ptbxl", subset="B").to_dict(),
    "transfer": {"sources": ["src-hr", "src-qrs"], "approach": "qrs", "strategy": "gradual_unfreeze"},
}
#: The random-init control of the transfer experiment, which also set lr_factor and init.
OLD_CONTROL = {
    **OLD_CONFIG,
    "transfer": {
        "sources": ["a", "b", "c", "d"],
        "approach": "combined",
        "strategy": "discriminative",
        "lr_factor": 1.0,
        "init": "random",
    },
}


def old_key(d: dict) -> str:
    """TrainConfig.key() as it was computed when transfer was a dict: the stored dict hashed as it was."""
    relevant = {k: v for k, v in d.items() if k not in ("device", "compile")}
    if relevant["representation"] == "signal":
        del relevant["representation"]
    blob = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@pytest.mark.parametrize("old", [OLD_CONFIG, OLD_CONTROL])
def test_an_old_dict_loads_typed_with_the_old_key_and_is_written_back_whole(old):
    config = TrainConfig.from_dict(json.loads(json.dumps(old)))
    assert isinstance(config.transfer, TransferConfig)
    assert config.transfer.sources == tuple(old["transfer"]["sources"])
    assert config.transfer.strategy == old["transfer"]["strategy"]
    assert config.transfer.lr_factor == old["transfer"].get("lr_factor", DEFAULT_LR_FACTOR)
    assert config.transfer.init == old["transfer"].get("init", "pretrained")
    assert config.key() == old_key(old)  # old runs are still found (find_done) and reused
    written = config.to_dict()["transfer"]
    assert list(written) == ["sources", "approach", "strategy", "lr_factor", "init"]
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_defaults_given_or_left_out_are_one_key_and_a_change_is_another():
    base = {"sources": ["s"], "approach": "qrs", "strategy": "linear_probe"}
    left_out = TrainConfig(task="classification", transfer=base)
    given = TrainConfig(task="classification", transfer={**base, "lr_factor": 2.6, "init": "pretrained"})
    assert given.transfer == left_out.transfer and given.key() == left_out.key()
    assert TrainConfig(task="classification", transfer={**base, "lr_factor": 1.5}).key() != left_out.key()
    assert TrainConfig(task="classification", transfer={**base, "init": "random"}).key() != left_out.key()
    assert TrainConfig(task="classification", transfer={**base, "sources": ["t"]}).key() != left_out.key()


def test_the_settings_are_frozen():
    transfer = TrainConfig(task="classification", transfer={"sources": ["s"]}).transfer
    with pytest.raises(dataclasses.FrozenInstanceError):
        transfer.strategy = "discriminative"
    assert dataclasses.replace(transfer, sources=("t",)).sources == ("t",)


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        ({"sources": ["s"], "stratgy": "linear_probe"}, r"unknown keys \['stratgy'\]; expected some of"),
        ({"approach": "qrs"}, "TrainConfig.transfer has no 'sources'"),
        ({"sources": []}, r"TrainConfig.transfer.sources=\[\]; expected at least one source run id"),
        ({"sources": "run-1"}, "TrainConfig.transfer.sources='run-1'; expected a list of source run ids"),
        ({"sources": ["ok", 3]}, "TrainConfig.transfer.sources holds 3; expected run ids"),
        (
            {"sources": ["s"], "strategy": "freeze_all"},
            "TrainConfig.transfer.strategy='freeze_all'; expected one",
        ),
        ({"sources": ["s"], "approach": "both"}, "TrainConfig.transfer.approach='both'; expected one of"),
        ({"sources": ["s"], "init": "imagenet"}, "TrainConfig.transfer.init='imagenet'; expected one of"),
        ({"sources": ["a", "b"], "approach": "continue"}, "approach 'continue' takes one source run"),
        (
            {"sources": ["s"], "approach": "continue", "init": "random"},
            "approach 'continue' starts from the source's weights",
        ),
        ({"sources": ["s"], "lr_factor": 0.5}, r"TrainConfig.transfer.lr_factor=0.5; expected >= 1"),
        (
            {"sources": ["s"], "lr_factor": float("nan")},
            "TrainConfig.transfer.lr_factor=nan; expected a finite",
        ),
        ({"sources": ["s"], "lr_factor": "2"}, "TrainConfig.transfer.lr_factor='2'; expected a finite"),
        (["s"], r"TrainConfig.transfer=\['s'\]; expected a TransferConfig or a dict"),
    ],
)
def test_a_bad_setting_is_named_with_its_value(transfer, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict({"task": "classification", "transfer": transfer})


def test_transfer_needs_a_classification_run():
    with pytest.raises(
        ValueError,
        match="TrainConfig.transfer.approach='combined' targets classification; this run's task is 're",
    ):
        TrainConfig(task="regression", transfer={"sources": ["s"]})


def test_runs_stored_with_the_old_dict_still_load_and_are_found(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(TrainConfig.from_dict(OLD_CONFIG), run_id="old-run")
    store.update(run_id, status="done", summary={"status": "done"})
    with sqlite3.connect(tmp_path / STORE_NAME) as con:  # what a store written before the change holds
        con.execute(
            "UPDATE runs SET config_json = ?, config_key = ? WHERE id = ?",
            (json.dumps(OLD_CONFIG, sort_keys=True), old_key(OLD_CONFIG), run_id),
        )
    (tmp_path / run_id / "config.json").write_text(json.dumps(OLD_CONFIG))
    assert store.config(run_id).transfer == TransferConfig(("src-hr", "src-qrs"), "qrs", "gradual_unfreeze")
    assert store.find_done(TrainConfig.from_dict(OLD_CONFIG)) == run_id

    (tmp_path / STORE_NAME).unlink()  # rebuilt from the run directory's old config.json
    report = repair(tmp_path)
    assert report.recovered == [run_id]
    rebuilt = RunStore(tmp_path)
    assert rebuilt.config(run_id).transfer.strategy == "gradual_unfreeze"
    assert rebuilt.find_done(TrainConfig.from_dict(OLD_CONFIG)) == run_id
