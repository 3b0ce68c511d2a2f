"""Durable finishing: the handler's result survives a queue outage or a restart.

The result is written to `manifest.json` in the task's workdir before anything is published. Publish
and the final status write then run under one retry policy with a total time budget. When the budget
runs out the outputs stay on disk: the worker retries between claims while it still holds the task,
and the next claim of the task (after a restart, `recover()` puts it back) finishes from the manifest
instead of running the handler again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from headless_wan.domain.tasks import ClaimedTask, TaskResult
from headless_wan.errors import TransientError

MANIFEST = "manifest.json"
F = TypeVar("F", bound=Callable[..., Any])


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
