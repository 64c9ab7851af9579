"""Inference: a trained model with the exact preprocessing of its training data (:class:`Predictor`), and
loading one from a run directory or a run id (:func:`load_predictor`).

Shared by the command line (``predict``, ``explain``), the pages and the report. Calibration, where a run
has one, is applied by :func:`ecgcore.explain.calibration.calibrated_prediction` on top of
:meth:`Predictor.predict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgcore import paths
from ecgcore.data import Preprocessing, preprocess_record
from ecgcore.train.checkpoint import CheckpointError, load_checkpoint
from ecgcore.train.config import LABEL_MODES, TASKS
from ecgcore.vocab import TARGETS_BY_KEY, canonical_lead


@dataclass
class Predictor:
    """A trained model with the exact preprocessing of its training data.

    Attributes
    ----------
    model
        The network, in eval mode.
    meta
        The checkpoint description (task, targets or classes, preprocessing, metrics ...).
    """

    model: torch.nn.Module
    meta: dict

    def __post_init__(self) -> None:
        self.prep = Preprocessing.from_dict(self.meta["preprocessing"])
        self.device = next(self.model.parameters()).device

    def prepare(self, record) -> torch.Tensor:
        """The model input ``[1, L, S]`` for a :class:`ecgcore.io.Record` (the training preprocessing)."""
        x = preprocess_record(record, self.prep, self.meta.get("stats"))
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=self.device)[None]

    @torch.inference_mode()
    def predict(self, record) -> dict:
        """Interval predictions (original units) or class probabilities for one record.

        Returns
        -------
        dict
            ``{"record_id", "task", "intervals": {key: value}, "units": {...}}`` for regression;
            ``{"record_id", "task", "probabilities": {class: p}, "predicted": [classes]}`` for
            classification (``predicted`` is the arg-max, or every class with p >= 0.5 in multi-label mode).
        """
        out = self.model(self.prepare(record)).float().cpu().numpy()[0]
        result: dict[str, Any] = {"record_id": record.record_id, "task": self.meta["task"]}
        if self.meta["task"] == "regression":
            values = out * np.asarray(self.meta["target_sd"]) + np.asarray(self.meta["target_mean"])
            result["intervals"] = {k: float(v) for k, v in zip(self.meta["targets"], values)}
            result["units"] = {k: TARGETS_BY_KEY[k].unit for k in self.meta["targets"]}
            return result
        classes = self.meta["classes"]
        if self.meta["label_mode"] == "multi":
            probs = 1.0 / (1.0 + np.exp(-out))
            predicted = [c for c, p in zip(classes, probs) if p >= 0.5]
        else:
            probs = np.exp(out - out.max())
            probs /= probs.sum()
            predicted = [classes[int(probs.argmax())]]
        result["probabilities"] = {c: float(p) for c, p in zip(classes, probs)}
        result["predicted"] = predicted
        return result


def load_predictor(
    run_id_or_dir: str | Path, runs_dir: str | Path | None = None, which: str = "best", device: str = "cpu"
) -> Predictor:
    """A :class:`Predictor` from a run id (looked up in the run store) or a run directory.

    Raises
    ------
    FileNotFoundError
        If there is no such run, or it has no ``which`` checkpoint (it has not finished an epoch).
    """
    run_dir = Path(run_id_or_dir)
    if not run_dir.is_dir():
        root = Path(runs_dir) if runs_dir is not None else paths.runs_dir()
        run_dir = root / str(run_id_or_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"no run {str(run_id_or_dir)!r} in {root} (no such run directory)")
    path = run_dir / f"{which}.safetensors"
    model, meta = load_checkpoint(path, device=device)
    check_description(meta, path)
    return Predictor(model, meta)


def check_description(meta: dict, path: Path | str) -> None:
    """Refuse a checkpoint description prediction cannot use, naming the file and the field.

    Checked: ``task``; ``preprocessing`` (present, a positive numeric rate and duration, known leads
    and normalisation); for regression ``targets`` with their ``target_mean`` / ``target_sd``; for
    classification ``classes`` and ``label_mode``; and that the model has one output per target or class.

    Raises
    ------
    CheckpointError
        The first field that is missing or wrong.
    """

    def bad(field: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: description field {field!r} {problem}")

    task = meta.get("task")
    if task not in TASKS:
        raise bad("task", f"is {task!r}; expected one of {', '.join(TASKS)}")
    prep = meta.get("preprocessing")
    if not isinstance(prep, dict):
        raise bad("preprocessing", "is missing: the model's input cannot be reproduced")
    for key in ("fs", "duration"):
        value = prep.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise bad(f"preprocessing.{key}", f"is {value!r}; expected a positive number")
    for lead in prep.get("leads") or [None]:
        try:
            canonical_lead(lead)
        except (ValueError, TypeError, AttributeError):
            raise bad("preprocessing.leads", f"holds {lead!r}, which is not an ECG lead") from None
    try:
        Preprocessing.from_dict(prep)
    except (ValueError, TypeError) as exc:
        raise bad("preprocessing", f"cannot be used: {exc}") from None
    if task == "regression":
        names = meta.get("targets")
        if not isinstance(names, list) or not names or any(n not in TARGETS_BY_KEY for n in names):
            raise bad("targets", f"is {names!r}; expected some of {', '.join(TARGETS_BY_KEY)}")
        for key in ("target_mean", "target_sd"):
            values = meta.get(key)
            if not isinstance(values, list) or len(values) != len(names):
                raise bad(key, f"is {values!r}; expected {len(names)} numbers, one per target")
    else:
        names = meta.get("classes")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad("classes", f"is {names!r}: a classification run must name its classes")
        if meta.get("label_mode") not in LABEL_MODES:
            raise bad(
                "label_mode", f"is {meta.get('label_mode')!r}; expected one of {', '.join(LABEL_MODES)}"
            )
    outputs = (meta.get("model") or {}).get("n_outputs")
    if outputs != len(names):
        raise bad(
            "model.n_outputs",
            f"is {outputs!r} for {len(names)} {'targets' if task == 'regression' else 'classes'}",
        )
