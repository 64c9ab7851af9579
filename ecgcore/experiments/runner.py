"""Run what an experiment is missing, then build its table from the run store.

The same functions serve the command line (``python -m ecgcore reproduce``: trains in this
process, one run after another) and the dashboard's Results page (:func:`plan` to show what is
done, :func:`launch_missing` to start worker processes, :func:`build_table` to show the table).
A run already in the store with the same :meth:`TrainConfig.key` and status ``done`` is reused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecgcore.experiments.definitions import (
    DataSources,
    Experiment,
    Preset,
    RunSpec,
    get_experiment,
    get_preset,
    resolve,
)
from ecgcore.experiments.published import SEED_STUDY
from ecgcore.experiments.tables import (
    VALUE_COLUMNS,
    gaps_vs_scratch,
    published_values,
    run_values,
    summary_splits,
    write_outputs,
)
from ecgcore.paths import BUNDLED_PTBXL, atomic_write_text, data_home, load_settings
from ecgcore.progress import ProgressFn, report
from ecgcore.runs.store import ACTIVE, RunStore
from ecgcore.train.config import TrainConfig
from ecgcore.vocab import SUPERCLASSES

PTBXL_URL = "https://physionet.org/content/ptb-xl/1.0.3/"
PTBXL_PLUS_URL = "https://physionet.org/content/ptb-xl-plus/"
#: Table order of the targets (the seed study's: HR, QRS, PR, QT).
TARGET_ORDER: tuple[str, ...] = ("hr", "qrs", "pr", "qt")


class DataRequired(ValueError):
    """The experiment needs data the user has not given (the message says what and where to get it)."""


# --- data ----------------------------------------------------------------------------------------
def data_sources(specs: Sequence[str] = (), plus: str | Path | None = None) -> DataSources:
    """Parse ``--data`` specs (``ptbxl:DIR``, ``deepfake:DIR``) and ``--plus DIR`` into :class:`DataSources`.

    Where no PTB-XL / PTB-XL+ is given, the user's saved settings (``ECGLAB_PTBXL`` ...) fill it in.
    A DeepFake folder is only used when given here: without one, table1 generates a set of the
    preset's size (a saved full DeepFake download would make ``--preset quick`` anything but quick).
    """
    found: dict[str, Path] = {}
    for spec in specs:
        kind, sep, path = str(spec).partition(":")
        if not sep or kind not in ("ptbxl", "deepfake") or not path:
            raise ValueError(f"bad --data {spec!r}; expected ptbxl:DIR or deepfake:DIR")
        found[kind] = BUNDLED_PTBXL if (kind, path) == ("ptbxl", "bundled") else Path(path).expanduser()
    settings = load_settings()
    ptbxl = found.get("ptbxl") or (Path(settings["ptbxl_dir"]) if settings.get("ptbxl_dir") else None)
    plus = plus or settings.get("ptbxl_plus_dir")
    return DataSources(ptbxl=ptbxl, ptbxl_plus=Path(plus) if plus else None, deepfake=found.get("deepfake"))


def _needs_message(experiment: Experiment, problem: str) -> str:
    return (
        f"{experiment.name} needs the full PTB-XL: {problem}\n"
        f"  Get PTB-XL 1.0.3 from PhysioNet: {PTBXL_URL} (its records100/ folder is enough for "
        f"--preset quick; --preset paper needs records500/).\n"
        f"  Unzip it and pass the folder that holds ptbxl_database.csv: --data ptbxl:DIR\n"
        f"  Optional, for interval labels on PTB-XL (transfer within PTB-XL): PTB-XL+ from "
        f"{PTBXL_PLUS_URL}, passed as --plus DIR (without it the intervals are measured by ecgcore.measure).\n"
        f"  Nothing was run."
    )


def _bundled_ids() -> set[str]:
    return set(pd.read_csv(BUNDLED_PTBXL / "ptbxl_database.csv", usecols=["ecg_id"])["ecg_id"].astype(str))


def check_data(experiment: Experiment | str, sources: DataSources) -> None:
    """Refuse to start an experiment whose data is missing or cannot support it.

    Raises
    ------
    DataRequired
        No PTB-XL given to a classification experiment, a folder that is not PTB-XL, the bundled
        11-record sample (or a copy of it), or a PTB-XL folder in which some superclass has no
        single-label record in the training or the validation split.
    """
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    if not experiment.needs_ptbxl:
        return
    if sources.ptbxl is None:
        raise DataRequired(_needs_message(experiment, "no PTB-XL folder was given."))
    root = Path(sources.ptbxl)
    database = root / "ptbxl_database.csv"
    if not root.is_dir():
        raise DataRequired(_needs_message(experiment, f"{root} is not a directory."))
    if not database.is_file():
        raise DataRequired(
            _needs_message(experiment, f"{root} has no ptbxl_database.csv (not a PTB-XL folder).")
        )
    plus_table = Path(sources.ptbxl_plus or ".") / "features" / "12sl_features.csv"
    if sources.ptbxl_plus and not plus_table.is_file():
        raise DataRequired(
            f"--plus {sources.ptbxl_plus}: no {plus_table} (expected the PTB-XL+ folder from "
            f"{PTBXL_PLUS_URL}). Nothing was run."
        )
    ids = set(pd.read_csv(database, usecols=["ecg_id"])["ecg_id"].astype(str))
    if root.resolve() == BUNDLED_PTBXL.resolve() or ids <= _bundled_ids():
        raise DataRequired(
            _needs_message(
                experiment,
                f"{root} is the bundled {len(ids)}-record PTB-XL sample, which is for browsing only: "
                "too small to train or evaluate a 5-class model.",
            )
        )
    from ecgcore.data import open_source

    index = open_source(f"ptbxl:{root}").index
    single = index[index["superclass"] != ""]
    absent = [
        f"{c} in {split}"
        for split in ("train", "val")
        for c in SUPERCLASSES
        if not ((single["split"] == split) & (single["superclass"] == c)).any()
    ]
    if absent:
        raise DataRequired(
            _needs_message(
                experiment,
                f"{root} has {len(index)} records but no single-label record of "
                f"{', '.join(absent)} (strat_fold 1-8 train, 9 validation); it is not the full PTB-XL.",
            )
        )


def prepare_data(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    progress: ProgressFn | None = None,
) -> None:
    """Make the data the experiment's runs read: generate the DeepFake set, measure PTB-XL-A intervals.

    Idempotent: an existing complete DeepFake folder or measured-label folder is left as it is.
    """
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    preset = get_preset(preset)
    check_data(experiment, sources)
    datas = {spec.config.data for spec in experiment.build(preset, sources)}
    if sources.deepfake is None and sources.deepfake_spec(preset) in datas:
        _ensure_deepfake(sources.deepfake_dir(preset), preset, progress)
    measured = sources.measured_dir(preset)
    if measured is not None and any(f"plus_dir={measured}" in d for d in datas):
        _ensure_measured_labels(sources, preset, measured, progress)


def _ensure_deepfake(root: Path, preset: Preset, progress: ProgressFn | None) -> None:
    """Generate the preset's DeepFake set into ``root`` unless it is there, and check it has labels."""
    from ecgcore.data import open_source
    from ecgcore.data.deepfake import generate_deepfake
    from ecgcore.vocab import TARGET_KEYS

    if not root.exists():
        generate_deepfake(root, preset.deepfake_n, seed=preset.seed, progress=progress)
    index = open_source(f"deepfake:{root}").index
    if not index[list(TARGET_KEYS)].notna().any().all():
        raise ValueError(
            f"the generated DeepFake set {root} has no interval labels (it was generated while "
            "ecgcore.measure was unavailable); delete that folder and run again"
        )


def _ensure_measured_labels(
    sources: DataSources, preset: Preset, out: Path, progress: ProgressFn | None
) -> None:
    """Measure HR/PR/QRS/QT of the PTB-XL-A records with ecgcore.measure and store them in PTB-XL+ layout.

    The folder is read through the data layer's PTB-XL+ reader (``ptbxl:DIR;plus_dir=OUT``). Its
    README says the values are our measurement, not the 12SL values PTB-XL+ publishes.
    """
    table = out / "features" / "12sl_features.csv"
    if table.is_file():
        return
    from ecgcore.data import open_source
    from ecgcore.data.cache import Preprocessing, load_cached
    from ecgcore.data.splits import ptbxl_halves
    from ecgcore.measure import measure_many

    dataset = open_source(sources.ptbxl_spec())
    halves = ptbxl_halves(dataset.index, seed=preset.seed)
    cached = load_cached(
        dataset, Preprocessing(leads=preset.leads, fs=preset.fs, normalize="none"), progress=progress
    )
    rows = np.flatnonzero(cached.index["record_id"].astype(str).isin(set(halves[0])).to_numpy())
    signals = (
        cached.signals[r] for r in rows
    )  # memmap rows, read one at a time (all of A may not fit in RAM)
    measured = measure_many(signals, preset.fs, preset.leads, progress=progress)
    hr = measured["hr"].to_numpy(float)
    features = pd.DataFrame(
        {
            "ecg_id": cached.index["record_id"].to_numpy()[rows].astype(int),
            "RR_Mean_Global": np.where(hr > 0, 60_000.0 / hr, np.nan),
            "PR_Int_Global": measured["pr"].to_numpy(float),
            "QRS_Dur_Global": measured["qrs"].to_numpy(float),
            "QT_Int_Global": measured["qt"].to_numpy(float),
        }
    )
    atomic_write_text(
        out / "README.txt",
        (
            "Interval labels of the PTB-XL-A records MEASURED by ecgcore.measure (measure_many) on "
            f"{sources.ptbxl} at {preset.fs:g} Hz, leads {','.join(preset.leads)}, band-passed, not normalised.\n"
            "They are stored in the PTB-XL+ file layout only so that the PTB-XL+ reader can attach them;\n"
            "they are NOT the GE 12SL values that PTB-XL+ publishes.\n"
        ),
    )
    atomic_write_text(table, features.to_csv(index=False))


# --- planning --------------------------------------------------------------------------------------
@dataclass
class PlannedRun:
    """One run of an experiment and where it stands.

    ``status``: ``done`` (a finished run with the same key exists), ``queued`` / ``running`` (one
    is under way), ``resumable`` (one was cancelled or interrupted after at least one epoch:
    ``run_id`` continues from its last checkpoint), ``missing`` (can start now) or ``waiting`` (its
    source runs are not done yet).
    """

    spec: RunSpec
    status: str
    run_id: str | None = None
    config: TrainConfig | None = None


#: Statuses of a run that stopped early and can continue from its last epoch's checkpoint.
RESUMABLE = ("cancelled", "interrupted")


def _runs_by_key(store: RunStore) -> dict[str, list[tuple[str, str, bool]]]:
    """``config key -> [(run id, status, has a last checkpoint)]``, newest first."""
    from ecgcore.runs.worker import refresh_dead

    refresh_dead(store.root)  # a run whose process died is "interrupted", not "running"
    runs = store.list_runs()
    by_key: dict[str, list[tuple[str, str, bool]]] = {}
    if len(runs):
        for run in runs.to_dict(orient="records"):
            by_key.setdefault(run["config_key"], []).append(
                (run["id"], run["status"], bool(run.get("last_checkpoint")))
            )
    return by_key


def _trained_on_current_data(
    store: RunStore, run_id: str, config: TrainConfig, current: dict[tuple, str]
) -> bool:
    """Whether a finished run trained on the data as it is now (the same cache fingerprint).

    Regenerated or relabelled data (new measured intervals, say) keeps the same configuration key,
    so without this check a stale run would be reused and its numbers shown as current.
    """
    from ecgcore.data import open_source
    from ecgcore.data.cache import fingerprint

    records = store.run_dir(run_id) / "records.json"
    recorded = json.loads(records.read_text()).get("fingerprint") if records.exists() else None
    prep = config.preprocessing()
    if (config.data, prep) not in current:
        try:
            current[(config.data, prep)] = fingerprint(open_source(config.data), prep)
        except (ValueError, FileNotFoundError):  # the data moved or broke: nothing can be verified
            current[(config.data, prep)] = None
    return recorded == current[(config.data, prep)]


def plan(
    experiment: Experiment | str, preset: Preset | str, sources: DataSources, runs_dir: Path | None = None
) -> list[PlannedRun]:
    """Where each run of the experiment stands in the store (see :class:`PlannedRun`)."""
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    store = RunStore(runs_dir)
    by_key = _runs_by_key(store)
    done_ids: dict[str, str] = {}
    current: dict[tuple, str] = {}
    planned = []
    for spec in experiment.build(get_preset(preset), sources):
        if any(name not in done_ids for name in spec.sources):
            planned.append(PlannedRun(spec, "waiting"))
            continue
        config = resolve(spec, done_ids)
        runs = [
            r
            for r in by_key.get(config.key(), [])
            if r[1] != "done" or _trained_on_current_data(store, r[0], config, current)
        ]
        status, run_id = "missing", None
        for wanted in ("done", *ACTIVE, *RESUMABLE):
            hit = next((r for r in runs if r[1] == wanted and (wanted not in RESUMABLE or r[2])), None)
            if hit:
                status, run_id = ("resumable" if wanted in RESUMABLE else wanted), hit[0]
                break
        if status == "done":
            done_ids[spec.name] = run_id
        planned.append(PlannedRun(spec, status, run_id, config))
    return planned


def plan_frame(planned: Sequence[PlannedRun]) -> pd.DataFrame:
    """A plan as a table (name, status, run id, task, model, data) for the page and the CLI."""
    return pd.DataFrame(
        [
            {
                "name": p.spec.name,
                "status": p.status,
                "run_id": p.run_id,
                "task": p.spec.config.task,
                "model": p.spec.config.model,
                "data": p.spec.config.data,
                "in_table": p.spec.in_table,
            }
            for p in planned
        ]
    )


def launch_missing(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    runs_dir: Path | None = None,
    limit: int | None = None,
) -> list[str]:
    """Start worker processes for the runs that can start now (resuming stopped ones); returns their ids.

    Runs waiting for their source runs are left for a later call (the page calls again once the
    sources are done). Call :func:`prepare_data` first (it generates data and may take minutes).
    """
    from ecgcore.runs import worker

    check_data(experiment, sources)
    ready = [p for p in plan(experiment, preset, sources, runs_dir) if p.status in ("missing", "resumable")]
    return [
        worker.resume(p.run_id, runs_dir=runs_dir)
        if p.status == "resumable"
        else worker.launch(p.config, runs_dir=runs_dir)
        for p in ready[:limit]
    ]


# --- tables ----------------------------------------------------------------------------------------
def build_table(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    runs_dir: Path | None = None,
    planned: Sequence[PlannedRun] | None = None,
) -> pd.DataFrame:
    """The experiment's long-form table from the store: one row per (table row, target, metric)."""
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    planned = planned if planned is not None else plan(experiment, preset, sources, runs_dir)
    store = RunStore(runs_dir)
    rows = []
    for p in planned:
        if not p.spec.in_table:
            continue
        splits = summary_splits(store.get_run(p.run_id)["summary"]) if p.status == "done" else {}
        targets = [t for t in TARGET_ORDER if t in p.spec.config.targets]
        for values in run_values(splits, experiment.task, targets):
            row = {f: p.spec.row.get(f) for f in experiment.row_fields}
            row.update(values)
            row.update(published_values(experiment.name, p.spec.row, values["target"], values["metric"]))
            row.update({"status": p.status, "run_id": p.run_id})
            rows.append(row)
    target = ["target"] if experiment.task == "regression" else []
    table = pd.DataFrame(
        rows, columns=[*experiment.row_fields, *target, "metric", *VALUE_COLUMNS, "status", "run_id"]
    )
    if experiment.name == "table1":  # one row per model and target, in the study's order
        table["_t"] = table["target"].map(TARGET_ORDER.index)
        table["_m"] = table["model"].map({m: i for i, m in enumerate(dict.fromkeys(table["model"]))})
        table = (
            table.sort_values(["_m", "_t"], kind="stable").drop(columns=["_t", "_m"]).reset_index(drop=True)
        )
    return table


def table_notes(experiment: Experiment, preset: Preset, sources: DataSources) -> list[str]:
    """What a reader must know to read the table honestly."""
    notes = [
        "Baseline: the trivial predictor evaluated on the same rows (regression: the training mean; "
        "classification: the training class prior). A model near its baseline learned little.",
        f"Published: {SEED_STUDY.text()}. {SEED_STUDY.note}",
        "Train columns: ours are the best checkpoint evaluated on the training rows (eval mode); the study's "
        "scripts computed theirs inside the training loop (dropout on, weights changing during the epoch).",
        "Splits: PTB-XL strat_fold 1-8 train / 9 validation / 10 test (not reported here); DeepFake records are "
        "assigned to 10 folds by a hash of their id. The seed study used random 70/10/20 record splits.",
    ]
    if experiment.name in ("table1", "transfer", "fractions"):
        notes.append(
            f"DeepFake ground truth: {sources.deepfake}'s ground-truth CSV."
            if sources.deepfake
            else f"DeepFake ground truth: the {preset.deepfake_n} generated ECGs are labelled by our own interval "
            "measurement (ecgcore.measure); the published DeepFake set comes with its own ground-truth file. "
            "The MAEs are comparable in scale, not one to one."
        )
    if experiment.name in ("transfer", "fractions"):
        notes.append(
            "The seed study's Tables 1-2 hold no numbers for this experiment: "
            "the published columns are empty."
        )
    if experiment.name == "transfer":
        notes.append(
            "PTB-XL interval labels (within-PTB-XL backbones): "
            + (
                f"PTB-XL+ ({sources.ptbxl_plus})."
                if sources.ptbxl_plus
                else "measured by ecgcore.measure on PTB-XL-A (no PTB-XL+ given)."
            )
        )
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
    }


def default_out_dir(experiment: str, preset: Preset) -> Path:
    return data_home() / "results" / f"{experiment}-{preset.name}"


@dataclass
class Reproduction:
    """What :func:`reproduce` did: the table, the files it wrote, runs trained, reused and failed."""

    table: pd.DataFrame
    markdown: str
    paths: dict[str, Path]
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def reproduce(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    *,
    runs_dir: Path | None = None,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    run_progress: Callable[[str], ProgressFn | None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Reproduction:
    """Train the missing runs here, one after another, then build and write the table.

    Parameters
    ----------
    progress
        Overall progress over the experiment's runs.
    run_progress
        Returns the progress function for one run's training, given the run's name.
    log
        Receives one line per step (data preparation, each run trained, reused or failed).
    """
    from ecgcore.runs import run_training

    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    preset = get_preset(preset)
    say = log or (lambda _msg: None)
    check_data(experiment, sources)
    say(f"{experiment.title}\n{preset.describe()}")
    prepare_data(experiment, preset, sources, progress=run_progress("data") if run_progress else None)
    result_trained, result_reused, failed = [], [], {}
    planned = plan(experiment, preset, sources, runs_dir)
    total = len(planned)
    done_ids = {p.spec.name: p.run_id for p in planned if p.status == "done"}
    for i, p in enumerate(planned):
        report(progress, i, total, p.spec.name)
        if p.spec.name in done_ids:
            result_reused.append(done_ids[p.spec.name])
            say(f"[{i + 1}/{total}] {p.spec.name}: reused run {done_ids[p.spec.name]}")
            continue
        lacking = [s for s in p.spec.sources if s not in done_ids]
        if lacking:
            failed[p.spec.name] = f"source runs not available: {', '.join(lacking)}"
            say(f"[{i + 1}/{total}] {p.spec.name}: skipped, {failed[p.spec.name]}")
            continue
        if p.status in ACTIVE:
            failed[p.spec.name] = f"run {p.run_id} is {p.status} in another process; not started twice"
            say(f"[{i + 1}/{total}] {p.spec.name}: {failed[p.spec.name]}")
            continue
        config = resolve(p.spec, done_ids)
        resume = p.status == "resumable" and p.config is not None and p.config.key() == config.key()
        say(
            f"[{i + 1}/{total}] {p.spec.name}: "
            + (f"resuming run {p.run_id}" if resume else "training")
            + f" {config.model} ({config.task}) on {config.data}"
        )
        try:
            summary = run_training(
                config,
                runs_dir=runs_dir,
                run_id=p.run_id if resume else None,
                resume=resume,
                progress=run_progress(p.spec.name) if run_progress else None,
            )
        except Exception as exc:  # one failed run must not lose the others' results
            failed[p.spec.name] = f"{type(exc).__name__}: {exc}"
            say(f"[{i + 1}/{total}] {p.spec.name}: FAILED ({failed[p.spec.name]})")
            continue
        if summary.get("status") != "done":
            failed[p.spec.name] = (
                f"run {summary['id']} ended {summary.get('status')!r}; run again to resume it"
            )
            say(f"[{i + 1}/{total}] {p.spec.name}: {failed[p.spec.name]}")
            continue
        done_ids[p.spec.name] = summary["id"]
        result_trained.append(summary["id"])
    report(progress, total, total, "table")
    planned = plan(experiment, preset, sources, runs_dir)
    table = build_table(experiment, preset, sources, runs_dir, planned)
    head = header(experiment, preset, sources, planned)
    head["notes"] += [f"Transfer minus scratch: {gap}" for gap in gaps_vs_scratch(table)]
    paths = write_outputs(
        Path(out_dir) if out_dir else default_out_dir(experiment.name, preset), experiment.name, table, head
    )
    markdown = paths["md"].read_text()
    return Reproduction(table, markdown, paths, result_trained, result_reused, failed)
