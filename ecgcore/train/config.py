"""The one description of a training run: :class:`TrainConfig`.

A config is plain data (JSON-able through :meth:`TrainConfig.to_dict`), so the command line, the
run store, the worker process and the dashboard all pass the same thing around, and
:meth:`TrainConfig.key` identifies runs that would train the same model on the same data.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ecgcore.vocab import LEADS_8, TARGET_KEYS, parse_leads, parse_targets

TASKS = ("regression", "classification")
LABEL_MODES = ("single", "multi")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("onecycle", "exponential", "plateau", "none")
LOSSES = ("l1", "mse")
NORMALIZATIONS = ("zscore", "minmax", "train_standardize", "none")
SUBSETS = (None, "A", "B")
#: Fields that change how fast or where a run trains, not what it learns; left out of :meth:`TrainConfig.key`.
_NOT_IN_KEY = ("device", "compile")

#: Transfer approaches (:mod:`ecgcore.train.transfer` says what each builds).
APPROACHES = ("combined", "qrs", "pretrained", "continue")
#: Which layer groups train when: head only, one more group from the top per epoch, all at falling rates.
STRATEGIES = ("linear_probe", "gradual_unfreeze", "discriminative")
#: The sources' trained backbones, or the same architecture randomly initialised (the same-size control).
INITS = ("pretrained", "random")
#: ULMFiT's factor between the learning rates of neighbouring layer groups.
DEFAULT_LR_FACTOR = 2.6


@dataclass(frozen=True)
class TransferConfig:
    """How a run starts from finished source runs (:func:`ecgcore.train.transfer.prepare`): a classification
    run from their backbones, or (``continue``) any run from another run's weights.

    Attributes
    ----------
    sources
        Run ids of the source runs in the run store (until an experiment resolves them: spec names).
    approach
        One of :data:`APPROACHES`: ``"combined"`` (every source's backbone side by side), ``"qrs"`` (the
        QRS run's backbone), ``"pretrained"`` (one classification run's backbone, and its head when the
        classes match) or ``"continue"`` (one finished run of the same task on the same data and splits:
        this run's model, all of it starting from that run's weights; a hyperparameter study's later
        stage warm-started from an earlier stage's best run).
    strategy
        One of :data:`STRATEGIES`: ``"linear_probe"`` (head only), ``"gradual_unfreeze"`` (ULMFiT: one
        more group from the top each epoch) or ``"discriminative"`` (full fine-tuning, group ``k`` below
        the head at ``lr / lr_factor**k``).
    lr_factor
        ``discriminative``'s factor between neighbouring groups' learning rates, >= 1 (1: one rate).
    init
        One of :data:`INITS`: ``"random"`` keeps the transferred architecture but none of its weights.

    The run store keeps a config as JSON: :meth:`from_dict` reads the dict the field held before it was
    typed (keys left out take the defaults), :meth:`to_dict` writes every key in this order.
    """

    sources: tuple[str, ...]
    approach: str = "combined"
    strategy: str = "linear_probe"
    lr_factor: float = DEFAULT_LR_FACTOR
    init: str = "pretrained"

    def __post_init__(self) -> None:
        sources = self.sources
        if isinstance(sources, str) or not isinstance(sources, (list, tuple)):
            raise ValueError(f"TrainConfig.transfer.sources={sources!r}; expected a list of source run ids")
        if not sources:
            raise ValueError("TrainConfig.transfer.sources=[]; expected at least one source run id")
        for run_id in sources:
            if not isinstance(run_id, str) or not run_id.strip():
                raise ValueError(f"TrainConfig.transfer.sources holds {run_id!r}; expected run ids (text)")
        object.__setattr__(self, "sources", tuple(sources))
        choices = {"approach": APPROACHES, "strategy": STRATEGIES, "init": INITS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"TrainConfig.transfer.{name}={getattr(self, name)!r}; expected one of {allowed}"
                )
        factor = self.lr_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor):
            raise ValueError(f"TrainConfig.transfer.lr_factor={factor!r}; expected a finite number >= 1")
        if factor < 1.0:
            raise ValueError(
                f"TrainConfig.transfer.lr_factor={factor!r}; expected >= 1 (lower layers learn slower)"
            )
        object.__setattr__(self, "lr_factor", float(factor))
        if self.approach == "continue" and len(self.sources) != 1:
            raise ValueError(
                f"TrainConfig.transfer.sources={list(self.sources)}; approach 'continue' takes one source run"
            )
        if self.approach == "continue" and self.init != "pretrained":
            raise ValueError(
                f"TrainConfig.transfer.init={self.init!r}; approach 'continue' starts from the source's weights"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TransferConfig:
        """Read the JSON form (old runs' dicts too: keys left out take the defaults); unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ValueError(f"TrainConfig.transfer={d!r}; expected a JSON object such as {_EXAMPLE}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"TrainConfig.transfer has unknown keys {unknown}; expected some of {known}")
        if "sources" not in d:
            raise ValueError(f"TrainConfig.transfer has no 'sources'; expected e.g. {_EXAMPLE}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form: every key, in field order."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    def key_dict(self) -> dict[str, Any]:
        """The form :meth:`TrainConfig.key` hashes: ``lr_factor`` and ``init`` only when not the default.

        Before this class, transfer settings were dicts that named ``sources``, ``approach`` and
        ``strategy`` and added ``lr_factor`` / ``init`` only to change them (the experiments, the Train
        page); hashing that form keeps the keys of those runs, so they are still found and reused.
        """
        out = self.to_dict()
        defaults = {f.name: f.default for f in fields(self)}
        for name in ("lr_factor", "init"):
            if out[name] == defaults[name]:
                del out[name]
        return out


_EXAMPLE = '{"sources": ["RUN_ID"], "approach": "qrs", "strategy": "linear_probe"}'


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes
    ----------
    task
        ``"regression"`` (interval targets) or ``"classification"`` (PTB-XL superclasses).
    targets
        Regression targets, a subset of :data:`ecgcore.vocab.TARGET_KEYS`.
    label_mode
        Classification: ``"single"`` (softmax over records with exactly one superclass) or
        ``"multi"`` (sigmoid + BCE over records with at least one superclass).
    data
        Source spec for :func:`ecgcore.data.open_source` (``"ptbxl:DIR"``, ``"deepfake:DIR"`` ...).
    subset, split_seed
        ``"A"`` / ``"B"``: keep one PTB-XL half (:func:`ecgcore.data.ptbxl_halves` with ``split_seed``).
    train_fraction, max_records
        Seeded subsampling of the training rows / of all records (quick presets, learning curves).
    lr_gamma
        Per-epoch decay factor of the ``"exponential"`` schedule.
    monitor
        Validation metric for early stopping and the best checkpoint: ``"auto"`` (validation loss),
        ``"val_loss"``, ``"mae"`` (the unitless mean over targets of MAE / training SD) or ``"auc"`` (macro AUC).
    transfer
        :class:`TransferConfig` (a dict in its JSON form is read with :meth:`TransferConfig.from_dict`):
        start from finished source runs, handled by :func:`ecgcore.train.transfer.prepare`.
    representation
        What the model reads, by name in :data:`ecgcore.data.inputs.INPUTS` (``"signal"``: the cache's
        preprocessed signals).
    """

    task: str = "regression"
    targets: tuple[str, ...] = TARGET_KEYS
    label_mode: str = "single"
    data: str = ""
    subset: str | None = None
    split_seed: int = 0
    train_fraction: float = 1.0
    max_records: int | None = None
    model: str = "inception1d"
    model_kwargs: dict = field(default_factory=dict)
    leads: tuple[str, ...] = LEADS_8
    fs: float = 500.0
    duration: float = 10.0
    normalize: str = "zscore"
    bandpass: bool = True
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    lr_gamma: float = 0.95
    loss: str = "l1"
    grad_clip: float | None = 1.0
    amp: bool = True
    compile: bool = False
    patience: int | None = None
    monitor: str = "auto"
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    transfer: TransferConfig | None = None
    representation: str = "signal"

    def __post_init__(self) -> None:
        self.targets = parse_targets(self.targets)
        self.leads = parse_leads(self.leads)
        self.fs = float(self.fs)
        self.duration = float(self.duration)
        if isinstance(self.transfer, Mapping):
            self.transfer = TransferConfig.from_dict(self.transfer) if self.transfer else None
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value is not allowed."""
        choices = {
            "task": TASKS,
            "label_mode": LABEL_MODES,
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "loss": LOSSES,
            "normalize": NORMALIZATIONS,
            "subset": SUBSETS,
            "monitor": ("auto", "val_loss", "mae", "auc"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r}; expected one of {allowed}")
        if (self.monitor == "mae" and self.task != "regression") or (
            self.monitor == "auc" and self.task != "classification"
        ):
            raise ValueError(f"TrainConfig.monitor={self.monitor!r} does not apply to task {self.task!r}")
        if self.transfer is not None:
            if not isinstance(self.transfer, TransferConfig):
                raise ValueError(
                    f"TrainConfig.transfer={self.transfer!r}; expected a TransferConfig or a dict"
                )
            if self.task != "classification" and self.transfer.approach != "continue":
                raise ValueError(
                    f"TrainConfig.transfer.approach={self.transfer.approach!r} targets classification; "
                    f"this run's task is {self.task!r}"
                )
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"TrainConfig.train_fraction={self.train_fraction}; expected 0 < fraction <= 1")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)}; expected a positive integer")
        if self.max_records is not None and self.max_records < 3:
            raise ValueError(
                f"TrainConfig.max_records={self.max_records}; expected at least 3 (train, val, test)"
            )
        for name in ("lr", "fs", "duration"):
            if getattr(self, name) <= 0:  # NaN and inf: ecgcore.train.validate names them
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r}; expected a positive number")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; expected some of {sorted(known)}")
        return cls(**d)

    def preprocessing(self):
        """The :class:`ecgcore.data.Preprocessing` this run's inputs go through."""
        from ecgcore.data import Preprocessing

        return Preprocessing(
            leads=self.leads,
            fs=self.fs,
            duration=self.duration,
            bandpass=self.bandpass,
            normalize=self.normalize,
        )

    def key(self) -> str:
        """A stable hash of the fields that decide what the run learns (not device or compile)."""
        relevant = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_KEY}
        if self.transfer is not None:
            relevant["transfer"] = self.transfer.key_dict()
        if (
            relevant["representation"] == "signal"
        ):  # the default keeps the keys of runs from before it existed
            del relevant["representation"]
        blob = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
