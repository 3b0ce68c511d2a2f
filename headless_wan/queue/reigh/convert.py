"""Reigh wire rows → frozen domain objects (and worker beats → heartbeat bodies)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Any

from headless_wan.domain.tasks import SegmentOutput, Task, TaskStatus
from headless_wan.domain.workers import WorkerBeat
from headless_wan.queue.reigh.wire import (
    CONTRACT_ORCHESTRATOR_KEY,
    INPUT_DEPENDANT_ON_KEY,
    INPUT_TASK_ID_KEY,
    LOG_LEVELS,
    MAX_LOGS_PER_BEAT,
    ORCHESTRATION_CONTRACT_KEY,
    ORCHESTRATOR_REF_KEY,
    ChildRow,
    HeartbeatRequest,
    LogRow,
    SegmentRow,
    TaskOutputResponse,
    TaskRow,
    UpdateStatusRequest,
)
from headless_wan.queue.semantics import Requeue

_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def split_params(raw: Any, task_id: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Params as a dict, plus an error text when the stored value was not a JSON object
    (the worker then fails the task with that text instead of guessing).

    A child made by 2026-04's passthrough resolver stores its whole `input` as params, so they also
    carry the `task_id` (its own id) and `dependant_on` the worker sent beside them: those two are
    taken out again, so a handler sees the same params under both generations."""
    if isinstance(raw, dict):
        if task_id is not None and raw.get(INPUT_TASK_ID_KEY) == task_id:
            raw = {k: v for k, v in raw.items() if k not in (INPUT_TASK_ID_KEY, INPUT_DEPENDANT_ON_KEY)}
        return raw, None
    if raw is None:
        return {}, None
    return {}, f"task params must be a JSON object, got {type(raw).__name__}"


def dependencies(raw: list[str] | str | None) -> tuple[str, ...]:
    """`dependant_on` was a single uuid before Reigh's 2026-01 migration; a uuid array since."""
    if raw is None:
        return ()
    return (raw,) if isinstance(raw, str) else tuple(raw)


def parent_of(params: dict[str, Any]) -> str | None:
    """2026-04 reads `orchestration_contract.orchestrator_task_id` first, then the older key."""
    contract = params.get(ORCHESTRATION_CONTRACT_KEY)
    ref = contract.get(CONTRACT_ORCHESTRATOR_KEY) if isinstance(contract, dict) else None
    if not (isinstance(ref, str) and ref):
        ref = params.get(ORCHESTRATOR_REF_KEY)
    return ref if isinstance(ref, str) and ref else None


def status_of(text: str) -> TaskStatus:
    return TaskStatus.parse(text)


def task_from_row(row: TaskRow) -> Task:
    params, params_error = split_params(row.params, row.id)
    return Task(
        id=row.id,
        task_type=row.task_type or "",
        params=params,
        status=status_of(row.status),
        dependant_on=dependencies(row.dependant_on),
        project_id=row.project_id,
        worker_id=row.worker_id,
        output_location=row.output_location,
        error_message=row.error_message,
        attempts=row.attempts or 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
        generation_started_at=row.generation_started_at,
        generation_processed_at=row.generation_processed_at,
        parent_id=parent_of(params),
        params_error=params_error,
    )


def task_from_output(task_id: str, out: TaskOutputResponse) -> Task:
    """`get-task-output` knows status, output, params and dependencies, but not the task type."""
    params, params_error = split_params(out.params, task_id)
    return Task(
        id=task_id,
        task_type=str(params.get("task_type", "")),
        params=params,
        status=status_of(out.status),
        dependant_on=dependencies(out.dependant_on),
        output_location=out.output_location,
        parent_id=parent_of(params),
        params_error=params_error,
    )


def task_from_child(row: ChildRow) -> Task:
    params, params_error = split_params(row.params, row.id)
    return Task(
        id=row.id,
        task_type=row.task_type,
        params=params,
        status=status_of(row.status),
        output_location=row.output_location,
        parent_id=parent_of(params),
        params_error=params_error,
    )


def segments(rows: list[SegmentRow]) -> list[SegmentOutput]:
    return sorted(
        (SegmentOutput(r.segment_index, r.output_location) for r in rows if r.output_location),
        key=lambda s: s.segment_index,
    )


def heartbeat_body(beat: WorkerBeat, *, status: str | None = None) -> HeartbeatRequest:
    """`status` overrides the beat's own (a generation that lacks the value gets its nearest)."""
    logs = [
        LogRow(
            timestamp=entry.timestamp.astimezone(timezone.utc).isoformat(),
            level=_level(entry.level),
            message=entry.message,
            task_id=entry.task_id or beat.current_task_id,
        )
        for entry in beat.logs[-MAX_LOGS_PER_BEAT:]  # the newest lines matter most
    ]
    return HeartbeatRequest(
        worker_id_param=beat.worker_id,
        vram_total_mb_param=int(beat.vram_total_mb),
        vram_used_mb_param=int(beat.vram_used_mb),
        logs_param=logs,
        current_task_id_param=beat.current_task_id,
        status_param=status or beat.status.value,
    )


def _level(level: str) -> str:
    norm = _LEVEL_ALIASES.get(level.upper(), level.upper())
    return norm if norm in LOG_LEVELS else "INFO"


@dataclass(frozen=True)
class Predecessor:
    task_id: str
    status: str | None
    output_location: str | None


@dataclass(frozen=True)
class PredecessorOutputs:
    """`get-predecessor-output`: outputs are only given once every dependency is Complete."""

    all_complete: bool
    predecessors: tuple[Predecessor, ...]


def requeue_request(task_id: str, outcome: Requeue) -> UpdateStatusRequest:
    """A release: back to Queued without a worker, or Failed once the attempt cap is reached (then
    `output_location` carries the message too, for older tooling)."""
    if outcome.status is TaskStatus.FAILED:
        return UpdateStatusRequest(
            task_id=task_id,
            status=outcome.status.value,
            attempts=outcome.attempts,
            error_details=outcome.message,
            output_location=outcome.message,
        )
    return UpdateStatusRequest(
        task_id=task_id,
        status=outcome.status.value,
        clear_worker=True,
        attempts=outcome.attempts,
        error_details=outcome.message,
    )
