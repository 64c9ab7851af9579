"""Self-describing checkpoints that are never unpickled (the predictor built from them is ecgcore.predict).

A checkpoint is one ``.safetensors`` file: the model's state dict plus, in the file's metadata
header, a JSON description (model name and arguments, leads, sampling rate, preprocessing and its
statistics, targets or classes, target mean/SD, metrics, git commit). Both are written in one
atomic rename, so weights and description can never disagree; a ``.json`` copy of the description
sits beside it for people. The resumable training state (optimiser, scheduler, RNG) is a
``torch.save`` of tensors and plain values, loaded with ``weights_only=True``: loading any of these
files never runs pickled code.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ecgcore.paths import PROJECT_DIR, atomic_write_bytes, atomic_write_json

FORMAT = "ecglab-checkpoint/1"
_META_KEY = "ecglab"


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The project's current git commit, or ``None`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def jsonable(obj: Any) -> Any:
    """Numpy arrays / scalars and tuples -> lists and Python numbers, recursively."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _weights_path(path: str | Path) -> Path:
    path = Path(path)
    return (
        path
        if path.suffix == ".safetensors"
        else path.with_name(path.name.removesuffix(".json") + ".safetensors")
    )


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A true copy of the model's weights on the CPU (not references that later optimiser steps change)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: torch.nn.Module | dict[str, torch.Tensor], meta: dict) -> Path:
    """Write weights + description to ``path`` (``.safetensors`` added if missing) and a ``.json`` copy.

    Parameters
    ----------
    path
        Target file or stem, e.g. ``run_dir / "best"``.
    model
        The model (its ``config`` is recorded as ``meta["model"]`` when not given) or a state dict.
    meta
        JSON-able description; numpy values are converted.

    Returns
    -------
    Path
        The ``.safetensors`` file.
    """
    weights = _weights_path(path)
    if isinstance(model, torch.nn.Module):
        meta = {"model": getattr(model, "config", None), **meta}
        state = cpu_state_dict(model)
    else:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.items()}
    meta = jsonable({"format": FORMAT, "git_commit": git_commit(), "torch": torch.__version__, **meta})
    atomic_write_bytes(weights, st_save(state, metadata={_META_KEY: json.dumps(meta)}))
    atomic_write_json(weights.with_suffix(".json"), meta)
    return weights


class CheckpointError(ValueError):
    """A checkpoint whose description cannot be used; the message names the file and the field."""


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict and description of a checkpoint file, read without unpickling anything.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a safetensors file written by :func:`save_checkpoint` (e.g. a pickle).
    """
    weights = _weights_path(path)
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: no checkpoint file")
    data = weights.read_bytes()
    try:
        state = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except Exception as exc:  # safetensors raises its own error type for anything that is not safetensors
        raise ValueError(
            f"{weights}: not a safetensors checkpoint ({exc}); refusing to load it any other way"
        ) from exc
    meta_json = header.get("__metadata__", {}).get(_META_KEY)
    if meta_json is None:
        raise ValueError(
            f"{weights}: safetensors file without an ECG Lab description (metadata key {_META_KEY!r})"
        )
    return state, json.loads(meta_json)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights; returns ``(model in eval mode, meta)``."""
    from ecgcore.models import create_model

    state, meta = read_checkpoint(path)
    described = meta.get("model")
    if not isinstance(described, dict) or "name" not in described:
        raise CheckpointError(
            f"{_weights_path(path)}: description field 'model' is {described!r}; expected the model's name and arguments"
        )
    try:
        model = create_model(**described)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{_weights_path(path)}: description field 'model': {exc}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(
            f"{_weights_path(path)}: the weights do not fit the model its description names ({first})"
        ) from None
    return model.to(device).eval(), meta


def save_training_state(path: str | Path, state: dict) -> None:
    """Write resumable training state (tensors, numbers, strings, nested dicts/lists) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_training_state(path: str | Path) -> dict:
    """Read :func:`save_training_state` output with ``weights_only=True`` (arbitrary objects are refused)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no training state to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle.UnpicklingError for anything beyond tensors and plain data
        raise ValueError(f"{path}: refused to load (only tensors and plain data are allowed): {exc}") from exc
