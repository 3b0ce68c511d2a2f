"""Recent log lines kept for the heartbeat to ship (Reigh shows them per worker and per task)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime, timezone

from headless_wan.domain.workers import LogEntry

MAX_PER_BEAT = 100  # Reigh's heartbeat RPC takes at most 100 entries per call


class LogBuffer(logging.Handler):
    """A bounded buffer: when shipping falls behind, the oldest lines are dropped (and counted)."""

    def __init__(self, capacity: int = 1000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        # Re-entrant: a signal handler that logs may interrupt emit() on the same thread.
        self._guard = threading.RLock()
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        entry = LogEntry(
            timestamp=datetime.fromtimestamp(record.created, timezone.utc),
            level=record.levelname if record.levelname != "WARN" else "WARNING",
            message=f"{record.name}: {record.getMessage()}",
            task_id=getattr(record, "task_id", None),
        )
        with self._guard:
            if len(self._entries) == self._entries.maxlen:
                self.dropped += 1
            self._entries.append(entry)

    def drain(self, limit: int = MAX_PER_BEAT) -> tuple[LogEntry, ...]:
        with self._guard:
            count = min(limit, len(self._entries))
            return tuple(self._entries.popleft() for _ in range(count))
