"""End to end with the tiny model: a chained 3-image travel and the app's default I2V travel through the
SQLite queue and one worker process. Decoded frame counts are checked. (The shipped travel example runs
through `python -m headless_wan run` in test_travel_without_project.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, Task, TaskStatus
from headless_wan.handlers import planning
from headless_wan.media.video_io import count_frames, read_frames
from tests.fixtures.travel.support import PROJECT, orchestrator_payload
from tests.integration.queue.conftest import REPO, Site

pytestmark = pytest.mark.slow


def _children(site: Site, parent_id: str) -> list[Task]:
    queue = site.queue()
    try:
        return queue.children(parent_id)
    finally:
        queue.close()


def test_chained_vace_and_independent_i2v_travel_through_sqlite_and_one_worker_process(
    tmp_path: Path,
) -> None:
    """A chained 3-image travel on the tiny VACE model and what the Reigh app sends by default (Wan2.2 I2V
    Lightning, independent segments, no stitch; run as the image-to-video family it is, on tiny-i2v),
    drained by one worker process: the runs are independent, and the executor switches models between
    them as a worker serving both would."""
    site = Site(tmp_path)
    images = [str(REPO / "examples" / "images" / f"travel_{i}.png") for i in range(3)]
    chained = orchestrator_payload(images, segment_frames_expanded=[17, 17], frame_overlap_expanded=[4, 4])
    app_default = orchestrator_payload(
        images,
        model_name="wan_2_2_i2v_lightning_baseline_2_2_2",
        model_type="i2v",
        chain_segments=False,
        independent_segments=True,
    )
    queue = site.queue()
    try:
        chained_id = queue.enqueue(NewTask("travel_orchestrator", chained, project_id=PROJECT))
        i2v_id = queue.enqueue(NewTask("travel_orchestrator", app_default, project_id="local-project"))
    finally:
        queue.close()

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=300) == 0, worker.output()[-3000:]

    _check_chained(site, chained_id, worker.output())
    _check_app_default_i2v(site, i2v_id)


def _check_chained(site: Site, orchestrator_id: str, log: str) -> None:
    orchestrator = site.get(orchestrator_id)
    assert orchestrator.status is TaskStatus.COMPLETE, (orchestrator, log[-3000:])
    children = _children(site, orchestrator_id)
    assert [c.task_type for c in children] == ["travel_segment", "travel_segment", "travel_stitch"]
    assert all(c.status is TaskStatus.COMPLETE for c in children)
    plan = planning.plan_travel([17, 17], [4], chained=True)
    assert (
        [count_frames(Path(c.output_location or "")) for c in children[:2]] == list(plan.targets) == [17, 21]
    )
    final = Path(orchestrator.output_location or "")
    assert final == Path(children[2].output_location or "")
    assert count_frames(final) == plan.stitched_length == 34
    assert read_frames(final).shape == (34, 64, 64, 3)
    sidecar = json.loads(final.with_name(f"{final.stem}.settings.json").read_text())
    assert (sidecar["task_type"], sidecar["num_frames"], sidecar["resolution"]) == (
        "travel_stitch",
        34,
        "64x64",
    )
    assert [s["frames"] for s in sidecar["segments"]] == [17, 21] and sidecar["overlaps_used"] == [4]


def _check_app_default_i2v(site: Site, orchestrator_id: str) -> None:
    assert site.get(orchestrator_id).status is TaskStatus.COMPLETE
    children = _children(site, orchestrator_id)
    assert [c.task_type for c in children] == ["travel_segment", "travel_segment"]  # no stitch
    outputs = [Path(c.output_location or "") for c in children]
    assert all(count_frames(path) == 17 for path in outputs)
    sidecars = [json.loads(path.with_name(f"{path.stem}.settings.json").read_text()) for path in outputs]
    assert {(s["family"], s["preset"], s["model"]) for s in sidecars} == {
        ("i2v", "tiny-i2v", "wan_2_2_i2v_lightning_baseline_2_2_2")
    }
    assert all(s["settings"]["image_start"] and s["settings"]["image_end"] for s in sidecars)
