"""The bodies of `worker`, `run` and `doctor` (the CLI parses; these wire and run).

Everything heavy (the engine, handlers, prometheus_client) is imported inside the functions, so
importing this module (and `--help`) stays cheap and torch-free.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from headless_wan.config import Settings
from headless_wan.domain.task_file import load_task_file
from headless_wan.domain.tasks import Task, TaskStatus

if TYPE_CHECKING:
    from headless_wan.health_server import HealthServer
    from headless_wan.metrics import Metrics

EXIT_TASK_FAILED = 1
EXIT_DOCTOR_FAILED = 1
EXIT_SETUP_FAILED = 2

log = logging.getLogger("headless_wan.cli")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from headless_wan.errors import ConfigError
    from headless_wan.wiring import build_queue, build_worker, startup_checks
    from headless_wan.worker.health import WorkerState
    from headless_wan.worker.signals import on_stop_signal

    metrics, server = _serve_metrics(settings)  # first, so /healthz says "starting" during the checks
    try:
        queue, heartbeat_queue = build_queue(settings), build_queue(settings)  # heartbeat: own connection
        try:
            runner, engine = _start_runner(settings)
        except ConfigError as exc:
            log.error("%s", exc, extra={"action": "startup_check"})
            ok = False
        else:
            ok = startup_checks(settings, engine if settings.startup_check else None)
        if not ok:
            if metrics is not None:
                metrics.state_changed(WorkerState.FAILED)
            return EXIT_SETUP_FAILED
        vram = runner.vram_usage if settings.executor else _vram_probe()  # the executor: CUDA is there
        probe = metrics.observe_vram(vram) if metrics is not None else vram
        worker = build_worker(
            settings, queue, heartbeat_queue, runner, drain=args.drain, vram_probe=probe, events=metrics
        )
        log.info(
            "worker %s on the %s queue (%s); task types: %s",
            settings.worker_id,
            settings.queue,
            "executor process" if settings.executor else "in-process",
            ", ".join(sorted(runner.task_types)),
            extra={"action": "worker_config"},
        )
        try:
            with on_stop_signal(worker.request_stop):
                return worker.run()
        finally:
            runner.close()
            if engine is not None:
                engine.close()
    finally:
        if server is not None:
            server.stop()


def _start_runner(settings: Settings) -> tuple[Any, Any]:
    """(runner, engine): the started executor process (engine None: it lives in the child), or
    with HW_EXECUTOR=false handlers and engine in this process."""
    from headless_wan.wiring import build_engine, build_executor, build_handlers, payload_limits
    from headless_wan.worker.dispatch import HandlerRegistry
    from headless_wan.worker.runner import InProcessRunner

    if settings.executor:
        executor = build_executor(settings)
        executor.start()  # builds the handlers and checks the GPU there; ConfigError if it cannot
        return executor, None
    engine = build_engine(settings)
    registry = HandlerRegistry(build_handlers(settings, engine), limits=payload_limits(settings))
    return InProcessRunner(registry), engine


def _vram_probe() -> Any:
    from headless_wan.engine import vram_usage

    return vram_usage


def _serve_metrics(settings: Settings) -> tuple[Metrics | None, HealthServer | None]:
    if settings.metrics_port is None:
        return None, None
    from headless_wan.health_server import HealthServer
    from headless_wan.metrics import Metrics

    metrics = Metrics(settings.worker_id, settings.queue)
    server = HealthServer(metrics, settings.worker_id, settings.metrics_host, settings.metrics_port)
    server.start()
    return metrics, server


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from headless_wan.queue.memory import InMemoryQueue
    from headless_wan.storage.local import LocalStorage
    from headless_wan.wiring import build_engine, build_handlers, build_worker, payload_limits
    from headless_wan.worker.dispatch import HandlerRegistry
    from headless_wan.worker.signals import on_stop_signal

    new_task = load_task_file(args.task_file, payload_limits(settings))
    queue = InMemoryQueue(LocalStorage(settings.output_dir), lease_s=settings.lease_s, max_attempts=1)
    queue.enqueue(new_task)
    engine = build_engine(settings)
    registry = HandlerRegistry(
        build_handlers(settings, engine, local_run=True), limits=payload_limits(settings)
    )
    worker = build_worker(settings, queue, queue, registry, drain=True, events=_terminal_progress())
    try:
        with on_stop_signal(worker.request_stop):
            code = worker.run()
    finally:
        engine.close()
    task = queue.get(new_task.id)
    assert task is not None
    if task.status is TaskStatus.COMPLETE:
        for child in queue.children(task.id):
            log.info("child %s %s: %s", child.task_type, child.id, child.output_location)
        print(task.output_location or "")
        return code
    print(f"headless_wan: task {task.id} ended {task.status.value}: {_reason(queue, task)}", file=sys.stderr)
    return code or EXIT_TASK_FAILED


def _terminal_progress() -> Any:
    """A progress bar when a person watches (stderr is a terminal); None otherwise."""
    if not sys.stderr.isatty():
        return None
    from headless_wan.worker.terminal import DropProgressRecords, TerminalProgress

    for handler in logging.getLogger().handlers:
        handler.addFilter(DropProgressRecords())
    return TerminalProgress(sys.stderr)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Print one line per check; exit 1 when the worker could not do its job here."""
    from headless_wan import doctor
    from headless_wan.wiring import build_engine

    checks = doctor.run_checks(settings, build_engine(settings))
    print(doctor.render(checks))
    return EXIT_DOCTOR_FAILED if doctor.failed(checks) else 0


def _reason(queue: Any, task: Task) -> str:
    if task.error_message:
        return task.error_message
    pending = [c for c in queue.children(task.id) if not c.status.is_terminal]
    if pending:
        return f"{len(pending)} child task(s) could not run (blocked dependencies?)"
    return "no result"
