"""Reigh's worker endpoints: `update-worker-model` and the heartbeat RPC (§3.10, §3.12), test-only."""

from __future__ import annotations

import json

from tests.reigh_server.functions import Call, Reply, text
from tests.reigh_server.store import now_text

# --- workers (§3.10, §3.12) --------------------------------------------------------------------


def update_worker_model(call: Call) -> Reply:
    if call.caller.kind != "service":
        return text(403, "Service role authentication required")
    worker_id, model = call.body.get("worker_id"), (call.body.get("current_model") or "").strip()
    if not worker_id:
        return text(400, "Missing required field: worker_id")
    if not model:
        return text(400, "Missing required field: current_model")
    now = now_text()
    with call.store.tx() as db:
        changed = db.execute(
            "UPDATE workers SET current_model=?, last_heartbeat=?, status='active' WHERE id=?",
            (model, now, worker_id),
        ).rowcount
        if not changed:
            db.execute(
                "INSERT INTO workers (id, instance_type, status, last_heartbeat, current_model, created_at)"
                " VALUES (?, ?, 'active', ?, ?, ?)",
                (worker_id, call.body.get("instance_type") or "external", now, model, now),
            )
    return Reply(
        200,
        {
            "success": True,
            "worker_id": worker_id,
            "current_model": model,
            "last_heartbeat": now,
            "action": "updated" if changed else "inserted",
            "message": "ok",
        },
    )


HEARTBEAT_PARAMS = (
    "worker_id_param",
    "vram_total_mb_param",
    "vram_used_mb_param",
    "logs_param",
    "current_task_id_param",
    "status_param",
)


WORKER_STATUSES = ("active", "inactive", "error", "terminated", "spawning")  # the 2026-01 CHECK


def heartbeat_rpc(call: Call, statuses: tuple[str, ...] = WORKER_STATUSES) -> Reply:
    body = call.body
    if "status_param" not in body:  # two overloads match: PostgREST refuses (PGRST203)
        return Reply(300, {"code": "PGRST203", "message": "Could not choose the best candidate function"})
    unknown = set(body) - set(HEARTBEAT_PARAMS)
    if unknown or not body.get("worker_id_param"):
        return Reply(404, {"code": "PGRST202", "message": f"no function matches {sorted(body)}"})
    if body["status_param"] not in statuses:
        return Reply(400, {"code": "23514", "message": "workers_status_check violated"})
    now, worker_id = now_text(), body["worker_id_param"]
    meta = {"vram_total_mb": body.get("vram_total_mb_param"), "vram_used_mb": body.get("vram_used_mb_param")}
    logs = body.get("logs_param") or []
    with call.store.tx() as db:
        row = db.execute("SELECT metadata FROM workers WHERE id=?", (worker_id,)).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO workers (id, instance_type, status, last_heartbeat, metadata, created_at)"
                " VALUES (?, 'external', ?, ?, ?, ?)",
                (worker_id, body["status_param"], now, json.dumps(meta), now),
            )
        else:
            merged = {**json.loads(row[0] or "{}"), **meta}
            db.execute(
                "UPDATE workers SET status=?, last_heartbeat=?, metadata=? WHERE id=?",
                (body["status_param"], now, json.dumps(merged), worker_id),
            )
        for entry in logs:
            db.execute(
                "INSERT INTO system_logs (worker_id, task_id, level, message) VALUES (?, ?, ?, ?)",
                (
                    worker_id,
                    entry.get("task_id") or body.get("current_task_id_param"),
                    entry.get("level"),
                    entry.get("message"),
                ),
            )
    return Reply(
        200, {"success": True, "heartbeat_updated": True, "logs_inserted": len(logs), "log_errors": 0}
    )
