"""The test server's database: a real SQLite file shaped like Reigh's tables (test-only).

Column names follow `reigh-contract.md` §4.2. `seq` is a test-only insertion counter that breaks
`created_at` ties so FIFO order is exact. One lock serialises all access (the HTTP server is threaded).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, user_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS user_api_tokens (token TEXT PRIMARY KEY, user_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY, instance_type TEXT, status TEXT, last_heartbeat TEXT,
    current_model TEXT, metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'Queued',
    dependant_on TEXT,
    project_id TEXT NOT NULL REFERENCES projects(id),
    worker_id TEXT REFERENCES workers(id),
    output_location TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT, updated_at TEXT,
    generation_started_at TEXT, generation_processed_at TEXT,
    generation_created INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT UNIQUE  -- 2026-04 (20260213200001); never set by a 2026-01 server
);
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, location TEXT, thumbnail_url TEXT, kind TEXT
);
CREATE TABLE IF NOT EXISTS objects (path TEXT PRIMARY KEY, data BLOB NOT NULL, content_type TEXT);
CREATE TABLE IF NOT EXISTS system_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT, task_id TEXT, level TEXT, message TEXT
);
"""

JSON_COLUMNS = ("params", "dependant_on", "metadata")


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; rolled back on error."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- reads ---------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return decode(row) if row else None

    def tasks(
        self, where: str = "1=1", args: tuple[Any, ...] = (), order: str = "seq ASC"
    ) -> list[dict[str, Any]]:
        with self.lock:
            rows = self._conn.execute(f"SELECT * FROM tasks WHERE {where} ORDER BY {order}", args).fetchall()
        return [decode(r) for r in rows]

    def worker(self, worker_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._conn.execute("SELECT * FROM workers WHERE id = ?", (worker_id,)).fetchone()
        return decode(row) if row else None

    def scalar(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self.lock:
            row = self._conn.execute(sql, args).fetchone()
        return row[0] if row else None

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self._conn.execute(sql, args).fetchall()]

    def owner_of(self, project_id: str | None) -> str | None:
        if project_id is None:
            return None
        return self.scalar("SELECT user_id FROM projects WHERE id = ?", (project_id,))


def decode(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    for column in JSON_COLUMNS:
        if column in data and data[column] is not None:
            data[column] = json.loads(data[column])
    return data


def run_id_of(params: dict[str, Any]) -> str | None:
    """§5.3 step 1: the first of the run id spellings."""
    details = params.get("orchestrator_details") or {}
    full = params.get("full_orchestrator_payload") or {}
    for value in (
        params.get("orchestrator_run_id"),
        params.get("run_id"),
        details.get("run_id"),
        full.get("run_id"),
    ):
        if value:
            return str(value)
    return None


def orchestrator_ref(params: dict[str, Any]) -> str | None:
    """§5.1/§5.4: the sub-task's orchestrator reference (not validated as a uuid, as in Reigh)."""
    details = params.get("orchestrator_details") or {}
    original = (params.get("originalParams") or {}).get("orchestrator_details") or {}
    for value in (
        details.get("orchestrator_task_id"),
        original.get("orchestrator_task_id"),
        params.get("orchestrator_task_id_ref"),
        params.get("orchestrator_task_id"),
    ):
        if value:
            return str(value)
    return None


def cascade_ref(params: dict[str, Any]) -> str | None:
    """§5.4: the reference `update-task-status` cascades through (a different order than §5.1)."""
    details = params.get("orchestrator_details") or {}
    original = (params.get("originalParams") or {}).get("orchestrator_details") or {}
    for value in (
        params.get("orchestrator_task_id_ref"),
        details.get("orchestrator_task_id"),
        original.get("orchestrator_task_id"),
        params.get("orchestrator_task_id"),
    ):
        if value:
            return str(value)
    return None
