"""The worker loop on the in-memory queue with fixture handlers: outcomes, isolation of bad tasks,
cancellation, shutdown and heartbeats."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, Task, TaskStatus
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.heartbeat import Heartbeat
from headless_wan.worker.loop import EXIT_FATAL, EXIT_OK, Worker, WorkerOptions, next_idle_delay
from tests.fixtures.handlers import all_handlers
from tests.helpers import wait_for


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"), lease_s=30, max_attempts=3)


def make_worker(
    queue: InMemoryQueue, tmp_path: Path, *, heartbeat_s: float = 0.05, **options: object
) -> Worker:
    settings: dict[str, object] = {"drain": True, "poll_min_s": 0.01, **options}
    opts = WorkerOptions(worker_id="w1", work_dir=tmp_path / "work", **settings)  # type: ignore[arg-type]
    heartbeat = Heartbeat(queue, "w1", heartbeat_s, logging.getLogger("test.heartbeat"))
    return Worker(queue, HandlerRegistry(all_handlers()), heartbeat, opts)  # type: ignore[arg-type]


def submit(queue: InMemoryQueue, task_type: str, params: dict[str, object] | None = None) -> str:
    return queue.enqueue(NewTask(task_type, params if params is not None else {}))


def row(queue: InMemoryQueue, task_id: str) -> Task:
    task = queue.get(task_id)
    assert task is not None
    return task


def start(worker: Worker, threads: list[threading.Thread]) -> dict[str, int]:
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", worker.run()), daemon=True)
    thread.start()
    threads.append(thread)
    return result


def test_success_publishes_output_and_cleans_workdir(queue: InMemoryQueue, tmp_path: Path) -> None:
    task_id = submit(queue, "echo", {"message": "hello"})
    assert make_worker(queue, tmp_path).run() == EXIT_OK
    done = row(queue, task_id)
    assert done.status is TaskStatus.COMPLETE
    assert Path(done.output_location or "").read_text() == "hello"
    assert not (tmp_path / "work" / task_id).exists()


def test_bad_tasks_fail_clearly_and_the_worker_serves_the_next(queue: InMemoryQueue, tmp_path: Path) -> None:
    unknown = submit(queue, "make_coffee", {"size": "large"})
    invalid = submit(queue, "echo", {"mesage": "typo"})
    crash = submit(queue, "boom")
    rejected = submit(queue, "reject")
    good = submit(queue, "echo", {"message": "still here"})
    assert make_worker(queue, tmp_path).run() == EXIT_OK

    assert row(queue, unknown).status is TaskStatus.FAILED
    assert row(queue, unknown).error_message.startswith("Unknown task type 'make_coffee'")  # type: ignore[union-attr]
    message = row(queue, invalid).error_message or ""
    assert "Invalid params for echo" in message and "message: Field required" in message
    assert "mesage: Extra inputs are not permitted" in message
    crash_message = row(queue, crash).error_message or ""
    assert crash_message == "Internal error in the boom handler: RuntimeError: kaboom"
    assert "Traceback" not in crash_message
    assert row(queue, rejected).error_message == "image_urls[1]: the image could not be decoded"
    assert row(queue, good).status is TaskStatus.COMPLETE


def test_unreadable_params_fail_with_a_clear_message(tmp_path: Path) -> None:
    class CorruptQueue(InMemoryQueue):
        def claim(self, worker_id, task_types=None):  # type: ignore[no-untyped-def]
            from dataclasses import replace

            claim = super().claim(worker_id, task_types)
            if claim is not None and claim.task.params.get("corrupt"):
                bad = replace(claim.task, params={}, params_error="task params are not valid JSON (line 1)")
                return replace(claim, task=bad)
            return claim

    queue = CorruptQueue(LocalStorage(tmp_path / "out"))
    bad = submit(queue, "echo", {"corrupt": True})
    good = submit(queue, "echo", {"message": "ok"})
    make_worker(queue, tmp_path).run()
    assert row(queue, bad).error_message == "Invalid echo task: task params are not valid JSON (line 1)."
    assert row(queue, good).status is TaskStatus.COMPLETE


def test_orchestrator_children_run_in_dependency_order(queue: InMemoryQueue, tmp_path: Path) -> None:
    journal = tmp_path / "journal.txt"
    parent = submit(queue, "spawn", {"count": 3, "message": "seg"})
    make_worker(queue, tmp_path).run()
    children = queue.children(parent)
    assert [c.params["message"] for c in children] == ["seg 0", "seg 1", "seg 2"]
    assert all(c.status is TaskStatus.COMPLETE for c in children)
    assert [c.dependant_on for c in children][1:] == [(children[0].id,), (children[1].id,)]
    done = row(queue, parent)
    assert done.status is TaskStatus.COMPLETE and done.output_location == children[-1].output_location
    assert not journal.exists()


def test_user_cancel_stops_the_task_and_publishes_nothing(
    queue: InMemoryQueue, tmp_path: Path, background: list[threading.Thread]
) -> None:
    started = tmp_path / "started"
    task_id = submit(queue, "wait", {"started_file": str(started)})
    worker = make_worker(queue, tmp_path)
    start(worker, background)
    wait_for(started.exists, what="task start")
    queue.cancel(task_id)
    wait_for(lambda: worker.current_task_id is None, what="worker to drop the task")
    cancelled = row(queue, task_id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.output_location is None
    assert not list((tmp_path / "out").rglob("waited.txt"))


def test_stop_lets_the_task_finish_within_the_grace_period(
    queue: InMemoryQueue, tmp_path: Path, background: list[threading.Thread]
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    task_id = submit(queue, "wait", {"started_file": str(started), "until_file": str(release)})
    later = submit(queue, "echo", {"message": "not claimed"})
    worker = make_worker(queue, tmp_path, shutdown_grace_s=30, drain=False)
    result = start(worker, background)
    wait_for(started.exists, what="task start")
    worker.request_stop()
    release.touch()
    background[0].join(timeout=10)
    assert result["code"] == EXIT_OK
    assert row(queue, task_id).status is TaskStatus.COMPLETE
    assert row(queue, later).status is TaskStatus.QUEUED


def test_stop_releases_a_task_that_outlives_the_grace_period(
    queue: InMemoryQueue, tmp_path: Path, background: list[threading.Thread]
) -> None:
    started = tmp_path / "started"
    task_id = submit(queue, "wait", {"started_file": str(started)})
    worker = make_worker(queue, tmp_path, shutdown_grace_s=0.1, drain=False)
    result = start(worker, background)
    wait_for(started.exists, what="task start")
    worker.request_stop()
    background[0].join(timeout=10)
    assert result["code"] == EXIT_OK
    released = row(queue, task_id)
    assert released.status is TaskStatus.QUEUED and released.attempts == 1 and released.worker_id is None
    assert "worker shut down" in (released.error_message or "")


def test_second_stop_request_cancels_at_once(
    queue: InMemoryQueue, tmp_path: Path, background: list[threading.Thread]
) -> None:
    started = tmp_path / "started"
    task_id = submit(queue, "wait", {"started_file": str(started)})
    worker = make_worker(queue, tmp_path, shutdown_grace_s=3600, drain=False)
    start(worker, background)
    wait_for(started.exists, what="task start")
    worker.request_stop()
    worker.request_stop()
    background[0].join(timeout=10)
    assert row(queue, task_id).status is TaskStatus.QUEUED


def test_heartbeat_keeps_a_long_task_claimed(tmp_path: Path) -> None:
    """The lease is far shorter than the task; only the heartbeat thread keeps it alive while the
    main thread is blocked in GIL-releasing code that never checks anything."""
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"), lease_s=0.3)
    release, started = tmp_path / "release", tmp_path / "started"
    task_id = submit(
        queue, "wait", {"until_file": str(release), "started_file": str(started), "ignore_cancel": True}
    )
    worker = make_worker(queue, tmp_path, heartbeat_s=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_for(started.exists, what="task start")
    wait_for(lambda: worker.heartbeat.beats >= 20, what="20 heartbeats (6+ lease lengths)")
    assert queue.claim("intruder") is None  # would sweep the task if its lease had lapsed
    release.touch()
    thread.join(timeout=10)
    done = row(queue, task_id)
    assert done.status is TaskStatus.COMPLETE and done.attempts == 0


def test_worker_fatal_error_releases_the_task_and_stops_non_zero(
    queue: InMemoryQueue, tmp_path: Path
) -> None:
    doomed = submit(queue, "fatal")
    untouched = submit(queue, "echo", {"message": "for a healthy worker"})
    assert make_worker(queue, tmp_path).run() == EXIT_FATAL
    released = row(queue, doomed)
    assert released.status is TaskStatus.QUEUED and released.attempts == 1
    assert "illegal memory access" in (released.error_message or "")
    assert row(queue, untouched).status is TaskStatus.QUEUED


def test_idle_polling_backs_off_to_its_bound() -> None:
    delays = [0.5]
    for _ in range(6):
        delays.append(next_idle_delay(delays[-1], 10.0))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
