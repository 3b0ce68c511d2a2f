"""The VACE bridge task types through a worker process on the Reigh backend (2026-04): a join
of three clips, an edit, an inpaint and the app's crossfade join, inputs from the bucket, tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.handlers.bridge_planning import JoinSpec, plan_chain
from headless_wan.media.video_io import count_frames, encode_video
from tests.fixtures.travel.support import PROJECT
from tests.integration.join.conftest import textured_frames
from tests.integration.reigh.conftest import Site, assert_no_client_errors, one_generation

pytestmark = pytest.mark.slow


def _upload_clips(site: Site, tmp_path: Path, lengths: list[int]) -> list[str]:
    urls = []
    for index, length in enumerate(lengths):
        local = tmp_path / f"clip_{index}.mp4"
        encode_video(textured_frames(length, seed=index + 1), local, 16)
        path = f"{site.server.user_id}/uploads/clip_{index}.mp4"
        site.server.put(path, local.read_bytes(), "video/mp4")
        urls.append(site.server.public_url(path))
    return urls


def _frames_of(site: Site, tmp_path: Path, url: str, name: str) -> int:
    local = tmp_path / name
    local.write_bytes(site.server.object_at(url))
    return count_frames(local)


# The join orchestrator's children (two chained joins, a stitch on both) go through create-task like a
# chained travel's; the 2026-01 form with dependencies is covered by test_reigh_worker's orchestrator case
# and test_reigh_queue on both generations. 2026-04: the app generation these task types come from.
@one_generation("2026-04")
def test_bridge_task_types_over_http(site: Site, tmp_path: Path) -> None:
    server = site.server
    server.add_project(PROJECT)
    clips = _upload_clips(site, tmp_path, [25, 25, 25])
    join_details = {
        "clip_list": [{"url": url} for url in clips], "run_id": "join-run-1", "context_frame_count": 4,
        "gap_frame_count": 9, "replace_mode": True, "num_inference_steps": 2, "seed": 3, "fps": 16,
    }  # fmt: skip
    join = server.submit(
        "join_clips_orchestrator",
        {"orchestrator_details": join_details, "parent_generation_id": "gen-join"},
        project_id=PROJECT,
    )
    edit_details = {
        "source_video_url": clips[0], "run_id": "edit-run-1", "context_frame_count": 4, "seed": 1,
        "num_inference_steps": 2, "portions_to_regenerate": [{"start_frame": 8, "end_frame": 14}],
    }  # fmt: skip
    edit = server.submit(
        "edit_video_orchestrator", {"orchestrator_details": edit_details}, project_id=PROJECT
    )
    inpaint = server.submit(
        "inpaint_frames",
        {"video_path": clips[1], "inpaint_start_frame": 5, "inpaint_end_frame": 15, "context_frame_count": 4,
         "num_inference_steps": 2},
        project_id=PROJECT,
    )  # fmt: skip
    crossfade = server.submit(
        "travel_stitch", {"clip_urls": clips[:2], "frame_overlap_settings_expanded": [5]}, project_id=PROJECT
    )

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=540) == 0, worker.output()

    for task_id in (join, edit, inpaint, crossfade):
        task = server.task(task_id)
        assert task["status"] == "Complete", (
            task["task_type"],
            task["error_message"],
            worker.output()[-3000:],
        )
    children = [t for t in server.store.tasks() if t["params"].get("orchestrator_task_id_ref") == join]
    assert [c["task_type"] for c in children] == ["join_clips_segment"] * 2 + ["join_final_stitch"]
    assert all(c["status"] == "Complete" for c in children)
    for index, child in enumerate(children[:2]):
        params = child["params"]
        assert (params["join_index"], params["is_first_join"], params["is_last_join"]) == (
            index,
            index == 0,
            index == 1,
        )
        assert params["run_id"] == "join-run-1" and params["project_id"] == PROJECT
        assert params["full_orchestrator_payload"]["run_id"] == "join-run-1"
    assert children[1]["dependant_on"] == [children[0]["id"]]
    assert sorted(children[2]["dependant_on"]) == sorted(c["id"] for c in children[:2])
    # the stitch completes the orchestrator with its own output (§5.3)
    assert server.task(join)["output_location"] == children[2]["output_location"]
    expected = plan_chain([25, 25, 25], [JoinSpec(4, 9, True)] * 2).output_frames
    assert _frames_of(site, tmp_path, children[2]["output_location"], "joined.mp4") == expected == 75
    assert _frames_of(site, tmp_path, server.task(edit)["output_location"], "edited.mp4") == 25
    assert _frames_of(site, tmp_path, server.task(inpaint)["output_location"], "inpainted.mp4") == 25
    assert _frames_of(site, tmp_path, server.task(crossfade)["output_location"], "crossfaded.mp4") == 45
    assert_no_client_errors(server)
