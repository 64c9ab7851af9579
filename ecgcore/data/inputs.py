"""Model inputs by name: what a run feeds its model, looked up by ``TrainConfig.representation``.

An input builder takes ``(dataset, prep, progress)`` and returns an array ``[N, ...]`` row-aligned with
``load_cached(dataset, prep).index`` (signals float32; images uint8 ``[N, C, H, W]``, which the trainer
scales to float / 255 when it batches them), or a tuple of such arrays for models with several inputs.
A new representation registers itself with ``@register_input("name")`` in its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ecgcore.progress import ProgressFn

if TYPE_CHECKING:
    from ecgcore.data import ECGDataset, Preprocessing

Inputs = Union[np.ndarray, tuple[np.ndarray, ...]]  # noqa: UP007  (a runtime alias)
#: ``(dataset, prep, progress) -> Inputs``.
InputBuilder = Callable[[Any, Any, "ProgressFn | None"], Inputs]

#: Registered representations: name -> builder.
INPUTS: dict[str, InputBuilder] = {}


def register_input(name: str) -> Callable[[InputBuilder], InputBuilder]:
    """Decorator: register an input builder under ``name`` (an existing name is an error)."""

    def decorate(builder: InputBuilder) -> InputBuilder:
        if name in INPUTS and INPUTS[name] is not builder:
            raise ValueError(f"input representation {name!r} is already registered")
        INPUTS[name] = builder
        return builder

    return decorate


def build_inputs(
    name: str, dataset: ECGDataset, prep: Preprocessing, progress: ProgressFn | None = None
) -> Inputs:
    """The ``name`` representation of ``dataset``; ``ValueError`` naming the known ones for an unknown name."""
    if name not in INPUTS:
        raise ValueError(f"unknown input representation {name!r}; expected one of {sorted(INPUTS)}")
    return INPUTS[name](dataset, prep, progress)


@register_input("signal")
def signal_inputs(dataset: ECGDataset, prep: Preprocessing, progress: ProgressFn | None = None) -> np.ndarray:
    """The preprocessed signals ``[N, leads, samples]`` from the cache (memory-mapped)."""
    from ecgcore.data import load_cached

    return load_cached(dataset, prep, progress=progress).signals
