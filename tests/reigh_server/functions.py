"""Reigh's edge functions (all but completion and storage), written from `reigh-contract.md` §3 (test-only).

Deliberately independent of `headless_wan.queue.reigh.wire`: keys are spelled here again from the
contract, so a misspelt key on the client side makes a test fail instead of agreeing with itself.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.reigh_server.store import Store, cascade_ref, now_text

STATUSES = ("Queued", "In Progress", "Complete", "Failed", "Cancelled")


@dataclass(frozen=True)
class Caller:
    kind: str  # "service" or "pat"
    user_id: str | None = None


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list → JSON; str → plain text; None → empty
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def text(status: int, message: str) -> Reply:
    return Reply(status, message, "text/plain")


@dataclass
class Call:
    store: Store
    caller: Caller
    body: dict[str, Any]
    server: Any  # ReighServer: base URL, signed tokens, options


# --- claim-next-task (§3.1) ------------------------------------------------------------------


def claim_next_task(call: Call) -> Reply:
    body = call.body
    if call.caller.kind == "pat":
        return _claim_pat(call)
    worker_id = body.get("worker_id") or f"edge_{uuid.uuid4()}"
    run_type = body.get("run_type")
    same_model = bool(body.get("same_model_only"))
    hazard = call.server.take_double_claim()
    if hazard is not None:  # §8 H1: a second caller is handed a task the first one keeps
        return Reply(200, _claimed(hazard))
    with call.store.tx() as db:
        model = _active_model(db, worker_id)
        candidates = [
            t for t in _ready(db) if _run_type_of(call, t["task_type"]) == (run_type or "gpu") or not run_type
        ]
        if same_model and model:
            candidates = [t for t in candidates if _task_model(t["params"]) == model]
        candidates.sort(key=lambda t: (0 if model and _task_model(t["params"]) == model else 1, t["seq"]))
        if not candidates:
            return Reply(204)
        task = candidates[0]
        now = now_text()
        try:
            db.execute(
                "UPDATE tasks SET status='In Progress', worker_id=?, updated_at=?, generation_started_at=? WHERE id=?",
                (worker_id, now, now, task["id"]),
            )
        except sqlite3.IntegrityError as exc:  # the workers row does not exist (B8)
            return text(
                500, f"Internal server error: insert or update on table tasks violates foreign key ({exc})"
            )
    call.server.last_claimed = task["id"]
    return Reply(200, _claimed(task))


def _claim_pat(call: Call) -> Reply:
    with call.store.tx() as db:
        ready = [t for t in _ready(db) if call.store.owner_of(t["project_id"]) == call.caller.user_id]
        if not ready:
            return Reply(204)
        task = ready[0]
        now = now_text()
        db.execute(
            "UPDATE tasks SET status='In Progress', updated_at=?, generation_started_at=? WHERE id=?",
            (now, now, task["id"]),
        )
    return Reply(200, _claimed(task))


def _claimed(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": task["id"],
        "params": task["params"],
        "task_type": task["task_type"],
        "project_id": task["project_id"],
    }


def _ready(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = [dict(r) for r in db.execute("SELECT * FROM tasks WHERE status='Queued' ORDER BY seq")]
    status = {r["id"]: r["status"] for r in db.execute("SELECT id, status FROM tasks")}
    ready = []
    for row in rows:
        row["params"] = json.loads(row["params"])
        deps = json.loads(row["dependant_on"]) if row["dependant_on"] else []
        if all(status.get(dep) == "Complete" for dep in deps):
            ready.append(row)
    return ready


def _active_model(db: sqlite3.Connection, worker_id: str) -> str | None:
    row = db.execute(
        "SELECT current_model FROM workers WHERE id=? AND status='active'", (worker_id,)
    ).fetchone()
    return row[0] if row else None


def _task_model(params: dict[str, Any]) -> str | None:
    details = params.get("orchestrator_details") or {}
    return params.get("model_name") or details.get("model_name") or params.get("model")


def _run_type_of(call: Call, task_type: str) -> str:
    return "api" if task_type in call.server.api_task_types else "gpu"  # unknown types are gpu (H8)


# --- update-task-status (§3.4) ----------------------------------------------------------------


def update_task_status(call: Call) -> Reply:
    body = call.body
    task_id, status = body.get("task_id"), body.get("status")
    if not task_id or not status:
        return text(400, "task_id and status are required")
    if status not in STATUSES:
        return text(400, f"Invalid status. Must be one of: {', '.join(STATUSES)}")
    task = call.store.task(task_id)
    if task is None or not may_touch(call, task):
        return text(404, "Task not found or not accessible")
    current = task["status"]
    guard = None
    if current == "Complete" and status in ("Failed", "Cancelled"):
        guard = f"Cannot update a completed task to {status}"
    elif current == "Cancelled":
        guard = "Cannot update cancelled task"
    if guard:
        return Reply(
            400,
            {
                "success": False,
                "task_id": task_id,
                "current_status": current,
                "requested_status": status,
                "message": guard,
            },
        )
    return apply_status(call, task, status)


def apply_status(
    call: Call,
    task: dict[str, Any],
    status: str,
    cascade_with: Callable[[sqlite3.Connection, dict[str, Any], str], None] | None = None,
) -> Reply:
    """The accepted write, with the failure/cancel cascade (each generation has its own)."""
    sets, args = _status_changes(call.body, status)
    with call.store.tx() as db:
        db.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = ?", (*args, task["id"]))
        if status in ("Failed", "Cancelled"):
            (cascade_with or cascade)(db, task, status)
    return Reply(
        200,
        {
            "success": True,
            "task_id": task["id"],
            "status": status,
            "message": f"Task status updated to '{status}'",
        },
    )


def _status_changes(body: dict[str, Any], status: str) -> tuple[list[str], list[Any]]:
    now = now_text()
    sets, args = ["status = ?", "updated_at = ?"], [status, now]
    if status == "In Progress":
        sets.append("generation_started_at = ?")
        args.append(now)
    if status == "Complete":
        sets.append("generation_processed_at = ?")
        args.append(now)
    for key, column in (("output_location", "output_location"), ("error_details", "error_message")):
        if key in body:
            sets.append(f"{column} = ?")
            args.append(body[key])
    if isinstance(body.get("attempts"), int):
        sets.append("attempts = ?")
        args.append(body["attempts"])
    if body.get("clear_worker"):
        sets += ["worker_id = NULL", "generation_started_at = NULL"]
    if body.get("reset_generation_started_at"):
        sets.append("generation_started_at = ?")
        args.append(now)
    return sets, args


def cascade(db: sqlite3.Connection, task: dict[str, Any], status: str) -> None:
    """§5.4: a failed/cancelled child takes its orchestrator and non-terminal siblings with it."""
    ref = cascade_ref(task["params"])
    if not ref:
        return
    word = "failed" if status == "Failed" else "cancelled"
    message = f"Cascaded {word} from related task {task['id']}"
    now = now_text()
    targets = [ref]
    for row in db.execute("SELECT id, params FROM tasks WHERE status IN ('Queued', 'In Progress')"):
        if json.loads(row["params"]).get("orchestrator_task_id_ref") == ref or (
            (json.loads(row["params"]).get("orchestrator_details") or {}).get("orchestrator_task_id") == ref
        ):
            targets.append(row["id"])
    for target in targets:
        if target == task["id"]:
            continue
        db.execute(
            "UPDATE tasks SET status=?, error_message=?, updated_at=? WHERE id=? AND status IN ('Queued','In Progress')",
            (status, message, now, target),
        )


def may_touch(call: Call, task: dict[str, Any]) -> bool:
    return call.caller.kind == "service" or call.store.owner_of(task["project_id"]) == call.caller.user_id


# --- create-task (§3.5) ----------------------------------------------------------------------


def create_task(call: Call) -> Reply:
    body = call.body
    params, task_type, project_id = body.get("params"), body.get("task_type"), body.get("project_id")
    if not isinstance(params, dict) or not task_type:
        return text(400, "params, task_type required")
    if call.caller.kind == "service" and not project_id:
        return text(400, "project_id required for service role")
    if call.caller.kind == "pat" and call.store.owner_of(project_id) != call.caller.user_id:
        return text(403, "Forbidden: Project does not belong to user")
    deps = body.get("dependant_on")
    if isinstance(deps, str):
        deps = [deps]
    deps = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else None
    task_id = body.get("task_id") or str(uuid.uuid4())
    now = now_text()
    try:
        with call.store.tx() as db:
            db.execute(
                "INSERT INTO tasks (id, task_type, params, status, dependant_on, project_id, created_at, updated_at)"
                " VALUES (?, ?, ?, 'Queued', ?, ?, ?, ?)",
                (
                    task_id,
                    task_type,
                    json.dumps(params),
                    json.dumps(deps) if deps else None,
                    project_id,
                    now,
                    now,
                ),
            )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            return text(500, 'duplicate key value violates unique constraint "tasks_pkey"')
        return text(500, f"Failed to create task: {exc}")
    return Reply(200, {"task_id": task_id, "status": "Task queued"})


# --- reads (§3.6-§3.9) -------------------------------------------------------------------------


def get_task_output(call: Call) -> Reply:
    task = call.store.task(call.body.get("task_id") or "")
    if task is None or not may_touch(call, task):
        return text(404, "Task not found")
    return Reply(
        200,
        {
            "status": task["status"],
            "output_location": task["output_location"],
            "params": task["params"],
            "dependant_on": task["dependant_on"],
        },
    )


def get_predecessor_output(call: Call) -> Reply:
    task_id = call.body.get("task_id")
    if not task_id:
        return text(400, "task_id is required")
    task = call.store.task(task_id)
    if task is None:
        return text(404, "Task not found")
    deps = task["dependant_on"] or []
    if not deps:
        return Reply(200, {"predecessor_id": None, "output_location": None, "predecessors": []})
    rows = []
    for dep in deps:
        other = call.store.task(dep)
        status = other["status"] if other else "not_found"
        rows.append(
            {
                "predecessor_id": dep,
                "output_location": other["output_location"] if other and status == "Complete" else None,
                "status": status,
            }
        )
    all_complete = all(r["status"] == "Complete" for r in rows)
    return Reply(
        200,
        {
            "predecessor_id": deps[0],
            "output_location": rows[0]["output_location"] if all_complete else None,
            "status": "Complete" if all_complete else rows[0]["status"],
            "predecessors": rows,
            "all_complete": all_complete,
        },
    )


def get_orchestrator_children(call: Call) -> Reply:
    parent = call.body.get("orchestrator_task_id")
    if not parent:
        return text(400, "orchestrator_task_id is required")
    children = [t for t in call.store.tasks() if t["params"].get("orchestrator_task_id_ref") == parent]
    return Reply(
        200,
        {
            "tasks": [
                {k: t[k] for k in ("id", "task_type", "status", "params", "output_location")}
                for t in children
            ]
        },
    )


def get_completed_segments(call: Call) -> Reply:
    run_id, project_id = call.body.get("run_id"), call.body.get("project_id")
    if not run_id:
        return text(400, "run_id is required")
    if call.caller.kind == "pat" and not project_id:
        return text(400, "project_id required for user tokens")
    rows = []
    for t in call.store.tasks("task_type = 'travel_segment' AND status = 'Complete'"):
        index = t["params"].get("segment_index")
        if (
            t["params"].get("orchestrator_run_id") != run_id
            or isinstance(index, bool)
            or not isinstance(index, int)
        ):
            continue
        if project_id and t["project_id"] != project_id:
            continue
        rows.append({"segment_index": index, "output_location": t["output_location"]})
    return Reply(200, sorted(rows, key=lambda r: r["segment_index"]))  # a bare array
