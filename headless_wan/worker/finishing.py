"""Durable finishing: the handler's result survives a queue outage or a restart.

The result is written to `manifest.json` in the task's workdir before anything is published. Publish
and the final status write then run under one retry policy with a total time budget. When the budget
runs out the outputs stay on disk: the worker retries between claims while it still holds the task,
and the next claim of the task (after a restart, `recover()` puts it back) finishes from the manifest
instead of running the handler again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from headless_wan.domain.tasks import ClaimedTask, TaskResult
from headless_wan.errors import ClaimLost, TransientError
from headless_wan.logging import ContextAdapter
from headless_wan.queue.base import QueueClient
from headless_wan.worker.health import WorkerEvents

MANIFEST = "manifest.json"
F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("headless_wan.worker")
Log = logging.LoggerAdapter[logging.Logger]
OnError = Callable[[ClaimedTask, Exception, Path, Log, float], object]


def persisting(write: F, on_retry: Callable[[str], None], budget_s: float) -> F:
    """`write` retried on transient errors until it lands or `budget_s` has passed in total."""

    def before_sleep(state: RetryCallState) -> None:
        on_retry(getattr(write, "__name__", "status_write"))

    return retry(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_delay(budget_s),
        wait=wait_exponential_jitter(multiplier=0.2, max=min(5.0, max(budget_s / 4, 0.05))),
        before_sleep=before_sleep,
        reraise=True,
    )(write)


def write_manifest(workdir: Path, task_id: str, result: TaskResult) -> None:
    """Atomically (temp file, fsync, rename), so a crash leaves the old manifest or the new one."""
    entry = {
        "task_id": task_id,
        "output": str(result.output) if result.output else None,
        "thumbnail": str(result.thumbnail) if result.thumbnail else None,
        "message": result.message,
        "waiting": result.waiting,
        "metrics": dict(result.metrics),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=workdir, prefix=".manifest-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entry, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, workdir / MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(workdir: Path, task_id: str) -> TaskResult | None:
    """The result of an earlier run of this task whose files are all still here; None otherwise
    (no manifest, another task's, unreadable, or a file gone: the task then simply runs again)."""
    try:
        entry = json.loads((workdir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("task_id") != task_id:
        return None
    files = {name: Path(entry[name]) if entry.get(name) else None for name in ("output", "thumbnail")}
    if any(path is not None and not path.is_file() for path in files.values()):
        return None
    return TaskResult(
        output=files["output"],
        thumbnail=files["thumbnail"],
        message=entry.get("message"),
        waiting=bool(entry.get("waiting")),
        metrics=entry.get("metrics") or {},
    )


@dataclass(frozen=True)
class Deferred:
    """A finished task whose completion could not be recorded within the budget."""

    claim: ClaimedTask
    result: TaskResult
    workdir: Path
    started: float


class Finisher:
    """Records a result: publish + status write under one budget; deferred when it runs out.
    `on_error` is the loop's outcome handler, for errors that are the task's (a refused output)."""

    def __init__(
        self, queue: QueueClient, events: WorkerEvents, worker_id: str, budget_s: float, on_error: OnError
    ) -> None:
        self.queue = queue
        self.events = events
        self.worker_id = worker_id
        self.budget_s = budget_s
        self.on_error = on_error
        self.deferred: list[Deferred] = []

    def persist(self, write: F) -> F:
        return persisting(write, self.events.status_write_retried, self.budget_s)

    def finish(self, claim: ClaimedTask, result: TaskResult, workdir: Path, log: Log, started: float) -> None:
        try:
            self._record(claim, result, log, self.persist)
        except TransientError as exc:
            # Out of budget: keep the outputs and the manifest; retried between claims, and the next
            # claim of this task finishes from the manifest.
            log.error(
                "could not record the result within %g s (%s); outputs kept in %s",
                self.budget_s,
                exc,
                workdir,
                extra={"action": "finish_deferred"},
            )
            self.deferred.append(Deferred(claim, result, workdir, started))
            return
        except ClaimLost as gone:  # requeued meanwhile: keep the outputs for our next claim of it
            log.info("result not recorded: %s; outputs kept", gone, extra={"action": "claim_lost"})
            self.events.task_finished(claim, "dropped", time.monotonic() - started)
            return
        except Exception as exc:
            self.on_error(claim, exc, workdir, log, started)
            return
        self._finished(claim, result, workdir, started)

    def retry_deferred(self) -> None:
        """One more try for each result that could not be recorded (Reigh has no leases: without
        this the task would stay In Progress until a restart)."""
        for deferred in list(self.deferred):
            claim = deferred.claim
            log = ContextAdapter(logger, {"worker_id": self.worker_id, "task_id": claim.id})
            try:
                self._record(claim, deferred.result, log, lambda write: write)
            except TransientError:
                continue
            except ClaimLost:  # requeued: our next claim of it finishes from the manifest
                pass
            except Exception as exc:
                log.error("could not record the result: %s", exc, extra={"action": "status_write_failed"})
            else:
                self._finished(claim, deferred.result, deferred.workdir, deferred.started)
            self.deferred.remove(deferred)

    def _record(self, claim: ClaimedTask, result: TaskResult, log: Log, persist: Callable[[F], F]) -> None:
        if result.waiting:
            persist(self.queue.mark_waiting)(claim, result.message or "Waiting for child tasks")
            log.info("waiting for child tasks", extra={"action": "task_waiting"})
            return
        size = _size_of(result.output, result.thumbnail)  # before a backend moves the files
        task = persist(self.queue.complete)(claim, result)
        log.info("complete: %s", loggable(task.output_location), extra={"action": "task_succeeded"})
        self.events.output_published(claim, size)

    def _finished(self, claim: ClaimedTask, result: TaskResult, workdir: Path, started: float) -> None:
        self.events.task_finished(
            claim, "waiting" if result.waiting else "complete", time.monotonic() - started
        )
        # Only now, with completion acknowledged, may local files go.
        shutil.rmtree(workdir, ignore_errors=True)


def loggable(location: str | None) -> str | None:
    """A location fit for the log: a presigned URL's query (its signature) is cut off."""
    if location and location.startswith(("http://", "https://")) and "?" in location:
        parts = urlsplit(location)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?…"
    return location


def _size_of(*paths: Path | None) -> int:
    """Bytes handed to the queue to publish (read before the workdir goes)."""
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size if path is not None else 0
        except OSError:  # a backend that moved the file away: nothing to count
            pass
    return total
