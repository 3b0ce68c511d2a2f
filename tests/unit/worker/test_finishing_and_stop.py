"""The loop's durable finishing (manifest, time budget, deferred completion) and how it stops
(a stop during claim, SystemExit / Ctrl-C in a handler, closing what it opened)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from headless_wan.domain.tasks import ClaimedTask, TaskResult, TaskStatus
from headless_wan.errors import QueueUnavailable
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.finishing import MANIFEST, loggable, read_manifest
from headless_wan.worker.loop import EXIT_OK, Worker
from tests.helpers import wait_for
from tests.unit.worker.test_worker_loop import make_worker, row, start, submit


class FlakyQueue(InMemoryQueue):
    """An in-memory queue whose `complete` fails while `down` is set, and which counts closes."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalStorage(root / "out"), lease_s=30, max_attempts=3)
        self.down = threading.Event()
        self.completes = 0
        self.closes = 0
        self.stop_on_claim: Worker | None = None

    def complete(self, claim: ClaimedTask, result: TaskResult):  # type: ignore[no-untyped-def]
        self.completes += 1
        if self.down.is_set():
            raise QueueUnavailable("the queue is down")
        return super().complete(claim, result)

    def claim(self, worker_id, task_types=None):  # type: ignore[no-untyped-def]
        claimed = super().claim(worker_id, task_types)
        worker, self.stop_on_claim = self.stop_on_claim, None
        if claimed is not None and worker is not None:
            worker.request_stop()  # SIGTERM landing while claim() runs
        return claimed

    def close(self) -> None:
        self.closes += 1
        super().close()


@pytest.fixture
def queue(tmp_path: Path) -> FlakyQueue:
    return FlakyQueue(tmp_path)


def journal_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_result_not_recorded_within_the_budget_is_finished_after_a_restart_without_rerunning(
    queue: FlakyQueue, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    task_id = submit(queue, "echo", {"message": "precious", "journal": str(journal)})
    queue.down.set()
    assert make_worker(queue, tmp_path, finish_budget_s=0.3).run() == EXIT_OK
    assert queue.completes >= 2  # retried within the budget
    workdir = tmp_path / "work" / task_id
    kept = read_manifest(workdir, task_id)
    assert kept is not None and kept.output is not None and kept.output.read_text() == "precious"
    assert row(queue, task_id).status is TaskStatus.IN_PROGRESS

    queue.down.clear()
    assert queue.recover("w1") == [task_id]  # what the restarted worker does first
    assert make_worker(queue, tmp_path).run() == EXIT_OK
    done = row(queue, task_id)
    assert done.status is TaskStatus.COMPLETE and Path(done.output_location or "").read_text() == "precious"
    assert len(journal_lines(journal)) == 1, "the handler ran again"
    assert not workdir.exists()


def test_a_deferred_result_is_recorded_once_the_queue_is_back(
    queue: FlakyQueue, tmp_path: Path, background: list[threading.Thread]
) -> None:
    journal = tmp_path / "journal.txt"
    task_id = submit(queue, "echo", {"message": "later", "journal": str(journal)})
    queue.down.set()
    worker = make_worker(queue, tmp_path, finish_budget_s=0.2, drain=False, poll_max_s=0.05)
    start(worker, background)
    wait_for(lambda: worker.finisher.deferred, what="the completion to be deferred")
    queue.down.clear()
    wait_for(lambda: row(queue, task_id).status is TaskStatus.COMPLETE, what="the deferred completion")
    worker.request_stop()
    background[0].join(timeout=10)
    assert len(journal_lines(journal)) == 1 and not (tmp_path / "work" / task_id / MANIFEST).exists()


def test_a_stop_that_lands_during_claim_keeps_the_full_grace_period(
    queue: FlakyQueue, tmp_path: Path, background: list[threading.Thread]
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    task_id = submit(queue, "wait", {"started_file": str(started), "until_file": str(release)})
    worker = make_worker(queue, tmp_path, shutdown_grace_s=60, drain=False)
    queue.stop_on_claim = worker
    result = start(worker, background)
    wait_for(started.exists, what="task start")
    release.touch()
    background[0].join(timeout=10)
    assert result["code"] == EXIT_OK
    done = row(queue, task_id)
    assert done.status is TaskStatus.COMPLETE and done.attempts == 0  # not released after 0 s


@pytest.mark.parametrize(
    ("params", "raised"), [({"code": 3}, SystemExit), ({"interrupt": True}, KeyboardInterrupt)]
)
def test_system_exit_or_ctrl_c_in_a_handler_releases_the_task_and_stops_the_worker(
    queue: FlakyQueue, tmp_path: Path, params: dict[str, object], raised: type[BaseException]
) -> None:
    stopping = submit(queue, "exit", params)
    untouched = submit(queue, "echo", {"message": "for the next worker"})
    with pytest.raises(raised):
        make_worker(queue, tmp_path).run()
    released = row(queue, stopping)
    assert released.status is TaskStatus.QUEUED and released.attempts == 1
    assert f"worker stopped ({raised.__name__})" in (released.error_message or "")
    assert row(queue, untouched).status is TaskStatus.QUEUED
    assert queue.closes >= 1


def test_run_closes_the_queue_it_opened(queue: FlakyQueue, tmp_path: Path) -> None:
    submit(queue, "echo", {"message": "x"})
    make_worker(queue, tmp_path).run()
    assert queue.closes >= 1


def test_a_presigned_output_url_is_logged_without_its_signature() -> None:
    url = "https://bucket.s3.example/tasks/t1/out.mp4?X-Amz-Credential=AKIA123&X-Amz-Signature=abcdef"
    shown = loggable(url)
    assert shown == "https://bucket.s3.example/tasks/t1/out.mp4?…"
    assert "Signature" not in (shown or "") and "AKIA" not in (shown or "")
    assert loggable("/var/outputs/tasks/t1/out.mp4") == "/var/outputs/tasks/t1/out.mp4"
