"""Result tables: our numbers, the trivial baseline and the published numbers side by side.

A table is built in long form (:func:`build_table`), one row per (table row, target, metric), with
a column ``<who>_<split>`` for each of ``ours``, ``baseline``, ``published`` and each split the
experiment shows (``Experiment.splits``; train and validation by default), and the run id it came
from. That long frame is what the CSV and JSON files hold; :func:`to_markdown` renders it for
people. A value that does not exist (a run not trained yet, a number the study did not publish)
is missing (NaN / null / "—"), never filled in. What differs between tables (published numbers,
notes, row order, splits) is read from the :class:`Experiment`, never from its name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ecgcore.experiments.definitions import (
    TARGET_ORDER,
    DataSources,
    Experiment,
    Preset,
    get_experiment,
    get_preset,
)
from ecgcore.experiments.planning import PlannedRun, plan
from ecgcore.experiments.published import MODEL_LABELS, SEED_STUDY
from ecgcore.paths import atomic_write_json, atomic_write_text, data_home
from ecgcore.runs.store import RunStore
from ecgcore.vocab import TARGETS_BY_KEY

#: Who a value column is about, in column order.
WHO: tuple[str, ...] = ("ours", "baseline", "published")
SPLIT_LABELS: dict[str, str] = {"train": "train", "val": "val", "test": "test"}
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "auc")


def value_columns(splits: Sequence[str] = ("train", "val")) -> tuple[str, ...]:
    """``ours_<split>, ..., baseline_<split>, ..., published_<split>, ...`` for ``splits``."""
    return tuple(f"{who}_{split}" for who in WHO for split in splits)


#: The value columns of a train / validation table.
VALUE_COLUMNS: tuple[str, ...] = value_columns()


def table_splits(table: pd.DataFrame) -> tuple[str, ...]:
    """The splits a long table has value columns for, in column order."""
    return tuple(c.removeprefix("ours_") for c in table.columns if c.startswith("ours_"))


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


def run_values(
    splits: Mapping[str, tuple[dict, dict]],
    task: str,
    targets: Iterable[str] = (),
    shown: Sequence[str] = ("train", "val"),
) -> list[dict]:
    """One dict per (target, metric) with ``ours_<split>`` and ``baseline_<split>`` for each ``shown`` split.

    ``splits`` maps a split to its (model metrics, baseline metrics), as :func:`summary_splits` gives.
    """
    keys = (
        [(t, "mae") for t in targets] if task == "regression" else [(None, m) for m in CLASSIFICATION_METRICS]
    )
    out = []
    for target, metric in keys:
        values: dict = {"target": target, "metric": metric}
        for split in shown:
            model, base = splits.get(split, ({}, {}))
            if target is not None:
                model = (model.get("per_target") or {}).get(target, {})
                base = (base.get("per_target") or {}).get(target, {})
            values[f"ours_{split}"] = _num(model.get(metric))
            values[f"baseline_{split}"] = _num(base.get(metric))
        out.append(values)
    return out


def published_values(experiment: Experiment, row: Mapping, target: str | None, metric: str) -> dict:
    """``published_<split>`` for each split of the table (NaN where the study gives none)."""
    out = {}
    for split in experiment.splits:
        value = experiment.published(row, target, metric, split) if experiment.published else None
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
    if metric.startswith("auc:"):  # one class's AUC
        return f"AUC {metric[4:]}"
    return {"auc": "AUC (macro)", "accuracy": "accuracy"}.get(metric, metric)


def interval_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """The ``ci_low_<split>`` / ``ci_high_<split>`` columns a table has (intervals of ``ours_<split>``)."""
    return tuple(c for c in table.columns if c.startswith(("ci_low_", "ci_high_")))


def _ours(r: pd.Series, column: str) -> str:
    """``ours_<split>``, with its interval when the table has one (``0.812 [0.780, 0.841]``)."""
    split = column.removeprefix("ours_")
    low, high = r.get(f"ci_low_{split}", math.nan), r.get(f"ci_high_{split}", math.nan)
    if column.startswith("ours_") and not (math.isnan(low) or math.isnan(high)):
        return f"{_fmt(r[column])} [{_fmt(low)}, {_fmt(high)}]"
    return _fmt(r[column])


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table: row labels, metric, then ours / baseline / published for each split it has."""
    columns = value_columns(table_splits(table))
    hidden = ("target", "metric", *columns, *interval_columns(table), "status", "run_id")
    fields = [c for c in table.columns if c not in hidden]
    header = [f.capitalize() for f in fields] + ["Metric"]
    header += [f"{c.split('_')[0].capitalize()} {SPLIT_LABELS.get(c.split('_', 1)[1], c)}" for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [_label(f, r[f]) for f in fields] + [_metric_label(r.get("target"), r["metric"])]
        cells += [_ours(r, c) for c in columns]
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


def _resolve(experiment: Experiment | str) -> Experiment:
    return get_experiment(experiment) if isinstance(experiment, str) else experiment


def _ordered(table: pd.DataFrame, order_by: Sequence[str]) -> pd.DataFrame:
    """``table`` sorted stably by ``order_by``: targets in TARGET_ORDER, other fields by first appearance."""
    if not order_by or table.empty:
        return table
    keys = []
    for field in order_by:
        if field == "target":
            keys.append(table[field].map(TARGET_ORDER.index))
        else:
            first = {v: i for i, v in enumerate(dict.fromkeys(table[field]))}
            keys.append(table[field].map(first))
    order = pd.DataFrame({i: k.to_numpy() for i, k in enumerate(keys)})
    positions = order.sort_values(list(order.columns), kind="stable").index
    return table.iloc[positions].reset_index(drop=True)


def build_table(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    runs_dir: Path | None = None,
    planned: Sequence[PlannedRun] | None = None,
) -> pd.DataFrame:
    """The experiment's long-form table from the store: one row per (table row, target, metric)."""
    experiment = _resolve(experiment)
    planned = planned if planned is not None else plan(experiment, preset, sources, runs_dir)
    store = RunStore(runs_dir)
    rows = []
    for p in planned:
        if not p.spec.in_table:
            continue
        if experiment.rows is not None:  # the experiment says what its rows are
            summary = store.get_run(p.run_id)["summary"] if p.status == "done" else None
            for values in experiment.rows(p.spec, summary, p.run_id if summary else None, runs_dir):
                row = {f: p.spec.row.get(f) for f in experiment.row_fields}
                rows.append({**row, **values, "status": p.status, "run_id": p.run_id})
            continue
        splits = summary_splits(store.get_run(p.run_id)["summary"]) if p.status == "done" else {}
        targets = [t for t in TARGET_ORDER if t in p.spec.config.targets]
        for values in run_values(splits, experiment.task, targets, experiment.splits):
            row = {f: p.spec.row.get(f) for f in experiment.row_fields}
            row.update(values)
            row.update(published_values(experiment, p.spec.row, values["target"], values["metric"]))
            row.update({"status": p.status, "run_id": p.run_id})
            rows.append(row)
    target = ["target"] if experiment.task == "regression" else []
    intervals = [f"ci_{end}_{s}" for s in experiment.splits for end in ("low", "high")]
    columns = [
        *experiment.row_fields,
        *target,
        "metric",
        *value_columns(experiment.splits),
        *[c for c in intervals if any(c in r for r in rows)],
        "status",
        "run_id",
    ]
    return _ordered(pd.DataFrame(rows, columns=columns), experiment.order_by)


def table_notes(experiment: Experiment | str, preset: Preset | str, sources: DataSources) -> list[str]:
    """What a reader must know to read the table honestly: the notes of every table, then its own."""
    experiment, preset = _resolve(experiment), get_preset(preset)
    shown = ", ".join({"val": "validation"}.get(s, s) for s in experiment.splits)
    notes = (
        []
        if experiment.study != "seed"
        else [
            "Baseline: the trivial predictor evaluated on the same rows (regression: the training mean; "
            "classification: the training class prior). A model near its baseline learned little.",
            f"Published: {SEED_STUDY.text()}. {SEED_STUDY.note}",
            "Train columns: ours are the best checkpoint evaluated on the training rows (eval mode); the study's "
            "scripts computed theirs inside the training loop (dropout on, weights changing during the epoch).",
            f"Splits: PTB-XL strat_fold 1-8 train / 9 validation / 10 test (shown here: {shown}); DeepFake "
            "records are assigned to 10 folds by a hash of their id. The seed study used random 70/10/20 record "
            "splits.",
        ]
    )
    notes += [note(preset, sources) for note in experiment.notes]
    if preset.name != "paper":
        notes.append(
            f"Preset '{preset.name}' is scaled down (see the settings above): it checks the pipeline and "
            "the direction of the results; do not read its numbers as a reproduction of the published values."
        )
    return notes


def header(
    experiment: Experiment, preset: Preset, sources: DataSources, planned: Sequence[PlannedRun]
) -> dict:
    """Title, settings and notes that go above the table and into its JSON."""
    datas = sorted({p.spec.config.data for p in planned})
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "description": experiment.description,
        "settings": preset.settings(),
        "settings_text": preset.describe() + "\n\nData: " + "; ".join(datas),
        "data": datas,
        "runs": {p.spec.name: {"status": p.status, "run_id": p.run_id} for p in planned},
        "notes": table_notes(experiment, preset, sources),
        "citation": dict(experiment.citation)
        if experiment.citation
        else {
            "text": SEED_STUDY.text(),
            "url": SEED_STUDY.url,
            "source": SEED_STUDY.source,
            "note": SEED_STUDY.note,
        },
    }


def default_out_dir(experiment: str, preset: Preset) -> Path:
    """Where ``reproduce`` writes a table's files unless told otherwise."""
    return data_home() / "results" / f"{experiment}-{preset.name}"


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
            "rows": records,
        },
    )
    return paths
