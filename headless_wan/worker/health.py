"""The worker's state and the observer interface the loop reports through.

The loop calls `WorkerEvents` at a handful of points (state changes, claims, outcomes, progress,
retries). It never imports prometheus: the metrics observer (`headless_wan.metrics`) and the
terminal progress bar (`headless_wan.worker.terminal`) implement this protocol at the edge.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from headless_wan.domain.tasks import ClaimedTask
from headless_wan.worker.progress import ProgressEvent


class WorkerState(str, Enum):
    """What `/healthz` reports (architecture §4): STARTING until the start-up checks pass and the
    queue is open, READY while idle, BUSY while a task runs, DRAINING once a stop was requested,
    FAILED after a failed start-up check or a worker-fatal error."""

    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    FAILED = "failed"

    @property
    def healthy(self) -> bool:
        return self is not WorkerState.FAILED


class HealthState:
    """The current state, read by the HTTP thread.

    A plain attribute write on purpose: `request_stop` runs in a signal handler, which must not
    take a lock the interrupted main thread may already hold."""

    def __init__(self) -> None:
        self.state = WorkerState.STARTING

    def set(self, state: WorkerState) -> None:
        if self.state is WorkerState.FAILED:
            return  # terminal: a later "draining" must not hide why the worker is going away
        if self.state is WorkerState.DRAINING and state in (WorkerState.READY, WorkerState.BUSY):
            return
        self.state = state


class WorkerEvents(Protocol):
    """What the worker loop tells observers. Every method must be cheap and must not raise."""

    def state_changed(self, state: WorkerState) -> None: ...

    def task_claimed(self, claim: ClaimedTask) -> None: ...

    def task_finished(self, claim: ClaimedTask, outcome: str, duration_s: float) -> None:
        """`outcome`: complete, waiting, failed, released or dropped."""

    def progress(self, claim: ClaimedTask, event: ProgressEvent) -> None: ...

    def output_published(self, claim: ClaimedTask, size_bytes: int) -> None: ...

    def status_write_retried(self, what: str) -> None: ...


class NullEvents:
    """The default observer: does nothing."""

    def state_changed(self, state: WorkerState) -> None:
        pass

    def task_claimed(self, claim: ClaimedTask) -> None:
        pass

    def task_finished(self, claim: ClaimedTask, outcome: str, duration_s: float) -> None:
        pass

    def progress(self, claim: ClaimedTask, event: ProgressEvent) -> None:
        pass

    def output_published(self, claim: ClaimedTask, size_bytes: int) -> None:
        pass

    def status_write_retried(self, what: str) -> None:
        pass
