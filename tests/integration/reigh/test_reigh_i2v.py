"""The app's single-segment I2V tasks through the Reigh test server and a worker process (tiny I2V),
one generation per case (`one_generation`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.media.video_io import count_frames
from tests.fixtures.travel.support import PROJECT, orchestrator_payload
from tests.integration.reigh.conftest import REPO, Site, one_generation

pytestmark = pytest.mark.slow

I2V = "wan_2_2_i2v_lightning_baseline_2_2_2"


def uploaded_images(site: Site, count: int) -> list[str]:
    server = site.server
    urls = []
    for i in range(count):  # inputs come from the bucket, as the app's uploads do
        path = f"{server.user_id}/uploads/travel_{i}.png"
        server.put(path, (REPO / "examples" / "images" / f"travel_{i}.png").read_bytes(), "image/png")
        urls.append(server.public_url(path))
    return urls


# Two standalone generations (no children): claim → mark_started → upload → complete_task, the calls
# test_reigh_worker's lifecycle case makes on both generations. 2026-04: the app that sends them.
@one_generation("2026-04")
def test_individual_segment_and_turbo_mode_complete_over_http(site: Site, tmp_path: Path) -> None:
    server = site.server
    server.add_project(PROJECT)
    start, end = uploaded_images(site, 2)
    individual = server.submit(
        "individual_travel_segment",
        {
            "model_name": I2V, "base_prompt": "a cat", "num_frames": 17, "parsed_resolution_wh": "64x64",
            "seed_to_use": 3, "segment_index": 0, "input_image_paths_resolved": [start, end],
            "child_generation_id": "child-gen-1", "lora_names": [], "lora_multipliers": [],
            "orchestrator_details": {"generation_source": "individual_segment", "model_name": I2V},
            "individual_segment_params": {"start_image_url": start, "end_image_url": end, "num_frames": 13},
        },
        project_id=PROJECT,
    )  # fmt: skip
    turbo = server.submit(
        "wan_2_2_i2v",
        orchestrator_payload(
            [start, end], model_name=I2V, model_type="i2v", chain_segments=False,
            independent_segments=True, segment_frames_expanded=[9],
        ),
        project_id=PROJECT,
    )  # fmt: skip

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    for task_id, frames in ((individual, 13), (turbo, 9)):
        row = server.task(task_id)
        assert row["status"] == "Complete", (row["task_type"], row["error_message"], worker.output()[-3000:])
        assert server.generations(task_id) == 1  # completed once
        video = tmp_path / f"{task_id}.mp4"
        video.write_bytes(server.object_at(row["output_location"]))
        assert count_frames(video) == frames


# Validation fails the task (one update-task-status Failed write), as test_reigh_worker's lifecycle case
# does on both generations. Here 2026-01, so each generation runs one of the two cases.
@one_generation("2026-01")
def test_an_unknown_model_fails_the_task_under_the_tiny_override(site: Site) -> None:
    server = site.server
    server.add_project(PROJECT)
    (start,) = uploaded_images(site, 1)
    task = server.submit(
        "individual_travel_segment",
        {"model_name": "no_such_model_xyz", "parsed_resolution_wh": "64x64", "num_frames": 17,
         "individual_segment_params": {"start_image_url": start}},
        project_id=PROJECT,
    )  # fmt: skip
    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=120) == 0, worker.output()
    row = server.task(task)
    assert row["status"] == "Failed"
    assert row["error_message"].startswith("model: unknown model 'no_such_model_xyz' (known: ")
