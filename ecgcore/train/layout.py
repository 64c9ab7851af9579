"""Channels-last layout for 1D convolutional networks on CPUs: every 1D signal ``[B, C, S]`` is carried as a
2D image ``[B, C, 1, S]`` in ``torch.channels_last`` memory (channels innermost), end to end.

Why: for bf16, oneDNN's AMX convolutions (forward, backward-data and backward-weights) run on channels-last
("acdb") data. Fed plain ``[B, C, S]`` tensors, it reorders every input to channels-last and every output
back, per convolution and per pass: with ``ONEDNN_VERBOSE`` on the inception1d training step at 500 Hz the
reorders took more time than the convolutions themselves (see issue 20's note). In channels-last end to end
the activations stay in the convolutions' own layout; only the (small) weights are reordered.

:func:`channels_last` converts a model in place by changing the class of its supported layers to a subclass
that also takes 4D inputs (the parameters, buffers, state-dict keys and optimiser state are the same
objects); a forward pre-hook turns the model's ``[B, C, S]`` input into the 2D view. :func:`plain_layout`
undoes it. Only models built from the layers in :data:`SUPPORTED` are converted (others are left as they
are and :func:`channels_last` returns False): the model's own forward code must be layout-agnostic (cat on
dim 1, adds, ReLU), which is checked for the known container classes only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecgcore.models.base import ConcatPool1d, ECGModel, Head
from ecgcore.models.inception1d import InceptionBackbone, InceptionBlock, Shortcut

_HOOK = "_ecg_channels_last_hook"


class _Conv1d2d(nn.Conv1d):
    """A Conv1d that computes a ``[B, C, 1, S]`` input as a 1-high 2D convolution (same weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("channels-last layout supports zero padding given as numbers only")
        return F.conv2d(
            x,
            self.weight.unsqueeze(2),
            self.bias,
            (1, self.stride[0]),
            (0, self.padding[0]),
            (1, self.dilation[0]),
            self.groups,
        )


class _BatchNormAnyDim(nn.BatchNorm1d):
    """A BatchNorm1d that also takes ``[B, C, 1, S]`` (the statistics are per channel either way)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2D, 3D or 4D input (got {input.dim()}D input)")


class _MaxPool1d2d(nn.MaxPool1d):
    """A MaxPool1d that pools a ``[B, C, 1, S]`` input along its last axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        return F.max_pool2d(
            x,
            (1, self.kernel_size),
            (1, self.stride),
            (0, self.padding),
            (1, self.dilation),
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class _ConcatPool2d(ConcatPool1d):
    """A ConcatPool1d that pools the last axis of a ``[B, C, 1, S]`` input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(2) if x.dim() == 4 else x)


#: Layers swapped for their 4D-capable subclass.
SWAPS: dict[type, type] = {
    nn.Conv1d: _Conv1d2d, nn.BatchNorm1d: _BatchNormAnyDim, nn.MaxPool1d: _MaxPool1d2d, ConcatPool1d: _ConcatPool2d,
}  # fmt: skip
#: Every module class a converted model may contain (containers whose forward is layout-agnostic).
SUPPORTED: tuple[type, ...] = (
    ECGModel, Head, InceptionBackbone, InceptionBlock, Shortcut, nn.Sequential, nn.ModuleList, nn.ReLU,
    nn.Dropout, nn.Linear, nn.Identity, *SWAPS, *SWAPS.values(),
)  # fmt: skip


def _to_2d(module: nn.Module, args: tuple) -> tuple:
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    return (x, *args[1:])


def supports_channels_last(model: nn.Module) -> bool:
    """Whether every module of ``model`` is one :func:`channels_last` knows to be layout-agnostic."""
    return all(type(m) in SUPPORTED for m in model.modules())


def channels_last(model: nn.Module) -> bool:
    """Run ``model`` in the channels-last 2D layout (in place); False (nothing changed) if unsupported.

    The outputs are the model's own within the rounding of a different convolution algorithm; the
    parameters and the state dict are unchanged, so checkpoints and optimisers do not notice.
    """
    if getattr(model, _HOOK, None) is not None:
        return True
    if not supports_channels_last(model):
        return False
    for module in model.modules():
        if type(module) in SWAPS:
            module.__class__ = SWAPS[type(module)]
    setattr(model, _HOOK, model.register_forward_pre_hook(_to_2d))
    return True


def plain_layout(model: nn.Module) -> None:
    """Undo :func:`channels_last` (the model takes and computes ``[B, C, S]`` again)."""
    hook = getattr(model, _HOOK, None)
    if hook is None:
        return
    hook.remove()
    delattr(model, _HOOK)
    back = {v: k for k, v in SWAPS.items()}
    for module in model.modules():
        if type(module) in back:
            module.__class__ = back[type(module)]


def wants_channels_last(device: torch.device, amp_dtype: torch.dtype | None) -> bool:
    """Whether runs on ``device`` in ``amp_dtype`` use the channels-last layout: CPU bf16 only.

    That is where oneDNN's AMX kernels reorder plain tensors on every convolution. fp32 stays in the plain
    layout (its seeded results are pinned, and oneDNN's fp32 kernels gained nothing consistent from it);
    GPUs are not measured (no GPU was lent to issue 20).
    """
    return device.type == "cpu" and amp_dtype == torch.bfloat16
