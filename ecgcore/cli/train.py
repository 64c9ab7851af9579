"""``python -m ecgcore train``: train a model, record the run, print its id and final metrics as JSON.

Options not given keep :class:`ecgcore.train.config.TrainConfig`'s defaults (or the values of
``--config-json``). Under ``torchrun --nproc_per_node=N -m ecgcore train ...`` the run is data
parallel (DDP) and only rank 0 prints.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ecgcore.progress import cli_progress


def json_value(text: str) -> object:
    """A JSON option's value; argparse shows the reason it is not JSON (not "invalid loads value")."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None


#: option -> (TrainConfig field, type, help); every one defaults to "not given".
_OPTIONS: dict[str, tuple[str, type, str]] = {
    "--task": ("task", str, "regression | classification"),
    "--targets": ("targets", str, "regression targets, e.g. hr,pr,qrs,qt"),
    "--label-mode": ("label_mode", str, "classification: single (softmax) | multi (BCE)"),
    "--data": ("data", str, "source: deepfake:DIR, ptbxl:DIR (or ptbxl:bundled), wfdb:DIR"),
    "--subset": ("subset", str, "PTB-XL half A or B"),
    "--split-seed": ("split_seed", int, "seed of the PTB-XL halves and of record subsampling"),
    "--train-fraction": ("train_fraction", float, "seeded fraction of the training records to use"),
    "--max-records": ("max_records", int, "cap on records (seeded sample)"),
    "--model": ("model", str, "model name (see ecgcore.models.list_models)"),
    "--model-kwargs": ("model_kwargs", json_value, "model arguments as JSON, e.g. '{\"depth\": 3}'"),
    "--leads": ("leads", str, "leads, e.g. 8, 12 or I,II,V1"),
    "--fs": ("fs", float, "sampling rate of the model input (Hz)"),
    "--duration": ("duration", float, "seconds of signal per record"),
    "--normalize": ("normalize", str, "zscore | minmax | train_standardize | none"),
    "--epochs": ("epochs", int, "epochs"),
    "--batch-size": ("batch_size", int, "global batch size"),
    "--lr": ("lr", float, "learning rate (peak rate for onecycle)"),
    "--optimizer": ("optimizer", str, "adam | adamw | sgd (momentum 0.9)"),
    "--weight-decay": ("weight_decay", float, "weight decay"),
    "--schedule": ("schedule", str, "onecycle | exponential | plateau | none"),
    "--lr-gamma": ("lr_gamma", float, "per-epoch factor of the exponential schedule"),
    "--loss": ("loss", str, "regression loss: l1 | mse"),
    "--grad-clip": ("grad_clip", float, "gradient norm clip (0 = off)"),
    "--patience": ("patience", int, "early stopping after this many epochs without improvement"),
    "--monitor": ("monitor", str, "auto (val loss) | val_loss | mae | auc"),
    "--seed": ("seed", int, "random seed"),
    "--device": ("device", str, "auto | cpu | cuda | cuda:1 | mps"),
    "--representation": (
        "representation",
        str,
        "model input: signal | chart | chart2 | gaf | gadf | mtf | rp | signal+chart | signal+gaf | gaf+mtf",
    ),
    "--transfer": (
        "transfer",
        json_value,
        'transfer settings as JSON, e.g. \'{"sources": ["RUN_ID"], "approach": "qrs", "strategy": '
        '"linear_probe"}\'; keys: sources, approach (combined | qrs | pretrained | continue), strategy '
        "(linear_probe | gradual_unfreeze | discriminative), lr_factor (default 2.6), init (pretrained | random)",
    ),
}
_FLAGS: dict[str, tuple[str, bool, str]] = {
    "--no-amp": ("amp", False, "train in fp32 (default: mixed precision where the device supports it)"),
    "--no-bandpass": ("bandpass", False, "skip the band-pass filter"),
    "--compile": ("compile", True, "torch.compile the model"),
    "--augment": ("augment", True, "augment training batches"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for option, (_, kind, text) in _OPTIONS.items():
        parser.add_argument(option, type=kind, default=None, help=text)
    for flag, (_, _, text) in _FLAGS.items():
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument(
        "--config-json", type=Path, help="a TrainConfig as a JSON file (options given override it)"
    )
    parser.add_argument("--runs-dir", type=Path, help="run store directory (default: $ECGLAB_HOME/runs)")
    parser.add_argument("--run-id", help="id of the run (the worker passes the queued run's id)")
    parser.add_argument("--resume", action="store_true", help="continue --run-id from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of the command line (``--config-json`` first, then the options given)."""
    from ecgcore.train.config import TrainConfig

    values = json.loads(args.config_json.read_text()) if args.config_json else {}
    for option, (name, _, _) in _OPTIONS.items():
        given = getattr(args, option[2:].replace("-", "_"))
        if given is not None:
            values[name] = given
    for flag, (name, value, _) in _FLAGS.items():
        if getattr(args, flag[2:].replace("-", "_")):
            values[name] = value
    if values.get("grad_clip") == 0:
        values["grad_clip"] = None
    return TrainConfig.from_dict(values)


def main(args: argparse.Namespace) -> int:
    from ecgcore.runs import run_training

    if args.resume and not args.run_id:
        raise ValueError("--resume needs --run-id")
    if args.resume and not args.config_json:
        from ecgcore.runs.store import RunStore

        config = RunStore(args.runs_dir).config(args.run_id)
    else:
        config = config_from_args(args)  # validated by run_training before a run exists
    is_main = int(os.environ.get("RANK", "0")) == 0
    progress = cli_progress("train") if is_main and not args.quiet else None
    summary = run_training(
        config, runs_dir=args.runs_dir, run_id=args.run_id, resume=args.resume, progress=progress
    )
    if is_main:
        print(json.dumps(summary, indent=2, default=str))
    return 0 if summary["status"] == "done" else 1
