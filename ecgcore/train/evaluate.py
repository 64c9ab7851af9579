"""Evaluation: a model's outputs over rows, the metrics of a split (with the trivial baseline), and the
truth and predictions of a finished run's best model on one of its splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgcore.train.batches import BatchSource, PreparedData, prepare_data
from ecgcore.train.checkpoint import load_checkpoint
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import autocast
from ecgcore.train.metrics import evaluate


@torch.no_grad()
def predict_rows(
    model: nn.Module, source: BatchSource, rows: np.ndarray, batch_size: int, amp_dtype: torch.dtype | None
) -> torch.Tensor:
    """Raw model outputs for ``rows`` (eval mode), float32 on the CPU."""
    model.eval()
    outs = []
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    for x, _ in source.iterate(batches):
        with autocast(source.device, amp_dtype):
            out = model(*x) if isinstance(x, tuple) else model(x)
        outs.append(out.float().cpu())
    return torch.cat(outs)


def outputs_to_predictions(out: torch.Tensor, config: TrainConfig, data: PreparedData) -> np.ndarray:
    """Model outputs -> original units (regression) or probabilities (classification)."""
    if config.task == "regression":
        return out.numpy() * data.target_sd + data.target_mean
    if config.label_mode == "single":
        return torch.softmax(out, dim=1).numpy()
    return torch.sigmoid(out).numpy()


def evaluate_split(
    model: nn.Module,
    source: BatchSource,
    config: TrainConfig,
    data: PreparedData,
    split: str,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    loss_fn: nn.Module,
) -> dict:
    """Loss and metrics (with the trivial baseline) of ``model`` on one split."""
    rows = data.rows[split]
    out = predict_rows(model, source, rows, batch_size, amp_dtype)
    loss = float(loss_fn(out, torch.as_tensor(data.y[rows])).item())
    result = evaluate(
        config.task,
        data.y_eval[rows],
        outputs_to_predictions(out, config, data),
        data.y_eval[data.rows["train"]],
        names=data.names,
        multi_label=config.label_mode == "multi" and config.task == "classification",
    )
    result["loss"] = loss
    return result


def epoch_metrics(result: dict, config: TrainConfig) -> dict:
    """The compact validation metrics stored per epoch."""
    model = result["model"]
    if config.task == "regression":
        out = {"mae": model["mae"], "rmse": model["rmse"]}
        out.update({f"mae_{k}": v["mae"] for k, v in model["per_target"].items()})
        return out
    return {"auc": model["auc"], "accuracy": model["accuracy"], "f1_macro": model["f1_macro"]}


def headline(summary_metrics: dict, baseline: dict, config: TrainConfig) -> dict:
    """A few numbers for run tables: test/val MAE or AUC next to the baseline's."""
    key = "mae" if config.task == "regression" else "auc"
    return {f"{split}_{key}": summary_metrics[split][key] for split in ("val", "test")} | {
        f"baseline_test_{key}": baseline["test"][key]
    }


def predict_split(
    config: TrainConfig, run_dir: str | Path, split: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Truth and predictions of a finished run's best model on its ``val`` or ``test`` rows.

    Uses the trainer's own data preparation and prediction (same rows, preprocessing and label
    scaling as the metrics in the run summary), so plots of them show what the metrics measured.

    Raises
    ------
    ValueError
        If the rows rebuilt now differ from those the run recorded: the data changed since the run.
    """
    run_dir = Path(run_dir)
    data = prepare_data(config)
    recorded = json.loads((run_dir / "records.json").read_text())[split]
    rows = data.rows[split]
    if list(data.record_ids[rows]) != list(recorded):
        raise ValueError(
            f"run {run_dir.name}: its {split} records differ from the data now in {config.data}; "
            "the data changed since the run"
        )
    model, _ = load_checkpoint(run_dir / "best", device="cpu")
    source = BatchSource(data.inputs, data.y, rows, next(model.parameters()).device)
    out = predict_rows(model, source, rows, config.batch_size, None)
    return data.y_eval[rows], outputs_to_predictions(out, config, data), list(data.names)
