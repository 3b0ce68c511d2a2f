"""GPU failure classification and the startup fitness report.

Out of memory is the task's problem (EngineOOM: the worker frees memory and carries on); errors
that leave the CUDA context unusable are the worker's (WorkerFatal: it must exit and be replaced).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from headless_wan.engine.profiles import next_cheaper
from headless_wan.errors import EngineOOM, WorkerFatal

# After these the CUDA context is poisoned: every later kernel fails too.
_FATAL_PATTERNS = re.compile(
    "|".join(
        (
            r"illegal memory access",
            r"device-side assert",
            r"unspecified launch failure",
            r"fallen off the bus",
            r"uncorrectable ECC error",
            r"CUDA driver version is insufficient",
            r"no CUDA-capable device",
            r"CUDA error: unknown error",
            r"NVML_SUCCESS == r INTERNAL ASSERT FAILED",
            r"cudaErrorLaunchFailure",
            r"CUBLAS_STATUS_EXECUTION_FAILED",
        )
    ),
    re.IGNORECASE,
)


def is_out_of_memory(exc: BaseException) -> bool:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def classify_device_error(
    exc: BaseException, *, width: int, height: int, num_frames: int, profile: str
) -> Exception | None:
    """The taxonomy error for a raw device failure, or None when it is something else."""
    if is_out_of_memory(exc):
        cheaper = next_cheaper(profile)
        advice = f"try memory profile '{cheaper}'" if cheaper else "no cheaper memory profile is left"
        return EngineOOM(
            f"GPU out of memory generating {width}x{height}, {num_frames} frames with memory profile "
            f"'{profile}': {advice}, or fewer frames / a lower resolution"
        )
    if isinstance(exc, RuntimeError) and _FATAL_PATTERNS.search(str(exc)):
        return WorkerFatal(f"unrecoverable GPU error: {str(exc).splitlines()[0][:300]}")
    return None


@dataclass(frozen=True)
class FitnessReport:
    """What the worker logs (and acts on) at start: where generation runs and whether it fits."""

    device: str
    device_name: str
    total_vram_mb: float | None
    free_vram_mb: float | None
    preset: str
    memory_profile: str
    needed_vram_mb: float | None
    fits: bool
    problems: tuple[str, ...] = ()


def device_fitness(device: str, *, preset: str, profile: str, needed_gb: float | None) -> FitnessReport:
    import torch

    problems: list[str] = []
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return FitnessReport(
                device, "none", None, None, preset, profile, None, False, ("CUDA is not available",)
            )
        index = torch.device(device).index or 0
        free, total = torch.cuda.mem_get_info(index)
        free_mb, total_mb = free / 2**20, total / 2**20
        needed_mb = None if needed_gb is None else needed_gb * 1024
        fits = needed_mb is None or free_mb >= needed_mb
        if not fits:
            problems.append(
                f"preset {preset!r} with profile {profile!r} needs about {needed_mb:.0f} MiB, "
                f"{free_mb:.0f} MiB free"
            )
        name = torch.cuda.get_device_name(index)
        return FitnessReport(
            device, name, total_mb, free_mb, preset, profile, needed_mb, fits, tuple(problems)
        )
    if profile in ("model_offload", "sequential"):
        problems.append(f"memory profile {profile!r} needs a CUDA device")
    return FitnessReport(device, "cpu", None, None, preset, profile, None, not problems, tuple(problems))


def vram_usage() -> tuple[int, int]:
    """(total_mb, used_mb) of the current CUDA device, for heartbeats; (0, 0) without one.

    Never imports torch itself: the heartbeat must not pay for (or race) a torch import."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0, 0
    free, total = torch.cuda.mem_get_info()
    return int(total / 2**20), int((total - free) / 2**20)
