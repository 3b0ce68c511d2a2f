"""Fault injection for the Reigh test server, per endpoint (test-only).

Endpoints are named by edge function (`claim-next-task`, `complete_task`, ...), `heartbeat` (the
RPC), `tasks` (PostgREST reads) and `upload` (signed-URL PUTs to storage).

- `fail`: answer `status` (503 by default) without doing anything;
- `hang`: hold the request `seconds` (past the client's timeout), then apply it or not;
- `drop`: apply the request, then close the connection without answering (the client cannot
  tell whether it happened);
- `before`: run `action` (what another party does meanwhile: the app cancels, the server completes),
  then serve the request normally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Fault:
    kind: str
    remaining: int
    status: int = 503
    seconds: float = 0.0
    apply: bool = True
    action: Callable[[], None] | None = None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, list[Fault]] = {}
        self._released = threading.Event()
        self.fired: list[tuple[str, str]] = []  # (endpoint, kind), in order

    def fail(self, endpoint: str, times: int = 1, status: int = 503) -> None:
        self._add(endpoint, Fault("fail", times, status=status))

    def hang(self, endpoint: str, seconds: float, times: int = 1, *, apply: bool = True) -> None:
        self._add(endpoint, Fault("hang", times, seconds=seconds, apply=apply))

    def drop(self, endpoint: str, times: int = 1) -> None:
        self._add(endpoint, Fault("drop", times))

    def before(self, endpoint: str, action: Callable[[], None], times: int = 1) -> None:
        self._add(endpoint, Fault("before", times, action=action))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            rules = self._rules.get(endpoint) or []
            while rules and rules[0].remaining <= 0:
                rules.pop(0)
            if not rules:
                return None
            rules[0].remaining -= 1
            self.fired.append((endpoint, rules[0].kind))
            return rules[0]

    def pending(self, endpoint: str) -> int:
        with self._lock:
            return sum(f.remaining for f in self._rules.get(endpoint, []))

    def wait(self, seconds: float) -> None:
        """A hang that server shutdown can cut short."""
        self._released.wait(seconds)

    def release_all(self) -> None:
        self._released.set()

    def _add(self, endpoint: str, fault: Fault) -> None:
        with self._lock:
            self._rules.setdefault(endpoint, []).append(fault)
