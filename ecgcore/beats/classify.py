"""Beat classifiers: a trained beat model behind one small interface, and where the default one lives.

A classifier checkpoint is an ordinary ECG Lab checkpoint (:func:`ecgcore.train.checkpoint.save_checkpoint`:
safetensors weights, the model's config and a description); its ``beats`` entry says what the model
expects: ``{"half": 150, "fs": 360.0, "classes": ["N", "S", "V", "F", "Q"], "inputs": "leads2+rr2"}``
(``inputs``: a :data:`ecgcore.beats.features.LAYOUTS` name; the classifier builds its inputs in it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgcore.beats.aami import CLASSES
from ecgcore.beats.features import CLASSIFIER_HALF, INPUTS, LAYOUTS, MODEL_FS, layout_input, uses_templates
from ecgcore.paths import PROJECT_DIR
from ecgcore.train.checkpoint import load_checkpoint

#: The shipped N/S/V/F/Q classifier (see assets/models/README.md, its model card).
DEFAULT_MODEL = PROJECT_DIR / "assets" / "models" / "beats-default.safetensors"


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


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``None``: leave the setting), then restore it."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class NativeLSTM(nn.Module):
    """An LSTM run by PyTorch's own kernels instead of oneDNN's (same weights, same results).

    For the beat models' short sequences and small hidden size oneDNN's RNN is many times slower than
    the native one on a CPU (measured: 0.92 s against 0.11 s for 2,048 windows on 2 threads), and it
    degrades badly when the cores are shared; its convolutions stay on oneDNN, where they are fast.
    """

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        with warnings.catch_warnings():  # flags() warns about TF32 on Intel GPUs, which this is not
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=False):
                return self.lstm(x, *args)


def inference_net(model: nn.Module) -> nn.Module:
    """The network :meth:`BeatClassifier.predict_proba` runs: an eval copy of ``model`` with its batch
    norms folded (:func:`ecgcore.predict.fold_batchnorm`) and its LSTMs on native kernels."""
    from ecgcore.predict import fold_batchnorm

    net, _ = fold_batchnorm(model)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.LSTM):
                setattr(module, name, NativeLSTM(child))
    return net


#: Intra-op threads of beat inference. The beat model's layers are small: with more threads OpenMP's
#: synchronisation costs more than it saves, and on a shared machine it collapses (measured on the 2-hour
#: slice of the bench record, 7,971 beats: 1.1 s on 1 thread at load 13; on 2 threads 1.8 s at load 3.6
#: and 7.4 s at load 6.6). Analysis overlaps inference with feature extraction instead, which keeps the
#: second core busy.
INFERENCE_THREADS = 1


@dataclass
class BeatClassifier:
    """A beat model in eval mode with what it expects; :meth:`predict_proba` maps windows to probabilities.

    Predictions run on :func:`inference_net` (built once, from the weights ``model`` holds then) under
    ``torch.inference_mode``; ``model`` itself stays the training network (gradients, attributions).
    """

    model: nn.Module
    half: int = CLASSIFIER_HALF
    classes: tuple[str, ...] = CLASSES
    source: str = ""
    threads: int | None = INFERENCE_THREADS
    net: nn.Module | None = field(default=None, repr=False)
    inputs: str = INPUTS

    @property
    def templates(self) -> bool:
        """Whether the model's input layout takes the dominant-template channels."""
        return uses_templates(self.inputs)

    def model_input(self, features: dict[str, np.ndarray], rr: np.ndarray) -> np.ndarray:
        """This model's inputs from :func:`ecgcore.beats.features.chunk_features`'s output (computed
        with ``templates=self.templates``) and the beats' RR context."""
        return layout_input(self.inputs, features, self.half, rr)

    def predict_proba(self, inputs: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Class probabilities ``[n, classes]`` for model inputs ``[n, C, 2*half]`` in the model's layout
        (:meth:`model_input`)."""
        if self.net is None:
            self.net = inference_net(self.model)
        out = []
        with torch.inference_mode(), flush_denormals(), torch_threads(self.threads):
            for start in range(0, len(inputs), batch_size):
                x = torch.from_numpy(
                    np.ascontiguousarray(inputs[start : start + batch_size], dtype=np.float32)
                )
                out.append(torch.softmax(self.net(x).float(), dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)


def describe(half: int = CLASSIFIER_HALF, inputs: str = INPUTS) -> dict:
    """The ``beats`` entry of a classifier checkpoint's description."""
    return {"half": half, "fs": MODEL_FS, "classes": list(CLASSES), "inputs": inputs}


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
        or spec.get("inputs") not in LAYOUTS
        or float(spec.get("fs", 0)) != MODEL_FS
        or tuple(spec.get("classes", ())) != CLASSES
    ):
        raise ValueError(f"{path}: not a beat classifier checkpoint (its description: {spec!r})")
    return BeatClassifier(model=model, half=int(spec["half"]), source=str(path), inputs=spec["inputs"])


def run_checkpoint(run_id: str) -> Path:
    """The best checkpoint of a finished run in the run store."""
    from ecgcore.runs.store import RunStore

    store = RunStore()
    store.get_run(run_id)  # KeyError naming the store if the run does not exist
    return store.run_dir(run_id) / "best.safetensors"
