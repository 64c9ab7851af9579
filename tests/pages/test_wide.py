"""The reproduction table made wide: models as rows, targets as columns, best in bold, † where the baseline wins."""

from __future__ import annotations

import math

import pandas as pd

from dashboard.wide import NOT_BEATEN, splits_of, to_markdown, wide

NAN = math.nan


def long_table() -> pd.DataFrame:
    rows = []
    for model, hr, pr in (("cnn", 5.0, 18.4), ("inception1d", 3.0, 12.0)):
        for target, value, base in (("hr", hr, 8.0), ("pr", pr, 14.4)):
            rows.append(
                {
                    "model": model,
                    "target": target,
                    "metric": "mae",
                    "ours_val": value,
                    "ours_test": value + 0.5,
                    "ours_test_low": value,
                    "ours_test_high": value + 1.0,
                    "baseline_val": base,
                    "baseline_test": base,
                    "published_val": NAN if model == "cnn" else 4.1,
                    "published_test": NAN,
                    "clears_baseline": value + 0.5 < base,
                    "status": "done",
                    "run_id": f"r-{model}",
                }
            )
    return pd.DataFrame(rows)


def test_models_are_rows_and_targets_columns_with_best_bold_and_the_baseline_flag():
    table = long_table()
    assert splits_of(table) == ["val", "test"]
    frame, flagged = wide(table, "test")
    assert len(frame) == 2 and frame["Model"].iloc[0] != "cnn"  # one row per model, named as the paper does
    assert list(frame.columns[1:4]) == [
        "HR (bpm) ours",
        "HR (bpm) published",
        "HR (bpm) baseline",
    ]
    assert frame["HR (bpm) ours"].tolist() == ["5.5 ± 0.5", "**3.5 ± 0.5**"]  # lower MAE is better
    assert frame["PR (ms) ours"].tolist() == [f"18.9 ± 0.5 {NOT_BEATEN}", "**12.5 ± 0.5**"]  # 18.9 > 14.4
    assert flagged == 1
    assert frame["HR (bpm) published"].tolist() == ["—", "—"]  # no number invented
    val, flagged_val = wide(table, "val")
    assert val["HR (bpm) published"].tolist() == ["—", "4.1"] and "±" not in " ".join(val["HR (bpm) ours"])
    assert val["PR (ms) ours"].tolist() == [f"18.4 {NOT_BEATEN}", "**12.0**"] and flagged_val == 1


def test_classification_is_better_high_and_the_markdown_escapes_pipes():
    table = pd.DataFrame(
        [
            {"model": m, "metric": "auc", "ours_val": v, "baseline_val": 0.5, "published_val": NAN}
            for m, v in (("a|b", 0.91), ("c", 0.45))
        ]
    )
    frame, flagged = wide(table, "val")
    assert frame["macro AUC ours"].tolist() == ["**0.910**", f"0.450 {NOT_BEATEN}"] and flagged == 1
    assert "a\\|b" in to_markdown(frame)


def test_presets_are_described_in_plain_words():
    from dashboard.wide import preset_words
    from ecgcore.experiments import PRESETS

    words = preset_words(PRESETS["quick"])
    assert "--data" not in words and "{" not in words and "'" not in words  # no flags, no raw dicts
    assert (
        f"{PRESETS['quick'].epochs} epochs" in words and "100 Hz" in words and "smaller versions of" in words
    )
