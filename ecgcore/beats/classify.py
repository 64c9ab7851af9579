"""Beat classifiers: a trained beat model behind one small interface, and where the default one lives.

A classifier checkpoint is an ordinary ECG Lab checkpoint (:func:`ecgcore.train.checkpoint.save_checkpoint`:
safetensors weights, the model's config and a description); its ``beats`` entry says what the model
expects: ``{"half": 150, "fs": 360.0, "classes": ["N", "S", "V", "F", "Q"], "inputs": "leads2+rr2"}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecgcore.beats.aami import CLASSES
from ecgcore.beats.features import CLASSIFIER_HALF, MODEL_FS
from ecgcore.paths import PROJECT_DIR
from ecgcore.train.checkpoint import load_checkpoint

#: The shipped N/S/V/F/Q classifier (see assets/models/README.md, its model card).
DEFAULT_MODEL = PROJECT_DIR / "assets" / "models" / "beats-default.safetensors"
#: What the beat-model description must say (``meta["beats"]``), checked on loading.
INPUTS = "leads2+rr2"


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero inside the block, then restore IEEE behaviour.

    Tiny activations deep in the beat network slow CPU convolutions several times over; flushing them
    changes no prediction. The setting is process-wide, so it is switched off again on leaving: other
    code (and hypothesis's float strategies) must see subnormals.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@dataclass
class BeatClassifier:
    """A beat model in eval mode with what it expects; :meth:`predict_proba` maps windows to probabilities."""

    model: torch.nn.Module
    half: int = CLASSIFIER_HALF
    classes: tuple[str, ...] = CLASSES
    source: str = ""

    @torch.no_grad()
    def predict_proba(self, inputs: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Class probabilities ``[n, classes]`` for model inputs ``[n, 4, 2*half]``
        (:func:`ecgcore.beats.features.model_input`)."""
        out = []
        with flush_denormals():
            for start in range(0, len(inputs), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size]))
                out.append(torch.softmax(self.model(x).float(), dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)


def describe(half: int = CLASSIFIER_HALF) -> dict:
    """The ``beats`` entry of a classifier checkpoint's description."""
    return {"half": half, "fs": MODEL_FS, "classes": list(CLASSES), "inputs": INPUTS}


def load_classifier(path: str | Path | None = None) -> BeatClassifier:
    """The classifier in checkpoint ``path`` (default: the shipped :data:`DEFAULT_MODEL`).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a checkpoint that is not a
    beat classifier (no ``beats`` description, or another rate, input layout or class list).
    """
    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no beat classifier there"
            + (
                " (the default ships with ECG Lab: run `python -m ecgcore beats train-default`)"
                if path == DEFAULT_MODEL
                else ""
            )
        )
    model, meta = load_checkpoint(path)
    spec = meta.get("beats")
    if (
        not spec
        or spec.get("inputs") != INPUTS
        or float(spec.get("fs", 0)) != MODEL_FS
        or tuple(spec.get("classes", ())) != CLASSES
    ):
        raise ValueError(f"{path}: not a beat classifier checkpoint (its description: {spec!r})")
    return BeatClassifier(model=model, half=int(spec["half"]), source=str(path))


def run_checkpoint(run_id: str) -> Path:
    """The best checkpoint of a finished run in the run store."""
    from ecgcore.runs.store import RunStore

    store = RunStore()
    store.get_run(run_id)  # KeyError naming the store if the run does not exist
    return store.run_dir(run_id) / "best.safetensors"
