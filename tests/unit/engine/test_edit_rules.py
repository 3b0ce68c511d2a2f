"""Rules of the Qwen edit task types that need no model: output size, mask binarisation and resizing,
which LoRAs each task type adds and at what weight (the real presets, no override)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headless_wan.domain.edit_params import EditParams, MaskedEditParams, StyleParams
from headless_wan.domain.image_params import ImageTaskParams
from headless_wan.engine import Engine, EngineConfig
from headless_wan.errors import MediaError
from headless_wan.handlers import edits, images
from headless_wan.media.images import binarised_mask, green_composite

LIGHTNING = "https://huggingface.co/lightx2v/Qwen-Image-Lightning/resolve/main/Qwen-Image-Edit-Lightning-8steps-V1.0-bf16.safetensors"
QWEN_LIGHTNING = "https://huggingface.co/lightx2v/Qwen-Image-Lightning/resolve/main/Qwen-Image-Lightning-4steps-V2.0-bf16.safetensors"
QWEN_2512_LIGHTNING = "https://huggingface.co/lightx2v/Qwen-Image-2512-Lightning/resolve/main/Qwen-Image-2512-Lightning-4steps-V1.0-bf16.safetensors"


@pytest.mark.parametrize(
    ("size", "budget", "expected"),
    [((2400, 1200), 1_440_000, (1200, 600)), ((800, 600), 1_440_000, (800, 600)),
     ((1200, 1200), 16384, (128, 128)), ((100, 3000), 1_440_000, (40, 1200))],
)  # fmt: skip
def test_edit_size_caps_the_long_side_at_1200_and_the_budget(size, budget, expected) -> None:
    assert edits.edit_size(size, budget) == expected


def test_a_smaller_mask_is_stretched_to_the_image_and_thresholded_at_128() -> None:
    mask = np.zeros((10, 20), np.uint8)
    mask[:, 10:] = 127
    mask[5:, 10:] = 128
    binary = np.asarray(binarised_mask(Image.fromarray(mask), (40, 20)))
    assert binary.shape == (20, 40) and set(np.unique(binary)) == {0, 255}
    assert binary[15, 30] == 255 and binary[2, 30] == 0 and binary[15, 5] == 0
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    composite = np.asarray(green_composite(image, Image.fromarray(mask)))
    assert tuple(composite[15, 30]) == (0, 255, 0) and tuple(composite[15, 5]) == (10, 20, 30)


def test_a_mask_marking_nothing_is_refused() -> None:
    with pytest.raises(MediaError, match="mask_url: the mask marks no pixel"):
        binarised_mask(Image.new("L", (8, 8), 127), (8, 8))


@pytest.fixture
def engine() -> Engine:
    return Engine(EngineConfig(device="cpu"))


def _loras(handler_cls, engine, params):
    return [(spec.source, float(spec.multiplier)) for spec in handler_cls(engine)._loras(params)]


def test_each_task_type_adds_its_loras_at_the_predecessors_weights(engine) -> None:
    edit = EditParams.model_validate({"image": "x", "additional_loras": {"https://x/mine.safetensors": 0.6}})
    assert _loras(edits.QwenImageEditHandler, engine, edit) == [
        (LIGHTNING, 0.85),
        ("https://x/mine.safetensors", 0.6),
    ]
    masked = MaskedEditParams.model_validate(
        {"image_url": "x", "mask_url": "m", "lightning_lora_strength_phase_1": 0.5}
    )
    assert _loras(edits.ImageInpaintHandler, engine, masked) == [(LIGHTNING, 0.5), (edits.INPAINT_LORA, 1.0)]
    assert _loras(edits.AnnotatedImageEditHandler, engine, masked)[1] == (edits.ANNOTATE_LORA, 1.0)
    style = StyleParams.model_validate({"style_reference_image": "s", "scene_reference_strength": 0.5})
    assert _loras(edits.QwenImageStyleHandler, engine, style) == [(LIGHTNING, 0.85), (edits.SCENE_LORA, 0.5)]


def test_lightning_strength_on_a_model_without_lightning_is_ignored_with_a_log_line(engine, caplog) -> None:
    # The app sends its hires-fix Lightning strengths whatever the model.
    params = EditParams.model_validate(
        {"image": "x", "qwen_edit_model": "qwen-edit-2511", "lightning_lora_strength": 1}
    )
    with caplog.at_level("INFO", logger="headless_wan.handlers.images"):
        assert _loras(edits.QwenImageEditHandler, engine, params) == []
    assert "ignoring lightning_lora_strength: qwen-image-edit-2511 runs without" in caplog.text
    turbo = ImageTaskParams.model_validate({"model": "z-image", "lightning_lora_strength_phase_1": 0.4})
    assert _loras(images.TextToImageHandler, engine, turbo) == []


def test_qwen_text_to_image_runs_its_lightning_lora_re_weighted_by_the_task(engine) -> None:
    """qwen-image / qwen-image-2512 carry the predecessor's 4-step Lightning LoRAs as preset LoRAs (the
    engine applies them at their preset weight); the task's strength re-weights them."""
    for handler, model, lora in (
        (images.QwenImageHandler, "qwen-image", QWEN_LIGHTNING),
        (images.QwenImage2512Handler, "qwen-image-2512", QWEN_2512_LIGHTNING),
    ):
        preset = engine.presets.resolve(model)
        assert ([item.source for item in preset.loras], preset.steps) == ([lora], 4)
        assert _loras(handler, engine, ImageTaskParams.model_validate({"model": model})) == []
        asked = ImageTaskParams.model_validate({"model": model, "lightning_lora_strength_phase_1": 0.7})
        assert _loras(handler, engine, asked) == [(lora, 0.7)]


def test_the_apps_edit_model_names_resolve_to_their_presets(engine) -> None:
    names = {name: engine.presets.resolve(name) for name in ("qwen-edit", "qwen-edit-2509", "qwen-edit-2511")}
    assert {name: (p.name, p.family, p.weights) for name, p in names.items()} == {
        "qwen-edit": ("qwen-image-edit", "qwen_edit", "Qwen/Qwen-Image-Edit"),
        "qwen-edit-2509": ("qwen-image-edit-2509", "qwen_edit_plus", "Qwen/Qwen-Image-Edit-2509"),
        "qwen-edit-2511": ("qwen-image-edit-2511", "qwen_edit_plus", "Qwen/Qwen-Image-Edit-2511"),
    }
    assert all(p.max_pixels == 1200 * 1200 for p in names.values())
