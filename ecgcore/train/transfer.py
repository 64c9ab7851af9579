"""Transfer learning from finished interval-regression runs to superclass classification.

:func:`prepare` is what the trainer calls when ``TrainConfig.transfer`` is set::

    {"sources": [run_id, ...], "approach": "combined" | "qrs",
     "strategy": "linear_probe" | "gradual_unfreeze" | "discriminative", "lr_factor": 2.6 (optional)}

Approaches
    ``combined``: the backbones of the source runs, which together must cover HR, PR, QRS and QT (four
    single-target runs, or one 4-target run), read the ECG side by side; their features are concatenated
    (:class:`ecgcore.models.ConcatBackbone`) and a new head classifies. With a single source run the
    model is that run's architecture with a new head. ``qrs``: only the backbone of the run that
    predicts QRS (a single-target QRS run preferred), with a new head. ``pretrained``: one finished
    *classification* run (e.g. PTB-XL pretraining for a Challenge database): its backbone, and its head
    too when it predicts the same classes in the same order (a new head otherwise).

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
    Records are compared within a data kind (a PTB-XL ``ecg_id`` and a DeepFake ``patid`` never clash),
    except that the Challenge's ``HR*`` records are PTB-XL records and compare as their ``ecg_id``
    (:func:`ecgcore.data.challenge.record_identity`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ecgcore.data.challenge import record_identity
from ecgcore.models import ECGModel, create_model
from ecgcore.runs.store import RunStore
from ecgcore.train.checkpoint import load_checkpoint
from ecgcore.train.config import TrainConfig
from ecgcore.vocab import TARGET_KEYS

APPROACHES = ("combined", "qrs", "pretrained")
STRATEGIES = ("linear_probe", "gradual_unfreeze", "discriminative")
#: ULMFiT's factor between the learning rates of neighbouring layer groups.
DEFAULT_LR_FACTOR = 2.6
SPLITS = ("train", "val", "test")


class LeakageError(ValueError):
    """A record used to pretrain a source model is also in the target data."""


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


# --- leakage ------------------------------------------------------------------------------------
def _keyed(records: Mapping) -> dict[str, set[tuple[str, str]]]:
    """``{split: {(kind, record_id)}}`` of a ``records.json``-shaped mapping."""
    kind = records.get("kind")
    if not kind:
        raise ValueError(
            f"records of {records.get('data', '?')!r} name no data kind; cannot compare record ids"
        )
    return {s: {record_identity(kind, str(r)) for r in records.get(s, [])} for s in SPLITS}


def assert_no_leakage(source_records: Mapping | Iterable[Mapping], target_records: Mapping) -> None:
    """Raise :class:`LeakageError` if any record of the sources is anywhere in the target data.

    Parameters
    ----------
    source_records
        One or several ``records.json`` mappings of the source runs:
        ``{"data": spec, "kind": ..., "train": [ids], "val": [...], "test": [...]}`` (a ``"run_id"`` key,
        when present, is named in the error).
    target_records
        The same shape for the target data (every record the target run may use, in its splits).

    Raises
    ------
    LeakageError
        Naming the overlapping record ids, the source run and split they were used in, and the target
        split they appear in.
    """
    sources = [source_records] if isinstance(source_records, Mapping) else list(source_records)
    target = _keyed(target_records)
    problems = []
    for source in sources:
        for s_split, s_ids in _keyed(source).items():
            for t_split, t_ids in target.items():
                overlap = sorted(r for _, r in s_ids & t_ids)
                if overlap:
                    shown = ", ".join(repr(r) for r in overlap[:10]) + (", ..." if len(overlap) > 10 else "")
                    problems.append(
                        f"{len(overlap)} {source['kind']} record(s) of source run "
                        f"{source.get('run_id', source.get('data', '?'))} ({s_split} split) are in the "
                        f"target {t_split} split of {target_records.get('data', '?')}: {shown}"
                    )
    if problems:
        raise LeakageError(
            "pretraining records appear in the target data (their labels or waveforms would leak "
            "into the evaluation): " + "; ".join(problems)
        )


def target_records(config: TrainConfig) -> dict:
    """Every record the target run may use: the source's index after the PTB-XL half selection, by split.

    This is a superset of the records the trainer keeps (it may drop unlabelled rows or subsample), which
    makes the leakage check conservative.
    """
    from ecgcore.data import in_half, open_source

    dataset = open_source(config.data)
    index = dataset.index[in_half(dataset.index, config.subset, seed=config.split_seed)]
    split = index["split"].to_numpy()
    ids = index["record_id"].astype(str).to_numpy()
    return {"data": config.data, "kind": dataset.kind, **{s: ids[split == s].tolist() for s in SPLITS}}


# --- sources ------------------------------------------------------------------------------------
@dataclass
class Source:
    """A finished regression run: its id, best model and checkpoint description, and its records."""

    run_id: str
    model: ECGModel
    meta: dict
    records: dict

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.meta["targets"])


def load_source(run_id: str, store: RunStore, task: str = "regression") -> Source:
    """Load a finished run's (of ``task``) best checkpoint and ``records.json``.

    Raises
    ------
    ValueError
        If the run is unknown, not finished, not a regression run.
    FileNotFoundError
        If its best checkpoint or ``records.json`` is missing.
    """
    try:
        run = store.get_run(run_id)
    except KeyError:
        raise ValueError(f"transfer source {run_id!r} is not a run in {store.path}") from None
    if run["status"] != "done":
        raise ValueError(
            f"transfer source {run_id!r} has status {run['status']!r}; expected a finished ('done') run"
        )
    if run["task"] != task:
        raise ValueError(
            f"transfer source {run_id!r} is a {run['task']} run; this approach starts from {task} runs"
        )
    run_dir = Path(run["run_dir"])
    model, meta = load_checkpoint(run_dir / "best.safetensors")
    records_file = run_dir / "records.json"
    if not records_file.exists():
        raise FileNotFoundError(
            f"{records_file}: the source run's record list is missing, so leakage into the "
            "target data cannot be ruled out"
        )
    records = {**json.loads(records_file.read_text()), "run_id": run_id}
    return Source(run_id, model, meta, records)


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
    if approach == "pretrained":
        if len(sources) != 1:
            raise ValueError(f"approach 'pretrained' takes one source run; got {len(sources)}")
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
    """A new model holding the sources' trained backbones and a freshly initialised head (the source's
    head when ``classes`` are exactly the classes the single source run predicted)."""
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


def prepare(
    config: TrainConfig,
    n_leads: int,
    n_outputs: int,
    store: RunStore,
    classes: tuple[str, ...] | None = None,
) -> tuple[ECGModel, Strategy]:
    """The model and strategy of a transfer run (what :func:`ecgcore.train.trainer.train` calls).

    Loads the source runs named in ``config.transfer["sources"]`` from ``store``, checks their inputs
    match the target's and that none of their records is in the target data, and builds the model with
    the approach's backbones and a new head. The returned model is already set up for epoch 0.

    Raises
    ------
    ValueError
        For an unknown approach or strategy, unusable sources, mismatched inputs, or a classification
        target that is not a classification run.
    LeakageError
        If a pretraining record is in the target data.
    """
    transfer = dict(config.transfer or {})
    unknown = sorted(set(transfer) - {"sources", "approach", "strategy", "lr_factor"})
    if unknown:
        raise ValueError(f"TrainConfig.transfer has unknown keys {unknown}")
    approach = transfer.get("approach", "combined")
    if approach not in APPROACHES:
        raise ValueError(f"transfer approach {approach!r}; expected one of {APPROACHES}")
    strategy = Strategy(
        transfer.get("strategy", "linear_probe"), float(transfer.get("lr_factor", DEFAULT_LR_FACTOR))
    )
    run_ids = list(transfer.get("sources") or [])
    if not run_ids:
        raise ValueError("TrainConfig.transfer['sources'] lists no source runs")
    if config.task != "classification":
        raise ValueError(f"transfer targets classification; this run's task is {config.task!r}")
    task = "classification" if approach == "pretrained" else "regression"
    sources = select_sources([load_source(r, store, task) for r in run_ids], approach)
    for source in sources:
        _check_compatible(source, config)
    assert_no_leakage([s.records for s in sources], target_records(config))
    model = build_transfer_model(sources, n_leads, n_outputs, classes if approach == "pretrained" else None)
    model.train()
    strategy.on_epoch_start(0, model)
    return model, strategy


__all__ = [
    "APPROACHES",
    "STRATEGIES",
    "LeakageError",
    "Source",
    "Strategy",
    "assert_no_leakage",
    "build_transfer_model",
    "load_source",
    "prepare",
    "select_sources",
    "target_records",
]
