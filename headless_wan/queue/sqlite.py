"""Embedded SQLite queue: the zero-config default.

One file, WAL mode, many worker processes. Every write runs inside `BEGIN IMMEDIATE`, which takes
the database's single write lock up front, so the claim's `UPDATE ... RETURNING` is atomic across
processes. Expired leases are swept back to the queue on every claim.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from headless_wan.domain.tasks import Task, TaskStatus
from headless_wan.errors import QueueUnavailable
from headless_wan.queue import semantics
from headless_wan.queue.sql_files import load_queries
from headless_wan.queue.sql_queue import SqlQueue
from headless_wan.storage.base import Storage

Q = load_queries("sqlite.sql")
SCHEMA_VERSION = 2  # 2: workers table


class SqliteQueue(SqlQueue):
    def __init__(
        self,
        path: Path,
        storage: Storage | None = None,
        *,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], datetime] = semantics.utc_now,
    ) -> None:
        super().__init__(Q, storage, lease_s=lease_s, max_attempts=max_attempts, clock=clock)
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from one thread at a time

    # --- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise QueueUnavailable(f"Cannot open the SQLite queue at {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self._conn = conn
        with self._tx() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in _statements(Q["schema"]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SqliteQueue:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the SQLite dialect ----------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise QueueUnavailable(f"SQLite queue {self.path} is unavailable: {exc}") from exc
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: dict[str, Any]) -> list[sqlite3.Row]:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        with self._lock:  # autocommit: a plain read needs no write lock
            return self._conn.execute(sql, args).fetchall()

    def _to_task(self, row: sqlite3.Row) -> Task:
        return _to_task(row)

    def _time(self, moment: datetime) -> str:
        return semantics.format_time(moment)

    def _time_out(self, value: Any) -> datetime | None:
        return semantics.parse_time(value)

    def _json(self, value: Any) -> str:
        return json.dumps(value)

    def _id_list(self, ids: Sequence[str]) -> str:
        return json.dumps(list(ids))

    def _types(self, task_types: Collection[str] | None) -> str | None:
        return json.dumps(sorted(task_types)) if task_types is not None else None


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _to_task(row: sqlite3.Row) -> Task:
    params: dict[str, Any] = {}
    params_error = None
    try:
        loaded = json.loads(row["params"])
        if isinstance(loaded, dict):
            params = loaded
        else:
            params_error = f"task params must be a JSON object, got {type(loaded).__name__}"
    except (TypeError, ValueError) as exc:
        params_error = f"task params are not valid JSON ({exc})"
    return Task(
        id=row["id"],
        task_type=row["task_type"],
        params=params,
        status=TaskStatus(row["status"]),
        dependant_on=tuple(json.loads(row["dependant_on"] or "[]")),
        project_id=row["project_id"],
        worker_id=row["worker_id"],
        output_location=row["output_location"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        created_at=semantics.parse_time(row["created_at"]),
        updated_at=semantics.parse_time(row["updated_at"]),
        generation_started_at=semantics.parse_time(row["generation_started_at"]),
        generation_processed_at=semantics.parse_time(row["generation_processed_at"]),
        parent_id=row["parent_id"],
        params_error=params_error,
    )
