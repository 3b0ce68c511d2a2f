"""The app's single-generation task types (VACE video, text-to-image) with the tiny model, through a
worker process on the Reigh backend (2026-01: `one_generation`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from headless_wan.media.video_io import count_frames
from tests.integration.reigh.conftest import REPO, Site, assert_no_client_errors, one_generation

pytestmark = pytest.mark.slow


# claim → mark_started → upload → complete_task: the calls test_reigh_worker's lifecycle case makes with a
# fixture handler on both generations (2026-04's follow_up answer included); the tiny model changes
# only the bytes uploaded. 2026-01: the generation whose app first sent these task types.
@one_generation("2026-01")
def test_video_and_image_tasks_over_http(site: Site, tmp_path: Path) -> None:
    server = site.server
    example = json.loads((REPO / "examples" / "generate_video.json").read_text())
    video = server.submit(example["task_type"], example["params"])
    # The app's default image model (imageGeneration.ts): optimised-t2i, on the T2V family.
    image = server.submit(
        "wan_2_2_t2i", {"model": "optimised-t2i", "prompt": "a red bird", "resolution": "48x32", "steps": 2}
    )

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    for task_id in (video, image):
        row = server.task(task_id)
        assert row["status"] == "Complete", row["error_message"]
        assert server.generations(task_id) == 1
    assert sorted(c["task_id"] for c in server.calls("complete_task")) == sorted([video, image])
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(server.object_at(server.task(video)["output_location"]))
    assert count_frames(clip) == example["params"]["video_length"]
    png = Image.open(io.BytesIO(server.object_at(server.task(image)["output_location"])))
    assert png.size == (48, 32)
    assert_no_client_errors(server)
