"""The reproduction experiments as data: which runs, on which data, with which settings.

An :class:`Experiment` turns a :class:`Preset` and the user's :class:`DataSources` into a list of
:class:`RunSpec` (a named :class:`~ecgcore.train.config.TrainConfig` plus the labels of its table
row). Transfer runs name the specs whose finished runs they start from; :mod:`.planning` fills in
the run ids once those exist, so a reused source gives the same transfer configuration (and key).

Experiments
-----------
``table1``
    Interval regression (HR, QRS, PR, QT), RNN / LSTM / CNN / ViT / InceptionTime ("1D-CNN"),
    on DeepFake ECGs (generated when no folder is given), train and validation MAE.
``table2``
    Single-label (softmax) 5-superclass classification on PTB-XL, the same five models, train and
    validation accuracy and macro AUC.
``transfer``
    InceptionTime classifier on PTB-XL-B trained from scratch versus started from regression
    backbones: approach 1 ("combined", all four interval backbones) and approach 2 ("qrs", the QRS
    backbone), each with linear probe, gradual unfreezing and discriminative fine-tuning, in two
    settings: regression on PTB-XL-A (within PTB-XL) and regression on DeepFake (synthetic to real).
``fractions``
    Fine-tuned (DeepFake regression -> PTB-XL-B, approach 1, discriminative learning rates) versus
    from scratch on 10, 25, 50 and 100 % of the PTB-XL-B training split.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ecgcore.data import format_spec
from ecgcore.experiments.published import PUBLISHED_TRAINING, table1_value, table2_value
from ecgcore.paths import generated_dir
from ecgcore.train.config import TrainConfig, TransferConfig
from ecgcore.vocab import LEADS_8, TARGET_KEYS

#: The published DeepFake set (121,977 ECGs) the seed study trained on (its code/datasets/deepfake_ecg/download.sh).
DEEPFAKE_URL = "https://osf.io/6hved/"
#: The five architectures the seed study compared, in its table order.
MODELS: tuple[str, ...] = ("rnn", "lstm", "cnn", "vit", "inception1d")
#: The architecture the seed study transferred (its best model).
TRANSFER_MODEL = "inception1d"
APPROACHES: tuple[str, ...] = ("combined", "qrs")
STRATEGIES: tuple[str, ...] = ("linear_probe", "gradual_unfreeze", "discriminative")
FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
#: Transfer settings: where the regression backbones are trained.
SETTINGS: dict[str, str] = {
    "ptbxl": "regression on PTB-XL-A, classification on PTB-XL-B",
    "deepfake": "regression on DeepFake, classification on PTB-XL-B",
}


@dataclass(frozen=True)
class Preset:
    """How big and how long: the same experiment at a different scale.

    Attributes
    ----------
    per_target:
        One regression model per interval, as the seed study trained them; otherwise one model
        predicting all four (plus a QRS-only model where approach 2 needs one).
    deepfake_n:
        How many DeepFake ECGs to generate when the user gives no DeepFake folder.
    max_records:
        Cap on the records a run uses (``TrainConfig.max_records``); None uses all.
    """

    name: str
    description: str
    fs: float
    epochs: int
    batch_size: int
    lr: float
    deepfake_n: int
    max_records: int | None
    per_target: bool
    leads: tuple[str, ...] = LEADS_8
    optimizer: str = "adamw"
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    lr_gamma: float = 0.95
    grad_clip: float | None = 1.0
    patience: int | None = None
    classification_monitor: str = "auto"  #: "auto" (validation loss) or "auc"
    normalize: str = "zscore"
    amp: bool = True
    model_kwargs: Mapping[str, Mapping] = field(default_factory=dict)
    strategies: tuple[str, ...] = STRATEGIES
    fractions: tuple[float, ...] = FRACTIONS
    seed: int = 0
    seeds: int = 1  #: training seeds per run (seed, seed + 1, ...); the splits stay those of ``seed``

    def settings(self) -> dict:
        """The settings that decide the numbers, for the output's header and files."""
        return {
            "preset": self.name,
            "fs_hz": self.fs,
            "leads": ",".join(self.leads),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "weight_decay": self.weight_decay,
            "schedule": self.schedule,
            "lr_gamma": self.lr_gamma,
            "grad_clip": self.grad_clip,
            "patience": self.patience,
            "classification_monitor": self.classification_monitor,
            "normalize": self.normalize,
            "max_records": self.max_records,
            "deepfake_generated": self.deepfake_n,
            "regression_models": "one per interval" if self.per_target else "one 4-interval model",
            "model_kwargs": {k: dict(v) for k, v in self.model_kwargs.items()},
            "transfer_strategies": list(self.strategies),
            "train_fractions": list(self.fractions),
            "seed": self.seed,
            "seeds": self.seeds,
        }

    def describe(self) -> str:
        """A one-paragraph statement of the settings, printed above every table."""
        s = self.settings()
        cap = f"at most {s['max_records']} records per run" if s["max_records"] else "full datasets"
        stop = f" (early stopping after {self.patience} epochs without improvement)" if self.patience else ""
        kwargs = (
            "; ".join(f"{m}: {v}" for m, v in s["model_kwargs"].items() if v) or "the registry's defaults"
        )
        return (
            f"preset '{self.name}': {self.description} {s['fs_hz']:g} Hz, {len(self.leads)} leads "
            f"({s['leads']}), {'up to ' if self.patience else ''}{s['epochs']} epochs{stop}, batch "
            f"{s['batch_size']}, lr {s['lr']:g} ({s['optimizer']}, {s['schedule']} schedule), {cap}, regression "
            f"models: {s['regression_models']}; without --data deepfake:DIR a DeepFake set of "
            f"{s['deepfake_generated']} records is generated (the study used the published set, "
            f"{DEEPFAKE_URL}); model sizes: {kwargs}; "
            + (
                f"seed {s['seed']}."
                if self.seeds == 1
                else f"{self.seeds} training seeds ({self.seed}-{self.seed + self.seeds - 1}), splits of seed {self.seed}."
            )
        )


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        name="quick",
        description="a small CPU-sized version, for checking the pipeline, not the published values:",
        fs=100.0,
        epochs=3,
        batch_size=32,
        lr=3e-3,
        # 2,000 generated records (train ~1,600 / val ~200 / test ~200), not 500: with 45 test records the
        # models' 95 % intervals overlapped each other and the baseline's; more records, not more epochs
        deepfake_n=2000,
        max_records=2000,
        per_target=False,
        # published widths: InceptionTime 0.47 GMAC per 100 Hz sample (model_stats), ~25 s per step of 32 on
        # 2 busy cores; 16 filters: 0.12 GMAC
        model_kwargs={
            "inception1d": {"n_filters": 16, "bottleneck": 16},
            "rnn": {"hidden": 64},
            "lstm": {"hidden": 64},
            # the PTB-XL -> G12EC study's models, narrowed for CPU
            "xresnet1d101": {"blocks_per_stage": (2, 2, 2, 2), "width": 16},
            "resnet1d_wang": {"width": 32},
        },
    ),
    "paper": Preset(
        name="paper",
        description="the seed study's settings (needs a GPU and the full datasets):",
        fs=500.0,
        epochs=int(PUBLISHED_TRAINING["max_epochs"]),
        batch_size=int(PUBLISHED_TRAINING["batch_size"]),
        lr=float(PUBLISHED_TRAINING["lr"]),
        optimizer=str(PUBLISHED_TRAINING["optimizer"]),
        weight_decay=0.0,
        schedule=str(PUBLISHED_TRAINING["schedule"]),
        lr_gamma=float(PUBLISHED_TRAINING["gamma"]),
        grad_clip=None,
        patience=int(PUBLISHED_TRAINING["patience"]),
        classification_monitor="auc",
        normalize="minmax",
        deepfake_n=20000,
        max_records=None,
        per_target=True,
        seed=int(PUBLISHED_TRAINING["seed"]),
    ),
    "tiny": Preset(
        name="tiny",
        description="a smoke test of the pipeline with toy-sized models (its numbers mean nothing):",
        fs=100.0,
        epochs=1,
        batch_size=16,
        lr=3e-3,
        deepfake_n=40,
        max_records=None,
        per_target=False,
        amp=False,
        model_kwargs={
            "rnn": {"hidden": 8, "n_layers": 1, "stem_widths": (8, 8), "head_hidden": 16},
            "lstm": {"hidden": 8, "n_layers": 1, "stem_widths": (8, 8), "head_hidden": 16},
            "cnn": {"widths": (8, 8), "head_hidden": 16},
            "vit": {"patch_size": 25, "dim": 16, "depth": 1, "n_heads": 2, "mlp_dim": 32, "head_hidden": 16},
            "inception1d": {
                "depth": 3,
                "n_filters": 4,
                "bottleneck": 4,
                "kernel_sizes": (9, 5, 3),
                "head_hidden": 16,
            },
            "xresnet1d101": {
                "blocks_per_stage": (1, 1),
                "stem_widths": (8, 8),
                "width": 4,
                "head_hidden": 16,
            },
            "resnet1d_wang": {"width": 8, "n_blocks": 2, "head_hidden": 16},
            "cnn2d": {"widths": (4, 4), "head_hidden": 16},
            "alexnet2d": {"base": 4, "dense": (16, 8)},
        },
        strategies=("linear_probe",),
        fractions=(0.5, 1.0),
    ),
}


def get_preset(preset: str | Preset) -> Preset:
    """Return ``preset`` itself or the named preset."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[preset]


@dataclass(frozen=True)
class DataSources:
    """The user's datasets. ``deepfake`` None means: generate a DeepFake set of the preset's size."""

    ptbxl: Path | None = None
    ptbxl_plus: Path | None = None
    deepfake: Path | None = None
    #: A PhysioNet/CinC Challenge folder holding G12EC, and which of its databases form "G12EC".
    g12ec: Path | None = None
    g12ec_db: str = "Georgia"
    chapman: Path | None = None

    def deepfake_dir(self, preset: Preset) -> Path:
        """The DeepFake folder the regression runs read (the generated one when none is given)."""
        if self.deepfake is not None:
            return Path(self.deepfake)
        return generated_dir() / f"deepfake-{preset.deepfake_n}-seed{preset.seed}"

    def deepfake_spec(self, preset: Preset) -> str:
        return format_spec("deepfake", self.deepfake_dir(preset))

    def ptbxl_spec(self, plus_dir: Path | None = None) -> str:
        """The PTB-XL source spec, with interval labels from ``plus_dir`` when given."""
        if self.ptbxl is None:
            raise ValueError("this experiment needs the full PTB-XL (--data ptbxl:DIR)")
        return format_spec("ptbxl", self.ptbxl, plus_dir=plus_dir)

    def ptbxl_labels_spec(self, labels: str) -> str:
        """PTB-XL with the label set ``labels`` as its (multi-label) classes."""
        if self.ptbxl is None:
            raise ValueError("this experiment needs the full PTB-XL (--data ptbxl:DIR)")
        return format_spec("ptbxl", self.ptbxl, labels=labels)

    def chapman_spec(self) -> str:
        """The Chapman-Shaoxing (figshare layout) source spec."""
        if self.chapman is None:
            raise ValueError("this experiment needs Chapman-Shaoxing (--data chapman:DIR)")
        return format_spec("chapman", self.chapman)

    def g12ec_spec(self, labels: str) -> str:
        """G12EC from the Challenge folder (only its ``g12ec_db`` databases) with the label set ``labels``."""
        if self.g12ec is None:
            raise ValueError("this experiment needs G12EC in the Challenge layout (--data challenge:DIR)")
        return format_spec("challenge", self.g12ec, db=self.g12ec_db, labels=labels)

    def measured_dir(self, preset: Preset) -> Path | None:
        """Where our measured PTB-XL-A intervals go when no PTB-XL+ is given (None when it is)."""
        if self.ptbxl is None or self.ptbxl_plus is not None:
            return None
        digest = hashlib.sha256(str(Path(self.ptbxl).resolve()).encode()).hexdigest()[:10]
        return generated_dir() / f"ptbxl-measured-{digest}-{preset.fs:g}hz-seed{preset.seed}"

    def ptbxl_regression_spec(self, preset: Preset) -> str:
        """PTB-XL as a regression source: interval labels from PTB-XL+ when given, else our measurement."""
        return self.ptbxl_spec(plus_dir=self.ptbxl_plus or self.measured_dir(preset))


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment.

    ``config.transfer.sources`` holds the *names* of other specs (``sources``) until
    :func:`resolve` replaces them with the run ids of their finished runs.
    """

    name: str
    config: TrainConfig
    row: Mapping[str, object] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    in_table: bool = True


#: How a spec trained with another seed is named: ``<name>@seed<seed>``.
SEED_MARK = "@seed"


def base_name(name: str) -> str:
    """The spec name without its ``@seed<n>`` suffix: the table row its runs share."""
    return name.split(SEED_MARK, 1)[0]


def build_specs(experiment: Experiment, preset: Preset, sources: DataSources) -> list[RunSpec]:
    """The experiment's specs for every training seed of ``preset`` (``preset.seeds`` of them).

    The first seed's specs are the experiment's own (so their runs are reused as before); each
    further seed ``s`` copies them as ``<name>@seed<s>`` with ``config.seed = s`` and the same
    splits (``split_seed`` unchanged), its transfer sources being the same seed's source runs.
    """
    specs = experiment.build(preset, sources)
    out = list(specs)
    for seed in range(preset.seed + 1, preset.seed + preset.seeds):
        mark = f"{SEED_MARK}{seed}"
        out += [
            dataclasses.replace(
                spec,
                name=spec.name + mark,
                config=dataclasses.replace(spec.config, seed=seed),
                sources=tuple(name + mark for name in spec.sources),
            )
            for spec in specs
        ]
    return out


def resolve(spec: RunSpec, run_ids: Mapping[str, str]) -> TrainConfig:
    """The spec's configuration with its source names replaced by run ids.

    Raises
    ------
    KeyError
        If a source has no finished run yet.
    """
    if not spec.sources:
        return spec.config
    sources = tuple(run_ids[name] for name in spec.sources)
    if spec.config.transfer is None:
        raise ValueError(
            f"spec {spec.name!r} names sources {list(spec.sources)} but has no transfer settings"
        )
    return dataclasses.replace(
        spec.config, transfer=dataclasses.replace(spec.config.transfer, sources=sources)
    )


#: The published number of a table row: ``(row labels, target or None, metric, split) -> value or None``.
PublishedFn = Callable[[Mapping[str, object], str | None, str, str], float | None]
#: A note a reader needs beside one experiment's table, given the preset and the data.
NoteFn = Callable[[Preset, DataSources], str]
#: An experiment's own table rows for one run: ``(spec, run summary or None, run id or None, runs dir)`` ->
#: dicts with ``metric``, ``ours_<split>``, ``baseline_<split>``, ``published_<split>`` and optionally
#: ``ci_low_<split>`` / ``ci_high_<split>`` (an interval of ``ours``).
RowsFn = Callable[["RunSpec", Mapping | None, str | None, Path | None], list[dict]]
#: An experiment's own data check (raises :class:`ecgcore.experiments.prepare.DataRequired` or a leakage error).
CheckFn = Callable[[DataSources], None]
#: Table order of the targets (the seed study's: HR, QRS, PR, QT).
TARGET_ORDER: tuple[str, ...] = ("hr", "qrs", "pr", "qt")


#: What a classification table shows unless its experiment says otherwise (``Experiment.metrics``).
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "auc")


@dataclass(frozen=True)
class Experiment:
    """A reproducible table: its runs come from ``build(preset, sources)``; how it is shown is data too.

    Attributes
    ----------
    row_fields:
        The labels that name a table row.
    published:
        The seed study's number for a row, or None where the study published nothing for this table.
    notes:
        Notes that belong to this table only (the notes every table carries are in :mod:`.tables`).
    order_by:
        Fields the table's rows are sorted by (stably): ``target`` in :data:`TARGET_ORDER`, any other
        field in the order its values first appear in the plan. Empty: the plan's order.
    splits:
        The splits whose metrics the table shows, in column order.
    check:
        The experiment's own data check, run by ``check_data`` (None: the PTB-XL check of ``needs_ptbxl``).
    rows:
        Builds the table rows of one run (None: ``metrics`` / MAE from the run summary).
    metrics:
        A classification table's metrics, one table row each: ``accuracy``, ``auc`` (macro) and the
        per-class rates of :data:`ecgcore.train.metrics.RATES`, macro (``"f1"``) or of one class
        (``"f1:AFIB"``).
    study:
        Which study the experiment reproduces: ``"seed"`` (the notes and citation of the seed study) or
        another study's key, whose citation is in ``citation``.
    """

    name: str
    title: str
    task: str  #: "regression" | "classification": what the table's metrics are
    needs_ptbxl: bool
    description: str
    build: Callable[[Preset, DataSources], list[RunSpec]]
    row_fields: tuple[str, ...] = ("model",)
    published: PublishedFn | None = None
    notes: tuple[NoteFn, ...] = ()
    order_by: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "val", "test")
    check: CheckFn | None = None
    rows: RowsFn | None = None
    study: str = "seed"
    citation: Mapping[str, str] | None = None
    metrics: tuple[str, ...] = CLASSIFICATION_METRICS


def _config(preset: Preset, *, task: str, data: str, model: str, **overrides) -> TrainConfig:
    """A TrainConfig with the preset's shared settings."""
    kwargs = dict(
        task=task,
        data=data,
        model=model,
        model_kwargs=dict(preset.model_kwargs.get(model, {})),
        leads=tuple(preset.leads),
        fs=preset.fs,
        normalize=preset.normalize,
        epochs=preset.epochs,
        batch_size=preset.batch_size,
        lr=preset.lr,
        optimizer=preset.optimizer,
        weight_decay=preset.weight_decay,
        schedule=preset.schedule,
        lr_gamma=preset.lr_gamma,
        grad_clip=preset.grad_clip,
        patience=preset.patience,
        amp=preset.amp,
        max_records=preset.max_records,
        seed=preset.seed,
        split_seed=preset.seed,
    )
    if task == "classification":
        kwargs.update(label_mode="single", monitor=preset.classification_monitor)
    kwargs.update(overrides)
    return TrainConfig(**kwargs)


def _regression_specs(
    preset: Preset,
    data: str,
    prefix: str,
    model: str,
    subset: str | None,
    in_table: bool,
    need_qrs: bool = False,
) -> tuple[list[RunSpec], list[str], str | None]:
    """Regression runs of ``model`` on ``data``.

    Returns the specs, the names of the specs that together cover all four targets (approach 1's
    sources) and the name of the QRS-only spec (approach 2's source; None when not asked for).
    """
    if preset.per_target:
        groups = [(t,) for t in TARGET_KEYS]
    else:
        groups = [TARGET_KEYS] + ([("qrs",)] if need_qrs else [])
    specs = []
    for targets in groups:
        name = f"{prefix}/{model}/{'+'.join(targets)}"
        config = _config(preset, task="regression", data=data, model=model, targets=targets, subset=subset)
        specs.append(RunSpec(name, config, {"model": model, "targets": ",".join(targets)}, in_table=in_table))
    combined = [s.name for s in specs] if preset.per_target else [specs[0].name]
    qrs = next((s.name for s in specs if tuple(s.config.targets) == ("qrs",)), None)
    return specs, combined, qrs


def _table1(preset: Preset, sources: DataSources) -> list[RunSpec]:
    specs: list[RunSpec] = []
    for model in MODELS:
        specs += _regression_specs(preset, sources.deepfake_spec(preset), "table1", model, None, True)[0]
    return specs


def _table2(preset: Preset, sources: DataSources) -> list[RunSpec]:
    data = sources.ptbxl_spec()
    return [
        RunSpec(
            f"table2/{model}",
            _config(preset, task="classification", data=data, model=model),
            {"model": model},
        )
        for model in MODELS
    ]


def _source_specs(
    preset: Preset, sources: DataSources, setting: str
) -> tuple[list[RunSpec], dict[str, list[str]]]:
    """The regression runs of one transfer setting and, per approach, the names of its sources."""
    if setting == "ptbxl":
        data, subset = sources.ptbxl_regression_spec(preset), "A"
    else:
        data, subset = sources.deepfake_spec(preset), None
    specs, combined, qrs = _regression_specs(
        preset, data, f"source-{setting}", TRANSFER_MODEL, subset, in_table=False, need_qrs=True
    )
    return specs, {"combined": combined, "qrs": [qrs]}


def _target_config(
    preset: Preset, sources: DataSources, fraction: float, transfer: TransferConfig | None = None
) -> TrainConfig:
    """The classification run on PTB-XL-B (scratch, transferred or control) with ``fraction`` of its training split."""
    return _config(
        preset,
        task="classification",
        data=sources.ptbxl_spec(),
        model=TRANSFER_MODEL,
        subset="B",
        train_fraction=fraction,
        transfer=transfer,
    )


def _scratch(preset: Preset, sources: DataSources, fraction: float = 1.0) -> RunSpec:
    config = _target_config(preset, sources, fraction)
    row = {"setting": "scratch", "approach": "-", "strategy": "-", "fraction": fraction}
    return RunSpec(f"scratch/{fraction:g}", config, row)


def _transferred(
    preset: Preset,
    sources: DataSources,
    setting: str,
    approach: str,
    strategy: str,
    source_names: list[str],
    fraction: float = 1.0,
) -> RunSpec:
    transfer = TransferConfig(tuple(source_names), approach, strategy)
    config = _target_config(preset, sources, fraction, transfer)
    row = {"setting": setting, "approach": approach, "strategy": strategy, "fraction": fraction}
    return RunSpec(f"transfer/{setting}/{approach}/{strategy}/{fraction:g}", config, row, tuple(source_names))


def _random_init_control(
    preset: Preset, sources: DataSources, setting: str, approach: str, source_names: list[str]
) -> RunSpec:
    """The transferred model's exact architecture and size, randomly initialised, every layer at the full lr.

    It separates what the pretrained weights bring from what the bigger model brings: approach 1
    concatenates several backbones, so it has several times the plain scratch model's parameters.
    """
    transfer = TransferConfig(tuple(source_names), approach, "discriminative", lr_factor=1.0, init="random")
    config = _target_config(preset, sources, 1.0, transfer)
    row = {
        "setting": f"{setting}, random init",
        "approach": approach,
        "strategy": "all layers, same lr",
        "fraction": 1.0,
    }
    return RunSpec(f"control/{setting}/{approach}", config, row, tuple(source_names))


def _transfer(preset: Preset, sources: DataSources) -> list[RunSpec]:
    specs = [_scratch(preset, sources)]
    for setting in SETTINGS:
        source_specs, by_approach = _source_specs(preset, sources, setting)
        specs += source_specs
        for approach in APPROACHES:
            for strategy in preset.strategies:
                specs.append(
                    _transferred(preset, sources, setting, approach, strategy, by_approach[approach])
                )
            specs.append(_random_init_control(preset, sources, setting, approach, by_approach[approach]))
    return specs


def _fractions(preset: Preset, sources: DataSources) -> list[RunSpec]:
    source_specs, by_approach = _source_specs(preset, sources, "deepfake")
    specs = [s for s in source_specs if s.name in by_approach["combined"]]
    for fraction in preset.fractions:
        specs.append(_scratch(preset, sources, fraction))
        specs.append(
            _transferred(
                preset, sources, "deepfake", "combined", "discriminative", by_approach["combined"], fraction
            )
        )
    return specs


def _deepfake_truth_note(preset: Preset, sources: DataSources) -> str:
    if sources.deepfake:
        return f"DeepFake ground truth: {sources.deepfake}'s ground-truth CSV."
    return (
        f"DeepFake ground truth: the {preset.deepfake_n} generated ECGs are labelled by our own interval "
        "measurement (ecgcore.measure); the published DeepFake set comes with its own ground-truth file. "
        "The MAEs are comparable in scale, not one to one."
    )


def _unpublished_note(preset: Preset, sources: DataSources) -> str:
    return "The seed study's Tables 1-2 hold no numbers for this experiment: the published columns are empty."


def _transfer_deviations_note(preset: Preset, sources: DataSources) -> str:
    """Every way this transfer comparison differs from the seed study's, and what the control row is."""
    combined = (
        "four single-target backbones concatenated, as the study did"
        if preset.per_target
        else "ONE backbone trained on all four intervals (the study concatenated four single-target backbones)"
    )
    unfreeze = (
        f"gradual unfreezing over {preset.epochs} epochs reaches only the head and the top "
        f"{max(preset.epochs - 1, 0)} layer group(s), never the whole network"
        if "gradual_unfreeze" in preset.strategies
        else "gradual unfreezing is not run in this preset"
    )
    return (
        "Deviations from the seed study: approach 1 ('combined') is " + combined + "; the concatenated model "
        "has several times the parameters of the plain scratch InceptionTime, so each setting also has a "
        "'random init' control: the transferred model's exact architecture and size, randomly initialised, "
        "every layer trained at the same learning rate; compare transfer with that row, not only with "
        "'scratch'. " + unfreeze.capitalize() + ". The study trained with data augmentation; no preset here "
        "does (TrainConfig.augment is off). Splits are PTB-XL's folds within the patient-disjoint halves A/B, "
        "not the study's random record splits. Gaps are on test."
    )


def _ptbxl_labels_note(preset: Preset, sources: DataSources) -> str:
    return "PTB-XL interval labels (within-PTB-XL backbones): " + (
        f"PTB-XL+ ({sources.ptbxl_plus})."
        if sources.ptbxl_plus
        else "measured by ecgcore.measure on PTB-XL-A (no PTB-XL+ given)."
    )


_EXPERIMENTS: dict[str, Experiment] = dict(
    {
        "table1": Experiment(
            "table1",
            "Table 1: interval regression, model comparison (MAE)",
            "regression",
            False,
            "RNN / LSTM / CNN / ViT / 1D-CNN (InceptionTime) x HR / QRS / PR / QT on DeepFake ECGs, whose "
            "ground truth is our own interval measurement; train and validation MAE.",
            _table1,
            published=table1_value,
            notes=(_deepfake_truth_note,),
            order_by=("model", "target"),  # one row per model and target, in the study's order
        ),
        "table2": Experiment(
            "table2",
            "Table 2: superclass classification, model comparison",
            "classification",
            True,
            "The same five models, single-label (softmax) NORM / MI / STTC / CD / HYP on PTB-XL "
            "(records with exactly one superclass; strat_fold 1-8 train, 9 validation); accuracy and macro AUC.",
            _table2,
            published=table2_value,
        ),
        "transfer": Experiment(
            "transfer",
            "Transfer from interval regression to superclass classification",
            "classification",
            True,
            "InceptionTime on PTB-XL-B from scratch versus from regression backbones: approach 1 (combined "
            "HR/PR/QRS/QT backbones) and approach 2 (QRS backbone), each by linear probe, gradual unfreezing "
            "and discriminative fine-tuning; backbones trained on PTB-XL-A (interval labels from PTB-XL+ when "
            "given, else our measurement) or on DeepFake.",
            _transfer,
            ("setting", "approach", "strategy"),
            notes=(_deepfake_truth_note, _unpublished_note, _ptbxl_labels_note, _transfer_deviations_note),
        ),
        "fractions": Experiment(
            "fractions",
            "Fine-tuned versus from scratch by training-set size",
            "classification",
            True,
            "InceptionTime on 10 / 25 / 50 / 100 % of the PTB-XL-B training split: from scratch versus "
            "fine-tuned (discriminative learning rates) from the combined DeepFake regression backbones.",
            _fractions,
            ("fraction", "setting", "approach", "strategy"),
            notes=(_deepfake_truth_note, _unpublished_note, _transfer_deviations_note),
        ),
    }
)
#: Every experiment by name, read-only; other studies' modules add theirs with :func:`register_experiment`
#: (:mod:`ecgcore.experiments` imports them, so the package always knows them all).
EXPERIMENTS: Mapping[str, Experiment] = MappingProxyType(_EXPERIMENTS)


def register_experiment(experiment: Experiment) -> Experiment:
    """Add an experiment (a name already taken by another definition is an error)."""
    previous = _EXPERIMENTS.get(experiment.name)
    if previous is not None and previous.build is not experiment.build:
        raise ValueError(f"experiment {experiment.name!r} is already defined")
    _EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def list_experiments() -> list[dict]:
    """Name, title, description and data needs of every experiment (for the Results page)."""
    return [
        {
            "name": e.name,
            "title": e.title,
            "task": e.task,
            "needs_ptbxl": e.needs_ptbxl,
            "study": e.study,
            "description": e.description,
        }
        for e in EXPERIMENTS.values()
    ]
