"""Evaluation: a model's outputs over rows, the metrics of a split (with the trivial baseline), and the
truth and predictions of a finished run's best model on one of its splits."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgcore.paths import atomic_write_bytes
from ecgcore.train import distributed as ddp
from ecgcore.train.batches import BatchSource, PreparedData, prepare_data
from ecgcore.train.checkpoint import load_checkpoint
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import autocast
from ecgcore.train.metrics import evaluate


@torch.no_grad()
def predict_rows(
    model: nn.Module,
    source: BatchSource,
    rows: np.ndarray,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    info: ddp.DistInfo | None = None,
) -> torch.Tensor:
    """Raw model outputs for ``rows`` (eval mode), float32 on the CPU.

    Under data parallelism (``info``) each rank predicts its own contiguous part of ``rows`` and the
    parts are gathered, so every rank returns the outputs of all ``rows`` in order at 1 / world-size of
    the work (the model's weights and batch-norm statistics must agree across ranks: they do after
    :func:`~ecgcore.train.distributed.sync_buffers`).
    """
    info = info or ddp.DistInfo()
    mine = ddp.rank_rows(rows, info)
    model.eval()
    outs = []
    batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    for x, _ in source.iterate(batches):
        with autocast(source.device, amp_dtype):
            out = model(*x) if isinstance(x, tuple) else model(x)
        outs.append(out.float().cpu())
    local = torch.cat(outs).numpy() if outs else np.zeros((0, 0), dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(ddp.gather_rows(local, info)))


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
    info: ddp.DistInfo | None = None,
) -> dict:
    """Loss and metrics (with the trivial baseline) of ``model`` on one split, and the truth and
    predictions they came from (``y_true``, ``y_pred``: original units or probabilities). With ``info``
    the ranks share the predictions (:func:`predict_rows`) and all compute the same metrics."""
    rows = data.rows[split]
    out = predict_rows(model, source, rows, batch_size, amp_dtype, info)
    loss = float(loss_fn(out, torch.as_tensor(data.y[rows])).item())
    predictions = outputs_to_predictions(out, config, data)
    result = evaluate(
        config.task,
        data.y_eval[rows],
        predictions,
        data.y_eval[data.rows["train"]],
        names=data.names,
        multi_label=config.label_mode == "multi" and config.task == "classification",
    )
    result["loss"] = loss
    result["y_true"], result["y_pred"] = np.asarray(data.y_eval[rows]), np.asarray(predictions)
    return result


#: The file a finished run saves its evaluation truth and predictions in (tables bootstrap from it).
PREDICTIONS_FILE = "predictions.npz"


def save_predictions(run_dir: Path, results: dict, data: PreparedData, config: TrainConfig) -> Path:
    """Write ``predictions.npz``: val / test truth and predictions of the best checkpoint, the training
    truth (for the baseline) and the output names; written once, when the run finishes."""
    arrays = {
        "names": np.array(list(data.names)),
        "train_true": np.asarray(data.y_eval[data.rows["train"]]),
        "multi_label": np.array(config.label_mode == "multi" and config.task == "classification"),
    }
    for split in ("val", "test"):
        arrays[f"{split}_true"], arrays[f"{split}_pred"] = results[split]["y_true"], results[split]["y_pred"]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = Path(run_dir) / PREDICTIONS_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path


def epoch_metrics(result: dict, config: TrainConfig) -> dict:
    """The compact validation metrics stored per epoch."""
    model = result["model"]
    if config.task == "regression":
        out = {"mae_over_sd": model["mae_over_sd"]}
        out.update({f"mae_{k}": v["mae"] for k, v in model["per_target"].items()})
        return out
    return {"auc": model["auc"], "accuracy": model["accuracy"], "f1_macro": model["f1_macro"]}


def headline(summary_metrics: dict, baseline: dict, config: TrainConfig) -> dict:
    """A few numbers for run tables: test/val unitless MAE / training SD (regression; plus each target's
    test MAE in its unit) or macro AUC, next to the baseline's."""
    key = "mae_over_sd" if config.task == "regression" else "auc"
    out = {f"{split}_{key}": summary_metrics[split][key] for split in ("val", "test")} | {
        f"baseline_test_{key}": baseline["test"][key]
    }
    if config.task == "regression":
        out.update({f"test_mae_{k}": v["mae"] for k, v in summary_metrics["test"]["per_target"].items()})
    return out


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
    rows = data.rows[split]
    check_recorded_split(run_dir, split, data.record_ids[rows], config.data)
    model, _ = load_checkpoint(run_dir / "best", device="cpu")
    source = BatchSource(data.inputs, data.y, rows, next(model.parameters()).device)
    out = predict_rows(model, source, rows, config.batch_size, None)
    return data.y_eval[rows], outputs_to_predictions(out, config, data), list(data.names)


def check_recorded_split(run_dir: Path, split: str, record_ids, data: str) -> None:
    """Refuse rows rebuilt now that are not the ``split`` records the run recorded in ``records.json``.

    Raises
    ------
    ValueError
        Naming the run directory, the split and the data when they differ (or nothing was recorded).
    """
    path = Path(run_dir) / "records.json"
    if not path.exists():
        raise ValueError(f"{path}: missing; cannot check that the {split} records are the run's own")
    recorded = json.loads(path.read_text()).get(split)
    if recorded is None or [str(r) for r in record_ids] != [str(r) for r in recorded]:
        raise ValueError(
            f"{Path(run_dir).name}: its {split} records ({path}) differ from those rebuilt now from {data}; "
            "the data changed since the run"
        )
