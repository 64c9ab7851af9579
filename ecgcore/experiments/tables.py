"""Result tables: our numbers, the trivial baseline and the published numbers side by side.

A table is built in long form, one row per (table row, target, metric), with the columns
``ours_train, ours_val, baseline_train, baseline_val, published_train, published_val`` and the
run id it came from. That long frame is what the CSV and JSON files hold; :func:`to_markdown`
renders it for people. A value that does not exist (a run not trained yet, a number the study did
not publish) is missing (NaN / null / "—"), never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ecgcore.experiments.published import (
    MODEL_LABELS,
    SEED_STUDY,
    published_classification,
    published_regression,
)
from ecgcore.paths import atomic_write_json, atomic_write_text
from ecgcore.vocab import TARGETS_BY_KEY

SPLITS: tuple[str, ...] = ("train", "val")
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "auc")
VALUE_COLUMNS: tuple[str, ...] = tuple(
    f"{who}_{split}" for who in ("ours", "baseline", "published") for split in SPLITS
)
#: Columns of a table that are not row labels.
_NOT_LABELS: tuple[str, ...] = ("target", "metric", *VALUE_COLUMNS, "status", "run_id")


def summary_splits(summary: Mapping) -> dict[str, tuple[dict, dict]]:
    """``{split: (model metrics, baseline metrics)}`` for the splits a run summary evaluated.

    The trainer stores :func:`ecgcore.train.metrics.evaluate` output as ``summary["metrics"][split]``
    (the model) and ``summary["baseline"][split]`` (the trivial predictor on the same rows).
    """
    metrics, baseline = summary.get("metrics") or {}, summary.get("baseline") or {}
    return {
        split: (metrics[split], baseline.get(split) or {})
        for split in metrics
        if isinstance(metrics[split], dict)
    }


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def run_values(splits: Mapping[str, tuple[dict, dict]], task: str, targets: Iterable[str] = ()) -> list[dict]:
    """One dict per (target, metric) with ``ours_<split>`` and ``baseline_<split>``.

    ``splits`` maps a split to its (model metrics, baseline metrics), as :func:`summary_splits` gives.
    """
    keys = (
        [(t, "mae") for t in targets] if task == "regression" else [(None, m) for m in CLASSIFICATION_METRICS]
    )
    out = []
    for target, metric in keys:
        values: dict = {"target": target, "metric": metric}
        for split in SPLITS:
            model, base = splits.get(split, ({}, {}))
            if target is not None:
                model = (model.get("per_target") or {}).get(target, {})
                base = (base.get("per_target") or {}).get(target, {})
            values[f"ours_{split}"] = _num(model.get(metric))
            values[f"baseline_{split}"] = _num(base.get(metric))
        out.append(values)
    return out


def published_values(experiment: str, row: Mapping, target: str | None, metric: str) -> dict:
    """``published_train`` / ``published_val`` for a table row (NaN where the study gives none)."""
    model = row.get("model")
    out = {}
    for split in SPLITS:
        value = None
        if experiment == "table1" and model and target:
            value = published_regression(str(model), target, split)
        elif experiment == "table2" and model:
            value = published_classification(str(model), metric, split)
        out[f"published_{split}"] = math.nan if value is None else float(value)
    return out


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _label(field: str, value: object) -> str:
    if field == "model":
        return MODEL_LABELS.get(str(value), str(value))
    if field == "fraction":
        return f"{float(value) * 100:g}%"
    return str(value)


def _metric_label(target: object, metric: str) -> str:
    if isinstance(target, str) and target in TARGETS_BY_KEY:
        t = TARGETS_BY_KEY[target]
        return f"{t.key.upper()} {metric.upper()} ({t.unit})"
    return {"auc": "AUC (macro)", "accuracy": "accuracy"}.get(metric, metric)


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table: row labels, metric, then ours / baseline / published for train and val."""
    fields = [c for c in table.columns if c not in _NOT_LABELS]
    header = [f.capitalize() for f in fields] + [
        "Metric",
        "Ours train",
        "Ours val",
        "Baseline train",
        "Baseline val",
        "Published train",
        "Published val",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [_label(f, r[f]) for f in fields] + [_metric_label(r.get("target"), r["metric"])]
        cells += [_fmt(r[c]) for c in VALUE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gaps_vs_scratch(table: pd.DataFrame, metric: str = "auc") -> list[str]:
    """Validation ``metric`` of each transferred row minus the from-scratch row of the same fraction.

    Only pairs where both runs are finished are listed; the numbers come from ``table`` itself.
    """
    if "setting" not in table.columns:
        return []
    rows = table[table["metric"] == metric]
    fraction = rows["fraction"] if "fraction" in rows.columns else pd.Series(1.0, index=rows.index)
    scratch = {f: v for f, v, s in zip(fraction, rows["ours_val"], rows["setting"]) if s == "scratch"}
    out = []
    for (_, r), f in zip(rows.iterrows(), fraction):
        base = scratch.get(f, math.nan)
        if r["setting"] != "scratch" and not (math.isnan(r["ours_val"]) or math.isnan(base)):
            where = f"{float(f) * 100:g}% of the training split, " if "fraction" in rows.columns else ""
            out.append(
                f"{where}{r['setting']} / {r['approach']} / {r['strategy']}: validation {metric} "
                f"{r['ours_val']:.3f} vs {base:.3f} from scratch ({r['ours_val'] - base:+.3f})"
            )
    return out


def write_outputs(out_dir: Path, name: str, table: pd.DataFrame, header: Mapping) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.csv`` and ``<name>.json`` into ``out_dir`` (atomically).

    ``header`` (title, preset settings, notes) goes at the top of the markdown and into the JSON.
    """
    out_dir = Path(out_dir)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("md", "csv", "json")}
    notes = "\n".join(f"- {n}" for n in header.get("notes", []))
    markdown = f"## {header['title']}\n\n{header['settings_text']}\n\n{to_markdown(table)}\n\n{notes}\n"
    atomic_write_text(paths["md"], markdown)
    atomic_write_text(paths["csv"], table.to_csv(index=False))
    records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    atomic_write_json(
        paths["json"],
        {
            **header,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "citation": {
                "text": SEED_STUDY.text(),
                "url": SEED_STUDY.url,
                "source": SEED_STUDY.source,
                "note": SEED_STUDY.note,
            },
            "rows": records,
        },
    )
    return paths
