"""The queue rules over named SQL statements, shared by the SQLite and PostgreSQL backends.

A backend supplies its connection handling (`_tx`, `_read`), its statements (the same names in
each dialect's `.sql` file) and how values cross into and out of SQL (times, JSON, ids). Everything
else, what a claim, a completion, a release or a settled parent means, is written once here, in
terms of `semantics`, so the two backends cannot drift apart.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, Task, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat
from headless_wan.errors import ClaimLost
from headless_wan.queue import semantics
from headless_wan.storage.base import Storage, publish_result

Row = Any  # sqlite3.Row or a psycopg dict row: both are read as row["column"]


class SqlQueue(ABC):
    def __init__(
        self,
        queries: Mapping[str, str],
        storage: Storage | None,
        *,
        lease_s: float,
        max_attempts: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._q = queries
        self._storage = storage
        self._lease = timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._clock = clock

    # --- what each dialect supplies ---------------------------------------------------------

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Any]:
        """A write transaction on a connection whose `execute(sql, args)` returns a cursor."""

    @abstractmethod
    def _read(self, sql: str, args: dict[str, Any]) -> list[Row]: ...

    @abstractmethod
    def _to_task(self, row: Row) -> Task: ...

    @abstractmethod
    def _time_out(self, value: Any) -> datetime | None:
        """A time column's value as an aware datetime."""

    def _time(self, moment: datetime) -> Any:
        return moment

    @abstractmethod
    def _json(self, value: Any) -> Any: ...

    @abstractmethod
    def _id_list(self, ids: Sequence[str]) -> Any: ...

    def _new_id(self, task_id: str, what: str) -> str:
        """Validate an id the caller chose (PostgreSQL insists on uuids)."""
        return task_id

    def _lookup_id(self, task_id: str | None) -> str | None:
        """The id as the database stores it, or None when it cannot name any row."""
        return task_id

    def _types(self, task_types: Collection[str] | None) -> Any:
        return sorted(task_types) if task_types is not None else None

    def _now(self) -> Any:
        return self._time(self._clock())

    # --- workers ---------------------------------------------------------------------------

    def worker_alive(self, beat: WorkerBeat) -> None:
        metadata = {"vram_total_mb": beat.vram_total_mb, "vram_used_mb": beat.vram_used_mb}
        with self._tx() as db:
            db.execute(
                self._q["worker_alive"],
                {
                    "id": beat.worker_id,
                    "status": beat.status.value,
                    "now": self._now(),
                    "current_task": self._lookup_id(beat.current_task_id),
                    "metadata": self._json(metadata),
                },
            )

    def set_model(self, worker_id: str, model: str) -> None:
        with self._tx() as db:
            db.execute(self._q["set_model"], {"id": worker_id, "model": model, "now": self._now()})

    def recover(self, worker_id: str) -> list[str]:
        with self._tx() as db:
            rows = db.execute(self._q["held_by"], {"worker_id": worker_id}).fetchall()
            for row in rows:
                self._requeue(db, row, f"worker {worker_id} restarted while running it")
        return [str(row["id"]) for row in rows]

    # --- producer side ---------------------------------------------------------------------

    def enqueue(self, task: NewTask) -> str:
        args = {
            "id": self._new_id(task.id, "task id"),
            "task_type": task.task_type,
            "params": self._json(dict(task.params)),
            "dependant_on": self._id_list(task.dependant_on) if task.dependant_on else None,
            "project_id": task.project_id,
            "parent_id": self._new_id(task.parent_id, "parent_id") if task.parent_id else None,
            "now": self._now(),
        }
        with self._tx() as db:
            db.execute(self._q["insert"], args)
        return task.id

    def cancel(self, task_id: str) -> bool:
        if self._lookup_id(task_id) is None:
            return False
        with self._tx() as db:
            row = db.execute(self._q["get_for_update"], {"id": task_id}).fetchone()
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
                self._q["claim"],
                {
                    "worker_id": worker_id,
                    "token": token,
                    "lease": self._time(now + self._lease),
                    "now": self._time(now),
                    "types": self._types(task_types),
                },
            ).fetchone()
        if row is None:
            return None
        return ClaimedTask(self._to_task(row), token, self._time_out(row["lease_expires_at"]))

    def heartbeat(self, claim: ClaimedTask) -> TaskStatus | None:
        lease = self._time(self._clock() + self._lease)
        with self._tx() as db:
            row = db.execute(
                self._q["heartbeat"], {"id": claim.id, "token": claim.claim_token, "lease": lease}
            ).fetchone()
        return TaskStatus(row["status"]) if row else None

    def mark_started(self, claim: ClaimedTask) -> None:
        with self._tx() as db:
            db.execute(
                self._q["mark_started"], {"id": claim.id, "token": claim.claim_token, "now": self._now()}
            )

    def complete(self, claim: ClaimedTask, result: TaskResult) -> Task:
        if self.heartbeat(claim) is None:
            raise _claim_lost(claim)
        # Files first: a crash between the two steps leaves a stored file and a task that will be
        # re-run and overwrite it (deterministic keys), never a Complete task without its output.
        location = publish_result(self._require_storage(result), claim.id, result.output, result.thumbnail)
        with self._tx() as db:
            row = self._finish_claimed(
                db, claim, TaskStatus.COMPLETE, output_location=location or result.message
            )
            return self._to_task(row)

    def mark_waiting(self, claim: ClaimedTask, message: str) -> None:
        with self._tx() as db:
            row = db.execute(
                self._q["wait_for_children"],
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
            row = db.execute(self._q["get_for_update"], {"id": claim.id}).fetchone()
            if row is None or row["claim_token"] != claim.claim_token or row["status"] != "In Progress":
                raise _claim_lost(claim)
            self._requeue(db, row, reason)

    # --- reads -----------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        if self._lookup_id(task_id) is None:
            return None
        rows = self._read(self._q["get"], {"id": task_id})
        return self._to_task(rows[0]) if rows else None

    def list_tasks(self, status: TaskStatus | None = None, limit: int = 100) -> list[Task]:
        if status is None:
            rows = self._read(self._q["list_all"], {"limit": limit})
        else:
            rows = self._read(self._q["list_by_status"], {"status": status.value, "limit": limit})
        return [self._to_task(r) for r in rows]

    def children(self, parent_id: str) -> list[Task]:
        if self._lookup_id(parent_id) is None:
            return []
        return [self._to_task(r) for r in self._read(self._q["children"], {"parent_id": parent_id})]

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        args = {"run_id": run_id, "task_type": semantics.SEGMENT_TASK_TYPE}
        tasks = [self._to_task(r) for r in self._read(self._q["completed_segments"], args)]
        return semantics.completed_segments(tasks, run_id, project_id)

    # --- the rules, inside one transaction -------------------------------------------------

    def _require_storage(self, result: TaskResult) -> Storage:
        if self._storage is None and (result.output or result.thumbnail):
            raise RuntimeError(f"{type(self).__name__} needs a storage to publish output files")
        return self._storage  # type: ignore[return-value]

    def _finish_claimed(
        self,
        db: Any,
        claim: ClaimedTask,
        status: TaskStatus,
        *,
        output_location: str | None = None,
        error_message: str | None = None,
    ) -> Row:
        now = self._now()
        row = db.execute(
            self._q["finish_claimed"],
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
        self._after_terminal(db, str(row["id"]), status, _as_str(row["parent_id"]))
        return row

    def _settle(
        self,
        db: Any,
        task_id: str,
        status: TaskStatus,
        output_location: str | None,
        error_message: str | None,
    ) -> None:
        now = self._now()
        db.execute(
            self._q["settle"],
            {
                "id": task_id,
                "status": status.value,
                "output_location": output_location,
                "error_message": error_message,
                "processed_at": now if status is TaskStatus.COMPLETE else None,
                "now": now,
            },
        )
        parent = db.execute(self._q["parent_of"], {"id": task_id}).fetchone()
        self._after_terminal(db, task_id, status, _as_str(parent["parent_id"]) if parent else None)

    def _after_terminal(self, db: Any, task_id: str, status: TaskStatus, parent_id: str | None) -> None:
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            message = semantics.sibling_cancel_message(task_id)
            db.execute(
                self._q["cancel_queued_children"],
                {"parent_id": task_id, "message": message, "now": self._now()},
            )
        if parent_id:
            self._settle_parent(db, parent_id)

    def _settle_parent(self, db: Any, parent_id: str) -> None:
        # Locked first (PostgreSQL): two children finishing at once are serialised here.
        parent = db.execute(self._q["get_for_update"], {"id": parent_id}).fetchone()
        # Only a parent that handed its work to children (no claim token) is settled by them.
        if parent is None or parent["status"] != "In Progress" or parent["claim_token"] is not None:
            return
        rows = db.execute(self._q["children"], {"parent_id": parent_id}).fetchall()
        outcome = semantics.parent_outcome([self._to_task(r) for r in rows])
        if outcome.status is not TaskStatus.IN_PROGRESS:
            self._settle(db, parent_id, outcome.status, outcome.output_location, outcome.message)

    def _requeue(self, db: Any, row: Row, cause: str) -> None:
        outcome = semantics.requeue_outcome(row["attempts"], self._max_attempts, cause)
        db.execute(
            self._q["requeue"],
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
            self._after_terminal(db, str(row["id"]), outcome.status, _as_str(row["parent_id"]))

    def _sweep_expired(self, db: Any) -> None:
        for row in db.execute(self._q["expired"], {"now": self._now()}).fetchall():
            self._requeue(db, row, semantics.expiry_cause(row["worker_id"]))


def _as_str(value: object) -> str | None:
    return None if value is None else str(value)


def _claim_lost(claim: ClaimedTask) -> ClaimLost:
    return ClaimLost(f"Task {claim.id} is no longer held by this worker (lease expired or task finished).")
