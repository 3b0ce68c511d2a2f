"""Every memory profile the CPU can run, with a LoRA: LoRA added to a profiled pipeline equals the
documented order (LoRA before the profile), changes the output, and removing it restores the base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headless_wan.engine import LoraSpec
from headless_wan.engine.profiles import MemoryProfile, apply_profile
from headless_wan.errors import ConfigError

from .conftest import tiny_request

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("profile", ["resident", "fp8", "group_offload"])
def test_cpu_profiles_with_a_lora(make_engine, lora_file: Path, profile: str) -> None:
    with_lora = tiny_request(loras=(LoraSpec(str(lora_file), "0.8"),))
    lora_first = make_engine(memory_profile=profile).generate(with_lora).frames  # loaded before profile
    engine = make_engine(memory_profile=profile)
    base = engine.generate(tiny_request()).frames
    lora_late = engine.generate(with_lora).frames  # added to the profiled pipeline
    restored = engine.generate(tiny_request()).frames
    assert np.array_equal(lora_first, lora_late)
    assert not np.array_equal(base, lora_late)
    assert np.array_equal(base, restored)
    assert engine.load_count == 1


def test_fp8_and_group_offload_keep_their_settings(make_engine) -> None:
    fp8 = make_engine(memory_profile="fp8")
    fp8.generate(tiny_request())
    transformer = fp8._cache.current.pipe.transformer
    assert any(p.dtype.is_floating_point and p.element_size() == 1 for p in transformer.parameters())
    grouped = make_engine(memory_profile="group_offload")
    grouped.generate(tiny_request())
    pipe = grouped._cache.current.pipe
    assert pipe.vae.use_tiling
    # The VAE is excluded from group offloading (it decodes once per task, on the device).
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    assert _is_group_offload_enabled(pipe.transformer) and _is_group_offload_enabled(pipe.text_encoder)
    assert not _is_group_offload_enabled(pipe.vae)
    assert not any(getattr(m, "_diffusers_hook", None) for m in pipe.vae.modules())


@pytest.mark.parametrize("profile", ["model_offload", "sequential"])
def test_accelerator_only_profiles_fail_clearly_on_cpu(make_engine, profile: str) -> None:
    engine = make_engine(memory_profile=profile)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        engine.generate(tiny_request())
    assert engine._cache.current is None


def test_vae_tiling_with_small_tiles_runs_and_changes_little() -> None:
    import torch

    from headless_wan.engine import tiny

    def run(pipe) -> np.ndarray:
        out = pipe(prompt="a cat", height=64, width=64, num_frames=5, num_inference_steps=2,
                   generator=torch.Generator().manual_seed(0), output_type="np").frames  # fmt: skip
        return out[0]

    plain = run(tiny.build_pipeline())
    tiled_pipe = tiny.build_pipeline()
    apply_profile(tiled_pipe, MemoryProfile("t", vae_tiling=True, vae_tile_px=32), "cpu", torch.float32)
    tiled = run(tiled_pipe)
    assert tiled.shape == plain.shape and tiled_pipe.vae.use_tiling
    assert not np.array_equal(tiled, plain) and np.abs(tiled - plain).max() < 0.5
