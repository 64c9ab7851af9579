"""The GPU path's logic, checked on the CPU (issue 20): device indices under torchrun, the bf16 choice,
the memory figure, lead dropout without a boolean index, rank-agreed stopping, a missing device recorded."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ecgcore.data.transforms import LeadDropout
from ecgcore.runs import run_training
from ecgcore.runs.store import RunStore
from ecgcore.train import device as dev
from ecgcore.train import distributed as ddp
from tests.train.helpers import tiny_config


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


def test_cuda_devices_carry_an_index_and_follow_local_rank(four_gpus, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert dev.resolve_device("cuda") == torch.device("cuda", 0)
    assert dev.resolve_device("auto") == torch.device("cuda", 0)
    assert dev.resolve_device("cuda:2") == torch.device("cuda", 2)
    monkeypatch.setenv("LOCAL_RANK", "1")  # what torchrun sets for the second process of a node
    assert dev.resolve_device("cuda") == torch.device("cuda", 1)
    assert dev.resolve_device("cuda:2") == torch.device("cuda", 3)
    assert dev.resolve_device("cuda", local_rank=3) == torch.device("cuda", 3)
    with pytest.raises(dev.DeviceError, match="CUDA device 4 asked for"):
        dev.resolve_device("cuda:3")


def test_no_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(dev.DeviceError, match=r"no CUDA device: use --device cpu or auto"):
        dev.resolve_device("cuda")


@pytest.mark.parametrize(
    "native, expected", [(True, (torch.bfloat16, False)), (False, (torch.float16, True))]
)
def test_bf16_only_on_cards_that_compute_it_natively(monkeypatch, native, expected):
    asked = {}

    def is_bf16_supported(including_emulation=True):
        asked["including_emulation"] = including_emulation
        return native or including_emulation  # a T4 / V100: emulated bf16 only

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert dev.resolve_precision(torch.device("cuda", 0), amp=True) == expected
    assert asked == {"including_emulation": False}


def test_available_ram_is_memavailable_not_memfree(monkeypatch):
    meminfo = "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:   17000000 kB\n"
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda path, *a, **k: io.StringIO(meminfo) if path == "/proc/meminfo" else real_open(path, *a, **k),
    )
    assert dev.available_ram() == 17_000_000 * 1024


def _boolean_index_lead_dropout(x: torch.Tensor, gen: torch.Generator, p: float) -> torch.Tensor:
    """The previous implementation (a boolean index: a host-device sync on CUDA), as the reference."""
    keep = torch.rand(x.shape[0], x.shape[1], generator=gen) >= p
    lost = ~keep.any(dim=1)
    rescue = torch.randint(0, x.shape[1], (x.shape[0],), generator=gen)
    keep[lost, rescue[lost]] = True
    return x * keep[:, :, None].to(x.dtype)


def test_lead_dropout_with_torch_where_drops_what_the_boolean_index_did():
    x = torch.randn(64, 3, 10)
    got = LeadDropout(p=0.6)(x, torch.Generator().manual_seed(5))
    want = _boolean_index_lead_dropout(x, torch.Generator().manual_seed(5), 0.6)
    assert torch.equal(got, want)
    kept = (got.abs().sum(dim=2) > 0).sum(dim=1)
    assert kept.min() >= 1 and (kept < 3).any()  # every record keeps a lead; some lost some


def _agree_worker(rank: int, init: str, codes: list[int], out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    info = ddp.DistInfo(rank, 2, rank)
    result = ddp.agree(codes[rank], info, torch.device("cpu"))
    np.save(f"{out}-{rank}.npy", np.array([result]))
    dist.destroy_process_group()


@pytest.mark.parametrize(
    "codes, expected", [([ddp.GO_ON, ddp.CANCEL], ddp.CANCEL), ([ddp.ERROR, ddp.CANCEL], ddp.ERROR)]
)
def test_two_gloo_processes_agree_on_the_strongest_stop(tmp_path, codes, expected):
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_agree_worker, args=(init, codes, str(tmp_path / "r")), nprocs=2, join=True)
    assert [int(np.load(tmp_path / f"r-{r}.npy")[0]) for r in (0, 1)] == [expected, expected]


def test_a_missing_cuda_device_is_refused_before_a_run_exists_or_fails_a_queued_one(
    deepfake_spec, tmp_path, monkeypatch
):
    from ecgcore.train.validate import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tiny_config(deepfake_spec, device="cuda")
    with pytest.raises(ConfigError, match="no CUDA device: use --device cpu or auto"):
        run_training(config, runs_dir=tmp_path, run_id="gpu")
    assert len(RunStore(tmp_path).list_runs()) == 0  # issue 15: a mistyped setting leaves no failed run
    RunStore(tmp_path).create_run(config, run_id="queued")  # as the worker queues a run before it starts
    with pytest.raises(ConfigError):
        run_training(config, runs_dir=tmp_path, run_id="queued")
    run = RunStore(tmp_path).get_run("queued")
    assert run["status"] == "failed" and "no CUDA device: use --device cpu or auto" in run["error"]


def _barrier_worker(rank: int, init: str, delay: float, timeout: float, out: str) -> None:
    import time

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    info = ddp.DistInfo(rank, 2, rank)
    if rank == 0:
        time.sleep(delay)  # rank 0 "builds the cache"
    try:
        ddp.barrier(info, timeout, "rank 0 to build the data cache")
        result = "passed"
    except ddp.BarrierTimeout as exc:
        result = str(exc)
    with open(f"{out}-{rank}.txt", "w") as f:
        f.write(result)


def test_the_cache_barrier_gives_up_after_its_timeout_with_a_clear_message(tmp_path):
    """Rank 0 is late (3 s) for a 0.5 s barrier: rank 1 raises; rank 0, arriving last, goes on.

    (The barrier's passing side also runs in every multi-process training: test_distributed.py.)"""
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_barrier_worker, args=(init, 3.0, 0.5, str(tmp_path / "r")), nprocs=2, join=True)
    waited = (tmp_path / "r-1.txt").read_text()
    assert "rank 1 waited 0.5 s for rank 0 to build the data cache (1 of 2 ranks arrived)" in waited
    assert (tmp_path / "r-0.txt").read_text() == "passed"


def test_free_cuda_memory_is_measured_after_emptying_the_allocator_cache(monkeypatch):
    calls = []
    cached = [3 << 30]  # 3 GiB held by the caching allocator, free to reuse once released

    def empty_cache():
        calls.append("empty_cache")
        cached[0] = 0

    def mem_get_info(device):
        calls.append(("mem_get_info", str(device)))
        return (10 << 30) - cached[0], 24 << 30

    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    assert dev.free_device_memory(torch.device("cuda:1")) == 10 << 30
    assert calls == ["empty_cache", ("mem_get_info", "cuda:1")]


def _evaluate(spec: str, info: ddp.DistInfo | None, home: str) -> tuple[dict, int]:
    """Val metrics of a seeded untrained tiny model, and how many rows this process predicted."""
    import os

    from torch import nn

    from ecgcore.models import create_model
    from ecgcore.train import batches
    from ecgcore.train.evaluate import evaluate_split
    from tests.train.helpers import tiny_config

    os.environ["ECGLAB_HOME"] = home  # the spawned ranks share the parent's data cache
    config = tiny_config(spec)
    data = batches.prepare_data(config)
    torch.manual_seed(0)
    model = create_model(config.model, len(config.leads), len(data.names), **config.model_kwargs)
    source = batches.BatchSource(
        data.inputs, data.y, np.concatenate(list(data.rows.values())), torch.device("cpu")
    )
    predicted = [0]
    real = source.iterate
    source.iterate = lambda b: (predicted.__setitem__(0, predicted[0] + sum(map(len, b))), real(b))[1]
    result = evaluate_split(model, source, config, data, "val", 4, None, nn.L1Loss(), info)
    return result, predicted[0]


def _evaluate_worker(rank: int, init: str, spec: str, home: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    result, predicted = _evaluate(spec, ddp.DistInfo(rank, 2, rank), home)
    np.savez(
        f"{out}-{rank}.npz",
        y_pred=result["y_pred"],
        loss=result["loss"],
        mae=result["model"]["mae_over_sd"],
        predicted=predicted,
    )
    dist.destroy_process_group()


def test_two_gloo_ranks_share_the_evaluation_and_gather_one_process_metrics(deepfake_spec, tmp_path):
    import os

    home = os.environ["ECGLAB_HOME"]
    one, n_one = _evaluate(deepfake_spec, None, home)
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_evaluate_worker, args=(init, deepfake_spec, home, str(tmp_path / "r")), nprocs=2, join=True)
    ranks = [np.load(tmp_path / f"r-{r}.npz") for r in (0, 1)]
    assert int(ranks[0]["predicted"]) + int(ranks[1]["predicted"]) == n_one == len(one["y_pred"])
    assert 0 < int(ranks[1]["predicted"]) < n_one  # each rank did its part, not the whole split
    for r in ranks:  # every rank holds every row's prediction, in order, and the same metrics
        np.testing.assert_allclose(r["y_pred"], one["y_pred"], rtol=1e-5, atol=1e-6)
        assert float(r["loss"]) == pytest.approx(one["loss"], rel=1e-5)
        assert float(r["mae"]) == pytest.approx(one["model"]["mae_over_sd"], rel=1e-5)
