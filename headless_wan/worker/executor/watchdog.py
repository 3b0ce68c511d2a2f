"""Per-task time limits the parent enforces on the executor process.

A task that sends no progress event for `stall_s`, or runs past its task type's timeout, is taken
to be hung: the executor is killed (nothing inside a hung CUDA call or FFmpeg read would ever look
at a cancel token) and a fresh one is started for the next task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from headless_wan.worker.executor.messages import ProgressMsg


@dataclass(frozen=True)
class WatchdogLimits:
    stall_s: float = 900.0
    timeout_s: float = 7200.0
    timeouts: Mapping[str, float] = field(default_factory=dict)  # per task type; 0 = no limit

    def timeout_for(self, task_type: str) -> float:
        return self.timeouts.get(task_type, self.timeout_s)


class TaskWatch:
    """The clock of one run: when it started, when it last showed progress."""

    def __init__(self, now: float, stall_s: float, timeout_s: float) -> None:
        self.started = now
        self.last_progress = now
        self.latest: ProgressMsg | None = None
        self._stall_s = stall_s
        self._timeout_s = timeout_s

    def touch(self, now: float, event: ProgressMsg) -> None:
        self.last_progress = now
        self.latest = event

    def expired(self, now: float) -> tuple[str, str] | None:
        """(kind, message) once a limit is passed; None while the run is within its limits."""
        if self._timeout_s > 0 and now - self.started > self._timeout_s:
            return "timed_out", f"Task timed out after {self._timeout_s:g} s (HW_TASK_TIMEOUT_S)"
        if self._stall_s > 0 and now - self.last_progress > self._stall_s:
            latest = self.latest
            last = f"{latest.stage} {latest.step}/{latest.total}" if latest else "none since the start"
            return "stalled", f"Task stalled: no progress for {self._stall_s:g} s (last progress: {last})"
        return None
