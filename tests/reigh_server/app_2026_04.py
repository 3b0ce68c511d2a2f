"""The 2026-04 generation of Reigh's edge functions (`banodoco/reigh-app`), where it differs (test-only).

Written from the app's `supabase/functions/*` and `supabase/migrations/*` (2026-02 … 2026-04):
- `create-task` takes `{family, project_id, input, idempotency_key?}`; a family without a resolver
  of its own must be an active `task_types` row and goes through the worker passthrough resolver
  (`input` becomes the params, `input.task_id` the id, `input.dependant_on` the dependencies);
  the old body is refused with 400 "family field is required"; a repeated idempotency key answers
  the task already created (`deduplicated`); errors are JSON envelopes.
- `update-task-status` enforces a transition table and refuses with 409 (In Progress → In Progress
  only to reset `generation_started_at`, and nothing out of Complete, Failed or Cancelled).
- `complete_task` answers `follow_up`; when the generation cannot be created it marks the task
  Failed and answers a 500 envelope.
- the heartbeat RPC accepts `crashed`, which requeues (attempts + 1) or, from 3 attempts, fails what
  the worker held.
Keys are spelled here again, independently of the client's `wire.py`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from typing import Any

from tests.reigh_server import completion, workers
from tests.reigh_server import functions as fn
from tests.reigh_server.store import now_text

TRANSITIONS = {
    "Queued": ("In Progress", "Failed", "Cancelled"),
    "In Progress": ("Complete", "Failed", "Cancelled", "Queued"),
    "Complete": (),
    "Failed": (),
    "Cancelled": (),
}
# Active `task_types` rows the tests need (tasks.task_type is a foreign key to them since 2026-02).
DEFAULT_TASK_TYPES = frozenset(
    {
        "travel_orchestrator",
        "travel_segment",
        "travel_stitch",
        "generate_video",
        "vace",
        "wan_2_2_t2i",
        "image-generation",
        "join_clips_orchestrator",
        "join_clips_segment",
        "join_final_stitch",
        "edit_video_orchestrator",
        "inpaint_frames",
        # the test fixtures' types
        "echo",
        "fake_video",
        "reject",
        "spawn",
        "spawn_videos",
        "lookup",
        "wait",
        "flaky",
        "fatal",
        "boom",
        "journal",
    }
)
CRASH_ATTEMPT_CAP = 3
WORKER_STATUSES = ("active", "inactive", "error", "terminated", "spawning", "crashed")


def envelope(status: int, code: str, message: str) -> fn.Reply:
    return fn.Reply(
        status,
        {"error": code, "errorCode": code, "message": message, "recoverable": status >= 500 or status == 429},
    )


# --- create-task ---------------------------------------------------------------------------------


def create_task(call: fn.Call) -> fn.Reply:
    body = call.body
    if "family" not in body:
        return envelope(400, "invalid_request_body", "family field is required")
    family = body.get("family")
    if not isinstance(family, str) or not family.strip():
        return envelope(400, "invalid_request_body", "family must be a non-empty string when provided")
    project_id = body.get("project_id")
    if not isinstance(project_id, str) or not project_id.strip():
        return envelope(400, "invalid_request_body", "project_id required")
    payload = body.get("input")
    if not isinstance(payload, dict):
        return envelope(400, "invalid_request_body", "input must be an object when family is provided")
    owner = call.store.owner_of(project_id)
    if owner is None:
        return envelope(404, "project_not_found", "Project not found")
    if call.caller.kind == "pat" and owner != call.caller.user_id:
        return envelope(403, "project_forbidden", "Forbidden: You don't own this project")
    if family not in call.server.task_types:
        return envelope(400, "unknown_task_family", "Unknown task family")
    key = body.get("idempotency_key") if isinstance(body.get("idempotency_key"), str) else None
    return _insert_passthrough(call, family, project_id, payload, key or None)


def _insert_passthrough(
    call: fn.Call, family: str, project_id: str, payload: dict[str, Any], key: str | None
) -> fn.Reply:
    deps = payload.get("dependant_on")
    deps = deps if isinstance(deps, list) else None
    task_id = payload["task_id"] if isinstance(payload.get("task_id"), str) else str(uuid.uuid4())
    now = now_text()
    with call.store.tx() as db:
        # Which unique index Postgres reports first is its own business; the client copes with both.
        if key is not None:
            existing = db.execute(
                "SELECT id, project_id FROM tasks WHERE idempotency_key=?", (key,)
            ).fetchone()
            if existing is not None:
                if call.caller.kind == "pat" and existing["project_id"] != project_id:
                    return envelope(
                        403, "project_forbidden", "Forbidden: duplicate task belongs to a different project"
                    )
                return fn.Reply(
                    200, {"task_id": existing["id"], "status": "Task queued", "deduplicated": True}
                )
        try:
            db.execute(
                "INSERT INTO tasks (id, task_type, params, status, dependant_on, project_id, created_at,"
                " updated_at, idempotency_key) VALUES (?, ?, ?, 'Queued', ?, ?, ?, ?, ?)",
                (
                    task_id,
                    family,
                    json.dumps(payload),
                    json.dumps(deps) if deps else None,
                    project_id,
                    now,
                    now,
                    key,
                ),
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                return envelope(
                    500, "task_insert_failed", 'duplicate key value violates unique constraint "tasks_pkey"'
                )
            return envelope(500, "task_insert_failed", str(exc))
    return fn.Reply(200, {"task_id": task_id, "status": "Task queued"})


# --- update-task-status --------------------------------------------------------------------------


def update_task_status(call: fn.Call) -> fn.Reply:
    body = call.body
    task_id, status = body.get("task_id"), body.get("status")
    if not task_id or not status or not isinstance(task_id, str):
        return fn.text(400, "Missing required fields: task_id and status")
    if status not in TRANSITIONS:
        return fn.text(400, f"Invalid status. Must be one of: {', '.join(TRANSITIONS)}")
    for key, kind in (
        ("attempts", int),
        ("output_location", str),
        ("error_details", str),
        ("clear_worker", bool),
        ("reset_generation_started_at", bool),
    ):
        if key in body and not isinstance(body[key], kind):
            return fn.Reply(400, {"success": False, "message": f"{key} must be a {kind.__name__}"})
    task = call.store.task(task_id)
    if task is None or not fn.may_touch(call, task):
        return fn.text(404, "Task not found or not accessible")
    current = task["status"]
    reset_only = (
        body.get("reset_generation_started_at") is True
        and current == status == "In Progress"
        and not {"output_location", "error_details", "clear_worker", "attempts"} & set(body)
    )
    if not reset_only and status not in TRANSITIONS.get(current, ()):
        return fn.Reply(
            409,
            {
                "success": False,
                "task_id": task_id,
                "current_status": current,
                "requested_status": status,
                "allowed_transitions": list(TRANSITIONS.get(current, ())),
                "message": f"Invalid status transition: {current} → {status}",
            },
        )
    return fn.apply_status(call, task, status, cascade)


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_REF_PATHS = (
    ("orchestrator_task_id_ref",),
    ("orchestration_contract", "orchestrator_task_id"),
    ("orchestrator_task_id",),
    ("orchestrator_details", "orchestrator_task_id"),
    ("originalParams", "orchestrator_details", "orchestrator_task_id"),
)


# billing.ts extractOrchestratorRef: the contract block first, then the older spellings.
_LOOKUP_ORDER = (_REF_PATHS[1], _REF_PATHS[0], _REF_PATHS[3], _REF_PATHS[4], _REF_PATHS[2])


def _at(params: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = params
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def cascade(db: sqlite3.Connection, task: dict[str, Any], status: str) -> None:
    """`cascade_task_failure` (20260331040000): a failed child takes its orchestrator and siblings;
    a failed orchestrator (params with `orchestrator_details` and no uuid reference) its children."""
    params = task["params"] if isinstance(task["params"], dict) else {}
    first = next((_at(params, path) for path in _LOOKUP_ORDER if _at(params, path)), None)
    ref = first if isinstance(first, str) and _UUID.match(first) else None
    is_orchestrator = ref is None and "orchestrator_details" in params
    ref = task["id"] if is_orchestrator else ref
    if ref is None:
        return
    now, message = now_text(), f"Cascaded {status.lower()} from related task {task['id']}"
    for row in db.execute(
        "SELECT id, params FROM tasks WHERE status IN ('Queued', 'In Progress') AND id != ?", (task["id"],)
    ).fetchall():
        other = json.loads(row["params"])
        linked = any(_at(other, path) == ref for path in _REF_PATHS)
        if linked or (not is_orchestrator and row["id"] == ref):
            db.execute(
                "UPDATE tasks SET status=?, error_message=?, updated_at=? WHERE id=?",
                (status, message, now, row["id"]),
            )


# --- complete_task -------------------------------------------------------------------------------


def complete_task(call: fn.Call, content_type: str) -> fn.Reply:
    failure = call.server.take_generation_failure()
    if failure is not None:
        task = call.store.task(call.body.get("task_id") or "")
        if task is not None:
            with call.store.tx() as db:
                db.execute(
                    "UPDATE tasks SET status='Failed', error_message=?, updated_at=? WHERE id=?"
                    " AND status IN ('Queued', 'In Progress')",
                    (f"Generation creation failed: {failure}", now_text(), task["id"]),
                )
        return envelope(500, "internal_server_error", failure)
    reply = completion.complete_task(call, content_type)
    if reply.status == 200 and isinstance(reply.body, dict):
        reply.body["follow_up"] = {"status": "ok", "issues": []}
    elif isinstance(reply.body, str):
        return envelope(reply.status, "request_failed", reply.body)
    return reply


# --- heartbeat RPC (20260331060000) --------------------------------------------------------------


def heartbeat_rpc(call: fn.Call) -> fn.Reply:
    reply = workers.heartbeat_rpc(call, statuses=WORKER_STATUSES)
    if reply.status != 200 or call.body.get("status_param") != "crashed":
        return reply
    requeued, failed = _recover_crashed(call, call.body["worker_id_param"])
    reply.body = {**reply.body, "crash_requeued_tasks": requeued, "crash_failed_tasks": failed}
    return reply


def _recover_crashed(call: fn.Call, worker_id: str) -> tuple[int, int]:
    now = now_text()
    held = call.store.tasks("worker_id = ? AND status = 'In Progress'", (worker_id,))
    requeued = failed = 0
    with call.store.tx() as db:
        for task in held:
            attempts = task["attempts"] or 0
            if attempts < CRASH_ATTEMPT_CAP:
                db.execute(
                    "UPDATE tasks SET status='Queued', worker_id=NULL, generation_started_at=NULL,"
                    " attempts=?, updated_at=?, error_message=? WHERE id=?",
                    (attempts + 1, now, f"Requeued: worker crashed (attempt {attempts + 1})", task["id"]),
                )
                requeued += 1
                continue
            db.execute(
                "UPDATE tasks SET status='Failed', worker_id=NULL, generation_started_at=NULL, updated_at=?,"
                " error_message=? WHERE id=?",
                (now, f"Failed: worker crashed after exhausting retries (attempt {attempts})", task["id"]),
            )
            cascade(db, task, "Failed")
            failed += 1
    return requeued, failed
