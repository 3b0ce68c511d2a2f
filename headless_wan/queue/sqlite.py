"""Embedded SQLite queue: the zero-config default.

One file, WAL mode, many worker processes. Every write runs inside `BEGIN IMMEDIATE`, which takes
the database's single write lock up front, so the claim's `UPDATE ... RETURNING` is atomic across
processes. Expired leases are swept back to the queue on every claim.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, Task, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat
from headless_wan.errors import ClaimLost, QueueUnavailable
from headless_wan.queue import semantics
from headless_wan.queue.sql_files import load_queries
from headless_wan.storage.base import Storage, publish_result

Q = load_queries("sqlite.sql")
SCHEMA_VERSION = 2  # 2: workers table


class SqliteQueue:
    def __init__(
        self,
        path: Path,
        storage: Storage | None = None,
        *,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], datetime] = semantics.utc_now,
    ) -> None:
        self.path = Path(path)
        self._storage = storage
        self._lease = timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._busy_timeout_s = busy_timeout_s
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from one thread at a time

    # --- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise QueueUnavailable(f"Cannot open the SQLite queue at {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self._conn = conn
        with self._tx() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in _statements(Q["schema"]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SqliteQueue:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- workers ---------------------------------------------------------------------------

    def worker_alive(self, beat: WorkerBeat) -> None:
        metadata = json.dumps({"vram_total_mb": beat.vram_total_mb, "vram_used_mb": beat.vram_used_mb})
        with self._tx() as db:
            db.execute(
                Q["worker_alive"],
                {
                    "id": beat.worker_id,
                    "status": beat.status.value,
                    "now": self._now(),
                    "current_task": beat.current_task_id,
                    "metadata": metadata,
                },
            )

    def set_model(self, worker_id: str, model: str) -> None:
        with self._tx() as db:
            db.execute(Q["set_model"], {"id": worker_id, "model": model, "now": self._now()})

    def recover(self, worker_id: str) -> list[str]:
        with self._tx() as db:
            rows = db.execute(Q["held_by"], {"worker_id": worker_id}).fetchall()
            for row in rows:
                self._requeue(db, row, f"worker {worker_id} restarted while running it")
        return [row["id"] for row in rows]

    # --- producer side ---------------------------------------------------------------------

    def enqueue(self, task: NewTask) -> str:
        with self._tx() as db:
            db.execute(
                Q["insert"],
                {
                    "id": task.id,
                    "task_type": task.task_type,
                    "params": json.dumps(dict(task.params)),
                    "dependant_on": json.dumps(list(task.dependant_on)) if task.dependant_on else None,
                    "project_id": task.project_id,
                    "parent_id": task.parent_id,
                    "now": self._now(),
                },
            )
        return task.id

    def cancel(self, task_id: str) -> bool:
        with self._tx() as db:
            row = db.execute(Q["get"], {"id": task_id}).fetchone()
            if row is None or TaskStatus(row["status"]).is_terminal:
                return False
            self._settle(db, task_id, TaskStatus.CANCELLED, None, "Cancelled by user.")
            return True

    # --- worker side -----------------------------------------------------------------------

    def claim(self, worker_id: str, task_types: Collection[str] | None = None) -> ClaimedTask | None:
        token = uuid.uuid4().hex
        with self._tx() as db:
            self._sweep_expired(db)
            now = self._clock()
            row = db.execute(
                Q["claim"],
                {
                    "worker_id": worker_id,
                    "token": token,
                    "lease": semantics.format_time(now + self._lease),
                    "now": semantics.format_time(now),
                    "types": json.dumps(sorted(task_types)) if task_types is not None else None,
                },
            ).fetchone()
        if row is None:
            return None
        return ClaimedTask(_to_task(row), token, semantics.parse_time(row["lease_expires_at"]))

    def heartbeat(self, claim: ClaimedTask) -> TaskStatus | None:
        lease = semantics.format_time(self._clock() + self._lease)
        with self._tx() as db:
            row = db.execute(
                Q["heartbeat"], {"id": claim.id, "token": claim.claim_token, "lease": lease}
            ).fetchone()
        return TaskStatus(row["status"]) if row else None

    def mark_started(self, claim: ClaimedTask) -> None:
        with self._tx() as db:
            db.execute(Q["mark_started"], {"id": claim.id, "token": claim.claim_token, "now": self._now()})

    def complete(self, claim: ClaimedTask, result: TaskResult) -> Task:
        self._require_held(claim)
        # Files first: a crash between the two steps leaves a stored file and a task that will be
        # re-run and overwrite it (deterministic keys), never a Complete task without its output.
        location = publish_result(self._require_storage(result), claim.id, result.output, result.thumbnail)
        with self._tx() as db:
            row = self._finish_claimed(
                db, claim, TaskStatus.COMPLETE, output_location=location or result.message
            )
            return _to_task(row)

    def mark_waiting(self, claim: ClaimedTask, message: str) -> None:
        with self._tx() as db:
            row = db.execute(
                Q["wait_for_children"],
                {"id": claim.id, "token": claim.claim_token, "message": message, "now": self._now()},
            ).fetchone()
            if row is None:
                raise _claim_lost(claim)
            self._settle_parent(db, claim.id)

    def fail(self, claim: ClaimedTask, message: str) -> None:
        with self._tx() as db:
            self._finish_claimed(db, claim, TaskStatus.FAILED, error_message=message)

    def release(self, claim: ClaimedTask, reason: str) -> None:
        with self._tx() as db:
            row = db.execute(Q["get"], {"id": claim.id}).fetchone()
            if row is None or row["claim_token"] != claim.claim_token or row["status"] != "In Progress":
                raise _claim_lost(claim)
            self._requeue(db, row, reason)

    # --- reads -----------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        row = self._read(Q["get"], {"id": task_id})
        return _to_task(row[0]) if row else None

    def list_tasks(self, status: TaskStatus | None = None, limit: int = 100) -> list[Task]:
        if status is None:
            return [_to_task(r) for r in self._read(Q["list_all"], {"limit": limit})]
        return [
            _to_task(r) for r in self._read(Q["list_by_status"], {"status": status.value, "limit": limit})
        ]

    def children(self, parent_id: str) -> list[Task]:
        return [_to_task(r) for r in self._read(Q["children"], {"parent_id": parent_id})]

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        rows = self._read(
            Q["completed_segments"], {"run_id": run_id, "task_type": semantics.SEGMENT_TASK_TYPE}
        )
        return semantics.completed_segments([_to_task(r) for r in rows], run_id, project_id)

    # --- internals -------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise QueueUnavailable(f"SQLite queue {self.path} is unavailable: {exc}") from exc
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: dict[str, Any]) -> list[sqlite3.Row]:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        with self._lock:  # autocommit: a plain read needs no write lock
            return self._conn.execute(sql, args).fetchall()

    def _now(self) -> str:
        return semantics.format_time(self._clock())

    def _require_storage(self, result: TaskResult) -> Storage:
        if self._storage is None and (result.output or result.thumbnail):
            raise RuntimeError("SqliteQueue needs a storage to publish output files")
        return self._storage  # type: ignore[return-value]

    def _require_held(self, claim: ClaimedTask) -> None:
        if self.heartbeat(claim) is None:
            raise _claim_lost(claim)

    def _finish_claimed(
        self,
        db: sqlite3.Connection,
        claim: ClaimedTask,
        status: TaskStatus,
        *,
        output_location: str | None = None,
        error_message: str | None = None,
    ) -> sqlite3.Row:
        now = self._now()
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
        self._after_terminal(db, row["id"], status)
        return row

    def _settle(
        self,
        db: sqlite3.Connection,
        task_id: str,
        status: TaskStatus,
        output_location: str | None,
        error_message: str | None,
    ) -> None:
        now = self._now()
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
        self._after_terminal(db, task_id, status)

    def _after_terminal(self, db: sqlite3.Connection, task_id: str, status: TaskStatus) -> None:
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            db.execute(
                Q["cancel_queued_children"],
                {
                    "parent_id": task_id,
                    "message": semantics.sibling_cancel_message(task_id),
                    "now": self._now(),
                },
            )
        parent = db.execute("SELECT parent_id FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if parent is not None and parent["parent_id"]:
            self._settle_parent(db, parent["parent_id"])

    def _settle_parent(self, db: sqlite3.Connection, parent_id: str) -> None:
        parent = db.execute(Q["get"], {"id": parent_id}).fetchone()
        # Only a parent that handed its work to children (no claim token) is settled by them.
        if parent is None or parent["status"] != "In Progress" or parent["claim_token"] is not None:
            return
        children = [_to_task(r) for r in db.execute(Q["children"], {"parent_id": parent_id})]
        outcome = semantics.parent_outcome(children)
        if outcome.status is not TaskStatus.IN_PROGRESS:
            self._settle(db, parent_id, outcome.status, outcome.output_location, outcome.message)

    def _requeue(self, db: sqlite3.Connection, row: sqlite3.Row, cause: str) -> None:
        outcome = semantics.requeue_outcome(row["attempts"], self._max_attempts, cause)
        db.execute(
            Q["requeue"],
            {
                "id": row["id"],
                "token": row["claim_token"],
                "status": outcome.status.value,
                "attempts": outcome.attempts,
                "error_message": outcome.message,
                "now": self._now(),
            },
        )
        if outcome.status is TaskStatus.FAILED:
            self._after_terminal(db, row["id"], outcome.status)

    def _sweep_expired(self, db: sqlite3.Connection) -> None:
        for row in db.execute(Q["expired"], {"now": self._now()}).fetchall():
            self._requeue(db, row, semantics.expiry_cause(row["worker_id"]))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _claim_lost(claim: ClaimedTask) -> ClaimLost:
    return ClaimLost(f"Task {claim.id} is no longer held by this worker (lease expired or task finished).")


def _to_task(row: sqlite3.Row) -> Task:
    params: dict[str, Any] = {}
    params_error = None
    try:
        loaded = json.loads(row["params"])
        if isinstance(loaded, dict):
            params = loaded
        else:
            params_error = f"task params must be a JSON object, got {type(loaded).__name__}"
    except (TypeError, ValueError) as exc:
        params_error = f"task params are not valid JSON ({exc})"
    return Task(
        id=row["id"],
        task_type=row["task_type"],
        params=params,
        status=TaskStatus(row["status"]),
        dependant_on=tuple(json.loads(row["dependant_on"] or "[]")),
        project_id=row["project_id"],
        worker_id=row["worker_id"],
        output_location=row["output_location"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        created_at=semantics.parse_time(row["created_at"]),
        updated_at=semantics.parse_time(row["updated_at"]),
        generation_started_at=semantics.parse_time(row["generation_started_at"]),
        generation_processed_at=semantics.parse_time(row["generation_processed_at"]),
        parent_id=row["parent_id"],
        params_error=params_error,
    )
