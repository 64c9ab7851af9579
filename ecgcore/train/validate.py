"""Settings checked before a run exists: :func:`validate` a :class:`TrainConfig` in a second or two.

:meth:`TrainConfig.validate` checks choices and signs as a config is built; this adds what needs the
machine or the model: numbers that must be finite, a sampling rate the band-pass filter and the models
can use, early-stopping patience, the device, the model's keyword arguments (names and types), and the
model's size: it is built on PyTorch's ``meta`` device (shapes only, nothing allocated) and run once
on a meta input, which gives its parameter count, an estimate of training memory, and shows that the
input is long enough for it. The command line and the Train page call it before a run is created, so
a mistyped setting leaves no failed run behind and gets one line naming the setting.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass

import torch

from ecgcore.train.config import TrainConfig
from ecgcore.train.device import DeviceError, resolve_device

#: Sampling rates the band-pass filter (0.5-40 Hz) and the models' kernels are meant for (Hz).
FS_RANGE: tuple[float, float] = (50.0, 2000.0)
#: Bytes per parameter while training: fp32 weights, gradients and two Adam moments.
BYTES_PER_PARAM = 16
#: Activations are kept for the backward pass and their gradients made: about twice the forward's.
ACTIVATION_FACTOR = 2
#: Outputs assumed for a classification model before the data says how many classes it has.
ASSUMED_CLASSES = 5


class ConfigError(ValueError):
    """A setting that cannot train; the message names the setting, its value and what is allowed."""


@dataclass(frozen=True)
class ModelEstimate:
    """What a model of the config would be, from a build on the meta device."""

    params: int
    #: Estimated bytes to train it at the config's batch size (parameters, optimiser, activations).
    train_bytes: int


def validate(
    config: TrainConfig, *, check_device: bool = True, check_model: bool = True
) -> ModelEstimate | None:
    """Raise :class:`ConfigError` for the first setting that cannot train; else the model's estimate.

    ``check_model=False`` skips building the model on the meta device (a transfer run's model comes
    from its source runs and is not checked here).
    """
    _check_numbers(config)
    if check_device:
        _check_device(config.device)
    if check_model and not config.transfer:
        return estimate_model(config)
    return None


def _check_numbers(config: TrainConfig) -> None:
    if not config.leads:
        raise ConfigError("--leads '': give at least one lead, e.g. 8, 12 or I,II,V1")
    finite = {
        "lr": (config.lr, "a finite positive number, e.g. 1e-3", lambda v: v > 0),
        "fs": (config.fs, f"a rate from {FS_RANGE[0]:g} to {FS_RANGE[1]:g} Hz", _fs_ok),
        "duration": (config.duration, "a finite positive number of seconds", lambda v: v > 0),
        "weight_decay": (config.weight_decay, "a finite number, 0 or more", lambda v: v >= 0),
        "lr_gamma": (config.lr_gamma, "a factor in (0, 1]", lambda v: 0 < v <= 1),
        "train_fraction": (config.train_fraction, "a fraction in (0, 1]", lambda v: 0 < v <= 1),
    }
    if config.grad_clip is not None:
        finite["grad_clip"] = (config.grad_clip, "a finite positive norm (0 or none: off)", lambda v: v > 0)
    for name, (value, expected, ok) in finite.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{_option(name)} {value!r}: expected {expected}") from None
        if not (math.isfinite(number) and ok(number)):
            raise ConfigError(f"{_option(name)} {value!r}: expected {expected}")
    if config.patience is not None and int(config.patience) < 1:
        raise ConfigError(
            f"--patience {config.patience}: expected at least 1 epoch (or leave it out: no early stop)"
        )
    n = config.fs * config.duration
    if n < 2 * config.fs or n > 600 * FS_RANGE[1]:
        raise ConfigError(
            f"--duration {config.duration:g}: expected 2 to {600 * FS_RANGE[1] / config.fs:g} s at {config.fs:g} Hz"
        )


def _fs_ok(fs: float) -> bool:
    return FS_RANGE[0] <= fs <= FS_RANGE[1]


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_device(name: str) -> None:
    """The device must exist here (:func:`ecgcore.train.device.resolve_device`, which allocates nothing)."""
    try:
        resolve_device(name)
    except DeviceError as exc:
        raise ConfigError(f"--device {name}: {exc}") from None
    except RuntimeError:  # torch.device() of an unknown type
        raise ConfigError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None


def _check_model_kwargs(config: TrainConfig) -> None:
    """Names the model takes, and values of the type of its defaults (a JSON number for a number ...)."""
    from ecgcore.models.registry import model_signature

    try:
        parameters = dict(model_signature(config.model).parameters)
    except ValueError as exc:
        raise ConfigError(f"--model {config.model}: {exc}") from None
    accepted = {k: p for k, p in list(parameters.items())[2:] if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if not isinstance(config.model_kwargs, dict):
        raise ConfigError(
            f"--model-kwargs {config.model_kwargs!r}: expected a JSON object of the model's arguments"
        )
    for key, value in config.model_kwargs.items():
        if key == "frozen":  # any model's (create_model freezes those layer groups; the build checks them)
            continue
        if key not in accepted:
            raise ConfigError(
                f"--model-kwargs: {config.model} takes no argument {key!r}; it takes {', '.join(accepted) or 'none'}"
            )
        default = accepted[key].default
        if default is inspect.Parameter.empty or default is None or value is None:
            continue
        if not _same_kind(value, default):
            raise ConfigError(
                f"--model-kwargs: {config.model}'s {key} takes {_kind(default)} (default {default!r}), got {value!r}"
            )
        if isinstance(default, int) and not isinstance(default, bool) and default > 0 and value < 0:
            raise ConfigError(  # a size or a count: a negative one would fail deep inside the model
                f"--model-kwargs: {config.model}'s {key} takes a whole number, 0 or more (default {default}), "
                f"got {value!r}"
            )


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _same_kind(value: object, default: object) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def estimate_model(config: TrainConfig) -> ModelEstimate:
    """Build the config's model on the meta device (nothing allocated) and estimate its training memory.

    Raises
    ------
    ConfigError
        Unknown model or arguments, an input too short for it, or more memory than this machine has.
    """
    from ecgcore.models import create_model, example_input

    _check_model_kwargs(config)
    n_outputs = len(config.targets) if config.task == "regression" else ASSUMED_CLASSES
    n_samples = round(config.fs * config.duration)
    shape = _input_shape(config, n_samples)
    channels = shape[0][0] if isinstance(shape[0], tuple) else shape[0]
    with torch.device("meta"):
        try:
            model = create_model(config.model, channels, n_outputs, **config.model_kwargs)
        except (ValueError, TypeError, RuntimeError) as exc:  # RuntimeError: a negative width or depth
            raise ConfigError(f"--model-kwargs {config.model_kwargs}: {exc}") from None
        params = sum(p.numel() for p in model.parameters())
        limit, where = _memory_limit(config.device)
        weights = params * BYTES_PER_PARAM
        if weights > limit:
            raise ConfigError(_too_big(config, params, weights, limit, where))
        activations = [0]

        def count(_module, _inputs, output) -> None:
            if torch.is_tensor(output):
                activations[0] += output.numel() * output.element_size()

        model.eval()  # one sample: batch norm in training mode would refuse it
        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        try:
            x = example_input(shape, "meta")
            model(*x) if isinstance(x, tuple) else model(x)
        except (RuntimeError, ValueError, IndexError) as exc:
            what = (
                f"{len(config.leads)} leads x {n_samples} samples ({config.duration:g} s at {config.fs:g} Hz)"
                if config.representation == "signal"
                else f"the {config.representation!r} input {shape}"
            )
            given = f" with --model-kwargs {config.model_kwargs}" if config.model_kwargs else ""
            raise ConfigError(f"--model {config.model}{given} cannot take {what}: {exc}") from None
        finally:
            for hook in hooks:
                hook.remove()
    total = weights + ACTIVATION_FACTOR * activations[0] * config.batch_size
    if total > limit:
        raise ConfigError(_too_big(config, params, total, limit, where))
    return ModelEstimate(params=int(params), train_bytes=int(total))


def _input_shape(config: TrainConfig, n_samples: int) -> tuple:
    """One sample's input shape: ``(leads, samples)``, an image's ``(C, H, W)`` or a tuple of shapes."""
    if config.representation == "signal":
        return (len(config.leads), n_samples)
    from ecgcore.data.image_inputs import input_shape

    try:
        return input_shape(config.representation, config.preprocessing())
    except KeyError:  # another registered input (e.g. Fourier parts): shaped like the signal
        return (len(config.leads), n_samples)


def _too_big(config: TrainConfig, params: int, need: float, limit: float, where: str) -> str:
    return (
        f"--model {config.model} with {config.model_kwargs or 'its defaults'}: {params:,} parameters, about "
        f"{need / 2**30:.1f} GiB to train at batch size {config.batch_size}, more than the {limit / 2**30:.1f} GiB "
        f"of {where}; make the model or the batch smaller"
    )


def _memory_limit(device: str) -> tuple[float, str]:
    """Memory a run on ``device`` can use (bytes) and where it is: the GPU's, or this machine's RAM."""
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        index = int(device.partition(":")[2] or 0)
        return float(torch.cuda.get_device_properties(index).total_memory), f"GPU {index}"
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "this machine's memory"
