"""Prediction latency (one record) and throughput (a folder), plain model against the inference path."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ecgcore.bench.common import (
    BenchSettings,
    bench_predictor,
    forward_flops,
)


def measure_prediction(data_dir: Path, fs: float, settings: BenchSettings, peak: float) -> dict:
    """Prediction at ``fs``: ms per record, batch 1, for the plain fp32 model (``before``: eval mode,
    ``no_grad``, as predictions ran before issue 20) and for the inference network (``after``), interleaved;
    then records/s of :meth:`Predictor.predict_many` (batch ``settings.batch_size``). Shares are the FLOP
    bound at the fp32 matmul rate ``peak`` over the measured time. Reading the files is timed separately.
    With ``settings.compile_predict`` a compiled predictor (:func:`~ecgcore.predict.compiled_network`) is
    timed too, interleaved with the others (``compiled_ms_median``; its compile in ``compile_s``).
    """
    from ecgcore.data import format_spec, open_source

    dataset = open_source(format_spec("deepfake", data_dir))
    predictor = bench_predictor(fs)
    compiled, compile_s, compiled_ms = None, None, []
    if settings.compile_predict:
        compiled = bench_predictor(fs, compiled=True)
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
        if compiled is not None:
            compiled.predict(record)
            if i == 0:
                compile_s = time.perf_counter() - t3
            else:
                compiled_ms.append(1000 * (time.perf_counter() - t3))
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
        "layout": predictor.layout,
        **(
            {
                "compiled_ms_median": float(np.median(compiled_ms)),
                "compiled_share": bound_ms / float(np.median(compiled_ms)),
                "compile_s": compile_s,
            }
            if compiled_ms
            else {}
        ),
    }
