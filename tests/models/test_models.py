"""The model zoo: shapes, gradients, layer groups, rebuildable configs and parameter / MAC counts."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ecgcore.models import ConcatBackbone, ECGModel, create_model, list_models, model_stats

NAMES = ["cnn", "cnn_bilstm_attention", "inception1d", "lstm", "resnet1d_wang", "rnn", "vit", "xresnet1d101"]
#: Image and fusion models (tested in tests/images/test_models_2d.py).
NAMES_2D = [
    "alexnet2d",
    "cnn2d",
    "convnext_base",
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_b3",
    "fusion",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet18",
    "resnet50",
    "vgg2d",
]


def test_registry_lists_every_model_with_description_and_reference():
    infos = {info.name: info for info in list_models()}
    assert sorted(infos) == sorted(NAMES + NAMES_2D)
    for info in infos.values():
        assert len(info.description) > 20 and len(info.reference) > 10, info


def test_unknown_model_and_unknown_argument_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet9000'.*inception1d"):
        create_model("resnet9000", 8, 5)
    with pytest.raises(ValueError, match="'cnn' does not take.*kernal_size"):
        create_model("cnn", 8, 5, kernal_size=5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [1000, 333])
def test_forward_backward_reaches_every_parameter(name, length):
    torch.manual_seed(0)
    model = create_model(name, n_leads=8, n_outputs=3)
    x = torch.randn(2, 8, length)
    assert model.backbone(x).shape == (2, model.feature_dim)
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"{name}: parameters without a finite gradient: {no_grad}"


def _assert_groups_partition(model: ECGModel) -> list[str]:
    groups = model.layer_groups()
    names = [name for name, _ in groups]
    assert len(set(names)) == len(names), f"duplicate group names {names}"
    assert names[-1] == "head" and groups[-1][1] == [model.head]
    seen: dict[int, str] = {}
    for name, modules in groups:
        for module in modules:
            for p in module.parameters():
                assert id(p) not in seen, f"parameter in groups {seen[id(p)]!r} and {name!r}"
                seen[id(p)] = name
    missing = [n for n, p in model.named_parameters() if id(p) not in seen]
    assert not missing, f"parameters in no group: {missing}"
    return names


@pytest.mark.parametrize("name", NAMES)
def test_layer_groups_cover_every_parameter_once_input_side_first(name):
    model = create_model(name, n_leads=8, n_outputs=5)
    names = _assert_groups_partition(model)
    assert names[0] in ("stem", "block1"), names
    # the first group holds the module that reads the leads: a convolution with 8 input channels
    first_convs = [
        m
        for _, mods in model.layer_groups()[:1]
        for mod in mods
        for m in mod.modules()
        if isinstance(m, nn.Conv1d)
    ]
    assert first_convs and first_convs[0].in_channels == 8


@pytest.mark.parametrize("name", NAMES)
def test_config_survives_json_and_rebuilds_the_same_model(name):
    torch.manual_seed(1)
    model = create_model(name, n_leads=8, n_outputs=4).eval()
    config = json.loads(json.dumps(model.config))
    assert config["name"] == name and config["n_leads"] == 8 and config["n_outputs"] == 4
    rebuilt = create_model(**config).eval()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 8, 300)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert rebuilt.config == config


@pytest.mark.parametrize("name", NAMES)
def test_last_conv_outputs_a_time_resolved_map(name):
    model = create_model(name, n_leads=8, n_outputs=2).eval()
    captured = []
    handle = model.last_conv().register_forward_hook(lambda m, i, o: captured.append(o.shape))
    with torch.no_grad():
        model(torch.randn(1, 8, 500))
    handle.remove()
    assert len(captured) == 1 and len(captured[0]) == 3 and captured[0][-1] > 1, captured


def inception_params_by_hand(n_leads: int, n_outputs: int) -> int:
    """Count inception1d's parameters from the architecture description alone (issue 4)."""
    kernels, filters, bottleneck, width = (39, 19, 9), 32, 32, 128

    def block(n_in):
        return (
            n_in * bottleneck
            + sum(bottleneck * filters * k for k in kernels)  # bottleneck, 3 convs
            + n_in * filters
            + 2 * width
        )  # max-pool branch 1x1 conv, BatchNorm(128)

    blocks = block(n_leads) + 5 * block(width)
    shortcuts = (n_leads * width + 2 * width) + (width * width + 2 * width)  # 1x1 conv + BN, twice
    head = 2 * 256 + (256 * 128 + 128) + 2 * 128 + (128 * n_outputs + n_outputs)
    return blocks + shortcuts + head


def test_inception1d_parameter_count_and_macs_match_a_count_by_hand():
    model = create_model("inception1d", n_leads=8, n_outputs=5)
    s = 1000
    stats = model_stats(model, n_leads=8, n_samples=s)
    assert stats["params"] == inception_params_by_hand(8, 5) == 506_885
    batchnorms = 8 * 2 * 128  # 6 blocks + 2 shortcuts, weight and bias each
    head = 2 * 256 + (256 * 128 + 128) + 2 * 128 + (128 * 5 + 5)
    conv_weights = stats["params"] - batchnorms - head
    # every convolution weight is used once per sample position (stride 1, 'same' padding, no biases)
    head_macs = 256 * 128 + 128 * 5
    assert stats["macs"] == conv_weights * s + head_macs


def test_model_stats_counts_recurrent_and_attention_layers():
    lstm = create_model("lstm", n_leads=8, n_outputs=5)
    s = 5000
    t1, t2 = -(-s // 4), -(-s // 16)  # strided stem: 1250, then 313 steps
    stem = 8 * 32 * 9 * t1 + 32 * 64 * 5 * t2
    recurrent = t2 * 4 * (64 * 128 + 128 * 128) + t2 * 4 * (128 * 128 + 128 * 128)
    head = 256 * 128 + 128 * 5
    assert model_stats(lstm, 8, s)["macs"] == stem + recurrent + head

    vit = create_model("vit", n_leads=8, n_outputs=5, depth=1)
    tokens, dim = 101, 128
    patches = 8 * 50 * dim * 100
    block = tokens * (dim * 3 * dim + dim * dim + 2 * dim * 256) + 2 * tokens * tokens * dim  # + QK^T and AV
    assert model_stats(vit, 8, s)["macs"] == patches + block + dim * 128 + 128 * 5


def test_model_stats_restores_training_mode():
    model = create_model("cnn", 8, 2).train()
    model_stats(model, 8, 500)
    assert model.training


def test_concat_backbone_rebuilds_and_merges_groups_from_the_top():
    torch.manual_seed(2)
    small = dict(n_leads=8, n_outputs=1, depth=3, n_filters=8)
    members = [create_model("inception1d", **small).config, create_model("cnn", 8, 1, widths=[8, 16]).config]
    model = create_model("concat", n_leads=8, n_outputs=5, members=members)
    assert isinstance(model.backbone, ConcatBackbone)
    assert model.feature_dim == 2 * 32 + 2 * 16
    names = _assert_groups_partition(model)
    assert names == ["m0.block1", "m0.block2+m1.block1", "m0.block3+m1.block2", "head"]
    assert "concat" not in {info.name for info in list_models()}
    rebuilt = create_model(**json.loads(json.dumps(model.config)))
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(3, 8, 400)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), rebuilt.eval()(x))
    with pytest.raises(ValueError, match="reads 8 leads; the combined model reads 12"):
        create_model("concat", n_leads=12, n_outputs=5, members=members)
