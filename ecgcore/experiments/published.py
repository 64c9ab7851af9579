"""The seed study's published numbers, as data, with where they come from.

The seed study compared RNN, LSTM, CNN, ViT and an InceptionTime "1D-CNN" on interval regression
(DeepFake ECGs) and on 5-superclass single-label classification (PTB-XL), then transferred the
regression models to classification. Its Table 1 and Table 2 (train and validation columns) are
transcribed below exactly as the project page prints them. The validation columns agree digit
for digit with the figures quoted in this project's issue; the train columns come from the same
tables.

Nothing here is estimated: a value the source does not give is ``None`` and shows as missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    """Where a set of published numbers comes from."""

    title: str
    authors: str
    institution: str
    url: str
    source: str  #: the exact document the numbers were transcribed from
    note: str = ""

    def text(self) -> str:
        """One line for table captions and output files."""
        return f"{self.authors}. {self.title}. {self.institution}. {self.url} ({self.source})"


SEED_STUDY = Citation(
    title="GPU Acceleration for Deep-Learning based Comprehensive ECG analysis",
    authors="I. Fernando, A. Fernando, R. Jayasundara; supervisors R. G. Ragel, V. Thambawita, I. Nawinne",
    institution="Department of Computer Engineering, University of Peradeniya (final-year project e18-4yp)",
    url="https://cepdnaclk.github.io/e18-4yp-GPU-Acceleration-for-Deep-Learning-based-Comprehensive-ECG-analysis/",
    source=(
        "project page, github.com/cepdnaclk/e18-4yp-GPU-Acceleration-for-Deep-Learning-based-"
        "Comprehensive-ECG-analysis docs/README.md, 'Results and Analysis', Tables 1 and 2"
    ),
    note=(
        "The same team's preprint, R. Jayasundara et al., 'Inductive transfer learning from regression "
        "to classification in ECG analysis', arXiv:2508.11656 (2025), reports this work; its tables were "
        "not checked against the project page here."
    ),
)

#: Our model registry names -> the seed study's labels.
MODEL_LABELS: dict[str, str] = {
    "rnn": "RNN",
    "lstm": "LSTM",
    "cnn": "CNN",
    "vit": "ViT",
    "inception1d": "1D-CNN",
}

#: Table 1, regression MAE (HR in bpm; QRS, PR, QT in ms) on DeepFake ECGs: model -> target -> split.
TABLE1_MAE: dict[str, dict[str, dict[str, float | None]]] = {
    "rnn": {
        "hr": {"train": 5.569, "val": 5.530},
        "qrs": {"train": 6.983, "val": 6.998},
        "pr": {"train": 13.489, "val": 13.403},
        "qt": {"train": 16.243, "val": 16.494},
    },
    "lstm": {
        "hr": {"train": 5.536, "val": 5.546},
        "qrs": {"train": 6.819, "val": 6.896},
        "pr": {"train": 13.504, "val": 13.536},
        "qt": {"train": 13.892, "val": 13.892},
    },
    "cnn": {
        "hr": {"train": 5.875, "val": 5.870},
        "qrs": {"train": 7.002, "val": 6.872},
        "pr": {"train": 13.496, "val": 13.418},
        "qt": {"train": 16.239, "val": 16.378},
    },
    "vit": {
        "hr": {"train": 5.975, "val": 5.869},
        "qrs": {"train": 7.979, "val": 7.930},
        "pr": {"train": 23.819, "val": 24.012},
        "qt": {"train": 17.320, "val": 16.817},
    },
    "inception1d": {
        "hr": {"train": 1.237, "val": 0.706},
        "qrs": {"train": 3.259, "val": 3.007},
        "pr": {"train": 5.801, "val": 5.110},
        "qt": {"train": 6.351, "val": 4.130},
    },
}

#: Table 2, single-label 5-superclass classification on PTB-XL: model -> split -> metric.
TABLE2: dict[str, dict[str, dict[str, float | None]]] = {
    "rnn": {"train": {"accuracy": 0.559, "auc": 0.758}, "val": {"accuracy": 0.557, "auc": 0.736}},
    "lstm": {"train": {"accuracy": 0.560, "auc": 0.779}, "val": {"accuracy": 0.551, "auc": 0.770}},
    "cnn": {"train": {"accuracy": 0.560, "auc": 0.775}, "val": {"accuracy": 0.551, "auc": 0.769}},
    "vit": {"train": {"accuracy": 0.560, "auc": 0.776}, "val": {"accuracy": 0.551, "auc": 0.769}},
    "inception1d": {"train": {"accuracy": 0.795, "auc": 0.905}, "val": {"accuracy": 0.776, "auc": 0.902}},
}

#: What the seed study's code used (batch 31, Adam at 0.01 without weight decay, exponential decay
#: 0.99 per epoch, up to 1000 epochs, early stopping after 50 epochs without improvement of the
#: validation loss (regression) or AUC (classification), seed 42), read from its training scripts
#: (code/22_Inception1D_regression.py, 22_Inception1D_regression_to_classification.py in the same repository).
#: Its splits were random 70/10/20 record splits; ours are PTB-XL's strat_fold (see definitions.py).
PUBLISHED_TRAINING: dict[str, float | int | str] = {
    "batch_size": 31,
    "lr": 0.01,
    "optimizer": "adam",
    "schedule": "exponential",
    "gamma": 0.99,
    "max_epochs": 1000,
    "patience": 50,
    "seed": 42,
}


def published_regression(model: str, target: str, split: str) -> float | None:
    """The published MAE of ``model`` on ``target`` for ``split`` ("train" | "val"), or None."""
    return TABLE1_MAE.get(model, {}).get(target, {}).get(split)


def published_classification(model: str, metric: str, split: str) -> float | None:
    """The published ``metric`` ("accuracy" | "auc") of ``model`` for ``split``, or None."""
    return TABLE2.get(model, {}).get(split, {}).get(metric)


def table1_value(row: Mapping[str, object], target: str | None, metric: str, split: str) -> float | None:
    """Table 1's published MAE for a table row (its ``model``) and ``target``, or None."""
    if metric != "mae" or not target or not row.get("model"):
        return None
    return published_regression(str(row["model"]), target, split)


def table2_value(row: Mapping[str, object], target: str | None, metric: str, split: str) -> float | None:
    """Table 2's published ``metric`` for a table row (its ``model``), or None."""
    return published_classification(str(row["model"]), metric, split) if row.get("model") else None
