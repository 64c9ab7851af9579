"""Result tables: our numbers, the trivial baseline and the published numbers side by side.

A table is built in long form (:func:`build_table`), one row per (table row, target, metric), with
a column ``<who>_<split>`` for each of ``ours``, ``baseline``, ``published`` and each split the
experiment shows (``Experiment.splits``; train, validation and test by default), and the run id it
came from. The test split is evaluated once, from the checkpoint validation chose; its numbers get a
95 % interval (``<who>_test_low`` / ``_high``): a percentile bootstrap over the test records
(1,000 resamples) and, when the preset trains several seeds, over the seeds too, computed from the
predictions each run saved (``predictions.npz``). ``clears_baseline`` says whether the model's
interval lies entirely on the better side of the baseline's (``False`` is marked † in markdown). That long frame is what the CSV and JSON files hold; :func:`to_markdown` renders it for
people. A value that does not exist (a run not trained yet, a number the study did not publish)
is missing (NaN / null / "—"), never filled in. What differs between tables (published numbers,
notes, row order, splits) is read from the :class:`Experiment`, never from its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ecgcore.experiments.definitions import (
    CLASSIFICATION_METRICS,
    TARGET_ORDER,
    DataSources,
    Experiment,
    Preset,
    base_name,
    get_experiment,
    get_preset,
)
from ecgcore.experiments.planning import PlannedRun, plan
from ecgcore.experiments.published import MODEL_LABELS, SEED_STUDY
from ecgcore.paths import atomic_write_json, atomic_write_text, data_home
from ecgcore.runs.store import RunStore
from ecgcore.train.metrics import (
    RATES,
    accuracy_of,
    baseline_predictions,
    bootstrap_interval,
    clears,
    macro_auc_of,
    mae_of,
    rate_of,
    rate_value,
)
from ecgcore.version import code_version
from ecgcore.vocab import TARGETS_BY_KEY

#: The file a finished run saves its val / test truth and predictions in (written by the trainer).
PREDICTIONS_FILE = "predictions.npz"
#: Marks a model whose test interval does not clear the baseline's.
NOT_CLEAR = "†"

#: Who a value column is about, in column order.
WHO: tuple[str, ...] = ("ours", "baseline", "published")
SPLIT_LABELS: dict[str, str] = {"train": "train", "val": "val", "test": "test"}
#: How a classification metric is named in a table (``"<rate>:<class>"`` adds the class).
METRIC_LABELS: dict[str, str] = {
    "auc": "AUC (macro)",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity (macro)",
    "specificity": "specificity (macro)",
    "precision": "precision (macro)",
    "f1": "F1 (macro)",
}


def is_rate(metric: str) -> bool:
    """Whether ``metric`` is a per-class rate (:data:`ecgcore.train.metrics.RATES`), macro or of one class."""
    return metric.partition(":")[0] in RATES


def metric_label(metric: str) -> str:
    """``"F1 (macro)"``, ``"sensitivity AFIB"``, ``"AUC SEHYP"``: a classification metric as a table names it."""
    base, _, name = metric.partition(":")
    if name:
        return f"{'AUC' if base == 'auc' else 'F1' if base == 'f1' else base} {name}"
    return METRIC_LABELS.get(metric, metric)


def value_columns(splits: Sequence[str] = ("train", "val", "test")) -> tuple[str, ...]:
    """``ours_<split>, ..., baseline_<split>, ..., published_<split>, ...`` for ``splits``."""
    return tuple(f"{who}_{split}" for who in WHO for split in splits)


#: The value columns of a train / validation / test table.
VALUE_COLUMNS: tuple[str, ...] = value_columns()
#: The interval columns of the test split, and whether the model clears its baseline.
INTERVAL_COLUMNS: tuple[str, ...] = (
    "ours_test_low",
    "ours_test_high",
    "baseline_test_low",
    "baseline_test_high",
    "clears_baseline",
)


def table_splits(table: pd.DataFrame) -> tuple[str, ...]:
    """The splits a long table has value columns for, in column order."""
    return tuple(
        c.removeprefix("ours_")
        for c in table.columns
        if c.startswith("ours_") and not c.endswith(("_low", "_high"))
    )


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
    shown: Sequence[str] = ("train", "val", "test"),
    metrics: Sequence[str] = CLASSIFICATION_METRICS,
) -> list[dict]:
    """One dict per (target, metric) with ``ours_<split>`` and ``baseline_<split>`` for each ``shown`` split.

    ``splits`` maps a split to its (model metrics, baseline metrics), as :func:`summary_splits` gives.
    A classification table shows ``metrics``: summary keys (``accuracy``, ``auc``) or rates
    (:func:`is_rate`), which are computed from the summary's per-class counts (every run has them).
    """
    keys = [(t, "mae") for t in targets] if task == "regression" else [(None, m) for m in metrics]
    out = []
    for target, metric in keys:
        values: dict = {"target": target, "metric": metric}
        for split in shown:
            model, base = splits.get(split, ({}, {}))
            if target is not None:
                model = (model.get("per_target") or {}).get(target, {})
                base = (base.get("per_target") or {}).get(target, {})
            values[f"ours_{split}"] = _value(model, metric)
            values[f"baseline_{split}"] = _value(base, metric)
        out.append(values)
    return out


def _value(metrics: Mapping, metric: str) -> float:
    if is_rate(metric):
        per_class = metrics.get("per_class")
        return _num(rate_value(per_class, metric)) if isinstance(per_class, Mapping) else math.nan
    return _num(metrics.get(metric))


def published_values(experiment: Experiment, row: Mapping, target: str | None, metric: str) -> dict:
    """``published_<split>`` for each split of the table (NaN where the study gives none)."""
    out = {}
    for split in experiment.splits:
        value = experiment.published(row, target, metric, split) if experiment.published else None
        out[f"published_{split}"] = math.nan if value is None else float(value)
    return out


def load_predictions(run_dir: Path) -> dict | None:
    """A run's saved truth and predictions (``predictions.npz``), or ``None`` when it has none."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _metric_fn(task: str, names: Sequence[str], target: str | None, metric: str, multi: bool) -> Callable:
    if task == "regression":
        return mae_of(list(names).index(target))
    if is_rate(metric):
        return rate_of(names, multi, metric)
    return macro_auc_of(names, multi) if metric == "auc" else accuracy_of(names, multi)


def bootstrap_test_intervals(
    task: str, target: str | None, metric: str, saved: Sequence[dict], *, n_resamples: int = 1000
) -> dict:
    """95 % bootstrap intervals of the model (over test records and the seeds in ``saved``) and of the baseline.

    ``saved``: :func:`load_predictions` of each seed's run (the same test records). Returns the
    :data:`INTERVAL_COLUMNS` (all ``None`` when a run saved no predictions or the seeds' test
    records differ).
    """
    empty = {c: None for c in INTERVAL_COLUMNS}
    if not saved or any(p is None for p in saved):
        return empty
    truth = saved[0]["test_true"]
    if any(p["test_true"].shape != truth.shape or not np.array_equal(p["test_true"], truth) for p in saved):
        return empty
    names = [str(n) for n in saved[0]["names"]]
    multi = bool(saved[0].get("multi_label", False))
    metric_fn = _metric_fn(task, names, target, metric, multi)
    ours = bootstrap_interval(metric_fn, truth, [p["test_pred"] for p in saved], n_resamples=n_resamples)
    base_pred = baseline_predictions(task, saved[0]["train_true"], len(truth), len(names), multi, "median")
    base = bootstrap_interval(metric_fn, truth, [base_pred], n_resamples=n_resamples)
    higher = task == "classification"
    return {
        "ours_test_low": ours["low"],
        "ours_test_high": ours["high"],
        "baseline_test_low": base["low"],
        "baseline_test_high": base["high"],
        "clears_baseline": clears(ours, base, higher),
    }


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
    return metric_label(metric)


def interval_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """The ``ci_low_<split>`` / ``ci_high_<split>`` columns a table has (intervals of ``ours_<split>``)."""
    return tuple(c for c in table.columns if c.startswith(("ci_low_", "ci_high_")))


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table: row labels, metric, then ours / baseline / published for each split it has."""
    columns = value_columns(table_splits(table))
    hidden = (
        "target",
        "metric",
        *columns,
        *INTERVAL_COLUMNS,
        *interval_columns(table),
        "status",
        "run_id",
        "n_seeds",
        "code_version",
    )
    fields = [c for c in table.columns if c not in hidden]
    header = [f.capitalize() for f in fields] + ["Metric"]
    header += [f"{c.split('_')[0].capitalize()} {SPLIT_LABELS.get(c.split('_', 1)[1], c)}" for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [_label(f, r[f]) for f in fields] + [_metric_label(r.get("target"), r["metric"])]
        cells += [_cell(r, c) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(row: pd.Series, column: str) -> str:
    """A value, with its 95 % interval where the table has one, and † on a model not clearing its baseline."""
    text = _fmt(row[column])
    low, high = row.get(f"{column}_low"), row.get(f"{column}_high")
    if column.startswith("ours_") and not (_present(low) and _present(high)):  # an experiment's own rows
        split = column.removeprefix("ours_")
        low, high = row.get(f"ci_low_{split}"), row.get(f"ci_high_{split}")
    if _present(low) and _present(high):
        text += f" [{low:.3f}, {high:.3f}]"
    if column == "ours_test" and row.get("clears_baseline") is False:
        text += f" {NOT_CLEAR}"
    return text


def _present(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Suffix of the setting of a same-size random-init control row (see the transfer experiment).
CONTROL_SUFFIX = ", random init"


def gaps_vs_scratch(table: pd.DataFrame, metric: str = "auc") -> list[str]:
    """Test ``metric`` of each transferred row minus the from-scratch row of the same fraction, and minus
    its same-size random-init control (same setting and approach) where the table has one.

    Based on the test split (validation chose the checkpoints and stopped training); only pairs
    where both runs are finished are listed, with each side's 95 % interval when the table has them.
    """
    if "setting" not in table.columns or "ours_test" not in table.columns:
        return []
    rows = table[table["metric"] == metric]
    fraction = rows["fraction"] if "fraction" in rows.columns else pd.Series(1.0, index=rows.index)
    scratch = {f: r for f, (_, r) in zip(fraction, rows.iterrows()) if r["setting"] == "scratch"}
    controls = {
        (r["setting"].removesuffix(CONTROL_SUFFIX), r["approach"]): r
        for _, r in rows.iterrows()
        if str(r["setting"]).endswith(CONTROL_SUFFIX)
    }

    def shown(r: pd.Series) -> str:
        return _cell(r, "ours_test").removesuffix(" " + NOT_CLEAR)

    out = []
    for (_, r), f in zip(rows.iterrows(), fraction):
        if (
            r["setting"] == "scratch"
            or str(r["setting"]).endswith(CONTROL_SUFFIX)
            or math.isnan(r["ours_test"])
        ):
            continue
        where = f"{float(f) * 100:g}% of the training split, " if "fraction" in rows.columns else ""
        name = f"{where}{r['setting']} / {r['approach']} / {r['strategy']}: test {metric} {shown(r)}"
        for label, other in (
            ("from scratch", scratch.get(f)),
            ("same-size random init", controls.get((r["setting"], r["approach"]))),
        ):
            if other is not None and not math.isnan(other["ours_test"]):
                out.append(f"{name} vs {shown(other)} {label} ({r['ours_test'] - other['ours_test']:+.3f})")
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


def _row_values(experiment: Experiment, store: RunStore, runs: Sequence[PlannedRun]) -> list[dict]:
    """One dict per (target, metric) of one table row: the mean over its finished seeds' runs, with intervals."""
    spec = runs[0].spec
    done = [p for p in runs if p.status == "done"]
    targets = [t for t in TARGET_ORDER if t in spec.config.targets]
    summaries = [store.get_run(p.run_id)["summary"] for p in done]
    per_seed = [
        run_values(summary_splits(s), experiment.task, targets, experiment.splits, experiment.metrics)
        for s in summaries
    ]
    template = run_values({}, experiment.task, targets, experiment.splits, experiment.metrics)
    saved = [load_predictions(store.run_dir(p.run_id)) for p in done] if "test" in experiment.splits else []
    versions = sorted({((s.get("code_version") or {}).get("label") or "unrecorded") for s in summaries})
    out = []
    for i, values in enumerate(template):
        for column in [c for c in values if c.startswith(("ours_", "baseline_"))]:
            got = [seed[i][column] for seed in per_seed if not math.isnan(seed[i][column])]
            values[column] = float(np.mean(got)) if got and len(got) == len(per_seed) else math.nan
        if "test" in experiment.splits:
            values.update(
                bootstrap_test_intervals(experiment.task, values["target"], values["metric"], saved)
            )
        values["n_seeds"] = len(done)
        values["code_version"] = ", ".join(versions) if done else None
        out.append(values)
    return out


def build_table(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    runs_dir: Path | None = None,
    planned: Sequence[PlannedRun] | None = None,
) -> pd.DataFrame:
    """The experiment's long-form table from the store: one row per (table row, target, metric).

    The runs of a spec trained with several seeds (``name@seed<n>``) make one table row: the mean
    over the seeds, with a bootstrap interval over test records and seeds.
    """
    experiment = _resolve(experiment)
    planned = planned if planned is not None else plan(experiment, preset, sources, runs_dir)
    store = RunStore(runs_dir)
    groups: dict[str, list[PlannedRun]] = {}
    for p in planned:
        if p.spec.in_table:
            groups.setdefault(base_name(p.spec.name), []).append(p)
    rows = []
    for runs in groups.values():
        spec = runs[0].spec
        if experiment.rows is not None:  # the experiment says what its rows are
            for p in runs:
                summary = store.get_run(p.run_id)["summary"] if p.status == "done" else None
                for values in experiment.rows(p.spec, summary, p.run_id if summary else None, runs_dir):
                    row = {f: p.spec.row.get(f) for f in experiment.row_fields}
                    rows.append({**row, **values, "status": p.status, "run_id": p.run_id})
            continue
        status = (
            "done"
            if all(p.status == "done" for p in runs)
            else next(p.status for p in runs if p.status != "done")
        )
        for values in _row_values(experiment, store, runs):
            row = {f: spec.row.get(f) for f in experiment.row_fields}
            row.update(values)
            row.update(published_values(experiment, spec.row, values["target"], values["metric"]))
            row.update({"status": status, "run_id": ",".join(p.run_id for p in runs if p.run_id)})
            rows.append(row)
    target = ["target"] if experiment.task == "regression" else []
    ours = list(INTERVAL_COLUMNS) if "test" in experiment.splits and experiment.rows is None else []
    theirs = [f"ci_{end}_{s}" for s in experiment.splits for end in ("low", "high")]
    intervals = ours + [c for c in theirs if any(c in r for r in rows)]
    columns = [
        *experiment.row_fields,
        *target,
        "metric",
        *value_columns(experiment.splits),
        *intervals,
        *[c for c in ("n_seeds", "code_version") if any(c in r for r in rows)],
        "status",
        "run_id",
    ]
    return _ordered(pd.DataFrame(rows, columns=columns), experiment.order_by)


def table_notes(experiment: Experiment | str, preset: Preset | str, sources: DataSources) -> list[str]:
    """What a reader must know to read the table honestly: the notes of every table, then its own."""
    experiment, preset = _resolve(experiment), get_preset(preset)
    shown = ", ".join({"val": "validation"}.get(s, s) for s in experiment.splits)
    notes = [
        "Baseline: the trivial predictor evaluated on the same rows (regression: the training median, "
        "the constant that minimises the MAE; classification: the training class prior). A model near its "
        "baseline learned little.",
        "Test: evaluated once, from the checkpoint the validation split chose (validation also stopped "
        "training, so its numbers are optimistic); every comparison in these notes is on test. Test values "
        "carry a 95 % interval [low, high]: a percentile bootstrap over the test records (1,000 resamples)"
        + (f" and over the {preset.seeds} training seeds" if preset.seeds > 1 else ", one training seed")
        + f". {NOT_CLEAR} marks a model whose interval overlaps the baseline's: on these test records it is "
        "not distinguishable from the trivial predictor. A macro AUC is given only when every class has "
        "positives among the records.",
        *(
            [
                "Sensitivity (recall), specificity, precision (PPV) and F1 are one-vs-rest per class at the "
                "predicted class (the arg-max; multi-label: probability >= 0.5), averaged over the classes "
                "(macro) or shown for one class (e.g. 'F1 AFIB'). A class never predicted has precision 0; a "
                "macro sensitivity or F1 is given only when every class has positives among the records. "
                "The class-prior baseline always predicts the most frequent class (multi-label: the classes "
                "present in at least half the training records), so its macro sensitivity is 1 / classes "
                "(single-label).",
            ]
            if experiment.task == "classification" and any(is_rate(m) for m in experiment.metrics)
            else []
        ),
        f"Code: the runs' ecglab version and ecgcore source digest are in the code_version column (running "
        f"now: {code_version()['label']}); runs are reused across code versions only with --reuse-any-version.",
    ]
    if experiment.study == "seed":
        notes += [
            f"Published: {SEED_STUDY.text()}. {SEED_STUDY.note}",
            "Train columns: ours are the best checkpoint evaluated on the training rows (eval mode); the study's "
            "scripts computed theirs inside the training loop (dropout on, weights changing during the epoch).",
            f"Splits: PTB-XL strat_fold 1-8 train / 9 validation / 10 test (shown here: {shown}); DeepFake "
            "records are assigned to 10 folds by a hash of their id. The seed study used random 70/10/20 record "
            "splits.",
        ]
    notes += [note(preset, sources) for note in experiment.notes]
    if preset.name != "paper":
        notes.append(
            f"Preset '{preset.name}' is scaled down (see the settings above): it checks that the pipeline runs "
            "end to end and shows which models beat the trivial baseline on these data, with intervals that say "
            "how sure that is. It does not reproduce the published values, and it ranks two models only where "
            "their test intervals do not overlap; read nothing into an order the intervals do not separate."
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
