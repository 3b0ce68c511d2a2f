"""Keeps the current claim alive from its own thread, with its own queue client.

Torch and FFmpeg release the GIL while they compute, so this thread keeps beating while the main
thread is busy in native code. It also notices when the task was cancelled or the claim lost, and
tells the running handler through its cancel token.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from headless_wan.domain.tasks import ClaimedTask, TaskStatus
from headless_wan.handlers.base import CancelToken
from headless_wan.queue.base import QueueClient


@dataclass(frozen=True)
class Watched:
    claim: ClaimedTask
    cancel: CancelToken


class Heartbeat:
    def __init__(self, queue: QueueClient, interval_s: float, log: logging.Logger) -> None:
        self.queue = queue
        self._interval_s = interval_s
        self._log = log
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watched: Watched | None = None
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.beats = 0

    def start(self) -> None:
        self.queue.open()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval_s + 5)
        self.queue.close()

    def watch(self, claim: ClaimedTask, cancel: CancelToken) -> None:
        with self._lock:
            self._watched = Watched(claim, cancel)

    def unwatch(self) -> None:
        with self._lock:
            self._watched = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                watched = self._watched
            if watched is None:
                continue
            try:
                self._beat(watched)
            except Exception as exc:  # liveness must survive outages; the lease covers a few misses
                self._log.warning(
                    "heartbeat failed: %s",
                    exc,
                    extra={"action": "heartbeat_failed", "task_id": watched.claim.id},
                )

    def _beat(self, watched: Watched) -> None:
        status = self.queue.heartbeat(watched.claim)
        self.beats += 1
        if status is TaskStatus.IN_PROGRESS:
            return
        task = self.queue.get(watched.claim.id)
        if task is not None and task.status is TaskStatus.CANCELLED:
            watched.cancel.cancel("user_cancelled")
        else:
            watched.cancel.cancel("lost_claim")
