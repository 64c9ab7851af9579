"""Are the predicted probabilities honest? Reliability, expected calibration error, and the fix.

* :func:`reliability` bins predicted probabilities (equal-width bins) and compares each bin's mean
  confidence with how often the event happened; the expected calibration error (ECE) is the
  count-weighted mean gap (Guo et al., On calibration of modern neural networks, ICML 2017). Per
  class, the event is "the record has that class" (one-vs-rest), for softmax and sigmoid models alike.
* Temperature scaling divides every logit by one temperature fitted on the validation split's
  logits (L-BFGS on the negative log-likelihood); it never changes the arg-max. Platt scaling fits
  ``sigmoid(a_c z_c + b_c)`` per class (one-vs-rest logistic regression on that class's logit);
  for a single-label model the per-class probabilities are renormalised to sum to one.
* :func:`calibrate_run` fits on a finished run's validation split and writes ``calibration.json``
  in the run directory (before / after ECE on validation and test); :func:`load_calibration` reads it
  back and :meth:`Calibration.probabilities` applies it. The trainer's ``Predictor`` has no
  calibration hook, so :func:`calibrated_prediction` is how explanations and reports apply it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ecgcore.paths import atomic_write_json
from ecgcore.progress import ProgressFn, report

CALIBRATION_FILE = "calibration.json"
CALIBRATION_METHODS = ("temperature", "platt")
#: Smallest and largest temperature :func:`fit_temperature` returns.
TEMPERATURE_RANGE = (0.05, 100.0)


def _event_matrix(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices ``[N]`` (single-label) or 0/1 ``[N, C]`` (multi-label) -> 0/1 ``[N, C]``."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= n_classes:
            raise ValueError(
                f"class indices must lie in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}"
            )
        return np.eye(n_classes, dtype=np.float64)[labels]
    if labels.shape[1] != n_classes:
        raise ValueError(f"labels have {labels.shape[1]} columns, the probabilities {n_classes}")
    return labels.astype(np.float64)


def reliability(probs: np.ndarray, events: np.ndarray, n_bins: int = 10) -> dict:
    """Reliability diagram data of one event: per equal-width bin, mean confidence, frequency, count; and the ECE.

    Parameters
    ----------
    probs
        Predicted probability of the event, ``[N]``.
    events
        Whether it happened (0/1), ``[N]``.
    """
    probs, events = np.asarray(probs, dtype=np.float64), np.asarray(events, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    conf = np.bincount(which, weights=probs, minlength=n_bins)
    freq = np.bincount(which, weights=events, minlength=n_bins)
    seen = count > 0
    mean_conf = np.where(seen, conf / np.maximum(count, 1), np.nan)
    mean_freq = np.where(seen, freq / np.maximum(count, 1), np.nan)
    ece = float(np.sum(count[seen] * np.abs(mean_conf[seen] - mean_freq[seen])) / max(len(probs), 1))
    return {
        "edges": edges.tolist(),
        "confidence": mean_conf.tolist(),
        "frequency": mean_freq.tolist(),
        "count": count.tolist(),
        "ece": ece,
    }


def calibration_report(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], n_bins: int = 10
) -> dict:
    """Per-class reliability data and ECE, their mean, and for single-label data the top-label ECE."""
    probs = np.asarray(probs, dtype=np.float64)
    events = _event_matrix(labels, probs.shape[1])
    per_class = {c: reliability(probs[:, i], events[:, i], n_bins) for i, c in enumerate(classes)}
    out = {
        "per_class": per_class,
        "ece_mean": float(np.mean([r["ece"] for r in per_class.values()])),
        "n": int(len(probs)),
    }
    if np.asarray(labels).ndim == 1:
        top = probs.argmax(axis=1)
        out["top_label"] = reliability(probs.max(axis=1), (top == np.asarray(labels)).astype(float), n_bins)
    return out


def _probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    z = torch.as_tensor(logits, dtype=torch.float64)
    return (torch.sigmoid(z) if multi_label else torch.softmax(z, dim=1)).numpy()


@dataclass
class Calibration:
    """A fitted calibration map from logits to probabilities.

    Attributes
    ----------
    method
        ``"temperature"`` or ``"platt"``.
    multi_label
        Sigmoid per class (``True``) or softmax (``False``) model.
    temperature
        The fitted temperature (temperature scaling).
    platt
        ``[[a, b], ...]`` per class (Platt scaling).
    """

    method: str
    multi_label: bool
    classes: list[str]
    temperature: float = 1.0
    platt: list[list[float]] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``[N, C]`` from raw logits ``[N, C]`` (or ``[C]`` for one record)."""
        logits = np.asarray(logits, dtype=np.float64)
        single = logits.ndim == 1
        logits = np.atleast_2d(logits)
        if self.method == "temperature":
            probs = _probabilities(logits / self.temperature, self.multi_label)
        else:
            ab = np.asarray(self.platt, dtype=np.float64)
            probs = 1.0 / (1.0 + np.exp(-(logits * ab[:, 0] + ab[:, 1])))
            if not self.multi_label:
                probs = probs / probs.sum(axis=1, keepdims=True)
        return probs[0] if single else probs

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "multi_label": self.multi_label,
            "classes": list(self.classes),
            "temperature": self.temperature,
            "platt": self.platt,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(
            method=d["method"],
            multi_label=bool(d["multi_label"]),
            classes=list(d["classes"]),
            temperature=float(d.get("temperature", 1.0)),
            platt=d.get("platt", []),
            metrics=d.get("metrics", {}),
        )


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, multi_label: bool = False, max_iter: int = 200
) -> float:
    """The temperature minimising the NLL of ``logits / T`` on ``labels`` (L-BFGS over ``log T``).

    Clipped to :data:`TEMPERATURE_RANGE`: a model no better than chance on a small validation split
    drives the optimum towards infinity (uniform probabilities), which the upper bound stands for.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    if multi_label:
        loss_fn = lambda: torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), y.double())  # noqa: E731
    else:
        loss_fn = lambda: torch.nn.functional.cross_entropy(z / log_t.exp(), y.long())  # noqa: E731

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(np.clip(log_t.exp().item(), *TEMPERATURE_RANGE))


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> list[list[float]]:
    """Per-class ``[a, b]`` of ``sigmoid(a z + b)``: one-vs-rest logistic regression on each class's logit."""
    from sklearn.linear_model import LogisticRegression

    logits = np.asarray(logits, dtype=np.float64)
    events = _event_matrix(labels, logits.shape[1])
    params = []
    for c in range(logits.shape[1]):
        if events[:, c].min() == events[:, c].max():  # one outcome only: nothing to fit, keep the logit as is
            params.append([1.0, 0.0])
            continue
        lr = LogisticRegression(C=1e4).fit(logits[:, [c]], events[:, c])
        params.append([float(lr.coef_[0, 0]), float(lr.intercept_[0])])
    return params


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    method: str = "temperature",
    multi_label: bool = False,
) -> Calibration:
    """Fit ``method`` on validation ``logits`` / ``labels`` (class indices, or 0/1 ``[N, C]`` if multi-label)."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(
            f"unknown calibration method {method!r}; expected one of {', '.join(CALIBRATION_METHODS)}"
        )
    if method == "temperature":
        return Calibration(
            method, multi_label, list(classes), temperature=fit_temperature(logits, labels, multi_label)
        )
    return Calibration(method, multi_label, list(classes), platt=fit_platt(logits, labels))


def run_logits(
    run_id_or_dir: str | Path,
    split: str,
    runs_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Raw outputs and labels of a finished run's ``split`` (``"val"`` / ``"test"``), and the checkpoint meta.

    The rows are rebuilt with the trainer's own data preparation from the run's config, so they are
    exactly the rows the run was validated and tested on.
    """
    from ecgcore.predict import load_predictor
    from ecgcore.train.batches import BatchSource, prepare_data
    from ecgcore.train.config import TrainConfig
    from ecgcore.train.evaluate import predict_rows

    predictor = load_predictor(run_directory(run_id_or_dir, runs_dir))
    meta = predictor.meta
    if meta["task"] != "classification":
        raise ValueError(
            f"run {meta.get('run_id', run_id_or_dir)} is a {meta['task']} run; calibration needs classification"
        )
    config = TrainConfig.from_dict(meta["config"])
    data = prepare_data(config, progress=progress)
    rows = data.rows[split]
    source = BatchSource(data.signals, data.y, rows, predictor.device)
    logits = predict_rows(predictor.model, source, rows, 64, None).numpy()
    report(progress, 1, 1, f"{split} logits")
    return logits, np.asarray(data.y[rows]), meta


def calibrate_run(
    run_id_or_dir: str | Path,
    method: str = "temperature",
    runs_dir: str | Path | None = None,
    n_bins: int = 10,
    progress: ProgressFn | None = None,
) -> Calibration:
    """Fit calibration on a run's validation split and store it as ``calibration.json`` in the run directory.

    The stored metrics give the per-class ECE before and after on the validation split (where it was
    fitted) and on the test split (held out, the honest figure).
    """
    val_logits, val_y, meta = run_logits(run_id_or_dir, "val", runs_dir, progress)
    test_logits, test_y, _ = run_logits(run_id_or_dir, "test", runs_dir, progress)
    multi = meta.get("label_mode") == "multi"
    classes = meta["classes"]
    calib = fit_calibration(val_logits, val_y, classes, method, multi)
    for split, logits, y in (("val", val_logits, val_y), ("test", test_logits, test_y)):
        calib.metrics[split] = {
            "before": calibration_report(_probabilities(logits, multi), y, classes, n_bins),
            "after": calibration_report(calib.probabilities(logits), y, classes, n_bins),
        }
    atomic_write_json(run_directory(run_id_or_dir, runs_dir) / CALIBRATION_FILE, calib.to_dict())
    return calib


def run_directory(run_id_or_dir: str | Path, runs_dir: str | Path | None = None) -> Path:
    """The directory of a run given by id (looked up in the run store) or by its directory.

    Raises
    ------
    ValueError
        If there is no such run in the store.
    """
    path = Path(run_id_or_dir)
    if path.is_dir():
        return path
    from ecgcore.runs.store import RunStore

    store = RunStore(runs_dir)
    try:
        store.get_run(str(run_id_or_dir))
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    return store.run_dir(str(run_id_or_dir))


def load_calibration(run_id_or_dir: str | Path, runs_dir: str | Path | None = None) -> Calibration | None:
    """The run's stored calibration, or ``None`` when it has not been calibrated."""
    path = run_directory(run_id_or_dir, runs_dir) / CALIBRATION_FILE
    if not path.exists():
        return None
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a calibration file ({exc})") from exc


def calibrated_prediction(predictor, record, calibration: Calibration | None) -> dict:
    """``predictor.predict(record)`` plus ``calibrated_probabilities`` (and ``calibration``) when calibrated."""
    result = predictor.predict(record)
    if calibration is not None and result["task"] == "classification":
        logits = predictor.outputs(predictor.prepare(record))[0]  # the logits the prediction used
        probs = calibration.probabilities(logits)
        result["calibrated_probabilities"] = {c: float(p) for c, p in zip(calibration.classes, probs)}
        result["calibration"] = {"method": calibration.method, "temperature": calibration.temperature}
    return result
