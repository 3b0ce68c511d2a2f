"""What the worker (parent) and its executor process (child) say to each other.

Frozen dataclasses pickled over one `multiprocessing` pipe. Parent → child: `RunTask`, `Cancel`,
`Reply`, `Shutdown`. Child → parent: `Ready` / `StartupFailed` once, then per task `ProgressMsg`,
`LogMsg`, `Call` (queue services the handler asks for), and one `ResultMsg` or `FailureMsg`.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from headless_wan.domain.tasks import ClaimedTask, TaskResult


@dataclass(frozen=True)
class Ready:
    task_types: frozenset[str]
    pid: int


@dataclass(frozen=True)
class StartupFailed:
    message: str


@dataclass(frozen=True)
class RunTask:
    claim: ClaimedTask
    workdir: Path


@dataclass(frozen=True)
class Cancel:
    reason: str


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class ProgressMsg:
    stage: str
    step: int
    total: int
    message: str
    vram_mb: tuple[int, int] | None = None  # (total, used), at most once a second: for heartbeats


@dataclass(frozen=True)
class LogMsg:
    record: dict[str, Any]  # a LogRecord's __dict__, message already formatted, no live objects


@dataclass(frozen=True)
class Call:
    """A queue service the handler needs (`enqueue`, `existing`, `get`, `completed_segments`,
    `mark_started`), answered by a `Reply` with the same id (`mark_started` is not answered)."""

    call_id: int
    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Reply:
    call_id: int
    value: Any = None
    error: bytes | None = None  # a pickled exception, raised in the child


@dataclass(frozen=True)
class ResultMsg:
    result: TaskResult
    run_s: float = 0.0  # the handler's own time in the child: the rest of the parent's wait is overhead


@dataclass(frozen=True)
class FailureMsg:
    """The handler raised. `error` is the pickled exception when it pickles (so the parent decides
    on the real class); otherwise `type_name` and `text` carry what the message needs."""

    type_name: str
    text: str
    traceback: str
    error: bytes | None = None
    exit_code: int | None = field(default=None)  # set for SystemExit / KeyboardInterrupt


class Channel:
    """One end of the pipe. Sends are locked: the child sends from the handler's thread (progress,
    logs, calls) and its reader thread at once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: object) -> None:
        with self._lock:
            self.conn.send(message)

    def poll(self, timeout_s: float) -> bool:
        return self.conn.poll(timeout_s)

    def recv(self) -> object:
        return self.conn.recv()

    def close(self) -> None:
        self.conn.close()


def pickle_error(exc: BaseException) -> bytes | None:
    """The exception pickled, if it survives a round trip (library errors often do not)."""
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
    except Exception:
        return None
    return data


class RemoteError(Exception):
    """An exception from the executor whose class the parent does not load (a plugin's, a
    library's): `type_name` keeps its name for the task's message."""

    def __init__(self, type_name: str, text: str) -> None:
        super().__init__(text)
        self.type_name = type_name
