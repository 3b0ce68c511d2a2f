"""Small helpers shared by tests: a controllable clock and condition waits (never fixed sleeps)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TypeVar

T = TypeVar("T")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def wait_for(predicate: Callable[[], T], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        pause.wait(0.02)


def allow_loopback_inputs() -> None:
    """Let task input downloads reach this machine's loopback test servers, as a local set-up does with
    HW_INPUT_ALLOW_HOSTS=["127.0.0.1"]. The conftest restores the strict policy after each test."""
    from headless_wan.media import url_policy

    url_policy.install(url_policy.UrlPolicy.from_entries(["127.0.0.1"]))
