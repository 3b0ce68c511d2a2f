"""Reigh's wire format: every edge-function name, request body, response body and PostgREST query.

This is the only module that spells Reigh's keys (`reigh-contract.md` §3, and the 2026-04 additions of
`banodoco/reigh-app`: see `contract.py`). Requests are sent with
`exclude_none`, so an optional field the worker does not set is absent rather than `null`.
Responses ignore unknown keys (the server may add some) but require the ones the worker relies on.
Signed URLs and upload tokens are `SecretStr`, so a model's repr never shows them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter


class Fn(str, Enum):
    """Edge functions (under `/functions/v1/`). The completion function alone uses an underscore."""

    CLAIM = "claim-next-task"
    COMPLETE = "complete_task"
    UPLOAD_URL = "generate-upload-url"
    UPDATE_STATUS = "update-task-status"
    CREATE_TASK = "create-task"
    TASK_OUTPUT = "get-task-output"
    PREDECESSOR = "get-predecessor-output"
    CHILDREN = "get-orchestrator-children"
    SEGMENTS = "get-completed-segments"
    WORKER_MODEL = "update-worker-model"


HEARTBEAT_RPC = "func_worker_heartbeat_with_logs"  # PostgREST RPC, under /rest/v1/rpc/
TASKS_TABLE = "tasks"  # PostgREST table, under /rest/v1/
STORAGE_BUCKET = "image_uploads"
PUBLIC_OBJECT_PREFIX = f"/storage/v1/object/public/{STORAGE_BUCKET}/"
RUN_TYPE_GPU = "gpu"
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
MAX_LOGS_PER_BEAT = 100


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# --- claim-next-task (§3.1) ----------------------------------------------------------------------


class ClaimRequest(_Request):
    worker_id: str | None = None  # None in PAT mode: the PAT claim never records a worker
    run_type: Literal["gpu", "api"] | None = RUN_TYPE_GPU
    same_model_only: bool | None = None
    max_task_wait_minutes: int | None = None  # 2026-04: model affinity gives way after this wait


class ClaimResponse(_Response):
    task_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    task_type: str
    project_id: str | None = None


# --- update-task-status (§3.4) -------------------------------------------------------------------


class UpdateStatusRequest(_Request):
    task_id: str
    status: str
    output_location: str | None = None
    error_details: str | None = None
    attempts: int | None = None
    clear_worker: bool | None = None
    reset_generation_started_at: bool | None = None


class StatusGuard(_Response):
    """The JSON body of a refused status change: 400 from 2026-01 when the task is already Complete
    or Cancelled; 409 from 2026-04 for any transition outside its table."""

    success: bool = False
    current_status: str | None = None
    requested_status: str | None = None
    allowed_transitions: list[str] | None = None
    message: str = ""


class ErrorEnvelope(_Response):
    """2026-04's JSON error body (`create-task`, `complete_task`, ...)."""

    error: str | None = None
    errorCode: str | None = None  # the wire spelling
    message: str = ""
    recoverable: bool | None = None


# --- complete_task (§3.2) and generate-upload-url (§3.3) ------------------------------------------


class CompleteInline(_Request):
    """MODE 1: the file itself, base64-encoded (small outputs)."""

    task_id: str
    file_data: str
    filename: str
    first_frame_data: str | None = None
    first_frame_filename: str | None = None


class CompleteStored(_Request):
    """MODE 3 (`{owner}/tasks/{task_id}/{file}`) or MODE 4: a file already in the bucket."""

    task_id: str
    storage_path: str
    thumbnail_storage_path: str | None = None


class FollowUpIssue(_Response):
    step: str = ""
    code: str = ""
    message: str = ""


class FollowUp(_Response):
    """2026-04: what the server did after completing (generation placement, billing, orchestrator)."""

    status: str = "ok"  # "ok" or "degraded"
    issues: list[FollowUpIssue] = Field(default_factory=list)


class CompleteResponse(_Response):
    success: bool = True
    public_url: str | None = None
    thumbnail_url: str | None = None
    follow_up: FollowUp | None = None  # present from 2026-04 on


class UploadUrlRequest(_Request):
    task_id: str
    filename: str
    content_type: str
    generate_thumbnail_url: bool | None = None


class UploadUrlResponse(_Response):
    upload_url: SecretStr  # carries a signed token
    storage_path: str
    thumbnail_upload_url: SecretStr | None = None
    thumbnail_storage_path: str | None = None


# --- create-task (§3.5) -----------------------------------------------------------------------


class CreateTaskRequest(_Request):
    task_id: str
    task_type: str
    project_id: str
    params: dict[str, Any]
    dependant_on: list[str] | None = None


class CreateFamilyRequest(_Request):
    """2026-04: a worker's child goes through the passthrough resolver, which inserts `input` as
    the params, honours `input.task_id` as the id and reads `input.dependant_on`. A retry with the
    same `idempotency_key` answers the task already created instead of inserting another."""

    family: str  # the child's task_type
    project_id: str
    input: dict[str, Any]
    idempotency_key: str | None = None


INPUT_TASK_ID_KEY = "task_id"  # 2026-04 passthrough: inside `input`, hence inside the stored params
INPUT_DEPENDANT_ON_KEY = "dependant_on"


class CreateTaskResponse(_Response):
    task_id: str
    deduplicated: bool = False


DUPLICATE_KEY_MARKERS = ("duplicate key", "already exists", "23505")
# How each generation refuses the other's create-task body (HTTP 400).
LEGACY_CREATE_REFUSAL = "task_type required"  # 2026-01, given a 2026-04 body
FAMILY_REQUIRED = "family field is required"  # 2026-04, given a 2026-01 body

# Child → orchestrator link read by get-orchestrator-children, the cascade and the app (§7.1).
ORCHESTRATOR_REF_KEY = "orchestrator_task_id_ref"
# 2026-04's canonical link: `params.orchestration_contract.orchestrator_task_id` (read first).
ORCHESTRATION_CONTRACT_KEY = "orchestration_contract"
CONTRACT_ORCHESTRATOR_KEY = "orchestrator_task_id"


# --- reads (§3.6-§3.9) ------------------------------------------------------------------------


class TaskIdRequest(_Request):
    task_id: str


class TaskOutputResponse(_Response):
    status: str
    output_location: str | None = None
    params: dict[str, Any] | None = None
    dependant_on: list[str] | str | None = None


class PredecessorRow(_Response):
    predecessor_id: str
    output_location: str | None = None
    status: str | None = None


class PredecessorResponse(_Response):
    predecessor_id: str | None = None
    output_location: str | None = None
    predecessors: list[PredecessorRow] = Field(default_factory=list)
    all_complete: bool | None = None


class ChildrenRequest(_Request):
    orchestrator_task_id: str


class ChildRow(_Response):
    id: str
    task_type: str
    status: str
    params: dict[str, Any] | None = None
    output_location: str | None = None


class ChildrenResponse(_Response):
    tasks: list[ChildRow] = Field(default_factory=list)


class SegmentsRequest(_Request):
    run_id: str
    project_id: str | None = None


class SegmentRow(_Response):
    segment_index: int
    output_location: str | None = None


SEGMENT_ROWS = TypeAdapter(list[SegmentRow])  # a bare JSON array, not an object


# --- workers (§3.10, §3.12) ------------------------------------------------------------------


class WorkerModelRequest(_Request):
    worker_id: str
    current_model: str


class LogRow(_Request):
    timestamp: str
    level: str
    message: str
    task_id: str | None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def body(self) -> dict[str, Any]:  # task_id is sent even when null
        return self.model_dump(mode="json")


# `status_param` for a worker that dies of a worker-fatal error: 2026-04 requeues (or fails, at the
# attempt cap) what it still held; 2026-01's workers table knows only `error`.
STATUS_CRASHED = "crashed"
STATUS_ERROR = "error"


class HeartbeatRequest(_Request):
    """Every parameter is always sent: omitting `status_param` makes PostgREST refuse the call
    as ambiguous between two overloads (PGRST203)."""

    worker_id_param: str
    vram_total_mb_param: int
    vram_used_mb_param: int
    logs_param: list[LogRow]
    current_task_id_param: str | None
    status_param: str

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- PostgREST `tasks` rows (service role only, §3.13) -----------------------------------------


TASK_COLUMNS = (
    "id,task_type,params,status,dependant_on,project_id,worker_id,output_location,error_message,"
    "attempts,created_at,updated_at,generation_started_at,generation_processed_at"
)
OWNER_COLUMNS = "id,worker_id,status,attempts"


class TaskRow(_Response):
    id: str
    task_type: str | None = None
    params: Any = None
    status: str
    dependant_on: list[str] | str | None = None
    project_id: str | None = None
    worker_id: str | None = None
    output_location: str | None = None
    error_message: str | None = None
    attempts: int | None = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    generation_started_at: datetime | None = None
    generation_processed_at: datetime | None = None


TASK_ROWS = TypeAdapter(list[TaskRow])


def _eq(value: str) -> str:
    return f"eq.{value}"


def query_task(task_id: str, columns: str = TASK_COLUMNS) -> dict[str, str]:
    return {"id": _eq(task_id), "select": columns}


def query_held_by(worker_id: str, in_progress: str) -> dict[str, str]:
    return {
        "worker_id": _eq(worker_id),
        "status": _eq(in_progress),
        "select": TASK_COLUMNS,
        "order": "created_at.asc",
    }


def query_recent(limit: int, status: str | None) -> dict[str, str]:
    query = {"select": TASK_COLUMNS, "order": "created_at.desc", "limit": str(limit)}
    if status is not None:
        query["status"] = _eq(status)
    return query
