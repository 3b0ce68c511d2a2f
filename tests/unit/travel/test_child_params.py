"""Travel children carry what they read plus what the app reads, not a copy of the whole run:
a segment's params do not grow with the number of images; older full-copy children still run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from headless_wan.domain.tasks import Task
from headless_wan.domain.travel_params import TravelSegmentParams
from headless_wan.handlers.travel_inputs import TravelConfig
from headless_wan.handlers.travel_orchestrator import TravelOrchestratorHandler
from headless_wan.handlers.travel_segment import prepare_job
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import claim_type, enqueue_orchestrator, orchestrator_payload, run_claim

GEN_IDS = [f"00000000-0000-4000-8000-{index:012d}" for index in range(100)]


def children_for(tmp_path: Path, count: int) -> list[Task]:
    images = [f"https://img.example/image-{index:03d}.png" for index in range(count)]
    payload = orchestrator_payload(
        images,
        input_image_generation_ids=GEN_IDS[:count],
        enhanced_prompts_expanded=[f"enhanced {index}" for index in range(count - 1)],
    )
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"))
    orchestrator_id = enqueue_orchestrator(queue, payload)
    handler = TravelOrchestratorHandler(TravelConfig())
    run_claim(queue, handler, claim_type(queue, "travel_orchestrator"), tmp_path / "work")
    return queue.children(orchestrator_id)


def size(params: dict[str, Any]) -> int:
    return len(json.dumps(params, sort_keys=True))


def segments(children: list[Task]) -> list[Task]:
    return [child for child in children if child.task_type == "travel_segment"]


def test_a_segments_params_do_not_grow_with_the_number_of_images(tmp_path: Path) -> None:
    few, many = segments(children_for(tmp_path / "3", 3)), segments(children_for(tmp_path / "60", 60))
    assert len(few) == 2 and len(many) == 59
    # Same position, same values: only the run's length differs, and it shows only in the digits of
    # orchestrator_details.num_new_segments_to_generate (2 vs 59).
    assert size(many[0].params) - size(few[0].params) == len("59") - len("2")
    assert max(size(s.params) for s in many) - min(size(s.params) for s in many) < 64  # "image-001" digits
    # The stitch keeps the run's arrays (the app reads them from the final video): one per run, O(N).
    stitch = next(child for child in children_for(tmp_path / "60b", 60) if child.task_type == "travel_stitch")
    assert len(stitch.params["orchestrator_details"]["input_image_paths_resolved"]) == 60


def test_segments_carry_the_values_the_app_reads_at_their_index(tmp_path: Path) -> None:
    seg = segments(children_for(tmp_path, 60))[7].params
    assert seg["start_image_url"] == "https://img.example/image-007.png"
    assert seg["end_image_url"] == "https://img.example/image-008.png"
    assert (seg["start_image_generation_id"], seg["end_image_generation_id"]) == (GEN_IDS[7], GEN_IDS[8])
    assert seg["individual_segment_params"] == {
        "start_image_generation_id": GEN_IDS[7],
        "end_image_generation_id": GEN_IDS[8],
    }
    assert seg["pair_shot_generation_id"] == "pair-7" and seg["prompt"] == "prompt 7"
    assert seg["enhanced_prompt"] == "enhanced 7" and seg["num_frames"] == 17
    assert seg["orchestrator_task_id_ref"] and seg["segment_index"] == 7
    assert "input_image_paths_resolved" not in seg  # a top-level list would be misread by the app's UI


def test_an_older_child_with_the_whole_run_copied_still_runs(tmp_path: Path) -> None:
    new_shape = segments(children_for(tmp_path, 4))[2].params
    images = [f"https://img.example/image-{index:03d}.png" for index in range(4)]
    legacy = {
        key: value for key, value in new_shape.items() if key not in ("start_image_url", "end_image_url")
    }
    legacy["orchestrator_details"] = {
        **new_shape["orchestrator_details"],
        "input_image_paths_resolved": images,
        "segment_frames_expanded": [17, 17, 17],
        "frame_overlap_expanded": [4, 4],
    }
    legacy.pop("predecessor_frames_target")
    job_new = prepare_job(TravelSegmentParams.model_validate(new_shape))
    job_old = prepare_job(TravelSegmentParams.model_validate(legacy))
    assert (
        (job_new.start_image, job_new.end_image)
        == (job_old.start_image, job_old.end_image)
        == tuple(images[2:4])
    )
    assert job_new.predecessor_frames == job_old.predecessor_frames is not None
    assert job_new.layout == job_old.layout
    assert job_old.end_field == "orchestrator_details.input_image_paths_resolved[3]"
    assert job_new.end_field == "end_image_url"


def test_chained_segments_carry_their_predecessors_planned_length(tmp_path: Path) -> None:
    first, second = segments(children_for(tmp_path, 3))
    assert first.params["predecessor_frames_target"] is None
    assert second.params["predecessor_frames_target"] == first.params["segment_frames_target"]
    assert first.params["frame_overlap"] == 4 and "frame_overlap" not in second.params  # S−1 overlaps
    assert first.params["start_image_url"] != second.params["start_image_url"]
    assert first.params["end_image_url"] == second.params["start_image_url"]
