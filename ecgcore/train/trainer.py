"""The trainer's entry: :func:`train` a :class:`~ecgcore.train.config.TrainConfig` into a run directory,
on CPU, CUDA or Apple MPS, one process or many (DDP, started by torchrun), reporting through a
:class:`~ecgcore.train.recorder.Recorder` (none given: an in-memory one; ``ecgcore.runs.run_training`` gives
the SQLite store's).

The pieces: :mod:`~ecgcore.train.device` (device, precision), :mod:`~ecgcore.train.batches` (rows, labels,
batches), :mod:`~ecgcore.train.optim` (loss, optimiser, schedule), :mod:`~ecgcore.train.evaluate` (metrics),
:mod:`~ecgcore.train.loop` (the fit loop) and :mod:`~ecgcore.train.resume` (what an epoch leaves on disk).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ecgcore.paths import atomic_write_json
from ecgcore.progress import ProgressFn
from ecgcore.train import distributed as ddp
from ecgcore.train.batches import PreparedData, prepare_data
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import configure_device, device_type, resolve_device
from ecgcore.train.leakage import signal_fingerprints
from ecgcore.train.loop import fit
from ecgcore.train.recorder import Cancelled, MemoryRecorder, Recorder
from ecgcore.version import code_version


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    recorder: Recorder | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    transfer_sources: list | None = None,
    run_id: str | None = None,
) -> dict:
    """Train ``config``, writing checkpoints, ``records.json`` and ``summary.json`` into ``run_dir``.

    Parameters
    ----------
    recorder
        Where the run reports (started, progress, epochs, checkpoints, outcome) and asks whether to stop.
    resume
        Continue from ``run_dir``'s last checkpoint (optimiser, schedule and epoch included).
    transfer_sources
        ``config.transfer``'s source runs as :class:`ecgcore.train.transfer.Source` (checkpoints and
        record lists; ``ecgcore.runs.transfer_sources`` resolves run ids to them).
    run_id
        The id written into checkpoints (default: the directory's name).

    Returns
    -------
    dict
        ``id``, ``status`` (``done`` or ``cancelled``), ``metrics`` and ``baseline`` per split, ``headline``,
        counts, device, precision and timings. A failure is reported to the recorder, then raised.
    """
    recorder = recorder or MemoryRecorder()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_id or run_dir.name
    info = ddp.setup(device_type(config.device))

    def body() -> dict:
        device = resolve_device(config.device, info.local_rank)
        configure_device(device)
        data = _load_data(config, progress, info)
        if recorder.cancel_requested():
            raise Cancelled()
        if info.is_main:
            atomic_write_json(run_dir / "records.json", _records(data))
        torch.manual_seed(config.seed)
        classes = data.names if config.task == "classification" else None
        model, strategy = build_model(
            config, input_channels(data.inputs), len(data.names), transfer_sources, classes
        )
        return fit(
            config,
            data,
            model,
            run_dir,
            device=device,
            recorder=recorder,
            strategy=strategy,
            resume=resume,
            progress=progress,
            run_id=run_id,
            info=info,
            augment=_augmenter(config),
        )

    return run_recorded(recorder, info, run_id, body)


def run_recorded(recorder: Recorder, info: ddp.DistInfo, run_id: str, body: Callable[[], dict]) -> dict:
    """``body()``, with its outcome (cancelled, failed) told to the recorder; leaves the process group after.

    A failure is recorded by whichever rank raised it, so a rank's error is not lost with it.
    """
    try:
        if recorder.cancel_requested():
            raise Cancelled()
        return body()
    except Cancelled:
        if info.is_main:
            recorder.cancelled("cancelled; the last epoch's checkpoint is kept")
        return {"id": run_id, "status": "cancelled"}
    except KeyboardInterrupt:
        if info.is_main:
            recorder.cancelled("interrupted by the user")
        raise
    except BaseException as exc:
        rank = f" (rank {info.rank})" if info.enabled else ""
        recorder.failed(f"{type(exc).__name__}{rank}: {exc}")
        raise
    finally:
        ddp.cleanup(info)


def _load_data(config: TrainConfig, progress: ProgressFn | None, info: ddp.DistInfo) -> PreparedData:
    """Rank 0 builds the cache first; the other ranks then map it."""
    if not info.is_main:
        ddp.barrier(info, ddp.CACHE_TIMEOUT_S, "rank 0 to build the data cache")
    data = prepare_data(config, progress=progress if info.is_main else None)
    if info.is_main:
        ddp.barrier(info, ddp.CACHE_TIMEOUT_S, "rank 0 to build the data cache")
    return data


def _records(data: PreparedData) -> dict:
    """``records.json``: the record ids of every split, and their patients and signal fingerprints (what
    transfer's leakage check reads), and the code that trained."""
    out = {
        "data": data.spec,
        "kind": data.kind,
        "dropped": data.dropped,
        "fingerprint": data.fingerprint,
        "code_version": code_version(),
        **{s: data.record_ids[r].tolist() for s, r in data.rows.items()},
    }
    if data.patient_ids is not None:
        out["patients"] = {s: data.patient_ids[r].tolist() for s, r in data.rows.items()}
    if isinstance(data.inputs, np.ndarray) and data.inputs.ndim == 3 and data.inputs.dtype != np.uint8:
        out["signal_fingerprints"] = {s: signal_fingerprints(data.inputs, r) for s, r in data.rows.items()}
    return out


def input_channels(inputs) -> int:
    """Channels of the model's (first) input: the leads of a signal ``[N, L, S]``, an image's ``C`` of ``[N, C, H, W]``."""
    first = inputs[0] if isinstance(inputs, tuple) else inputs
    return int(first.shape[1])


def build_model(
    config: TrainConfig,
    n_leads: int,
    n_outputs: int,
    transfer_sources: list | None = None,
    classes: tuple[str, ...] | None = None,
):
    """``(model, strategy)``: a fresh model, or the transfer module's pre-trained one and its strategy."""
    if config.transfer:
        from ecgcore.train.transfer import prepare

        if transfer_sources is None:
            raise ValueError(
                "a transfer run needs its source runs resolved to checkpoints and record lists "
                "(ecgcore.runs.run_training does it)"
            )
        return prepare(config, n_leads, n_outputs, transfer_sources, classes)
    from ecgcore.models import create_model

    return create_model(config.model, n_leads, n_outputs, **config.model_kwargs), None


def _augmenter(config: TrainConfig) -> Callable | None:
    """``(epoch, rank) -> Augment`` seeded by (seed, epoch, rank), so a resumed run repeats them; or ``None``."""
    if not config.augment:
        return None

    def make(epoch: int, rank: int):
        from ecgcore.data.transforms import Augment

        return Augment(seed=int(np.random.SeedSequence([config.seed, epoch, rank]).generate_state(1)[0]))

    return make
