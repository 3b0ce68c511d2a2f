"""The image task types end to end on the tiny Z-Image model: real files in, PNG/JPEG and sidecar
out, and bad inputs failing by name (the worker maps InvalidTaskParams / MediaError to Failed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from headless_wan.domain.tasks import Task
from headless_wan.errors import InvalidTaskParams, MediaError
from headless_wan.handlers.base import CancelToken
from headless_wan.handlers.images import image_handlers

from .test_handlers import Recorder, context

pytestmark = pytest.mark.slow


@pytest.fixture
def handlers(make_engine):
    engine = make_engine(model_override="tiny", allow_local_inputs=True, input_max_pixels=1_000_000)
    return {handler.task_type: handler for handler in image_handlers(engine)}


def run(handlers, tmp_path: Path, task_type: str, payload: dict, task_id: str = "img-1"):
    handler = handlers[task_type]
    recorder = Recorder()
    task = Task(id=task_id, task_type=task_type, params=payload)
    result = handler.run(
        context(tmp_path, task, recorder, CancelToken()), handler.params_model.model_validate(payload)
    )
    return result, recorder


def test_text_to_image_writes_a_png_and_its_sidecar_after_billing_starts(handlers, tmp_path: Path) -> None:
    payload = {"model": "z-image", "prompt": "a red cat", "resolution": "70x50", "steps": 2, "seed": 3}
    result, recorder = run(handlers, tmp_path, "z_image_turbo", payload)
    assert result.output.name == "img-1.png"
    with Image.open(result.output) as png:
        assert (png.format, png.size) == ("PNG", (64, 48))  # floored to multiples of 16
    sidecar = json.loads(result.output.with_name("img-1.settings.json").read_text())
    assert (sidecar["task_type"], sidecar["preset"], sidecar["pipeline_class"]) == (
        "z_image_turbo", "tiny-zimage", "ZImagePipeline",
    )  # fmt: skip
    assert (sidecar["seed"], sidecar["resolution"], sidecar["steps"]) == (3, "64x48", 2)
    stages = [event[0] for event in recorder.events]
    assert recorder.started == ["z-image"]
    assert stages.index("mark_started") < stages.index("denoising")


def test_qwen_image_caps_a_size_over_the_models_budget(handlers, tmp_path: Path) -> None:
    payload = {"model": "qwen-image", "prompt": "a city at night", "resolution": "1600x900", "steps": 2}
    result, _ = run(handlers, tmp_path, "qwen_image", payload)
    with Image.open(result.output) as png:
        assert png.size == (160, 96)  # 16:9 scaled into tiny-qwen-image's 16384 pixels, multiples of 16
    sidecar = json.loads(result.output.with_name("img-1.settings.json").read_text())
    assert (sidecar["preset"], sidecar["pipeline_class"]) == ("tiny-qwen-image", "QwenImagePipeline")


def test_image_to_image_keeps_the_aspect_and_writes_the_requested_format(handlers, tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.new("RGB", (200, 100), (200, 30, 30)).save(source)
    payload = {"image_url": str(source), "prompt": "a blue sky", "strength": 0.5, "num_inference_steps": 4,
               "output_format": "jpeg", "seed": 2}  # fmt: skip
    result, _ = run(handlers, tmp_path, "z_image_turbo_i2i", payload)
    assert result.output.name == "img-1.jpg"
    with Image.open(result.output) as jpeg:
        assert (jpeg.format, jpeg.size) == ("JPEG", (176, 80))  # 2:1 within tiny's 16384 pixels
    sidecar = json.loads(result.output.with_name("img-1.settings.json").read_text())
    assert sidecar["settings"]["strength"] == 0.5 and sidecar["pipeline_class"] == "ZImageImg2ImgPipeline"


def test_a_decompression_bomb_is_refused_from_its_header(handlers, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("L", (2000, 2000)).save(bomb)  # a few kB on disk, 4 MP decoded
    with pytest.raises(MediaError, match="pixels"):
        run(handlers, tmp_path, "z_image_turbo_i2i", {"image_url": str(bomb), "prompt": "x"})


def test_an_unreadable_image_fails_naming_the_input(handlers, tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(MediaError, match=r"junk\.png"):
        run(handlers, tmp_path, "z_image_turbo_i2i", {"image_url": str(junk), "prompt": "x"})


@pytest.mark.parametrize(
    ("task_type", "payload", "message"),
    [
        (
            "z_image_turbo_i2i",
            {"image_url": "MISSING", "strength": 1.5},
            r"strength: must be a number in \(0, 1\]",
        ),
        (
            "z_image_turbo",
            {"model": "qwen-edit-9999", "resolution": "64x64"},
            "model: unknown model 'qwen-edit-9999'",
        ),
        (
            "z_image_turbo",
            {"resolution": "64x64", "additional_loras": {"https://x/a.safetensors": "1;0"}},
            "loras: 'https://x/a.safetensors' has weight '1;0'; an image LoRA takes one number",
        ),
    ],
)
def test_bad_requests_fail_before_any_download(handlers, tmp_path: Path, task_type, payload, message) -> None:
    # MISSING does not exist: reaching the download would raise a different error.
    with pytest.raises(InvalidTaskParams, match=message):
        run(handlers, tmp_path, task_type, {"prompt": "x", **payload})
