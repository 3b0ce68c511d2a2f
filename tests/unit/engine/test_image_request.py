"""Image requests and image task params: every rule fails naming the field, before any model."""

from __future__ import annotations

import pytest
from PIL import Image
from pydantic import ValidationError

from headless_wan.domain.image_params import ImageTaskParams, ImageToImageParams
from headless_wan.engine import Engine, EngineConfig, GenerationRequest, LoraSpec
from headless_wan.engine.image_request import ImageRequest
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.images import fit_pixel_budget

PICTURE = Image.new("RGB", (40, 30), (10, 200, 10))


@pytest.fixture
def engine() -> Engine:
    return Engine(EngineConfig(device="cpu", model_override="tiny"))


def request(**changes: object) -> ImageRequest:
    values: dict = {"model": "z-image", "prompt": "a red cat", "width": 64, "height": 48}
    values.update(changes)
    return ImageRequest(**values)


def test_a_valid_request_resolves_the_apps_model_name_onto_the_tiny_image_model(engine: Engine) -> None:
    preset = engine.validate_image(request())
    assert (preset.name, preset.family) == ("tiny-zimage", "zimage")
    assert Engine(EngineConfig()).validate_image(request()).name == "z-image-turbo"


@pytest.mark.parametrize(
    ("model", "preset", "tiny"),
    [("qwen-image", "qwen-image", "tiny-qwen-image"), ("qwen_image_2512", "qwen-image-2512", "tiny-qwen-image"),
     ("z_image_turbo", "z-image-turbo", "tiny-zimage")],
)  # fmt: skip
def test_the_apps_image_model_names_map_onto_presets(model: str, preset: str, tiny: str) -> None:
    assert Engine(EngineConfig()).validate_image(request(model=model)).name == preset
    assert Engine(EngineConfig(model_override="tiny")).validate_image(request(model=model)).name == tiny


def test_the_qwen_text_to_image_model_refuses_an_input_image(engine: Engine) -> None:
    with pytest.raises(InvalidTaskParams, match="image: qwen-image is a text-to-image model"):
        engine.validate_image(request(model="qwen-image", image=PICTURE))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strength": 1.5, "image": PICTURE}, r"strength: must be a number in \(0, 1\] \(got 1.5\)"),
        ({"strength": -0.1, "image": PICTURE}, r"strength: .*got -0.1"),
        ({"strength": 0.0, "image": PICTURE}, r"strength: .*got 0.0"),
        ({"strength": 0.5}, "strength: only applies with an input image"),
        ({"image": "not-an-image"}, "image: must be a PIL image"),
        ({"width": 50}, "width: must be a multiple of 16"),
        ({"width": 1024, "height": 1024}, "resolution: 1024x1024 exceeds this model's limit of 16384"),
        ({"seed": -3}, "seed: "),
        ({"steps": 0}, "steps: "),
        ({"guidance_scale": 99.0}, "guidance_scale: "),
        (
            {"loras": (LoraSpec("https://example.com/a.safetensors", "1;0"),)},
            "loras: .* an image LoRA takes one number",
        ),
        ({"loras": (LoraSpec("https://example.com/a.safetensors", "50"),)}, r"loras: .* outside \[-10, 10\]"),
        ({"model": "qwen-nope"}, "model: unknown model 'qwen-nope'"),
        ({"model": "vace_14B"}, "model: wan2.1-vace-14b is a vace video model"),
    ],
)
def test_bad_image_requests_fail_naming_the_field(engine: Engine, changes: dict, message: str) -> None:
    with pytest.raises(InvalidTaskParams, match=message):
        engine.validate_image(request(**changes))


def test_a_video_request_on_an_image_model_fails_by_name(engine: Engine) -> None:
    video = GenerationRequest(model="z-image", prompt="a cat", width=32, height=32, num_frames=5)
    with pytest.raises(InvalidTaskParams, match="z-image-turbo is an image model"):
        engine.validate(video)


def test_image_params_parse_the_apps_payloads() -> None:
    t2i = ImageTaskParams.model_validate(
        {"model": "z-image", "prompt": "p", "resolution": "1152x896", "steps": 12,
         "additional_loras": {"https://x/l.safetensors": 0.8}, "shot_id": "ignored"}
    )  # fmt: skip
    assert t2i.size() == (1152, 896) and t2i.steps == 12 and t2i.suffix == ".png"
    assert t2i.lora_weights() == [("https://x/l.safetensors", 0.8)]
    i2i = ImageToImageParams.model_validate(
        {"image_url": "https://x/in.png", "strength": 0.6, "image_size": "auto",
         "num_inference_steps": 8, "output_format": "jpeg", "loras": [{"path": "https://x/a", "scale": 1}]}
    )  # fmt: skip
    assert (i2i.image, i2i.strength, i2i.size(), i2i.steps) == ("https://x/in.png", 0.6, None, 8)
    assert i2i.suffix == ".jpg" and i2i.lora_weights() == [("https://x/a", 1)]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"output_format": "gif"}, "output_format"),
        ({"resolution": "big"}, "resolution"),
        ({"image_url": ""}, "image"),
    ],
)
def test_bad_image_params_name_the_field(payload: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ImageToImageParams.model_validate({"image_url": "https://x/in.png", **payload})


def test_image_to_image_needs_an_image() -> None:
    with pytest.raises(ValidationError, match="image"):
        ImageToImageParams.model_validate({"prompt": "no input"})


@pytest.mark.parametrize(
    ("size", "budget", "expected"),
    [
        ((4000, 3000), 1048576, (1168, 880)),  # about 1 MP, aspect kept, multiples of 16
        ((64, 64), 16384, (128, 128)),  # small inputs are scaled up to the budget
        ((1000, 10), 16384, (1024, 16)),  # never below one 16-pixel block, still in budget
    ],
)
def test_image_to_image_sizes_fit_the_pixel_budget(size, budget, expected) -> None:
    width, height = fit_pixel_budget(size, budget)
    assert (width, height) == expected
    assert width % 16 == 0 and height % 16 == 0 and width * height <= budget
