"""One behavioural suite for the queue protocol, run against every backend we own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskResult, TaskStatus
from headless_wan.errors import ClaimLost
from headless_wan.queue.base import QueueClient
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.queue.postgres import PostgresQueue
from headless_wan.queue.sqlite import SqliteQueue
from headless_wan.storage.local import LocalStorage
from tests.helpers import FakeClock
from tests.postgres_support import TEST_DSN, fresh_schema

LEASE_S = 30.0


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueClient]:
    clock = FakeClock()
    storage = LocalStorage(tmp_path / "out")
    with ExitStack() as cleanup:
        if request.param == "memory":
            q: QueueClient = InMemoryQueue(storage, lease_s=LEASE_S, max_attempts=3, clock=clock)
        elif request.param == "sqlite":
            q = SqliteQueue(tmp_path / "q.sqlite3", storage, lease_s=LEASE_S, max_attempts=3, clock=clock)
        else:  # skipped, with the reason, where no server answers
            schema = cleanup.enter_context(fresh_schema())
            pg = PostgresQueue(TEST_DSN, storage, lease_s=LEASE_S, max_attempts=3, clock=clock, schema=schema)
            pg.migrate()
            q = pg
        q.open()
        q.clock = clock  # type: ignore[attr-defined]
        yield q
        q.close()


def _tick(queue: QueueClient, seconds: float = 1.0) -> None:
    queue.clock.advance(seconds)  # type: ignore[attr-defined]


def _enqueue(queue: QueueClient, task_type: str = "echo", **kwargs: object) -> str:
    task_id = queue.enqueue(NewTask(task_type, {"message": "hi"}, **kwargs))  # type: ignore[arg-type]
    _tick(queue)  # distinct created_at values make FIFO order observable
    return task_id


def _output(tmp_path: Path, name: str = "out.txt") -> TaskResult:
    path = tmp_path / name
    path.write_text("result")
    return TaskResult(output=path)


def test_claims_oldest_first_and_marks_in_progress(queue: QueueClient) -> None:
    first, second = _enqueue(queue), _enqueue(queue)
    claim = queue.claim("w1")
    assert claim is not None and claim.id == first
    row = queue.get(first)
    assert row is not None and row.status is TaskStatus.IN_PROGRESS and row.worker_id == "w1"
    assert row.generation_started_at is not None
    assert queue.claim("w2").id == second  # type: ignore[union-attr]
    assert queue.claim("w3") is None


def test_task_type_filter(queue: QueueClient) -> None:
    _enqueue(queue, "boom")
    echo = _enqueue(queue, "echo")
    assert queue.claim("w1", frozenset({"echo"})).id == echo  # type: ignore[union-attr]
    assert queue.claim("w1", frozenset({"echo"})) is None
    assert queue.claim("w1", frozenset()) is None


def test_dependencies_gate_claims(queue: QueueClient) -> None:
    first = _enqueue(queue)
    second = _enqueue(queue, dependant_on=(first,))
    orphan = _enqueue(queue, dependant_on=("00000000-0000-0000-0000-000000000000",))
    claim = queue.claim("w1")
    assert claim.id == first  # type: ignore[union-attr]
    assert queue.claim("w1") is None  # second waits for first; orphan waits forever
    queue.complete(claim, TaskResult(message="done"))  # type: ignore[arg-type]
    assert queue.claim("w1").id == second  # type: ignore[union-attr]
    assert queue.get(orphan).status is TaskStatus.QUEUED  # type: ignore[union-attr]


def test_complete_publishes_output_then_marks_complete(queue: QueueClient, tmp_path: Path) -> None:
    task_id = _enqueue(queue)
    claim = queue.claim("w1")
    done = queue.complete(claim, _output(tmp_path))  # type: ignore[arg-type]
    assert done.status is TaskStatus.COMPLETE and done.generation_processed_at is not None
    stored = Path(done.output_location or "")
    assert stored.read_text() == "result" and task_id in stored.parts


def test_fail_records_message(queue: QueueClient) -> None:
    task_id = _enqueue(queue)
    queue.fail(queue.claim("w1"), "Invalid params for echo: message: Field required")  # type: ignore[arg-type]
    row = queue.get(task_id)
    assert row.status is TaskStatus.FAILED  # type: ignore[union-attr]
    assert row.error_message == "Invalid params for echo: message: Field required"  # type: ignore[union-attr]


def test_release_requeues_with_attempts_until_the_cap(queue: QueueClient) -> None:
    task_id = _enqueue(queue)
    for attempt in (1, 2):
        queue.release(queue.claim("w1"), "worker shut down")  # type: ignore[arg-type]
        row = queue.get(task_id)
        assert row.status is TaskStatus.QUEUED and row.attempts == attempt and row.worker_id is None  # type: ignore[union-attr]
    queue.release(queue.claim("w1"), "worker shut down")  # type: ignore[arg-type]
    row = queue.get(task_id)
    assert row.status is TaskStatus.FAILED and row.attempts == 3  # type: ignore[union-attr]
    assert "Gave up after 3 attempt(s)" in (row.error_message or "")  # type: ignore[union-attr]


def test_expired_lease_requeues_and_fences_the_old_holder(queue: QueueClient, tmp_path: Path) -> None:
    task_id = _enqueue(queue)
    dead = queue.claim("dead-worker")
    _tick(queue, LEASE_S + 1)
    fresh = queue.claim("w2")  # the claim sweeps the expired lease first
    assert fresh is not None and fresh.id == task_id
    row = queue.get(task_id)
    assert row.attempts == 1 and row.worker_id == "w2"  # type: ignore[union-attr]
    assert "dead-worker stopped sending heartbeats" in (row.error_message or "")  # type: ignore[union-attr]
    with pytest.raises(ClaimLost):
        queue.complete(dead, _output(tmp_path))  # type: ignore[arg-type]
    assert queue.heartbeat(dead) is None  # type: ignore[arg-type]
    queue.complete(fresh, _output(tmp_path))
    assert queue.get(task_id).status is TaskStatus.COMPLETE  # type: ignore[union-attr]


def test_heartbeat_extends_the_lease(queue: QueueClient) -> None:
    task_id = _enqueue(queue)
    claim = queue.claim("w1")
    for _ in range(5):
        _tick(queue, LEASE_S * 0.8)
        assert queue.heartbeat(claim) is TaskStatus.IN_PROGRESS  # type: ignore[arg-type]
    assert queue.claim("w2") is None
    assert queue.get(task_id).worker_id == "w1"  # type: ignore[union-attr]


def test_dead_workers_task_fails_after_max_attempts(queue: QueueClient) -> None:
    task_id = _enqueue(queue)
    for _ in range(3):
        assert queue.claim("crashy") is not None
        _tick(queue, LEASE_S + 1)
    assert queue.claim("w2") is None
    row = queue.get(task_id)
    assert row.status is TaskStatus.FAILED and row.attempts == 3  # type: ignore[union-attr]
    assert "lease expired" in (row.error_message or "")  # type: ignore[union-attr]


def test_enqueue_with_existing_id_changes_nothing(queue: QueueClient) -> None:
    task = NewTask("echo", {"message": "one"})
    queue.enqueue(task)
    queue.enqueue(NewTask("echo", {"message": "two"}, id=task.id))
    assert queue.get(task.id).params == {"message": "one"}  # type: ignore[union-attr]
    assert len(queue.list_tasks()) == 1


def test_waiting_parent_completes_with_its_final_childs_output(queue: QueueClient, tmp_path: Path) -> None:
    _enqueue(queue, "spawn")
    parent = queue.claim("w1")
    a = NewTask("echo", {"message": "a"}, parent_id=parent.id)  # type: ignore[union-attr]
    b = NewTask("echo", {"message": "b"}, parent_id=parent.id, dependant_on=(a.id,))  # type: ignore[union-attr]
    queue.enqueue(a)
    queue.enqueue(b)
    queue.mark_waiting(parent, "Enqueued 2 child tasks")  # type: ignore[arg-type]
    assert queue.get(parent.id).status is TaskStatus.IN_PROGRESS  # type: ignore[union-attr]
    assert [c.id for c in queue.children(parent.id)] == [a.id, b.id]  # type: ignore[union-attr]
    queue.complete(queue.claim("w1"), _output(tmp_path, "a.txt"))  # type: ignore[arg-type]
    assert queue.get(parent.id).status is TaskStatus.IN_PROGRESS  # type: ignore[union-attr]
    last = queue.complete(queue.claim("w1"), _output(tmp_path, "b.txt"))  # type: ignore[arg-type]
    row = queue.get(parent.id)  # type: ignore[union-attr]
    assert row.status is TaskStatus.COMPLETE and row.output_location == last.output_location  # type: ignore[union-attr]


def test_failed_child_fails_parent_and_cancels_queued_siblings(queue: QueueClient) -> None:
    _enqueue(queue, "spawn")
    parent = queue.claim("w1")
    a = NewTask("echo", {"message": "a"}, parent_id=parent.id)  # type: ignore[union-attr]
    b = NewTask("echo", {"message": "b"}, parent_id=parent.id, dependant_on=(a.id,))  # type: ignore[union-attr]
    queue.enqueue(a)
    queue.enqueue(b)
    queue.mark_waiting(parent, "waiting")  # type: ignore[arg-type]
    queue.fail(queue.claim("w1"), "could not decode image")  # type: ignore[arg-type]
    row = queue.get(parent.id)  # type: ignore[union-attr]
    assert row.status is TaskStatus.FAILED and "could not decode image" in (row.error_message or "")  # type: ignore[union-attr]
    assert queue.get(b.id).status is TaskStatus.CANCELLED  # type: ignore[union-attr]


def test_user_cancel_is_visible_to_the_holder(queue: QueueClient, tmp_path: Path) -> None:
    task_id = _enqueue(queue)
    claim = queue.claim("w1")
    assert queue.cancel(task_id) is True
    assert queue.heartbeat(claim) is None  # type: ignore[arg-type]
    assert queue.get(task_id).status is TaskStatus.CANCELLED  # type: ignore[union-attr]
    with pytest.raises(ClaimLost):
        queue.complete(claim, _output(tmp_path))  # type: ignore[arg-type]
    assert queue.cancel(task_id) is False


def test_list_filters_by_status_newest_first(queue: QueueClient) -> None:
    first, second = _enqueue(queue), _enqueue(queue)
    queue.fail(queue.claim("w1"), "nope")  # type: ignore[arg-type]
    assert [t.id for t in queue.list_tasks()] == [second, first]
    assert [t.id for t in queue.list_tasks(TaskStatus.FAILED)] == [first]
    assert [t.id for t in queue.list_tasks(TaskStatus.QUEUED)] == [second]


def test_completed_segments_of_a_run_in_index_order(queue: QueueClient, tmp_path: Path) -> None:
    def segment(index: object, run: str = "run-1", project: str = "p1") -> None:
        params = {"orchestrator_run_id": run, "segment_index": index}
        queue.enqueue(NewTask("travel_segment", params, project_id=project))
        _tick(queue)

    segment(1)
    segment(0)
    segment("2")  # not a JSON integer: left out, as Reigh does
    segment(0, run="run-2")
    segment(3)  # stays queued
    for n in range(4):
        queue.complete(queue.claim("w1"), _output(tmp_path, f"s{n}.txt"))  # type: ignore[arg-type]
    rows = queue.completed_segments("run-1")
    assert [r.segment_index for r in rows] == [0, 1]
    assert all(Path(r.output_location).exists() for r in rows)
    assert queue.completed_segments("run-1", project_id="other") == []
    assert [r.segment_index for r in queue.completed_segments("run-2", project_id="p1")] == [0]


def test_recover_gives_back_only_this_workers_held_tasks(queue: QueueClient) -> None:
    mine, theirs, parent = _enqueue(queue), _enqueue(queue), _enqueue(queue, "spawn")
    queue.claim("me")
    queue.claim("them")
    waiting = queue.claim("me")
    queue.enqueue(NewTask("echo", {"message": "child"}, parent_id=parent))
    queue.mark_waiting(waiting, "waiting for children")  # type: ignore[arg-type]
    assert queue.recover("me") == [mine]
    row = queue.get(mine)
    assert row.status is TaskStatus.QUEUED and row.attempts == 1  # type: ignore[union-attr]
    assert "me restarted" in (row.error_message or "")  # type: ignore[union-attr]
    assert queue.get(theirs).status is TaskStatus.IN_PROGRESS  # type: ignore[union-attr]
    assert queue.get(parent).status is TaskStatus.IN_PROGRESS  # type: ignore[union-attr]
    assert queue.recover("me") == []


def test_parent_of_independent_children_completes_without_an_output(
    queue: QueueClient, tmp_path: Path
) -> None:
    _enqueue(queue, "spawn")
    parent = queue.claim("w1")
    for name in ("a", "b"):
        queue.enqueue(NewTask("echo", {"message": name}, parent_id=parent.id))  # type: ignore[union-attr]
    queue.mark_waiting(parent, "Enqueued 2 independent children")  # type: ignore[arg-type]
    for name in ("a", "b"):
        queue.complete(queue.claim("w1"), _output(tmp_path, f"{name}.txt"))  # type: ignore[arg-type]
    row = queue.get(parent.id)  # type: ignore[union-attr]
    assert row.status is TaskStatus.COMPLETE  # type: ignore[union-attr]
    assert row.output_location == "Enqueued 2 independent children"  # type: ignore[union-attr]
