"""The one protocol every queue backend implements.

The worker loop talks only to this. Backends return frozen domain objects; no rows, JSON or HTTP
responses leak upwards. Every write about a claimed task is fenced by its `claim_token`: once a
lease has expired and the task went back to the queue, the old holder's writes raise `ClaimLost`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Protocol

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, Task, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat


class QueueClient(Protocol):
    def open(self) -> None:
        """Connect (and create the schema where the backend owns it). Safe to call twice."""
        ...

    def close(self) -> None: ...

    def worker_alive(self, beat: WorkerBeat) -> None:
        """Record this worker's liveness (creates its row on first call; sent before the first claim
        and then every heartbeat interval, idle or busy)."""
        ...

    def set_model(self, worker_id: str, model: str) -> None:
        """Record which model this worker has loaded (model affinity)."""
        ...

    def recover(self, worker_id: str) -> list[str]:
        """Give back tasks this worker id still holds from before a crash or restart (attempts + 1);
        returns their ids. Called once at start, before the first claim."""
        ...

    def enqueue(self, task: NewTask) -> str:
        """Insert a Queued task and return its id. An id that already exists is left untouched
        (this is what makes orchestrator re-runs idempotent)."""
        ...

    def claim(self, worker_id: str, task_types: Collection[str] | None = None) -> ClaimedTask | None:
        """Atomically take the oldest Queued task whose dependencies are all Complete
        (optionally only of `task_types`), or None. Also returns expired leases to the queue."""
        ...

    def heartbeat(self, claim: ClaimedTask) -> TaskStatus | None:
        """Extend the claim's lease. Returns the task's status, or None when the claim is lost
        (lease expired and the task was requeued or taken by another worker)."""
        ...

    def mark_started(self, claim: ClaimedTask) -> None:
        """Set `generation_started_at` now (called after model load, so loading is not billed)."""
        ...

    def complete(self, claim: ClaimedTask, result: TaskResult) -> Task:
        """Publish the result's files, then mark the task Complete. Raises `ClaimLost` when the
        task is no longer ours. Returns the updated row."""
        ...

    def mark_waiting(self, claim: ClaimedTask, message: str) -> None:
        """Leave the task In Progress without a lease: it spawned children that finish it."""
        ...

    def fail(self, claim: ClaimedTask, message: str) -> None:
        """Mark the task Failed with a user-readable message (and cascade to its parent)."""
        ...

    def release(self, claim: ClaimedTask, reason: str) -> None:
        """Give the task back: Queued with attempts+1, or Failed once the attempt cap is reached."""
        ...

    def get(self, task_id: str) -> Task | None: ...

    def list_tasks(self, status: TaskStatus | None = None, limit: int = 100) -> list[Task]:
        """Most recent first."""
        ...

    def children(self, parent_id: str) -> list[Task]:
        """Tasks spawned by `parent_id`, oldest first."""
        ...

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        """Complete `travel_segment` tasks whose `params.orchestrator_run_id` is `run_id`, by
        `segment_index`; rows whose index is not an integer are left out (as Reigh does)."""
        ...

    def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished (user action). Returns False if it already had."""
        ...


class WaitsForWork(Protocol):
    """Optional extra of a queue that can tell an idle worker that work arrived (PostgreSQL:
    LISTEN/NOTIFY). The worker loop calls it, when the queue has it, instead of sleeping out its
    poll delay; polling stays the fallback, so a backend without it loses only latency."""

    def wait_for_work(self, timeout_s: float, wake: threading.Event | None = None) -> bool:
        """Block until work may have arrived (True), or `wake` is set or `timeout_s` passes (False).
        The queue sets `wake` itself when work arrives: pass an event kept for this alone, which the
        caller also sets to end the wait early (the worker loop does on a stop request)."""
        ...


class QueueFactory(Protocol):
    """Builds a fresh client; the heartbeat thread gets its own so a stuck main-thread call
    cannot starve liveness."""

    def __call__(self) -> QueueClient: ...


def enqueue_all(queue: QueueClient, tasks: Sequence[NewTask]) -> list[str]:
    return [queue.enqueue(task) for task in tasks]
