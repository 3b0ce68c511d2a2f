"""Which LoRAs a compiled pipeline fuses per expert, and the residual weights it runs (no torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.engine.lora_fusion import FusionState, can_fuse, constant_weights, residual_plan
from headless_wan.engine.loras import WantedAdapter
from headless_wan.engine.phases import build_plan, schedule_from_phases
from headless_wan.engine.profiles import PROFILES

# Lightning 2-2-2 shape: three phases of two steps, the low-noise expert after phase 2.
SCHEDULE = schedule_from_phases((2, 2, 2), (3.0, 1.0, 1.0), 2, two_experts=True)


def plan(*loras: tuple[str, str]):
    return build_plan(SCHEDULE, list(loras), two_experts=True)


def test_constant_weights_per_expert() -> None:
    p = plan(("high", "1;1;0"), ("ramp", "0.2,0.4;1;1"), ("low", "0;0;0.8"), ("off", "0"))
    assert constant_weights(p, 0) == {"high": 1.0}  # ramp varies within expert 0
    assert constant_weights(p, 1) == {"ramp": 1.0, "low": 0.8}


def test_residuals_are_wanted_minus_fused_on_the_experts_steps() -> None:
    p = plan(("high", "1;1;0"), ("ramp", "0.2,0.4;1;1"))
    residual = residual_plan(p, 0, {"high": 1.0})
    assert residual.residuals == {"ramp": (0.2, 0.4, 1.0, 1.0, 0.0, 0.0)}  # "high" is all fused
    # A task without "high" on a pipeline where it is fused runs it at minus its fused weight.
    other = residual_plan(plan(("ramp", "0.2,0.4;1;1")), 0, {"high": 1.0, "ramp": 0.5})
    assert list(other.residuals) == ["ramp", "high"]
    assert other.residuals["ramp"] == pytest.approx((-0.3, -0.1, 0.5, 0.5, 0.0, 0.0))
    assert other.residuals["high"] == (-1.0, -1.0, -1.0, -1.0, 0.0, 0.0)
    assert residual_plan(plan(), 1, {}).residuals == {}


def test_fused_adapters_are_pinned_with_their_experts() -> None:
    state = FusionState(decided=True, fused={"transformer": {"a": 1.0}, "transformer_2": {"a": 1.0, "b": 2.0}},
                        paths={"a": Path("a.safetensors"), "b": Path("b.safetensors")})  # fmt: skip
    assert state.pinned() == [
        WantedAdapter("a", Path("a.safetensors"), frozenset({"transformer", "transformer_2"})),
        WantedAdapter("b", Path("b.safetensors"), frozenset({"transformer_2"})),
    ]


def test_only_resident_compute_dtype_weights_are_fused() -> None:
    assert [name for name, profile in PROFILES.items() if can_fuse(profile)] == ["resident"]
