"""Transfer learning: strategies by named layer groups, both approaches end to end, the leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ecgcore.models import create_model
from ecgcore.runs import run_training, transfer_sources
from ecgcore.runs.store import RunStore
from ecgcore.train.checkpoint import load_checkpoint, read_checkpoint
from ecgcore.train.transfer import LeakageError, Strategy, assert_no_leakage, prepare
from ecgcore.vocab import TARGET_KEYS
from tests.factories import PTBXL_TRUTH_CSV, make_ptbxl_plus_dir
from tests.train.helpers import tiny_config


def group_keys(model) -> dict[str, list[str]]:
    """State-dict keys (parameters and buffers) of each named layer group."""
    names = {id(m): n for n, m in model.named_modules()}
    keys = list(model.state_dict())
    return {
        group: [k for m in modules for k in keys if k.startswith(names[id(m)] + ".")]
        for group, modules in model.layer_groups()
    }


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict, after: dict, key: str) -> bool:
    return not torch.equal(before[key], after[key])


def param_keys(model) -> set[str]:
    return {n for n, _ in model.named_parameters()}


# --- strategies on a model, without the trainer -------------------------------------------------
def small_model():
    torch.manual_seed(0)
    return create_model("cnn", n_leads=8, n_outputs=5, widths=[8, 16, 16], head_hidden=16)


def run_epoch(model, strategy: Strategy | None, optimizer, epoch: int, steps: int = 3) -> None:
    """What the trainer does per epoch: train mode, the strategy's freeze, a few AdamW steps."""
    model.train()
    if strategy is not None:
        strategy.on_epoch_start(epoch, model)
    gen = torch.Generator().manual_seed(epoch)
    for _ in range(steps):
        x = torch.randn(4, 8, 300, generator=gen) * 2 + 1
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def test_without_a_strategy_everything_moves_so_the_freeze_checks_can_fail():
    model = small_model()
    before = snapshot(model)
    run_epoch(model, None, torch.optim.AdamW(model.parameters(), lr=1e-2), epoch=0)
    after = snapshot(model)
    for key in group_keys(model)["block1"]:
        assert changed(before, after, key), key  # weights and BatchNorm running statistics


def test_linear_probe_trains_only_the_head_and_keeps_batchnorm_statistics():
    model = small_model()
    strategy = Strategy("linear_probe")
    groups = strategy.param_groups(model, 1e-2)
    assert [g["name"] for g in groups] == ["head"]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.5)
    before = snapshot(model)
    for epoch in range(2):
        run_epoch(model, strategy, optimizer, epoch)
    after = snapshot(model)
    keys = group_keys(model)
    for group in ("block1", "block2", "block3"):
        for key in keys[group]:
            assert not changed(before, after, key), f"frozen {key} changed"
    for key in keys["head"]:
        assert changed(before, after, key), f"head {key} did not train"
    assert not model.backbone.blocks[0][0][1].training  # frozen BatchNorm kept in eval mode
    assert model.head.training


def test_gradual_unfreeze_opens_one_more_group_from_the_top_each_epoch():
    model = small_model()
    strategy = Strategy("gradual_unfreeze")
    names = [n for n, _ in model.layer_groups()]
    assert names == ["block1", "block2", "block3", "head"]
    groups = strategy.param_groups(model, 1e-2)
    assert [g["name"] for g in groups] == names
    assert {g["lr"] for g in groups} == {1e-2}
    optimizer = torch.optim.AdamW(groups, weight_decay=0.1)
    keys = group_keys(model)
    trained: set[str] = set()
    for epoch in range(4):
        before = snapshot(model)
        run_epoch(model, strategy, optimizer, epoch)
        after = snapshot(model)
        open_now = set(names[len(names) - 1 - epoch :])
        assert set(strategy.trainable_groups(model, epoch)) == open_now
        for group in names:
            for key in keys[group]:
                moved = changed(before, after, key)
                # AdamW keeps moving an already-unfrozen group; a still-frozen one must not move at all
                assert moved == (group in open_now), f"epoch {epoch}: {key} moved={moved}"
        trained |= open_now
    assert trained == set(names)


def test_discriminative_learning_rates_fall_by_the_factor_going_down():
    model = small_model()
    strategy = Strategy("discriminative", lr_factor=2.6)
    groups = strategy.param_groups(model, 1e-2)
    assert [g["name"] for g in groups] == ["block1", "block2", "block3", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-2 / 2.6**3, 1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2])
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # every parameter exactly once
    before = snapshot(model)
    run_epoch(model, strategy, torch.optim.AdamW(groups), epoch=0)
    after = snapshot(model)
    assert all(changed(before, after, k) for k in param_keys(model))


def test_strategy_and_leakage_errors_are_specific():
    with pytest.raises(ValueError, match="strategy 'freeze_all'"):
        Strategy("freeze_all")
    source = {
        "data": "ptbxl:/x",
        "kind": "ptbxl",
        "run_id": "run-A",
        "train": ["1", "2"],
        "val": ["3"],
        "test": [],
    }
    target = {"data": "ptbxl:/x", "kind": "ptbxl", "train": ["5"], "val": ["6"], "test": ["3", "7"]}
    with pytest.raises(
        LeakageError,
        match=r"1 ptbxl record\(s\) of source run run-A \(val split\) are in the "
        r"target test split of ptbxl:/x: '3'",
    ):
        assert_no_leakage(source, target)
    assert_no_leakage(source, {**target, "kind": "deepfake"})  # a DeepFake patid is not a PTB-XL ecg_id
    assert_no_leakage([source], {**target, "test": ["7"]})
    # a run continued on its own data: a record may stay in its split, never move to another
    same = {**target, "train": ["1", "2", "5"], "val": ["3", "6"], "test": ["7"]}
    assert_no_leakage(source, same, same_split_ok=True)
    with pytest.raises(
        LeakageError, match=r"sit in another split .* run-A \(val split\) are in the target test"
    ):
        assert_no_leakage(source, target, same_split_ok=True)


# --- end to end through the trainer -------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> str:
    """One data home for this module's runs, so the tiny datasets are cached once, not per test."""
    return str(tmp_path_factory.mktemp("transfer_home"))


@pytest.fixture
def home(shared_home, monkeypatch) -> str:
    monkeypatch.setenv("ECGLAB_HOME", shared_home)
    return shared_home


@pytest.fixture(scope="module")
def source_runs(deepfake_spec, tmp_path_factory, shared_home) -> tuple[str, dict[str, str]]:
    """Four single-target regression runs (HR, PR, QRS, QT) on synthetic DeepFake-layout data."""
    runs_dir = str(tmp_path_factory.mktemp("transfer_runs"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECGLAB_HOME", shared_home)
        torch.set_num_threads(1)
        ids = {
            t: run_training(tiny_config(deepfake_spec, targets=(t,), epochs=1), runs_dir=runs_dir)["id"]
            for t in TARGET_KEYS
        }
        ids["all"] = run_training(
            tiny_config(deepfake_spec, targets=TARGET_KEYS, epochs=1), runs_dir=runs_dir
        )["id"]
    return runs_dir, ids


@pytest.mark.parametrize("approach", ["combined", "qrs"])
@pytest.mark.parametrize("strategy", ["linear_probe", "gradual_unfreeze", "discriminative"])
def test_transfer_end_to_end(approach, strategy, source_runs, ptbxl_spec, home):
    runs_dir, ids = source_runs
    store = RunStore(runs_dir)
    sources = [ids[t] for t in TARGET_KEYS] if approach == "combined" else [ids["hr"], ids["qrs"]]
    epochs = 3
    config = tiny_config(
        ptbxl_spec,
        task="classification",
        epochs=epochs,
        transfer={"sources": sources, "approach": approach, "strategy": strategy},
    )
    torch.manual_seed(config.seed)  # as the trainer does before building the model
    initial, strat = prepare(config, len(config.leads), 5, transfer_sources(config, store))
    start = snapshot(initial)
    used = sources if approach == "combined" else [ids["qrs"]]
    backbones = initial.backbone.members if approach == "combined" else [initial.backbone]
    assert len(backbones) == len(used)
    for backbone, run_id in zip(backbones, used):  # the pretrained weights were loaded, BN statistics too
        weights = read_checkpoint(store.run_dir(run_id) / "best.safetensors")[0]
        for key, value in backbone.state_dict().items():
            assert torch.equal(value, weights[f"backbone.{key}"]), key

    summary = run_training(config, runs_dir=runs_dir)
    assert summary["status"] == "done" and summary["epochs_run"] == epochs
    final, meta = read_checkpoint(store.run_dir(summary["id"]) / "last.safetensors")
    assert set(final) == set(start)
    assert meta["model"]["name"] == ("concat" if approach == "combined" else "cnn")
    rebuilt, _ = load_checkpoint(store.run_dir(summary["id"]) / "last.safetensors")  # self-describing
    assert all(torch.equal(v, final[k]) for k, v in rebuilt.state_dict().items())
    trained = {g for e in range(epochs) for g in strat.trainable_groups(initial, e)}
    expected = {
        "linear_probe": {"head"},
        "discriminative": {n for n, _ in initial.layer_groups()},
        "gradual_unfreeze": {"head", "block3", "block2"},
    }[strategy]
    assert trained == expected
    params = param_keys(initial)
    for group, keys in group_keys(initial).items():
        for key in keys:
            if group in trained:
                assert key not in params or changed(start, final, key), f"{group}: {key} did not train"
            else:
                assert not changed(start, final, key), f"frozen {group}: {key} changed"  # BN buffers included


def test_sources_must_fit_the_approach_and_the_target_inputs(source_runs, ptbxl_spec, home):
    runs_dir, ids = source_runs
    store = RunStore(runs_dir)

    def config(sources, approach="combined", **kw):
        transfer = {"sources": sources, "approach": approach, "strategy": "linear_probe"}
        return tiny_config(ptbxl_spec, task="classification", transfer=transfer, **kw)

    def prepare_for(cfg):
        return prepare(cfg, 8, 5, transfer_sources(cfg, store))

    torch.manual_seed(0)
    model, _ = prepare_for(config([ids["all"]]))  # one 4-target run: its architecture, a new head
    assert model.config["name"] == "cnn" and model.config["n_outputs"] == 5
    weights = read_checkpoint(store.run_dir(ids["all"]) / "best.safetensors")[0]
    assert all(torch.equal(v, weights[f"backbone.{k}"]) for k, v in model.backbone.state_dict().items())
    with pytest.raises(ValueError, match=r"covering .* missing \['pr', 'qt'\]"):
        prepare_for(config([ids["hr"], ids["qrs"]]))
    with pytest.raises(ValueError, match="approach 'qrs' needs a source run that predicts qrs"):
        prepare_for(config([ids["hr"]], approach="qrs"))
    with pytest.raises(ValueError, match="fs: source 100.0 vs target 50.0"):
        prepare_for(config([ids["qrs"]], approach="qrs", fs=50.0))
    with pytest.raises(ValueError, match="'no-such-run' is not a run"):
        prepare_for(config(["no-such-run"]))


def test_leakage_assertion_fires_when_pretraining_and_evaluation_share_ptbxl_records(
    ptbxl_spec, tmp_path, home
):
    root = ptbxl_spec.split(":", 1)[1]
    truth = pd.read_csv(f"{root}/{PTBXL_TRUTH_CSV}")
    plus = make_ptbxl_plus_dir(tmp_path / "plus", truth["ecg_id"], intervals=truth)
    runs_dir = tmp_path / "runs"
    source = run_training(
        tiny_config(f"{ptbxl_spec};plus_dir={plus}", targets=("qrs",), subset="A", epochs=1),
        runs_dir=runs_dir,
    )
    transfer = {"sources": [source["id"]], "approach": "qrs", "strategy": "linear_probe"}
    on_a = tiny_config(ptbxl_spec, task="classification", subset="A", epochs=1, transfer=transfer)
    with pytest.raises(
        LeakageError, match=r"ptbxl record\(s\) of source run .* \(train split\) are in the target"
    ):
        run_training(on_a, runs_dir=runs_dir)
    failed = [r for r in RunStore(runs_dir).list_runs().itertuples() if r.status == "failed"]
    assert len(failed) == 1
    on_b = tiny_config(ptbxl_spec, task="classification", subset="B", epochs=1, transfer=transfer)
    model, _ = prepare(
        on_b, len(on_b.leads), 5, transfer_sources(on_b, RunStore(runs_dir))
    )  # the other half: no overlap
    assert model.config["n_outputs"] == 5


def test_leakage_by_patient_and_by_waveform_across_source_kinds():
    source = {
        "data": "ptbxl:/x",
        "kind": "ptbxl",
        "run_id": "run-A",
        "train": ["1"],
        "val": [],
        "test": [],
        "patients": {"train": ["1000"], "val": [], "test": []},
    }
    target = {
        "data": "ptbxl:/x",
        "kind": "ptbxl",
        "train": ["5"],
        "val": [],
        "test": ["2"],
        "patients": {"train": ["2000"], "val": [], "test": ["1000"]},  # patient 1000's second record
    }
    with pytest.raises(
        LeakageError, match=r"1 ptbxl patient\(s\) of source run run-A \(train split\) .* '1000'"
    ):
        assert_no_leakage(source, target)
    unknown = {**target, "patients": {"train": [""], "val": [], "test": [""]}}
    assert_no_leakage(source, unknown)  # no patient ids: nothing to compare, no false alarm
    # the same waveform reached as wfdb:DIR on one side and ptbxl:DIR on the other
    from ecgcore.train.leakage import signal_fingerprints

    rng = np.random.default_rng(0)
    signals = rng.normal(size=(3, 2, 50)).astype(np.float32)
    again = signals + 1e-5  # float noise of a second preprocessing pass
    assert signal_fingerprints(signals, np.arange(3)) == signal_fingerprints(again, np.arange(3))
    assert len(set(signal_fingerprints(signals, np.arange(3)))) == 3
    wfdb = {
        "data": "wfdb:/y",
        "kind": "wfdb",
        "run_id": "run-B",
        "train": ["HR00001"],
        "val": [],
        "test": [],
        "signal_fingerprints": {"train": signal_fingerprints(signals, [0]), "val": [], "test": []},
    }
    ptbxl = {
        **target,
        "patients": None,
        "signal_fingerprints": {"train": [], "val": [], "test": signal_fingerprints(again, [0])},
    }
    with pytest.raises(LeakageError, match=r"identical waveform\(s\) of source run run-B \(train split\)"):
        assert_no_leakage(wfdb, ptbxl)


def test_the_random_init_control_has_the_transferred_architecture_but_none_of_its_weights(
    source_runs, ptbxl_spec, home
):
    runs_dir, ids = source_runs
    store = RunStore(runs_dir)
    transfer = {
        "sources": [ids[t] for t in TARGET_KEYS],
        "approach": "combined",
        "strategy": "discriminative",
    }
    pretrained_config = tiny_config(ptbxl_spec, task="classification", transfer=transfer)
    control_config = tiny_config(ptbxl_spec, task="classification", transfer={**transfer, "init": "random"})
    pretrained, _ = prepare(pretrained_config, 8, 5, transfer_sources(pretrained_config, store))
    control, _ = prepare(control_config, 8, 5, transfer_sources(control_config, store))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(control) == count(pretrained) and set(control.state_dict()) == set(pretrained.state_dict())
    weights = read_checkpoint(store.run_dir(ids["hr"]) / "best.safetensors")[0]
    first = next(k for k in control.backbone.members[0].state_dict() if k.endswith("weight"))
    assert torch.equal(pretrained.backbone.members[0].state_dict()[first], weights[f"backbone.{first}"])
    assert not torch.equal(control.backbone.members[0].state_dict()[first], weights[f"backbone.{first}"])
    with pytest.raises(ValueError, match=r"TrainConfig.transfer.init='imagenet'; expected one of"):
        tiny_config(ptbxl_spec, task="classification", transfer={**transfer, "init": "imagenet"})


def test_continue_starts_from_every_weight_of_a_run_on_the_same_data(source_runs, deepfake_spec, home):
    """Approach 'continue' (a study's warm start): this run's model with all of the source's weights."""
    runs_dir, ids = source_runs
    store = RunStore(runs_dir)
    transfer = {
        "sources": [ids["qrs"]],
        "approach": "continue",
        "strategy": "discriminative",
        "lr_factor": 1.0,
    }
    config = tiny_config(deepfake_spec, targets=("qrs",), epochs=1, transfer=transfer)
    model, strategy = prepare(config, 8, 1, transfer_sources(config, store))
    weights = read_checkpoint(store.run_dir(ids["qrs"]) / "best.safetensors")[0]
    assert set(model.state_dict()) == set(weights)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # head included
    assert strategy.trainable_groups(model, 0) == [n for n, _ in model.layer_groups()]
    other = tiny_config(
        deepfake_spec,
        targets=("qrs",),
        transfer=transfer,
        model_kwargs={"widths": [8, 8, 8], "head_hidden": 32},
    )
    with pytest.raises(ValueError, match=r"weights do not fit cnn with \{'widths': \[8, 8, 8\]"):
        prepare(other, 8, 1, transfer_sources(other, store))
    two_targets = tiny_config(deepfake_spec, targets=("qrs", "qt"), transfer=transfer)
    with pytest.raises(ValueError, match="weights do not fit"):
        prepare(two_targets, 8, 2, transfer_sources(two_targets, store))
    summary = run_training(config, runs_dir=runs_dir)
    assert summary["status"] == "done" and summary["epochs_run"] == 1
