"""PostgreSQL rows ↔ domain objects, and the uuid checks (Reigh's ids are uuids; the columns are too)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from headless_wan.domain.tasks import Task, TaskStatus
from headless_wan.errors import InvalidTaskParams

Row = dict[str, Any]


@dataclass(frozen=True)
class UndecodableJson:
    """Stands in for a jsonb value Python cannot decode (nested past its recursion limit): PostgreSQL
    stores thousands of levels, and one such row must fail as that task, not crash every claim."""

    reason: str


def lenient_json_loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        return UndecodableJson("nested too deeply to decode")


def as_uuid(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(uuid.UUID(text))
    except (ValueError, AttributeError, TypeError):
        return None


def require_uuid(text: str, what: str) -> str:
    value = as_uuid(text)
    if value is None:
        raise InvalidTaskParams(
            f"{what} {text!r} is not a uuid (the PostgreSQL queue stores Reigh's uuid ids)"
        )
    return value


def as_str(value: object) -> str | None:
    return None if value is None else str(value)


def utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(timezone.utc) if moment is not None else None


def to_task(row: Row) -> Task:
    params: dict[str, Any] = {}
    params_error = None
    if isinstance(row["params"], dict):
        params = row["params"]
    elif isinstance(row["params"], UndecodableJson):
        params_error = f"task params are {row['params'].reason}"
    else:
        params_error = f"task params must be a JSON object, got {type(row['params']).__name__}"
    return Task(
        id=str(row["id"]),
        task_type=row["task_type"],
        params=params,
        status=TaskStatus(row["status"]),
        dependant_on=tuple(str(d) for d in row["dependant_on"] or ()),
        project_id=row["project_id"],
        worker_id=row["worker_id"],
        output_location=row["output_location"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        generation_started_at=utc(row["generation_started_at"]),
        generation_processed_at=utc(row["generation_processed_at"]),
        parent_id=as_str(row["parent_id"]),
        params_error=params_error,
    )
