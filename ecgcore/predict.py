"""Inference: a trained model with the exact preprocessing of its training data (:class:`Predictor`), and
loading one from a run directory or a run id (:func:`load_predictor`).

Shared by the command line (``predict``, ``explain``), the pages and the report. Calibration, where a run
has one, is applied by :func:`ecgcore.explain.calibration.calibrated_prediction` on top of
:meth:`Predictor.predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgcore import paths
from ecgcore.data import Preprocessing, preprocess_record
from ecgcore.train.checkpoint import load_checkpoint
from ecgcore.vocab import TARGETS_BY_KEY


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

    @property
    def representation(self) -> str:
        """What the model reads (``TrainConfig.representation``): ``"signal"``, ``"chart"``, ``"signal+chart"`` ..."""
        return (self.meta.get("config") or {}).get("representation", "signal")

    def prepare(self, record) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The model input for a :class:`ecgcore.io.Record`, as in training: ``[1, L, S]`` for signals, an image
        ``[1, C, H, W]`` (uint8 / 255) or a tuple of such for other representations."""
        if self.representation == "signal":
            x = preprocess_record(record, self.prep, self.meta.get("stats"))
            return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=self.device)[None]
        from ecgcore.data.image_inputs import record_inputs

        parts = record_inputs(self.representation, record, self.prep, self.meta.get("stats"))
        tensors = tuple(
            torch.as_tensor(np.ascontiguousarray(p), device=self.device)[None].float()
            / (255.0 if p.dtype == np.uint8 else 1.0)
            for p in (parts if isinstance(parts, tuple) else (parts,))
        )
        return tensors if isinstance(parts, tuple) else tensors[0]

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
        x = self.prepare(record)
        out = (self.model(*x) if isinstance(x, tuple) else self.model(x)).float().cpu().numpy()[0]
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
    model, meta = load_checkpoint(run_dir / f"{which}.safetensors", device=device)
    return Predictor(model, meta)
