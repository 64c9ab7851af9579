"""What every benchmark shares: settings, the round-robin step timer, the generated data, the model's FLOPs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgcore import paths as ecg_paths
from ecgcore.progress import ProgressFn
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
    compile_predict: bool = False

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
            sync(device)
            t0 = time.perf_counter()
            batch = self.fetch()
            sync(device)
            t1 = time.perf_counter()
            self.step(batch)
            sync(device)
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


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer reads finished work."""
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


def bench_predictor(fs: float, precision: str = "auto", compiled: bool = False):
    """An untrained ``inception1d`` :class:`~ecgcore.predict.Predictor` for ``fs`` (latency does not depend
    on the weights); ``compiled``: through :func:`~ecgcore.predict.compiled_network`."""
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
    return Predictor(model, meta, precision, compiled=compiled)


def forward_flops(fs: float) -> float:
    """FLOPs of one ``inception1d`` forward pass over one 10 s record at ``fs`` (2 x MACs of model_stats)."""
    from ecgcore.models import create_model, model_stats

    return 2.0 * model_stats(create_model(MODEL, 8, 4), 8, int(fs * 10))["macs"]


def bench_config(data_dir: Path, fs: float, batch_size: int, amp: bool = True):
    """The trainer configuration every training benchmark uses: :data:`MODEL` regressing the DeepFake
    intervals of ``data_dir`` at ``fs``."""
    from ecgcore.data import format_spec
    from ecgcore.train.config import TrainConfig

    return TrainConfig(
        task="regression",
        data=format_spec("deepfake", data_dir),
        model=MODEL,
        fs=fs,
        batch_size=batch_size,
        amp=amp,
    )
