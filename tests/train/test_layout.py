"""The channels-last 2D layout (issue 20): same parameters and state dict, the plain model's outputs and
gradients within the precision's rounding, undone after training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ecgcore.models import create_model
from ecgcore.train.batches import prepare_data
from ecgcore.train.device import cpu_has_bf16
from ecgcore.train.layout import channels_last, plain_layout, supports_channels_last, wants_channels_last
from ecgcore.train.loop import fit
from ecgcore.train.recorder import MemoryRecorder
from tests.train.helpers import tiny_config

SMALL = dict(depth=3, n_filters=8, bottleneck=8, kernel_sizes=(9, 5, 3))


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    plain = create_model("inception1d", 8, 4, **SMALL)
    converted = copy.deepcopy(plain)
    assert channels_last(converted)
    return plain, converted


def _forward_backward(model: nn.Module, x: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and every parameter's gradient (flattened) of one seeded training-mode pass."""
    model.train().zero_grad()
    torch.manual_seed(1)  # the same dropout masks
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        out = model(x).float()
    out.square().mean().backward()
    return out.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])


def test_the_layout_keeps_parameters_and_state_dict_and_gives_the_plain_models_results_in_fp32():
    plain, converted = _pair()
    params = list(converted.parameters())
    assert list(converted.state_dict()) == list(plain.state_dict())
    assert all(a.shape == b.shape for a, b in zip(params, plain.parameters()))
    x = torch.randn(4, 8, 300)
    out, grad = _forward_backward(plain, x, bf16=False)
    got, got_grad = _forward_backward(converted, x, bf16=False)
    assert torch.allclose(got, out, rtol=1e-4, atol=1e-5 * float(out.abs().max()))
    assert float((got_grad - grad).norm() / grad.norm()) < 1e-4
    seen = []
    converted.backbone.blocks[1].convs[0].register_forward_hook(lambda m, args, out: seen.append(out))
    converted.eval()(x)
    assert seen[-1].dim() == 4 and seen[-1].is_contiguous(memory_format=torch.channels_last)
    plain_layout(converted)
    assert list(converted.parameters()) == params  # the same objects: an optimiser does not notice
    assert type(converted.backbone.blocks[0].convs[0]) is nn.Conv1d
    converted(x)
    assert seen[-1].dim() == 3
    with torch.no_grad():
        assert torch.allclose(converted.eval()(x), plain.eval()(x), rtol=1e-5, atol=1e-6)


def test_in_bf16_the_layout_is_no_further_from_fp32_than_the_plain_layout():
    plain, converted = _pair()
    x = torch.randn(8, 8, 300)
    out32, grad32 = _forward_backward(plain, x, bf16=False)
    errors = {}
    for name, model in (("plain", plain), ("channels-last", converted)):
        out, grad = _forward_backward(model, x, bf16=True)
        errors[name] = (
            float((out - out32).norm() / out32.norm()),
            float((grad - grad32).norm() / grad32.norm()),
        )
    (out_plain, grad_plain), (out_cl, grad_cl) = errors["plain"], errors["channels-last"]
    assert out_cl <= 1.5 * out_plain + 1e-3 and grad_cl <= 1.5 * grad_plain + 1e-3


def test_only_known_layer_kinds_are_converted_and_only_cpu_bf16_wants_it():
    model = create_model("resnet1d_wang", 8, 4)
    before = [type(m) for m in model.modules()]
    assert not supports_channels_last(model) and channels_last(model) is False
    assert [type(m) for m in model.modules()] == before
    assert wants_channels_last(torch.device("cpu"), torch.bfloat16)
    assert not wants_channels_last(torch.device("cpu"), None)
    assert not wants_channels_last(torch.device("cuda", 0), torch.bfloat16)


@pytest.mark.skipif(not cpu_has_bf16(), reason="the layout is used for CPU bf16 only")
def test_a_bf16_cpu_run_trains_in_channels_last_and_hands_the_model_back_plain(deepfake_spec, tmp_path):
    for amp in (True, False):
        config = tiny_config(deepfake_spec, epochs=1, model="inception1d", model_kwargs=SMALL, amp=amp)
        data = prepare_data(config)
        torch.manual_seed(0)
        model = create_model("inception1d", len(config.leads), len(data.names), **SMALL)
        recorder = MemoryRecorder()
        summary = fit(
            config, data, model, tmp_path / f"run-{amp}", device=torch.device("cpu"), recorder=recorder
        )
        assert summary["precision"] == ("bf16-mixed" if amp else "fp32")
        assert ("channels-last" in recorder.events[0][1]["message"]) is amp
        assert type(model.backbone.blocks[0].convs[0]) is nn.Conv1d  # handed back in the plain layout
        assert not model._forward_pre_hooks


def test_a_setup_that_fails_after_the_conversion_hands_the_model_back_plain(
    deepfake_spec, tmp_path, monkeypatch
):
    """A resume with nothing to resume fails in setup, after the model went channels-last."""
    from ecgcore.train import loop

    monkeypatch.setattr(loop, "wants_channels_last", lambda device, amp_dtype: True)  # any CPU, any precision
    config = tiny_config(deepfake_spec, epochs=1, model="inception1d", model_kwargs=SMALL)
    data = prepare_data(config)
    model = create_model("inception1d", len(config.leads), len(data.names), **SMALL)
    with pytest.raises(FileNotFoundError):
        fit(config, data, model, tmp_path / "empty", device=torch.device("cpu"), resume=True)
    assert type(model.backbone.blocks[0].convs[0]) is nn.Conv1d
    assert not model._forward_pre_hooks


def test_compile_with_cpu_bf16_is_refused_before_any_compile_and_fp32_is_not(
    deepfake_spec, tmp_path, monkeypatch
):
    from ecgcore.train import loop

    def compile_reached(*args, **kwargs):
        raise RuntimeError("compile reached")

    monkeypatch.setattr(torch, "compile", compile_reached)
    config = tiny_config(deepfake_spec, epochs=1, compile=True)
    data = prepare_data(config)
    for dtype, error, match in (
        (torch.bfloat16, ValueError, "NaN gradients.*--no-amp"),
        (None, RuntimeError, "reached"),
    ):
        monkeypatch.setattr(
            loop, "resolve_precision", lambda device, amp, dtype=dtype: (dtype, False)
        )  # any CPU
        model = create_model(config.model, len(config.leads), len(data.names), **config.model_kwargs)
        with pytest.raises(error, match=match):
            fit(config, data, model, tmp_path / f"run-{dtype}", device=torch.device("cpu"))


def test_check_compile_refuses_cpu_bf16_only(deepfake_spec):
    """The refusal is for compile + bf16 on a CPU: a GPU's bf16, fp32, or no compile pass."""
    from ecgcore.train.loop import check_compile

    config = tiny_config(deepfake_spec, compile=True)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    with pytest.raises(ValueError, match="NaN gradients.*--compile.*--no-amp"):
        check_compile(config, cpu, torch.bfloat16)
    for conf, device, dtype in (
        (config, cuda, torch.bfloat16),
        (config, cuda, torch.float16),
        (config, cpu, None),
        (tiny_config(deepfake_spec, compile=False), cpu, torch.bfloat16),
    ):
        assert check_compile(conf, device, dtype) is None, (conf.compile, device, dtype)
