"""Search spaces of a hyperparameter study: a base configuration and its stages, from JSON or a preset.

A space file (JSON)::

    {"name": "vision",
     "base": {"task": "classification", "model": "resnet18", "representation": "chart", "epochs": 10},
     "metric": "f1_macro",                 # "val_loss" or a validation metric of the trainer (auc, mae_over_sd ...)
     "direction": "maximize",              # default: minimize for val_loss / mae_over_sd, maximize otherwise
     "pruner": {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
     "stages": [
       {"name": "head", "sampler": "grid", "fixed": {"model_kwargs.frozen": "backbone"},
        "params": {"lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64]}},
       {"name": "full", "sampler": "tpe", "warm_start": "head",
        "params": {"lr": {"low": 1e-5, "high": 1e-3, "log": true}, "weight_decay": {"low": 1e-4, "high": 1e-1,
                   "log": true}, "model_kwargs.dropout": {"low": 0.0, "high": 0.5}}},
       {"name": "refine", "sampler": "around", "factors": [0.5, 1, 2], "warm_start": "head",
        "params": {"lr": null, "weight_decay": null}}
     ]}

Parameter names are :class:`ecgcore.train.TrainConfig` fields, or ``model_kwargs.NAME`` for an argument
of the model. A parameter is a list (categorical / grid values), ``{"low", "high", "log"?, "step"?}``
(float, or int when both bounds are ints), or, in an ``around`` stage, ``null``: the grid is the
previous stages' best value times each factor. Every stage's trials start from ``base``, the best values
of the earlier stages, then the stage's ``fixed`` values and its sampled ones. ``model_kwargs.frozen``
(any model; see :func:`ecgcore.models.create_model`) trains only the head: the first stage of the
vision study.

``warm_start`` names an earlier stage: every trial of this stage starts from the weights of that stage's
best run (all layers, head included; ``TrainConfig.transfer`` with approach ``continue``), not from a
fresh model. That is how the vision study's second stage fine-tunes all layers: from the head it trained
with the backbone frozen, so a random head does not wreck the backbone's features in the first steps.
The ``refine`` stage starts from the same run, so its trials differ from the TPE stage's only in their
values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLERS: tuple[str, ...] = ("grid", "tpe", "around")
MAXIMIZE: tuple[str, ...] = ("auc", "accuracy", "f1_macro")


@dataclass(frozen=True)
class Stage:
    """One stage: its sampler, parameters, fixed values and (``around``) factors."""

    name: str
    sampler: str
    params: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)
    factors: tuple[float, ...] = (0.5, 1.0, 2.0)
    #: An earlier stage whose best run every trial of this stage starts from (None: a fresh model).
    warm_start: str | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"stage {self.name!r}: sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        if not self.params:
            raise ValueError(f"stage {self.name!r} searches no parameter")
        for name, spec in self.params.items():
            if self.sampler == "grid":
                ok = isinstance(spec, list) and bool(spec)
            elif self.sampler == "around":
                ok = spec is None
            else:
                ok = (isinstance(spec, list) and bool(spec)) or (
                    isinstance(spec, dict) and {"low", "high"} <= set(spec)
                )
            if not ok:
                raise ValueError(f"stage {self.name!r}: parameter {name!r} has a bad range {spec!r}")


@dataclass(frozen=True)
class Space:
    """A study's base configuration, metric, pruner and stages."""

    name: str
    base: dict[str, Any]
    stages: tuple[Stage, ...]
    metric: str = "val_loss"
    direction: str = ""
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})

    def __post_init__(self) -> None:
        if not self.direction:
            default = "maximize" if self.metric in MAXIMIZE else "minimize"
            object.__setattr__(self, "direction", default)
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"space {self.name!r}: direction must be minimize or maximize")
        if not self.stages:
            raise ValueError(f"space {self.name!r} has no stage")
        if self.stages[0].sampler == "around":
            raise ValueError(f"space {self.name!r}: an 'around' stage needs an earlier stage")
        for i, stage in enumerate(self.stages):
            earlier = [s.name for s in self.stages[:i]]
            if stage.warm_start is not None and stage.warm_start not in earlier:
                raise ValueError(
                    f"space {self.name!r}: stage {stage.name!r} warm-starts from {stage.warm_start!r}, "
                    f"which is not an earlier stage ({earlier or 'none'})"
                )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Space:
        stages = tuple(
            Stage(
                name=s["name"],
                sampler=s["sampler"],
                params=dict(s["params"]),
                fixed=dict(s.get("fixed", {})),
                factors=tuple(s.get("factors", (0.5, 1.0, 2.0))),
                warm_start=s.get("warm_start"),
            )
            for s in d.get("stages", [])
        )
        unknown = set(d) - {"name", "base", "stages", "metric", "direction", "pruner"}
        if unknown:
            raise ValueError(f"space: unknown keys {sorted(unknown)}")
        return cls(
            name=d.get("name", "space"),
            base=dict(d.get("base", {})),
            stages=stages,
            metric=d.get("metric", "val_loss"),
            direction=d.get("direction", ""),
            pruner=dict(d.get("pruner", {"name": "median"})),
        )


#: Built-in spaces: the vision study's three stages, and a tiny one for a quick look (and the tests).
PRESETS: dict[str, dict[str, Any]] = {
    "vision": {
        "name": "vision",
        "base": {"task": "classification", "model": "resnet18", "representation": "chart", "epochs": 10},
        "metric": "f1_macro",
        "pruner": {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
        "stages": [
            {
                "name": "head",
                "sampler": "grid",
                "fixed": {"model_kwargs.frozen": "backbone"},
                "params": {"lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64]},
            },
            {
                "name": "full",
                "sampler": "tpe",
                "warm_start": "head",
                "params": {
                    "lr": {"low": 1e-5, "high": 1e-3, "log": True},
                    "weight_decay": {"low": 1e-4, "high": 1e-1, "log": True},
                    "model_kwargs.dropout": {"low": 0.0, "high": 0.5},
                },
            },
            {
                "name": "refine",
                "sampler": "around",
                "warm_start": "head",
                "params": {"lr": None, "weight_decay": None},
            },
        ],
    },
    "quick": {
        "name": "quick",
        "base": {"epochs": 3},
        "stages": [
            {
                "name": "head",
                "sampler": "grid",
                "fixed": {"model_kwargs.frozen": "backbone"},
                "params": {"lr": [1e-3, 1e-2]},
            },
            {
                "name": "full",
                "sampler": "tpe",
                "warm_start": "head",
                "params": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
            },
            {
                "name": "refine",
                "sampler": "around",
                "factors": [0.5, 2.0],
                "warm_start": "head",
                "params": {"lr": None},
            },
        ],
    },
}


def load_space(file_or_preset: str | Path) -> Space:
    """A preset by name (:data:`PRESETS`) or a JSON space file."""
    if str(file_or_preset) in PRESETS:
        return Space.from_dict(PRESETS[str(file_or_preset)])
    path = Path(file_or_preset)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such space file, and not a preset ({', '.join(PRESETS)})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    try:
        return Space.from_dict(data)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a space ({type(err).__name__}: {err})") from None


def apply(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a :meth:`TrainConfig.to_dict`) with ``values`` set (``model_kwargs.X`` inside model_kwargs)."""
    out = {**config, "model_kwargs": dict(config.get("model_kwargs") or {})}
    for name, value in values.items():
        if name.startswith("model_kwargs."):
            out["model_kwargs"][name.split(".", 1)[1]] = value
        else:
            out[name] = value
    return out
