"""Loading a pipeline for a `PipelineSpec`, in the documented order (see profiles.py), and the
per-task scheduler choice. Real checkpoints and the tiny builtin models share this path."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headless_wan.engine import attention, tiny
from headless_wan.engine.compile import compile_experts
from headless_wan.engine.families import get_family
from headless_wan.engine.lora_fusion import FusionState
from headless_wan.engine.loras import AdapterState, WantedAdapter, sync_adapters
from headless_wan.engine.presets import BUILTIN_PREFIX
from headless_wan.engine.profiles import (
    MemoryProfile,
    apply_profile,
    check_device_support,
    set_attention_backend,
)
from headless_wan.engine.spec import PipelineSpec
from headless_wan.errors import ConfigError


@dataclass
class LoadedPipeline:
    """A cached pipeline and the mutable state that belongs to it."""

    pipe: Any
    spec: PipelineSpec
    profile: MemoryProfile
    compute_dtype: Any
    adapters: AdapterState = field(default_factory=AdapterState)
    base_scheduler_config: Any = None
    schedulers: dict[tuple[str, float], Any] = field(default_factory=dict)
    timesteps: dict[tuple[str, float, int], tuple[float, ...]] = field(default_factory=dict)
    """Planned timesteps per (solver, shift, steps): building a probe scheduler costs milliseconds."""
    attention_backend: str = "native"
    """The backend `HW_ATTENTION` resolved to (engine/attention.py)."""
    fusion: FusionState = field(default_factory=FusionState)
    """LoRAs fused into the experts of a compiled pipeline (engine/lora_fusion.py)."""
    warmup_s: float | None = None
    """Seconds the compile warm-up at load took (None: not compiled)."""


def load_pipeline(
    spec: PipelineSpec,
    profile: MemoryProfile,
    first_adapters: Callable[[LoadedPipeline], Sequence[WantedAdapter]],
    *,
    max_loaded: int,
    compile_cache_dir: Path | None = None,
) -> LoadedPipeline:
    """Load weights, add the first task's adapters (computed from the loaded pipeline: which
    expert a LoRA goes to depends on the run's timesteps), then apply the memory profile."""
    import torch

    check_device_support(profile, spec.device_type)  # before reading gigabytes of weights
    dtype = getattr(torch, spec.compute_dtype)
    pipe = (
        _build_builtin(spec, dtype)
        if spec.weights.startswith(BUILTIN_PREFIX)
        else _from_pretrained(spec, dtype)
    )
    pipe.set_progress_bar_config(disable=True)
    if spec.two_experts and getattr(pipe, "transformer_2", None) is None:
        raise ConfigError(f"weights {spec.weights!r} have no transformer_2 but the preset has two experts")
    choice = attention.resolve(spec.attention_backend, device=spec.device, dtype_name=spec.compute_dtype)
    set_attention_backend(pipe, choice.backend)
    loaded = LoadedPipeline(pipe, spec, profile, dtype, base_scheduler_config=pipe.scheduler.config)
    loaded.attention_backend = choice.backend
    # Order step 2: adapters before casting/offloading (step 3).
    sync_adapters(
        pipe, loaded.adapters, first_adapters(loaded), editing=contextlib.nullcontext, max_loaded=max_loaded
    )
    apply_profile(pipe, profile, spec.device, dtype)
    if spec.compile:
        # After adapters and profile, so the compiled graph sees the final modules.
        compile_experts(pipe, cache_dir=compile_cache_dir)
    return loaded


EXTRA_BUILTINS: dict[str, Callable[[PipelineSpec, Any], Any]] = {}
"""`builtin:<name>` → builder(spec, dtype) beside the families' tiny models: benchmarks register
full-size random-weight pipelines here (benchmarks/gpu_segment.py); the worker registers none."""


def _build_builtin(spec: PipelineSpec, dtype: Any) -> Any:
    import torch

    family = get_family(spec.family)
    name = spec.weights[len(BUILTIN_PREFIX) :]
    if name in EXTRA_BUILTINS:
        return EXTRA_BUILTINS[name](spec, dtype)
    if name not in family.builtins:
        raise ConfigError(
            f"unknown builtin {spec.family} model {spec.weights!r} (known: {sorted(family.builtins)})"
        )
    pipe = family.build_tiny(name, boundary_ratio=spec.boundary_ratio)
    if dtype != torch.float32:
        for component in (pipe.text_encoder, pipe.transformer, getattr(pipe, "transformer_2", None)):
            if component is not None:
                component.to(dtype=dtype)
    return pipe


def _from_pretrained(spec: PipelineSpec, dtype: Any) -> Any:
    import diffusers
    import torch

    family = get_family(spec.family)
    # Wan families use the Wan VAE; image families name their own (`vae_class`).
    vae_class = getattr(diffusers, getattr(family, "vae_class", "AutoencoderKLWan"))
    try:
        vae = vae_class.from_pretrained(
            spec.weights, subfolder="vae", dtype=torch.float32, local_files_only=spec.local_files_only
        )
        return family.from_pretrained(
            spec.weights, vae=vae, dtype=dtype, local_files_only=spec.local_files_only
        )
    except (OSError, ValueError) as exc:
        hint = " (offline: stage the weights first)" if spec.local_files_only else ""
        raise ConfigError(f"cannot load model weights {spec.weights!r}{hint}: {exc}") from exc


def use_scheduler(loaded: LoadedPipeline, solver: str, flow_shift: float) -> Any:
    """Install (and cache) the scheduler for this task's solver and shift; returns it."""
    key = (solver, float(flow_shift))
    scheduler = loaded.schedulers.get(key)
    if scheduler is None:
        scheduler = _make_scheduler(loaded.base_scheduler_config, solver, flow_shift)
        loaded.schedulers[key] = scheduler
    loaded.pipe.scheduler = scheduler
    return scheduler


def _make_scheduler(base_config: Any, solver: str, flow_shift: float) -> Any:
    # WGP's exact sigmas (engine/schedules.py), so Lightning LoRAs see the timesteps they were
    # distilled on.
    from headless_wan.engine.schedules import WgpEulerScheduler, WgpUniPCScheduler

    num_train = int(base_config.get("num_train_timesteps", 1000))
    if solver == "euler":
        return WgpEulerScheduler(num_train_timesteps=num_train, shift=flow_shift)
    if base_config.get("_class_name") == "UniPCMultistepScheduler":
        # Keep the checkpoint's own UniPC settings; only the shift is per task.
        return WgpUniPCScheduler.from_config(base_config, flow_shift=flow_shift)
    return WgpUniPCScheduler.from_config(tiny.build_scheduler("unipc", flow_shift).config)


def cached_timesteps(loaded: LoadedPipeline, solver: str, flow_shift: float, steps: int) -> tuple[float, ...]:
    """`planned_timesteps` of the (solver, shift) scheduler, computed once per pipeline."""
    key = (solver, float(flow_shift), steps)
    found = loaded.timesteps.get(key)
    if found is None:
        found = tuple(planned_timesteps(use_scheduler(loaded, solver, flow_shift), steps))
        loaded.timesteps[key] = found
    return found


def planned_timesteps(scheduler: Any, steps: int) -> list[float]:
    """The timesteps a run of `steps` will visit, from a copy (the live scheduler keeps its state)."""
    probe = type(scheduler).from_config(scheduler.config)
    probe.set_timesteps(steps, device="cpu")
    return [float(t) for t in probe.timesteps]


def free_device_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver (no torch import if unused)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
