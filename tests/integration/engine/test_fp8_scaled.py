"""The fp8_scaled memory profile (torchao, per-row scales) on the tiny model.

On a CPU torchao has no fp8 matmul, so the profile stores scaled fp8 weights and computes in the
compute dtype (the path tested here); the fp8-matmul path needs a GPU of compute capability 8.9+."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from headless_wan.engine import LoraSpec
from headless_wan.errors import ConfigError

from .conftest import tiny_request, write_lora

pytestmark = pytest.mark.slow


def resident_shape(request) -> tuple[int, int, int, int]:
    return (request.num_frames, request.height, request.width, 3)


def _fp8_linears(model) -> list[object]:
    import torch

    return [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and type(m.weight).__name__.startswith("Float8")
    ]


def test_fp8_scaled_quantizes_only_the_experts(make_engine) -> None:
    pytest.importorskip("torchao", reason="torchao is the optional 'fp8' extra")
    engine = make_engine(memory_profile="fp8_scaled")
    frames = engine.generate(tiny_request()).frames
    pipe = engine._cache.current.pipe
    assert frames.shape == resident_shape(tiny_request())
    assert _fp8_linears(pipe.transformer)
    assert not _fp8_linears(pipe.text_encoder) and not _fp8_linears(pipe.vae)
    resident = make_engine().generate(tiny_request()).frames
    # Scaled fp8 keeps the output close to bf16/fp32 (unscaled e4m3 weights would not).
    assert np.abs(frames.astype(int) - resident.astype(int)).mean() < 8


def test_fp8_scaled_with_a_first_task_lora(make_engine, lora_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("torchao", reason="torchao is the optional 'fp8' extra")
    engine = make_engine(memory_profile="fp8_scaled")
    styled = engine.generate(tiny_request(loras=(LoraSpec(str(lora_file)),))).frames
    assert not np.array_equal(
        styled, make_engine(memory_profile="fp8_scaled").generate(tiny_request()).frames
    )
    other = write_lora(tmp_path / "other.safetensors", seed=2)
    with pytest.raises(ConfigError, match="fp8_scaled' cannot change LoRAs"):
        engine.generate(tiny_request(loras=(LoraSpec(str(other)),)))


def test_fp8_scaled_without_torchao_names_the_extra(make_engine, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao", None)  # import torchao -> ImportError
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(ConfigError, match="needs torchao \\(install the 'fp8' extra\\)"):
        make_engine(memory_profile="fp8_scaled").generate(tiny_request())


def test_fp8_matmul_path_needs_a_recent_gpu() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchao", reason="torchao is the optional 'fp8' extra")
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("torchao's fp8 matmuls need CUDA compute capability >= 8.9; it has no CPU path")
    from headless_wan.engine.fp8 import quantize_experts

    layer = torch.nn.Linear(256, 256, dtype=torch.bfloat16, device="cuda")
    assert quantize_experts([layer], torch.device("cuda")).startswith("fp8 matmuls")
