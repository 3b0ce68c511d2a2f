"""PipelineSpec: everything that decides which weights are resident and how (the cache key).

Presets that share weights and memory settings share a spec: the Lightning 2-2-2 and 3-3 presets
differ only in schedule and LoRAs, so switching between them costs no reload.
"""

from __future__ import annotations

from dataclasses import dataclass

from headless_wan.engine.presets import Preset


@dataclass(frozen=True)
class PipelineSpec:
    weights: str
    """Hub id, local folder, or `builtin:<name>` (tiny models)."""
    family: str
    """Pipeline family (`engine/families`): decides the pipeline class the weights load into."""
    two_experts: bool
    boundary_ratio: float | None
    device: str
    compute_dtype: str
    """dtype of transformer(s) and text encoder; the VAE always runs in float32."""
    memory_profile: str
    attention_backend: str
    local_files_only: bool
    compile: bool = False
    """Regional torch.compile of the experts (a compiled pipeline is a different cached object)."""

    @property
    def device_type(self) -> str:
        return self.device.split(":", 1)[0]


def pipeline_spec(
    preset: Preset,
    *,
    device: str,
    memory_profile: str,
    attention_backend: str,
    local_files_only: bool,
    compile: bool = False,
) -> PipelineSpec:
    # Half precision on a CPU is slow and poorly supported; the CPU path (tests, demos) uses float32.
    compute_dtype = preset.dtype if device.startswith("cuda") else "float32"
    return PipelineSpec(
        weights=preset.weights,
        family=preset.family,
        two_experts=preset.two_experts,
        boundary_ratio=preset.boundary_ratio,
        device=device,
        compute_dtype=compute_dtype,
        memory_profile=memory_profile,
        attention_backend=attention_backend,
        local_files_only=local_files_only,
        compile=compile,
    )


def resolve_device(configured: str) -> str:
    """ "auto" → "cuda" when a CUDA device is usable, else "cpu" (imports torch)."""
    if configured != "auto":
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
