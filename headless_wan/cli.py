"""Command line: `worker` (the default), `run TASK.json`, `submit TASK.json`, `tasks`, `migrate`, `doctor`.

This is the edge: the only place that reads settings (environment, `.env`, flags), sets up logging
and wires objects together (the longer command bodies live in `commands.py`). `--help`, `submit`
and `tasks` never import torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from headless_wan import __version__
from headless_wan import logging as hw_logging
from headless_wan.commands import cmd_doctor, cmd_run, cmd_worker
from headless_wan.config import Settings
from headless_wan.domain.task_file import TaskFileError, load_task_file
from headless_wan.domain.tasks import TaskStatus
from headless_wan.errors import HeadlessWanError

COMMANDS = ("worker", "run", "submit", "tasks", "migrate", "doctor")
EXIT_USAGE = 2

log = logging.getLogger("headless_wan.cli")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_with_default_command(list(sys.argv[1:] if argv is None else argv)))
    try:
        settings = Settings(**_overrides(args))
    except ValidationError as exc:
        print(f"headless_wan: invalid settings: {_settings_problems(exc)}", file=sys.stderr)
        return EXIT_USAGE
    hw_logging.configure(settings.log_level, settings.log_format)
    try:
        return int(args.handler(args, settings))
    except (HeadlessWanError, TaskFileError) as exc:
        print(f"headless_wan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `tasks | head`: the reader left; nothing more to say
        sys.stderr.close()
        return 0


# --- commands ----------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from headless_wan.wiring import build_queue, payload_limits

    new_task = load_task_file(args.task_file, payload_limits(settings))
    queue = build_queue(settings)
    queue.open()
    try:
        print(queue.enqueue(new_task))
    finally:
        queue.close()
    return 0


def cmd_tasks(args: argparse.Namespace, settings: Settings) -> int:
    from headless_wan.wiring import build_queue

    status = TaskStatus.parse(args.status) if args.status else None
    queue = build_queue(settings)
    queue.open()
    try:
        rows = queue.list_tasks(status, limit=args.limit)
    finally:
        queue.close()
    print(f"{'id':36}  {'task_type':22}  {'status':11}  {'att':>3}  {'updated':19}  output / error")
    for task in rows:
        updated = task.updated_at.strftime("%Y-%m-%d %H:%M:%S") if task.updated_at else ""
        detail = task.error_message if task.status is TaskStatus.FAILED else task.output_location
        print(
            f"{task.id:36}  {task.task_type[:22]:22}  {task.status.value:11}  {task.attempts:>3}  "
            f"{updated:19}  {(detail or '')[:80]}"
        )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Create or upgrade the PostgreSQL queue schema; safe to run again (and from many machines)."""
    from headless_wan.wiring import build_postgres_queue

    queue = build_postgres_queue(settings)
    applied = queue.migrate()
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    print(f"schema {settings.pg_schema}: up to date ({len(applied)} migration(s) applied now)")
    return 0


# --- parsing -----------------------------------------------------------------------------------


def _with_default_command(argv: list[str]) -> list[str]:
    """Plain `python -m headless_wan [options]` means `worker [options]`."""
    if any(arg in ("-h", "--help", "--version") for arg in argv) and not any(a in COMMANDS for a in argv):
        return argv
    return argv if any(arg in COMMANDS for arg in argv) else ["worker", *argv]


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS keeps a flag given before the command from being reset by the subcommand's default.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--queue",
        choices=("sqlite", "reigh", "postgres"),
        help="queue backend (env HW_QUEUE): sqlite (embedded default); postgres (DATABASE_URL); reigh "
        "(SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY, or HW_REIGH_PAT: best effort, local use only)",
    )
    common.add_argument("--sqlite-path", type=Path, help="SQLite queue file (env HW_SQLITE_PATH)")
    common.add_argument("--database-url", metavar="DSN", help="PostgreSQL DSN (env DATABASE_URL)")
    common.add_argument("--output-dir", type=Path, help="where outputs are stored (env HW_OUTPUT_DIR)")
    common.add_argument("--worker-id", help="this worker's id (env WORKER_ID)")
    common.add_argument(
        "--model-override",
        metavar="PRESET",
        help="force every generation onto one model preset (env HW_MODEL_OVERRIDE)",
    )
    common.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="env HW_LOG_LEVEL")
    common.add_argument("--log-format", choices=("text", "json"), help="env HW_LOG_FORMAT")
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="python -m headless_wan",
        description="Headless GPU worker: claims video-generation tasks from a queue and runs them.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"headless_wan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    worker = sub.add_parser("worker", parents=[common], help="poll the queue and run tasks (default)")
    worker.add_argument("--drain", action="store_true", help="exit once nothing is claimable")
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        default=argparse.SUPPRESS,
        help="serve /healthz and Prometheus /metrics on PORT (env HW_METRICS_PORT; bind HW_METRICS_HOST)",
    )
    worker.set_defaults(handler=cmd_worker)

    run = sub.add_parser("run", parents=[common], help="run one task JSON locally, with any child tasks")
    run.add_argument("task_file", type=Path, metavar="TASK.json")
    run.set_defaults(handler=cmd_run)

    submit = sub.add_parser("submit", parents=[common], help="enqueue a task JSON; prints its id")
    submit.add_argument("task_file", type=Path, metavar="TASK.json")
    submit.set_defaults(handler=cmd_submit)

    tasks = sub.add_parser("tasks", parents=[common], help="list tasks on the configured queue")
    tasks.add_argument("--status", help="Queued, 'In Progress', Complete, Failed or Cancelled")
    tasks.add_argument("--limit", type=int, default=50)
    tasks.set_defaults(handler=cmd_tasks)

    migrate = sub.add_parser(
        "migrate", parents=[common], help="create or upgrade the PostgreSQL queue schema"
    )
    migrate.set_defaults(handler=cmd_migrate)

    doctor = sub.add_parser(
        "doctor",
        parents=[common],
        help="check GPU, FFmpeg, disk, queue and storage; exit 1 if the worker could not run here",
    )
    doctor.set_defaults(handler=cmd_doctor)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "queue",
        "sqlite_path",
        "database_url",
        "output_dir",
        "worker_id",
        "model_override",
        "log_level",
        "log_format",
        "metrics_port",
    )
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _settings_problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
