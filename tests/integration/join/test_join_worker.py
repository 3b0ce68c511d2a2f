"""A 2-clip join on the tiny model through a real worker process (`worker --drain`) on each durable queue
backend, SQLite and PostgreSQL: every task Complete and the joined video's exact frame count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.handlers.bridge_planning import JoinSpec, plan_chain
from headless_wan.media.video_io import count_frames
from headless_wan.queue.base import QueueClient
from headless_wan.queue.postgres import PostgresQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import PROJECT
from tests.integration.queue.conftest import Site
from tests.postgres_support import TEST_DSN, fresh_schema

pytestmark = pytest.mark.slow

SIZE = 32


def _payload(clips: list[Path]) -> dict:
    details = {
        "clip_list": [{"url": str(path)} for path in clips], "run_id": "run-e2e", "context_frame_count": 2,
        "gap_frame_count": 5, "replace_mode": True, "num_inference_steps": 1, "seed": 3, "fps": 16,
    }  # fmt: skip
    return {"orchestrator_details": details}


def _check(queue: QueueClient, orchestrator_id: str, log: str) -> None:
    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.COMPLETE, (orchestrator, log)
    children = queue.children(orchestrator_id)
    assert [c.task_type for c in children] == ["join_clips_segment", "join_final_stitch"]
    assert all(c.status is TaskStatus.COMPLETE for c in children), children
    plan = plan_chain([13, 13], [JoinSpec(2, 5, True)])
    final = Path(orchestrator.output_location or "")
    assert count_frames(final) == plan.output_frames == 26
    assert final.with_name(f"{final.stem}.settings.json").is_file()


def test_join_through_sqlite_and_a_worker_process(tmp_path: Path, make_clip: Callable[..., Path]) -> None:
    clips = [make_clip(f"c{i}.mp4", 13, seed=i + 1, width=SIZE, height=SIZE) for i in range(2)]
    site = Site(tmp_path)
    queue = site.queue()
    try:
        orchestrator_id = queue.enqueue(
            NewTask("join_clips_orchestrator", _payload(clips), project_id=PROJECT)
        )
    finally:
        queue.close()
    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=240) == 0, worker.output()
    queue = site.queue()
    try:
        _check(queue, orchestrator_id, worker.output())
    finally:
        queue.close()


def test_join_through_postgres_and_a_worker_process(tmp_path: Path, make_clip: Callable[..., Path]) -> None:
    clips = [make_clip(f"c{i}.mp4", 13, seed=i + 1, width=SIZE, height=SIZE) for i in range(2)]
    with fresh_schema() as schema:
        queue = PostgresQueue(TEST_DSN, LocalStorage(tmp_path / "out"), schema=schema)
        queue.migrate()
        queue.open()
        try:
            orchestrator_id = queue.enqueue(
                NewTask("join_clips_orchestrator", _payload(clips), project_id=PROJECT)
            )
            site = Site(tmp_path)
            worker = site.start_worker(
                "--drain", HW_MODEL_OVERRIDE="tiny", HW_QUEUE="postgres", DATABASE_URL=TEST_DSN,
                HW_PG_SCHEMA=schema, HW_ALLOW_LOCAL_INPUTS="true",
            )  # fmt: skip
            assert worker.wait(timeout_s=240) == 0, worker.output()
            _check(queue, orchestrator_id, worker.output())
        finally:
            queue.close()
