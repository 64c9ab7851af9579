"""Sweeps of the training and prediction settings (``bench --sweep``): which configuration is fastest here.

Training (inception1d, 500 Hz, the trainer's data path and step), every configuration interleaved
round by round (:func:`~ecgcore.bench.common.time_rounds`) so that a shared machine's load swings hit
them alike: batch size x precision (fp32 and the default mixed precision), torch CPU threads (1 and the
default), AdamW's fused kernel in the mixed-precision path, and ``torch.compile`` modes with the compile
time (the first step) reported apart, and the layout (channels-last, the CPU bf16 default, against plain).
Prediction: ONNX Runtime against the torch inference path, one record and a batch, outputs compared
(:func:`sweep_onnx`; needs ``onnxruntime``, not a dependency); the inference network's layouts and
``torch.compile`` with freezing (:func:`sweep_inference`).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgcore.bench.common import BenchSettings, bench_data, bench_predictor, forward_flops, time_rounds
from ecgcore.bench.matmul import matmul_flops
from ecgcore.bench.training import trainer_runner
from ecgcore.progress import ProgressFn, report
from ecgcore.train.device import precision_name

#: torch.compile modes the sweep times (max-autotune's CUDA graphs excluded: CPU and GPU alike).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")
SWEEP_PARTS = ("batch", "threads", "fused", "layout", "compile", "onnx", "inference")


def sweep_training(
    data_dir: Path,
    settings: BenchSettings,
    parts: tuple[str, ...] = SWEEP_PARTS,
    batch_sizes: tuple[int, ...] = (8, 16, 32, 64),
    fs: float = 500.0,
    progress: ProgressFn | None = None,
) -> list[dict]:
    """Samples/s of each training configuration in ``parts`` (see the module docstring), interleaved.

    The base configuration (batch ``settings.batch_size``, default threads, unfused, not compiled) is
    timed in both precisions whatever ``parts`` says, so every row has its baseline in the same rounds.
    Each row carries ``compile_s`` (first step, compiled runners only).
    """
    device = torch.device("cpu")
    default_threads = torch.get_num_threads()
    base = settings.batch_size
    configs: list[dict[str, Any]] = [{"amp": amp} for amp in (False, True)]
    if "batch" in parts:
        configs += [{"amp": amp, "batch_size": b} for b in batch_sizes if b != base for amp in (False, True)]
    if "threads" in parts:
        configs += [
            {"amp": amp, "threads": t} for t in (1, 2) if t != default_threads for amp in (False, True)
        ]
    if "fused" in parts:
        configs.append({"amp": True, "fused": True})
    if (
        "layout" in parts
    ):  # the mixed-precision default runs channels-last on a CPU: the plain layout beside it
        configs.append({"amp": True, "layout": "plain"})
    if "compile" in parts:
        configs += [{"amp": True, "compile_mode": mode} for mode in COMPILE_MODES]
    runners, compile_s = [], []
    for k, config in enumerate(configs):
        report(progress, k, len(configs) + 1, f"building {config}")
        config = {"threads": default_threads, **config}
        runner = trainer_runner(data_dir, fs, settings=settings, device=device, **config)
        if config.get("compile_mode"):  # the first step compiles: timed apart
            t0 = time.perf_counter()
            runner.step(runner.fetch())
            compile_s.append(time.perf_counter() - t0)
        else:
            compile_s.append(None)
        runners.append(runner)
    report(progress, len(configs), len(configs) + 1, "timing every configuration in turn")
    rows = time_rounds(runners, settings.rounds, settings.steps, device)
    torch.set_num_threads(default_threads)
    flops = forward_flops(fs)
    for row, seconds in zip(rows, compile_s):
        row["compile_s"] = seconds
        row["achieved_flops"] = 3 * flops * row["samples_per_s"]
    return rows


def sweep_onnx(fs: float = 500.0, batch_size: int = 32, repeats: int = 10, tmp: Path | None = None) -> dict:
    """ONNX Runtime (CPU provider, fp32, the batch-norm-folded network exported) against the torch
    inference path (:class:`~ecgcore.predict.Predictor`'s ``net`` in its default precision) and its fp32
    variant: median ms for one record and records/s for a batch, interleaved; ``max_rel_diff`` is the
    largest difference of ONNX's outputs from torch fp32's, relative to the output scale."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install onnxruntime to time it)"}
    from ecgcore.paths import subdir

    predictor = bench_predictor(fs)
    net = predictor.net.eval()
    x1 = torch.randn(1, 8, int(fs * 10))
    xb = torch.randn(batch_size, 8, int(fs * 10))
    path = (tmp or subdir("bench")) / f"inception1d-{fs:g}hz.onnx"
    torch.onnx.export(
        net, (x1,), str(path), input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}},
        dynamo=False,
    )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        want = net(xb).numpy()
    got = session.run(None, {"x": xb.numpy()})[0]
    max_rel = float(np.abs(got - want).max() / (np.abs(want).max() + 1e-12))
    dtype = predictor.amp_dtype

    def torch_run(x: torch.Tensor, amp: bool) -> None:
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=amp and dtype is not None),
        ):
            net(x)

    runs = {
        "onnxruntime fp32": lambda x: session.run(None, {"x": x.numpy()}),
        "torch fp32": lambda x: torch_run(x, False),
        f"torch {'bf16' if dtype is not None else 'fp32'} (default)": lambda x: torch_run(x, True),
    }
    one = {name: [] for name in runs}
    batched = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run(x1), run(xb)
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(x1)
            one[name].append(time.perf_counter() - t0)
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(xb)
            batched[name].append(time.perf_counter() - t0)
    return {
        "fs": fs,
        "batch_size": batch_size,
        "max_rel_diff": max_rel,
        "forward_flops": forward_flops(fs),
        "one_record_ms": {k: 1000 * float(np.median(v)) for k, v in one.items()},
        "batched_records_per_s": {k: batch_size / float(np.median(v)) for k, v in batched.items()},
    }


def sweep_inference(
    fs: float = 500.0, batch_size: int = 32, repeats: int = 10, compiled: bool = True
) -> dict[str, Any]:
    """The inference network in its default precision: plain layout, channels-last (the CPU bf16 default) and
    (``compiled``) channels-last through :func:`~ecgcore.predict.compiled_network`: median ms for one record
    and records/s for a batch, interleaved; compile seconds (both shapes) apart; ``max_rel_diff``: each
    variant's largest output difference from the eager default, relative to the output scale."""
    from ecgcore.predict import compiled_network
    from ecgcore.train.layout import plain_layout

    predictor = bench_predictor(fs)  # its net is channels-last where the default precision is CPU bf16
    default = predictor.net
    runs: dict[str, torch.nn.Module] = {f"eager {predictor.layout}": default}
    if predictor.layout != "plain":
        runs["eager plain"] = copy.deepcopy(default)
        plain_layout(runs["eager plain"])
    x1 = torch.randn(1, 8, int(fs * 10))
    xb = torch.randn(batch_size, 8, int(fs * 10))
    compile_s = {}
    if compiled:
        net = compiled_network(default)
        start = time.perf_counter()
        predictor.run_net(net, x1), predictor.run_net(net, xb)
        compile_s[f"compiled {predictor.layout}"] = time.perf_counter() - start
        runs[f"compiled {predictor.layout}"] = net
    want = predictor.run_net(default, xb)
    diffs = {
        k: float(np.abs(predictor.run_net(n, xb) - want).max() / np.abs(want).max()) for k, n in runs.items()
    }
    one = {name: [] for name in runs}
    batched = {name: [] for name in runs}
    for _ in range(repeats):
        for name, net in runs.items():
            t0 = time.perf_counter()
            predictor.run_net(net, x1)
            one[name].append(time.perf_counter() - t0)
        for name, net in runs.items():
            t0 = time.perf_counter()
            predictor.run_net(net, xb)
            batched[name].append(time.perf_counter() - t0)
    return {
        "fs": fs,
        "batch_size": batch_size,
        "precision": precision_name(predictor.amp_dtype),
        "forward_flops": forward_flops(fs),
        "compile_s": compile_s,
        "max_rel_diff": diffs,
        "one_record_ms": {k: 1000 * float(np.median(v)) for k, v in one.items()},
        "batched_records_per_s": {k: batch_size / float(np.median(v)) for k, v in batched.items()},
    }


def run_sweep(
    settings: BenchSettings | None = None,
    parts: tuple[str, ...] = SWEEP_PARTS,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """The sweeps of ``parts`` with this run's matmul rates and load average; JSON-able."""
    settings = settings or BenchSettings(rounds=2, steps=1)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    load_start = os.getloadavg()
    started = time.perf_counter()
    device = torch.device("cpu")
    peak = matmul_flops(settings.matmul_n, device)
    peak_bf16 = matmul_flops(settings.matmul_n, device, dtype=torch.bfloat16)
    training = sweep_training(bench_data(settings.n_records), settings, parts, progress=progress)
    onnx = sweep_onnx() if "onnx" in parts else None
    inference = sweep_inference(compiled="compile" in parts) if "inference" in parts else None
    peak = max(peak, matmul_flops(settings.matmul_n, device))
    peak_bf16 = max(peak_bf16, matmul_flops(settings.matmul_n, device, dtype=torch.bfloat16))
    for row in training:
        row["share_of_matmul_peak"] = row["achieved_flops"] / peak
        row["share_of_precision_peak"] = row["achieved_flops"] / (
            peak if row["precision"] == "fp32" else peak_bf16
        )
    return {
        "parts": list(parts),
        "settings": {"rounds": settings.rounds, "steps": settings.steps, "batch_size": settings.batch_size},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "matmul_flops": peak,
        "matmul_flops_bf16": peak_bf16,
        "training": training,
        "onnx": onnx,
        "inference": inference,
        "seconds": time.perf_counter() - started,
    }


def format_sweep(result: dict) -> str:
    """The sweep as plain-text tables."""
    lines = [
        f"sweep, torch {result['torch']}, {result['threads']} threads, load average {result['loadavg_start'][0]:.1f}"
        f" -> {result['loadavg_end'][0]:.1f}, matmul fp32 {result['matmul_flops'] / 1e9:.1f} / bf16 "
        f"{result['matmul_flops_bf16'] / 1e9:.1f} GFLOP/s; training inception1d 500 Hz, interleaved rounds",
        f"{'precision':<12}{'batch':>6}{'thr':>4}{'fused':>6}  {'layout':<14}{'compile':<28}{'samples/s':>10}"
        f"{'step ms':>9}{'% mm':>6}{'% own':>6}{'compile s':>10}",
    ]
    for r in result["training"]:
        lines.append(
            f"{r['precision']:<12}{r['batch_size']:>6}{r['threads']:>4}{'yes' if r['fused'] else 'no':>6}  "
            f"{r.get('layout', 'plain'):<14}"
            f"{r['compile'] or '-':<28}{r['samples_per_s']:>10.2f}{r['step_ms']:>9.0f}"
            f"{100 * r['share_of_matmul_peak']:>6.1f}{100 * r['share_of_precision_peak']:>6.1f}"
            + (f"{r['compile_s']:>10.1f}" if r["compile_s"] is not None else f"{'':>10}")
        )
    onnx = result.get("onnx")
    if onnx and "skipped" in onnx:
        lines.append(f"ONNX Runtime: {onnx['skipped']}")
    elif onnx:
        lines.append(
            f"prediction {onnx['fs']:g} Hz (outputs: ONNX vs torch fp32 max diff {100 * onnx['max_rel_diff']:.4f} % "
            "of the output scale)"
        )
        for name, ms in onnx["one_record_ms"].items():
            lines.append(
                f"  {name:<24} one record {ms:>8.1f} ms   batch {onnx['batch_size']}: "
                f"{onnx['batched_records_per_s'][name]:>7.1f} records/s"
            )
    inference = result.get("inference")
    if inference:
        bound = 1000 * inference["forward_flops"] / result["matmul_flops"]
        lines.append(
            f"inference network {inference['fs']:g} Hz {inference['precision']}, interleaved (one record's bound "
            f"{bound:.1f} ms at the fp32 matmul rate)"
        )
        for name, ms in inference["one_record_ms"].items():
            compile_s = inference["compile_s"].get(name)
            lines.append(
                f"  {name:<24} one record {ms:>8.1f} ms ({ms / bound:.2f}x bound)   batch "
                f"{inference['batch_size']}: {inference['batched_records_per_s'][name]:>7.1f} records/s   "
                f"max diff {100 * inference['max_rel_diff'][name]:.3f} %"
                + (f"   compile {compile_s:.0f} s" if compile_s is not None else "")
            )
    return "\n".join(lines)
