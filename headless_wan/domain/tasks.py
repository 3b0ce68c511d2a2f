"""Task rows, claims and results as frozen objects.

Statuses carry Reigh's exact wire strings, so the same payloads and fixtures run on every backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any


class TaskStatus(str, Enum):
    QUEUED = "Queued"
    IN_PROGRESS = "In Progress"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.COMPLETE, TaskStatus.FAILED, TaskStatus.CANCELLED)

    @classmethod
    def parse(cls, text: str) -> TaskStatus:
        """Accept the wire string or the enum name (`in_progress`), case-insensitively."""
        norm = text.strip().lower().replace("_", " ")
        for status in cls:
            if status.value.lower() == norm:
                return status
        valid = ", ".join(s.value for s in cls)
        raise ValueError(f"unknown task status {text!r} (valid: {valid})")


@dataclass(frozen=True)
class Task:
    """One row of the task queue (mirrors Reigh's `tasks` row)."""

    id: str
    task_type: str
    params: Mapping[str, Any]
    status: TaskStatus = TaskStatus.QUEUED
    dependant_on: tuple[str, ...] = ()
    project_id: str | None = None
    worker_id: str | None = None
    output_location: str | None = None
    error_message: str | None = None
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    generation_started_at: datetime | None = None
    generation_processed_at: datetime | None = None
    parent_id: str | None = None
    params_error: str | None = None
    """Set when the stored params could not be read as a JSON object; such a task is failed at claim."""


@dataclass(frozen=True)
class ClaimedTask:
    """A task this worker holds. `claim_token` fences every later write: a worker whose lease
    expired (and whose task went to someone else) cannot complete, fail or release it."""

    task: Task
    claim_token: str
    lease_expires_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def task_type(self) -> str:
        return self.task.task_type


@dataclass(frozen=True)
class NewTask:
    """A task to enqueue: from `submit`, or a child spawned by an orchestrator.

    The id is generated client-side so children can reference each other in `dependant_on`
    before they are inserted (Reigh's `create-task` works the same way)."""

    task_type: str
    params: Mapping[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    dependant_on: tuple[str, ...] = ()
    project_id: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class TaskResult:
    """What a handler produced. Files are local; the queue backend publishes them.

    `output` is the main artifact (video or image), `thumbnail` an optional first-frame JPEG.
    A handler with no file output (an orchestrator that only spawned children) sets `message`
    and `waiting=True`: its task stays In Progress until its children finish it.
    """

    output: Path | None = None
    thumbnail: Path | None = None
    message: str | None = None
    waiting: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentOutput:
    """A completed travel segment of one orchestrator run (Reigh's `get-completed-segments` row)."""

    segment_index: int
    output_location: str
