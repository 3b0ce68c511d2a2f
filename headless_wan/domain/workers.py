"""What a worker tells the queue about itself (liveness, memory, recent log lines)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class WorkerStatus(str, Enum):
    """Reigh's `workers.status` values that a worker may send itself."""

    ACTIVE = "active"
    INACTIVE = "inactive"  # graceful shutdown
    ERROR = "error"  # right before a worker-fatal exit


@dataclass(frozen=True)
class LogEntry:
    timestamp: datetime
    level: str
    message: str
    task_id: str | None = None


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    status: WorkerStatus
    current_task_id: str | None = None
    vram_total_mb: int = 0
    vram_used_mb: int = 0
    logs: tuple[LogEntry, ...] = ()
