"""Models by name: :func:`register`, :func:`create_model`, :func:`list_models`, :func:`model_stats`."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from ecgcore.models.base import ECGModel

Builder = Callable[..., ECGModel]


@dataclass(frozen=True)
class ModelInfo:
    """What the dashboard and ``--help`` show about a model."""

    name: str
    description: str
    reference: str


_REGISTRY: dict[str, tuple[ModelInfo, Builder]] = {}


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of the CPU fused attention kernel, which ``FlopCounterMode`` has no formula for."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}
#: Names :func:`create_model` builds but :func:`list_models` leaves out (built by other code, e.g. transfer).
_UNLISTED: set[str] = set()


def register(
    name: str, description: str, reference: str, listed: bool = True
) -> Callable[[Builder], Builder]:
    """Decorator adding ``builder(n_leads, n_outputs, **kwargs) -> ECGModel`` to the registry as ``name``.

    ``listed=False`` hides it from :func:`list_models` (a model one does not pick from a menu).
    """

    def add(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = (ModelInfo(name, description, reference), builder)
        if not listed:
            _UNLISTED.add(name)
        return builder

    return add


def list_models() -> list[ModelInfo]:
    """The models one can train from scratch, sorted by name."""
    return sorted(
        (info for info, _ in _REGISTRY.values() if info.name not in _UNLISTED), key=lambda i: i.name
    )


def model_signature(name: str) -> inspect.Signature:
    """The builder's signature of model ``name`` (its keyword arguments, defaults and annotations)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_REGISTRY)}")
    return inspect.signature(_REGISTRY[name][1])


def create_model(name: str, n_leads: int, n_outputs: int, **kwargs) -> ECGModel:
    """Build the model ``name`` for ``n_leads`` input leads and ``n_outputs`` outputs.

    The returned model's ``config`` holds every argument, defaults included, so that
    ``create_model(**model.config)`` rebuilds the same architecture even if a default changes later.

    ``frozen`` (any model): ``"backbone"`` or a list of layer-group names whose parameters are not trained
    (``requires_grad=False``; BatchNorm statistics still adapt), e.g. to train the head alone.

    Raises
    ------
    ValueError
        For an unknown name, a non-positive size, or a keyword the model does not take.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_REGISTRY)}")
    if int(n_leads) < 1 or int(n_outputs) < 1:
        raise ValueError(f"model {name!r}: n_leads={n_leads} and n_outputs={n_outputs} must be positive")
    builder = _REGISTRY[name][1]
    frozen = kwargs.pop("frozen", None)
    try:
        bound = inspect.signature(builder).bind(int(n_leads), int(n_outputs), **kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r} does not take these arguments {sorted(kwargs)}: {err}") from None
    bound.apply_defaults()
    model = builder(*bound.args, **bound.kwargs)
    model.config = {"name": name, **bound.arguments}
    if frozen:
        freeze(model, frozen)
        model.config["frozen"] = frozen
    return model


def freeze(model: ECGModel, frozen: str | Sequence[str]) -> None:
    """Stop training the backbone (``"backbone"``) or the named layer groups of ``model``."""
    groups = dict(model.layer_groups())
    names = [n for n in groups if n != "head"] if frozen == "backbone" else list(frozen)
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise ValueError(f"frozen: no layer group {unknown}; the model has {list(groups)}")
    for n in names:
        for module in groups[n]:
            module.requires_grad_(False)


#: The shape of one input without the batch axis, e.g. ``(8, 5000)`` or ``(1, 224, 224)``; a fusion model
#: takes a tuple of them.
InputShape = tuple[int, ...]


def example_input(
    shape: InputShape | Sequence[InputShape], device: torch.device | str = "cpu"
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Zeros of one sample (batch 1) of ``shape``, or a tuple of such for a tuple of shapes."""
    if shape and isinstance(shape[0], (tuple, list)):
        return tuple(torch.zeros(1, *s, device=device) for s in shape)
    return torch.zeros(1, *shape, device=device)


def model_stats(
    model: torch.nn.Module,
    n_leads: int,
    n_samples: int | None = None,
    *,
    input_shape: InputShape | Sequence[InputShape] | None = None,
) -> dict[str, int]:
    """Parameter count and multiply-accumulates for one sample of ``n_leads x n_samples``.

    Image and fusion models give ``input_shape`` instead (``(C, H, W)``, or a tuple of shapes).

    MACs are ``torch.utils.flop_counter.FlopCounterMode``'s FLOPs / 2 over one forward pass in eval
    mode: convolutions, linear layers, recurrent cells and attention matmuls (elementwise operations,
    normalisation and pooling are not counted). oneDNN is switched off during the count because its fused
    LSTM kernel is invisible to the counter, and the CPU fused attention kernel gets the counter's own
    attention formula; the model's train/eval mode is restored afterwards.
    """
    params = sum(p.numel() for p in model.parameters())
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # oneDNN's TF32 notice on CPU-only builds
            with (
                torch.no_grad(),
                torch.backends.mkldnn.flags(enabled=False),
                FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter,
            ):
                x = example_input(input_shape or (n_leads, n_samples), device)
                model(*x) if isinstance(x, tuple) else model(x)
    finally:
        model.train(was_training)
    return {"params": int(params), "macs": int(counter.get_total_flops() // 2)}


def model_efficiency(
    model: torch.nn.Module, input_shape: InputShape | Sequence[InputShape], repeats: int = 5
) -> dict[str, float]:
    """:func:`model_stats` plus disk size and inference time, for the efficiency plot of any model.

    ``disk_bytes``: the safetensors file of its weights (what a checkpoint stores);
    ``infer_ms``: median wall time of ``repeats`` forward passes of one sample in eval mode, after one
    warm-up pass, on the model's device with torch's current thread count.
    """
    from safetensors.torch import save as st_save

    stats: dict[str, float] = dict(model_stats(model, 0, 0, input_shape=input_shape))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    stats["disk_bytes"] = len(st_save(state))
    device = next(model.parameters()).device
    x = example_input(input_shape, device)
    was_training = model.training
    model.eval()
    times = []
    try:
        run = (lambda: model(*x)) if isinstance(x, tuple) else (lambda: model(x))
        with torch.no_grad():
            run()
            for _ in range(max(1, repeats)):
                start = time.perf_counter()
                run()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    stats["infer_ms"] = 1000 * sorted(times)[len(times) // 2]
    return stats
