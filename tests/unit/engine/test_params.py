"""Generation params: Reigh/WGP field names, resolution, LoRA forms."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from headless_wan.domain.params import ImageParams, VaceParams


def test_wgp_field_names_are_accepted() -> None:
    params = VaceParams.model_validate({
        "prompt": "a cat", "model_name": "vace_14B", "resolution": "832x480", "video_length": 33,
        "seed_to_use": 7, "num_inference_steps": 6, "guidance_scale": 3, "guidance2_scale": 1,
        "control_net_weight": 0.8, "video_guide": "https://x/g.mp4", "video_mask": "https://x/m.mp4",
        "image_refs": "https://x/r.png", "fps_helpers": 16, "flow_shift": 5, "sample_solver": "euler",
        "unrelated_ui_field": True,
    })  # fmt: skip
    assert params.model == "vace_14B" and params.size() == (832, 480) and params.frames == 33
    assert params.seed == 7 and params.steps == 6 and params.guidance_scale_2 == 1
    assert params.conditioning_scale == 0.8 and params.image_refs == ("https://x/r.png",) and params.fps == 16


def test_width_and_height_instead_of_resolution() -> None:
    assert VaceParams.model_validate({"width": 64, "height": 32}).size() == (64, 32)
    with pytest.raises(ValidationError, match="resolution"):
        VaceParams.model_validate({"prompt": "x"})
    with pytest.raises(ValidationError, match="WIDTHxHEIGHT"):
        VaceParams.model_validate({"resolution": "big"})


def test_all_lora_forms_are_merged_in_order() -> None:
    params = ImageParams.model_validate({
        "resolution": "64x64",
        "loras": [{"url": "https://a", "strength": 0.5}, {"path": "https://b", "multiplier": "1;0"}],
        "additional_loras": {"https://c": 0.7},
        "activated_loras": "https://d https://e", "loras_multipliers": "0.3",
    })  # fmt: skip
    assert params.lora_list() == [
        ("https://a", "0.5"), ("https://b", "1;0"), ("https://c", "0.7"), ("https://d", "0.3"), ("https://e", "1.0"),
    ]  # fmt: skip


def test_mask_needs_guide_and_frames_are_validated() -> None:
    with pytest.raises(ValidationError, match="video_mask"):
        VaceParams.model_validate({"resolution": "64x64", "video_mask": "https://m"})
    with pytest.raises(ValidationError):
        VaceParams.model_validate({"resolution": "64x64", "video_length": 0})
