"""Plan an experiment's runs against the run store, and launch the ones that can start.

A run already in the store with the same :meth:`TrainConfig.key`, status ``done`` and trained on
the data as it is now is reused; :func:`plan` says where each run stands, :func:`launch_missing`
starts worker processes for what can start (the Results page), :func:`ecgcore.experiments.reproduce`
trains them in this process (the command line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecgcore.data import open_source
from ecgcore.data.cache import fingerprint
from ecgcore.experiments.definitions import (
    DataSources,
    Experiment,
    Preset,
    RunSpec,
    get_experiment,
    get_preset,
    resolve,
)
from ecgcore.experiments.prepare import check_data
from ecgcore.runs import worker
from ecgcore.runs.store import ACTIVE, RunStore
from ecgcore.train.config import TrainConfig

#: Statuses of a run that stopped early and can continue from its last epoch's checkpoint.
RESUMABLE = ("cancelled", "interrupted")


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


def _runs_by_key(store: RunStore) -> dict[str, list[tuple[str, str, bool]]]:
    """``config key -> [(run id, status, has a last checkpoint)]``, newest first."""
    worker.refresh_dead(store.root)  # a run whose process died is "interrupted", not "running"
    runs = store.list_runs()
    by_key: dict[str, list[tuple[str, str, bool]]] = {}
    if len(runs):
        for run in runs.to_dict(orient="records"):
            by_key.setdefault(run["config_key"], []).append(
                (run["id"], run["status"], bool(run.get("last_checkpoint")))
            )
    return by_key


def _trained_on_current_data(
    store: RunStore, run_id: str, config: TrainConfig, current: dict[tuple, str | None]
) -> bool:
    """Whether a finished run trained on the data as it is now (the same cache fingerprint).

    Regenerated or relabelled data (new measured intervals, say) keeps the same configuration key,
    so without this check a stale run would be reused and its numbers shown as current.
    """
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
    current: dict[tuple, str | None] = {}
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
    sources are done). Call :func:`ecgcore.experiments.prepare_data` first (it may take minutes).
    """
    check_data(experiment, sources)
    ready = [p for p in plan(experiment, preset, sources, runs_dir) if p.status in ("missing", "resumable")]
    return [
        worker.resume(p.run_id, runs_dir=runs_dir)
        if p.status == "resumable"
        else worker.launch(p.config, runs_dir=runs_dir)
        for p in ready[:limit]
    ]
