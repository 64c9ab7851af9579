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
                      fitted on validation, ECE before / after on test (ecgcore.explain.calibration): 3 runs.
``frequency``         The Fourier magnitude, real and imaginary parts as inputs: PTB-XL and G12EC
                      fine-tuned each: 6 runs.

Data: the user's full PTB-XL (``--data ptbxl:DIR``) and G12EC in the Challenge layout (``--data g12ec:DIR``,
the Challenge 2021 ``training/georgia`` folder or 2020's ``WFDB_Ga``, or a whole Challenge training folder:
only its Georgia ``E*`` records are used unless ``db=`` says otherwise). Splits: PTB-XL's strat_fold
(patient-level); G12EC has no patient ids, so its split is record-level (folds hashed from record names).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore.experiments.definitions import Preset, RunSpec, _config
from ecgcore.vocab import LEADS_12

#: The architectures the study compared, in its order, and the one the later experiments use.
MODELS: tuple[str, ...] = ("xresnet1d101", "resnet1d_wang", "inception1d")
BEST = "xresnet1d101"
RATES: tuple[float, ...] = (500.0, 250.0, 100.0, 50.0)
#: Share of G12EC's training split the PTB-XL-fractions experiment fine-tunes on.
G12EC_FINETUNE_FRACTION = 0.1
FOURIER = ("fft-magnitude", "fft-real", "fft-imaginary")
STRATEGY = "gradual_unfreeze"
#: Fewest Georgia records a G12EC folder must hold (the 10-record development sample is not a dataset).
MIN_G12EC_RECORDS = 20
G12EC_HELP = (
    "G12EC (Georgia 12-lead ECG Challenge database, 10,344 records) in the PhysioNet/CinC Challenge layout: "
    "the Challenge 2021 training data's georgia/ folder (https://physionet.org/content/challenge-2021/) or "
    "2020's WFDB_Ga, passed as --data g12ec:DIR (a whole Challenge training folder works too: its Georgia E* "
    "records are used)"
)
PTBXL_HELP = (
    "PTB-XL 1.0.3 (https://physionet.org/content/ptb-xl/1.0.3/), the folder holding ptbxl_database.csv and "
    "records500/ (records100/ is enough for the tiny and quick presets, which run at 100 Hz), passed as "
    "--data ptbxl:DIR"
)

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
    "trained on G12EC alone (+0.073). The study's text does not say which architecture the 0.947 / 0.916 "
    "figures are; they are shown beside XResNet, its best model alone.",
    "g12ec-fractions": "Published trend: fine-tuned beats alone at every fraction, the gap grows as data "
    "shrinks; at 10 % the fine-tuned test AUC drops by only about 0.07.",
    "ptbxl-fractions": "Published trend: less pretraining data, lower AUC; fine-tuning still beats training "
    "alone from 25 % of PTB-XL.",
    "downsampling": "Published trend: PTB-XL's AUC stays almost the same at lower rates; G12EC's drops markedly.",
    "calibration": "The study reports reliability diagrams and Platt scaling; ECE figures are ours only.",
    "frequency": "Published: no G12EC fine-tuned number for the imaginary part.",
}


def published_auc(experiment: str, row: Mapping) -> float:
    """The study's macro AUC for a table row (NaN where it published none)."""
    key = (experiment, str(row.get("setting")), str(row.get("input") or row.get("model")))
    return PUBLISHED.get(key, math.nan)


# --- presets ---------------------------------------------------------------------------------------
_TINY_MODELS = {
    "xresnet1d101": {"blocks_per_stage": (1, 1), "stem_widths": (8, 8), "width": 4, "head_hidden": 16},
    "resnet1d_wang": {"width": 8, "n_blocks": 2, "head_hidden": 16},
    "inception1d": {
        "depth": 3,
        "n_filters": 4,
        "bottleneck": 4,
        "kernel_sizes": (9, 5, 3),
        "head_hidden": 16,
    },
}
PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        description="a smoke test of the pipeline with toy-sized models (its numbers mean nothing):",
        fs=100.0,
        epochs=1,
        batch_size=16,
        lr=3e-3,
        deepfake_n=0,
        max_records=None,
        per_target=False,
        amp=False,
        model_kwargs=_TINY_MODELS,
        fractions=(0.5, 1.0),
        leads=LEADS_12,
    ),
    "quick": Preset(
        name="quick",
        description="a small CPU-sized version (narrow models, few epochs), for the pipeline and trends:",
        fs=100.0,
        epochs=5,
        batch_size=64,
        lr=3e-3,
        deepfake_n=0,
        max_records=None,
        per_target=False,
        model_kwargs={
            "xresnet1d101": {"blocks_per_stage": (2, 2, 2, 2), "width": 16},
            "resnet1d_wang": {"width": 32},
            "inception1d": {"n_filters": 16, "bottleneck": 16},
        },
        fractions=(1.0, 0.5, 0.25, 0.1),
        leads=LEADS_12,
        classification_monitor="auc",
    ),
    "full": Preset(
        name="full",
        description="full-size models at 500 Hz on all 12 leads (GPU; our settings: the study's exact "
        "hyperparameters are not part of the published numbers quoted here):",
        fs=500.0,
        epochs=30,
        batch_size=64,
        lr=1e-3,
        deepfake_n=0,
        max_records=None,
        per_target=False,
        patience=5,
        classification_monitor="auc",
        fractions=(1.0, 0.5, 0.25, 0.1),
        leads=LEADS_12,
    ),
}


# --- data --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyData:
    """The user's PTB-XL folder and G12EC (Challenge-layout) folder, and which Challenge databases form G12EC."""

    ptbxl: Path | None
    g12ec: Path | None
    g12ec_db: str = "Georgia"

    def ptbxl_spec(self) -> str:
        return f"ptbxl:{self.ptbxl};labels=study18"

    def g12ec_spec(self) -> str:
        return f"challenge:{self.g12ec};db={self.g12ec_db};labels=study18"


class StudyDataRequired(ValueError):
    """PTB-XL or G12EC is missing or unusable; the message says which folder to give."""


def check_study_data(data: StudyData) -> None:
    """Refuse to run without both datasets, on toy-sized folders, or when a PTB-XL record is on both sides.

    Raises
    ------
    StudyDataRequired
        Naming the folder that is missing or wrong and where to get it.
    ecgcore.data.challenge.LeakageError
        When the G12EC side holds PTB-XL records (``HR*``, e.g. ``db=Georgia,PTB_XL``) that PTB-XL also has.
    """
    from ecgcore.data import DatasetError, open_source
    from ecgcore.data.challenge import LeakageError, check_no_shared_records

    problems = []
    if data.ptbxl is None or not (Path(data.ptbxl) / "ptbxl_database.csv").is_file():
        problems.append(f"PTB-XL: {data.ptbxl or 'not given'} is not a PTB-XL folder. Needs {PTBXL_HELP}.")
    if data.g12ec is None or not Path(data.g12ec).is_dir():
        problems.append(f"G12EC: {data.g12ec or 'not given'} is not a folder. Needs {G12EC_HELP}.")
    if problems:
        raise StudyDataRequired("the PTB-XL -> G12EC study needs both datasets: " + " ".join(problems))
    try:
        ptbxl, g12ec = open_source(data.ptbxl_spec()), open_source(data.g12ec_spec())
    except LeakageError:
        raise
    except DatasetError as exc:
        raise StudyDataRequired(f"{exc}. Needs {PTBXL_HELP}, and {G12EC_HELP}.") from exc
    georgia = int((g12ec.index.drop_duplicates("record")["database"] == "Georgia").sum())
    if georgia < MIN_G12EC_RECORDS:
        raise StudyDataRequired(
            f"G12EC: {data.g12ec} holds {georgia} Georgia records (fewer than {MIN_G12EC_RECORDS}): not the "
            f"database. Needs {G12EC_HELP}."
        )
    check_no_shared_records(ptbxl.index, g12ec.index, "PTB-XL (pretraining) vs G12EC (fine-tuning, test)")


# --- run specs -------------------------------------------------------------------------------------
def _run(
    preset: Preset,
    data: str,
    model: str,
    name: str,
    row: dict,
    *,
    fraction: float = 1.0,
    fs: float | None = None,
    representation: str | None = None,
    source: str | None = None,
    in_table: bool = True,
) -> RunSpec:
    """One multi-label run over the study's 18 classes (fine-tuned from ``source`` when given)."""
    extra: dict = {"fs": fs} if fs is not None else {}
    if representation is not None:
        extra["representation"] = representation
    if source is not None:
        extra["transfer"] = {"sources": [source], "approach": "pretrained", "strategy": STRATEGY}
    config = _config(
        preset,
        task="classification",
        data=data,
        model=model,
        label_mode="multi",
        monitor=preset.classification_monitor,
        train_fraction=fraction,
        **extra,
    )
    return RunSpec(name, config, row, (source,) if source else (), in_table)


def _triple(
    preset: Preset, data: StudyData, model: str, suffix: str = "", fs: float | None = None, **row
) -> list[RunSpec]:
    """PTB-XL pretraining, G12EC alone and G12EC fine-tuned from it, for one model (and rate)."""
    ptbxl_name = f"ptbxl/{model}{suffix}"
    common = {"model": model, **row}
    return [
        _run(
            preset, data.ptbxl_spec(), model, ptbxl_name, {"setting": "PTB-XL pretraining", **common}, fs=fs
        ),
        _run(
            preset,
            data.g12ec_spec(),
            model,
            f"g12ec-alone/{model}{suffix}",
            {"setting": "G12EC alone", **common},
            fs=fs,
        ),
        _run(
            preset,
            data.g12ec_spec(),
            model,
            f"g12ec-finetuned/{model}{suffix}",
            {"setting": "G12EC fine-tuned", **common},
            fs=fs,
            source=ptbxl_name,
        ),
    ]


def transfer_runs(preset: Preset, data: StudyData) -> list[RunSpec]:
    return [spec for model in MODELS for spec in _triple(preset, data, model)]


def g12ec_fraction_runs(preset: Preset, data: StudyData) -> list[RunSpec]:
    pretrained = _run(
        preset, data.ptbxl_spec(), BEST, f"ptbxl/{BEST}", {"setting": "PTB-XL pretraining"}, in_table=False
    )
    specs = [pretrained]
    for f in preset.fractions:
        row = {"fraction": f, "model": BEST}
        specs.append(
            _run(
                preset,
                data.g12ec_spec(),
                BEST,
                f"g12ec-alone/{f:g}",
                {"setting": "G12EC alone", **row},
                fraction=f,
            )
        )
        specs.append(
            _run(
                preset,
                data.g12ec_spec(),
                BEST,
                f"g12ec-finetuned/{f:g}",
                {"setting": "G12EC fine-tuned", **row},
                fraction=f,
                source=pretrained.name,
            )
        )
    return specs


def ptbxl_fraction_runs(preset: Preset, data: StudyData) -> list[RunSpec]:
    g = G12EC_FINETUNE_FRACTION
    specs = [
        _run(
            preset,
            data.g12ec_spec(),
            BEST,
            "g12ec-alone",
            {"setting": "G12EC alone", "fraction": math.nan, "model": BEST},
            fraction=g,
        )
    ]
    for f in preset.fractions:
        row = {"fraction": f, "model": BEST}
        name = f"ptbxl/{f:g}"
        specs.append(
            _run(preset, data.ptbxl_spec(), BEST, name, {"setting": "PTB-XL pretraining", **row}, fraction=f)
        )
        specs.append(
            _run(
                preset,
                data.g12ec_spec(),
                BEST,
                f"g12ec-finetuned/{f:g}",
                {"setting": "G12EC fine-tuned", **row},
                fraction=g,
                source=name,
            )
        )
    return specs


def downsampling_runs(preset: Preset, data: StudyData) -> list[RunSpec]:
    return [spec for fs in RATES for spec in _triple(preset, data, BEST, f"@{fs:g}hz", fs=fs, fs_hz=fs)]


def calibration_runs(preset: Preset, data: StudyData) -> list[RunSpec]:
    return _triple(preset, data, BEST)


def frequency_runs(preset: Preset, data: StudyData) -> list[RunSpec]:
    specs = []
    for representation in FOURIER:
        row = {"input": representation, "model": BEST}
        name = f"ptbxl/{representation}"
        specs.append(
            _run(
                preset,
                data.ptbxl_spec(),
                BEST,
                name,
                {"setting": "PTB-XL", **row},
                representation=representation,
            )
        )
        specs.append(
            _run(
                preset,
                data.g12ec_spec(),
                BEST,
                f"g12ec-finetuned/{representation}",
                {"setting": "G12EC fine-tuned", **row},
                representation=representation,
                source=name,
            )
        )
    return specs


@dataclass(frozen=True)
class StudyExperiment:
    """One experiment of the study: its runs, the labels naming a table row, and whether it calibrates."""

    name: str
    title: str
    description: str
    build: object  # Callable[[Preset, StudyData], list[RunSpec]]
    row_fields: tuple[str, ...]
    calibrate: bool = False


STUDY_EXPERIMENTS: Mapping[str, StudyExperiment] = {
    e.name: e
    for e in (
        StudyExperiment(
            "g12ec-transfer",
            "PTB-XL -> G12EC: trained alone vs pretrained then fine-tuned",
            "XResNet-101, ResNet and InceptionTime over the 18 shared statements: PTB-XL pretraining, G12EC "
            "alone, and G12EC fine-tuned from the PTB-XL model with gradual unfreezing; test macro AUC.",
            transfer_runs,
            ("model", "setting"),
        ),
        StudyExperiment(
            "g12ec-fractions",
            "G12EC subsets: fine-tuned vs alone",
            "XResNet on 100 % down to 10 % of G12EC's training split, alone and fine-tuned from PTB-XL.",
            g12ec_fraction_runs,
            ("fraction", "setting"),
        ),
        StudyExperiment(
            "ptbxl-fractions",
            "PTB-XL subsets: less pretraining",
            "XResNet pretrained on 100 % down to 10 % of PTB-XL's training split, fine-tuned on 10 % of G12EC; "
            "against G12EC alone on the same 10 %.",
            ptbxl_fraction_runs,
            ("fraction", "setting"),
        ),
        StudyExperiment(
            "downsampling",
            "Sampling rate: 500, 250, 100, 50 Hz",
            "XResNet on PTB-XL, G12EC alone and G12EC fine-tuned, every input resampled to each rate "
            "(band-pass upper edge at 0.45 fs below 89 Hz).",
            downsampling_runs,
            ("fs_hz", "setting"),
        ),
        StudyExperiment(
            "calibration",
            "Calibration: reliability and Platt scaling",
            "The XResNet runs of g12ec-transfer; temperature and Platt scaling fitted on validation, "
            "mean per-class ECE before / after on test.",
            calibration_runs,
            ("setting",),
            calibrate=True,
        ),
        StudyExperiment(
            "frequency",
            "Frequency-domain inputs: Fourier magnitude, real, imaginary",
            "XResNet on the one-sided Fourier transform of each lead (orthonormal rfft of the normalised "
            "signal) instead of its samples: PTB-XL, and G12EC fine-tuned from it.",
            frequency_runs,
            ("input", "setting"),
        ),
    )
}


# --- results ---------------------------------------------------------------------------------------------
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


def result_rows(
    experiment: StudyExperiment, spec: RunSpec, summary: Mapping | None, test: tuple | None
) -> list[dict]:
    """Table rows of one run: macro AUC (with its bootstrap interval and the published value) and one row
    per class (AUC, positives in test; rare classes keep their row with an empty AUC)."""
    labels = {f: spec.row.get(f) for f in experiment.row_fields}
    metrics = (summary or {}).get("metrics") or {}
    baseline = (summary or {}).get("baseline") or {}
    test_m, val_m = metrics.get("test") or {}, metrics.get("val") or {}
    low = high = math.nan
    if test is not None:
        low, high = bootstrap_macro_auc(np.asarray(test[0]), np.asarray(test[1]))
    rows = [
        {
            **labels,
            "class": "macro",
            "ours_val": _num(val_m.get("auc")),
            "ours_test": _num(test_m.get("auc")),
            "ci_low": low,
            "ci_high": high,
            "baseline_test": _num((baseline.get("test") or {}).get("auc")),
            "published_test": published_auc(experiment.name, spec.row),
            "n_test_positive": math.nan,
        }
    ]
    counts = ((summary or {}).get("class_counts") or {}).get("test", {})
    for cls, auc in (test_m.get("auc_per_class") or {}).items():
        rows.append(
            {
                **labels,
                "class": cls,
                "ours_val": _num((val_m.get("auc_per_class") or {}).get(cls)),
                "ours_test": _num(auc),
                "ci_low": math.nan,
                "ci_high": math.nan,
                "baseline_test": math.nan,
                "published_test": math.nan,
                "n_test_positive": counts.get(cls, math.nan),
            }
        )
    return rows


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def calibration_rows(
    experiment: StudyExperiment, spec: RunSpec, run_id: str, runs_dir: Path | None
) -> list[dict]:
    """Mean per-class ECE on test before and after temperature and Platt scaling (fitted on validation)."""
    from ecgcore.explain.calibration import calibrate_run

    rows = []
    for method in ("temperature", "platt"):
        test = calibrate_run(run_id, method, runs_dir).metrics["test"]
        rows.append(
            {
                **{f: spec.row.get(f) for f in experiment.row_fields},
                "method": method,
                "ece_before": test["before"]["ece_mean"],
                "ece_after": test["after"]["ece_mean"],
            }
        )
    return rows
