"""Phase schedules on the tiny two-expert model, observed by counting transformer forward calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from headless_wan.engine import Engine, parse_phase_config

from .conftest import tiny_request, write_lora

pytestmark = pytest.mark.slow


def count_forwards(engine: Engine) -> Callable[[], dict[str, int]]:
    """Attach counting hooks to the resident pipeline's experts; returns a reader."""
    counts = {"transformer": 0, "transformer_2": 0}
    pipe = engine._cache.current.pipe
    for name in counts:
        module = getattr(pipe, name, None)
        if module is not None:
            module.register_forward_pre_hook(lambda *_, name=name: counts.__setitem__(name, counts[name] + 1))
    return lambda: dict(counts)


def run_counted(engine: Engine, **request: object) -> dict[str, int]:
    engine.generate(tiny_request(model="tiny-2experts"))  # load, so hooks can be attached
    read = count_forwards(engine)
    engine.generate(tiny_request(**request))
    return read()


def test_lightning_2_2_2_switches_expert_after_step_4_and_cfg_after_step_2(make_engine) -> None:
    phases = parse_phase_config({"steps_per_phase": [2, 2, 2], "flow_shift": 5, "sample_solver": "euler",
                                 "model_switch_phase": 2, "phases": [{"guidance_scale": 3.0},
                                 {"guidance_scale": 1.0}, {"guidance_scale": 1.0}]})  # fmt: skip
    counts = run_counted(make_engine(), model="tiny-2experts", phases=phases)
    # steps 1-2: high-noise expert with CFG (2 passes each); 3-4: high-noise, no CFG; 5-6: low-noise.
    assert counts == {"transformer": 6, "transformer_2": 2}


def test_3_3_switches_after_phase_one(make_engine) -> None:
    phases = parse_phase_config(
        {"steps_per_phase": [3, 3], "phases": [{"guidance_scale": 1}, {"guidance_scale": 1}]}
    )
    assert run_counted(make_engine(), model="tiny-2experts", phases=phases) == {
        "transformer": 3,
        "transformer_2": 3,
    }


def test_cfg_can_start_on_the_low_noise_expert(make_engine) -> None:
    phases = parse_phase_config(
        {"steps_per_phase": [2, 2], "phases": [{"guidance_scale": 1}, {"guidance_scale": 4}]}
    )
    assert run_counted(make_engine(), model="tiny-2experts", phases=phases) == {
        "transformer": 2,
        "transformer_2": 4,
    }


def test_preset_phases_apply_when_the_task_sets_none(make_engine) -> None:
    # tiny-2experts: 6 steps, CFG 3 / 1 by expert, boundary 0.875 on euler shift 5 → 3 high + 3 low.
    counts = run_counted(make_engine(), model="tiny-2experts", steps=None)
    assert counts == {"transformer": 6, "transformer_2": 3}


def test_single_expert_phases_turn_cfg_off(make_engine) -> None:
    engine = make_engine()
    engine.generate(tiny_request())
    read = count_forwards(engine)
    phases = parse_phase_config(
        {"steps_per_phase": [1, 3], "phases": [{"guidance_scale": 5}, {"guidance_scale": 1}]}
    )
    engine.generate(tiny_request(phases=phases))
    assert read() == {"transformer": 5, "transformer_2": 0}


def test_lora_weights_follow_the_phases(make_engine, tmp_path: Path) -> None:
    lora = write_lora(tmp_path / "l.safetensors")
    engine = make_engine()
    engine.generate(tiny_request(model="tiny-2experts"))
    pipe = engine._cache.current.pipe
    calls: list[tuple] = []
    original = pipe.set_adapters

    def recording(names, adapter_weights=None):
        calls.append(tuple(weights["transformer"] for weights in adapter_weights))
        return original(names, adapter_weights=adapter_weights)

    pipe.set_adapters = recording
    phases = parse_phase_config({"steps_per_phase": [2, 2, 2], "model_switch_phase": 2, "phases": [
        {"guidance_scale": 1, "loras": [{"url": str(lora), "multiplier": "0.1,0.3"}]},
        {"guidance_scale": 1, "loras": [{"url": str(lora), "multiplier": "0.5"}]},
        {"guidance_scale": 1, "loras": [{"url": str(lora), "multiplier": "0.9"}]}]})  # fmt: skip
    engine.generate(tiny_request(model="tiny-2experts", phases=phases))
    assert calls == [(0.1,), (0.3,), (0.5,), (0.9,)]  # set once per change, before its step
    assert set(engine._cache.current.adapters.loaded.values()) == {
        frozenset({"transformer", "transformer_2"})
    }
