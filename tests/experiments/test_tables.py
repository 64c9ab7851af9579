"""Table rendering: missing values stay missing, gaps are computed from the table's own numbers."""

from __future__ import annotations

import math

import pandas as pd

from ecgcore.experiments.published import TABLE1_MAE
from ecgcore.experiments.tables import VALUE_COLUMNS, gaps_vs_scratch, run_values, to_markdown


def _row(**kw):
    base = {c: math.nan for c in VALUE_COLUMNS}
    base.update(kw)
    return base


def test_run_values_reads_targets_and_baselines_and_leaves_absent_splits_missing():
    model = {"per_target": {"hr": {"mae": 3.0}, "qt": {"mae": 12.0}}, "mae": 7.5}
    baseline = {"per_target": {"hr": {"mae": 6.0}, "qt": {"mae": 20.0}}}
    values = run_values({"val": (model, baseline)}, "regression", ["hr", "qt"])
    assert [(v["target"], v["ours_val"], v["baseline_val"]) for v in values] == [
        ("hr", 3.0, 6.0),
        ("qt", 12.0, 20.0),
    ]
    assert all(math.isnan(v["ours_train"]) for v in values)  # no train split given: missing, not zero
    cls = run_values(
        {"train": ({"accuracy": 0.5, "auc": None}, {"accuracy": 0.3, "auc": 0.5})}, "classification"
    )
    assert cls[0]["ours_train"] == 0.5 and math.isnan(cls[1]["ours_train"])  # an undefined AUC stays missing


def test_markdown_marks_missing_values_and_labels_models_and_targets():
    table = pd.DataFrame(
        [_row(model="inception1d", target="qt", metric="mae", ours_val=4.25, published_val=4.13)]
    )
    text = to_markdown(table)
    assert "| 1D-CNN | QT MAE (ms) | — | 4.250 | — | — | — | 4.130 |" in text


def test_gaps_compare_each_transferred_row_with_scratch_at_the_same_fraction():
    rows = [
        _row(fraction=0.1, setting="scratch", approach="-", strategy="-", metric="auc", ours_val=0.60),
        _row(
            fraction=0.1,
            setting="deepfake",
            approach="combined",
            strategy="discriminative",
            metric="auc",
            ours_val=0.68,
        ),
        _row(fraction=1.0, setting="scratch", approach="-", strategy="-", metric="auc", ours_val=0.80),
        _row(
            fraction=1.0,
            setting="deepfake",
            approach="combined",
            strategy="discriminative",
            metric="auc",
            ours_val=0.79,
        ),
        _row(
            fraction=1.0,
            setting="deepfake",
            approach="combined",
            strategy="discriminative",
            metric="accuracy",
            ours_val=0.5,
        ),
    ]
    gaps = gaps_vs_scratch(pd.DataFrame(rows))
    assert len(gaps) == 2
    assert gaps[0].startswith("10% of the training split") and "(+0.080)" in gaps[0]
    assert "(-0.010)" in gaps[1]


def test_what_differs_between_tables_comes_from_the_experiment_definition(tmp_path):
    import dataclasses

    from ecgcore.experiments import (
        DataSources,
        PlannedRun,
        build_table,
        get_experiment,
        get_preset,
        table_notes,
    )

    preset, sources = get_preset("tiny"), DataSources()
    table1 = get_experiment("table1")
    planned = [
        PlannedRun(s, "missing") for s in table1.build(dataclasses.replace(preset, per_target=True), sources)
    ]
    table = build_table(table1, preset, sources, tmp_path, planned)
    # order_by=("model", "target"): per-target runs come in TARGET_KEYS order, the table in the study's
    assert table["target"].tolist()[:4] == ["hr", "qrs", "pr", "qt"]
    assert table["model"].tolist()[:5] == ["rnn"] * 4 + ["lstm"]
    assert table.loc[0, "published_val"] == TABLE1_MAE["rnn"]["hr"]["val"]
    unordered = build_table(
        dataclasses.replace(table1, order_by=(), published=None), preset, sources, tmp_path, planned
    )
    assert (
        unordered["target"].tolist()[:4] == ["hr", "pr", "qrs", "qt"]
        and unordered["published_val"].isna().all()
    )
    with_test = build_table(
        dataclasses.replace(table1, splits=("val", "test")), preset, sources, tmp_path, planned
    )
    assert [c for c in with_test.columns if c.endswith(("_val", "_test", "_train"))] == [
        "ours_val",
        "ours_test",
        "baseline_val",
        "baseline_test",
        "published_val",
        "published_test",
    ]
    assert "| Ours val | Ours test |" in to_markdown(with_test)
    notes = table_notes(
        dataclasses.replace(table1, notes=(lambda p, s: f"own note {p.name}",)), preset, sources
    )
    assert "own note tiny" in notes and not any("DeepFake ground truth" in n for n in notes)
    assert any("DeepFake ground truth" in n for n in table_notes(table1, preset, sources))
