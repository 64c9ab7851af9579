"""Hyperparameter studies on Optuna: stages of trials, each trial a run of the run store.

:func:`run_study` runs a :class:`~ecgcore.tune.spaces.Space` stage by stage. Each stage is one Optuna study
named ``<study>.<stage>`` in ``storage`` (default: SQLite ``studies.db`` in the run store's folder), so:

* every finished or pruned trial is kept; running the same command again resumes: a stage runs only the
  trials it still lacks (grid points not tried yet; TPE trials up to ``trials``);
* several processes (on one machine, or several machines with a shared database URL) started with the
  same command share the stages' trials: Optuna's documented way to distribute a search. A stage stops
  once the shared count of finished trials reaches its target.

Each trial is a run (:func:`ecgcore.runs.run_training`), visible in Results, with ``trial.json`` in its
directory (study, stage, trial number, parameters, and the run it warm-started from). A stage with
``warm_start`` starts every trial from the best run of the earlier stage it names (transfer approach
``continue``: all weights, the trial's own settings). Its validation metric is reported to Optuna every
epoch; when the pruner says so the run is cancelled ("pruned by ...") and the trial marked pruned. The
trial's value is the best validation value of its epochs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from ecgcore import paths
from ecgcore.progress import ProgressFn, report
from ecgcore.tune.spaces import Space, Stage, apply

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def default_storage(runs_dir: str | Path | None = None) -> str:
    """``sqlite:///<run store folder>/studies.db``."""
    folder = Path(runs_dir) if runs_dir else paths.runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'studies.db'}"


def open_storage(url: str, attempts: int = 5) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``; SQLite waits up to 60 s for a lock, and a schema being created by
    another worker at the same moment (a unique-constraint clash) is retried."""
    import sqlalchemy.exc

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def make_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    """``{"name": "median" | "percentile" | "threshold" | "none", **options}`` as an Optuna pruner."""
    options = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "median")
    makers = {
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name not in makers:
        raise ValueError(f"unknown pruner {name!r}; expected one of {', '.join(makers)}")
    return makers[name](**options)


class PruningRecorder:
    """Wraps a run's recorder: reports each epoch's metric to the trial and cancels the run when pruned."""

    def __init__(self, inner: Any, trial: optuna.Trial, metric: str, direction: str) -> None:
        self.inner = inner
        self.trial = trial
        self.metric = metric
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.pruned = False
        self.best: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def epoch_end(self, epoch: int, step: int, **values: Any) -> None:
        self.inner.epoch_end(epoch, step, **values)
        value = (
            values["val_loss"] if self.metric == "val_loss" else values.get("metrics", {}).get(self.metric)
        )
        if value is None or not math.isfinite(float(value)):
            raise ValueError(
                f"the run reports no validation {self.metric!r}; metrics are {sorted(values['metrics'])}"
            )
        value = float(value)
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best = value
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = True

    def cancelled(self, message: str) -> None:
        if self.pruned:
            message = f"pruned by Optuna study {self.trial.study.study_name}, trial {self.trial.number}"
        self.inner.cancelled(message)

    def cancel_requested(self) -> bool:
        return self.pruned or self.inner.cancel_requested()


def _suggest(trial: optuna.Trial, name: str, spec: Any) -> Any:
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec["low"], int) and isinstance(spec["high"], int):
        return trial.suggest_int(
            name, spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False)
        )
    return trial.suggest_float(
        name, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
    )


def stage_grid(stage: Stage, best: dict[str, Any]) -> dict[str, list]:
    """The grid of a ``grid`` stage, or of an ``around`` stage around ``best`` (ints rounded, duplicates dropped)."""
    if stage.sampler == "grid":
        return {k: list(v) for k, v in stage.params.items()}
    grid = {}
    for name in stage.params:
        if name not in best:
            raise ValueError(f"stage {stage.name!r}: no earlier stage found a best {name!r} to search around")
        centre = best[name]
        values = [
            type(centre)(round(centre * f)) if isinstance(centre, int) else centre * f for f in stage.factors
        ]
        grid[name] = sorted(set(values))
    return grid


def run_study(
    name: str,
    space: Space,
    trials: int,
    *,
    storage: str | None = None,
    runs_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    train: Callable[..., dict] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or join) the study ``name``; returns ``{stage: {"best_value", "best_params", "trials"}}``.

    ``trials`` is the number of trials of each sampled (TPE) stage; grid stages run their whole grid.
    ``overrides`` are TrainConfig values that beat the space's base (``data``, ``model`` ...).
    ``train`` is :func:`ecgcore.runs.run_training` (a parameter for tests).
    """
    from ecgcore.runs.store import RunStore
    from ecgcore.train.config import TrainConfig

    if train is None:
        from ecgcore.runs import run_training as train
    storage = storage or default_storage(runs_dir)
    db = open_storage(storage)
    store = RunStore(runs_dir)
    base = apply(TrainConfig.from_dict(apply({}, {**space.base, **(overrides or {})})).to_dict(), {})
    best: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for stage in space.stages:
        grid = stage_grid(stage, best) if stage.sampler in ("grid", "around") else None
        sampler = (
            optuna.samplers.GridSampler(grid, seed=int(base.get("seed", 0)))
            if grid is not None
            else optuna.samplers.TPESampler(seed=int(base.get("seed", 0)))
        )
        study = optuna.create_study(
            study_name=f"{name}.{stage.name}",
            storage=db,
            sampler=sampler,
            pruner=make_pruner(space.pruner),
            direction=space.direction,
            load_if_exists=True,
        )
        target = math.prod(len(v) for v in grid.values()) if grid is not None else int(trials)
        stage_base = apply(base, {**best, **stage.fixed, **_warm_start(stage, results)})

        objective = _objective(name, stage, stage_base, grid, space, store, train, runs_dir, storage)

        done = _finished(study)
        if done < target:
            report(progress, done, target, f"{name}.{stage.name}")
            study.optimize(
                objective,
                n_trials=target - done,
                callbacks=[optuna.study.MaxTrialsCallback(target, states=FINISHED)],
                catch=(),
            )
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise RuntimeError(f"study {name}.{stage.name}: no trial completed (all pruned or failed)")
        best.update(study.best_params)
        results[stage.name] = {
            "best_value": study.best_value,
            "best_params": dict(study.best_params),
            "best_run": study.best_trial.user_attrs.get("run_id"),
            "trials": len(study.trials),
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        }
        report(progress, target, target, f"{name}.{stage.name}")
    return results


#: How a warm-started trial continues from the earlier stage's best run: every layer at the trial's lr.
WARM_START = {"approach": "continue", "strategy": "discriminative", "lr_factor": 1.0}


def _warm_start(stage: Stage, results: dict[str, Any]) -> dict[str, Any]:
    """``{"transfer": ...}`` continuing from the best run of the stage ``stage.warm_start`` names, or ``{}``."""
    if stage.warm_start is None:
        return {}
    source = results[stage.warm_start]["best_run"]
    if source is None:
        raise RuntimeError(
            f"stage {stage.name!r} warm-starts from stage {stage.warm_start!r}, whose best trial names no run"
        )
    return {"transfer": {"sources": [source], **WARM_START}}


def _objective(
    name: str,
    stage: Stage,
    stage_base: dict[str, Any],
    grid: dict[str, list] | None,
    space: Space,
    store: Any,
    train: Callable[..., dict],
    runs_dir: str | Path | None,
    storage: str,
) -> Callable[[optuna.Trial], float]:
    """One trial of ``stage``: a run of the store with the sampled values, pruned through its recorder."""
    from ecgcore.train.config import TrainConfig

    def objective(trial: optuna.Trial) -> float:
        values = {k: _suggest(trial, k, v if grid is None else grid[k]) for k, v in stage.params.items()}
        config = TrainConfig.from_dict(apply(stage_base, values))
        run_id = store.create_run(config)
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("pid", os.getpid())
        paths.atomic_write_json(
            store.run_dir(run_id) / "trial.json",
            {
                "study": name,
                "stage": stage.name,
                "trial": trial.number,
                "params": values,
                "storage": storage,
                "warm_start": config.transfer.sources[0] if config.transfer else None,
            },
        )
        watcher: dict[str, PruningRecorder] = {}

        def wrap(recorder: Any) -> PruningRecorder:
            watcher["r"] = PruningRecorder(recorder, trial, space.metric, space.direction)
            return watcher["r"]

        train(config, runs_dir=runs_dir, run_id=run_id, wrap_recorder=wrap)
        rec = watcher.get("r")
        if rec is None or rec.best is None:
            raise RuntimeError(f"run {run_id} reported no epoch")
        if rec.pruned:
            raise optuna.TrialPruned()
        return rec.best

    return objective


def _finished(study: optuna.Study) -> int:
    return sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))


def load_studies(
    name: str, storage: str | None = None, runs_dir: str | Path | None = None
) -> list[optuna.Study]:
    """The stages of study ``name`` found in ``storage`` (for the dashboard and ``tune --show``)."""
    db = open_storage(storage or default_storage(runs_dir))
    names = [s.study_name for s in optuna.get_all_study_summaries(db) if s.study_name.startswith(f"{name}.")]
    return [optuna.load_study(study_name=n, storage=db) for n in names]
