from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ecgcore.bench import FileDataset, Runner, time_rounds
from ecgcore.io import read_record
from ecgcore.train.device import cpu_has_bf16


def test_rounds_time_loading_and_compute_separately_after_a_warm_up(monkeypatch):
    # A clock that only the fetch and the step move: 10 ms per fetch, 30 ms per step, nothing else.
    now = [0.0]
    monkeypatch.setattr("ecgcore.bench.common.time", SimpleNamespace(perf_counter=lambda: now[0]))
    calls = []

    def fetch():
        now[0] += 0.01
        return (torch.zeros(4, 1),)

    def step(batch):
        calls.append(len(batch[0]))
        now[0] += 0.03

    runners = [Runner(fetch, step, {"name": "a"}), Runner(fetch, step, {"name": "b"})]
    results = time_rounds(runners, rounds=2, steps=2, device=torch.device("cpu"))
    assert len(calls) == 2 * (1 + 2 * 2)  # one warm-up step each, then 2 rounds of 2 steps each
    for name, result in zip("ab", results):
        assert result["name"] == name and result["steps"] == 4 and result["samples"] == 16
        # the warm-up is not timed: 4 steps of 40 ms, a quarter of it loading
        assert result["step_ms"] == pytest.approx(40.0)
        assert result["load_share"] == pytest.approx(0.25)
        assert result["samples_per_s"] == pytest.approx(16 / 0.16)
        assert result["input_samples_per_s"] == pytest.approx(16 / 0.04)


def test_reference_dataset_reads_what_the_data_layer_reads(tmp_path):
    signal = np.random.default_rng(0).integers(-2000, 2000, size=(5000, 8))
    path = tmp_path / "0.asc"
    np.savetxt(path, signal, fmt="%i")
    x, y = FileDataset([path], np.array([[1.0, 2.0]]))[0]
    mv = read_record(path).signal
    expected = (mv - mv.mean(axis=1, keepdims=True)) / (mv.std(axis=1, keepdims=True) + 1e-6)
    assert x.shape == (8, 5000) and np.allclose(x.numpy(), expected, atol=1e-4)
    assert y.tolist() == [1.0, 2.0]


def test_image_bench_times_charts_fields_and_2d_training():
    from ecgcore.bench import bench_images, format_images

    result = bench_images(n_charts=3, n_fields=3, steps=2, batch_size=2, models=(("cnn2d", (1, 32, 32)),))
    assert result["charts_per_s"] > 0 and set(result["fields_per_s"]) == {"gasf", "gadf", "mtf", "rp"}
    (row,) = result["training"]
    assert row["model"] == "cnn2d" and row["steps"] == 2 and row["samples"] == 4
    assert "charts 224x224" in format_images(result)


def test_scaling_inputs_are_distinct_shifted_copies_of_the_base_records(tmp_path):
    from ecgcore.bench.scaling import scaling_data
    from ecgcore.data import format_spec, open_source
    from tests.factories import make_deepfake_dir

    base = make_deepfake_dir(tmp_path / "base", 3)
    folder = scaling_data(10, base)
    dataset = open_source(format_spec("deepfake", folder))
    assert len(dataset.index) == 10
    signals = [dataset.read(str(i)).signal for i in range(10)]
    originals = [open_source(format_spec("deepfake", base)).read(str(j)).signal for j in range(3)]
    assert len({s.tobytes() for s in signals}) == 10  # no two records alike
    for i, s in enumerate(signals):  # record i is base record i % 3 rolled by i // 3 samples
        assert np.array_equal(s, np.roll(originals[i % 3], -(i // 3), axis=1))
    assert dataset.index["qt"].nunique() == 10
    assert scaling_data(10, base) == folder  # reused, not rewritten


@pytest.mark.slow
def test_scaling_times_a_cold_cache_and_one_epoch_per_size(monkeypatch, tmp_path):
    from ecgcore.bench import common, scaling
    from ecgcore.train.device import cpu_has_bf16
    from tests.factories import make_deepfake_dir

    monkeypatch.setattr(common, "MODEL", "cnn")  # the timing logic, not the model, is under test
    base = make_deepfake_dir(tmp_path / "base", 4)
    monkeypatch.setattr(common, "bench_data", lambda n, progress=None: base)
    messages = []
    rows = scaling.bench_scaling(
        (12, 24), batch_size=8, precisions=(False, True), progress=lambda i, n, m: messages.append(m)
    )
    assert [r["records"] for r in rows] == [12, 24] and "min left" in messages[1]
    assert all(r["cache_s"] > 0 and r["epoch_s_fp32"] > 0 for r in rows)
    assert rows[1]["train_rows"] > rows[0]["train_rows"]
    native = {"epoch_s_bf16-mixed"} if cpu_has_bf16() else set()  # without it both epochs run in fp32
    assert {k for k in rows[0] if k.startswith("epoch_s_")} == {"epoch_s_fp32"} | native
    table = scaling.format_scaling(rows).splitlines()
    assert len(table) == 4 and table[2].split()[0] == "12" and "derived" in table[0]


def test_scaling_epochs_run_in_the_trainers_layout(monkeypatch, tmp_path):
    """The scaling epoch times the trainer's default path: channels-last where the trainer would use it
    (CPU bf16), the plain layout in fp32."""
    from ecgcore.bench import common, scaling
    from ecgcore.train import layout
    from ecgcore.train.device import cpu_has_bf16
    from tests.factories import make_deepfake_dir

    monkeypatch.setattr(common, "MODEL", "cnn")
    base = make_deepfake_dir(tmp_path / "base", 4)
    monkeypatch.setattr(common, "bench_data", lambda n, progress=None: base)
    converted = []
    monkeypatch.setattr(layout, "channels_last", lambda model: converted.append(model) or False)
    scaling.bench_scaling((12,), batch_size=8, precisions=(False, True))
    assert len(converted) == (1 if cpu_has_bf16() else 0)


def _fake_result(one_record_ms=50.0, batched=7.0, ig_s=2.0):
    train = [
        {"fs": 500.0, "amp": False, "precision": "fp32", "samples_per_s": 2.0, "share_of_matmul_peak": 0.2},
        {"fs": 500.0, "amp": True, "precision": "bf16-mixed", "samples_per_s": 4.0,
         "share_of_matmul_peak": 0.4, "share_of_precision_peak": 0.05},
        {"fs": 100.0, "amp": False, "precision": "fp32", "samples_per_s": 10.0, "share_of_matmul_peak": 0.2},
        {"fs": 100.0, "amp": True, "precision": "bf16-mixed", "samples_per_s": 30.0,
         "share_of_matmul_peak": 0.6, "share_of_precision_peak": 0.55},
    ]  # fmt: skip
    pred = {"fs": 500.0, "precision": "bf16", "bound_ms": 40.0, "before_ms_median": 100.0, "before_share": 0.4,
            "predict_ms_median": one_record_ms, "after_share": 40.0 / one_record_ms,
            "batched_records_per_s": batched, "batched_share": 0.5, "training_forward_samples_per_s": 12.0}  # fmt: skip
    sal = [
        {"fs": 500.0, "asked": "reference", "precision": "fp32", "steps": 16, "gap": 0.01, "seconds": 20.0,
         "share": 0.1, "bound_s": 2.0},
        {"fs": 500.0, "asked": "auto", "precision": "bf16", "steps": 8, "gap": 0.02, "seconds": ig_s,
         "share": 1.0 / ig_s, "bound_s": 1.0},
    ]  # fmt: skip
    ref = {"fs": 500.0, "samples_per_s": 1.0, "share_of_matmul_peak": 0.1}
    return {"training": train, "reference": ref, "prediction": [pred], "saliency": sal}


def test_comparison_puts_each_reference_beside_its_default_with_the_right_speedup_direction():
    from ecgcore.bench.compare import comparison, format_comparison

    rows = {r["what"]: r for r in comparison(_fake_result())}
    t = rows["training 500 Hz"]  # the plain loop against the trainer's default precision
    assert (t["before_value"], t["after_value"], t["speedup"]) == (1.0, 4.0, 4.0)
    assert rows["training 100 Hz"]["speedup"] == pytest.approx(3.0)  # fp32 trainer -> default
    one = rows["one record 500 Hz"]  # times: before / after
    assert one["speedup"] == pytest.approx(2.0) and one["after_share"] == pytest.approx(0.8)
    folder = rows["folder 500 Hz"]  # one by one with the plain model: 1000 / 100 ms
    assert folder["before_value"] == pytest.approx(10.0) and folder["speedup"] == pytest.approx(0.7)
    assert rows["IG 500 Hz"]["speedup"] == pytest.approx(10.0)
    assert len(format_comparison(_fake_result()).splitlines()) == 2 + len(rows) + 4


def test_goals_are_met_only_on_the_right_side_of_each_threshold():
    from ecgcore.bench.compare import goals

    met = {g["goal"].split(" ")[0] + g["goal"].split(" ")[1]: g["met"] for g in goals(_fake_result())}
    # training 5 % of its own rate; 50 ms = 1.25x the 40 ms bound; 7 / 12 forwards/s = 58 %; IG 2 s = 2x bound
    assert met == {"training500": False, "onerecord": True, "batchedprediction": False, "IG500": True}
    met = {g["goal"][:6]: g["met"] for g in goals(_fake_result(one_record_ms=61.0, batched=8.5, ig_s=2.5))}
    assert met == {"traini": False, "one re": False, "batche": True, "IG 500": False}


def test_sweep_times_each_configuration_with_its_own_batch_threads_and_optimizer(monkeypatch, tmp_path):
    from ecgcore.bench import common
    from ecgcore.bench.common import BenchSettings
    from ecgcore.bench.sweep import format_sweep, sweep_training
    from tests.factories import make_deepfake_dir

    monkeypatch.setattr(common, "MODEL", "cnn")
    data = make_deepfake_dir(tmp_path / "df", 8)
    seen = []
    real_set = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real_set(n)))
    settings = BenchSettings(batch_size=4, rounds=1, steps=1)
    rows = sweep_training(data, settings, ("batch", "threads", "fused"), batch_sizes=(2, 4))
    got = {(r["precision"] != "fp32", r["batch_size"], r["threads"], r["fused"]) for r in rows}
    one = torch.get_num_threads()
    other = 2 if one == 1 else 1
    assert got == {
        (False, 4, one, False), (True, 4, one, False),  # the base in both precisions
        (False, 2, one, False), (True, 2, one, False),  # the other batch size
        (False, 4, other, False), (True, 4, other, False),  # the other thread count
        (True, 4, one, True),  # fused AdamW, mixed precision
    }  # fmt: skip
    assert all(r["samples"] == r["batch_size"] for r in rows)  # warm-up untimed, then 1 round x 1 step
    assert other in seen and torch.get_num_threads() == one  # set per step, restored after
    result = {"torch": "x", "threads": one, "loadavg_start": [0.0], "loadavg_end": [0.0], "matmul_flops": 1e9,
              "matmul_flops_bf16": 1e9, "training": [{**r, "share_of_matmul_peak": 0.1,
              "share_of_precision_peak": 0.1} for r in rows], "onnx": None}  # fmt: skip
    assert len(format_sweep(result).splitlines()) == 2 + len(rows)


def test_onnx_sweep_checks_onnx_outputs_against_torch(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime")
    from ecgcore.bench import common
    from ecgcore.bench.sweep import sweep_onnx

    monkeypatch.setattr(common, "MODEL", "cnn")
    result = sweep_onnx(fs=100.0, batch_size=4, repeats=1, tmp=tmp_path)
    assert result["max_rel_diff"] < 1e-4
    assert (
        set(result["one_record_ms"]) == set(result["batched_records_per_s"])
        and len(result["one_record_ms"]) == 3
    )


@pytest.mark.skipif(not cpu_has_bf16(), reason="channels-last is the CPU bf16 layout")
def test_layout_sweep_times_the_plain_layout_beside_the_channels_last_default(tmp_path):
    from ecgcore.bench.common import BenchSettings
    from ecgcore.bench.sweep import sweep_training
    from tests.factories import make_deepfake_dir

    data = make_deepfake_dir(tmp_path / "df", 8)
    rows = sweep_training(data, BenchSettings(batch_size=2, rounds=1, steps=1), ("layout",), fs=50.0)
    assert [(r["precision"], r["layout"]) for r in rows] == [
        ("fp32", "plain"), ("bf16-mixed", "channels-last"), ("bf16-mixed", "plain"),
    ]  # fmt: skip


@pytest.mark.skipif(not cpu_has_bf16(), reason="channels-last is the CPU bf16 layout")
def test_inference_sweep_compares_layouts_with_equal_outputs(monkeypatch):
    from ecgcore.bench.sweep import sweep_inference
    from ecgcore.predict import Predictor
    from ecgcore.train.layout import SWAPS

    result = sweep_inference(fs=50.0, batch_size=2, repeats=1, compiled=False)
    assert (
        set(result["one_record_ms"])
        == set(result["batched_records_per_s"])
        == {"eager channels-last", "eager plain"}
    )
    assert result["max_rel_diff"]["eager channels-last"] == 0.0  # the reference itself
    assert result["max_rel_diff"]["eager plain"] < 0.02  # at most bf16 rounding of another summation order

    # the two layouts' outputs agree in bf16, so a zero difference alone would not show that the plain row
    # ran a plain network and was compared: shift only a plain network's outputs by half their scale
    real = Predictor.run_net

    def run_net(self, net, x):
        out = real(self, net, x)
        plain = not any(type(m) in SWAPS.values() for m in net.modules())
        return out + 0.5 * np.abs(out).max() if plain else out

    monkeypatch.setattr(Predictor, "run_net", run_net)
    shifted = sweep_inference(fs=50.0, batch_size=2, repeats=1, compiled=False)["max_rel_diff"]
    assert shifted["eager channels-last"] == 0.0 and 0.45 < shifted["eager plain"] < 0.55


def test_the_compiled_one_record_path_is_a_goal_row_of_its_own():
    from ecgcore.bench.compare import comparison, goals

    result = _fake_result()
    result["prediction"][0].update(compiled_ms_median=30.0, compiled_share=40.0 / 30.0, compile_s=12.0)
    rows = [r for r in comparison(result) if r["what"] == "one record 500 Hz"]
    assert [r["after_value"] for r in rows] == [50.0, 30.0] and rows[1]["speedup"] == pytest.approx(100 / 30)
    compiled = [g for g in goals(result) if "compiled" in g["goal"]]
    assert len(compiled) == 1 and compiled[0]["value"] == pytest.approx(0.75) and compiled[0]["met"]
    result["prediction"][0]["compiled_ms_median"] = 70.0
    assert not next(g for g in goals(result) if "compiled" in g["goal"])["met"]
