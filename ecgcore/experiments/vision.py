"""The two image studies as data: ``vision`` (ECG charts of Chapman-Shaoxing, torchvision models) and the
signal-representation comparison (``representations`` on PTB-XL, ``representations-deepfake`` on generated
DeepFake ECGs, which runs anywhere).

``vision``
    The eight torchvision models on 224 x 224 charts (layout ``3x4+II``; ConvNeXt-B also ``6x2+II``) of the
    user's Chapman-Shaoxing (``--data chapman:DIR``), rhythm classes AFIB, GSVT, SB, SR (Zheng et al. 2020),
    single-label; validation and test accuracy, macro AUC, macro sensitivity, specificity, precision and F1
    and each class's F1 beside the study's published test numbers, with 95 % bootstrap intervals on test and
    the class-prior baseline.
    Preset ``paper`` starts from ImageNet weights (local files only). One run per model with the preset's
    settings: the study's two-stage search is ``python -m ecgcore tune --space vision``.
``representations``
    PTB-XL superclasses (multi-label; accuracy, macro AUC and the macro rates) from the signal (1D CNN, InceptionTime), the chart (small 2D CNN), GAF /
    MTF / RP of leads I, II, V2 at 64 x 64 (AlexNet-style CNN) and the GAF + MTF fusion (late).
``representations-deepfake``
    The same comparison as HR / QRS / PR / QT regression on generated DeepFake ECGs.
"""

from __future__ import annotations

from collections.abc import Mapping

from ecgcore.data import DatasetError, format_spec, open_source
from ecgcore.data.chapman import RHYTHM_CLASSES
from ecgcore.experiments.definitions import (
    DataSources,
    Experiment,
    Preset,
    RunSpec,
    _config,
    register_experiment,
)
from ecgcore.experiments.prepare import DataRequired
from ecgcore.train.metrics import RATES
from ecgcore.vocab import LEADS_12

CHAPMAN_URL = "https://figshare.com/collections/ChapmanECG/4560497"
#: The vision study's models (torchvision), in its table order.
VISION_MODELS: tuple[str, ...] = (
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "efficientnet_b3",
    "convnext_tiny",
    "convnext_base",
)
#: Test-set macro metrics the vision study published (layout 3x4+II), as quoted in issue 19.
VISION_TEST: dict[str, dict[str, float]] = {
    "mobilenet_v3_small": {
        "f1_macro": 0.9296,
        "precision": 0.9321,
        "recall": 0.9292,
        "accuracy": 0.9381,
        "auc": 0.9921,
    },
    "mobilenet_v3_large": {
        "f1_macro": 0.9380,
        "precision": 0.9397,
        "recall": 0.9366,
        "accuracy": 0.9448,
        "auc": 0.9905,
    },
    "resnet18": {
        "f1_macro": 0.9533,
        "precision": 0.9539,
        "recall": 0.9528,
        "accuracy": 0.9580,
        "auc": 0.9932,
    },
    "resnet50": {
        "f1_macro": 0.9486,
        "precision": 0.9512,
        "recall": 0.9474,
        "accuracy": 0.9537,
        "auc": 0.9942,
    },
    "efficientnet_b0": {
        "f1_macro": 0.9541,
        "precision": 0.9550,
        "recall": 0.9534,
        "accuracy": 0.9589,
        "auc": 0.9925,
    },
    "efficientnet_b3": {
        "f1_macro": 0.9575,
        "precision": 0.9580,
        "recall": 0.9570,
        "accuracy": 0.9618,
        "auc": 0.9947,
    },
    "convnext_tiny": {
        "f1_macro": 0.9486,
        "precision": 0.9493,
        "recall": 0.9484,
        "accuracy": 0.9537,
        "auc": 0.9927,
    },
    "convnext_base": {
        "f1_macro": 0.9612,
        "precision": 0.9621,
        "recall": 0.9603,
        "accuracy": 0.9655,
        "auc": 0.9950,
    },
}
#: ConvNeXt-B macro and per-class F1 per layout, as quoted in issue 19.
VISION_CONVNEXT_B_F1: dict[str, dict[str, float]] = {
    "3x4+II": {"macro": 0.961, "AFIB": 0.947, "GSVT": 0.940, "SB": 0.989, "SR": 0.969},
    "6x2+II": {"macro": 0.956, "AFIB": 0.940, "GSVT": 0.931, "SB": 0.986, "SR": 0.967},
}
VISION_CITATION: Mapping[str, str] = {
    "text": "the vision-based arrhythmia classification study's test results (macro averages), as quoted in "
    "ECG Lab issue 19",
    "url": "",
    "source": "issue 19",
    "note": "A gradient-boosted-tree model on the same data reported macro F1 0.965 (Zheng et al., A 12-lead "
    "electrocardiogram database for arrhythmia research covering more than 10,000 patients, Scientific Data 7, "
    "48, 2020). Macro F1, precision and recall are in ecgcore.experiments.vision.VISION_TEST.",
}
REPRESENTATION_CITATION: Mapping[str, str] = {
    "text": "the signal-representation study (GAF / MTF / RP of leads I, II, V2 on PTB-XL, 2D CNNs, fusion), "
    "described in ECG Lab issue 19",
    "url": "",
    "source": "issue 19",
    "note": "The issue quotes no numbers for it: the published columns are empty.",
}
#: (representation, model) of the representation comparison.
REPRESENTATION_RUNS: tuple[tuple[str, str], ...] = (
    ("signal", "cnn"),
    ("signal", "inception1d"),
    ("chart", "cnn2d"),
    ("gaf", "alexnet2d"),
    ("mtf", "alexnet2d"),
    ("rp", "alexnet2d"),
    ("gaf+mtf", "fusion"),
)


#: The vision table's metrics: the study's macro numbers, specificity, and the per-class F1 it reported.
VISION_METRICS: tuple[str, ...] = (
    "accuracy",
    "auc",
    *RATES,
    *(f"f1:{c}" for c in RHYTHM_CLASSES),
)
#: Our metric names -> the keys of :data:`VISION_TEST` (the study's "recall" is the macro sensitivity).
_VISION_TEST_KEYS = {
    "accuracy": "accuracy",
    "auc": "auc",
    "sensitivity": "recall",
    "precision": "precision",
    "f1": "f1_macro",
}
#: The chart inputs of the vision table and the study's layout names.
_LAYOUT_OF = {"chart": "3x4+II", "chart2": "6x2+II"}


def vision_value(row: Mapping[str, object], target: str | None, metric: str, split: str) -> float | None:
    """The published test ``metric`` of a vision table row, or None: every model's macro numbers on layout
    3x4+II, and ConvNeXt-B's macro and per-class F1 on both layouts."""
    layout = _LAYOUT_OF.get(str(row.get("representation")))
    if split != "test" or layout is None:
        return None
    model = str(row.get("model"))
    if layout == "3x4+II" and metric in _VISION_TEST_KEYS:
        return VISION_TEST.get(model, {}).get(_VISION_TEST_KEYS[metric])
    if model == "convnext_base" and (metric == "f1" or metric.startswith("f1:")):
        return VISION_CONVNEXT_B_F1[layout].get(metric.partition(":")[2] or "macro")
    return None


def check_chapman(sources: DataSources) -> None:
    """Refuse without a readable Chapman-Shaoxing folder (figshare layout), saying where to get one."""
    how = (
        f"vision needs Chapman-Shaoxing (Zheng et al. 2020): download ECGData.zip and Diagnostics.xlsx from "
        f"{CHAPMAN_URL}, unzip ECGData/ beside Diagnostics.xlsx and pass that folder as --data chapman:DIR. "
        "Nothing was run."
    )
    if sources.chapman is None:
        raise DataRequired(f"no Chapman-Shaoxing folder was given. {how}")
    try:
        open_source(format_spec("chapman", sources.chapman))
    except DatasetError as exc:
        raise DataRequired(f"{exc}. {how}") from None


def _vision(preset: Preset, sources: DataSources) -> list[RunSpec]:
    data = sources.chapman_spec()
    pretrained = {"pretrained": "imagenet"} if preset.name == "paper" else {}
    specs = []
    for model in VISION_MODELS:
        for representation in ("chart", "chart2") if model == "convnext_base" else ("chart",):
            config = _config(
                preset,
                task="classification",
                data=data,
                model=model,
                leads=LEADS_12,
                representation=representation,
                model_kwargs={**preset.model_kwargs.get(model, {}), **pretrained},
            )
            row = {"model": model, "representation": representation}
            specs.append(RunSpec(f"vision/{model}/{representation}", config, row))
    return specs


def _image_kwargs(preset: Preset, model: str) -> dict:
    """The preset's model size; the fusion model gets one AlexNet-style branch per field (3 channels)."""
    if model != "fusion":
        return dict(preset.model_kwargs.get(model, {}))
    branch = {"model": "alexnet2d", "channels": 3, **preset.model_kwargs.get("alexnet2d", {})}
    return {"branches": [branch, dict(branch)], "mode": "late"}


def _representation_specs(preset: Preset, data: str, task: str, prefix: str) -> list[RunSpec]:
    extra = {"label_mode": "multi"} if task == "classification" else {}
    specs = []
    for representation, model in REPRESENTATION_RUNS:
        config = _config(
            preset,
            task=task,
            data=data,
            model=model,
            representation=representation,
            model_kwargs=_image_kwargs(preset, model),
            **extra,
        )
        row = {"representation": representation, "model": model}
        specs.append(RunSpec(f"{prefix}/{representation}/{model}", config, row))
    return specs


def _representations(preset: Preset, sources: DataSources) -> list[RunSpec]:
    return _representation_specs(preset, sources.ptbxl_spec(), "classification", "representations")


def _representations_deepfake(preset: Preset, sources: DataSources) -> list[RunSpec]:
    return _representation_specs(
        preset, sources.deepfake_spec(preset), "regression", "representations-deepfake"
    )


def _vision_note(preset: Preset, sources: DataSources) -> str:
    start = (
        "ImageNet weights (local torchvision files; see --pretrained)"
        if preset.name == "paper"
        else "random initialisation (no ImageNet weights)"
    )
    return (
        f"Ours: one run per model with the preset's settings and {start}, not the study's two-stage search "
        "(`python -m ecgcore tune --space vision` runs that); Chapman-Shaoxing has one record per patient, so the "
        "hash folds of the record names (8/1/1) are patient-level, not the study's split. Baseline: the training "
        "class prior on the same rows. Published: the study's test set on layout 3x4+II (ConvNeXt-B's macro and "
        "per-class F1 also on 6x2+II); the study gave no specificity."
    )


def _representations_note(preset: Preset, sources: DataSources) -> str:
    return (
        "GAF (summation), MTF (8 quantile bins) and RP of leads I, II, V2 at 64 x 64 from the band-passed "
        "millivolt signal; the chart is 224 x 224 (layout 3x4+II); the fusion model joins one AlexNet-style branch "
        "per field by concatenated embeddings. Baseline: the trivial predictor on the same rows (training mean / "
        "class prior). On PTB-XL the five superclasses are trained multi-label (the study scored MI, STTC, CD, "
        "HYP). DeepFake records are assigned to 10 folds by a hash of their id and labelled by ecgcore.measure "
        "when generated."
    )


register_experiment(
    Experiment(
        "vision",
        "Vision: ECG charts of Chapman-Shaoxing, 4 rhythm classes, torchvision models",
        "classification",
        False,
        "The eight torchvision models on 224 x 224 charts (layout 3x4+II; ConvNeXt-B also 6x2+II) of the user's "
        "Chapman-Shaoxing, rhythm classes AFIB, GSVT, SB, SR (Zheng et al. 2020); validation and test accuracy, "
        "macro AUC, sensitivity, specificity, precision and F1, and each class's F1.",
        _vision,
        ("model", "representation"),
        published=vision_value,
        notes=(_vision_note,),
        splits=("val", "test"),
        check=check_chapman,
        study="vision",
        citation=VISION_CITATION,
        metrics=VISION_METRICS,
    )
)
register_experiment(
    Experiment(
        "representations",
        "Representations: signal, chart, GAF, MTF, RP and fusion on PTB-XL",
        "classification",
        True,
        "PTB-XL superclasses (multi-label) from the signal (1D CNN, InceptionTime), the chart (small 2D CNN), "
        "GAF / MTF / RP of leads I, II, V2 (AlexNet-style CNN) and the GAF + MTF fusion.",
        _representations,
        ("representation", "model"),
        notes=(_representations_note,),
        splits=("val", "test"),
        study="representations",
        citation=REPRESENTATION_CITATION,
        metrics=("accuracy", "auc", *RATES),
    )
)
register_experiment(
    Experiment(
        "representations-deepfake",
        "Representations on DeepFake ECGs: interval regression from pictures and from the signal",
        "regression",
        False,
        "HR / QRS / PR / QT regression from the signal (1D CNN, InceptionTime), the chart, GAF, MTF, RP and the "
        "GAF + MTF fusion, on generated DeepFake ECGs; train and validation MAE.",
        _representations_deepfake,
        ("representation", "model"),
        notes=(_representations_note,),
        order_by=("representation", "target"),
        study="representations",
        citation=REPRESENTATION_CITATION,
    )
)
