"""Per-task progress: throttled, ordered, cheap to call from the generation thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    seq: int
    stage: str
    step: int
    total: int
    message: str
    at: float


class ProgressReporter:
    """Keeps the latest event (read by the heartbeat thread) and logs at most one line per
    `interval_s`, always logging the first and the last step of each stage."""

    def __init__(
        self,
        log: logging.LoggerAdapter[logging.Logger],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        self._log = log
        self._on_event = on_event  # every event, unthrottled: metrics and the terminal bar
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._last_logged_at = float("-inf")
        self._stage: str | None = None
        self._closed = False
        self.latest: ProgressEvent | None = None
        self.logged: list[ProgressEvent] = []

    def report(self, stage: str, step: int, total: int, message: str = "") -> None:
        now = self._clock()
        with self._lock:
            if self._closed:
                return  # nothing may be emitted after the task's final status
            self._seq += 1
            event = ProgressEvent(self._seq, stage, step, total, message, now)
            self.latest = event
            boundary = stage != self._stage or step >= total
            due = boundary or now - self._last_logged_at >= self._interval_s
            if due:
                self._stage = stage
                self._last_logged_at = now
                self.logged.append(event)
        if self._on_event is not None:
            self._on_event(event)
        if not due:
            return
        self._log.info(
            "%s %d/%d %s",
            stage,
            step,
            total,
            message,
            extra={"action": "progress", "stage": stage, "step": step, "total": total},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
