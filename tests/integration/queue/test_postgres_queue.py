"""PostgreSQL-only behaviour: migrations, SKIP LOCKED under real concurrency, LISTEN/NOTIFY wake-ups.

The protocol itself is covered for every backend by tests/contract. Each test here gets its own
schema on the server named by HW_TEST_DATABASE_URL and is skipped, with the reason, without one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from headless_wan.config import Settings
from headless_wan.domain.tasks import NewTask, TaskResult, TaskStatus
from headless_wan.errors import ConfigError, InvalidTaskParams
from headless_wan.queue.postgres import PostgresQueue
from headless_wan.queue.postgres_schema import MIGRATIONS
from headless_wan.storage.local import LocalStorage
from headless_wan.wiring import build_worker
from headless_wan.worker.dispatch import HandlerRegistry
from tests.fixtures.handlers import all_handlers
from tests.helpers import wait_for
from tests.postgres_support import TEST_DSN, fresh_schema


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema() as name:
        yield name


def make_queue(schema: str, tmp_path: Path, *, migrate: bool = True, **kwargs: object) -> PostgresQueue:
    q = PostgresQueue(TEST_DSN, LocalStorage(tmp_path / "out"), schema=schema, **kwargs)  # type: ignore[arg-type]
    if migrate:
        q.migrate()
    q.open()
    return q


@pytest.fixture
def queue(schema: str, tmp_path: Path) -> Iterator[PostgresQueue]:
    q = make_queue(schema, tmp_path)
    yield q
    q.close()


# --- migrations ------------------------------------------------------------------------------


def test_migrate_applies_each_migration_once_even_when_run_concurrently(schema: str, tmp_path: Path) -> None:
    fresh = PostgresQueue(TEST_DSN, schema=schema)
    with pytest.raises(ConfigError, match="python -m headless_wan migrate"):
        fresh.open()  # workers refuse an unmigrated schema instead of creating tables behind your back
    with ThreadPoolExecutor(4) as pool:  # four machines starting at once
        results = list(pool.map(lambda _: PostgresQueue(TEST_DSN, schema=schema).migrate(), range(4)))
    applied = [m.version for result in results for m in result]
    assert sorted(applied) == [m.version for m in MIGRATIONS]
    assert PostgresQueue(TEST_DSN, schema=schema).migrate() == []
    with psycopg.connect(TEST_DSN) as conn:
        rows = conn.execute(f'SELECT version FROM "{schema}".hw_schema_migrations ORDER BY 1').fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    make_queue(schema, tmp_path, migrate=False).close()  # now it opens


def test_ids_must_be_uuids_like_reighs(queue: PostgresQueue) -> None:
    with pytest.raises(InvalidTaskParams, match="not a uuid"):
        queue.enqueue(NewTask("echo", {"message": "x"}, id="task-1"))
    with pytest.raises(InvalidTaskParams, match="dependant_on"):
        queue.enqueue(NewTask("echo", {"message": "x"}, dependant_on=("nope",)))
    assert queue.get("task-1") is None and queue.children("task-1") == [] and queue.cancel("task-1") is False


# --- concurrency -----------------------------------------------------------------------------


def test_claim_skips_a_row_locked_by_another_transaction(queue: PostgresQueue, schema: str) -> None:
    first = queue.enqueue(NewTask("echo", {"message": "first"}))
    second = queue.enqueue(NewTask("echo", {"message": "second"}))
    with psycopg.connect(TEST_DSN) as other:  # someone else is in the middle of taking `first`
        other.execute(f'SELECT 1 FROM "{schema}".tasks WHERE id = %s FOR UPDATE', (first,))
        with ThreadPoolExecutor(1) as pool:
            claim = pool.submit(queue.claim, "w1").result(timeout=5)  # without SKIP LOCKED: blocks
        assert claim is not None and claim.id == second
    assert queue.claim("w2").id == first  # type: ignore[union-attr]


def test_many_threads_claim_every_task_exactly_once(
    schema: str, tmp_path: Path, queue: PostgresQueue
) -> None:
    ids = [queue.enqueue(NewTask("echo", {"message": str(n)})) for n in range(120)]
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(n: int) -> None:
        q = make_queue(schema, tmp_path, migrate=False)
        try:
            while (claim := q.claim(f"w{n}")) is not None:
                with lock:
                    claimed.append(claim.id)
                q.complete(claim, TaskResult(message="ok"))
        finally:
            q.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(drain, range(8)))
    counts = Counter(claimed)
    assert set(counts) == set(ids) and max(counts.values()) == 1
    assert all(t.status is TaskStatus.COMPLETE for t in queue.list_tasks(limit=200))


def test_children_finishing_at_once_still_settle_their_parent(
    schema: str, tmp_path: Path, queue: PostgresQueue
) -> None:
    # Each child's transaction alone sees its sibling unfinished; locking the parent first makes
    # the second one to commit see both. A slow trigger holds both transactions open together.
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        conn.execute(SLOW_CHILD_COMPLETION.replace("{schema}", schema))
    queue.enqueue(NewTask("spawn", {}))
    parent = queue.claim("w0")
    assert parent is not None
    for n in range(2):
        queue.enqueue(NewTask("echo", {"message": str(n)}, parent_id=parent.id))
    queue.mark_waiting(parent, "waiting")
    claims = [queue.claim(f"w{n}") for n in range(2)]
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda claim: _finish_together(queue, claim, barrier), claims))
    assert [c.status for c in queue.children(parent.id)] == [TaskStatus.COMPLETE] * 2
    assert queue.get(parent.id).status is TaskStatus.COMPLETE  # type: ignore[union-attr]


SLOW_CHILD_COMPLETION = """
CREATE FUNCTION "{schema}".slow_down() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
CREATE TRIGGER slow_child_completion AFTER UPDATE OF status ON "{schema}".tasks
FOR EACH ROW WHEN (NEW.status = 'Complete' AND NEW.parent_id IS NOT NULL)
EXECUTE FUNCTION "{schema}".slow_down();
"""


def _finish_together(q: PostgresQueue, claim: object, barrier: threading.Barrier) -> None:
    barrier.wait()
    q.complete(claim, TaskResult(message="done"))  # type: ignore[arg-type]


# --- LISTEN/NOTIFY ---------------------------------------------------------------------------


def _settle_listener(q: PostgresQueue) -> None:
    """Start the listener and swallow its start-up wake-up (it looks once for missed work)."""
    wait_for(lambda: q.wait_for_work(0.2), timeout_s=10, what="the listener to start")
    q.claim("nobody", frozenset({"no-such-type"}))  # a claim forgets earlier notifications


def test_an_idle_waiter_wakes_within_a_fraction_of_a_second(
    schema: str, tmp_path: Path, queue: PostgresQueue
) -> None:
    _settle_listener(queue)
    assert queue.wait_for_work(0.3) is False  # no work, no wake-up: it times out
    producer = make_queue(schema, tmp_path, migrate=False)
    woke: dict[str, float] = {}

    def waiter() -> None:
        if queue.wait_for_work(20):
            woke["at"] = time.monotonic()

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_for(lambda: queue._listener and queue._listener._waiters, what="the waiter to block")  # type: ignore[union-attr]
    sent = time.monotonic()
    producer.enqueue(NewTask("echo", {"message": "wake up"}))
    thread.join(timeout=20)
    producer.close()
    assert "at" in woke, "the waiter was not woken by the notification"
    assert woke["at"] - sent < 1.0


def test_requeue_and_completed_dependencies_also_wake_waiters(queue: PostgresQueue) -> None:
    first = queue.enqueue(NewTask("echo", {"message": "a"}))
    queue.enqueue(NewTask("echo", {"message": "b"}, dependant_on=(first,)))
    _settle_listener(queue)
    claim = queue.claim("w1")
    assert claim is not None
    queue.release(claim, "worker shut down")
    assert queue.wait_for_work(10) is True
    claim = queue.claim("w1")
    assert queue.wait_for_work(0.3) is False  # claiming (Queued → In Progress) wakes nobody
    queue.complete(claim, TaskResult(message="done"))  # type: ignore[arg-type]
    assert queue.wait_for_work(10) is True


def test_a_wake_event_ends_the_wait_without_claiming_work(queue: PostgresQueue) -> None:
    _settle_listener(queue)
    wake = threading.Event()
    threading.Timer(0.1, wake.set).start()
    started = time.monotonic()
    assert queue.wait_for_work(20, wake) is False
    assert time.monotonic() - started < 5


def test_idle_worker_picks_up_new_work_fast_and_stops_at_once(
    schema: str, tmp_path: Path, queue: PostgresQueue
) -> None:
    # Polling every 30 s: only the notification can make this fast.
    settings = Settings(
        worker_id="pg-worker",
        poll_min_s=30,
        poll_max_s=30,
        work_dir=tmp_path / "work",
        heartbeat_interval_s=5,
    )
    hb_queue = make_queue(schema, tmp_path, migrate=False)
    worker = build_worker(settings, queue, hb_queue, HandlerRegistry(all_handlers()), drain=False)  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_for(
        lambda: queue._listener is not None and queue._listener._waiters,
        timeout_s=10,
        what="the worker to go idle",
    )
    task_id = queue.enqueue(NewTask("echo", {"message": "hello"}))
    done = wait_for(
        lambda: (t := queue.get(task_id)) is not None and t.status is TaskStatus.COMPLETE,
        timeout_s=5,
        what="the idle worker to run the new task",
    )
    assert done
    stopped_at = time.monotonic()
    worker.request_stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - stopped_at < 3


# --- hostile rows ------------------------------------------------------------------------------


def test_a_row_nested_past_pythons_limit_fails_as_that_task(
    schema: str, tmp_path: Path, queue: PostgresQueue
) -> None:
    # Another producer wrote params 5000 levels deep (PostgreSQL stores them; json.loads cannot):
    # the claim must turn that into a failed task with a reason, not a crash on every claim.
    deep = queue.enqueue(NewTask("echo", {"message": "x"}))
    fine = queue.enqueue(NewTask("echo", {"message": "after"}))
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        conn.execute(
            f"UPDATE \"{schema}\".tasks SET params = (repeat('[', 5000) || repeat(']', 5000))::jsonb WHERE id = %s",
            (deep,),
        )
    settings = Settings(worker_id="pg-worker", work_dir=tmp_path / "work", poll_min_s=0.01)
    hb_queue = make_queue(schema, tmp_path, migrate=False)
    worker = build_worker(settings, queue, hb_queue, HandlerRegistry(all_handlers()), drain=True)  # type: ignore[arg-type]
    assert worker.run() == 0
    failed, done = queue.get(deep), queue.get(fine)
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert "task params are nested too deeply to decode" in (failed.error_message or "")
    assert done is not None and done.status is TaskStatus.COMPLETE
