"""HW_COMPILE with LoRAs on the tiny two-expert I2V model (one block class, so one graph per state): warmed at load (the first task compiles
nothing), phase switches and per-step multipliers never recompile, fused LoRAs give the eager
unfused output, and no LoRA leaks into the next task.

One compiled engine for the module (inductor on a CPU costs seconds per graph); compile counts are
read from dynamo's own counters, and `error_on_recompile` turns any recompile into an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from headless_wan.engine import Engine, EngineConfig, LoraSpec
from headless_wan.engine.phases import PhaseConfig

from .conftest import tiny_request, write_lora

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# Phase 1 (high-noise expert): two steps, phase 2 (low-noise expert): one; no CFG (half the passes).
PHASES = PhaseConfig(steps_per_phase=(2, 1), guidance_per_phase=(1.0, 1.0), model_switch_phase=1)
IMAGE = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
TOLERANCE = 2  # uint8 levels: inductor's kernels vs eager (tests/integration/engine/test_compile.py)


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("loras")
    return {name: write_lora(folder / f"{name}.safetensors", seed=seed) for name, seed in
            (("a", 1), ("v", 2), ("b", 3))}  # fmt: skip


def request(loras: dict[str, Path], **multipliers: str):
    specs = tuple(LoraSpec(str(loras[name]), m) for name, m in multipliers.items())
    return tiny_request(model="tiny-i2v", phases=PHASES, steps=None, loras=specs, start_image=IMAGE)


def _engine(tmp: Path, **config: object) -> Engine:
    return Engine(EngineConfig(device="cpu", lora_cache_dir=tmp / "lora-cache", progress_interval_s=0.0,
                               **config))  # fmt: skip


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Engine]]:
    tmp = tmp_path_factory.mktemp("engines")
    compiled = _engine(tmp, compile=True, compile_cache_dir=tmp / "inductor")
    eager = _engine(tmp)
    yield compiled, eager
    compiled.close()
    eager.close()


def graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@contextlib.contextmanager
def no_recompiles() -> Iterator[None]:
    import torch._dynamo

    before = graphs()
    with torch._dynamo.config.patch(error_on_recompile=True):
        yield
    assert graphs() == before, "a graph was compiled"


def test_warmed_at_load_and_no_recompile_at_phase_switches(engines, loras) -> None:
    compiled, eager = engines
    # A constant on both experts (fused into both); V per step on expert 1 (a residual adapter
    # whose weight changes from 0.5 to 1.0 between steps), constant 0.7 on expert 2 (fused).
    task = request(loras, a="1.0", v="0.5,1.0;0.7")
    before = graphs()
    prepared = compiled.prepare(task)
    assert graphs() > before and prepared.loaded.warmup_s > 0  # compiled at load, not in the task
    with no_recompiles():
        first = compiled.generate(task)
        again = compiled.generate(task)  # a second task of the same shape
    assert first.settings["expert_switch_step"] == 2 and compiled.load_count == 1
    names = {letter: _name(loras[letter]) for letter in "av"}
    fused = prepared.loaded.fusion.fused
    assert fused == {"transformer": {names["a"]: 1.0}, "transformer_2": {names["a"]: 1.0, names["v"]: 0.7}}
    assert np.array_equal(first.frames, again.frames)
    reference = eager.generate(task).frames  # unfused adapters, set_adapters per step
    assert _diff(first.frames, reference) <= TOLERANCE
    assert _diff(reference, eager.generate(request(loras, a="1.0")).frames) > 10 * TOLERANCE


def test_no_lora_leaks_into_the_next_task(engines, loras) -> None:
    compiled, eager = engines
    compiled.generate(request(loras, a="1.0", v="0.5,1.0;0.7"))  # fuses A (and V) if not done yet
    plain = compiled.generate(request(loras)).frames
    fresh = eager.generate(request(loras)).frames
    assert _diff(plain, fresh) <= TOLERANCE
    other = compiled.generate(request(loras, b="1.0")).frames
    assert _diff(other, eager.generate(request(loras, b="1.0")).frames) <= TOLERANCE
    assert _diff(other, fresh) > 10 * TOLERANCE  # B took effect: the tolerance is not hiding it
    # Loading B changed the LoRA layers' adapter dicts, which the graphs are guarded on: states
    # seen before B recompile once. The state B's task left compiles nothing when repeated.
    with no_recompiles():
        assert _diff(compiled.generate(request(loras, b="1.0")).frames, other) == 0


def _name(path: Path) -> str:
    from headless_wan.engine.loras import adapter_name

    return adapter_name(str(path))


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize(("rslora", "bias"), [(False, False), (True, True)])
def test_fusing_adds_exactly_what_the_adapter_adds(rslora: bool, bias: bool) -> None:
    """`W += w * scale * B @ A` (and B's bias) reproduces peft's forward at weight w, rsLoRA too."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model

    from headless_wan.engine.lora_fusion import _fuse

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["0"], use_rslora=rslora, lora_bias=bias)
    model = inject_adapter_in_model(config, model, adapter_name="x")
    layer = model[0]
    for param in (layer.lora_B["x"].weight, *([layer.lora_B["x"].bias] if bias else [])):
        torch.nn.init.normal_(param)  # peft starts B at zero
    layer.set_scale("x", 0.7)
    inputs = torch.randn(3, 16)
    with torch.no_grad():
        expected = model(inputs)
        assert not torch.allclose(layer.base_layer(inputs), expected, atol=1e-2)  # the adapter matters
        _fuse(model, "x", 0.7)
        layer.enable_adapters(False)
        fused = model(inputs)
    assert torch.allclose(fused, expected, atol=1e-5)
