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
    "wan_2_2_i2v_lightning_baseline_2_2_2": "wan2.2-i2v-lightning-2-2-2",
    "wan_2_2_i2v_lightning_baseline_3_3": "wan2.2-i2v-lightning-3-3",
    "i2v_2_2": "wan2.2-i2v-a14b",
    "i2v": "wan2.1-i2v-14b-480p",
    "i2v_720p": "wan2.1-i2v-14b-720p",
    "flf2v_720p": "wan2.1-flf2v-14b-720p",
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
    assert engine.preset(None).name == "tiny"  # no model and no default: the override itself


@pytest.mark.parametrize(
    ("model", "family", "pipeline_class", "tiny"),
    [
        ("vace_14B", "vace", "WanVACEPipeline", "tiny"),
        ("wan_2_2_vace_lightning_baseline_2_2_2", "vace", "WanVACEPipeline", "tiny"),
        ("wan_2_2_i2v_lightning_baseline_2_2_2", "i2v", "WanImageToVideoPipeline", "tiny-i2v"),
        ("wan_2_2_i2v_lightning_baseline_3_3", "i2v", "WanImageToVideoPipeline", "tiny-i2v"),
        ("i2v", "i2v", "WanImageToVideoPipeline", "tiny-i2v"),
        ("flf2v_720p", "i2v", "WanImageToVideoPipeline", "tiny-i2v"),
    ],
)
def test_each_model_name_has_its_family_and_the_tiny_override_keeps_it(
    model: str, family: str, pipeline_class: str, tiny: str
) -> None:
    from headless_wan.engine.families import get_family

    preset = load_presets().resolve(model)
    assert preset.family == family and get_family(preset.family).pipeline_class == pipeline_class
    overridden = Engine(EngineConfig(model_override="tiny")).preset(model)
    assert overridden.name == tiny and overridden.family == family
    assert Engine(EngineConfig(model_override="tiny-2experts")).preset(model).family == family


def test_model_override_still_fails_an_unknown_model_listing_the_known_names() -> None:
    engine = Engine(EngineConfig(model_override="tiny"))
    with pytest.raises(InvalidTaskParams) as caught:
        engine.preset("no_such_model_xyz")
    message = str(caught.value)
    assert message.startswith("model: unknown model 'no_such_model_xyz' (known: ")
    assert "wan_2_2_i2v_lightning_baseline_2_2_2" in message and "vace_14B" in message


def test_override_without_a_counterpart_in_the_task_family_fails_clearly() -> None:
    data = {
        "presets": {
            "v": {"weights": "builtin:tiny"},
            "i": {"weights": "builtin:tiny-i2v-1expert", "family": "i2v"},
        }
    }
    registry = parse_presets(data)
    with pytest.raises(InvalidTaskParams, match="override 'v' \\(vace\\) has no i2v counterpart"):
        registry.with_override(registry.resolve("i"), "v")


def test_counterpart_must_be_a_preset_of_that_family() -> None:
    data = {"presets": {"v": {"weights": "builtin:tiny", "counterparts": {"i2v": "v"}}}}
    with pytest.raises(ConfigError, match="counterpart 'v' is not a i2v preset"):
        parse_presets(data)


def test_unknown_family_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="family must be one of"):
        parse_presets({"presets": {"a": {"weights": "w", "family": "ltx"}}})


def test_a_substitutions_table_is_refused() -> None:
    data = {"presets": {"a": {"weights": "w"}}, "substitutions": {"x": "a"}}
    with pytest.raises(ConfigError, match="substitutions"):
        parse_presets(data)


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


def test_i2v_lightning_presets_follow_the_predecessor_schedules_by_step() -> None:
    registry = load_presets()
    two = registry.resolve("wan_2_2_i2v_lightning_baseline_2_2_2")
    three = registry.resolve("wan_2_2_i2v_lightning_baseline_3_3")
    for preset in (two, three):
        assert preset.two_experts and preset.weights == "Wan-AI/Wan2.2-I2V-A14B-Diffusers"
        assert preset.solver == "euler" and preset.flow_shift == 5.0 and preset.steps == 6
        assert preset.max_frames == 81
    assert two.phases is not None and three.phases is not None
    assert (two.phases.steps_per_phase, two.phases.guidance_per_phase) == ((4, 2), (3.0, 1.0))
    assert three.phases.steps_per_phase == (2, 2, 2) and three.phases.model_switch_phase == 2


def test_vace_mode_maps_the_apps_i2v_names_onto_their_vace_forms() -> None:
    engine = Engine(EngineConfig())
    assert (
        engine.model_in_family("wan_2_2_i2v_lightning_baseline_2_2_2", "vace")
        == "wan2.2-vace-lightning-2-2-2"
    )
    assert engine.model_in_family("wan_2_2_i2v_lightning_baseline_3_3", "vace") == "wan2.2-vace-lightning-3-3"
    assert engine.model_in_family("vace_14B", "vace") == "vace_14B"
    with pytest.raises(InvalidTaskParams, match="model_type: 'vace' travel needs a vace model; flf2v_720p"):
        engine.model_in_family("flf2v_720p", "vace")
    with pytest.raises(InvalidTaskParams, match="model: unknown model"):
        Engine(EngineConfig(model_override="tiny")).model_in_family("no_such_model_xyz", "vace")
