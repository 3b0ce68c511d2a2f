"""Caps on what one travel run may ask for: fan-out and total frames fail before any child exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.planning import plan_travel
from headless_wan.handlers.travel_inputs import TravelConfig
from headless_wan.handlers.travel_orchestrator import TravelOrchestratorHandler
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import claim_type, enqueue_orchestrator, orchestrator_payload, run_claim


def images(count: int) -> list[str]:
    return [f"https://img.example/{index}.png" for index in range(count)]


def orchestrate(tmp_path: Path, payload: dict[str, object], config: TravelConfig) -> InMemoryQueue:
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"))
    enqueue_orchestrator(queue, payload)
    run_claim(queue, TravelOrchestratorHandler(config), claim_type(queue, "travel_orchestrator"), tmp_path)
    return queue


def test_fan_out_over_the_cap_fails_before_any_child_is_created(tmp_path: Path) -> None:
    payload = orchestrator_payload(images(1001))
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"))
    orchestrator_id = enqueue_orchestrator(queue, payload)
    claim = claim_type(queue, "travel_orchestrator")
    with pytest.raises(
        InvalidTaskParams,
        match=r"input_image_paths_resolved: 1001 images make 1000 segments, over the limit of 64 segments "
        r"per travel run \(HW_MAX_TRAVEL_SEGMENTS\)",
    ):
        run_claim(queue, TravelOrchestratorHandler(TravelConfig()), claim, tmp_path)
    assert queue.children(orchestrator_id) == []


def test_fan_out_at_the_cap_is_accepted(tmp_path: Path) -> None:
    queue = orchestrate(tmp_path, orchestrator_payload(images(5)), TravelConfig(max_segments=4))
    assert len(queue.list_tasks()) == 1 + 4 + 1  # orchestrator, segments, stitch
    with pytest.raises(InvalidTaskParams, match=r"6 images make 5 segments, over the limit of 4"):
        orchestrate(tmp_path / "over", orchestrator_payload(images(6)), TravelConfig(max_segments=4))


def test_a_run_longer_than_the_frame_cap_fails(tmp_path: Path) -> None:
    payload = orchestrator_payload(images(3), segment_frames_expanded=[81, 81], frame_overlap_expanded=[9, 9])
    stitched = plan_travel([81, 81], [9], chained=True).stitched_length
    assert stitched > 100
    with pytest.raises(
        InvalidTaskParams,
        match=rf"segment_frames_expanded: the run would produce {stitched} frames, over the limit of 100 frames "
        r"per task \(HW_MAX_TASK_FRAMES\)",
    ):
        orchestrate(tmp_path, payload, TravelConfig(max_frames=100))
    assert len(orchestrate(tmp_path / "ok", payload, TravelConfig(max_frames=stitched)).list_tasks()) == 4
