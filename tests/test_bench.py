from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ecgcore.bench import FileDataset, Runner, time_rounds
from ecgcore.io import read_record


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


@pytest.mark.slow
def test_scaling_times_a_cold_cache_and_one_epoch_per_size(monkeypatch):
    from ecgcore.bench import scaling as bench
    from ecgcore.train.device import cpu_has_bf16

    monkeypatch.setattr(bench, "MODEL", "cnn")  # the timing logic, not the model, is under test
    built = []
    real = bench.bench_data

    def counting(n, progress=None):
        built.append(n)
        return real(n, progress)

    monkeypatch.setattr(bench, "bench_data", counting)
    rows = bench.bench_scaling((12, 24), batch_size=8)
    assert built == [12, 24] and [r["records"] for r in rows] == [12, 24]
    assert all(r["cache_s"] > 0 and r["epoch_s_fp32"] > 0 for r in rows)
    assert rows[1]["train_rows"] > rows[0]["train_rows"]
    native = {"epoch_s_bf16-mixed"} if cpu_has_bf16() else set()  # without it both epochs run in fp32
    assert {k for k in rows[0] if k.startswith("epoch_s_")} == {"epoch_s_fp32"} | native
    table = bench.format_scaling(rows).splitlines()
    assert len(table) == 3 and table[1].split()[0] == "12"
