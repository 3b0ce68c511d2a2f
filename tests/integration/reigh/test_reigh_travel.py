"""Chained and independent travel with the tiny model, through a worker process on the Reigh backend
(one generation of its edge functions each: `one_generation`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.handlers import planning
from headless_wan.media.video_io import count_frames
from tests.fixtures.travel.support import PROJECT, orchestrator_payload
from tests.integration.reigh.conftest import REPO, Site, assert_no_client_errors, one_generation

pytestmark = pytest.mark.slow


def _images(site: Site) -> list[str]:
    server, images = site.server, []
    for i in range(3):  # inputs come from the bucket, as the app's uploads do
        path = f"{server.user_id}/uploads/travel_{i}.png"
        server.put(path, (REPO / "examples" / "images" / f"travel_{i}.png").read_bytes(), "image/png")
        images.append(server.public_url(path))
    return images


# The chained run's children carry dependencies (a segment on its predecessor, the stitch on the last
# segment): 2026-04 spells them inside `input` (creation.py), the form with more to get wrong. 2026-01's
# form with dependencies is created by test_reigh_worker's orchestrator case and test_reigh_queue's
# exact-fields case, and Reigh completing a travel orchestrator by test_reigh_queue, on both.
@one_generation("2026-04")
def test_chained_travel_over_http(site: Site, tmp_path: Path) -> None:
    server = site.server
    server.add_project(PROJECT)
    images = _images(site)
    payload = orchestrator_payload(images, segment_frames_expanded=[17, 17], frame_overlap_expanded=[4, 4])
    orchestrator = server.submit("travel_orchestrator", payload, project_id=PROJECT)

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    children = [
        t for t in server.store.tasks() if t["params"].get("orchestrator_task_id_ref") == orchestrator
    ]
    assert [c["task_type"] for c in children] == ["travel_segment", "travel_segment", "travel_stitch"]
    assert all(c["status"] == "Complete" for c in children), [
        (c["task_type"], c["error_message"]) for c in children
    ]
    for index, child in enumerate(children[:2]):
        params = child["params"]
        assert (
            params["segment_index"] == index
            and params["orchestrator_run_id"] == payload["orchestrator_details"]["run_id"]
        )
        assert params["orchestrator_details"]["orchestrator_task_id"] == orchestrator  # the DB uuid (H7)
        assert (
            params["project_id"] == PROJECT
            and params["parent_generation_id"] == payload["parent_generation_id"]
        )
        assert (params["is_first_segment"], params["is_last_segment"]) == (index == 0, index == 1)
    assert children[1]["dependant_on"] == [children[0]["id"]]
    assert children[2]["dependant_on"] == [children[1]["id"]]
    assert all(server.generations(c["id"]) == 1 for c in children)
    assert server.task(orchestrator)["status"] == "Complete"  # by the server, on the last segment

    plan = planning.plan_travel([17, 17], [4], chained=True)
    stitched = tmp_path / "stitched.mp4"
    stitched.write_bytes(server.object_at(children[2]["output_location"]))
    assert count_frames(stitched) == plan.stitched_length == 34
    assert_no_client_errors(server)


# Independent segments: children without dependencies, no stitch; 2026-01 here, so each generation
# runs one real travel end to end.
@one_generation("2026-01")
def test_independent_travel_over_http(site: Site) -> None:
    server = site.server
    server.add_project(PROJECT)
    payload = orchestrator_payload(
        _images(site), chain_segments=False, independent_segments=True, frame_overlap_expanded=[0, 0]
    )
    orchestrator = server.submit("travel_orchestrator", payload, project_id=PROJECT)

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    children = [
        t for t in server.store.tasks() if t["params"].get("orchestrator_task_id_ref") == orchestrator
    ]
    assert [c["task_type"] for c in children] == ["travel_segment", "travel_segment"]  # no stitch
    assert all(c["status"] == "Complete" and not c["dependant_on"] for c in children), children
    assert all(server.generations(c["id"]) == 1 for c in children)
    assert [c["task_id"] for c in server.calls("complete_task")].count(children[0]["id"]) == 1
    assert server.task(orchestrator)["status"] == "Complete"  # by the server, on the last segment
    assert_no_client_errors(server)
