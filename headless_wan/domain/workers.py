"""What a worker tells the queue about itself (liveness, memory, recent log lines)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class WorkerStatus(str, Enum):
    """What a worker may say about itself (Reigh's `workers.status` values)."""

    ACTIVE = "active"
    INACTIVE = "inactive"  # graceful shutdown
    ERROR = "error"  # unhealthy, but nothing it held needs giving back
    CRASHED = "crashed"  # right before a worker-fatal exit: the queue may give back what it still held


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
