"""Log set-up, called only from the CLI. Records about a task carry task_id, task_type and action.

The worker binds the running task to a context variable (`task_scope`); `TaskContextFilter` copies
it onto every record that lacks it, so module-level loggers in handlers, the engine and libraries
(diffusers warnings, FFmpeg helpers) are attributable to their task without threading an adapter
through every call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime, timezone

CONTEXT_FIELDS = ("action", "task_id", "task_type", "worker_id", "stage", "step", "total")

_task_context: ContextVar[Mapping[str, str] | None] = ContextVar("headless_wan_task", default=None)


@contextlib.contextmanager
def task_scope(**fields: str) -> Iterator[None]:
    """Records logged in this thread while the block runs carry `fields` (task_id, task_type, ...)."""
    token = _task_context.set(fields)
    try:
        yield
    finally:
        _task_context.reset(token)


class TaskContextFilter(logging.Filter):
    """Adds the bound task's fields to records that lack them, and an `action` named after the
    logger (e.g. `engine.loading`) to task records logged without one."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _task_context.get()
        if bound:
            for name, value in bound.items():
                if getattr(record, name, None) is None:
                    setattr(record, name, value)
        if getattr(record, "task_id", None) is not None and getattr(record, "action", None) is None:
            record.action = record.name.removeprefix("headless_wan.")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        task_id = getattr(record, "task_id", None)
        if task_id:
            line = line.replace(record.getMessage(), f"[{str(task_id)[:8]}] {record.getMessage()}", 1)
        return line


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(TaskContextFilter())  # on the handler: it sees records from every logger
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter (HTTP request lines may carry signed URLs) stays out of INFO logs.
    for noisy in ("httpx", "httpcore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ContextAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A LoggerAdapter whose context is merged with each call's `extra` (the stock one replaces it,
    which would drop the per-record `action`)."""

    def process(self, msg: object, kwargs: dict) -> tuple[object, dict]:  # type: ignore[type-arg]
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs
