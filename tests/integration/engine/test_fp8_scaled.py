"""The fp8_scaled memory profile (torchao, per-row scales) on the tiny model.

On a CPU torchao has no fp8 matmul, so the profile stores scaled fp8 weights and computes in the
compute dtype (the path tested here); the fp8-matmul path needs a GPU of compute capability 8.9+."""

from __future__ import annotations

import importlib.util
import subprocess
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


def test_fp8_scaled_changes_loras_over_the_quantized_base(
    make_engine, lora_file: Path, tmp_path: Path
) -> None:
    """LoRAs of later tasks are unfused adapters over the fp8 base: each task's output equals a
    fresh pipeline that loaded that task's LoRAs first, and nothing leaks into the next task."""
    pytest.importorskip("torchao", reason="torchao is the optional 'fp8' extra")
    other = write_lora(tmp_path / "other.safetensors", seed=2)
    with_style, with_other = (
        tiny_request(loras=(LoraSpec(str(lora_file)),)),
        tiny_request(loras=(LoraSpec(str(other)),)),
    )
    engine = make_engine(memory_profile="fp8_scaled")
    styled = engine.generate(with_style).frames
    swapped = engine.generate(with_other).frames
    plain = engine.generate(tiny_request()).frames
    assert engine.load_count == 1
    assert np.array_equal(swapped, make_engine(memory_profile="fp8_scaled").generate(with_other).frames)
    assert np.array_equal(plain, make_engine(memory_profile="fp8_scaled").generate(tiny_request()).frames)
    assert np.abs(styled.astype(int) - plain.astype(int)).max() > 20  # the LoRAs took effect
    assert np.abs(swapped.astype(int) - styled.astype(int)).max() > 20
    quantized = [name for name, module in engine._cache.current.pipe.transformer.named_modules()
                 if type(getattr(module, "weight", None)).__name__.startswith("Float8")]  # fmt: skip
    assert quantized and not [name for name in quantized if "lora_" in name]  # adapters stay unquantized


def test_default_path_never_imports_torchao(tmp_path: Path) -> None:
    """Only `fp8_scaled` reaches torchao: a resident generation in a fresh interpreter loads none
    of our fp8 code, and where torchao is not installed (the default install) nothing asks for it.
    Where it is installed, transformers' modeling_utils imports it on its own (not our code)."""
    script = (
        "import sys\n"
        "from headless_wan.engine import Engine, EngineConfig, GenerationRequest\n"
        f"engine = Engine(EngineConfig(device='cpu', lora_cache_dir={str(tmp_path)!r}))\n"
        "engine.generate(GenerationRequest(model='tiny', prompt='a cat', width=32, height=32, num_frames=5, steps=1))\n"
        "print('torch' in sys.modules, 'headless_wan.engine.fp8' in sys.modules, 'torchao' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    torch_loaded, fp8_loaded, torchao_loaded = done.stdout.split()[-3:]
    assert (torch_loaded, fp8_loaded) == ("True", "False")
    if importlib.util.find_spec("torchao") is None:
        assert torchao_loaded == "False"


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
