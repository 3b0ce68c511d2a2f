"""The engine's frozen configuration, built once from `Settings` at the CLI edge.

Engine code never reads the environment: everything it may vary on arrives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"."""
    memory_profile: str | None = None
    """Memory profile for every preset; None = each preset's own `memory_profile`."""
    attention_backend: str = "auto"
    """`HW_ATTENTION`: resolved and verified once per process (engine/attention.py), never per task."""
    compile: bool = False
    """Regional torch.compile of the experts' repeated blocks, warmed at load (engine/compile.py)."""
    compile_cache_dir: Path | None = None
    """Inductor cache folder (the model volume); None = torch's default."""
    presets_file: Path | None = None
    """Presets TOML; None = `configs/presets.toml` of this checkout."""
    model_override: str | None = None
    """Force every generation onto this preset (e.g. `tiny` for CPU smoke runs)."""
    local_files_only: bool = True
    """Load weights only from local folders or the Hugging Face cache; never download on the hot path."""
    lora_cache_dir: Path = Path("var/loras")
    lora_max_mb: int = 4096
    lora_timeout_s: float = 600.0
    progress_interval_s: float = 1.0
    """Least time between two denoising progress events (the first and last step always report)."""
    max_loaded_loras: int = 8
    """LoRA adapters kept loaded (inactive) between tasks before the least recently used is deleted."""
    # Input policy of the generation handlers (guide / mask / reference downloads), carried here so
    # the handlers need nothing but the engine.
    input_max_mb: float = 500.0
    input_timeout_s: float = 120.0
    input_max_pixels: int = 50_000_000
    """Largest input image (reference images), refused from its header before decoding."""
    allow_local_inputs: bool = False
    """Let payloads name local files (run task.json, embedded queue); never for shared queues."""


def engine_config_from_settings(settings: Any) -> EngineConfig:
    """Build the engine config from the CLI's `Settings` (fields of its generation section)."""
    defaults = EngineConfig()

    def pick(name: str, default: Any) -> Any:
        value = getattr(settings, name, None)
        return default if value is None else value

    return EngineConfig(
        device=pick("device", defaults.device),
        memory_profile=getattr(settings, "memory_profile", None) or None,
        attention_backend=pick("attention_backend", defaults.attention_backend),
        compile=bool(pick("compile", defaults.compile)),
        compile_cache_dir=getattr(settings, "compile_cache_dir", None),
        presets_file=getattr(settings, "presets_file", None),
        model_override=getattr(settings, "model_override", None) or None,
        local_files_only=bool(pick("hf_offline", defaults.local_files_only)),
        lora_cache_dir=Path(pick("lora_cache_dir", defaults.lora_cache_dir)),
        lora_max_mb=int(pick("lora_max_mb", defaults.lora_max_mb)),
        lora_timeout_s=float(pick("lora_timeout_s", defaults.lora_timeout_s)),
        progress_interval_s=float(pick("progress_interval_s", defaults.progress_interval_s)),
        input_max_mb=float(pick("download_max_mb", defaults.input_max_mb)),
        input_timeout_s=float(pick("download_timeout_s", defaults.input_timeout_s)),
        input_max_pixels=int(pick("max_input_pixels", defaults.input_max_pixels)),
        allow_local_inputs=_allow_local_inputs(settings),
    )


def _allow_local_inputs(settings: Any) -> bool:
    """Explicit setting wins; by default only the embedded sqlite queue (a single machine's own
    tasks) may name local files."""
    explicit = getattr(settings, "allow_local_inputs", None)
    if explicit is not None:
        return bool(explicit)
    return getattr(settings, "queue", None) == "sqlite"
