"""Transfer learning from finished interval-regression runs to superclass classification.

:func:`prepare` is what the trainer calls when ``TrainConfig.transfer`` is set, a
:class:`ecgcore.train.config.TransferConfig` (JSON form)::

    {"sources": [run_id, ...], "approach": "combined" | "qrs" | "pretrained",
     "strategy": "linear_probe" | "gradual_unfreeze" | "discriminative", "lr_factor": 2.6 (optional),
     "init": "pretrained" (default) | "random" (the same architecture and size, randomly initialised:
     the control that separates what the pretrained weights bring from what the bigger model brings)}

Approaches
    ``combined``: the backbones of the source runs, which together must cover HR, PR, QRS and QT (four
    single-target runs, or one 4-target run), read the ECG side by side; their features are concatenated
    (:class:`ecgcore.models.ConcatBackbone`) and a new head classifies. With a single source run the
    model is that run's architecture with a new head. ``qrs``: only the backbone of the run that
    predicts QRS (a single-target QRS run preferred), with a new head. ``pretrained``: one finished
    *classification* run (PTB-XL pretraining for a Challenge database, say): its backbone, and its head
    too when it predicts the same classes in the same order (a new head otherwise). ``continue``: one
    finished run of the same task on the same data: this run's model (its own ``model_kwargs``, e.g. a
    study's sampled dropout and no frozen backbone) takes all of the source's weights, head included;
    a later stage of a hyperparameter study starts from the best run of an earlier one this way.

Strategies (all by the models' *named* layer groups, ``model.layer_groups()``, input side first)
    ``linear_probe``: only the head trains; the backbone is frozen, BatchNorm statistics included (frozen
    modules are kept in eval mode). ``gradual_unfreeze``: epoch 0 trains the head, each later epoch one
    more group from the top (ULMFiT). ``discriminative``: everything trains, the learning rate divided by
    ``lr_factor`` per group going down (ULMFiT's 2.6).

Leakage
    No record used to pretrain (any split of any source run, from its ``records.json``) may appear
    anywhere in the target data: :func:`assert_no_leakage`. This is deliberately stricter than "not in
    the evaluation splits": a pretraining record in the target's training split would be harmless, but
    the check cannot know how the target's splits will be drawn by future code, so any overlap refuses.
    Records and patients are compared within a data kind (the Challenge's ``HR*`` records are PTB-XL's),
    waveforms (signal fingerprints) across kinds (:mod:`ecgcore.train.leakage`). ``continue`` trains on
    the source's own data, so there a source record may appear, but only in the split of the same name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgcore.models import ECGModel, create_model
from ecgcore.train.checkpoint import load_checkpoint, read_checkpoint
from ecgcore.train.config import (
    APPROACHES,
    DEFAULT_LR_FACTOR,
    INITS,
    STRATEGIES,
    TrainConfig,
    TransferConfig,
)
from ecgcore.train.leakage import LeakageError, assert_no_leakage, target_records
from ecgcore.vocab import TARGET_KEYS


# --- strategies ---------------------------------------------------------------------------------
@dataclass
class Strategy:
    """Which layer groups train in which epoch, and at which learning rate.

    Attributes
    ----------
    name
        One of :data:`STRATEGIES`.
    lr_factor
        ``discriminative``: group ``k`` below the head gets ``lr / lr_factor**k``.
    """

    name: str
    lr_factor: float = DEFAULT_LR_FACTOR

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"transfer strategy {self.name!r}; expected one of {STRATEGIES}")
        if self.lr_factor < 1.0:
            raise ValueError(
                f"transfer lr_factor={self.lr_factor}; expected >= 1 (lower layers learn slower)"
            )

    def trainable_groups(self, model: ECGModel, epoch: int) -> list[str]:
        """Names of the groups that train in ``epoch`` (0-based)."""
        names = [name for name, _ in model.layer_groups()]
        if self.name == "linear_probe":
            return ["head"]
        if self.name == "gradual_unfreeze":
            return names[max(0, len(names) - 1 - epoch) :]
        return names

    def param_groups(self, model: ECGModel, lr: float) -> list[dict]:
        """Optimiser parameter groups, one per layer group (input side first, head last), with ``name``, ``lr``.

        ``linear_probe`` hands the optimiser the head only, so the backbone cannot move even through
        weight decay; the other strategies hand it every group (frozen ones have no gradient yet and
        are skipped by the optimiser until they are unfrozen). The head's group, last, has ``lr``.
        """
        groups = model.layer_groups()
        if self.name == "linear_probe":
            groups = groups[-1:]
        out = []
        for k, (name, modules) in enumerate(reversed(groups)):  # k = distance from the top
            group_lr = lr / self.lr_factor**k if self.name == "discriminative" else lr
            params = [p for module in modules for p in module.parameters()]
            if params:
                out.insert(0, {"params": params, "lr": group_lr, "name": name})
        return out

    def on_epoch_start(self, epoch: int, model: ECGModel) -> None:
        """Freeze / unfreeze for ``epoch``; call after ``model.train()``.

        A frozen group's parameters stop requiring gradients and its modules go to eval mode, so its
        BatchNorm running statistics and dropout stay as they were.
        """
        trainable = set(self.trainable_groups(model, epoch))
        for name, modules in model.layer_groups():
            for module in modules:
                module.requires_grad_(name in trainable)
                if name not in trainable:
                    module.eval()


# --- sources ------------------------------------------------------------------------------------
@dataclass
class Source:
    """A finished regression run: its id, best checkpoint and its description, and its records.

    The model is built from the checkpoint when first used, so building it draws from torch's random
    generator after the trainer seeds it (the head's initialisation then depends on the seed alone).
    """

    run_id: str
    checkpoint: Path
    meta: dict
    records: dict

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.meta["targets"])

    @functools.cached_property
    def model(self) -> ECGModel:
        return load_checkpoint(self.checkpoint)[0]

    @classmethod
    def from_files(
        cls, run_id: str, checkpoint: str | Path, records: Mapping, task: str = "regression"
    ) -> Source:
        """A source from its best checkpoint file and its ``records.json`` mapping (``run_id`` is added).

        Raises
        ------
        ValueError
            If the checkpoint is not a ``task`` model's.
        """
        _, meta = read_checkpoint(checkpoint)
        if meta.get("task") != task:
            raise ValueError(
                f"transfer source {run_id!r} is a {meta.get('task')} run; this approach starts from {task} runs"
            )
        return cls(run_id, Path(checkpoint), meta, {**records, "run_id": run_id})


def _check_compatible(source: Source, config: TrainConfig) -> None:
    """The target must feed the backbone what it was trained on: same leads, rate and preprocessing."""
    prep = source.meta["preprocessing"]
    expected = {
        "leads": list(config.leads),
        "fs": config.fs,
        "normalize": config.normalize,
        "bandpass": config.bandpass,
    }
    found = {
        "leads": list(prep["leads"]),
        "fs": float(prep["fs"]),
        "normalize": prep["normalize"],
        "bandpass": prep["bandpass"],
    }
    diff = {k: (found[k], expected[k]) for k in expected if found[k] != expected[k]}
    if diff:
        detail = ", ".join(f"{k}: source {a!r} vs target {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"transfer source {source.run_id!r} was trained on other inputs than the target run ({detail})"
        )


def select_sources(sources: list[Source], approach: str) -> list[Source]:
    """The sources an approach uses (see the module docstring); clear errors when they do not fit."""
    if approach in ("pretrained", "continue"):
        if len(sources) != 1:
            raise ValueError(f"approach {approach!r} takes one source run; got {len(sources)}")
        return sources
    if approach == "qrs":
        with_qrs = [s for s in sources if "qrs" in s.targets]
        if not with_qrs:
            raise ValueError(
                f"approach 'qrs' needs a source run that predicts qrs; the sources predict "
                f"{ {s.run_id: list(s.targets) for s in sources} }"
            )
        single = [s for s in with_qrs if s.targets == ("qrs",)]
        return [(single or with_qrs)[0]]
    covered = {t for s in sources for t in s.targets}
    missing = [t for t in TARGET_KEYS if t not in covered]
    if missing:
        raise ValueError(
            f"approach 'combined' needs source runs covering {list(TARGET_KEYS)}; missing {missing} "
            f"(sources: { {s.run_id: list(s.targets) for s in sources} })"
        )
    return sources


def build_transfer_model(
    sources: list[Source], n_leads: int, n_outputs: int, classes: tuple[str, ...] | None = None
) -> ECGModel:
    """A new model holding the sources' trained backbones and a freshly initialised head (the single
    source's own head when ``classes`` are exactly the classes it predicted)."""
    if len(sources) == 1:
        model = create_model(**{**sources[0].model.config, "n_outputs": n_outputs})
        model.backbone.load_state_dict(sources[0].model.backbone.state_dict())
        if classes is not None and list(classes) == list(sources[0].meta.get("classes") or []):
            model.head.load_state_dict(sources[0].model.head.state_dict())
        return model
    model = create_model("concat", n_leads, n_outputs, members=[s.model.config for s in sources])
    for member, source in zip(model.backbone.members, sources):
        member.load_state_dict(source.model.backbone.state_dict())
    return model


def continued_model(config: TrainConfig, source: Source, n_leads: int, n_outputs: int, classes) -> ECGModel:
    """Approach ``continue``: the model of ``config`` with every weight of ``source`` (same task and outputs)."""
    if source.meta.get("task") != config.task:
        raise ValueError(
            f"transfer source {source.run_id!r} is a {source.meta.get('task')} run; approach 'continue' "
            f"needs a {config.task} run"
        )
    if config.task == "classification" and list(source.meta.get("classes") or []) != list(classes or []):
        raise ValueError(
            f"transfer source {source.run_id!r} predicts classes {source.meta.get('classes')}; this run "
            f"predicts {list(classes or [])} (approach 'continue' keeps the head)"
        )
    if source.model.config["name"] != config.model:
        raise ValueError(
            f"transfer source {source.run_id!r} is a {source.model.config['name']} model; this run trains "
            f"{config.model} (approach 'continue' needs the same architecture)"
        )
    model = create_model(config.model, n_leads, n_outputs, **config.model_kwargs)
    try:
        model.load_state_dict(source.model.state_dict())
    except RuntimeError as err:
        raise ValueError(
            f"transfer source {source.run_id!r}'s weights do not fit {config.model} with "
            f"{config.model_kwargs}: {str(err).splitlines()[0]}"
        ) from None
    return model


def prepare(
    config: TrainConfig,
    n_leads: int,
    n_outputs: int,
    sources: list[Source],
    classes: tuple[str, ...] | None = None,
) -> tuple[ECGModel, Strategy]:
    """The model and strategy of a transfer run (what :func:`ecgcore.train.trainer.train` calls).

    ``sources`` are the runs named in ``config.transfer.sources``, already loaded (checkpoint and
    record list; ``ecgcore.runs.transfer_sources`` resolves run ids to them). Checks their inputs
    match the target's and that none of their records is in the target data, and builds the model with
    the approach's backbones and a new head. The returned model is already set up for epoch 0.

    Raises
    ------
    ValueError
        For a config without transfer settings, no loaded sources, unusable sources or mismatched
        inputs (the settings themselves are checked by :class:`TransferConfig`).
    LeakageError
        If a pretraining record is in the target data.
    """
    transfer: TransferConfig | None = config.transfer
    if transfer is None:
        raise ValueError("TrainConfig.transfer is not set: this is not a transfer run")
    if not sources:
        raise ValueError(f"no source run loaded for TrainConfig.transfer.sources={list(transfer.sources)}")
    approach = transfer.approach
    strategy = Strategy(transfer.strategy, transfer.lr_factor)
    for source in sources:  # every source's weights, in the order given (a broken one fails here)
        source.model  # noqa: B018
    sources = select_sources(list(sources), approach)
    for source in sources:
        _check_compatible(source, config)
    assert_no_leakage(
        [s.records for s in sources], target_records(config), same_split_ok=approach == "continue"
    )
    if approach == "continue":
        model = continued_model(config, sources[0], n_leads, n_outputs, classes)
    else:
        model = build_transfer_model(
            sources, n_leads, n_outputs, classes if approach == "pretrained" else None
        )
    if transfer.init == "random":  # the same-size control: the transferred architecture, none of its weights
        torch.manual_seed(config.seed)
        for module in model.modules():
            if module is not model and hasattr(module, "reset_parameters"):
                module.reset_parameters()
    model.train()
    strategy.on_epoch_start(0, model)
    return model, strategy


__all__ = [
    "APPROACHES",
    "DEFAULT_LR_FACTOR",
    "INITS",
    "STRATEGIES",
    "LeakageError",
    "Source",
    "Strategy",
    "TransferConfig",
    "assert_no_leakage",
    "build_transfer_model",
    "continued_model",
    "prepare",
    "select_sources",
    "target_records",
]
