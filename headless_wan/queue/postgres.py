"""PostgreSQL queue: many machines, one database (fleet mode).

Same rules as the SQLite queue (`semantics`), with row locks instead of SQLite's single write
lock: the claim takes the oldest claimable row with `FOR UPDATE SKIP LOCKED`, so concurrent
workers never wait on (or take) the same row; expired leases are swept on every claim with
`SKIP LOCKED` too, so two sweepers never requeue the same task; a parent is locked before its
children are read, so two children finishing at once cannot both miss settling it. Idle workers
block in `wait_for_work`, woken by LISTEN/NOTIFY (`postgres_notify`), with polling as the fallback.
All times come from the injected clock, as on SQLite.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, Task, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat
from headless_wan.errors import ClaimLost, ConfigError, QueueUnavailable
from headless_wan.queue import semantics
from headless_wan.queue.postgres_notify import WorkListener
from headless_wan.queue.postgres_rows import Row, as_str, as_uuid, require_uuid, to_task, utc
from headless_wan.queue.postgres_schema import Q, migrate, pending, set_search_path
from headless_wan.queue.sql_files import Migration
from headless_wan.storage.base import Storage, publish_result

Db = psycopg.Connection[Row]


class PostgresQueue:
    def __init__(
        self,
        dsn: str,
        storage: Storage | None = None,
        *,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = semantics.utc_now,
        notify: bool = True,
        schema: str | None = None,
        pool_min: int = 1,
        pool_max: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._dsn = dsn  # secret: never logged, never in a message
        self._storage = storage
        self._lease = timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._clock = clock
        self._notify = notify
        self._schema = schema
        self._pool_size = (pool_min, max(pool_min, pool_max))
        self._timeout_s = connect_timeout_s
        self._pool: ConnectionPool[Db] | None = None
        self._listener: WorkListener | None = None
        self._payload = ""
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> list[Migration]:
        """Create or upgrade the schema; returns the migrations applied now (none when current)."""
        try:
            with self._connect() as conn:
                return migrate(conn, self._schema)
        except psycopg.OperationalError as exc:
            raise QueueUnavailable(f"Cannot reach the PostgreSQL queue: {_describe(exc)}") from exc

    def open(self) -> None:
        with self._lock:
            if self._pool is not None:
                return
            pool: ConnectionPool[Db] = ConnectionPool(
                self._dsn,
                min_size=self._pool_size[0],
                max_size=self._pool_size[1],
                kwargs={
                    "autocommit": True,
                    "row_factory": dict_row,
                    "connect_timeout": self._connect_timeout,
                },
                configure=lambda conn: set_search_path(conn, self._schema),
                open=False,
                name="headless_wan",
                timeout=self._timeout_s,
                num_workers=1,
            )
            try:
                pool.open(wait=True, timeout=self._timeout_s)
                with pool.connection() as conn:
                    missing = pending(conn)
                    self._payload = conn.execute(Q["current_schema"]).fetchone()["name"]  # type: ignore[index]
            except psycopg.Error as exc:
                pool.close()
                raise QueueUnavailable(f"Cannot reach the PostgreSQL queue: {_describe(exc)}") from exc
            if missing:
                pool.close()
                names = ", ".join(f"{m.version:03d}_{m.name}" for m in missing)
                raise ConfigError(
                    f"The PostgreSQL queue schema is not up to date (missing {names}); "
                    "run `python -m headless_wan migrate` once."
                )
            self._pool = pool

    def close(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> PostgresQueue:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_work(self, timeout_s: float, wake: threading.Event | None = None) -> bool:
        """Block until a task may have become claimable (True), or `wake` is set or the timeout
        passes (False). The queue itself sets `wake` when work arrives, so pass an event kept for
        this alone (the worker loop's `_wake`, which its stop request also sets), never a stop
        event. Without LISTEN/NOTIFY this is a plain interruptible wait."""
        listener = self._ensure_listener() if self._notify else None
        if listener is None:  # never raises: the worker loop's idle wait must not crash it
            (wake or threading.Event()).wait(timeout_s)
            return False
        return listener.wait(timeout_s, wake)

    # --- workers ---------------------------------------------------------------------------

    def worker_alive(self, beat: WorkerBeat) -> None:
        metadata = {"vram_total_mb": beat.vram_total_mb, "vram_used_mb": beat.vram_used_mb}
        with self._tx() as db:
            db.execute(
                Q["worker_alive"],
                {
                    "id": beat.worker_id,
                    "status": beat.status.value,
                    "now": self._clock(),
                    "current_task": as_uuid(beat.current_task_id),
                    "metadata": Jsonb(metadata),
                },
            )

    def set_model(self, worker_id: str, model: str) -> None:
        with self._tx() as db:
            db.execute(Q["set_model"], {"id": worker_id, "model": model, "now": self._clock()})

    def recover(self, worker_id: str) -> list[str]:
        with self._tx() as db:
            rows = db.execute(Q["held_by"], {"worker_id": worker_id}).fetchall()
            for row in rows:
                self._requeue(db, row, f"worker {worker_id} restarted while running it")
        return [str(row["id"]) for row in rows]

    # --- producer side ---------------------------------------------------------------------

    def enqueue(self, task: NewTask) -> str:
        args = {
            "id": require_uuid(task.id, "task id"),
            "task_type": task.task_type,
            "params": Jsonb(dict(task.params)),
            "dependant_on": [require_uuid(d, "dependant_on entry") for d in task.dependant_on] or None,
            "project_id": task.project_id,
            "parent_id": require_uuid(task.parent_id, "parent_id") if task.parent_id else None,
            "now": self._clock(),
        }
        with self._tx() as db:
            db.execute(Q["insert"], args)
        return task.id

    def cancel(self, task_id: str) -> bool:
        if as_uuid(task_id) is None:
            return False
        with self._tx() as db:
            row = db.execute(Q["get_for_update"], {"id": task_id}).fetchone()
            if row is None or TaskStatus(row["status"]).is_terminal:
                return False
            self._settle(db, task_id, TaskStatus.CANCELLED, None, "Cancelled by user.")
            return True

    # --- worker side -----------------------------------------------------------------------

    def claim(self, worker_id: str, task_types: Collection[str] | None = None) -> ClaimedTask | None:
        if self._listener is not None:
            self._listener.consume()
        token = uuid.uuid4().hex
        with self._tx() as db:
            self._sweep_expired(db)
            now = self._clock()
            row = db.execute(
                Q["claim"],
                {
                    "worker_id": worker_id,
                    "token": token,
                    "lease": now + self._lease,
                    "now": now,
                    "types": sorted(task_types) if task_types is not None else None,
                },
            ).fetchone()
        if row is None:
            return None
        return ClaimedTask(to_task(row), token, utc(row["lease_expires_at"]))

    def heartbeat(self, claim: ClaimedTask) -> TaskStatus | None:
        lease = self._clock() + self._lease
        with self._tx() as db:
            row = db.execute(
                Q["heartbeat"], {"id": claim.id, "token": claim.claim_token, "lease": lease}
            ).fetchone()
        return TaskStatus(row["status"]) if row else None

    def mark_started(self, claim: ClaimedTask) -> None:
        with self._tx() as db:
            db.execute(Q["mark_started"], {"id": claim.id, "token": claim.claim_token, "now": self._clock()})

    def complete(self, claim: ClaimedTask, result: TaskResult) -> Task:
        if self.heartbeat(claim) is None:
            raise _claim_lost(claim)
        # Files first: a crash between the two steps leaves a stored object and a task that will be
        # re-run and overwrite it (deterministic keys), never a Complete task without its output.
        location = publish_result(self._require_storage(result), claim.id, result.output, result.thumbnail)
        with self._tx() as db:
            row = self._finish_claimed(
                db, claim, TaskStatus.COMPLETE, output_location=location or result.message
            )
            return to_task(row)

    def mark_waiting(self, claim: ClaimedTask, message: str) -> None:
        with self._tx() as db:
            row = db.execute(
                Q["wait_for_children"],
                {"id": claim.id, "token": claim.claim_token, "message": message, "now": self._clock()},
            ).fetchone()
            if row is None:
                raise _claim_lost(claim)
            self._settle_parent(db, claim.id)

    def fail(self, claim: ClaimedTask, message: str) -> None:
        with self._tx() as db:
            self._finish_claimed(db, claim, TaskStatus.FAILED, error_message=message)

    def release(self, claim: ClaimedTask, reason: str) -> None:
        with self._tx() as db:
            row = db.execute(Q["get_for_update"], {"id": claim.id}).fetchone()
            if row is None or row["claim_token"] != claim.claim_token or row["status"] != "In Progress":
                raise _claim_lost(claim)
            self._requeue(db, row, reason)

    # --- reads -----------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        if as_uuid(task_id) is None:
            return None
        rows = self._read(Q["get"], {"id": task_id})
        return to_task(rows[0]) if rows else None

    def list_tasks(self, status: TaskStatus | None = None, limit: int = 100) -> list[Task]:
        if status is None:
            return [to_task(r) for r in self._read(Q["list_all"], {"limit": limit})]
        return [to_task(r) for r in self._read(Q["list_by_status"], {"status": status.value, "limit": limit})]

    def children(self, parent_id: str) -> list[Task]:
        if as_uuid(parent_id) is None:
            return []
        return [to_task(r) for r in self._read(Q["children"], {"parent_id": parent_id})]

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        rows = self._read(
            Q["completed_segments"], {"run_id": run_id, "task_type": semantics.SEGMENT_TASK_TYPE}
        )
        return semantics.completed_segments([to_task(r) for r in rows], run_id, project_id)

    # --- internals -------------------------------------------------------------------------

    @property
    def _connect_timeout(self) -> int:
        return max(1, round(self._timeout_s))

    def _connect(self) -> psycopg.Connection[Row]:
        """A connection outside the pool (migrations, LISTEN), in autocommit mode."""
        return psycopg.connect(
            self._dsn, autocommit=True, row_factory=dict_row, connect_timeout=self._connect_timeout
        )

    def _ensure_listener(self) -> WorkListener | None:
        with self._lock:
            if self._listener is None and self._pool is not None:  # closed: plain waits
                self._listener = WorkListener(self._connect, self._payload)
                self._listener.start()
            return self._listener

    @contextmanager
    def _tx(self) -> Iterator[Db]:
        if self._pool is None:
            self.open()
        assert self._pool is not None
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:  # lost connection, pool timeout, deadlock: retry later
            raise QueueUnavailable(f"PostgreSQL queue is unavailable: {_describe(exc)}") from exc

    def _read(self, query: str, args: dict[str, Any]) -> list[Row]:
        with self._tx() as db:
            return db.execute(query, args).fetchall()

    def _require_storage(self, result: TaskResult) -> Storage:
        if self._storage is None and (result.output or result.thumbnail):
            raise RuntimeError("PostgresQueue needs a storage to publish output files")
        return self._storage  # type: ignore[return-value]

    def _finish_claimed(
        self,
        db: Db,
        claim: ClaimedTask,
        status: TaskStatus,
        *,
        output_location: str | None = None,
        error_message: str | None = None,
    ) -> Row:
        now = self._clock()
        row = db.execute(
            Q["finish_claimed"],
            {
                "id": claim.id,
                "token": claim.claim_token,
                "status": status.value,
                "output_location": output_location,
                "error_message": error_message,
                "processed_at": now if status is TaskStatus.COMPLETE else None,
                "now": now,
            },
        ).fetchone()
        if row is None:
            raise _claim_lost(claim)
        self._after_terminal(db, str(row["id"]), status, as_str(row["parent_id"]))
        return row

    def _settle(
        self, db: Db, task_id: str, status: TaskStatus, output_location: str | None, error_message: str | None
    ) -> None:
        now = self._clock()
        db.execute(
            Q["settle"],
            {
                "id": task_id,
                "status": status.value,
                "output_location": output_location,
                "error_message": error_message,
                "processed_at": now if status is TaskStatus.COMPLETE else None,
                "now": now,
            },
        )
        parent = db.execute(Q["parent_of"], {"id": task_id}).fetchone()
        self._after_terminal(db, task_id, status, as_str(parent["parent_id"]) if parent else None)

    def _after_terminal(self, db: Db, task_id: str, status: TaskStatus, parent_id: str | None) -> None:
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            db.execute(
                Q["cancel_queued_children"],
                {
                    "parent_id": task_id,
                    "message": semantics.sibling_cancel_message(task_id),
                    "now": self._clock(),
                },
            )
        if parent_id:
            self._settle_parent(db, parent_id)

    def _settle_parent(self, db: Db, parent_id: str) -> None:
        parent = db.execute(Q["get_for_update"], {"id": parent_id}).fetchone()
        # Only a parent that handed its work to children (no claim token) is settled by them.
        if parent is None or parent["status"] != "In Progress" or parent["claim_token"] is not None:
            return
        children = [to_task(r) for r in db.execute(Q["children"], {"parent_id": parent_id}).fetchall()]
        outcome = semantics.parent_outcome(children)
        if outcome.status is not TaskStatus.IN_PROGRESS:
            self._settle(db, parent_id, outcome.status, outcome.output_location, outcome.message)

    def _requeue(self, db: Db, row: Row, cause: str) -> None:
        outcome = semantics.requeue_outcome(row["attempts"], self._max_attempts, cause)
        db.execute(
            Q["requeue"],
            {
                "id": row["id"],
                "token": row["claim_token"],
                "status": outcome.status.value,
                "attempts": outcome.attempts,
                "error_message": outcome.message,
                "now": self._clock(),
            },
        )
        if outcome.status is TaskStatus.FAILED:
            self._after_terminal(db, str(row["id"]), outcome.status, as_str(row["parent_id"]))

    def _sweep_expired(self, db: Db) -> None:
        for row in db.execute(Q["expired"], {"now": self._clock()}).fetchall():
            self._requeue(db, row, semantics.expiry_cause(row["worker_id"]))


def _describe(exc: BaseException) -> str:
    # The first line only: the driver's message names host and port, never the password.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _claim_lost(claim: ClaimedTask) -> ClaimLost:
    return ClaimLost(f"Task {claim.id} is no longer held by this worker (lease expired or task finished).")
