"""Presets file, alias table and model resolution (no torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.engine import Engine, EngineConfig, load_presets
from headless_wan.engine.presets import parse_presets
from headless_wan.errors import ConfigError, InvalidTaskParams

REIGH_NAMES = {
    "vace_1.3B": "wan2.1-vace-1.3b",
    "vace_14B": "wan2.1-vace-14b",
    "vace_fun_14B_2_2": "wan2.2-vace-fun-a14b",
    "vace_14B_cocktail_2_2": "wan2.2-vace-fun-cocktail",
    "wan_2_2_vace_lightning_baseline_2_2_2": "wan2.2-vace-lightning-2-2-2",
    "wan_2_2_vace_lightning_baseline_3_3": "wan2.2-vace-lightning-3-3",
}


def test_shipped_presets_cover_the_required_models() -> None:
    registry = load_presets()
    assert registry.resolve("wan2.1-vace-1.3b").weights == "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    assert registry.resolve("wan2.1-vace-14b").weights == "Wan-AI/Wan2.1-VACE-14B-diffusers"
    two = registry.resolve("wan2.2-vace-fun-a14b")
    assert two.two_experts and two.boundary_ratio == 0.875
    assert registry.resolve("tiny").is_builtin
    assert registry.resolve("tiny-2experts").two_experts


@pytest.mark.parametrize(("alias", "preset"), sorted(REIGH_NAMES.items()))
def test_reigh_model_names_map_onto_presets(alias: str, preset: str) -> None:
    assert load_presets().resolve(alias).name == preset


def test_lightning_preset_schedule_is_2_2_2_with_cfg_then_off() -> None:
    preset = load_presets().resolve("wan_2_2_vace_lightning_baseline_2_2_2")
    assert preset.phases is not None
    assert preset.phases.steps_per_phase == (2, 2, 2)
    assert preset.phases.guidance_per_phase == (3.0, 1.0, 1.0)
    assert preset.solver == "euler" and preset.flow_shift == 5.0 and preset.steps == 6


def test_unknown_model_is_an_invalid_task_naming_the_model() -> None:
    with pytest.raises(InvalidTaskParams, match="model: unknown model 'base_tester_model'"):
        load_presets().resolve("base_tester_model")


def test_model_override_forces_every_generation_onto_one_preset() -> None:
    engine = Engine(EngineConfig(model_override="tiny"))
    assert engine.preset("vace_14B").name == "tiny"
    assert engine.preset(None, task_type="vace").name == "tiny"


def test_task_type_default_applies_when_the_task_names_no_model() -> None:
    engine = Engine(EngineConfig())
    assert engine.preset(None, task_type="vace").name == "wan2.2-vace-fun-cocktail"
    with pytest.raises(InvalidTaskParams, match="model: no model"):
        engine.preset(None, task_type="no_such_type")


def test_alias_to_unknown_preset_is_a_config_error() -> None:
    data = {"presets": {"a": {"weights": "builtin:tiny"}}, "aliases": {"x": "b"}}
    with pytest.raises(ConfigError, match="alias 'x'"):
        parse_presets(data)


def test_two_expert_preset_needs_boundary_ratio() -> None:
    with pytest.raises(ConfigError, match="boundary_ratio"):
        parse_presets({"presets": {"a": {"weights": "w", "experts": 2}}})


def test_phase_steps_must_add_up() -> None:
    body = {"weights": "w", "steps": 5, "phases": {"steps_per_phase": [2, 2], "guidance_per_phase": [1, 1]}}
    with pytest.raises(ConfigError, match="sum of phases"):
        parse_presets({"presets": {"a": body}})


def test_unknown_preset_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_presets({"presets": {"a": {"weights": "w", "stepz": 3}}})


def test_unreadable_presets_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[presets\n")
    with pytest.raises(ConfigError, match="cannot read presets file"):
        load_presets(bad)


@pytest.mark.parametrize(
    ("model", "preset"),
    [
        ("wan_2_2_i2v_lightning_baseline_2_2_2", "wan2.2-vace-lightning-2-2-2"),
        ("wan_2_2_i2v_lightning_baseline_3_3", "wan2.2-vace-lightning-3-3"),
    ],
)
def test_app_default_i2v_models_are_served_by_vace_and_logged_as_substitutions(
    model: str, preset: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="headless_wan.engine.presets"):
        assert load_presets().resolve(model).name == preset
    substitutions = [r for r in caplog.records if getattr(r, "action", None) == "model_substitution"]
    assert len(substitutions) == 1 and model in substitutions[0].getMessage()
