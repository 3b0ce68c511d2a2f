"""Liveness from its own thread, with its own queue client.

Every interval it (1) extends the lease of the task being run and notices a user cancel or a lost
claim, telling the handler through the task's cancel token, and (2) reports the worker itself as
alive, with memory figures and recent log lines. Torch and FFmpeg release the GIL while they compute,
so this thread keeps beating while the main thread is busy in native code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from headless_wan.domain.tasks import ClaimedTask, TaskStatus
from headless_wan.domain.workers import WorkerBeat, WorkerStatus
from headless_wan.handlers.base import CancelToken
from headless_wan.queue.base import QueueClient
from headless_wan.worker.log_buffer import LogBuffer

VramProbe = Callable[[], tuple[int, int]]  # (total_mb, used_mb)


@dataclass(frozen=True)
class Watched:
    claim: ClaimedTask
    cancel: CancelToken


class Heartbeat:
    def __init__(
        self,
        queue: QueueClient,
        worker_id: str,
        interval_s: float,
        log: logging.Logger,
        *,
        vram_probe: VramProbe | None = None,
        log_buffer: LogBuffer | None = None,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self._interval_s = interval_s
        self._log = log
        self._vram_probe = vram_probe
        self._log_buffer = log_buffer
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watched: Watched | None = None
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.beats = 0

    def start(self) -> None:
        """Open the client and report the worker alive before anything is claimed (Reigh refuses
        claims from a worker without a row)."""
        self.queue.open()
        self._report(WorkerStatus.ACTIVE)
        self._thread.start()

    def stop(self, status: WorkerStatus = WorkerStatus.INACTIVE) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval_s + 5)
        try:
            self._report(status)
        except Exception as exc:  # shutting down: a lost last beat only delays the dashboard
            self._log.warning("final heartbeat failed: %s", exc, extra={"action": "heartbeat_failed"})
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
            try:
                if watched is not None:
                    self._extend_lease(watched)
                self._report(WorkerStatus.ACTIVE)
            except Exception as exc:  # liveness must survive outages; the lease covers a few misses
                self._log.warning(
                    "heartbeat failed: %s",
                    exc,
                    extra={"action": "heartbeat_failed", "task_id": watched.claim.id if watched else None},
                )

    def _extend_lease(self, watched: Watched) -> None:
        status = self.queue.heartbeat(watched.claim)
        self.beats += 1
        if status is TaskStatus.IN_PROGRESS:
            return
        task = self.queue.get(watched.claim.id)
        if task is not None and task.status is TaskStatus.CANCELLED:
            watched.cancel.cancel("user_cancelled")
        else:
            watched.cancel.cancel("lost_claim")

    def _report(self, status: WorkerStatus) -> None:
        with self._lock:
            watched = self._watched
        total_mb, used_mb = self._vram_probe() if self._vram_probe else (0, 0)
        self.queue.worker_alive(
            WorkerBeat(
                worker_id=self.worker_id,
                status=status,
                current_task_id=watched.claim.id if watched else None,
                vram_total_mb=total_mb,
                vram_used_mb=used_mb,
                logs=self._log_buffer.drain() if self._log_buffer else (),
            )
        )
