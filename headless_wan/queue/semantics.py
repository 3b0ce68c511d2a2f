"""Queue rules shared by our own backends (memory, SQLite; later PostgreSQL), mirroring Reigh's server.

Pure functions: the backends feed them rows and apply the outcome inside their own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from headless_wan.domain.tasks import SegmentOutput, Task, TaskStatus

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """Fixed-width UTC text: sorts lexicographically in the same order as time."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


def is_claimable(task: Task, status_of: Callable[[str], TaskStatus | None]) -> bool:
    """Queued, and every dependency exists and is Complete (a missing dependency blocks)."""
    if task.status is not TaskStatus.QUEUED:
        return False
    return all(status_of(dep) is TaskStatus.COMPLETE for dep in task.dependant_on)


@dataclass(frozen=True)
class Requeue:
    """What happens to a task that its worker gave back or abandoned."""

    status: TaskStatus
    attempts: int
    message: str


def requeue_outcome(attempts: int, max_attempts: int, cause: str) -> Requeue:
    """attempts counts claims that ended without a result; at the cap the task fails."""
    used = attempts + 1
    if used >= max_attempts:
        return Requeue(
            TaskStatus.FAILED, used, f"Gave up after {used} attempt(s); the last one ended because {cause}."
        )
    return Requeue(TaskStatus.QUEUED, used, f"Requeued (attempt {used} of {max_attempts} ended: {cause}).")


def expiry_cause(worker_id: str | None) -> str:
    return f"worker {worker_id or '?'} stopped sending heartbeats (its lease expired)"


@dataclass(frozen=True)
class ParentOutcome:
    status: TaskStatus  # IN_PROGRESS means: keep waiting
    output_location: str | None = None
    message: str | None = None


def parent_outcome(children: Sequence[Task]) -> ParentOutcome:
    """A waiting parent fails as soon as one child fails or is cancelled, and completes when all are
    Complete: with the output of its final child when exactly one child has no dependant sibling
    (a chain ending in a stitch), else with no output."""
    for child in children:
        if child.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            reason = child.error_message or child.status.value
            return ParentOutcome(
                TaskStatus.FAILED,
                message=f"Child task {child.task_type} {child.id} {child.status.value}: {reason}",
            )
    if not children or any(child.status is not TaskStatus.COMPLETE for child in children):
        return ParentOutcome(TaskStatus.IN_PROGRESS)
    depended_on = {dep for child in children for dep in child.dependant_on}
    sinks = [child for child in children if child.id not in depended_on]
    # Several independent results (e.g. independent travel segments) are not one output: the parent
    # completes without one, as Reigh's server does for independent runs.
    output = sinks[0].output_location if len(sinks) == 1 else None
    return ParentOutcome(TaskStatus.COMPLETE, output_location=output)


def sibling_cancel_message(parent_id: str) -> str:
    return f"Cancelled because a sibling task of parent {parent_id} failed."


SEGMENT_TASK_TYPE = "travel_segment"


def segment_output(task: Task) -> SegmentOutput | None:
    """The task as a completed segment row, or None when its index is not a JSON integer."""
    index = task.params.get("segment_index")
    if isinstance(index, bool) or not isinstance(index, int) or task.output_location is None:
        return None
    return SegmentOutput(index, task.output_location)


def completed_segments(tasks: Sequence[Task], run_id: str, project_id: str | None) -> list[SegmentOutput]:
    rows = [
        segment_output(t)
        for t in tasks
        if t.task_type == SEGMENT_TASK_TYPE
        and t.status is TaskStatus.COMPLETE
        and t.params.get("orchestrator_run_id") == run_id
        and (project_id is None or t.project_id == project_id)
    ]
    return sorted((row for row in rows if row is not None), key=lambda row: row.segment_index)
