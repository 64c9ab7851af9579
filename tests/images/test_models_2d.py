"""Every 2D model and the fusion model: one training step, then saved and loaded back identically."""

from __future__ import annotations

import json

import pytest
import torch

from ecgcore.models import create_model, model_efficiency
from ecgcore.models.vision import ARCHITECTURES, PretrainedWeightsMissing
from ecgcore.train.checkpoint import load_checkpoint, save_checkpoint

TORCHVISION = sorted(ARCHITECTURES)
SMALL = {
    "alexnet2d": {"base": 4, "dense": (32, 16)},
    "vgg2d": {"base": 4, "n_blocks": 3},
    "cnn2d": {"widths": (8, 16)},
}
FUSIONS = {
    "late": {
        "branches": [{"model": "cnn", "widths": (8, 8)}, {"model": "cnn2d", "channels": 1, "widths": (8, 8)}]
    },
    "intermediate": {
        "mode": "intermediate",
        "width": 8,
        "branches": [{"model": "cnn", "widths": (8, 8)}, {"model": "cnn2d", "channels": 1, "widths": (8, 8)}],
    },
    "two-images": {
        "mode": "intermediate",
        "width": 8,
        "branches": [{"model": "cnn2d", "widths": (8, 8)}, {"model": "resnet18", "channels": 1}],
    },
}


def _one_step_and_reload(model: torch.nn.Module, x, tmp_path) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    y = torch.tensor([0, 1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    run = (lambda inputs: model(*inputs)) if isinstance(x, tuple) else model
    loss = torch.nn.functional.cross_entropy(run(x), y)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    opt.step()
    changed = [
        k
        for k, v in model.state_dict().items()
        if v.dtype.is_floating_point and not torch.equal(v, before[k])
    ]
    assert changed, "the step changed no weight"
    path = save_checkpoint(tmp_path / "m", model, {"task": "test"})
    loaded, meta = load_checkpoint(path)
    model.eval()
    with torch.no_grad():
        out = run(x)
        assert torch.isfinite(out).all() and torch.equal(
            (loaded(*x) if isinstance(x, tuple) else loaded(x)), out
        )
    assert meta["model"] == json.loads(json.dumps(model.config))


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_train_one_step_and_load_back(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, n_leads=1, n_outputs=2)
    _one_step_and_reload(model, torch.rand(2, 1, 64, 64), tmp_path)  # 2x2 maps at the end: BN sees 8 values
    assert [g for g, _ in model.layer_groups()][-1] == "head"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_study_cnns_train_one_step_and_load_back(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, n_leads=3, n_outputs=2, **SMALL[name])
    _one_step_and_reload(model, torch.rand(2, 3, 64, 64), tmp_path)


def test_alexnet2d_has_the_published_dense_head():
    model = create_model("alexnet2d", 3, 4)
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [4096, 2048, 4]
    convs = [m.out_channels for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [32, 64, 128, 128, 256]


@pytest.mark.parametrize("variant", sorted(FUSIONS))
def test_fusion_trains_one_step_and_loads_back(variant, tmp_path):
    torch.manual_seed(0)
    model = create_model(
        "fusion", n_leads=3 if variant == "two-images" else 8, n_outputs=2, **FUSIONS[variant]
    )
    first = torch.rand(2, 3, 32, 32) if variant == "two-images" else torch.randn(2, 8, 500)
    _one_step_and_reload(model, (first, torch.rand(2, 1, 48, 64)), tmp_path)


def test_intermediate_fusion_mixes_branches_before_the_head():
    torch.manual_seed(0)
    model = create_model("fusion", 8, 2, **FUSIONS["intermediate"]).eval()
    signal, image = torch.randn(1, 8, 500), torch.rand(1, 1, 48, 64)
    feats = model.backbone(signal, image)
    assert feats.shape == (1, model.feature_dim) == (1, 16)
    # the joint features depend on the image throughout; a late model's signal features ignore it
    other = model.backbone(signal, torch.rand(1, 1, 48, 64))
    assert (feats != other).float().mean() > 0.5
    late = create_model("fusion", 8, 2, **FUSIONS["late"]).eval()
    a, b = late.backbone(signal, image), late.backbone(signal, torch.rand(1, 1, 48, 64))
    n_signal = late.backbone.branches[0].feature_dim
    assert torch.equal(a[:, :n_signal], b[:, :n_signal]) and not torch.equal(a[:, n_signal:], b[:, n_signal:])


def test_pretrained_imagenet_without_the_file_names_it_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(
        PretrainedWeightsMissing,
        match=r"resnet18-f37072fd\.pth.*hub/checkpoints|hub/checkpoints.*resnet18-f37072fd\.pth",
    ):
        create_model("resnet18", 3, 4, pretrained="imagenet")


def test_pretrained_imagenet_loads_a_local_file_and_adapts_the_first_conv(tmp_path):
    from ecgcore.models.vision import torchvision_models

    torch.manual_seed(1)
    reference = torchvision_models().resnet18()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = create_model("resnet18", 1, 4, pretrained="imagenet", weights_path=str(tmp_path / "resnet18.pth"))
    conv = model.backbone.stages["stem"][0]
    torch.testing.assert_close(conv.weight, reference.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(
        model.backbone.stages["layer4"][1].conv2.weight, reference.layer4[1].conv2.weight
    )


def test_efficiency_counts_params_macs_disk_and_time():
    model = create_model("cnn2d", 1, 2, widths=(8, 16))
    stats = model_efficiency(model, (1, 32, 32), repeats=2)
    n_params = sum(p.numel() for p in model.parameters())
    assert stats["params"] == n_params
    assert n_params * 4 < stats["disk_bytes"] < n_params * 4 + 20_000
    # conv1: 32*32 outputs * 8 * (1*3*3) ; conv2 after pooling: 16*16 * 16 * (8*3*3) ; head linears
    convs = 32 * 32 * 8 * 9 + 16 * 16 * 16 * 72
    assert convs <= stats["macs"] < convs + 10_000
    assert stats["infer_ms"] > 0
    fused = model_efficiency(create_model("fusion", 8, 2, **FUSIONS["late"]), ((8, 500), (1, 32, 32)))
    assert fused["macs"] > 0
