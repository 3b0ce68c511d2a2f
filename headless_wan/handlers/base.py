"""What a handler is, and what it gets from the worker while it runs.

Handlers never see the queue, SQL or HTTP: queue-side services reach them through `TaskContext`.
They raise errors from `headless_wan.errors`; the worker decides what each means for the task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from headless_wan.domain.tasks import NewTask, SegmentOutput, Task, TaskResult
from headless_wan.errors import TaskCancelled


class CancelToken:
    """Cooperative cancellation: set by the worker (shutdown, user cancel, lost claim), checked by
    handlers between stages and by the engine's step callback."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise `TaskCancelled` if cancellation was requested."""
        if self._event.is_set():
            raise TaskCancelled(f"Task cancelled ({self.reason})", reason=self.reason or "cancelled")

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)


class MarkStarted(Protocol):
    def __call__(self, model: str | None = None) -> None: ...


class Progress(Protocol):
    """Progress sink. `report` must be cheap: it is called from the generation thread."""

    def report(self, stage: str, step: int, total: int, message: str = "") -> None: ...


class ChildTasks(Protocol):
    """Queue-side services an orchestrator needs (implemented by the worker over the queue)."""

    def enqueue(self, children: Sequence[NewTask]) -> list[str]:
        """Enqueue child tasks (ids pre-generated); an id that already exists is left as it is."""
        ...

    def existing(self) -> list[Task]:
        """Children already created for this task (for idempotent re-runs)."""
        ...


class TaskLookup(Protocol):
    """Read-only queue lookups for handlers that consume other tasks' outputs."""

    def get(self, task_id: str) -> Task | None:
        """Any task by id (e.g. a predecessor in `dependant_on`), with its status and output."""
        ...

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        """Completed travel segments of one orchestrator run, ordered by segment_index."""
        ...


@dataclass(frozen=True)
class TaskContext:
    task: Task
    workdir: Path
    cancel: CancelToken
    progress: Progress
    children: ChildTasks
    mark_started: MarkStarted
    """Call once expensive set-up (model load) is done, with the task's model name: billing and the
    stuck-task clock start here, and the queue learns which model this worker has loaded."""
    log: logging.LoggerAdapter[logging.Logger]
    lookup: TaskLookup | None = None
    """Queue lookups (set by the worker; None only in handler unit tests that need none)."""


class Handler(Protocol):
    """Runs one task type.

    `params_model` validates the raw params before `run` is called (invalid params never reach
    the GPU). `run` writes its files into `ctx.workdir` and returns them in a `TaskResult`;
    it must be safe to re-run (a released task runs again from scratch).
    """

    task_type: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]

    def run(self, ctx: TaskContext, params: Any) -> TaskResult: ...
