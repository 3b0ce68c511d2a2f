"""Fixtures for tiny-model engine tests: engines on the CPU and LoRA files that fit the tiny model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headless_wan.engine import Engine, EngineConfig, GenerationRequest

SIZE = 32
FRAMES = 17


def tiny_request(**changes: object) -> GenerationRequest:
    values: dict = {
        "model": "tiny", "prompt": "a cat dances in the blue sky", "negative_prompt": "blurry",
        "width": SIZE, "height": SIZE, "num_frames": FRAMES, "steps": 2, "seed": 3,
    }  # fmt: skip
    values.update(changes)
    return GenerationRequest(**values)


def write_lora(path: Path, *, seed: int = 1, scale: float = 0.5, rank: int = 4) -> Path:
    """A rank-`rank` LoRA (diffusers/peft key layout) on every attention projection of the tiny
    transformer."""
    import torch
    from safetensors.torch import save_file

    from headless_wan.engine import tiny

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, fan_in, fan_out in tiny.lora_target_modules():
        tensors[f"transformer.{module}.lora_A.weight"] = (
            torch.randn(rank, fan_in, generator=generator) * scale
        )
        tensors[f"transformer.{module}.lora_B.weight"] = (
            torch.randn(fan_out, rank, generator=generator) * scale
        )
    save_file(tensors, str(path))
    return path


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(**config: object) -> Engine:
        values: dict = {"device": "cpu", "lora_cache_dir": tmp_path / "loras", "progress_interval_s": 0.0}
        values.update(config)
        engine = Engine(EngineConfig(**values))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def lora_file(tmp_path: Path) -> Path:
    return write_lora(tmp_path / "style.safetensors")
