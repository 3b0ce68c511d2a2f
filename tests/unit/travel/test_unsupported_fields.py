"""The one list of unsupported travel fields: which payload values count as set."""

from __future__ import annotations

from headless_wan.domain.travel_params import UNSUPPORTED_FIELDS, lora_pairs, unsupported_fields


def test_defaults_and_empty_values_are_not_reported() -> None:
    assert unsupported_fields(dict(UNSUPPORTED_FIELDS)) == []
    assert (
        unsupported_fields({"cfg_zero_step": -1, "motion_settings_expanded": [], "travel_guidance": {}}) == []
    )


def test_each_set_field_is_reported_once_across_payloads() -> None:
    top = {"cfg_star_switch": 1, "steps": 20}
    details = {"steps": 20, "regenerate_anchors": True}
    assert unsupported_fields(top, details) == ["cfg_star_switch", "regenerate_anchors", "steps"]


def test_only_the_vace_overlap_continuation_counts_as_implemented() -> None:
    vace = {"continuation_config": {"strategy": "guide_overlap_masked", "overlap_frames": 10}}
    svi = {"continuation_config": {"strategy": "svi_latent_chaining", "overlap_frames": 4}}
    assert unsupported_fields(vace) == []
    assert unsupported_fields(svi) == ["continuation_config"]


def test_lora_pairs_merge_every_form_and_the_last_entry_wins() -> None:
    pairs = lora_pairs(
        {"https://x/a.safetensors": 0.5, "https://x/b.safetensors": 1.0},
        ["https://x/b.safetensors", "https://x/c.safetensors"],
        ["0.2", 0.7, {"url": "https://x/d.safetensors", "multiplier": "1.2"}],
    )
    assert pairs == [
        ("https://x/a.safetensors", "0.5"),
        ("https://x/b.safetensors", "0.2"),
        ("https://x/c.safetensors", "0.7"),
        ("https://x/d.safetensors", "1.2"),
    ]
