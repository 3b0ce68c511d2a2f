"""Fixtures shared by the worker unit tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def background() -> Iterator[list[threading.Thread]]:
    """Threads a test starts the worker on; each must have stopped by the end of the test."""
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "worker thread did not stop"
