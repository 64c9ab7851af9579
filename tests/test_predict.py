"""The inference path (issue 20): batch norms folded, no autograd, bf16 where native, batches of records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ecgcore.data import Preprocessing, open_source
from ecgcore.models import create_model
from ecgcore.predict import Predictor, fold_batchnorm
from ecgcore.train.device import cpu_has_bf16
from ecgcore.vocab import TARGET_KEYS


def _trained_looking(name: str, length: int = 400) -> nn.Module:
    """A model whose batch norms have non-trivial statistics and affine parameters (not the identity)."""
    torch.manual_seed(0)
    model = create_model(name, 8, 4)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 8, length) * 2 + 0.3)
    return model.eval()


@pytest.mark.parametrize("name", ["inception1d", "resnet1d_wang"])
def test_folded_network_gives_the_training_networks_outputs(name):
    model = _trained_looking(name)
    net, folded = fold_batchnorm(model)
    assert folded == sum(isinstance(m, nn.BatchNorm1d) for m in model.modules())  # every one folded away
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())
    x = torch.randn(4, 8, 400)
    with torch.no_grad():
        expected, got = model(x), net(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    assert model.training is False and any(isinstance(m, nn.BatchNorm1d) for m in model.modules())


def _predictor(precision: str) -> Predictor:
    prep = Preprocessing(fs=100.0)
    meta = {
        "task": "regression",
        "targets": list(TARGET_KEYS),
        "target_mean": [70.0, 160.0, 90.0, 400.0],
        "target_sd": [10.0, 20.0, 10.0, 30.0],
        "preprocessing": prep.to_dict(),
        "stats": {},
        "label_mode": "single",
    }
    return Predictor(_trained_looking("inception1d", 1000), meta, precision)


def test_predictions_match_the_training_model_in_fp32_and_within_bf16_rounding(deepfake_spec):
    dataset = open_source(deepfake_spec)
    records = [dataset.read(r) for r in dataset.index["record_id"].iloc[:5]]
    fp32, bf16 = _predictor("fp32"), _predictor("bf16")
    x = torch.cat([fp32.prepare(r) for r in records])
    with torch.no_grad():
        reference = fp32.model(x).numpy() * np.asarray(fp32.meta["target_sd"]) + fp32.meta["target_mean"]
    singles = [fp32.predict(r) for r in records]
    batched = fp32.predict_many(iter(records), batch_size=2, total=5)
    half = bf16.predict_many(records, batch_size=4)
    assert [r["record_id"] for r in batched] == [r.record_id for r in records]
    for i, (one, many, low) in enumerate(zip(singles, batched, half)):
        values = np.array([one["intervals"][k] for k in TARGET_KEYS])
        assert values == pytest.approx(reference[i], rel=1e-5)
        assert [many["intervals"][k] for k in TARGET_KEYS] == pytest.approx(values, rel=1e-5)
        # bf16 keeps 8 bits of mantissa: outputs (sd units) within a few per cent of the output scale
        assert [low["intervals"][k] for k in TARGET_KEYS] == pytest.approx(values, abs=0.05 * 30)
        assert one["precision"] == "fp32" and low["precision"] == "bf16-mixed"


def test_predict_command_takes_folders_and_reports_unreadable_files(deepfake_spec, tmp_path, capsys):
    import json
    import shutil

    from ecgcore.cli import main
    from ecgcore.runs import run_training
    from tests.train.helpers import tiny_config

    summary = run_training(tiny_config(deepfake_spec, epochs=1), runs_dir=tmp_path / "runs")
    folder = tmp_path / "records"
    (folder / "sub").mkdir(parents=True)
    source = sorted(Path(deepfake_spec.split(":", 1)[1]).glob("*.asc"))[:3]
    for f in source[:2]:
        shutil.copy(f, folder / f.name)
    shutil.copy(source[2], folder / "sub" / source[2].name)
    (folder / "broken.asc").write_text("not numbers\n")
    args = ["predict", "--run", summary["id"], "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    code = main([*args, "--batch-size", "2", "--precision", "fp32", str(folder)])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1  # one file could not be read
    assert [Path(x["path"]).name for x in lines[:3]] == sorted(f.name for f in source[:2]) + [source[2].name]
    assert lines[3]["path"].endswith("broken.asc") and "broken.asc" in lines[3]["error"]
    assert "3 records in" in captured.err and "records/s" in captured.err
    # the batched path gives what one record at a time gives
    main([*args, "--batch-size", "1", "--precision", "fp32", *(x["path"] for x in lines[:3])])
    singles = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for one, batched in zip(singles, lines[:3]):
        assert one["intervals"] == pytest.approx(batched["intervals"], rel=1e-5)


@pytest.mark.skipif(not cpu_has_bf16(), reason="channels-last is the CPU bf16 layout")
def test_bf16_predictions_run_channels_last_within_bf16_rounding_of_the_training_model():
    fp32, bf16 = _predictor("fp32"), _predictor("bf16")
    assert (fp32.layout, bf16.layout) == ("plain", "channels-last")
    # the inference copy is the converted one (its input hook), never the training model
    assert (
        bf16.net._forward_pre_hooks and not fp32.net._forward_pre_hooks and not bf16.model._forward_pre_hooks
    )
    x = torch.randn(3, 8, 1000)
    with torch.no_grad():
        reference = fp32.model(x).numpy()
    got = bf16.outputs(x)
    assert np.abs(got - reference).max() < 0.02 * np.abs(reference).max()


@pytest.mark.slow
def test_the_compiled_network_gives_the_eager_networks_outputs(deepfake_spec):
    eager = _predictor("auto")
    compiled = Predictor(eager.model, eager.meta, compiled=True)
    x = torch.randn(2, 8, 1000)
    want, got = eager.outputs(x), compiled.outputs(x)
    scale = np.abs(want).max()
    tolerance = 1e-4 if eager.amp_dtype is None else 0.02  # bf16: a different summation order, same rounding
    assert np.abs(got - want).max() < tolerance * scale
    dataset = open_source(deepfake_spec)
    records = [dataset.read(r) for r in dataset.index["record_id"].iloc[:3]]
    # batches of 2: the short last batch is padded to the compiled shape, its padding dropped
    many, reference = compiled.predict_many(records, batch_size=2), eager.predict_many(records, batch_size=2)
    assert [r["record_id"] for r in many] == [r.record_id for r in records]
    for a, b in zip(many, reference):
        assert [a["intervals"][k] for k in TARGET_KEYS] == pytest.approx(
            [b["intervals"][k] for k in TARGET_KEYS], abs=tolerance * scale * 30
        )


def test_a_compiled_predictors_short_last_batch_is_padded_and_only_its_own_rows_kept(
    deepfake_spec, monkeypatch
):
    from ecgcore import predict

    seen = []

    class Recording(nn.Module):  # the padding logic, without the slow compile
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(len(x))
            return self.net(x)

    monkeypatch.setattr(predict, "compiled_network", Recording)
    eager = _predictor("fp32")
    compiled = Predictor(eager.model, eager.meta, "fp32", compiled=True)
    dataset = open_source(deepfake_spec)
    records = [dataset.read(r) for r in dataset.index["record_id"].iloc[:6]]
    many = compiled.predict_many(records, batch_size=4)
    assert seen == [4, 4]  # the last batch of 2 records padded to the compiled shape: no second shape
    assert [r["record_id"] for r in many] == [r.record_id for r in records]  # none dropped, none added
    for record, got in zip(records, many):  # each record's own outputs, not a padding row's
        want = eager.predict(record)["intervals"]
        assert [got["intervals"][k] for k in TARGET_KEYS] == pytest.approx(
            [want[k] for k in TARGET_KEYS], rel=1e-4
        )


def test_predict_compiles_by_default_only_for_folders_big_enough_to_pay_for_it(
    deepfake_spec, tmp_path, monkeypatch, capsys
):
    from ecgcore import predict
    from ecgcore.cli import main
    from ecgcore.runs import run_training
    from tests.train.helpers import tiny_config

    compiled = []
    monkeypatch.setattr(predict, "compiled_network", lambda net: compiled.append(net) or net)
    summary = run_training(tiny_config(deepfake_spec, epochs=1), runs_dir=tmp_path / "runs")
    records = [str(p) for p in sorted(Path(deepfake_spec.split(":", 1)[1]).glob("*.asc"))[:3]]
    args = ["predict", "--run", summary["id"], "--runs-dir", str(tmp_path / "runs"), "--quiet", *records]
    assert predict.compile_pays_off(predict.COMPILE_MIN_RECORDS)
    assert not predict.compile_pays_off(predict.COMPILE_MIN_RECORDS - 1)
    main(args)
    assert not compiled  # 3 records: the compile would cost more than it saves
    monkeypatch.setattr(predict, "COMPILE_MIN_RECORDS", 3)
    main(args)
    assert len(compiled) == 1
    main([*args, "--compile", "off"])
    main(args[:1] + ["--compile", "on"] + args[1:-2])  # one record, compiled on request
    assert len(compiled) == 2
    assert len(capsys.readouterr().out.splitlines()) == 3 + 3 + 3 + 1
