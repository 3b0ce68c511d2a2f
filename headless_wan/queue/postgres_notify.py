"""LISTEN/NOTIFY wake-up for idle PostgreSQL workers.

One background thread holds one dedicated connection in LISTEN mode. The `tasks` trigger (migration
002) sends a notification whenever a task may have become claimable; the thread turns it into a
`pending` flag and sets the events of whoever is waiting. Polling stays the fallback: a waiter
always wakes after its timeout, and while the listener is disconnected it simply times out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

CHANNEL = "headless_wan_tasks"
_TICK_S = 0.25  # how often the thread looks at its close flag while no notification arrives
_RETRY_S = (0.5, 1.0, 2.0, 5.0)

log = logging.getLogger("headless_wan.queue.postgres")


class WorkListener:
    def __init__(self, connect: Callable[[], psycopg.Connection], payload: str) -> None:
        self._connect = connect
        self._payload = payload  # the queue's schema: other fleets in the same database are ignored
        self._lock = threading.Lock()
        self._pending = False
        self._waiters: set[threading.Event] = set()
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> None:
        """Start listening in the background. Once LISTEN is in place the thread wakes the waiters
        once, so nothing sent before that moment is missed."""
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout=_TICK_S * 8)

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    def consume(self) -> None:
        """Forget earlier notifications: called right before a claim looks at the table, so only
        a notification sent after that look can end the next wait early."""
        with self._lock:
            self._pending = False

    def wait(self, timeout_s: float, wake: threading.Event | None = None) -> bool:
        """Block until a notification, `wake` being set (e.g. by a stop request) or the timeout.
        Returns True only for a notification."""
        event = wake if wake is not None else threading.Event()
        with self._lock:
            if self._pending:
                self._pending = False
                return True
            self._waiters.add(event)
        try:
            event.wait(timeout_s)
        finally:
            with self._lock:
                self._waiters.discard(event)
                notified, self._pending = self._pending, False
        return notified

    def _wake_all(self) -> None:
        with self._lock:
            self._pending = True
            for event in self._waiters:
                event.set()

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    self._ready.set()
                    failures = 0
                    # Anything sent before LISTEN took effect (or while we were disconnected) was
                    # missed: one wake-up makes the worker look at the table once.
                    self._wake_all()
                    self._listen(conn)
            except (psycopg.Error, OSError) as exc:
                self._ready.clear()
                delay = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                log.warning(
                    "LISTEN connection lost (%s); polling until it is back in %.1f s",
                    type(exc).__name__,
                    delay,
                    extra={"action": "listen_lost"},
                )
                self._closing.wait(delay)

    def _listen(self, conn: psycopg.Connection) -> None:
        while not self._closing.is_set():
            for note in conn.notifies(timeout=_TICK_S):
                if note.payload == self._payload:
                    self._wake_all()
