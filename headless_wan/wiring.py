"""Composition root helpers: turn Settings into queues, handlers and a worker.

Only the CLI calls these. Heavy modules (the engine) are imported here lazily and the engine
itself imports torch only when a generation runs.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from pathlib import Path

from headless_wan.config import Settings
from headless_wan.errors import ConfigError
from headless_wan.handlers.base import Handler
from headless_wan.queue.base import QueueClient
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.heartbeat import Heartbeat, VramProbe
from headless_wan.worker.log_buffer import LogBuffer
from headless_wan.worker.loop import Worker, WorkerOptions

PLANNED_BACKENDS = {
    "reigh": "the Reigh edge-function queue",
    "postgres": "the PostgreSQL fleet queue",
}


def build_queue(settings: Settings) -> QueueClient:
    if settings.queue in PLANNED_BACKENDS:
        raise ConfigError(
            f"The {settings.queue!r} queue backend ({PLANNED_BACKENDS[settings.queue]}) is not available in "
            "this version of headless_wan yet; use --queue sqlite."
        )
    from headless_wan.queue.sqlite import SqliteQueue

    return SqliteQueue(
        settings.sqlite_path,
        LocalStorage(settings.output_dir),
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
    )


def build_handlers(settings: Settings) -> list[Handler]:
    handlers: list[Handler] = list(_generation_handlers(settings))
    for spec in settings.handler_plugins:
        handlers.extend(load_plugin(spec))
    return handlers


def _generation_handlers(settings: Settings) -> Iterable[Handler]:
    from headless_wan.engine import Engine, engine_config_from_settings
    from headless_wan.handlers.generate import generation_handlers

    return generation_handlers(Engine(engine_config_from_settings(settings)))


def load_plugin(spec: str) -> list[Handler]:
    """`package.module:factory` → the handlers that `factory()` returns."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"handler plugin {spec!r} must look like 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load handler plugin {spec!r}: {exc}") from exc
    return list(factory())


def build_worker(
    settings: Settings,
    queue: QueueClient,
    heartbeat_queue: QueueClient,
    registry: HandlerRegistry,
    *,
    drain: bool,
    work_dir: Path | None = None,
    vram_probe: VramProbe | None = None,
) -> Worker:
    options = WorkerOptions(
        worker_id=settings.worker_id,
        work_dir=work_dir or settings.work_dir,
        task_types=frozenset(settings.task_types) if settings.task_types else None,
        drain=drain,
        poll_min_s=settings.poll_min_s,
        poll_max_s=settings.poll_max_s,
        shutdown_grace_s=settings.shutdown_grace_s,
        cancel_timeout_s=settings.cancel_timeout_s,
        progress_interval_s=settings.progress_interval_s,
        keep_failed_workdirs=settings.keep_failed_workdirs,
    )
    log_buffer = LogBuffer()
    logging.getLogger("headless_wan").addHandler(log_buffer)
    heartbeat = Heartbeat(
        heartbeat_queue,
        settings.worker_id,
        settings.heartbeat_interval_s,
        logging.getLogger("headless_wan.heartbeat"),
        vram_probe=vram_probe,
        log_buffer=log_buffer,
    )
    return Worker(queue, registry, heartbeat, options)
