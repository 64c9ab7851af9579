"""Where a run computes and in which precision: device resolution (torchrun-aware), autocast and backend flags."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def device_type(name: str = "auto") -> str:
    """The device type ``name`` will resolve to (``"cuda"``, ``"mps"``, ``"cpu"``), without checking it exists.

    Used to choose the process-group backend before the device itself is resolved.
    """
    if name != "auto":
        return torch.device(name).type
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if _mps_available() else "cpu"


def resolve_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """The training device for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    CUDA devices always carry an index (``torch.cuda.set_device`` needs one): ``cuda`` and ``auto`` take
    ``local_rank``, else ``$LOCAL_RANK`` (set by torchrun), else 0; under torchrun an explicit ``cuda:N``
    is shifted by the local rank too, so the ranks of one node never share a GPU.

    Raises
    ------
    DeviceError
        ``cuda`` / ``mps`` asked for where there is none, or a CUDA index beyond the visible devices.
    """
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = device_type(name)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"no CUDA device: use --device cpu or auto (asked for {name!r})")
        base = torch.device(name).index if name != "auto" else None
        index = (base or 0) + local_rank
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"CUDA device {index} asked for ({name!r}, local rank {local_rank}); "
                f"this machine has {torch.cuda.device_count()}"
            )
        return torch.device("cuda", index)
    if kind == "mps" and not _mps_available():
        raise DeviceError(f"no Apple MPS device: use --device cpu or auto (asked for {name!r})")
    return torch.device(kind)


def configure_device(device: torch.device) -> None:
    """Make ``device`` current and let cuDNN pick its fastest convolution for the fixed input shapes."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX); without it CPU autocast only slows down."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cuda_has_native_bf16() -> bool:
    """Whether the current CUDA card computes bf16 in hardware (Ampere and later; not T4 / V100 emulation)."""
    return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def resolve_precision(
    device: torch.device, amp: bool, force: bool = False
) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (``None`` = fp32) and whether a gradient scaler is needed.

    CUDA: bf16 where the card has it natively, else fp16 with a scaler. MPS: fp16 with a scaler. CPU:
    bf16 when the CPU has native bf16 (or ``force``, used by the benchmark to measure it anyway), else fp32.
    """
    if not amp:
        return None, False
    if device.type == "cuda":
        return (torch.bfloat16, False) if cuda_has_native_bf16() else (torch.float16, True)
    if device.type == "mps":
        return torch.float16, True
    return (torch.bfloat16, False) if force or cpu_has_bf16() else (None, False)


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16-mixed`` or ``fp16-mixed``, as recorded with the run."""
    return {None: "fp32", torch.bfloat16: "bf16-mixed", torch.float16: "fp16-mixed"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``device``, or nothing for fp32."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def available_ram() -> int:
    """Bytes of RAM that can be used without swapping: ``MemAvailable`` (page cache counts), not ``MemFree``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def free_device_memory(device: torch.device) -> int:
    """Bytes free on a CUDA ``device`` once this process's caching allocator has returned its unused blocks
    (memory an earlier model or evaluation left cached counts as free: it is ours to reuse)."""
    torch.cuda.empty_cache()
    return torch.cuda.mem_get_info(device)[0]
