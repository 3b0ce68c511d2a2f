"""The Qwen edit task types end to end on the tiny edit models: real files in, image and sidecar out;
mask handling; reference images and LoRAs reaching the pipeline (the output changes); bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from headless_wan.domain.edit_params import EditParams
from headless_wan.domain.tasks import Task
from headless_wan.engine import Engine, EngineConfig
from headless_wan.errors import InvalidTaskParams, MediaError
from headless_wan.handlers import edits
from headless_wan.handlers.base import CancelToken
from headless_wan.handlers.images import image_handlers

from .qwen_fixtures import ZIMAGE_MODULES, seed_lora_cache, write_qwen_lora
from .test_handlers import Recorder, context

pytestmark = pytest.mark.slow
TASK_LORAS = (edits.INPAINT_LORA, edits.ANNOTATE_LORA, edits.STYLE_LORA, edits.SUBJECT_LORA, edits.SCENE_LORA)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("edits")
    seed_lora_cache(root / "loras", TASK_LORAS)
    config = EngineConfig(device="cpu", lora_cache_dir=root / "loras", progress_interval_s=0.0,
                          model_override="tiny", allow_local_inputs=True, input_max_pixels=1_000_000)  # fmt: skip
    engine = Engine(config)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(root / f"{name}.png")
    mask = np.zeros((24, 40), np.uint8)
    mask[:, 20:] = 200  # right half marked, at half the image's size
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(255 - mask).save(root / "mask_left.png")
    yield {handler.task_type: handler for handler in image_handlers(engine)}, root
    engine.close()


def run(env, tmp_path: Path, task_type: str, payload: dict):
    handlers, _ = env
    handler = handlers[task_type]
    task = Task(id="edit-1", task_type=task_type, params=payload)
    result = handler.run(
        context(tmp_path, task, Recorder(), CancelToken()), handler.params_model.model_validate(payload)
    )
    sidecar = json.loads(result.output.with_name("edit-1.settings.json").read_text())
    with Image.open(result.output) as image:
        return result, sidecar, image.format, np.asarray(image.convert("RGB"))


def edit(root: Path, **extra) -> dict:
    return {"image": str(root / "a.png"), "prompt": "a red cat", "seed": 5, "steps": 1, **extra}


@pytest.mark.parametrize(
    ("model", "pipeline"),
    [("qwen-edit", "QwenImageEditPipeline"), ("qwen-edit-2511", "QwenImageEditPlusPipeline")],
)  # qwen-edit-2509 is the same family as 2511 (its alias and preset: tests/unit/engine/test_edit_rules.py)
def test_edit_keeps_the_input_size_and_writes_the_apps_jpeg(env, tmp_path, model, pipeline) -> None:
    _, root = env
    result, sidecar, fmt, pixels = run(
        env, tmp_path, "qwen_image_edit", edit(root, qwen_edit_model=model, output_format="jpeg")
    )
    assert result.output.name == "edit-1.jpg" and fmt == "JPEG" and pixels.shape == (48, 80, 3)
    assert (sidecar["pipeline_class"], sidecar["task_type"]) == (pipeline, "qwen_image_edit")


def test_the_input_image_reaches_the_pipeline(env, tmp_path) -> None:
    # Same seed and prompt: only the input differs (the tiny pipelines are deterministic, see the LoRA test).
    _, root = env
    *_, first = run(env, tmp_path / "1", "qwen_image_edit", edit(root))
    *_, other = run(env, tmp_path / "3", "qwen_image_edit", edit(root, image=str(root / "b.png")))
    assert not np.array_equal(first, other)


def test_inpaint_composites_the_mask_and_adds_the_inpainting_lora(env, tmp_path) -> None:
    _, root = env
    payload = {
        "image_url": str(root / "a.png"),
        "mask_url": str(root / "mask.png"),
        "prompt": "x",
        "steps": 1,
    }
    _, sidecar, _, right = run(env, tmp_path / "1", "image_inpaint", payload)
    *_, left = run(env, tmp_path / "2", "image_inpaint", {**payload, "mask_url": str(root / "mask_left.png")})
    assert right.shape == (48, 80, 3) and not np.array_equal(right, left)  # the mask reaches the model
    assert sidecar["settings"]["loras"] == [{"source": edits.INPAINT_LORA, "weight": 1.0}]
    _, annotated, _, _ = run(env, tmp_path / "3", "annotated_image_edit", payload)
    assert [lora["source"] for lora in annotated["settings"]["loras"]] == [edits.ANNOTATE_LORA]


def test_style_reference_prompt_prefix_and_strength_weighted_loras(env, tmp_path) -> None:
    _, root = env
    payload = {"model": "qwen-image", "prompt": "a dog", "resolution": "64x64", "steps": 1,
               "style_reference_image": str(root / "a.png"), "style_reference_strength": 1.1,
               "subject_strength": 0.5, "subject_description": "cat"}  # fmt: skip
    _, sidecar, _, styled = run(env, tmp_path / "1", "qwen_image_style", payload)
    assert styled.shape == (64, 64, 3) and sidecar["pipeline_class"] == "QwenImageEditPipeline"
    assert sidecar["settings"]["prompt"] == "In the style of this image, make an image of this cat: a dog"
    assert sidecar["settings"]["loras"] == [
        {"source": edits.STYLE_LORA, "weight": 1.1}, {"source": edits.SUBJECT_LORA, "weight": 0.5},
    ]  # fmt: skip
    *_, other = run(
        env, tmp_path / "2", "qwen_image_style", {**payload, "style_reference_image": str(root / "b.png")}
    )
    assert not np.array_equal(styled, other)  # the reference reaches the pipeline


def test_a_lora_changes_qwen_image_and_weight_zero_is_the_base_model(env, tmp_path) -> None:
    _, root = env
    lora = write_qwen_lora(root / "mine.safetensors", seed=3)
    base = {"model": "qwen-image", "prompt": "a city", "resolution": "64x64", "steps": 2}
    *_, plain = run(env, tmp_path / "1", "qwen_image", base)
    _, sidecar, _, styled = run(
        env, tmp_path / "2", "qwen_image", {**base, "loras": [{"path": str(lora), "strength": 0.8}]}
    )
    *_, zero = run(env, tmp_path / "3", "qwen_image", {**base, "additional_loras": {str(lora): 0}})
    assert not np.array_equal(plain, styled) and np.array_equal(plain, zero)
    assert sidecar["settings"]["loras"] == [{"source": str(lora), "weight": 0.8}]


def test_a_lora_reaches_z_image_text_to_image_and_image_to_image(env, tmp_path) -> None:
    _, root = env
    lora = write_qwen_lora(root / "z.safetensors", seed=4, modules=ZIMAGE_MODULES)
    t2i = {"model": "z-image", "prompt": "a city", "resolution": "64x64", "steps": 2}
    i2i = {"image_url": str(root / "a.png"), "prompt": "a city", "strength": 0.5, "steps": 2}
    for index, (task_type, payload) in enumerate((("z_image_turbo", t2i), ("z_image_turbo_i2i", i2i))):
        *_, plain = run(env, tmp_path / f"{index}a", task_type, payload)
        *_, styled = run(
            env, tmp_path / f"{index}b", task_type, {**payload, "loras": [{"path": str(lora), "scale": 1}]}
        )
        assert not np.array_equal(plain, styled), task_type


def test_bad_inputs_fail_by_name(env, tmp_path) -> None:
    _, root = env
    with pytest.raises(ValidationError, match="qwen_edit_model: unknown edit model 'qwen-edit-9'"):
        EditParams.model_validate({"image": "x", "qwen_edit_model": "qwen-edit-9"})
    blank = root / "blank.png"
    Image.new("L", (80, 48), 40).save(blank)
    with pytest.raises(MediaError, match="mask_url: the mask marks no pixel"):
        run(
            env,
            tmp_path / "1",
            "image_inpaint",
            {"image_url": str(root / "a.png"), "mask_url": str(blank), "prompt": "x"},
        )
    junk = root / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(MediaError, match="cannot read image mask"):  # named by its role
        run(
            env,
            tmp_path / "4",
            "annotated_image_edit",
            {"image_url": str(root / "a.png"), "mask_url": str(junk)},
        )
    bomb = root / "bomb.png"
    Image.new("L", (1100, 1000)).save(
        bomb
    )  # past the 1 MP input limit of this engine, refused from its header
    with pytest.raises(MediaError, match="pixels"):
        run(env, tmp_path / "5", "qwen_image_edit", edit(root, image=str(bomb)))
    with pytest.raises(InvalidTaskParams, match=r"strength: .* does not apply"):
        run(
            env,
            tmp_path / "2",
            "z_image_turbo_i2i",
            {"image_url": str(root / "a.png"), "model": "qwen-edit", "strength": 0.5},
        )


def test_a_checkpoint_folder_loads_through_the_real_path_without_torchvision(tmp_path) -> None:
    """A saved tiny Plus pipeline laid out as the hub's Qwen-Image-Edit-2509 is (processor/ with a
    `preprocessor_config.json` naming the torchvision-backed class and Qwen2_5_VLProcessor) loads
    through `from_pretrained` with the PIL processor, and edits."""
    import diffusers

    from headless_wan.engine import tiny_image
    from headless_wan.engine.families.qwen_edit import QWEN_EDIT_PLUS_FAMILY

    folder = tmp_path / "Qwen-Image-Edit-2509"
    tiny_image.build_qwen_edit_pipeline(plus=True).save_pretrained(folder)
    processor = folder / "processor"
    config = json.loads((processor / "processor_config.json").read_text())
    (processor / "processor_config.json").unlink()
    legacy = {**config["image_processor"], "processor_class": "Qwen2_5_VLProcessor"}
    legacy.pop("size")  # the hub's files give the pixel range as min_pixels / max_pixels
    legacy.update(min_pixels=28 * 28, max_pixels=56 * 56)
    (processor / "preprocessor_config.json").write_text(json.dumps(legacy))
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(
        json.dumps({**index, "processor": ["transformers", "Qwen2VLProcessor"]})
    )
    vae = diffusers.AutoencoderKLQwenImage.from_pretrained(folder, subfolder="vae", local_files_only=True)
    pipe = QWEN_EDIT_PLUS_FAMILY.from_pretrained(str(folder), vae=vae, dtype=None, local_files_only=True)
    image_processor = pipe.processor.image_processor
    assert type(image_processor).__name__ == "Qwen2VLImageProcessorPil"
    assert image_processor.size["longest_edge"] == 56 * 56
    pipe.set_progress_bar_config(disable=True)
    out = pipe(image=Image.new("RGB", (40, 32), (200, 10, 10)), prompt="a cat", height=32, width=48,
               num_inference_steps=1, true_cfg_scale=1.0, output_type="np")  # fmt: skip
    assert out.images[0].shape == (32, 48, 3)
