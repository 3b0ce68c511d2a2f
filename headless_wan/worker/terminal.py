"""A one-line progress display for `run` in a terminal, driven by the worker's progress events.

Only `run` uses it, and only when stderr is a TTY: a worker's log is read by machines, and carriage
returns would garble it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

from headless_wan.domain.tasks import ClaimedTask
from headless_wan.worker.health import NullEvents
from headless_wan.worker.progress import ProgressEvent

BAR_WIDTH = 30
REDRAW_S = 0.1  # at most ten redraws a second: a fast stage must not flood a slow terminal


class TerminalProgress(NullEvents):
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._drawn_at = float("-inf")
        self._open_line = False

    def progress(self, claim: ClaimedTask, event: ProgressEvent) -> None:
        now = time.monotonic()
        last = event.step >= event.total
        with self._lock:
            if not last and now - self._drawn_at < REDRAW_S:
                return
            self._drawn_at = now
            self._stream.write("\r\x1b[K" + render_line(claim, event))
            self._open_line = not last
            if last:
                self._stream.write("\n")
            self._stream.flush()

    def task_finished(self, claim: ClaimedTask, outcome: str, duration_s: float) -> None:
        with self._lock:
            if self._open_line:
                self._stream.write("\n")
                self._open_line = False
            self._stream.flush()


def render_line(claim: ClaimedTask, event: ProgressEvent) -> str:
    total = max(event.total, 1)
    done = min(max(event.step, 0), total)
    filled = round(BAR_WIDTH * done / total)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"{claim.task_type} [{claim.id[:8]}] {event.stage:<14} [{bar}] {done}/{total} {event.message}".rstrip()


class DropProgressRecords(logging.Filter):
    """While the bar shows progress, the matching log lines would only repeat it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "action", None) != "progress"
