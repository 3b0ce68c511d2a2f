"""How the loop runs a handler: in this process, or in the executor process (`worker.executor`).

The loop builds a `RunRequest` (the claim, its workdir, the cancel token and the queue services)
and hands it to a `TaskRunner`; either runner turns it into the same `TaskContext` for the handler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from headless_wan.domain.tasks import ClaimedTask, TaskResult
from headless_wan.handlers.base import CancelToken, ChildTasks, MarkStarted, Progress, TaskContext, TaskLookup
from headless_wan.worker.dispatch import HandlerRegistry


@dataclass(frozen=True)
class RunRequest:
    claim: ClaimedTask
    workdir: Path
    cancel: CancelToken
    progress: Progress
    children: ChildTasks
    lookup: TaskLookup
    mark_started: MarkStarted
    log: logging.LoggerAdapter[logging.Logger]


class TaskRunner(Protocol):
    supervised: bool
    """True when the runner itself enforces the cancel deadline (it can kill the work); the loop's
    shutdown guard then never needs to exit the process from under a stuck task."""

    @property
    def task_types(self) -> frozenset[str]: ...

    def run(self, request: RunRequest) -> TaskResult:
        """The handler's result; raises what the handler raised (or why the run was lost)."""
        ...

    def close(self) -> None: ...


class InProcessRunner:
    """Runs the handler on the calling thread: `run TASK.json` and the loop's unit tests."""

    supervised = False

    def __init__(self, registry: HandlerRegistry) -> None:
        self.registry = registry

    @property
    def task_types(self) -> frozenset[str]:
        return self.registry.task_types

    def run(self, request: RunRequest) -> TaskResult:
        handler, params = self.registry.resolve(request.claim.task)
        ctx = TaskContext(
            task=request.claim.task,
            workdir=request.workdir,
            cancel=request.cancel,
            progress=request.progress,
            children=request.children,
            mark_started=request.mark_started,
            log=request.log,
            lookup=request.lookup,
        )
        result = handler.run(ctx, params)
        request.cancel.check()  # cancelled while finishing up: publish nothing
        return result

    def close(self) -> None:
        pass
