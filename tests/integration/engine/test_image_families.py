"""The image families on their tiny offline models: the real `ZImagePipeline`, `QwenImagePipeline` and
`ZImageImg2ImgPipeline`, sizes, input images reaching the pipeline, and the warm cache shared with
the video models (switching family releases the other)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headless_wan.engine.image_request import ImageRequest

from .conftest import tiny_request

pytestmark = pytest.mark.slow


def image_request(**changes: object) -> ImageRequest:
    values: dict = {
        "model": "tiny-zimage",
        "prompt": "a red cat",
        "width": 64,
        "height": 48,
        "steps": 2,
        "seed": 5,
    }
    values.update(changes)
    return ImageRequest(**values)


def halves(vertical: bool) -> Image.Image:
    """Low-frequency inputs (random pixels would average out in the 8x8 latents)."""
    pixels = np.zeros((48, 64, 3), np.uint8)
    if vertical:
        pixels[:, :32] = 255
    else:
        pixels[:24, :] = 255
    return Image.fromarray(pixels)


def test_text_to_image_runs_on_the_z_image_pipeline_deterministically(make_engine) -> None:
    engine = make_engine()
    first = engine.generate_image(image_request())
    assert first.frames.shape == (1, 48, 64, 3) and first.frames.dtype == np.uint8
    settings = first.settings
    assert (settings["family"], settings["pipeline_class"], settings["steps"]) == (
        "zimage",
        "ZImagePipeline",
        2,
    )
    again = engine.generate_image(image_request())
    assert again.metrics["model_reused"] == 1.0 and engine.load_count == 1
    assert np.array_equal(first.frames, again.frames)
    other_seed = engine.generate_image(image_request(seed=6))
    assert not np.array_equal(first.frames, other_seed.frames)


def test_the_input_image_and_strength_reach_the_img2img_pipeline(make_engine) -> None:
    engine = make_engine()
    plain = engine.generate_image(image_request(steps=4))
    encoded: list = []
    vae = engine._cache.current.pipe.vae
    vae.encoder.register_forward_pre_hook(lambda module, args: encoded.append(args[0].detach().clone()))
    left = engine.generate_image(image_request(image=halves(True), strength=0.5, steps=4))
    top = engine.generate_image(image_request(image=halves(False), strength=0.5, steps=4))
    assert left.settings["pipeline_class"] == "ZImageImg2ImgPipeline"
    assert (left.settings["strength"], left.settings["denoising_steps"]) == (0.5, 2)
    assert engine.load_count == 1  # one resident model serves both pipelines
    # Each input was encoded at exactly the target size, pixel for pixel (scaled to [-1, 1]).
    assert [tuple(x.shape) for x in encoded] == [(1, 3, 48, 64), (1, 3, 48, 64)]
    assert encoded[0][0, :, :, :32].min() == 1.0 and encoded[0][0, :, :, 32:].max() == -1.0
    assert encoded[1][0, :, :24].min() == 1.0 and encoded[1][0, :, 24:].max() == -1.0
    # ... and changes the output.
    assert not np.array_equal(left.frames, top.frames)
    assert not np.array_equal(left.frames, plain.frames)
    stronger = engine.generate_image(image_request(image=halves(True), strength=1.0, steps=4))
    assert stronger.settings["denoising_steps"] == 4
    assert not np.array_equal(stronger.frames, left.frames)


def test_an_input_of_another_size_is_centre_cropped_and_resized(make_engine) -> None:
    engine = make_engine()
    wide = Image.new("RGB", (300, 100), (255, 255, 255))
    result = engine.generate_image(image_request(image=wide, strength=0.8))
    assert result.frames.shape == (1, 48, 64, 3)


def test_switching_between_video_and_image_families_releases_the_other(make_engine) -> None:
    engine = make_engine()
    engine.generate(tiny_request(num_frames=5))
    assert engine._cache.key.family == "vace"
    engine.generate_image(image_request())
    assert engine._cache.key.family == "zimage" and engine.load_count == 2
    engine.generate(tiny_request(num_frames=5))
    assert engine._cache.key.family == "vace" and engine.load_count == 3


def test_qwen_text_to_image_runs_true_cfg_with_the_negative_prompt(make_engine) -> None:
    engine = make_engine()
    request = image_request(model="tiny-qwen-image", negative_prompt="blurry")
    first = engine.generate_image(request)
    assert first.frames.shape == (1, 48, 64, 3)
    assert (first.settings["family"], first.settings["pipeline_class"]) == ("qwen", "QwenImagePipeline")
    assert np.array_equal(engine.generate_image(request).frames, first.frames)
    # With CFG the negative prompt is a second pass: another negative prompt changes the image.
    other = engine.generate_image(
        image_request(model="tiny-qwen-image", negative_prompt="noise over the city")
    )
    assert not np.array_equal(other.frames, first.frames)
    no_cfg = engine.generate_image(
        image_request(model="tiny-qwen-image", negative_prompt="blurry", guidance_scale=1.0)
    )
    assert not np.array_equal(no_cfg.frames, first.frames)
