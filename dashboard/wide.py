"""The reproduction tables as people read result tables: models as rows, targets as columns.

:func:`ecgcore.experiments.build_table` gives the long form (one row per table row, target and
metric, with ``ours_<split>``, ``baseline_<split>``, ``published_<split>`` and, for the test split,
``ours_test_low`` / ``_high`` and ``clears_baseline``); the CSV keeps that form. Here it becomes one
row per model (or setting) and, per target, ours ± half the 95 % interval | published | baseline, the
best of ours in bold and † where ours does not beat the baseline. Not a page: imported by one.
"""

from __future__ import annotations

import math

import pandas as pd

from ecgcore.experiments.published import MODEL_LABELS
from ecgcore.experiments.tables import metric_label
from ecgcore.vocab import TARGETS_BY_KEY

#: Columns of the long table that are neither row labels nor values.
_NOT_ROW = {"target", "metric", "status", "run_id", "clears_baseline"}
LOWER_IS_BETTER = {"mae", "rmse", "mae_over_sd"}
NOT_BEATEN = "†"


def _value_column(column: str) -> bool:
    return column.split("_", 1)[0] in ("ours", "baseline", "published")


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def column_name(target: object, metric: str) -> str:
    """``HR (bpm)``, ``QT (ms)``, ``macro AUC``: what a target column is headed (the metric, MAE for
    intervals, is said once in the table's caption)."""
    if isinstance(target, str) and target in TARGETS_BY_KEY:
        t = TARGETS_BY_KEY[target]
        return f"{t.key.upper()} ({t.unit})" if metric == "mae" else f"{t.key.upper()} {metric} ({t.unit})"
    return {"auc": "macro AUC"}.get(metric) or metric_label(metric)


def splits_of(table: pd.DataFrame) -> list[str]:
    """The splits the long table has our numbers for, e.g. ``["train", "val", "test"]``."""
    return [
        c[len("ours_") :]
        for c in table.columns
        if c.startswith("ours_") and not c.endswith(("_low", "_high"))
    ]


def beats_baseline(row: pd.Series, split: str, lower: bool) -> bool | None:
    """Whether ours beats the trivial baseline (its interval clear of the baseline's, when the table says)."""
    if split == "test" and "clears_baseline" in row and isinstance(row["clears_baseline"], bool):
        return bool(row["clears_baseline"])
    ours, base = _number(row.get(f"ours_{split}")), _number(row.get(f"baseline_{split}"))
    if math.isnan(ours) or math.isnan(base):
        return None
    return ours < base if lower else ours > base


def wide(table: pd.DataFrame, split: str) -> tuple[pd.DataFrame, int]:
    """The long ``table`` as display strings for ``split``, and how many cells do not beat the baseline.

    Rows: the table's row fields (model, setting, fraction ...); per target / metric three columns,
    ``ours`` (± half the 95 % interval where the table has one; bold where best; † where not beating
    the baseline), ``published`` and ``baseline``. Missing values read "—".
    """
    rows = [c for c in table.columns if c not in _NOT_ROW and not _value_column(c)]
    keys = list(dict.fromkeys(zip(table.get("target", pd.Series([None] * len(table))), table["metric"])))
    out = table[rows].drop_duplicates().reset_index(drop=True) if rows else pd.DataFrame(index=[0])
    flagged = 0
    for target, metric in keys:
        part = table[
            (table["metric"] == metric) & ((table["target"] == target) if "target" in table else True)
        ]
        lower = metric in LOWER_IS_BETTER
        digits = 1 if target in TARGETS_BY_KEY else 3
        ours = part[f"ours_{split}"].map(_number)
        best = ours.min() if lower else ours.max()
        name = column_name(target, metric)
        cells: dict[str, list[str]] = {f"{name} ours": [], f"{name} published": [], f"{name} baseline": []}
        for _, label_row in out.iterrows():
            match = part
            for field in rows:
                match = match[match[field] == label_row[field]]
            if match.empty:
                for column in cells:
                    cells[column].append("—")
                continue
            r = match.iloc[0]
            value = _number(r.get(f"ours_{split}"))
            text = "—" if math.isnan(value) else f"{value:.{digits}f}"
            low, high = _number(r.get(f"ours_{split}_low")), _number(r.get(f"ours_{split}_high"))
            if not math.isnan(value) and not (math.isnan(low) or math.isnan(high)):
                text += f" ± {(high - low) / 2:.{digits}f}"
            if not math.isnan(value) and value == best:
                text = f"**{text}**"
            if beats_baseline(r, split, lower) is False:
                text += f" {NOT_BEATEN}"
                flagged += 1
            cells[f"{name} ours"].append(text)
            for who in ("published", "baseline"):
                v = _number(r.get(f"{who}_{split}"))
                cells[f"{name} {who}"].append("—" if math.isnan(v) else f"{v:.{digits}f}")
        for column, values in cells.items():
            out[column] = values
    for field in rows:
        if field == "model":
            out[field] = out[field].map(lambda m: MODEL_LABELS.get(str(m), str(m)))
        elif field == "fraction":
            out[field] = out[field].map(lambda f: f"{float(f) * 100:g}%")
    out.columns = [c[:1].upper() + c[1:] if c in rows else c for c in out.columns]
    return out, flagged


def to_markdown(frame: pd.DataFrame) -> str:
    """A markdown table of display strings (the pipe character escaped)."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def preset_words(preset) -> str:
    """A preset in plain words for the page (the command line's ``describe()`` names flags and dicts)."""
    size = f"up to {preset.max_records:,} records per run" if preset.max_records else "the full datasets"
    smaller = sorted(m for m, kwargs in preset.model_kwargs.items() if kwargs)
    models = (
        f"smaller versions of {', '.join(MODEL_LABELS.get(m, m) for m in smaller)} than published"
        if smaller
        else "the models at their published size"
    )
    return (
        f"**{preset.name}**: {preset.description.rstrip(':')}. Each run trains {preset.epochs} epochs at "
        f"{preset.fs:g} Hz on {len(preset.leads)} leads, {size}, with {models}. With no DeepFake folder set "
        f"in Settings, {preset.deepfake_n:,} DeepFake ECGs are generated for it once."
    )
