"""torchvision's image classifiers as ECG-image models: MobileNetV3, ResNet, EfficientNet, ConvNeXt.

Each is split into the project's shape: the backbone is torchvision's feature extractor up to and
including global pooling (``[B, C, H, W] -> [B, F]``), the head a fresh ``Dropout -> Linear(F, n)``
(the vision study replaced the ImageNet classifier the same way). The first convolution takes
``n_leads`` input channels (1 for a grey chart, 3 for GAF / MTF / RP of three leads).

Weights are random by default. ``pretrained="imagenet"`` loads torchvision's ImageNet weight file
from the torch hub cache (``torch.hub.get_dir()/checkpoints/<file>``) or from ``weights_path``;
nothing is downloaded: when the file is absent the error says which file to place where. With other
than 3 input channels the pretrained first convolution is averaged over RGB and repeated.

torchvision 0.28 from PyPI is built against CUDA torch and its C++ operators do not load beside the
CPU build of torch 2.13; its model definitions are plain Python and do not need them, so
:func:`torchvision_models` imports torchvision with the operator registrations that fail skipped.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup
from ecgcore.models.registry import register

_TV = "Torchvision model zoo (torchvision.models), "


def torchvision_models() -> ModuleType:
    """``torchvision.models``, imported even when torchvision's compiled operators do not match torch."""
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        original = torch.library.register_fake

        def skip_torchvision_ops(op, *args, **kwargs):
            if isinstance(op, str) and op.startswith("torchvision::"):
                return lambda fn: fn
            return original(op, *args, **kwargs)

        torch.library.register_fake = skip_torchvision_ops
        try:
            import torchvision
        finally:
            torch.library.register_fake = original
    return torchvision.models


class PretrainedWeightsMissing(FileNotFoundError):
    """An ImageNet weight file that is not on disk (the message says which file to place where)."""


def imagenet_state(arch: str, weights_path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict of ``arch`` from ``weights_path`` or the torch hub cache; never downloads."""
    tvm = torchvision_models()
    weights = tvm.get_model_weights(arch).DEFAULT
    file_name = weights.url.rsplit("/", 1)[-1]
    path = Path(weights_path) if weights_path else Path(torch.hub.get_dir()) / "checkpoints" / file_name
    if not path.is_file():
        raise PretrainedWeightsMissing(
            f"ImageNet weights for {arch} not found at {path}: place torchvision's file {file_name} "
            f"({weights.url}) there, or give its path (--weights-path); ECG Lab never downloads weights"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path}: not a torchvision state dict for {arch}: {err}") from None


def _adapt_first_conv(conv: nn.Conv2d, n_in: int) -> nn.Conv2d:
    """``conv`` with ``n_in`` input channels; the RGB weights averaged and repeated (scaled to keep the sum)."""
    if conv.in_channels == n_in:
        return conv
    new = nn.Conv2d(
        n_in,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
    )
    with torch.no_grad():
        mean = conv.weight.mean(dim=1, keepdim=True)
        new.weight.copy_(mean.repeat(1, n_in, 1, 1) * (conv.in_channels / n_in))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


class TorchvisionBackbone(Backbone):
    """A torchvision network cut before its classifier: ``stages`` (named), then ``pool``."""

    def __init__(self, stages: list[tuple[str, nn.Module]], pool: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self.pool = pool
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        return self.pool(x)

    def groups(self) -> list[LayerGroup]:
        named = [(name, [stage]) for name, stage in self.stages.items()]
        if any(True for _ in self.pool.parameters()):
            named[-1] = (named[-1][0], [*named[-1][1], self.pool])
        return named

    def last_conv(self) -> nn.Module:
        """The last stage (its output is the last ``[B, C, H, W]`` feature map)."""
        return list(self.stages.values())[-1]


def _split(features: nn.Sequential, n: int) -> list[tuple[str, nn.Module]]:
    """``features`` cut into a stem (its first block) and ``n`` contiguous stages."""
    blocks = list(features)
    rest = blocks[1:]
    bounds = [round(i * len(rest) / n) for i in range(n + 1)]
    return [("stem", blocks[0])] + [
        (f"stage{i + 1}", nn.Sequential(*rest[bounds[i] : bounds[i + 1]])) for i in range(n)
    ]


def _resnet(net: nn.Module, n_in: int) -> TorchvisionBackbone:
    net.conv1 = _adapt_first_conv(net.conv1, n_in)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    stages = [("stem", stem)] + [(f"layer{i}", getattr(net, f"layer{i}")) for i in range(1, 5)]
    return TorchvisionBackbone(stages, nn.Sequential(net.avgpool, nn.Flatten(1)), net.fc.in_features)


def _first_conv_in_features(net: nn.Module, n_in: int) -> None:
    stem = net.features[0]
    stem[0] = _adapt_first_conv(stem[0], n_in)


def _mobilenet(net: nn.Module, n_in: int) -> TorchvisionBackbone:
    _first_conv_in_features(net, n_in)
    dim = net.classifier[0].in_features
    return TorchvisionBackbone(_split(net.features, 4), nn.Sequential(net.avgpool, nn.Flatten(1)), dim)


def _efficientnet(net: nn.Module, n_in: int) -> TorchvisionBackbone:
    _first_conv_in_features(net, n_in)
    dim = net.classifier[1].in_features
    return TorchvisionBackbone(_split(net.features, 4), nn.Sequential(net.avgpool, nn.Flatten(1)), dim)


def _convnext(net: nn.Module, n_in: int) -> TorchvisionBackbone:
    _first_conv_in_features(net, n_in)
    norm, flatten, linear = net.classifier
    stages = [("stem", net.features[0])] + [
        (
            f"stage{i}",
            nn.Sequential(net.features[2 * i - 2], net.features[2 * i - 1]) if i > 1 else net.features[1],
        )
        for i in range(1, 5)
    ]
    return TorchvisionBackbone(stages, nn.Sequential(net.avgpool, norm, flatten), linear.in_features)


#: registry name -> (torchvision architecture, backbone cutter, display name, reference)
ARCHITECTURES: dict[str, tuple[str, Callable[[nn.Module, int], TorchvisionBackbone], str, str]] = {
    "mobilenet_v3_small": (
        "mobilenet_v3_small",
        _mobilenet,
        "MobileNetV3-S",
        "Howard et al., Searching for MobileNetV3, ICCV 2019",
    ),
    "mobilenet_v3_large": (
        "mobilenet_v3_large",
        _mobilenet,
        "MobileNetV3-L",
        "Howard et al., Searching for MobileNetV3, ICCV 2019",
    ),
    "resnet18": ("resnet18", _resnet, "ResNet-18", "He et al., Deep residual learning, CVPR 2016"),
    "resnet50": ("resnet50", _resnet, "ResNet-50", "He et al., Deep residual learning, CVPR 2016"),
    "efficientnet_b0": (
        "efficientnet_b0",
        _efficientnet,
        "EfficientNet-B0",
        "Tan & Le, EfficientNet, ICML 2019",
    ),
    "efficientnet_b3": (
        "efficientnet_b3",
        _efficientnet,
        "EfficientNet-B3",
        "Tan & Le, EfficientNet, ICML 2019",
    ),
    "convnext_tiny": (
        "convnext_tiny",
        _convnext,
        "ConvNeXt-T",
        "Liu et al., A ConvNet for the 2020s, CVPR 2022",
    ),
    "convnext_base": (
        "convnext_base",
        _convnext,
        "ConvNeXt-B",
        "Liu et al., A ConvNet for the 2020s, CVPR 2022",
    ),
}


def build_vision(
    arch: str,
    n_leads: int,
    n_outputs: int,
    pretrained: str | None = None,
    weights_path: str | None = None,
    dropout: float = 0.2,
) -> ECGModel:
    """A torchvision ``arch`` for ``n_leads``-channel images and ``n_outputs`` outputs (see the module docstring)."""
    tv_arch, cut, _, _ = ARCHITECTURES[arch]
    if pretrained not in (None, "imagenet"):
        raise ValueError(f"model {arch}: pretrained must be None or 'imagenet', not {pretrained!r}")
    net = torchvision_models().get_model(tv_arch, weights=None)
    if pretrained == "imagenet":
        net.load_state_dict(imagenet_state(tv_arch, weights_path))
    backbone = cut(net, n_leads)
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, hidden=None, dropout=(0.0, dropout)))


def _register(name: str) -> None:
    _, _, display, reference = ARCHITECTURES[name]
    register(
        name,
        description=f"{display} image classifier (torchvision; images [B, C, H, W]; "
        "random init, or --pretrained imagenet from a local weight file)",
        reference=_TV + reference,
    )(functools.partial(build_vision, name))


for _name in ARCHITECTURES:
    _register(_name)
