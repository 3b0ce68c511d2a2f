"""The task JSON file accepted by `run` and `submit`: {"task_type", "params", optional "id", ...}."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from headless_wan.domain.payload_limits import PayloadLimits, PayloadTooLarge
from headless_wan.domain.tasks import NewTask


class TaskFileError(ValueError):
    pass


class TaskFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_type: str = Field(min_length=1)
    params: dict[str, Any]
    id: str | None = None
    dependant_on: list[str] | None = None
    project_id: str | None = None

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, value: str | None) -> str | None:
        if value is not None:
            uuid.UUID(value)  # Reigh's ids are uuids; refuse anything else early
        return value

    def to_new_task(self) -> NewTask:
        extra = {"id": self.id} if self.id else {}
        return NewTask(
            task_type=self.task_type,
            params=self.params,
            dependant_on=tuple(self.dependant_on or ()),
            project_id=self.project_id,
            **extra,
        )


def load_task_file(path: Path, limits: PayloadLimits | None = None) -> NewTask:
    """The task in a JSON file, refused with a TaskFileError naming the problem (size and nesting are
    checked before decoding, so a pathological file gets a message, not a RecursionError)."""
    limits = limits or PayloadLimits()
    try:
        limits.check_size(Path(path).stat().st_size, "the task file")  # before reading a huge file
        text = Path(path).read_text(encoding="utf-8")
        limits.check_text(text, "the task file")
        raw = json.loads(text)
    except FileNotFoundError:
        raise TaskFileError(f"{path}: no such file") from None
    except PayloadTooLarge as exc:
        raise TaskFileError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskFileError(f"{path}: not a readable JSON file ({exc})") from None
    try:
        return TaskFile.model_validate(raw).to_new_task()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()
        )
        raise TaskFileError(f"{path}: not a valid task ({problems})") from None
