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
* with ``--scaling`` (:func:`bench_scaling`): cache build and one training epoch at growing record counts,
  on records derived cheaply from a few generated ones (:func:`~ecgcore.bench.scaling.scaling_data`).

The data are DeepFake ECGs from :func:`ecgcore.data.generate_deepfake`, generated once into the
data home and reused. Every number is a measured time; on a shared machine the load average at
start and end is recorded next to them.

One job per module: :mod:`~ecgcore.bench.common` (settings, step timer, data, FLOPs),
:mod:`~ecgcore.bench.matmul` (the rate every bound is taken at), :mod:`~ecgcore.bench.training`,
:mod:`~ecgcore.bench.prediction`, :mod:`~ecgcore.bench.saliency` (IG), :mod:`~ecgcore.bench.scaling`,
:mod:`~ecgcore.bench.images`, :mod:`~ecgcore.bench.long_record`, :mod:`~ecgcore.bench.efficiency`,
:mod:`~ecgcore.bench.sweep` (``bench --sweep``), :mod:`~ecgcore.bench.compare` (before -> after in one run,
the issue-20 goals) and :mod:`~ecgcore.bench.run` (the default run and its table).
"""

from ecgcore.bench.common import (
    MODEL,
    REFERENCE_BATCH,
    BenchSettings,
    Runner,
    bench_data,
    bench_predictor,
    forward_flops,
    sync,
    time_rounds,
)
from ecgcore.bench.efficiency import efficiency_frame
from ecgcore.bench.images import bench_images, format_images
from ecgcore.bench.long_record import (
    LONG_RECORD_STAGES,
    LONG_RECORD_TARGET,
    bench_long_record,
    build_long_record,
    format_long_record,
)
from ecgcore.bench.matmul import matmul_flops
from ecgcore.bench.prediction import measure_prediction
from ecgcore.bench.run import format_table, run_bench
from ecgcore.bench.saliency import measure_ig
from ecgcore.bench.scaling import bench_scaling, format_scaling
from ecgcore.bench.training import FileDataset, reference_runner, trainer_runner

__all__ = [
    "LONG_RECORD_STAGES",
    "LONG_RECORD_TARGET",
    "MODEL",
    "REFERENCE_BATCH",
    "BenchSettings",
    "FileDataset",
    "Runner",
    "bench_data",
    "bench_images",
    "bench_long_record",
    "bench_predictor",
    "bench_scaling",
    "build_long_record",
    "efficiency_frame",
    "format_images",
    "format_long_record",
    "format_scaling",
    "format_table",
    "forward_flops",
    "matmul_flops",
    "measure_ig",
    "measure_prediction",
    "reference_runner",
    "run_bench",
    "sync",
    "time_rounds",
    "trainer_runner",
]
