"""The PTB-XL -> Georgia (G12EC) transfer study as data: six experiments, their published numbers, the
data they need and the leakage check across the two datasets.

The study pretrains a multi-label classifier on PTB-XL over 18 statements the two databases share
(:data:`ecgcore.data.labels.STUDY_18`), fine-tunes it on G12EC with gradual unfreezing, and compares
with the same architecture trained on G12EC alone (test macro AUC).

Experiments (each ``python -m ecgcore reproduce NAME``; run counts for a preset with F fractions)
------------------------------------------------------------------------------------------------
``g12ec-transfer``    XResNet-101, ResNet (Wang) and InceptionTime: PTB-XL pretraining, G12EC alone, G12EC
                      fine-tuned from the pretrained model (gradual unfreezing): 9 runs.
``g12ec-fractions``   XResNet on F fractions of G12EC's training split, alone and fine-tuned: 1 + 2F runs.
``ptbxl-fractions``   XResNet pretrained on F fractions of PTB-XL's training split, fine-tuned on 10 % of
                      G12EC, and G12EC alone on that 10 %: 2F + 1 runs.
``downsampling``      PTB-XL, G12EC alone and G12EC fine-tuned at 500, 250, 100 and 50 Hz: 12 runs.
``calibration``       The XResNet runs of ``g12ec-transfer`` (reused), then temperature and Platt scaling
                      fitted on validation, ECE before / after (ecgcore.explain.calibration): 3 runs.
``frequency``         The Fourier magnitude, real and imaginary parts as inputs: PTB-XL and G12EC
                      fine-tuned each: 6 runs.

Data: the user's full PTB-XL (``--data ptbxl:DIR``) and G12EC in the Challenge layout (``--data
challenge:DIR``: the Challenge 2021 ``training/georgia`` folder or 2020's ``WFDB_Ga``, or a whole Challenge
training folder, of which only the Georgia ``E*`` records are used unless ``db=`` says otherwise). Splits:
PTB-XL's strat_fold (patient-level); G12EC has no patient ids, so its split is record-level (folds hashed
from record names). All runs use the 12 leads, whatever the preset's lead set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ecgcore.data import DatasetError, open_source
from ecgcore.data.challenge import LeakageError, check_no_shared_records
from ecgcore.experiments.definitions import (
    DataSources,
    Experiment,
    Preset,
    RunSpec,
    _config,
    register_experiment,
)
from ecgcore.experiments.prepare import DataRequired
from ecgcore.train.config import TransferConfig
from ecgcore.vocab import LEADS_12

#: The architectures the study compared, in its order, and the one the later experiments use.
MODELS: tuple[str, ...] = ("xresnet1d101", "resnet1d_wang", "inception1d")
BEST = "xresnet1d101"
RATES: tuple[float, ...] = (500.0, 250.0, 100.0, 50.0)
#: Share of G12EC's training split the PTB-XL-fractions experiment fine-tunes on.
G12EC_FINETUNE_FRACTION = 0.1
FOURIER: tuple[str, ...] = ("fft-magnitude", "fft-real", "fft-imaginary")
STRATEGY = "gradual_unfreeze"
#: The label set every run of the study trains and is evaluated on.
LABELS = "study18"
#: Fewest records each side must hold (the development samples are not datasets).
MIN_RECORDS = 20
SPLITS: tuple[str, ...] = ("val", "test")
PTBXL_HELP = (
    "PTB-XL 1.0.3 (https://physionet.org/content/ptb-xl/1.0.3/): the folder holding ptbxl_database.csv and "
    "records500/ (records100/ is enough for the tiny and quick presets, which run at 100 Hz), as "
    "--data ptbxl:DIR"
)
G12EC_HELP = (
    "G12EC (Georgia 12-lead ECG Challenge database, 10,344 records) in the PhysioNet/CinC Challenge layout: "
    "the Challenge 2021 training data's georgia/ folder (https://physionet.org/content/challenge-2021/) or "
    "2020's WFDB_Ga, as --data challenge:DIR (a whole Challenge training folder works too: its Georgia E* "
    "records are used)"
)
CITATION: Mapping[str, str] = {
    "text": "the PTB-XL -> G12EC transfer study's published macro AUCs, as quoted in ECG Lab issue 17",
    "url": "",
    "source": "issue 17",
    "note": "Only macro AUCs and trends were quoted; per-class published values are not available.",
}

# --- published numbers (test macro AUC, as quoted in issue 17) ----------------------------------------
#: (experiment, setting, model or input) -> macro AUC. The study's other results are trends (notes).
PUBLISHED: Mapping[tuple[str, str, str], float] = {
    ("g12ec-transfer", "G12EC alone", "xresnet1d101"): 0.843,
    ("g12ec-transfer", "G12EC alone", "resnet1d_wang"): 0.785,
    ("g12ec-transfer", "G12EC alone", "inception1d"): 0.685,
    ("g12ec-transfer", "PTB-XL pretraining", "xresnet1d101"): 0.947,
    ("g12ec-transfer", "G12EC fine-tuned", "xresnet1d101"): 0.916,
    ("frequency", "PTB-XL", "fft-magnitude"): 0.668,
    ("frequency", "PTB-XL", "fft-real"): 0.664,
    ("frequency", "PTB-XL", "fft-imaginary"): 0.614,
    ("frequency", "G12EC fine-tuned", "fft-magnitude"): 0.555,
    ("frequency", "G12EC fine-tuned", "fft-real"): 0.508,
}
PUBLISHED_TRENDS: Mapping[str, str] = {
    "g12ec-transfer": "Published: PTB-XL pretraining then G12EC fine-tuning 0.916 vs 0.843 for the best model "
    "trained on G12EC alone (+0.073). The quoted text does not say which architecture the 0.947 / 0.916 "
    "figures are; they are shown beside XResNet, the best model alone.",
    "g12ec-fractions": "Published trend: fine-tuned beats alone at every fraction, the gap grows as data "
    "shrinks; at 10 % the fine-tuned test AUC drops by only about 0.07.",
    "ptbxl-fractions": "Published trend: less pretraining data, lower AUC; fine-tuning still beats training "
    "alone from 25 % of PTB-XL.",
    "downsampling": "Published trend: PTB-XL's AUC stays almost the same at lower rates; G12EC's drops markedly.",
    "calibration": "The study shows reliability diagrams and Platt scaling; the ECE figures are ours only.",
    "frequency": "Published: no G12EC fine-tuned number for the imaginary part.",
}


def published_auc(experiment: str, row: Mapping) -> float:
    """The study's macro AUC for a table row (NaN where it published none)."""
    key = (experiment, str(row.get("setting")), str(row.get("input") or row.get("model")))
    return PUBLISHED.get(key, math.nan)


# --- data ---------------------------------------------------------------------------------------------
class CrossDatasetLeakage(DataRequired, LeakageError):
    """The same PTB-XL record on both sides: the data layer's leakage error, refused like missing data."""


def _needs(problem: str) -> DataRequired:
    return DataRequired(
        f"the PTB-XL -> G12EC study needs the user's PTB-XL and G12EC: {problem}\n  PTB-XL: {PTBXL_HELP}.\n"
        f"  G12EC: {G12EC_HELP}.\n  Nothing was run."
    )


def check_study_data(sources: DataSources) -> None:
    """Refuse to run without both datasets, on toy-sized folders, or when a PTB-XL record is on both sides.

    Raises
    ------
    DataRequired
        Naming the folder that is missing or wrong and where to get it.
    CrossDatasetLeakage
        (a DataRequired and a :class:`ecgcore.data.challenge.LeakageError`) when the G12EC side holds PTB-XL records (``HR*``, e.g. ``db=Georgia,PTB_XL``) that PTB-XL has too.
    """
    if sources.ptbxl is None or not (Path(sources.ptbxl) / "ptbxl_database.csv").is_file():
        raise _needs(f"{sources.ptbxl or 'no PTB-XL folder was given'} (no ptbxl_database.csv there).")
    if sources.g12ec is None or not Path(sources.g12ec).is_dir():
        raise _needs(f"{sources.g12ec or 'no Challenge folder was given'} (not a directory).")
    try:
        ptbxl = open_source(sources.ptbxl_labels_spec(LABELS))
        g12ec = open_source(sources.g12ec_spec(LABELS))
    except LeakageError:
        raise
    except DatasetError as exc:
        raise _needs(str(exc)) from exc
    for name, dataset in (("PTB-XL", ptbxl), ("G12EC", g12ec)):
        if len(dataset.index) < MIN_RECORDS:
            raise _needs(
                f"{name} {dataset.root} holds {len(dataset.index)} records, fewer than {MIN_RECORDS}."
            )
    try:
        check_no_shared_records(
            ptbxl.index, g12ec.index, "PTB-XL (pretraining) vs G12EC (fine-tuning and test)"
        )
    except LeakageError as exc:
        raise CrossDatasetLeakage(f"{exc}. Nothing was run.") from exc


# --- run specs ----------------------------------------------------------------------------------------
def _run(
    preset: Preset,
    data: str,
    name: str,
    row: dict,
    *,
    model: str = BEST,
    fraction: float = 1.0,
    fs: float | None = None,
    representation: str | None = None,
    source: str | None = None,
    in_table: bool = True,
) -> RunSpec:
    """One multi-label run over the study's classes, 12 leads (fine-tuned from the run ``source`` when given)."""
    extra: dict = {"fs": fs} if fs is not None else {}
    if representation is not None:
        extra["representation"] = representation
    if source is not None:
        extra["transfer"] = TransferConfig((source,), "pretrained", STRATEGY)
    config = _config(
        preset,
        task="classification",
        data=data,
        model=model,
        label_mode="multi",
        monitor=preset.classification_monitor,
        leads=LEADS_12,
        train_fraction=fraction,
        **extra,
    )
    return RunSpec(name, config, {"model": model, **row}, (source,) if source else (), in_table)


def _pretrained_and_fine_tuned(
    preset: Preset,
    sources: DataSources,
    suffix: str,
    row: dict,
    *,
    setting: str = "PTB-XL pretraining",
    pretrain: dict | None = None,
    finetune: dict | None = None,
) -> list[RunSpec]:
    """PTB-XL pretraining ``ptbxl/<suffix>`` and G12EC fine-tuned from it ``g12ec-finetuned/<suffix>``
    (``pretrain`` / ``finetune``: further :func:`_run` settings of each side, e.g. fraction, rate, input)."""
    name = f"ptbxl/{suffix}"
    return [
        _run(
            preset, sources.ptbxl_labels_spec(LABELS), name, {"setting": setting, **row}, **(pretrain or {})
        ),
        _run(
            preset,
            sources.g12ec_spec(LABELS),
            f"g12ec-finetuned/{suffix}",
            {"setting": "G12EC fine-tuned", **row},
            source=name,
            **(finetune or {}),
        ),
    ]


def _triple(preset: Preset, sources: DataSources, model: str = BEST, suffix: str = "", **kw) -> list[RunSpec]:
    """PTB-XL pretraining, G12EC alone and G12EC fine-tuned from it (``kw``: rate and table labels)."""
    fs = kw.pop("fs", None)
    side = {"model": model, "fs": fs}
    pretrained, fine_tuned = _pretrained_and_fine_tuned(
        preset, sources, f"{model}{suffix}", kw, pretrain=side, finetune=side
    )
    alone = _run(
        preset,
        sources.g12ec_spec(LABELS),
        f"g12ec-alone/{model}{suffix}",
        {"setting": "G12EC alone", **kw},
        **side,
    )
    return [pretrained, alone, fine_tuned]


def transfer_runs(preset: Preset, sources: DataSources) -> list[RunSpec]:
    return [spec for model in MODELS for spec in _triple(preset, sources, model)]


def g12ec_fraction_runs(preset: Preset, sources: DataSources) -> list[RunSpec]:
    ptbxl, g12ec = sources.ptbxl_labels_spec(LABELS), sources.g12ec_spec(LABELS)
    pretrained = _run(preset, ptbxl, f"ptbxl/{BEST}", {"setting": "PTB-XL pretraining"}, in_table=False)
    specs = [pretrained]
    for f in preset.fractions:
        row = {"fraction": f}
        specs.append(_run(preset, g12ec, f"g12ec-alone/{f:g}", {"setting": "G12EC alone", **row}, fraction=f))
        specs.append(
            _run(
                preset,
                g12ec,
                f"g12ec-finetuned/{f:g}",
                {"setting": "G12EC fine-tuned", **row},
                fraction=f,
                source=pretrained.name,
            )
        )
    return specs


def ptbxl_fraction_runs(preset: Preset, sources: DataSources) -> list[RunSpec]:
    g = G12EC_FINETUNE_FRACTION
    alone = _run(
        preset,
        sources.g12ec_spec(LABELS),
        "g12ec-alone",
        {"setting": "G12EC alone", "fraction": 0.0},
        fraction=g,
    )
    pairs = [
        _pretrained_and_fine_tuned(
            preset, sources, f"{f:g}", {"fraction": f}, pretrain={"fraction": f}, finetune={"fraction": g}
        )
        for f in preset.fractions
    ]
    return [alone, *(spec for pair in pairs for spec in pair)]


def downsampling_runs(preset: Preset, sources: DataSources) -> list[RunSpec]:
    return [spec for fs in RATES for spec in _triple(preset, sources, BEST, f"@{fs:g}hz", fs=fs, fs_hz=fs)]


def calibration_runs(preset: Preset, sources: DataSources) -> list[RunSpec]:
    return _triple(preset, sources, BEST)


def frequency_runs(preset: Preset, sources: DataSources) -> list[RunSpec]:
    return [
        spec
        for rep in FOURIER
        for spec in _pretrained_and_fine_tuned(
            preset,
            sources,
            rep,
            {"input": rep},
            setting="PTB-XL",
            pretrain={"representation": rep},
            finetune={"representation": rep},
        )
    ]


# --- results ------------------------------------------------------------------------------------------
def bootstrap_macro_auc(
    y: np.ndarray, probs: np.ndarray, n: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """A percentile bootstrap interval of the macro AUC over records (classes without both outcomes in a
    resample are left out of that resample's mean; NaN when no resample has any)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        rows = rng.integers(0, len(y), len(y))
        ys, ps = y[rows], probs[rows]
        aucs = [roc_auc_score(ys[:, j], ps[:, j]) for j in range(ys.shape[1]) if 0 < ys[:, j].sum() < len(ys)]
        if aucs:
            values.append(float(np.mean(aucs)))
    if not values:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _auc_rows(experiment: str):
    """The rows function of an AUC table: macro AUC (bootstrap interval on test, published value) and one
    row per class (a class without both outcomes in a split has no AUC there: its cell stays empty)."""

    def rows(spec: RunSpec, summary: Mapping | None, run_id: str | None, runs_dir: Path | None) -> list[dict]:
        metrics = (summary or {}).get("metrics") or {}
        baseline = (summary or {}).get("baseline") or {}
        macro: dict = {"metric": "auc"}
        for split in SPLITS:
            macro[f"ours_{split}"] = _num((metrics.get(split) or {}).get("auc"))
            macro[f"baseline_{split}"] = _num((baseline.get(split) or {}).get("auc"))
            macro[f"published_{split}"] = published_auc(experiment, spec.row) if split == "test" else math.nan
        macro["ci_low_test"] = macro["ci_high_test"] = math.nan
        if run_id is not None:
            y, probs = _test_predictions(run_id, runs_dir)
            macro["ci_low_test"], macro["ci_high_test"] = bootstrap_macro_auc(y, probs)
        out = [macro]
        for cls in (summary or {}).get("names") or ():
            row: dict = {"metric": f"auc:{cls}"}
            for split in SPLITS:
                row[f"ours_{split}"] = _num(((metrics.get(split) or {}).get("auc_per_class") or {}).get(cls))
                row[f"baseline_{split}"] = row[f"published_{split}"] = math.nan
            out.append(row)
        return out

    return rows


def _test_predictions(run_id: str, runs_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    from ecgcore.runs import predict_split
    from ecgcore.runs.store import RunStore

    y, probs, _ = predict_split(RunStore(runs_dir), run_id, "test")
    return np.asarray(y), np.asarray(probs)


def calibration_rows(
    spec: RunSpec, summary: Mapping | None, run_id: str | None, runs_dir: Path | None
) -> list[dict]:
    """Mean per-class ECE before calibration and after temperature and Platt scaling (fitted on validation;
    test is held out), plus the macro AUC. Platt is fitted last, so it is what the run's predictions use."""
    from ecgcore.explain.calibration import calibrate_run

    nan = {f"{who}_{s}": math.nan for who in ("ours", "baseline", "published") for s in SPLITS}
    if run_id is None:
        return [{"metric": "ece", **nan}]
    out = []
    for method in ("temperature", "platt"):
        metrics = calibrate_run(run_id, method, runs_dir).metrics
        if method == "temperature":
            out.append(
                {"metric": "ece", **nan, **{f"ours_{s}": metrics[s]["before"]["ece_mean"] for s in SPLITS}}
            )
        out.append(
            {
                "metric": f"ece ({method})",
                **nan,
                **{f"ours_{s}": metrics[s]["after"]["ece_mean"] for s in SPLITS},
            }
        )
    return out


def _trend(experiment: str):
    return lambda preset, sources: PUBLISHED_TRENDS[experiment]


def _study_notes(preset: Preset, sources: DataSources) -> str:
    return (
        "Splits: PTB-XL strat_fold 1-8 train / 9 validation / 10 test (patient-level); G12EC has no patient ids, "
        "so its folds are hashed from record names (record-level). Labels: the study's 18 PTB-XL statements, "
        "in G12EC their SNOMED codes (ecgcore/data/labels/tables/ptbxl_snomed_crosswalk.csv; NDT and SEHYP are "
        "marked uncertain there). A record with none of the 18 is a negative example. Test macro AUC intervals: "
        "95 % percentile bootstrap over test records (200 resamples). Baseline: the training class prior "
        "(AUC 0.5). Settings: the preset's (above), except that every run of this study uses the 12 standard "
        "leads, not the preset's lead list, and ignores its DeepFake and regression settings; the study's own "
        "hyperparameters are not part of the quoted numbers."
    )


def _experiment(name: str, title: str, description: str, build, row_fields, rows=None) -> Experiment:
    return register_experiment(
        Experiment(
            name,
            title,
            "classification",
            False,
            description,
            build,
            row_fields,
            notes=(_study_notes, _trend(name)),
            splits=SPLITS,
            check=check_study_data,
            rows=rows or _auc_rows(name),
            study="g12ec",
            citation=CITATION,
        )
    )


_experiment(
    "g12ec-transfer",
    "PTB-XL -> G12EC: trained alone vs pretrained then fine-tuned",
    "XResNet-101, ResNet and InceptionTime over the 18 shared statements: PTB-XL pretraining, G12EC alone, "
    "and G12EC fine-tuned from the PTB-XL model with gradual unfreezing; test macro AUC.",
    transfer_runs,
    ("model", "setting"),
)
_experiment(
    "g12ec-fractions",
    "G12EC subsets: fine-tuned vs alone",
    "XResNet on 100 % down to 10 % of G12EC's training split, alone and fine-tuned from PTB-XL.",
    g12ec_fraction_runs,
    ("fraction", "setting"),
)
_experiment(
    "ptbxl-fractions",
    "PTB-XL subsets: less pretraining",
    "XResNet pretrained on 100 % down to 10 % of PTB-XL's training split, fine-tuned on 10 % of G12EC; "
    "against G12EC alone on the same 10 % (fraction 0 in the table: no pretraining).",
    ptbxl_fraction_runs,
    ("fraction", "setting"),
)
_experiment(
    "downsampling",
    "Sampling rate: 500, 250, 100, 50 Hz",
    "XResNet on PTB-XL, G12EC alone and G12EC fine-tuned, every input resampled to each rate (the band-pass "
    "upper edge is lowered to 0.45 fs below 89 Hz).",
    downsampling_runs,
    ("fs_hz", "setting"),
)
_experiment(
    "calibration",
    "Calibration: reliability and Platt scaling",
    "The XResNet runs of g12ec-transfer (reused); temperature and Platt scaling fitted on validation, mean "
    "per-class expected calibration error before / after on validation and test.",
    calibration_runs,
    ("setting",),
    rows=calibration_rows,
)
_experiment(
    "frequency",
    "Frequency-domain inputs: Fourier magnitude, real, imaginary",
    "XResNet on the one-sided Fourier transform of each lead (orthonormal rfft of the normalised signal) "
    "instead of its samples: PTB-XL, and G12EC fine-tuned from it.",
    frequency_runs,
    ("input", "setting"),
)
