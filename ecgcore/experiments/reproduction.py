"""Reproduce an experiment in this process: prepare its data, train what is missing, write its table.

What ``python -m ecgcore reproduce`` runs. The Results page does the same in steps (prepare,
:func:`~ecgcore.experiments.planning.launch_missing` worker processes, build the table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ecgcore.experiments.definitions import (
    DataSources,
    Experiment,
    Preset,
    get_experiment,
    get_preset,
    resolve,
)
from ecgcore.experiments.planning import PlannedRun, plan
from ecgcore.experiments.prepare import check_data, prepare_data
from ecgcore.experiments.tables import build_table, default_out_dir, gaps_vs_scratch, header, write_outputs
from ecgcore.progress import ProgressFn, report
from ecgcore.runs.store import ACTIVE


@dataclass
class Reproduction:
    """What :func:`reproduce` did: the table, the files it wrote, runs trained, reused and failed."""

    table: pd.DataFrame
    markdown: str
    paths: dict[str, Path]
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _train_one(
    p: PlannedRun,
    done_ids: dict[str, str],
    runs_dir: Path | None,
    progress: ProgressFn | None,
    say: Callable[[str], None],
) -> tuple[str | None, str | None]:
    """Train (or resume) one planned run here; returns (its run id, None) or (None, why it failed)."""
    from ecgcore.runs import run_training

    lacking = [s for s in p.spec.sources if s not in done_ids]
    if lacking:
        return None, f"source runs not available: {', '.join(lacking)}"
    if p.status in ACTIVE:
        return None, f"run {p.run_id} is {p.status} in another process; not started twice"
    config = resolve(p.spec, done_ids)
    resume = p.status == "resumable" and p.config is not None and p.config.key() == config.key()
    say(
        ("resuming run " + str(p.run_id) if resume else "training")
        + f" {config.model} ({config.task}) on {config.data}"
    )
    try:
        summary = run_training(
            config, runs_dir=runs_dir, run_id=p.run_id if resume else None, resume=resume, progress=progress
        )
    except Exception as exc:  # one failed run must not lose the others' results
        return None, f"{type(exc).__name__}: {exc}"
    if summary.get("status") != "done":
        return None, f"run {summary['id']} ended {summary.get('status')!r}; run again to resume it"
    return summary["id"], None


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
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    preset = get_preset(preset)
    say = log or (lambda _msg: None)
    check_data(experiment, sources)
    say(f"{experiment.title}\n{preset.describe()}")
    prepare_data(experiment, preset, sources, progress=run_progress("data") if run_progress else None)
    trained, reused, failed = [], [], {}
    planned = plan(experiment, preset, sources, runs_dir)
    total = len(planned)
    done_ids = {p.spec.name: p.run_id for p in planned if p.status == "done"}
    for i, p in enumerate(planned):
        report(progress, i, total, p.spec.name)
        step = f"[{i + 1}/{total}] {p.spec.name}: "
        if p.spec.name in done_ids:
            reused.append(done_ids[p.spec.name])
            say(f"{step}reused run {done_ids[p.spec.name]}")
            continue
        run_id, why = _train_one(
            p,
            done_ids,
            runs_dir,
            run_progress(p.spec.name) if run_progress else None,
            lambda line, step=step: say(step + line),
        )
        if run_id is None:
            failed[p.spec.name] = why
            say(f"{step}not trained: {why}")
            continue
        done_ids[p.spec.name] = run_id
        trained.append(run_id)
    report(progress, total, total, "table")
    planned = plan(experiment, preset, sources, runs_dir)
    table = build_table(experiment, preset, sources, runs_dir, planned)
    head = header(experiment, preset, sources, planned)
    head["notes"] += [f"Transfer minus scratch: {gap}" for gap in gaps_vs_scratch(table)]
    paths = write_outputs(
        Path(out_dir) if out_dir else default_out_dir(experiment.name, preset), experiment.name, table, head
    )
    return Reproduction(table, paths["md"].read_text(), paths, trained, reused, failed)
