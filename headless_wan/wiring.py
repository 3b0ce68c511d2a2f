"""Composition root helpers: turn Settings into queues, handlers and a worker.

Only the CLI calls these. Heavy modules (the engine) are imported here lazily and the engine
itself imports torch only when a generation runs.
"""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from headless_wan.config import Settings
from headless_wan.domain.payload_limits import PayloadLimits
from headless_wan.errors import ConfigError
from headless_wan.handlers.base import Handler
from headless_wan.logging import TaskContextFilter
from headless_wan.media import url_policy
from headless_wan.queue.base import QueueClient
from headless_wan.storage.base import Storage
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.executor import Executor, WatchdogLimits
from headless_wan.worker.health import WorkerEvents
from headless_wan.worker.heartbeat import Heartbeat, VramProbe
from headless_wan.worker.log_buffer import LogBuffer
from headless_wan.worker.loop import Worker, WorkerOptions
from headless_wan.worker.runner import TaskRunner

if TYPE_CHECKING:  # psycopg and the engine are imported only when used
    from headless_wan import doctor as doctor_types
    from headless_wan.engine import Engine
    from headless_wan.queue.postgres import PostgresQueue

PLANNED_BACKENDS: dict[str, str] = {}


def build_queue(settings: Settings) -> QueueClient:
    if settings.queue in PLANNED_BACKENDS:
        raise ConfigError(
            f"The {settings.queue!r} queue backend ({PLANNED_BACKENDS[settings.queue]}) is not available in "
            "this version of headless_wan yet; use --queue sqlite or --queue postgres."
        )
    if settings.queue == "postgres":
        return build_postgres_queue(settings, build_storage(settings))
    if settings.queue == "reigh":
        return build_reigh_queue(settings)
    from headless_wan.queue.sqlite import SqliteQueue

    return SqliteQueue(
        settings.sqlite_path,
        build_storage(settings),
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
    )


def build_reigh_queue(settings: Settings) -> QueueClient:
    """Cheap and I/O-free: the worker builds one for its loop and one for its heartbeat thread."""
    from headless_wan.queue.reigh import DEFAULT_TIMEOUTS, ReighOptions, ReighQueue
    from headless_wan.queue.reigh.wire import Fn

    token = settings.supabase_service_role_key or settings.reigh_pat
    if not settings.supabase_url or token is None or not token.get_secret_value():
        raise ConfigError(
            "The reigh queue needs SUPABASE_URL and a credential: SUPABASE_SERVICE_ROLE_KEY (fleet workers) "
            "or HW_REIGH_PAT (a personal access token; best effort, local use)."
        )
    if not settings.supabase_url.startswith(("https://", "http://")):
        raise ConfigError("SUPABASE_URL must be an http(s) URL such as https://<project>.supabase.co")
    s = settings
    get_s = s.reigh_timeout_get_s
    timeouts = {
        **DEFAULT_TIMEOUTS,
        Fn.CLAIM.value: s.reigh_timeout_claim_s,
        Fn.UPDATE_STATUS.value: s.reigh_timeout_update_status_s,
        Fn.COMPLETE.value: s.reigh_timeout_complete_s,
        Fn.UPLOAD_URL.value: s.reigh_timeout_upload_url_s,
        Fn.CREATE_TASK.value: s.reigh_timeout_create_task_s,
        Fn.TASK_OUTPUT.value: get_s,
        Fn.PREDECESSOR.value: get_s,
        Fn.CHILDREN.value: get_s,
        Fn.SEGMENTS.value: get_s,
        Fn.WORKER_MODEL.value: s.reigh_timeout_worker_model_s,
        "postgrest": get_s,
        "heartbeat": s.reigh_timeout_heartbeat_s,
        "put": s.reigh_timeout_put_s,
        "thumbnail_put": s.reigh_timeout_thumbnail_put_s,
    }
    return ReighQueue(
        ReighOptions(
            base_url=s.supabase_url.rstrip("/"),
            token=token,
            service_role=s.supabase_service_role_key is not None,
            worker_id=s.worker_id,
            function_urls=dict(s.reigh_function_urls),
            timeouts=timeouts,
            retry_attempts=s.reigh_retry_attempts,
            retry_backoff_s=s.reigh_retry_backoff_s,
            retry_backoff_max_s=s.reigh_retry_backoff_max_s,
            complete_attempts=s.reigh_complete_attempts,
            max_attempts=s.max_attempts,
            same_model_only=s.reigh_same_model_only,
            max_task_wait_minutes=s.reigh_max_task_wait_minutes,
            base64_max_bytes=int(s.reigh_base64_max_mb * 1024 * 1024),
            contract=s.reigh_contract,
        )
    )


def build_postgres_queue(settings: Settings, storage: Storage | None = None) -> PostgresQueue:
    if settings.database_url is None or not settings.database_url.get_secret_value().strip():
        raise ConfigError(
            "The postgres queue needs a database: set DATABASE_URL (or HW_DATABASE_URL, or --database-url)."
        )
    from headless_wan.queue.postgres import PostgresQueue

    return PostgresQueue(
        settings.database_url.get_secret_value(),
        storage,
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
        notify=settings.notify,
        schema=settings.pg_schema,
        pool_min=settings.pg_pool_min,
        pool_max=settings.pg_pool_max,
    )


def build_storage(settings: Settings) -> Storage:
    if settings.storage == "local":
        return LocalStorage(settings.output_dir)
    if not settings.s3_bucket:
        raise ConfigError("S3 storage needs a bucket: set HW_S3_BUCKET.")
    from headless_wan.storage.s3 import S3Config, S3Storage

    secret = settings.s3_secret_access_key
    return S3Storage(
        S3Config(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            public_base_url=settings.s3_public_base_url,
            url_expiry_s=settings.s3_url_expiry_s,
        )
    )


def build_engine(settings: Settings) -> Engine:
    """One engine per process: it owns the resident pipeline that every generation handler shares."""
    from headless_wan.engine import Engine, engine_config_from_settings

    return Engine(engine_config_from_settings(settings))


def build_handlers(settings: Settings, engine: Engine, *, local_run: bool = False) -> list[Handler]:
    """Every built-in task type plus the configured plugins. Tasks may name local input files only
    when the setting says so, by default with the embedded queue or a local `run`."""
    from headless_wan.handlers.generate import generation_handlers
    from headless_wan.handlers.images import image_handlers
    from headless_wan.handlers.join import JoinConfig, join_handlers
    from headless_wan.handlers.travel import TravelConfig, travel_handlers

    # Every download a task causes goes through this one policy (media.fetch uses the installed one).
    url_policy.install(build_url_policy(settings))
    allow_local = settings.allow_local_inputs
    if allow_local is None:
        allow_local = local_run or settings.queue == "sqlite"
    travel = TravelConfig(
        allow_local_inputs=allow_local,
        download_max_mb=settings.download_max_mb,
        download_timeout_s=settings.download_timeout_s,
        max_input_pixels=settings.max_input_pixels,
        max_segments=settings.max_travel_segments,
        max_frames=settings.max_task_frames,
    )
    handlers = [
        *generation_handlers(engine, allow_local_inputs=allow_local),
        *image_handlers(engine, allow_local_inputs=allow_local),
        *travel_handlers(engine, travel),
        *join_handlers(engine, JoinConfig(inputs=travel, max_join_clips=settings.max_join_clips)),
    ]
    for spec in settings.handler_plugins:
        handlers.extend(load_plugin(spec))
    return handlers


def build_url_policy(settings: Settings) -> url_policy.UrlPolicy:
    """The configured allow list plus the queue's own storage hosts, whose URLs tasks legitimately name
    (a predecessor's output on Reigh's storage, a segment on the fleet's S3 endpoint)."""
    storage_hosts = (
        urlsplit(url).hostname for url in (settings.supabase_url, settings.s3_endpoint_url) if url
    )
    return url_policy.UrlPolicy.from_entries([*settings.input_allow_hosts, *filter(None, storage_hosts)])


def payload_limits(settings: Settings) -> PayloadLimits:
    return PayloadLimits(max_bytes=settings.max_task_json_kb * 1024, max_depth=settings.max_task_json_depth)


def build_executor(settings: Settings) -> Executor:
    """The executor process (not started yet): it builds the engine and handlers from Settings
    itself, with `executor_registry`, so plugins and the URL policy are installed there."""
    limits = WatchdogLimits(
        stall_s=settings.task_stall_s,
        timeout_s=settings.task_timeout_s,
        timeouts=dict(settings.task_timeouts),
    )
    from headless_wan.engine import vram_usage  # runs in the child; importing it here is torch-free

    factory = functools.partial(executor_registry, settings)
    return Executor(factory, limits, cancel_timeout_s=settings.cancel_timeout_s, vram_probe=vram_usage)


def executor_registry(settings: Settings) -> HandlerRegistry:
    """Runs in the executor process: the engine, the GPU fitness check (torch is imported here,
    never in the worker process) and every handler."""
    from headless_wan import doctor

    engine = build_engine(settings)
    if settings.startup_check and not _log_checks([doctor.gpu_check(settings, engine)]):
        raise ConfigError("the GPU check failed (see the log)")
    return HandlerRegistry(build_handlers(settings, engine), limits=payload_limits(settings))


def startup_checks(settings: Settings, engine: Engine | None) -> bool:
    """The doctor's checks, minus the queue (the worker opens it next and reports that itself),
    logged one line each. False when the worker could not do its job, so it stops before claiming.
    `engine=None` (HW_STARTUP_CHECK=false, or the executor process checks the GPU) skips the GPU
    check and with it the torch import."""
    from headless_wan import doctor

    return _log_checks(doctor.run_checks(settings, engine, queue=False))


def _log_checks(checks: list[doctor_types.Check]) -> bool:
    from headless_wan import doctor

    levels = {
        doctor.Level.OK: logging.INFO,
        doctor.Level.WARN: logging.WARNING,
        doctor.Level.FAIL: logging.ERROR,
    }
    for check in checks:
        logging.getLogger("headless_wan.startup").log(
            levels[check.level],
            "%s %s: %s",
            check.name,
            check.level.value,
            check.detail,
            extra={"action": "fitness" if check.name == "gpu" else "startup_check"},
        )
    return not doctor.failed(checks)


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
    runner: TaskRunner | HandlerRegistry,
    *,
    drain: bool,
    work_dir: Path | None = None,
    vram_probe: VramProbe | None = None,
    events: WorkerEvents | None = None,
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
        finish_budget_s=settings.finish_budget_s,
    )
    log_buffer = LogBuffer()
    log_buffer.addFilter(TaskContextFilter())  # shipped lines name their task too
    logging.getLogger("headless_wan").addHandler(log_buffer)
    heartbeat = Heartbeat(
        heartbeat_queue,
        settings.worker_id,
        settings.heartbeat_interval_s,
        logging.getLogger("headless_wan.heartbeat"),
        vram_probe=vram_probe,
        log_buffer=log_buffer,
    )
    return Worker(queue, runner, heartbeat, options, events)
