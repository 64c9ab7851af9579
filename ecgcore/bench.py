"""Benchmark: how fast the trainer trains and predicts, against a plain reference loop, on this machine.

Measured in one run (:func:`run_bench`):

* training samples/s of ``inception1d`` at 500 Hz and 100 Hz, fp32 and mixed precision, through
  the trainer's own data path (cache -> :class:`~ecgcore.train.batches.BatchSource`) and step
  (:func:`~ecgcore.train.optim.train_step`), with the share of each step spent fetching the batch;
* a reference loop written the way the published code trained: a ``Dataset`` that reads and
  normalises one ``.asc`` file on every access, a ``DataLoader`` (batch 32), fp32, 500 Hz;
* the model's FLOPs per sample (forward = 2 x MACs from :func:`ecgcore.models.model_stats`; a
  training step counted as 3 x forward), the achieved FLOP/s and its ratio to the FLOP/s of a large
  fp32 matrix product measured in the same run;
* the input pipeline alone (samples per second of batch fetching, the ceiling a faster device
  would hit);
* prediction per record (preprocessing + forward, batch 1): the plain fp32 model (before issue 20) and
  :class:`~ecgcore.predict.Predictor`'s inference network (batch norms folded, bf16 where native), and
  records/s of :meth:`~ecgcore.predict.Predictor.predict_many` against the training forward rate;
* Integrated Gradients at 500 Hz with the completeness check (:func:`measure_ig`);
* every compute figure as a share of its FLOP bound: the FLOPs it needs at the matrix-product rate
  measured in the same run (fp32, and bf16 for the bf16 rows);
* with ``--scaling`` (:func:`bench_scaling`): cache build and one training epoch at growing record counts.

The data are DeepFake ECGs from :func:`ecgcore.data.generate_deepfake`, generated once into the
data home and reused. Every number is a measured time; on a shared machine the load average at
start and end is recorded next to them.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ecgcore import paths as ecg_paths
from ecgcore.progress import ProgressFn, report
from ecgcore.vocab import TARGET_KEYS

MODEL = "inception1d"
REFERENCE_BATCH = 32


@dataclass
class BenchSettings:
    """Sizes and repetitions; :meth:`quick` is a short version for a busy machine.

    Training is timed in ``rounds``: each round runs ``steps`` timed steps of every configuration
    in turn, so changes in a shared machine's load affect all of them alike.
    """

    n_records: int = 64
    batch_size: int = 32
    reference_batch_size: int = REFERENCE_BATCH
    rounds: int = 3
    steps: int = 2
    matmul_n: int = 2048
    predict_records: int = 10
    device: str = "auto"
    threads: int | None = None
    ig_steps: int = 16

    @classmethod
    def quick(cls, device: str = "auto") -> BenchSettings:
        return cls(
            n_records=32,
            batch_size=8,
            reference_batch_size=8,
            rounds=2,
            steps=1,
            matmul_n=1024,
            predict_records=4,
            device=device,
            ig_steps=0,
        )


@dataclass
class Runner:
    """One training configuration to time: ``step(fetch())`` is one optimisation step."""

    fetch: Callable[[], tuple]
    step: Callable[[tuple], None]
    info: dict
    load: float = 0.0
    compute: float = 0.0
    samples: int = 0
    steps: int = 0

    def run(self, n: int, device: torch.device) -> None:
        """Time ``n`` steps, fetching (loading) and computing separately."""
        for _ in range(n):
            _sync(device)
            t0 = time.perf_counter()
            batch = self.fetch()
            _sync(device)
            t1 = time.perf_counter()
            self.step(batch)
            _sync(device)
            t2 = time.perf_counter()
            self.load += t1 - t0
            self.compute += t2 - t1
            self.samples += len(batch[0])
            self.steps += 1

    def result(self) -> dict:
        """Throughput, step time, loading share and input-pipeline throughput over the timed steps."""
        total = self.load + self.compute
        return {
            **self.info,
            "samples_per_s": self.samples / total,
            "step_ms": 1000 * total / self.steps,
            "load_share": self.load / total,
            "input_samples_per_s": self.samples / self.load if self.load > 0 else float("inf"),
            "steps": self.steps,
            "samples": self.samples,
        }


def time_rounds(runners: list[Runner], rounds: int, steps: int, device: torch.device) -> list[dict]:
    """Warm every runner up with one step, then run ``rounds`` x ``steps`` timed steps of each in turn."""
    for runner in runners:
        runner.step(runner.fetch())
    for _ in range(rounds):
        for runner in runners:
            runner.run(steps, device)
    return [runner.result() for runner in runners]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def bench_data(n: int, progress: ProgressFn | None = None) -> Path:
    """A DeepFake folder of ``n`` generated records under the data home (generated on first use)."""
    from ecgcore.data import generate_deepfake

    folder = ecg_paths.generated_dir() / f"bench-deepfake-{n}"
    if not folder.exists():
        generate_deepfake(folder, n, seed=0, device="cpu", progress=progress)
    return folder


def matmul_flops(n: int, device: torch.device, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an ``n x n`` matrix product in ``dtype`` (best of ``repeats``): the machine's practical peak."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):  # best of: on a shared machine the least-disturbed repeat
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def trainer_runner(
    data_dir: Path, fs: float, amp: bool, settings: BenchSettings, device: torch.device
) -> Runner:
    """The trainer's own data path and step for ``inception1d`` at ``fs``."""
    from ecgcore.data import format_spec
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource, prepare_data
    from ecgcore.train.config import TrainConfig
    from ecgcore.train.device import precision_name, resolve_precision
    from ecgcore.train.optim import train_step

    config = TrainConfig(
        task="regression",
        data=format_spec("deepfake", data_dir),
        model=MODEL,
        fs=fs,
        batch_size=settings.batch_size,
        amp=amp,
    )
    data = prepare_data(config)
    rows = np.concatenate(list(data.rows.values()))
    torch.manual_seed(0)
    model = create_model(MODEL, len(config.leads), len(data.names)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    amp_dtype, use_scaler = resolve_precision(device, amp, force=True)
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    source = BatchSource(data.inputs, data.y, rows, device)
    rng = np.random.default_rng(0)
    loss_fn = nn.L1Loss()

    def fetch():
        return source.batch(rng.choice(rows, settings.batch_size, replace=len(rows) < settings.batch_size))

    def step(batch):
        train_step(
            model,
            model,
            *batch,
            loss_fn,
            optimizer,
            amp_dtype=amp_dtype,
            scaler=scaler,
            grad_clip=config.grad_clip,
        )

    return Runner(
        fetch,
        step,
        dict(
            fs=fs, precision=precision_name(amp_dtype), batch_size=settings.batch_size, data_mode=source.mode
        ),
    )


class FileDataset(torch.utils.data.Dataset):
    """The reference input pipeline: every access reads and z-scores one ``.asc`` file (no cache)."""

    def __init__(self, files: list[Path], targets: np.ndarray):
        self.files, self.targets = files, targets.astype(np.float32)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.loadtxt(self.files[i], dtype=np.float32).T / 1000.0  # 5000 x 8 microvolts -> [8, 5000] mV
        x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)
        return torch.from_numpy(x), torch.from_numpy(self.targets[i])


def reference_runner(data_dir: Path, settings: BenchSettings, device: torch.device) -> Runner:
    """The plain loop: file-reading Dataset, DataLoader, fp32, 500 Hz."""
    from ecgcore.data import format_spec, open_source
    from ecgcore.models import create_model

    dataset = open_source(format_spec("deepfake", data_dir))
    index = dataset.index.dropna(subset=list(TARGET_KEYS))
    files = [dataset.root / p for p in index["path"]]
    targets = index[list(TARGET_KEYS)].to_numpy()
    targets = (targets - targets.mean(axis=0)) / targets.std(axis=0)
    loader = torch.utils.data.DataLoader(
        FileDataset(files, targets), batch_size=settings.reference_batch_size, shuffle=True, drop_last=True
    )
    torch.manual_seed(0)
    model = create_model(MODEL, 8, 4).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.L1Loss()
    batches = iter(())

    def fetch():
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        return x.to(device), y.to(device)

    def step(batch):
        x, y = batch
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return Runner(
        fetch,
        step,
        dict(
            fs=500.0, precision="fp32", batch_size=settings.reference_batch_size, data_mode="file per access"
        ),
    )


def _bench_predictor(fs: float, precision: str = "auto"):
    """An untrained ``inception1d`` :class:`~ecgcore.predict.Predictor` for ``fs`` (latency does not depend
    on the weights)."""
    from ecgcore.data import Preprocessing
    from ecgcore.models import create_model
    from ecgcore.predict import Predictor

    prep = Preprocessing(fs=fs)
    torch.manual_seed(0)
    model = create_model(MODEL, len(prep.leads), 4).eval()
    meta = {
        "task": "regression",
        "targets": list(TARGET_KEYS),
        "target_mean": [0.0] * 4,
        "target_sd": [1.0] * 4,
        "preprocessing": prep.to_dict(),
        "stats": {},
        "label_mode": "single",
    }
    return Predictor(model, meta, precision)


def forward_flops(fs: float) -> float:
    """FLOPs of one ``inception1d`` forward pass over one 10 s record at ``fs`` (2 x MACs of model_stats)."""
    from ecgcore.models import create_model, model_stats

    return 2.0 * model_stats(create_model(MODEL, 8, 4), 8, int(fs * 10))["macs"]


def measure_prediction(data_dir: Path, fs: float, settings: BenchSettings, peak: float) -> dict:
    """Prediction at ``fs``: ms per record, batch 1, for the plain fp32 model (``before``: eval mode,
    ``no_grad``, as predictions ran before issue 20) and for the inference network (``after``), interleaved;
    then records/s of :meth:`Predictor.predict_many` (batch ``settings.batch_size``). Shares are the FLOP
    bound at the fp32 matmul rate ``peak`` over the measured time. Reading the files is timed separately.
    """
    from ecgcore.data import format_spec, open_source

    dataset = open_source(format_spec("deepfake", data_dir))
    predictor = _bench_predictor(fs)
    ids = dataset.index["record_id"].iloc[: settings.predict_records + 1].tolist()
    read_ms, before_ms, after_ms = [], [], []
    records = []
    for i, record_id in enumerate(ids):
        t0 = time.perf_counter()
        record = dataset.read(record_id)
        t1 = time.perf_counter()
        with torch.no_grad():
            predictor.model(predictor.prepare(record)).float().numpy()
        t2 = time.perf_counter()
        predictor.predict(record)
        t3 = time.perf_counter()
        records.append(record)
        if i:  # the first call is warm-up
            read_ms.append(1000 * (t1 - t0))
            before_ms.append(1000 * (t2 - t1))
            after_ms.append(1000 * (t3 - t2))
    flops = forward_flops(fs)
    batch = records * max(1, -(-settings.batch_size * 2 // len(records)))
    predictor.predict_many(batch[: settings.batch_size])  # warm-up at the batch shape
    t0 = time.perf_counter()
    predictor.predict_many(batch, settings.batch_size)
    per_s = len(batch) / (time.perf_counter() - t0)
    bound_ms = 1000 * flops / peak
    return {
        "fs": fs,
        "precision": predictor.precision if predictor.amp_dtype is None else "bf16",
        "forward_flops": flops,
        "bound_ms": bound_ms,
        "before_ms_median": float(np.median(before_ms)),
        "predict_ms_median": float(np.median(after_ms)),
        "predict_ms_max": float(np.max(after_ms)),
        "before_share": bound_ms / float(np.median(before_ms)),
        "after_share": bound_ms / float(np.median(after_ms)),
        "batched_records_per_s": per_s,
        "batched_share": per_s * flops / peak,
        "read_ms_median": float(np.median(read_ms)),
        "records": len(after_ms),
    }


def measure_ig(
    fs: float,
    peak: float,
    tolerance: float = 0.05,
    n_steps: int = 16,
    precisions: tuple[str, ...] = ("fp32", "auto"),
) -> list[dict]:
    """Integrated Gradients (one record, zeros baseline) with the convergence check, per precision.

    Bound: each step is a forward and a backward to the input (about 2 forward passes), plus the two
    forward passes of the completeness check, at the fp32 matmul rate ``peak``.
    """
    from ecgcore.explain.attributions import attribute

    predictor = _bench_predictor(fs)
    x = torch.randn(1, 8, int(fs * 10))
    flops = forward_flops(fs)
    rows = []
    for precision in precisions:
        start = time.perf_counter()
        attr = attribute(
            predictor.model, x, 0, "ig", fs=fs, n_steps=n_steps, tolerance=tolerance, precision=precision
        )
        seconds = time.perf_counter() - start
        total_steps = sum(steps for _, steps, _ in attr.extra["ig_tried"])
        bound_s = (2 * total_steps + 2) * flops / peak
        rows.append(
            {
                "fs": fs,
                "asked": precision,
                "precision": attr.extra["ig_precision"],
                "steps": attr.extra["ig_steps"],
                "tried": attr.extra["ig_tried"],
                "gap": attr.extra["ig_gap"],
                "seconds": seconds,
                "bound_s": bound_s,
                "share": bound_s / seconds,
            }
        )
    return rows


def bench_scaling(
    sizes: tuple[int, ...] = (500, 2000, 8000),
    fs: float = 100.0,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
) -> list[dict]:
    """Seconds to build the cache and to train one epoch (fp32 and the default precision) at each size.

    Every size gets its own generated DeepFake folder (generation is not timed) and a cold cache (the
    cache folder of that dataset and preprocessing is removed first).
    """
    import shutil

    from ecgcore.data import format_spec, open_source
    from ecgcore.data.cache import cache_key, load_cached
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource, prepare_data
    from ecgcore.train.config import TrainConfig
    from ecgcore.train.device import precision_name, resolve_precision
    from ecgcore.train.optim import train_step

    device = torch.device("cpu")
    rows = []
    for k, n in enumerate(sizes):
        report(progress, k, len(sizes), f"{n} records")
        data_dir = bench_data(n)
        config = TrainConfig(
            task="regression",
            data=format_spec("deepfake", data_dir),
            model=MODEL,
            fs=fs,
            batch_size=batch_size,
        )
        dataset = open_source(config.data)
        shutil.rmtree(ecg_paths.cache_dir() / cache_key(dataset, config.preprocessing()), ignore_errors=True)
        t0 = time.perf_counter()
        load_cached(dataset, config.preprocessing())
        cache_s = time.perf_counter() - t0
        data = prepare_data(config)
        train_rows = data.rows["train"]
        row = {"records": n, "train_rows": len(train_rows), "cache_s": cache_s, "fs": fs}
        for amp in (False, True):
            torch.manual_seed(0)
            model = create_model(MODEL, len(config.leads), len(data.names)).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
            amp_dtype, _ = resolve_precision(device, amp)
            source = BatchSource(data.inputs, data.y, train_rows, device)
            order = np.random.default_rng(0).permutation(train_rows)
            batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
            t0 = time.perf_counter()
            for x, y in source.iterate(batches):
                train_step(model, model, x, y, nn.L1Loss(), optimizer, amp_dtype=amp_dtype, grad_clip=None)
            row[f"epoch_s_{precision_name(amp_dtype)}"] = time.perf_counter() - t0
        rows.append(row)
    report(progress, len(sizes), len(sizes), "done")
    return rows


def format_scaling(rows: list[dict]) -> str:
    """The scaling table: seconds and seconds per 1,000 records (flat = linear growth)."""
    epochs = [k for k in rows[0] if k.startswith("epoch_s_")]
    head = f"{'records':>8}{'cache s':>10}{'s/1k':>7}" + "".join(
        f"{k[8:] + ' epoch s':>20}{'s/1k':>8}" for k in epochs
    )
    lines = [head]
    for r in rows:
        line = f"{r['records']:>8}{r['cache_s']:>10.1f}{1000 * r['cache_s'] / r['records']:>7.2f}"
        for k in epochs:
            line += f"{r[k]:>20.1f}{1000 * r[k] / r['records']:>8.1f}"
        lines.append(line)
    return "\n".join(lines)


def run_bench(settings: BenchSettings | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run every measurement; returns a JSON-able dict (see the module docstring)."""
    from ecgcore.train.device import cpu_has_bf16, resolve_device

    settings = settings or BenchSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    load_start = os.getloadavg()
    started = time.perf_counter()
    report(progress, 0, 3, "data")
    data_dir = bench_data(settings.n_records)
    peak = matmul_flops(settings.matmul_n, device)
    peak_bf16 = matmul_flops(settings.matmul_n, device, dtype=torch.bfloat16)
    report(progress, 1, 3, "training (all configurations in turn)")
    runners = [
        trainer_runner(data_dir, fs, amp, settings, device)
        for fs, amp in [(500.0, False), (500.0, True), (100.0, False), (100.0, True)]
    ]
    runners.append(reference_runner(data_dir, settings, device))
    *training, reference = time_rounds(runners, settings.rounds, settings.steps, device)
    report(progress, 2, 3, "prediction")
    prediction = [measure_prediction(data_dir, fs, settings, peak) for fs in (500.0, 100.0)]
    saliency = measure_ig(500.0, peak, n_steps=settings.ig_steps) if settings.ig_steps else []
    report(progress, 3, 3, "done")
    # on a shared machine one measurement of the rate may catch a busy moment: the bound is the best seen
    peak_start, peak_bf16_start = peak, peak_bf16
    peak = max(peak, matmul_flops(settings.matmul_n, device))
    peak_bf16 = max(peak_bf16, matmul_flops(settings.matmul_n, device, dtype=torch.bfloat16))
    for p in prediction:  # the prediction shares were computed against the start rate
        p["bound_ms"] *= peak_start / peak
        p["before_share"] *= peak_start / peak
        p["after_share"] *= peak_start / peak
        p["batched_share"] *= peak_start / peak
    for r in saliency:
        r["bound_s"] *= peak_start / peak
        r["share"] *= peak_start / peak

    for row in training + [reference]:
        row["forward_flops_per_sample"] = forward_flops(row["fs"])
        row["achieved_flops"] = 3 * row["forward_flops_per_sample"] * row["samples_per_s"]
        row["share_of_matmul_peak"] = row["achieved_flops"] / peak
        row["share_of_precision_peak"] = row["achieved_flops"] / (
            peak if row["precision"] == "fp32" else peak_bf16
        )
    for p in prediction:
        train_forward = [r for r in training if r["fs"] == p["fs"] and r["precision"] != "fp32"]
        if train_forward:  # the forward share of a training step is a third of its FLOPs
            p["training_forward_samples_per_s"] = 3 * train_forward[0]["samples_per_s"]
    best_500 = max((r for r in training if r["fs"] == 500.0), key=lambda r: r["samples_per_s"])
    return {
        "settings": asdict(settings),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_native_bf16": cpu_has_bf16(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "matmul_flops": peak,
        "matmul_flops_start": peak_start,
        "matmul_flops_bf16": peak_bf16,
        "matmul_flops_bf16_start": peak_bf16_start,
        "training": training,
        "saliency": saliency,
        "reference": reference,
        "prediction": prediction,
        "speedup_vs_reference_500hz": best_500["samples_per_s"] / reference["samples_per_s"],
        "speedup_100hz_vs_reference_500hz": max(r["samples_per_s"] for r in training if r["fs"] == 100.0)
        / reference["samples_per_s"],
        "seconds": time.perf_counter() - started,
    }


def format_table(result: dict) -> str:
    """The benchmark as a plain-text table."""
    lines = [
        f"device {result['device']} ({result['device_name']}), torch {result['torch']}, {result['threads']} threads, "
        f"load average {result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}, "
        f"matmul fp32 {result['matmul_flops'] / 1e9:.1f} GFLOP/s (best of before / after the timings; before "
        f"{result['matmul_flops_start'] / 1e9:.1f}), bf16 {result['matmul_flops_bf16'] / 1e9:.1f} GFLOP/s; "
        f"native bf16: {result['cpu_native_bf16']}",
        "shares are of the FLOP bound at the fp32 matmul rate measured in this run (% mm); "
        "bf16 rows also of the bf16 rate (% own)",
        f"{'training':<44}{'samples/s':>10}{'step ms':>10}{'load %':>8}{'input/s':>10}{'GFLOP/s':>9}"
        f"{'% mm':>7}{'% own':>7}",
    ]
    rows = [
        (f"trainer {r['fs']:g} Hz {r['precision']} b{r['batch_size']} ({r['data_mode']})", r)
        for r in result["training"]
    ]
    ref = result["reference"]
    rows.append((f"reference {ref['fs']:g} Hz fp32 b{ref['batch_size']} (file Dataset)", ref))
    for name, r in rows:
        lines.append(
            f"{name:<44}{r['samples_per_s']:>10.2f}{r['step_ms']:>10.0f}{100 * r['load_share']:>8.1f}"
            f"{r['input_samples_per_s']:>10.0f}{r['achieved_flops'] / 1e9:>9.1f}{100 * r['share_of_matmul_peak']:>7.1f}"
            f"{100 * r['share_of_precision_peak']:>7.1f}"
        )
    lines.append(
        f"speed-up vs reference at 500 Hz: {result['speedup_vs_reference_500hz']:.2f}x; "
        f"trainer at 100 Hz vs reference at 500 Hz: {result['speedup_100hz_vs_reference_500hz']:.2f}x"
    )
    lines.append(
        f"forward FLOPs/sample: 500 Hz {result['training'][0]['forward_flops_per_sample'] / 1e9:.2f} G, "
        f"100 Hz {result['training'][2]['forward_flops_per_sample'] / 1e9:.2f} G"
    )
    for p in result["prediction"]:
        lines.append(
            f"prediction {p['fs']:g} Hz, one record: fp32 model {p['before_ms_median']:.1f} ms "
            f"({100 * p['before_share']:.0f} % of bound {p['bound_ms']:.1f} ms) -> inference path ({p['precision']}) "
            f"{p['predict_ms_median']:.1f} ms ({100 * p['after_share']:.0f} %); reading the file {p['read_ms_median']:.1f} ms"
        )
        train_rate = p.get("training_forward_samples_per_s")
        lines.append(
            f"prediction {p['fs']:g} Hz, batched: {p['batched_records_per_s']:.1f} records/s "
            f"({100 * p['batched_share']:.0f} % of bound"
            + (
                f"; {100 * p['batched_records_per_s'] / train_rate:.0f} % of the training forward rate)"
                if train_rate
                else ")"
            )
        )
    for r in result.get("saliency", []):
        lines.append(
            f"Integrated Gradients {r['fs']:g} Hz ({r['asked']} -> {r['precision']}): {r['steps']} steps, gap "
            f"{100 * r['gap']:.1f} %, {r['seconds']:.1f} s ({100 * r['share']:.0f} % of bound {r['bound_s']:.1f} s; "
            f"tried {[(p, n) for p, n, _ in r['tried']]})"
        )
    return "\n".join(lines)


#: The long-record benchmark's target on a 2-core machine (issue 18): a day in under a minute and 1.5 GB.
LONG_RECORD_TARGET = {"seconds": 60.0, "peak_rss_mb": 1536.0}
#: The stages of the beat analysis whose CPU seconds the long-record benchmark reports, in pipeline order.
LONG_RECORD_STAGES = ("read", "detect", "features", "classify", "cluster")


def build_long_record(source: Path, hours: float = 24.0, fs: float = 250.0) -> Path:
    """A ``hours``-long 2-lead WFDB record (format 16, 250 Hz) made of real records concatenated.

    The records of ``source`` (e.g. the QT Database development folder) sampled at ``fs`` with two
    or more channels are taken in name order, their first two channels, repeated until the length
    is reached. Written once under the data home's ``bench`` folder and reused.
    """
    import wfdb

    n_total = int(hours * 3600 * fs)
    target = ecg_paths.subdir("bench") / f"long-{round(hours * 3600)}s-{Path(source).name}"
    if target.with_suffix(".hea").exists():
        return target
    parts = []
    for header in sorted(Path(source).glob("*.hea")):
        hdr = wfdb.rdheader(str(header.with_suffix("")))
        if hdr.fs == fs and hdr.n_sig >= 2:
            parts.append(header.with_suffix(""))
    if not parts:
        raise FileNotFoundError(f"{source}: no 2-lead WFDB records at {fs:g} Hz to build a long record from")
    digital = np.empty((n_total, 2), dtype=np.int16)
    pos, i = 0, 0
    while pos < n_total:
        rec = wfdb.rdrecord(str(parts[i % len(parts)]), channels=[0, 1], physical=True)
        chunk = np.clip(np.round(np.nan_to_num(rec.p_signal) * 200.0), -32768, 32767).astype(np.int16)
        take = min(len(chunk), n_total - pos)
        digital[pos : pos + take] = chunk[:take]
        pos, i = pos + take, i + 1
    tmp = target.with_name(target.name + "-tmp")
    wfdb.wrsamp(
        tmp.name,
        fs=fs,
        units=["mV", "mV"],
        sig_name=["ECG1", "ECG2"],
        d_signal=digital,
        fmt=["16", "16"],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        write_dir=str(target.parent),
    )
    # rename the data file first, then the header (which names it): a header exists only when complete
    tmp.with_suffix(".dat").replace(target.with_suffix(".dat"))
    header = tmp.with_suffix(".hea").read_text().replace(tmp.name, target.name)
    ecg_paths.atomic_write_text(target.with_suffix(".hea"), header)
    tmp.with_suffix(".hea").unlink()
    return target


def bench_long_record(
    source: Path, hours: float = 24.0, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Time and peak memory of the beat analysis (detect, classify, cluster) of a ``hours``-long record.

    The analysis runs as ``python -m ecgcore beats RECORD --no-beats`` in a child process, so its
    peak resident memory is the child's own (VmHWM), and the time is the command's wall time
    including Python's start-up and imports; ``cpu_seconds`` (user + system CPU time of the child) says
    how much of that wall time was spent computing rather than waiting for a shared machine's cores.
    ``stages`` are the CPU seconds of each stage of the analysis (:data:`LONG_RECORD_STAGES`, as the
    analysis measures them, per thread: the model runs beside feature extraction, so they can add up to
    more than the analysis's wall time), ``analysis_seconds`` its wall time without start-up and imports.
    """
    import resource
    import subprocess
    import sys

    report(progress, 0, 2, "building the long record")
    record = build_long_record(source, hours)
    report(progress, 1, 2, "analysing it")
    load_start = os.getloadavg()
    started = time.perf_counter()
    # The child reports its own peak resident memory since exec (VmHWM, Linux): ru_maxrss of a child
    # also counts the parent's pages it was forked with.
    code = (
        "import sys; from ecgcore.cli import main; rc = main(sys.argv[1:]); "
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')] "
        "if sys.platform == 'linux' else []; "
        "sys.stderr.write('VmHWM_kB ' + (hwm[0] if hwm else '') + chr(10)); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "beats", str(record), "--no-beats", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"beat analysis of {record} failed: {done.stderr.strip()[-500:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    hwm = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("VmHWM_kB")]
    peak_mb = int(hwm[0][0]) / 1024 if hwm and hwm[0] else usage.ru_maxrss / 1024
    import json

    summary = json.loads(done.stdout.splitlines()[-1])
    report(progress, 2, 2, "done")
    return {
        "record": str(record),
        "hours": hours,
        "fs": summary["fs"],
        "n_beats": summary["n_beats"],
        "counts": summary["counts"],
        "stages": {stage: summary.get("timings", {}).get(stage) for stage in LONG_RECORD_STAGES},
        "analysis_seconds": summary.get("timings", {}).get("wall"),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "target": LONG_RECORD_TARGET,
        "meets_target": seconds < LONG_RECORD_TARGET["seconds"]
        and peak_mb < LONG_RECORD_TARGET["peak_rss_mb"],
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }


def format_long_record(result: dict) -> str:
    """:func:`bench_long_record` as plain text: the headline, then CPU seconds per stage."""
    target = result["target"]
    lines = [
        f"{result['hours']:g} h record, {result['n_beats']:,} beats: {result['seconds']:.1f} s wall "
        f"(analysis {result['analysis_seconds'] or float('nan'):.1f} s), {result['cpu_seconds']:.1f} CPU s, "
        f"peak {result['peak_rss_mb']:.0f} MB; target < {target['seconds']:g} s and < {target['peak_rss_mb']:g} MB: "
        f"{'met' if result['meets_target'] else 'NOT met'}",
        f"{result['cpu_count']} CPUs, load average {result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}",
        "stage      CPU s",
    ]
    lines += [
        f"{stage:<10} {seconds:6.1f}" for stage, seconds in result["stages"].items() if seconds is not None
    ]
    return "\n".join(lines)


def bench_images(
    n_charts: int = 200,
    n_fields: int = 200,
    steps: int = 3,
    batch_size: int = 16,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    models: tuple[tuple[str, tuple[int, int, int]], ...] = (
        ("resnet18", (1, 224, 224)),
        ("alexnet2d", (3, 64, 64)),
    ),
) -> dict[str, Any]:
    """Speed of the image representations and of 2D-model training on this machine.

    * charts/s: :func:`~ecgcore.data.representations.render_chart` of a 10 s, 12-lead, 500 Hz synthetic
      ECG at 224 x 224 (layout ``3x4+II``), one chart at a time;
    * fields/s per kind: one lead's 64 x 64 field from 5000 samples (:func:`field_image` of leads I, II,
      V2 at once, divided by 3);
    * training samples/s of ``resnet18`` on 1 x 224 x 224 charts and ``alexnet2d`` on 3 x 64 x 64 fields,
      through the trainer's batch source (uint8 -> float / 255) and step, fp32, after one warm-up step.
    """
    from ecgcore.data.representations import FIELD_KINDS, field_image, render_chart
    from ecgcore.data.synthetic import synthetic_ecg
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource
    from ecgcore.train.device import resolve_device
    from ecgcore.train.optim import train_step
    from ecgcore.vocab import LEADS_12

    ecg = synthetic_ecg(noise_mv=0.02)
    signal = ecg.signal
    load_start = os.getloadavg()
    report(progress, 0, 3, "charts")
    start = time.perf_counter()
    for _ in range(n_charts):
        render_chart(signal, 500.0, LEADS_12, "3x4+II")
    charts_per_s = n_charts / (time.perf_counter() - start)
    report(progress, 1, 3, "fields")
    three = signal[[LEADS_12.index(x) for x in ("I", "II", "V2")]]
    fields = {}
    for kind in FIELD_KINDS:
        start = time.perf_counter()
        for _ in range(max(1, n_fields // 3)):
            field_image(three, kind, 64)
        fields[kind] = 3 * max(1, n_fields // 3) / (time.perf_counter() - start)
    report(progress, 2, 3, "2D training")
    dev = resolve_device(device)
    rng = np.random.default_rng(0)
    runners = []
    for model_name, shape in models:
        images = rng.integers(0, 256, (4 * batch_size, *shape), dtype=np.uint8)
        y = rng.standard_normal((len(images), 4)).astype(np.float32)
        rows = np.arange(len(images))
        source = BatchSource(images, y, rows, dev)
        torch.manual_seed(0)
        model = create_model(model_name, shape[0], 4).to(dev).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def fetch(source=source, rows=rows):
            return source.batch(rng.choice(rows, batch_size, replace=False))

        def step(batch, model=model, optimizer=optimizer):
            train_step(
                model, model, *batch, nn.L1Loss(), optimizer, amp_dtype=None, scaler=None, grad_clip=1.0
            )

        runners.append(
            Runner(fetch, step, {"model": model_name, "input": list(shape), "batch_size": batch_size})
        )
    training = time_rounds(runners, 1, steps, dev)
    report(progress, 3, 3, "done")
    return {
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "charts_per_s": charts_per_s,
        "chart_size": [224, 224],
        "fields_per_s": fields,
        "field_size": 64,
        "training": training,
    }


def format_images(result: dict) -> str:
    """:func:`bench_images` as plain text."""
    lines = [
        f"images on {result['device']}, {result['threads']} threads, load average "
        f"{result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}",
        f"charts 224x224 (3x4+II): {result['charts_per_s']:.0f}/s",
        "fields 64x64 per lead: " + ", ".join(f"{k} {v:.0f}/s" for k, v in result["fields_per_s"].items()),
    ]
    for r in result["training"]:
        lines.append(
            f"training {r['model']} on {'x'.join(map(str, r['input']))} b{r['batch_size']}: "
            f"{r['samples_per_s']:.1f} samples/s ({r['step_ms']:.0f} ms/step)"
        )
    return "\n".join(lines)


def efficiency_frame(run_ids: list[str], runs_dir: str | Path | None = None) -> pd.DataFrame:
    """Parameters, MACs, disk size, inference time and the headline test score of finished runs.

    One row per run (``label`` = model and representation); ``score`` is the run's first headline test
    metric (``test_auc`` for classification, ``test_mae`` for regression), ``score_name`` says which. The
    model is rebuilt from the run's best checkpoint and measured with
    :func:`ecgcore.models.model_efficiency` on the run's input shape.
    """
    from ecgcore.data.image_inputs import input_shape
    from ecgcore.models import model_efficiency
    from ecgcore.runs.store import RunStore
    from ecgcore.train.checkpoint import load_checkpoint

    store = RunStore(runs_dir)
    rows = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        config = store.config(run_id)
        best = store.run_dir(run_id) / "best.safetensors"
        if run["status"] != "done" or not best.exists():
            continue
        model, _ = load_checkpoint(best)
        stats = model_efficiency(model, input_shape(config.representation, config.preprocessing()), repeats=3)
        headline = (run.get("summary") or {}).get("headline", {})
        key = next((k for k in headline if k.startswith("test_")), None)
        rows.append(
            {
                "run_id": run_id,
                "label": f"{config.model} ({config.representation})",
                **stats,
                "score": headline.get(key) if key else None,
                "score_name": key,
            }
        )
    return pd.DataFrame(rows)
