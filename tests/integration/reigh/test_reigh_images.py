"""The app's image task types (Z-Image text-to-image and image-to-image, Qwen-Image) on the tiny models,
through a worker process on the Reigh backend (one generation per case: `one_generation`)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.integration.reigh.conftest import REPO, Site, assert_no_client_errors, one_generation

pytestmark = pytest.mark.slow


# Single generations and one refused payload (a Failed write): the lifecycle calls test_reigh_worker
# drives on both generations. 2026-04: the app generation that sends these task types.
@one_generation("2026-04")
def test_z_image_tasks_over_http(site: Site) -> None:
    server = site.server
    path = f"{server.user_id}/uploads/source.png"  # inputs come from the bucket, as the app's uploads do
    server.put(path, (REPO / "examples" / "images" / "travel_0.png").read_bytes(), "image/png")
    # The payloads the app's resolvers build (imageGeneration.ts, zImageTurboI2I.ts).
    t2i = server.submit(
        "z_image_turbo",
        {"model": "z-image", "prompt": "a red cat", "resolution": "80x48", "seed": 4, "steps": 2,
         "add_in_position": False},
    )  # fmt: skip
    i2i = server.submit(
        "z_image_turbo_i2i",
        {"image_url": server.public_url(path), "prompt": "the sea", "strength": 0.6, "num_inference_steps": 4,
         "output_format": "png", "image_size": "auto", "seed": 9, "acceleration": "high"},
    )  # fmt: skip
    qwen = server.submit(
        "qwen_image",
        {"model": "qwen-image", "prompt": "a city at night", "resolution": "1024x576", "seed": 3, "steps": 2},
    )
    # The app sends its Lightning strength whatever the model; the tiny model has none, so it is ignored.
    qwen_2512 = server.submit(
        "qwen_image_2512",
        {"model": "qwen-image-2512", "prompt": "a sign that says hi", "resolution": "64x64", "seed": 5,
         "steps": 2, "lightning_lora_strength_phase_1": 0.8},
    )  # fmt: skip
    bad = server.submit("z_image_turbo_i2i", {"image_url": server.public_url(path), "strength": 1.5})

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    for task_id, size in ((t2i, (80, 48)), (i2i, (128, 128)), (qwen, (160, 96)), (qwen_2512, (64, 64))):
        row = server.task(task_id)
        assert row["status"] == "Complete", row["error_message"]
        assert server.generations(task_id) == 1
        png = Image.open(io.BytesIO(server.object_at(row["output_location"])))
        assert (png.format, png.size) == ("PNG", size)
    failed = server.task(bad)
    assert failed["status"] == "Failed" and "strength: must be a number in (0, 1]" in failed["error_message"]
    assert_no_client_errors(server)


# Like the case above (single generations, one Failed write); 2026-01, so each generation runs one of the
# two image cases.
@one_generation("2026-01")
def test_qwen_edit_tasks_over_http(site: Site, tmp_path) -> None:
    from headless_wan.handlers import edits
    from tests.integration.engine.qwen_fixtures import seed_lora_cache

    server = site.server
    image, mask = f"{server.user_id}/uploads/source.png", f"{server.user_id}/uploads/mask.png"
    server.put(image, (REPO / "examples" / "images" / "travel_0.png").read_bytes(), "image/png")
    server.put(mask, (REPO / "examples" / "images" / "travel_0_mask.png").read_bytes(), "image/png")
    image_url, mask_url = server.public_url(image), server.public_url(mask)
    # The payloads the app's resolvers build (magicEdit.ts, maskedEdit.ts, imageGeneration.ts).
    magic = server.submit(
        "qwen_image_edit",
        {"seed": 3, "image": image_url, "prompt": "make it snow", "output_format": "jpeg",
         "qwen_edit_model": "qwen-edit-2511", "enable_sync_mode": False, "max_wait_seconds": 300,
         "enable_base64_output": False, "add_in_position": False, "steps": 2},
    )  # fmt: skip
    masked = {"image_url": image_url, "mask_url": mask_url, "prompt": "a balloon", "num_generations": 1,
              "generation_id": "g1", "based_on": "g1", "parent_generation_id": "g1", "steps": 2}  # fmt: skip
    inpaint = server.submit("image_inpaint", masked)
    annotated = server.submit("annotated_image_edit", masked)
    style = server.submit(
        "qwen_image_style",
        {"model": "qwen-image", "prompt": "a harbour", "resolution": "1024x576", "seed": 4, "steps": 2,
         "add_in_position": False, "style_reference_image": image_url, "subject_reference_image": image_url,
         "style_reference_strength": 1.1},
    )  # fmt: skip
    bad = server.submit(
        "qwen_image_edit", {"image": image_url, "prompt": "x", "qwen_edit_model": "qwen-edit-9"}
    )

    cache = tmp_path / "loras"  # the task LoRAs, as after their first download
    seed_lora_cache(cache, (edits.INPAINT_LORA, edits.ANNOTATE_LORA, edits.STYLE_LORA))
    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny", HW_LORA_CACHE_DIR=str(cache))
    assert worker.wait(timeout_s=300) == 0, worker.output()

    for task_id, size, fmt in ((magic, (64, 64), "JPEG"), (inpaint, (64, 64), "PNG"),
                               (annotated, (64, 64), "PNG"), (style, (160, 96), "PNG")):  # fmt: skip
        row = server.task(task_id)
        assert row["status"] == "Complete", row["error_message"]
        picture = Image.open(io.BytesIO(server.object_at(row["output_location"])))
        assert (picture.format, picture.size) == (fmt, size)
    failed = server.task(bad)
    assert (
        failed["status"] == "Failed"
        and "qwen_edit_model: unknown edit model 'qwen-edit-9'" in failed["error_message"]
    )
    assert_no_client_errors(server)
