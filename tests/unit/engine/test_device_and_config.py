"""Error classification, profiles, the Settings → EngineConfig mapping, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from headless_wan.config import Settings
from headless_wan.engine import EngineConfig, engine_config_from_settings
from headless_wan.engine.device import classify_device_error
from headless_wan.engine.profiles import PROFILES, check_device_support, get_profile, next_cheaper
from headless_wan.errors import ConfigError, EngineOOM, WorkerFatal


def test_oom_becomes_engine_oom_naming_size_frames_and_next_profile() -> None:
    error = classify_device_error(
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), width=832, height=480, num_frames=81,
        profile="resident",
    )  # fmt: skip
    assert isinstance(error, EngineOOM)
    assert "832x480" in str(error) and "81 frames" in str(error) and "'fp8'" in str(error)


def test_poisoned_cuda_context_is_worker_fatal() -> None:
    error = classify_device_error(
        RuntimeError("CUDA error: an illegal memory access was encountered"), width=64, height=64,
        num_frames=17, profile="fp8",
    )  # fmt: skip
    assert isinstance(error, WorkerFatal)


def test_other_errors_are_left_alone() -> None:
    assert classify_device_error(ValueError("x"), width=1, height=1, num_frames=1, profile="resident") is None


def test_profile_ladder_and_cpu_support() -> None:
    assert next_cheaper("resident") == "fp8" and next_cheaper("sequential") is None
    for name in ("resident", "fp8", "group_offload"):
        check_device_support(PROFILES[name], "cpu")
    for name in ("model_offload", "sequential"):
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            check_device_support(PROFILES[name], "cpu")
    with pytest.raises(ConfigError, match="unknown memory profile"):
        get_profile("turbo")


def test_engine_config_comes_from_the_generation_settings(tmp_path: Path) -> None:
    settings = Settings(
        model_override="tiny", memory_profile="fp8", device="cpu", attention_backend="flex",
        lora_cache_dir=tmp_path, lora_max_mb=10, lora_timeout_s=5, hf_offline=False, queue="sqlite",
    )  # fmt: skip
    config = engine_config_from_settings(settings)
    assert config == EngineConfig(
        device="cpu", memory_profile="fp8", attention_backend="flex", model_override="tiny",
        local_files_only=False, lora_cache_dir=tmp_path, lora_max_mb=10, lora_timeout_s=5,
        progress_interval_s=settings.progress_interval_s, input_max_mb=settings.download_max_mb,
        input_timeout_s=settings.download_timeout_s, allow_local_inputs=True,
    )  # fmt: skip
    assert engine_config_from_settings(Settings(allow_local_inputs=False)).allow_local_inputs is False


def test_importing_the_engine_and_handlers_does_not_import_torch() -> None:
    code = (
        "import sys, headless_wan.engine, headless_wan.handlers.generate;"
        "from headless_wan.engine import Engine, EngineConfig; Engine(EngineConfig());"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
