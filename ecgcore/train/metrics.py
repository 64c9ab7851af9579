"""Evaluation metrics, always next to the trivial baseline on the same split.

Regression metrics are computed per target in the target's own unit (bpm, ms) and never averaged
across units: the one number that ranks runs, ``mae_over_sd``, is unitless (each target's MAE
divided by its training SD, then averaged). Classification metrics come from scikit-learn; a macro
AUC is given only when every class has positives and negatives in the split (otherwise ``None`` and
the reason in ``auc_note``), with the number of classes it covers.

:func:`evaluate` returns ``{"model": ..., "baseline": ...}``. The regression baseline is the constant
that minimises each error: the training median for MAE (and bias, limits of agreement), the training
mean for RMSE, named in ``baseline["predictor"]``; the classification baseline is the training class
prior. A model that learned nothing is obvious at a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    multilabel_confusion_matrix,
)

from ecgcore.vocab import TARGETS_BY_KEY

#: What the regression baseline predicts for each error (the constant that minimises it).
REGRESSION_BASELINE = {"mae": "training median", "rmse": "training mean"}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    targets: Sequence[str],
    scale: Sequence[float] | None = None,
) -> dict:
    """MAE, RMSE, Pearson r and Bland-Altman bias / 95% limits of agreement per target, in its unit.

    Parameters
    ----------
    y_true, y_pred
        ``[N, len(targets)]`` in original units.
    targets
        Target keys, one per column.
    scale
        Each target's training SD: gives the unitless ``mae_over_sd`` per target and overall.

    Returns
    -------
    dict
        ``{"per_target": {key: {mae, rmse, r, bias, loa_low, loa_high, n, unit[, mae_over_sd]}}}``
        plus, with ``scale``, ``"mae_over_sd"``: the mean over targets of MAE / training SD (unitless;
        errors in bpm and ms are never averaged as such). ``r`` is ``None`` when either side is constant.
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    per_target = {}
    for j, key in enumerate(targets):
        t, p = y_true[:, j], y_pred[:, j]
        diff = p - t
        sd = diff.std(ddof=1) if len(diff) > 1 else 0.0
        r = np.corrcoef(t, p)[0, 1] if len(t) > 1 and t.std() > 0 and p.std() > 0 else np.nan
        target = TARGETS_BY_KEY.get(key)
        per_target[key] = {
            "mae": float(mean_absolute_error(t, p)),
            "rmse": float(np.sqrt(np.mean(diff**2))),
            "r": _finite(r),
            "bias": float(diff.mean()),
            "loa_low": float(diff.mean() - 1.96 * sd),
            "loa_high": float(diff.mean() + 1.96 * sd),
            "n": int(len(t)),
            "unit": target.unit if target is not None else None,
        }
        if scale is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.float64(per_target[key]["mae"]) / np.float64(scale[j])
            per_target[key]["mae_over_sd"] = _finite(ratio)
    out: dict = {"per_target": per_target}
    if scale is not None:
        ratios = [m["mae_over_sd"] for m in per_target.values()]
        out["mae_over_sd"] = float(np.mean(ratios)) if all(v is not None for v in ratios) else None
    return out


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], multi_label: bool
) -> dict:
    """Macro and per-class AUC, accuracy, macro F1, confusion matrix and per-class TP/FN/FP/TN.

    Parameters
    ----------
    y_true
        Single-label: class indices ``[N]``; multi-label: 0/1 matrix ``[N, C]``.
    probs
        ``[N, C]`` probabilities (softmax rows or independent sigmoids).
    classes
        Class names, one per column.
    multi_label
        Multi-label predictions are ``probs >= 0.5`` per class (accuracy = exact match); single-label
        predictions are the arg-max.

    Returns
    -------
    dict
        ``auc`` (macro over all classes; ``None`` when a class has no positives or no negatives in
        ``y_true``, with the reason in ``auc_note``), ``auc_classes`` (how many classes have an AUC)
        and ``n_classes``, ``auc_per_class`` (``None`` for a class absent or always present),
        ``accuracy``, ``f1_macro``,
        ``confusion`` (single-label: ``[C, C]`` rows = truth; multi-label: per class ``[[TN, FP], [FN, TP]]``)
        and ``per_class`` counts.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = len(classes)
    onehot = one_hot(y_true, n_classes, multi_label)
    auc_per_class = dict(zip(classes, class_aucs(onehot, probs)))
    defined = [v for v in auc_per_class.values() if v is not None]
    undefined = [name for name, v in auc_per_class.items() if v is None]
    pred = predicted(probs, multi_label)
    if multi_label:
        cms = multilabel_confusion_matrix(onehot, pred, labels=list(range(n_classes)))
        confusion = cms.tolist()
        accuracy = accuracy_score(onehot, pred)
        f1 = f1_score(onehot, pred, average="macro", zero_division=0)
    else:
        true_idx = np.asarray(y_true, dtype=np.int64)
        pred_idx = pred.argmax(axis=1)
        cm = confusion_matrix(true_idx, pred_idx, labels=list(range(n_classes)))
        confusion = cm.tolist()
        accuracy = accuracy_score(true_idx, pred_idx)
        f1 = f1_score(true_idx, pred_idx, labels=list(range(n_classes)), average="macro", zero_division=0)
    per_class = class_counts(classes, onehot, pred)
    return {
        "auc": float(np.mean(defined)) if defined and not undefined else None,
        "auc_classes": len(defined),
        "n_classes": n_classes,
        "auc_note": (
            f"no macro AUC: {', '.join(undefined)} {'has' if len(undefined) == 1 else 'have'} no positives "
            f"or no negatives among these {len(probs)} records ({len(defined)} of {n_classes} classes defined)"
            if undefined
            else None
        ),
        "auc_per_class": auc_per_class,
        "accuracy": float(accuracy),
        "f1_macro": float(f1),
        "confusion": confusion,
        "per_class": per_class,
        "n": int(len(probs)),
    }


def baseline_predictions(
    task: str, y_train: np.ndarray, n: int, n_classes: int, multi_label: bool, statistic: str = "median"
) -> np.ndarray:
    """The trivial predictor, ``n`` times: the training ``statistic`` (``"median"`` / ``"mean"``) of each
    target (regression) or the training class prior (classification)."""
    y_train = np.asarray(y_train)
    if task == "regression":
        centre = np.median if statistic == "median" else np.mean
        return np.repeat(centre(y_train, axis=0, keepdims=True), n, axis=0)
    if multi_label:
        prior = y_train.mean(axis=0)
    else:
        prior = np.bincount(y_train.astype(np.int64), minlength=n_classes) / max(len(y_train), 1)
    return np.repeat(prior[None, :], n, axis=0)


def evaluate(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_train: np.ndarray,
    *,
    names: Sequence[str],
    multi_label: bool = False,
) -> dict:
    """Metrics of the model and of the trivial baseline on the same rows.

    Parameters
    ----------
    task
        ``"regression"`` or ``"classification"``.
    y_true, y_pred
        Truth and model output (regression: original units; classification: probabilities).
    y_train
        Training-split truth, from which the baseline and the SDs of ``mae_over_sd`` are derived.
    names
        Target keys or class names.
    """
    if task == "regression":
        y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
        scale = y_train.std(axis=0, ddof=1) if len(y_train) > 1 else np.full(y_train.shape[1], np.nan)
        n = len(y_true)
        baseline = regression_metrics(
            y_true, baseline_predictions(task, y_train, n, len(names), False, "median"), names, scale
        )
        by_mean = regression_metrics(
            y_true, baseline_predictions(task, y_train, n, len(names), False, "mean"), names
        )
        for key, m in baseline["per_target"].items():
            m["rmse"] = by_mean["per_target"][key]["rmse"]
        baseline["predictor"] = dict(REGRESSION_BASELINE)
        return {"model": regression_metrics(y_true, y_pred, names, scale), "baseline": baseline}
    base = baseline_predictions(task, y_train, len(y_true), len(names), multi_label)
    return {
        "model": classification_metrics(y_true, y_pred, names, multi_label),
        "baseline": {
            **classification_metrics(y_true, base, names, multi_label),
            "predictor": "training class prior",
        },
    }


#: Resamples of a bootstrap interval (helme's benchmark uses 1,000 too).
BOOTSTRAP_RESAMPLES = 1000


def bootstrap_interval(
    metric: Callable[[np.ndarray, np.ndarray], float | None],
    y_true: np.ndarray,
    predictions: Sequence[np.ndarray],
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Point value and percentile bootstrap interval of ``metric(y_true, y_pred)`` over records and seeds.

    Parameters
    ----------
    metric
        Metric of one prediction set, ``None`` where undefined (e.g. an AUC on a resample without positives).
    y_true
        Truth of the evaluated records, first axis = records.
    predictions
        One prediction array per training seed, each row-aligned with ``y_true``.
    n_resamples, level, seed
        Each resample draws the records with replacement and, with several seeds, the seeds with
        replacement too (a two-level bootstrap: both the test records and the training seed vary);
        the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles.

    Returns
    -------
    dict
        ``point`` (the mean over seeds on all records), ``low``, ``high`` (``None`` if fewer than half
        of the resamples gave a value), ``level``, ``n_resamples`` (resamples with a value),
        ``n_records`` and ``n_seeds``.
    """
    y_true = np.asarray(y_true)
    preds = [np.asarray(p) for p in predictions]
    n, k = len(y_true), len(preds)
    points = [metric(y_true, p) for p in preds]
    point = float(np.mean(points)) if points and all(v is not None for v in points) else None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        rows = rng.integers(0, n, n)
        seeds = rng.integers(0, k, k) if k > 1 else [0]
        got = [metric(y_true[rows], preds[s][rows]) for s in seeds]
        if all(v is not None and np.isfinite(v) for v in got):
            values.append(float(np.mean(got)))
    enough = len(values) >= n_resamples / 2
    tail = 100 * (1 - level) / 2
    return {
        "point": point,
        "low": float(np.percentile(values, tail)) if enough else None,
        "high": float(np.percentile(values, 100 - tail)) if enough else None,
        "level": level,
        "n_resamples": len(values),
        "n_records": n,
        "n_seeds": k,
    }


def mae_of(column: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """MAE of one regression target (column), for :func:`bootstrap_interval`."""
    return lambda t, p: float(np.mean(np.abs(p[:, column] - t[:, column])))


def class_aucs(onehot: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """ROC AUC per class column (``None`` without positives or negatives), by the rank-sum identity.

    Equal to ``sklearn.metrics.roc_auc_score`` (ties count one half) and fast enough to run on every
    bootstrap resample, where sklearn's input validation would dominate.
    """
    aucs: list[float | None] = []
    for j in range(onehot.shape[1]):
        positive = onehot[:, j].astype(bool)
        n_pos = int(positive.sum())
        n_neg = len(positive) - n_pos
        if n_pos == 0 or n_neg == 0:
            aucs.append(None)
            continue
        ranks = rankdata(probs[:, j])
        aucs.append(float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))
    return aucs


def one_hot(y_true: np.ndarray, n_classes: int, multi_label: bool) -> np.ndarray:
    """Truth as a 0/1 matrix ``[N, C]``: class indices ``[N]`` one-hot encoded, a multi-label matrix as is."""
    onehot = np.asarray(y_true, dtype=np.int64)
    return onehot if multi_label else np.eye(n_classes, dtype=np.int64)[onehot]


def macro_auc_of(
    classes: Sequence[str], multi_label: bool
) -> Callable[[np.ndarray, np.ndarray], float | None]:
    """Macro AUC over all ``classes`` (``None`` when one lacks positives or negatives), for :func:`bootstrap_interval`."""

    def macro_auc(t: np.ndarray, p: np.ndarray) -> float | None:
        onehot = one_hot(t, len(classes), multi_label)
        aucs = class_aucs(onehot, np.asarray(p, dtype=np.float64))
        return None if any(a is None for a in aucs) else float(np.mean(aucs))

    return macro_auc


def accuracy_of(classes: Sequence[str], multi_label: bool) -> Callable[[np.ndarray, np.ndarray], float]:
    """Accuracy (exact match when multi-label), for :func:`bootstrap_interval`."""

    def accuracy(t: np.ndarray, p: np.ndarray) -> float:
        if multi_label:
            return float(accuracy_score(np.asarray(t, dtype=np.int64), (p >= 0.5).astype(np.int64)))
        return float(accuracy_score(np.asarray(t, dtype=np.int64), p.argmax(axis=1)))

    return accuracy


def predicted(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """The predicted classes as a 0/1 matrix ``[N, C]``: probability >= 0.5 per class (multi-label) or
    the arg-max (single-label)."""
    probs = np.asarray(probs, dtype=np.float64)
    if multi_label:
        return (probs >= 0.5).astype(np.int64)
    return np.eye(probs.shape[1], dtype=np.int64)[probs.argmax(axis=1)]


def class_counts(classes: Sequence[str], onehot: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, int]]:
    """One-vs-rest ``{"tp", "fn", "fp", "tn"}`` per class from 0/1 truth and prediction matrices ``[N, C]``."""
    t, p = np.asarray(onehot, dtype=bool), np.asarray(pred, dtype=bool)
    tp, fn, fp = (t & p).sum(axis=0), (t & ~p).sum(axis=0), (~t & p).sum(axis=0)
    tn = len(t) - tp - fn - fp
    return {
        name: {"tp": int(tp[j]), "fn": int(fn[j]), "fp": int(fp[j]), "tn": int(tn[j])}
        for j, name in enumerate(classes)
    }


#: Per-class rates from one-vs-rest counts that a result table can show (``"<rate>"`` is the macro mean,
#: ``"<rate>:<class>"`` one class): sensitivity (recall), specificity, precision (PPV), F1.
RATES: tuple[str, ...] = ("sensitivity", "specificity", "precision", "f1")


def class_rate(counts: dict[str, int], rate: str) -> float | None:
    """One class's ``rate`` from its counts.

    Sensitivity and F1 are undefined (``None``) for a class without positives, specificity for a
    class without negatives; precision is 0 for a class never predicted (scikit-learn's
    ``zero_division=0``: a predictor that never names a class gets no credit for it).
    """
    tp, fn, fp, tn = (counts[k] for k in ("tp", "fn", "fp", "tn"))
    if rate == "sensitivity":
        return tp / (tp + fn) if tp + fn else None
    if rate == "specificity":
        return tn / (tn + fp) if tn + fp else None
    if rate == "precision":
        return tp / (tp + fp) if tp + fp else 0.0
    if rate == "f1":
        return 2 * tp / (2 * tp + fp + fn) if tp + fn else None
    raise ValueError(f"unknown rate {rate!r}; expected one of {RATES}")


def rate_value(per_class: dict[str, dict[str, int]], metric: str) -> float | None:
    """``"<rate>"``: the macro mean over classes (``None`` if any class's rate is undefined) or
    ``"<rate>:<class>"``: that class's rate, from :func:`class_counts` output (a run summary's ``per_class``)."""
    rate, _, name = metric.partition(":")
    if name:
        return class_rate(per_class[name], rate) if name in per_class else None
    values = [class_rate(c, rate) for c in per_class.values()]
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def rate_of(
    classes: Sequence[str], multi_label: bool, metric: str
) -> Callable[[np.ndarray, np.ndarray], float | None]:
    """:func:`rate_value` of predictions (arg-max, or >= 0.5 when multi-label), for :func:`bootstrap_interval`."""

    def rate(t: np.ndarray, p: np.ndarray) -> float | None:
        onehot = one_hot(t, len(classes), multi_label)
        return rate_value(class_counts(classes, onehot, predicted(p, multi_label)), metric)

    return rate


def clears(model: dict, baseline: dict, higher_is_better: bool) -> bool | None:
    """Whether the model's interval lies entirely on the better side of the baseline's (``None`` if unknown)."""
    if None in (model.get("low"), model.get("high"), baseline.get("low"), baseline.get("high")):
        return None
    return model["low"] > baseline["high"] if higher_is_better else model["high"] < baseline["low"]
