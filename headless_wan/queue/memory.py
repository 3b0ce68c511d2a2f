"""In-memory queue: for unit tests of the layers above, and for `run TASK.json`.

Same rules as the SQL backends (`semantics`), a lock instead of transactions, and an injectable
clock so lease expiry is tested without waiting.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, Task, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat
from headless_wan.errors import ClaimLost
from headless_wan.queue import semantics
from headless_wan.storage.base import Storage, publish_result


class InMemoryQueue:
    def __init__(
        self,
        storage: Storage | None = None,
        *,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = semantics.utc_now,
    ) -> None:
        self._storage = storage
        self._lease = timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._clock = clock
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._tokens: dict[str, str] = {}
        self._leases: dict[str, datetime] = {}
        self.workers: dict[str, WorkerBeat] = {}
        self.models: dict[str, str] = {}

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def worker_alive(self, beat: WorkerBeat) -> None:
        with self._lock:
            self.workers[beat.worker_id] = beat

    def set_model(self, worker_id: str, model: str) -> None:
        with self._lock:
            self.models[worker_id] = model

    def recover(self, worker_id: str) -> list[str]:
        with self._lock:
            held = [
                t.id
                for t in self._tasks.values()
                if t.worker_id == worker_id and t.status is TaskStatus.IN_PROGRESS and t.id in self._tokens
            ]
            for task_id in held:
                self._requeue(task_id, f"worker {worker_id} restarted while running it")
            return held

    def enqueue(self, task: NewTask) -> str:
        with self._lock:
            if task.id not in self._tasks:
                now = self._clock()
                self._tasks[task.id] = Task(
                    id=task.id,
                    task_type=task.task_type,
                    params=dict(task.params),
                    dependant_on=tuple(task.dependant_on),
                    project_id=task.project_id,
                    parent_id=task.parent_id,
                    created_at=now,
                    updated_at=now,
                )
            return task.id

    def claim(self, worker_id: str, task_types: Collection[str] | None = None) -> ClaimedTask | None:
        with self._lock:
            self._sweep_expired()
            for task in self._tasks.values():  # dicts keep insertion order: oldest first
                if task_types is not None and task.task_type not in task_types:
                    continue
                if semantics.is_claimable(task, self._status_of):
                    return self._take(task, worker_id)
            return None

    def heartbeat(self, claim: ClaimedTask) -> TaskStatus | None:
        with self._lock:
            if not self._holds(claim):
                return None
            self._leases[claim.id] = self._clock() + self._lease
            return self._tasks[claim.id].status

    def mark_started(self, claim: ClaimedTask) -> None:
        with self._lock:
            if self._holds(claim):
                self._update(claim.id, generation_started_at=self._clock())

    def complete(self, claim: ClaimedTask, result: TaskResult) -> Task:
        with self._lock:
            self._require(claim)
        location = publish_result(self._require_storage(result), claim.id, result.output, result.thumbnail)
        with self._lock:
            self._require(claim)
            self._finish(claim.id, TaskStatus.COMPLETE, output_location=location or result.message)
            return self._tasks[claim.id]

    def mark_waiting(self, claim: ClaimedTask, message: str) -> None:
        with self._lock:
            self._require(claim)
            self._drop_lease(claim.id)
            self._update(claim.id, output_location=message, worker_id=None)
            self._settle_parent(claim.id)

    def fail(self, claim: ClaimedTask, message: str) -> None:
        with self._lock:
            self._require(claim)
            self._finish(claim.id, TaskStatus.FAILED, error_message=message)

    def release(self, claim: ClaimedTask, reason: str) -> None:
        with self._lock:
            self._require(claim)
            self._requeue(claim.id, reason)

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def list_tasks(self, status: TaskStatus | None = None, limit: int = 100) -> list[Task]:
        with self._lock:
            rows = [t for t in reversed(self._tasks.values()) if status is None or t.status is status]
            return rows[:limit]

    def children(self, parent_id: str) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if t.parent_id == parent_id]

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        with self._lock:
            return semantics.completed_segments(list(self._tasks.values()), run_id, project_id)

    def cancel(self, task_id: str) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.status.is_terminal:
                return False
            self._finish(task_id, TaskStatus.CANCELLED)
            return True

    # --- internals (lock held) -------------------------------------------------------------

    def _status_of(self, task_id: str) -> TaskStatus | None:
        task = self._tasks.get(task_id)
        return task.status if task else None

    def _take(self, task: Task, worker_id: str) -> ClaimedTask:
        now = self._clock()
        token = uuid.uuid4().hex
        self._tokens[task.id] = token
        self._leases[task.id] = now + self._lease
        claimed = self._update(
            task.id, status=TaskStatus.IN_PROGRESS, worker_id=worker_id, generation_started_at=now
        )
        return ClaimedTask(claimed, token, self._leases[task.id])

    def _holds(self, claim: ClaimedTask) -> bool:
        task = self._tasks.get(claim.id)
        return (
            task is not None
            and task.status is TaskStatus.IN_PROGRESS
            and self._tokens.get(claim.id) == claim.claim_token
        )

    def _require(self, claim: ClaimedTask) -> None:
        if not self._holds(claim):
            raise ClaimLost(f"Task {claim.id} is no longer held by this worker.")

    def _require_storage(self, result: TaskResult) -> Storage:
        if self._storage is None and (result.output or result.thumbnail):
            raise RuntimeError("InMemoryQueue needs a storage to publish output files")
        return self._storage  # type: ignore[return-value]

    def _update(self, task_id: str, **changes: object) -> Task:
        task = replace(self._tasks[task_id], updated_at=self._clock(), **changes)  # type: ignore[arg-type]
        self._tasks[task_id] = task
        return task

    def _drop_lease(self, task_id: str) -> None:
        self._tokens.pop(task_id, None)
        self._leases.pop(task_id, None)

    def _finish(self, task_id: str, status: TaskStatus, **changes: object) -> None:
        self._drop_lease(task_id)
        extra = {"generation_processed_at": self._clock()} if status is TaskStatus.COMPLETE else {}
        self._update(task_id, status=status, **extra, **changes)
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            self._cancel_waiting_children(task_id)
        self._settle_parent_of(task_id)

    def _requeue(self, task_id: str, cause: str) -> None:
        task = self._tasks[task_id]
        outcome = semantics.requeue_outcome(task.attempts, self._max_attempts, cause)
        self._drop_lease(task_id)
        self._update(task_id, attempts=outcome.attempts, worker_id=None, generation_started_at=None)
        if outcome.status is TaskStatus.FAILED:
            self._finish(task_id, TaskStatus.FAILED, error_message=outcome.message)
        else:
            self._update(task_id, status=TaskStatus.QUEUED, error_message=outcome.message)

    def _sweep_expired(self) -> None:
        now = self._clock()
        for task_id, expires in list(self._leases.items()):
            if expires < now:
                self._requeue(task_id, semantics.expiry_cause(self._tasks[task_id].worker_id))

    def _settle_parent_of(self, task_id: str) -> None:
        parent_id = self._tasks[task_id].parent_id
        if parent_id is not None and parent_id in self._tasks:
            self._settle_parent(parent_id)

    def _settle_parent(self, parent_id: str) -> None:
        parent = self._tasks[parent_id]
        # Only a parent that handed its work to children (no lease) is settled by them.
        if parent.status is not TaskStatus.IN_PROGRESS or parent_id in self._tokens:
            return
        outcome = semantics.parent_outcome(self.children(parent_id))
        if outcome.status is TaskStatus.COMPLETE:
            kept = {"output_location": outcome.output_location} if outcome.output_location else {}
            self._finish(parent_id, TaskStatus.COMPLETE, **kept)
        elif outcome.status is TaskStatus.FAILED:
            self._finish(parent_id, TaskStatus.FAILED, error_message=outcome.message)

    def _cancel_waiting_children(self, parent_id: str) -> None:
        for child in self.children(parent_id):
            if child.status is TaskStatus.QUEUED:
                self._drop_lease(child.id)
                self._update(
                    child.id,
                    status=TaskStatus.CANCELLED,
                    error_message=semantics.sibling_cancel_message(parent_id),
                )
