"""Memory profiles: where the weights live and how they are stored while a pipeline is cached.

The one order (diffusers issues #12052, #11791, #12096 show LoRA x offloading breaking otherwise):

    1. load weights (dtype policy: VAE float32, the rest in the preset dtype on a GPU)
    2. load the LoRA adapters the first task needs
    3. apply the profile: fp8 layerwise casting -> placement (resident / offload) -> VAE tiling/slicing

LoRAs that later tasks add go through `adapter_editing`, which restores the state of step 2 for
the edit: diffusers itself removes and re-applies offload hooks around `load_lora_weights`; for fp8
casting we lift the cast weights back to the compute dtype (exact: fp8 values are representable),
add the adapters, and store the weights in fp8 again. The result equals loading in the documented
order (a test compares them bit for bit). With `fp8_scaled` (torchao) later LoRAs are unfused
adapters over the quantized base (never merged into it): also equal to the documented order,
since quantization skips the adapters' own matrices.

Model and sequential offload need an accelerator (`enable_model_cpu_offload requires accelerator`
on a CPU-only machine); asking for them on a CPU is a configuration error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from headless_wan.errors import ConfigError

PLACEMENTS = ("resident", "model_offload", "sequential", "group_offload")


@dataclass(frozen=True)
class MemoryProfile:
    name: str
    placement: str = "resident"
    fp8_transformer: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    vae_tile_px: int | None = None
    """Tile edge in pixels (stride = 3/4 of it); None = diffusers' defaults (256 / 192)."""
    fp8_scaled: bool = False
    """torchao fp8 with per-row scales (engine/fp8.py): saves memory and, on GPUs with fp8 matmuls
    (compute capability 8.9+), compute; `fp8_transformer` (layerwise cast) only saves memory."""
    group_offload_type: str = "block_level"
    group_offload_blocks: int = 1

    @property
    def needs_accelerator(self) -> bool:
        return self.placement in ("model_offload", "sequential")

    @property
    def offloads(self) -> bool:
        return self.placement != "resident"


PROFILES: dict[str, MemoryProfile] = {
    p.name: p
    for p in (
        MemoryProfile("resident"),
        MemoryProfile("fp8", fp8_transformer=True, vae_tiling=True),
        MemoryProfile("fp8_scaled", fp8_scaled=True, vae_tiling=True),
        MemoryProfile("model_offload", placement="model_offload", fp8_transformer=True, vae_tiling=True),
        MemoryProfile("group_offload", placement="group_offload", vae_tiling=True),
        MemoryProfile("sequential", placement="sequential", vae_tiling=True, vae_slicing=True),
    )
}
# From most to least memory; an OOM message suggests the next one.
PROFILE_LADDER = ("resident", "fp8", "model_offload", "group_offload", "sequential")


def get_profile(name: str) -> MemoryProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown memory profile {name!r} (known: {', '.join(PROFILES)})") from None


def next_cheaper(name: str) -> str | None:
    if name not in PROFILE_LADDER:
        return None
    index = PROFILE_LADDER.index(name)
    return PROFILE_LADDER[index + 1] if index + 1 < len(PROFILE_LADDER) else None


def check_device_support(profile: MemoryProfile, device_type: str) -> None:
    if profile.needs_accelerator and device_type == "cpu":
        raise ConfigError(
            f"memory profile {profile.name!r} offloads to the CPU from a GPU and needs a CUDA device; "
            "on a CPU use resident, fp8 or group_offload"
        )


def _experts(pipe: Any) -> list[Any]:
    return [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]


def apply_profile(pipe: Any, profile: MemoryProfile, device: str, compute_dtype: Any) -> None:
    """Step 3 of the order above, on a freshly loaded pipeline (adapters already in place)."""
    import torch

    check_device_support(profile, torch.device(device).type)
    if profile.fp8_scaled:
        from headless_wan.engine.fp8 import quantize_experts

        quantize_experts(_experts(pipe), torch.device(device))
    if profile.fp8_transformer:
        for expert in _experts(pipe):
            expert.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)
    if profile.placement == "resident":
        pipe.to(device)
    elif profile.placement == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif profile.placement == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif profile.placement == "group_offload":
        on_gpu = torch.device(device).type == "cuda"
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_device=torch.device("cpu"),
            offload_type=profile.group_offload_type,
            num_blocks_per_group=profile.group_offload_blocks,
            use_stream=on_gpu,
            # The VAE decodes once per task in float32; streaming it block by block only slows it.
            exclude_modules=["vae"],
        )
    else:
        raise ConfigError(f"memory profile {profile.name!r}: unknown placement {profile.placement!r}")
    _apply_vae_settings(pipe, profile)


def _apply_vae_settings(pipe: Any, profile: MemoryProfile) -> None:
    if profile.vae_tiling:
        if profile.vae_tile_px is None:
            pipe.vae.enable_tiling()
        else:
            tile, stride = profile.vae_tile_px, profile.vae_tile_px * 3 // 4
            pipe.vae.enable_tiling(
                tile_sample_min_height=tile,
                tile_sample_min_width=tile,
                tile_sample_stride_height=stride,
                tile_sample_stride_width=stride,
            )
    if profile.vae_slicing:
        pipe.vae.enable_slicing()


@contextlib.contextmanager
def adapter_editing(pipe: Any, profile: MemoryProfile, compute_dtype: Any) -> Iterator[None]:
    """Adapters may be added or deleted inside; see the module docstring."""
    if not profile.fp8_transformer:
        # fp8_scaled too: a new adapter wraps the quantized Linear and keeps its own matrices in
        # the compute dtype (quantization ran once, at load); the fp8 base is never lifted.
        yield  # diffusers lifts and re-applies offload hooks around LoRA loading itself
        return
    import torch

    hooked = [m for expert in _experts(pipe) for m in _cast_modules(expert)]
    for module in hooked:
        module.to(dtype=compute_dtype)
    try:
        yield
    finally:
        for module in hooked:
            module.to(dtype=torch.float8_e4m3fn)
        for expert in _experts(pipe):
            _keep_peft_input_dtype(expert)


def _cast_modules(model: Any) -> list[Any]:
    return [
        m
        for m in model.modules()
        if getattr(m, "_diffusers_hook", None) is not None
        and m._diffusers_hook.get_hook("layerwise_casting") is not None
    ]


def _keep_peft_input_dtype(model: Any) -> None:
    """New LoRA layers over cast weights need the hook diffusers adds when casting is enabled
    after the adapters (it stops peft from casting inputs to the fp8 storage dtype)."""
    from diffusers.hooks import layerwise_casting
    from diffusers.hooks.hooks import HookRegistry
    from peft.tuners.tuners_utils import BaseTunerLayer

    hook_name = "peft_autocast_disable"
    for module in model.modules():
        if not isinstance(module, BaseTunerLayer) or not _cast_modules(module):
            continue
        registry = HookRegistry.check_if_exists_or_initialize(module)
        if registry.get_hook(hook_name) is None:
            registry.register_hook(layerwise_casting.PeftInputAutocastDisableHook(), hook_name)


def set_attention_backend(pipe: Any, backend: str) -> None:
    """Once per loaded pipeline, with the process-wide setting: diffusers' backend choice leaks
    globally (engine.md §10), so it must never change between tasks."""
    if backend == "native":
        return
    for expert in _experts(pipe):
        expert.set_attention_backend(backend)
