"""The app's image task types (Z-Image text-to-image and image-to-image, Qwen-Image) on the tiny models,
through a worker process on the Reigh backend (2026-04: `one_generation`)."""

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
    bad = server.submit("z_image_turbo_i2i", {"image_url": server.public_url(path), "strength": 1.5})

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    for task_id, size in ((t2i, (80, 48)), (i2i, (128, 128)), (qwen, (160, 96))):
        row = server.task(task_id)
        assert row["status"] == "Complete", row["error_message"]
        assert server.generations(task_id) == 1
        png = Image.open(io.BytesIO(server.object_at(row["output_location"])))
        assert (png.format, png.size) == ("PNG", size)
    failed = server.task(bad)
    assert failed["status"] == "Failed" and "strength: must be a number in (0, 1]" in failed["error_message"]
    assert_no_client_errors(server)
