"""End to end with the tiny model: a chained 3-image travel through the SQLite queue and a worker process,
and the app's default I2V travel through `python -m headless_wan run`. Decoded frame counts are checked.
(The shipped travel example runs through `run` in test_travel_without_project.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.handlers import planning
from headless_wan.media.video_io import count_frames, read_frames
from tests.fixtures.travel.support import PROJECT, orchestrator_payload
from tests.integration.queue.conftest import REPO, Site

pytestmark = pytest.mark.slow


def test_chained_travel_through_sqlite_and_a_worker_process(tmp_path: Path) -> None:
    site = Site(tmp_path)
    images = [str(REPO / "examples" / "images" / f"travel_{i}.png") for i in range(3)]
    payload = orchestrator_payload(images, segment_frames_expanded=[17, 17], frame_overlap_expanded=[4, 4])
    queue = site.queue()
    try:
        orchestrator_id = queue.enqueue(NewTask("travel_orchestrator", payload, project_id=PROJECT))
    finally:
        queue.close()

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()

    orchestrator = site.get(orchestrator_id)
    assert orchestrator.status is TaskStatus.COMPLETE, (orchestrator, worker.output())
    queue = site.queue()
    try:
        children = queue.children(orchestrator_id)
    finally:
        queue.close()
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


def test_app_default_i2v_independent_travel_completes_without_a_stitch(tmp_path: Path) -> None:
    """What the Reigh app sends by default: Wan2.2 I2V Lightning, independent segments, no stitch.
    The model runs as the image-to-video family it is; here on its tiny counterpart (tiny-i2v)."""
    images = [str(REPO / "examples" / "images" / f"travel_{i}.png") for i in range(3)]
    payload = orchestrator_payload(
        images,
        model_name="wan_2_2_i2v_lightning_baseline_2_2_2",
        model_type="i2v",
        chain_segments=False,
        independent_segments=True,
    )
    task_file = tmp_path / "travel_i2v.json"
    task = {"task_type": "travel_orchestrator", "params": payload, "project_id": "local-project"}
    task_file.write_text(json.dumps(task))
    site = Site(tmp_path)
    done = site.cli("run", str(task_file), "--model-override", "tiny", "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = sorted((tmp_path / "out" / "tasks").glob("*/*.mp4"))
    assert len(outputs) == 2  # two independent segments, no stitch
    assert all(count_frames(path) == 17 for path in outputs)
    sidecars = [json.loads(path.with_name(f"{path.stem}.settings.json").read_text()) for path in outputs]
    assert {(s["family"], s["preset"], s["model"]) for s in sidecars} == {
        ("i2v", "tiny-i2v", "wan_2_2_i2v_lightning_baseline_2_2_2")
    }
    assert all(s["settings"]["image_start"] and s["settings"]["image_end"] for s in sidecars)
