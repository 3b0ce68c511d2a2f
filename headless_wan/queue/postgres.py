"""PostgreSQL queue: many machines, one database (fleet mode).

Same rules as the SQLite queue (`semantics`), with row locks instead of SQLite's single write
lock: the claim takes the oldest claimable row with `FOR UPDATE SKIP LOCKED`, so concurrent
workers never wait on (or take) the same row; expired leases are swept on every claim with
`SKIP LOCKED` too, so two sweepers never requeue the same task; a parent is locked before its
children are read, so two children finishing at once cannot both miss settling it. Idle workers
block in `wait_for_work`, woken by LISTEN/NOTIFY (`postgres_notify`), with polling as the fallback.
All times come from the injected clock, as on SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool

from headless_wan.domain.tasks import ClaimedTask, Task
from headless_wan.errors import ConfigError, QueueUnavailable
from headless_wan.queue import semantics
from headless_wan.queue.postgres_notify import WorkListener
from headless_wan.queue.postgres_rows import Row, as_uuid, lenient_json_loads, require_uuid, to_task, utc
from headless_wan.queue.postgres_schema import Q, describe_schema, migrate, pending, set_search_path
from headless_wan.queue.sql_files import Migration
from headless_wan.queue.sql_queue import SqlQueue
from headless_wan.storage.base import Storage

Db = psycopg.Connection[Row]


class PostgresQueue(SqlQueue):
    def __init__(
        self,
        dsn: str,
        storage: Storage | None = None,
        *,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = semantics.utc_now,
        notify: bool = True,
        schema: str | None = None,
        pool_min: int = 1,
        pool_max: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(Q, storage, lease_s=lease_s, max_attempts=max_attempts, clock=clock)
        self._dsn = dsn  # secret: never logged, never in a message
        self._notify = notify
        self._schema = schema
        self._pool_size = (pool_min, max(pool_min, pool_max))
        self._timeout_s = connect_timeout_s
        self._pool: ConnectionPool[Db] | None = None
        self._listener: WorkListener | None = None
        self._payload = ""
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> list[Migration]:
        """Create or upgrade the schema; returns the migrations applied now (none when current)."""
        try:
            with self._connect() as conn:
                return migrate(conn, self._schema)
        except psycopg.OperationalError as exc:
            raise QueueUnavailable(f"Cannot reach the PostgreSQL queue: {_describe(exc)}") from exc

    def check(self) -> str:
        """One direct connection (no pool, no retries): the database answers and the schema is
        migrated. Returns a description without credentials; raises QueueUnavailable/ConfigError."""
        try:
            with self._connect() as conn:
                return describe_schema(conn, self._schema)
        except psycopg.Error as exc:
            raise QueueUnavailable(f"Cannot reach the PostgreSQL queue: {_describe(exc)}") from exc

    def open(self) -> None:
        with self._lock:
            if self._pool is not None:
                return
            pool: ConnectionPool[Db] = ConnectionPool(
                self._dsn,
                min_size=self._pool_size[0],
                max_size=self._pool_size[1],
                kwargs={
                    "autocommit": True,
                    "row_factory": dict_row,
                    "connect_timeout": self._connect_timeout,
                },
                configure=self._configure,
                open=False,
                name="headless_wan",
                timeout=self._timeout_s,
                num_workers=1,
            )
            try:
                pool.open(wait=True, timeout=self._timeout_s)
                with pool.connection() as conn:
                    missing = pending(conn)
                    self._payload = conn.execute(Q["current_schema"]).fetchone()["name"]  # type: ignore[index]
            except psycopg.Error as exc:
                pool.close()
                raise QueueUnavailable(f"Cannot reach the PostgreSQL queue: {_describe(exc)}") from exc
            if missing:
                pool.close()
                names = ", ".join(f"{m.version:03d}_{m.name}" for m in missing)
                raise ConfigError(
                    f"The PostgreSQL queue schema is not up to date (missing {names}); "
                    "run `python -m headless_wan migrate` once."
                )
            self._pool = pool

    def close(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> PostgresQueue:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_work(self, timeout_s: float, wake: threading.Event | None = None) -> bool:
        """Block until a task may have become claimable (True), or `wake` is set or the timeout
        passes (False). The queue itself sets `wake` when work arrives, so pass an event kept for
        this alone (the worker loop's `_wake`, which its stop request also sets), never a stop
        event. Without LISTEN/NOTIFY this is a plain interruptible wait."""
        listener = self._ensure_listener() if self._notify else None
        if listener is None:  # never raises: the worker loop's idle wait must not crash it
            (wake or threading.Event()).wait(timeout_s)
            return False
        return listener.wait(timeout_s, wake)

    # --- worker side -----------------------------------------------------------------------

    def claim(self, worker_id: str, task_types: Collection[str] | None = None) -> ClaimedTask | None:
        if self._listener is not None:
            self._listener.consume()  # before looking: a notification during the claim is kept
        return super().claim(worker_id, task_types)

    # --- the PostgreSQL dialect ------------------------------------------------------------

    def _to_task(self, row: Row) -> Task:
        return to_task(row)

    def _time_out(self, value: Any) -> datetime | None:
        return utc(value)

    def _json(self, value: Any) -> Jsonb:
        return Jsonb(value)

    def _id_list(self, ids: Sequence[str]) -> list[str]:
        return [require_uuid(task_id, "dependant_on entry") for task_id in ids]

    def _new_id(self, task_id: str, what: str) -> str:
        return require_uuid(task_id, what)

    def _lookup_id(self, task_id: str | None) -> str | None:
        return as_uuid(task_id)

    # --- connections -----------------------------------------------------------------------

    @property
    def _connect_timeout(self) -> int:
        return max(1, round(self._timeout_s))

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        set_search_path(conn, self._schema)
        set_json_loads(lenient_json_loads, conn)

    def _connect(self) -> psycopg.Connection[Row]:
        """A connection outside the pool (migrations, LISTEN), in autocommit mode."""
        return psycopg.connect(
            self._dsn, autocommit=True, row_factory=dict_row, connect_timeout=self._connect_timeout
        )

    def _ensure_listener(self) -> WorkListener | None:
        with self._lock:
            if self._listener is None and self._pool is not None:  # closed: plain waits
                self._listener = WorkListener(self._connect, self._payload)
                self._listener.start()
            return self._listener

    @contextmanager
    def _tx(self) -> Iterator[Db]:
        if self._pool is None:
            self.open()
        assert self._pool is not None
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:  # lost connection, pool timeout, deadlock: retry later
            raise QueueUnavailable(f"PostgreSQL queue is unavailable: {_describe(exc)}") from exc

    def _read(self, query: str, args: dict[str, Any]) -> list[Row]:
        with self._tx() as db:
            return db.execute(query, args).fetchall()


def _describe(exc: BaseException) -> str:
    # The first line only: the driver's message names host and port, never the password.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
