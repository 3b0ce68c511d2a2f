"""Family dispatch without compute: each family's request rules, checked by `Engine.validate`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headless_wan.engine import Engine, EngineConfig, GenerationRequest
from headless_wan.engine.families import FAMILIES, get_family
from headless_wan.errors import ConfigError, InvalidTaskParams

START = Image.new("RGB", (32, 32), (200, 20, 20))


def request(**changes: object) -> GenerationRequest:
    values: dict = {"model": "tiny-i2v", "prompt": "a cat", "width": 32, "height": 32, "num_frames": 9}
    values.update(changes)
    return GenerationRequest(**values)


@pytest.fixture
def engine() -> Engine:
    return Engine(EngineConfig(device="cpu"))


def test_families_name_their_pipeline_classes() -> None:
    assert {name: f.pipeline_class for name, f in FAMILIES.items()} == {
        "vace": "WanVACEPipeline",
        "i2v": "WanImageToVideoPipeline",
        "zimage": "ZImagePipeline",
        "qwen": "QwenImagePipeline",
        "qwen_edit": "QwenImageEditPipeline",
        "qwen_edit_plus": "QwenImageEditPlusPipeline",
        "t2v": "WanPipeline",
    }
    with pytest.raises(ConfigError, match="unknown pipeline family 'ltx'"):
        get_family("ltx")


def test_an_i2v_request_needs_a_start_image(engine: Engine) -> None:
    with pytest.raises(
        InvalidTaskParams, match=r"^image_start: tiny-i2v is an image-to-video model and needs"
    ):
        engine.validate(request())
    assert engine.validate(request(start_image=START)).family == "i2v"


def test_an_app_i2v_model_names_itself_in_the_error(engine: Engine) -> None:
    app = request(model="wan_2_2_i2v_lightning_baseline_2_2_2", width=832, height=480)
    with pytest.raises(
        InvalidTaskParams, match=r"^image_start: wan2.2-i2v-lightning-2-2-2 is an image-to-video"
    ):
        engine.validate(app)


def test_frames_beyond_the_i2v_limit_fail_naming_the_field(engine: Engine) -> None:
    with pytest.raises(InvalidTaskParams, match=r"^num_frames: 85 exceeds this model's limit of 81"):
        engine.validate(request(start_image=START, num_frames=85))


def test_the_asked_model_limits_hold_under_an_override(tmp_path) -> None:
    presets = tmp_path / "presets.toml"
    presets.write_text(
        '[presets.small]\nweights = "Org/Real-I2V"\nfamily = "i2v"\nmax_frames = 17\n'
        '[presets.tiny-i2v]\nweights = "builtin:tiny-i2v-1expert"\nfamily = "i2v"\nmax_frames = 81\n'
    )
    engine = Engine(EngineConfig(device="cpu", presets_file=presets, model_override="tiny-i2v"))
    assert engine.validate(request(model="small", start_image=START, num_frames=17)).name == "tiny-i2v"
    with pytest.raises(InvalidTaskParams, match=r"^num_frames: 21 exceeds this model's limit of 17"):
        engine.validate(request(model="small", start_image=START, num_frames=21))


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("video_guide", {"guide": np.zeros((9, 32, 32, 3), np.uint8)}),
        ("image_refs", {"reference_images": (START,)}),
        ("conditioning_scale", {"conditioning_scale": 0.5}),
    ],
)
def test_vace_only_inputs_are_rejected_on_i2v(engine: Engine, field: str, changes: dict) -> None:
    with pytest.raises(
        InvalidTaskParams, match=rf"^{field}: tiny-i2v is an image-to-video model; {field} is a VACE"
    ):
        engine.validate(request(start_image=START, **changes))


def test_start_and_end_images_are_rejected_on_vace(engine: Engine) -> None:
    with pytest.raises(InvalidTaskParams, match=r"^image_start: tiny is a VACE model"):
        engine.validate(request(model="tiny", start_image=START))
    with pytest.raises(InvalidTaskParams, match=r"^image_end: tiny is a VACE model"):
        engine.validate(request(model="tiny", end_image=START))


def test_i2v_needs_at_least_five_frames_and_image_inputs(engine: Engine) -> None:
    with pytest.raises(InvalidTaskParams, match=r"^num_frames: an image-to-video model needs at least 5"):
        engine.validate(request(start_image=START, num_frames=1))
    with pytest.raises(InvalidTaskParams, match=r"^image_end: must be a PIL image"):
        engine.validate(request(start_image=START, end_image="https://example.com/end.png"))


def test_i2v_call_arguments_are_image_and_last_image_fitted_to_the_size() -> None:
    family = get_family("i2v")
    wide = np.zeros((20, 60, 3), np.uint8)
    kwargs = family.call_kwargs(request(start_image=wide, end_image=START))
    assert set(kwargs) == {"image", "last_image"}
    assert kwargs["image"].size == (32, 32) and kwargs["last_image"].size == (32, 32)
    assert set(family.call_kwargs(request(start_image=START))) == {"image"}


def test_vace_call_arguments_default_the_conditioning_scale() -> None:
    kwargs = get_family("vace").call_kwargs(request(model="tiny"))
    assert kwargs == {"conditioning_scale": 1.0}


def test_optimised_t2i_is_the_predecessors_t2v_model_and_takes_no_image(engine: Engine) -> None:
    preset = engine.validate(request(model="optimised-t2i", width=1024, height=1024, num_frames=1))
    assert (preset.family, preset.weights, preset.experts, preset.boundary_ratio, preset.steps) == (
        "t2v", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", 2, 0.95, 10,
    )  # fmt: skip
    assert [lora.multiplier for lora in preset.loras] == ["1.0", "0.2", "0.5", "0.5"]
    with pytest.raises(InvalidTaskParams, match=r"^image_start: optimised-t2i is a text-to-video model"):
        engine.validate(request(model="optimised-t2i", start_image=START, num_frames=1))
