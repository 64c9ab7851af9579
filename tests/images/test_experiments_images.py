"""reproduce vision / representations / representations-deepfake: definitions, data checks, tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgcore.experiments import DataRequired, DataSources, build_table, check_data, get_experiment, get_preset
from ecgcore.experiments.vision import VISION_CONVNEXT_B_F1, VISION_METRICS, VISION_TEST
from tests.images.test_chapman import make_chapman


def test_vision_refuses_without_chapman_and_names_where_to_get_it(tmp_path):
    with pytest.raises(DataRequired, match=r"figshare.*--data chapman:DIR"):
        check_data("vision", DataSources())
    with pytest.raises(DataRequired, match="Diagnostics"):
        check_data("vision", DataSources(chapman=tmp_path))


def test_vision_plan_and_table_carry_the_published_test_numbers(tmp_path):
    root = tmp_path / "chapman"
    root.mkdir()
    make_chapman(root)
    sources = DataSources(chapman=root)
    check_data("vision", sources)
    specs = get_experiment("vision").build(get_preset("quick"), sources)
    assert [s.row["representation"] for s in specs].count("chart2") == 1 and len(specs) == 9
    assert {s.config.task for s in specs} == {"classification"} and {len(s.config.leads) for s in specs} == {
        12
    }
    paper = get_experiment("vision").build(get_preset("paper"), sources)
    assert all(s.config.model_kwargs.get("pretrained") == "imagenet" for s in paper)
    table = build_table("vision", "quick", sources, runs_dir=tmp_path / "runs")
    row = table[(table["model"] == "resnet18") & (table["metric"] == "auc")].iloc[0]
    assert row["published_test"] == VISION_TEST["resnet18"]["auc"] and math.isnan(row["ours_test"])
    sensitivity = table[(table["model"] == "resnet18") & (table["metric"] == "sensitivity")].iloc[0]
    assert sensitivity["published_test"] == VISION_TEST["resnet18"]["recall"]  # the study's macro recall
    assert table[table["metric"] == "specificity"]["published_test"].isna().all()  # the study gave none
    chart2 = table[(table["representation"] == "chart2")].set_index("metric")
    assert chart2.loc["f1", "published_test"] == VISION_CONVNEXT_B_F1["6x2+II"]["macro"]
    assert chart2.loc["f1:GSVT", "published_test"] == VISION_CONVNEXT_B_F1["6x2+II"]["GSVT"]
    assert chart2.drop(index=[m for m in chart2.index if m.startswith("f1")])["published_test"].isna().all()


def test_the_vision_table_shows_the_rates_with_intervals_beside_the_class_prior_baseline(tmp_path):
    """A finished run (summary from the trainer's evaluate, saved predictions) of one vision spec."""
    from sklearn.metrics import f1_score, recall_score

    from ecgcore.experiments.planning import PlannedRun
    from ecgcore.experiments.tables import to_markdown
    from ecgcore.runs.store import RunStore
    from ecgcore.train.metrics import evaluate

    root = tmp_path / "chapman"
    root.mkdir()
    make_chapman(root)
    sources = DataSources(chapman=root)
    spec = next(
        s
        for s in get_experiment("vision").build(get_preset("quick"), sources)
        if s.row["model"] == "resnet18"
    )
    rng = np.random.default_rng(0)
    classes = ["AFIB", "GSVT", "SB", "SR"]
    train = rng.choice(4, 800, p=[0.2, 0.2, 0.35, 0.25])
    splits = {}
    for split in ("val", "test"):
        truth = rng.choice(4, 300, p=[0.2, 0.2, 0.35, 0.25])
        probs = rng.dirichlet(np.ones(4), len(truth))
        probs[np.arange(len(truth)), truth] += 0.8  # a good model, wrong now and then
        splits[split] = (truth, probs / probs.sum(1, keepdims=True))
    results = {
        split: evaluate("classification", t, p, train, names=classes) for split, (t, p) in splits.items()
    }
    store = RunStore(tmp_path / "runs")
    run_id = store.create_run(spec.config)
    summary = {
        "status": "done",
        "metrics": {split: r["model"] for split, r in results.items()},
        "baseline": {split: r["baseline"] for split, r in results.items()},
    }
    store.update(run_id, status="done", summary=summary)
    np.savez(
        store.run_dir(run_id) / "predictions.npz",
        names=np.array(classes),
        train_true=train,
        multi_label=np.array(False),
        **{f"{split}_{k}": v for split, (t, p) in splits.items() for k, v in (("true", t), ("pred", p))},
    )
    planned = [PlannedRun(spec, "done", run_id, spec.config)]
    table = build_table("vision", "quick", sources, runs_dir=tmp_path / "runs", planned=planned)
    assert list(table["metric"]) == list(VISION_METRICS)
    rows = table.set_index("metric")
    truth, probs = splits["test"]
    pred = probs.argmax(1)
    assert rows.loc["sensitivity", "ours_test"] == pytest.approx(recall_score(truth, pred, average="macro"))
    assert rows.loc["f1:SB", "ours_test"] == pytest.approx(f1_score(truth, pred, average=None)[2])
    assert rows.loc["sensitivity", "baseline_test"] == pytest.approx(0.25)  # always the commonest class
    assert rows.loc["f1:AFIB", "baseline_test"] == 0.0  # never predicted
    for metric in VISION_METRICS:
        row = rows.loc[metric]
        assert row["ours_test_low"] <= row["ours_test"] <= row["ours_test_high"], metric
        assert bool(row["clears_baseline"]), metric  # a good model against the class prior
    assert (
        rows.loc["specificity", "baseline_test_low"] == rows.loc["specificity", "baseline_test_high"] == 0.75
    )
    text = to_markdown(table)
    assert "| F1 (macro) |" in text and "| F1 GSVT |" in text and "| specificity (macro) |" in text


def test_representation_experiments_cover_every_representation(tmp_path):
    specs = get_experiment("representations-deepfake").build(get_preset("tiny"), DataSources())
    reps = [s.config.representation for s in specs]
    assert reps == ["signal", "signal", "chart", "gaf", "mtf", "rp", "gaf+mtf"]
    fusion = specs[-1].config.model_kwargs
    assert [b["channels"] for b in fusion["branches"]] == [3, 3]
    with pytest.raises(DataRequired):
        check_data("representations", DataSources())


@pytest.mark.slow
def test_representations_deepfake_tiny_runs_end_to_end(tmp_path):
    from ecgcore.experiments import reproduce

    result = reproduce(
        "representations-deepfake", "tiny", DataSources(), runs_dir=tmp_path / "runs", out_dir=tmp_path
    )
    assert not result.failed and len(result.trained) == 7
    assert result.table["ours_val"].notna().all()
