"""phase_config parsing, multiplier grammar, expert mapping and CFG plans (no torch)."""

from __future__ import annotations

import pytest

from headless_wan.engine.phases import (
    boundary_ratio_between,
    build_plan,
    parse_multiplier,
    parse_phase_config,
    schedule_by_expert,
    schedule_from_phases,
    switch_step_for_boundary,
)
from headless_wan.errors import InvalidTaskParams

# diffusers' euler schedule for 6 steps, shift 5 (engine.md §6).
EULER_6 = [1000.0, 952.7, 883.2, 771.4, 561.6, 24.4]


@pytest.mark.parametrize(
    ("text", "steps", "expected"),
    [
        ("1.2", (2, 2), [1.2, 1.2, 1.2, 1.2]),
        ("1.2;0", (2, 2), [1.2, 1.2, 0.0, 0.0]),
        ("0;1;0", (1, 2, 1), [0.0, 1.0, 1.0, 0.0]),
        ("0.1,0.3,0.5", (3,), [0.1, 0.3, 0.5]),
        ("0.9,0.8;1.2,1.1,1", (2, 3), [0.9, 0.8, 1.2, 1.1, 1.0]),
    ],
)
def test_multiplier_grammar(text: str, steps: tuple[int, ...], expected: list[float]) -> None:
    assert parse_multiplier(text, steps) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "steps", "message"),
    [
        ("1;0", (4,), "2 phases but the schedule has 1"),
        ("0.1,0.2", (3,), "2 per-step values for a phase of 3 steps"),
        ("abc", (2,), "not a valid multiplier"),
        ("inf", (2,), "not a finite number"),
    ],
)
def test_bad_multipliers_are_task_errors(text: str, steps: tuple[int, ...], message: str) -> None:
    with pytest.raises(InvalidTaskParams, match=message):
        parse_multiplier(text, steps, field="loras[0].multiplier")


LIGHTNING = {
    "num_phases": 2,  # wrong on purpose: the arrays decide
    "steps_per_phase": [2, 2, 2],
    "flow_shift": 5,
    "sample_solver": "euler",
    "model_switch_phase": 2,
    "phases": [
        {
            "phase": 1,
            "guidance_scale": 3.0,
            "loras": [{"url": "https://x/high.safetensors", "multiplier": "1.0"}],
        },
        {
            "phase": 2,
            "guidance_scale": 1.0,
            "loras": [{"url": "https://x/high.safetensors", "multiplier": "0.5"}],
        },
        {
            "phase": 3,
            "guidance_scale": 1.0,
            "loras": [{"url": "https://x/low.safetensors", "multiplier": "1.0"}],
        },
    ],
}


def test_phase_config_parses_and_folds_loras_per_url() -> None:
    config = parse_phase_config(LIGHTNING)
    assert config.steps_per_phase == (2, 2, 2) and config.steps == 6
    assert config.guidance_per_phase == (3.0, 1.0, 1.0)
    assert config.model_switch_phase == 2
    assert config.solver == "euler" and config.flow_shift == 5.0
    assert [(lora.source, lora.multiplier) for lora in config.loras] == [
        ("https://x/high.safetensors", "1.0;0.5;0"),
        ("https://x/low.safetensors", "0;0;1.0"),
    ]


def test_phase_config_guidance_defaults_per_phase() -> None:
    config = parse_phase_config({"steps_per_phase": [1, 1, 1]})
    assert config.guidance_per_phase == (3.0, 1.0, 1.0)
    assert config.model_switch_phase == 2
    assert parse_phase_config({"steps_per_phase": [3, 3]}).model_switch_phase == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "steps_per_phase: must be a list"),
        ({"steps_per_phase": [6]}, "2 or 3 phases"),
        ({"steps_per_phase": [1, 1, 1, 1]}, "2 or 3 phases"),
        ({"steps_per_phase": [2, 0]}, "integers >= 1"),
        ({"steps_per_phase": [2, 2], "sample_solver": "causvid"}, "sample_solver"),
        ({"steps_per_phase": [2, 2], "flow_shift": -1}, "flow_shift"),
        ({"steps_per_phase": [1, 1, 1], "model_switch_phase": 3}, "model_switch_phase"),
        ({"steps_per_phase": [2, 2], "phases": [{}, {}, {}]}, "3 entries for 2 phases"),
        ({"steps_per_phase": [2, 2], "phases": [{"guidance_scale": "x"}]}, r"phases\[0\].guidance_scale"),
        ({"steps_per_phase": [2, 2], "phases": [{"loras": [{"multiplier": "1"}]}]}, r"loras\[0\].url"),
    ],
)
def test_phase_config_errors_name_the_field(raw: dict, message: str) -> None:
    with pytest.raises(InvalidTaskParams, match=message):
        parse_phase_config(raw)


def test_lightning_plan_switches_expert_after_step_4_and_cfg_after_step_2() -> None:
    config = parse_phase_config(LIGHTNING)
    schedule = schedule_from_phases(config.steps_per_phase, config.guidance_per_phase, 2, two_experts=True)
    loras = [("hi", config.loras[0].multiplier), ("lo", config.loras[1].multiplier)]
    plan = build_plan(schedule, loras, two_experts=True)
    assert [s.expert for s in plan.steps] == [0, 0, 0, 0, 1, 1]
    assert [s.guidance for s in plan.steps] == [3.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    assert plan.switch_step == 4 and plan.guidance_scale == 3.0 and plan.guidance_scale_2 == 1.0
    assert [s.lora_weights for s in plan.steps][1:3] == [(1.0, 0.0), (0.5, 0.0)]
    assert plan.experts_using(0) == {0} and plan.experts_using(1) == {1}
    assert not plan.needs_negative_embeds


def test_boundary_ratio_sits_strictly_between_the_switch_timesteps() -> None:
    ratio = boundary_ratio_between(EULER_6, 4, 1000)
    assert EULER_6[4] < ratio * 1000 < EULER_6[3]
    # The stock loop's rule (t >= boundary -> expert 0) then reproduces the planned split.
    assert switch_step_for_boundary(EULER_6, ratio, 1000) == 4
    # WGP's 883 threshold would have split these diffusers timesteps 3/3 (engine.md §7.2).
    assert switch_step_for_boundary(EULER_6, 0.883, 1000) == 3


def test_plan_without_phases_splits_experts_at_the_preset_boundary() -> None:
    switch = switch_step_for_boundary(EULER_6, 0.875, 1000)
    schedule = schedule_by_expert(6, 4.0, 3.0, switch)
    plan = build_plan(schedule, [], two_experts=True)
    assert switch == 3 and plan.switch_step == 3
    assert plan.guidance_scale == 4.0 and plan.guidance_scale_2 == 3.0


def test_cfg_turning_on_in_the_low_noise_phase_needs_negative_embeds_up_front() -> None:
    plan = build_plan(schedule_from_phases((2, 2), (1.0, 3.5), 1, True), [], two_experts=True)
    assert plan.guidance_scale == 1.0 and plan.guidance_scale_2 == 3.5
    assert plan.needs_negative_embeds


def test_different_cfg_values_on_one_expert_are_rejected() -> None:
    schedule = schedule_from_phases((1, 1, 1), (3.0, 2.0, 1.0), None, False)
    with pytest.raises(InvalidTaskParams, match="different CFG values"):
        build_plan(schedule, [], two_experts=False)


def test_cfg_cannot_start_later_on_the_first_expert() -> None:
    schedule = schedule_from_phases((1, 1), (1.0, 3.0), None, False)
    with pytest.raises(InvalidTaskParams, match="cannot turn on"):
        build_plan(schedule, [], two_experts=False)
