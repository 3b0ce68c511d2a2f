"""`complete_task`, `generate-upload-url` and the storage bucket, with Reigh's quirks (test-only).

Quirks kept on purpose (`reigh-contract.md` §3.2, §3.3, §5.3, §8):
- every successful call creates a generation, even for a task that is not In Progress (H4/H5),
  and still answers 200 (B3); `generations` counts them so tests can assert "exactly once";
- a signed upload refuses a second PUT to the same path; asking for a URL for an existing object
  fails with 500;
- travel orchestrators are completed here when their last segment completes.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import secrets
import time
from typing import Any

from tests.reigh_server.functions import Call, Reply, text
from tests.reigh_server.store import Store, now_text, orchestrator_ref, run_id_of

BUCKET = "image_uploads"


def public_url(base: str, path: str) -> str:
    return f"{base}/storage/v1/object/public/{BUCKET}/{path}"


def complete_task(call: Call, content_type: str) -> Reply:
    if "multipart/form-data" in content_type:
        return text(400, "Multipart upload (MODE 2) is not supported; send JSON")
    body, store = call.body, call.store
    task_id = body.get("task_id")
    storage_path = body.get("storage_path")
    if not task_id:
        return text(400, "task_id required")
    if storage_path:
        problem = _check_storage_path(store, task_id, storage_path, body.get("thumbnail_storage_path"))
        if problem:
            return problem
    elif not body.get("file_data") or not body.get("filename"):
        return text(400, "task_id, file_data (base64), and filename required")
    elif bool(body.get("first_frame_data")) != bool(body.get("first_frame_filename")):
        return text(400, "first_frame_data and first_frame_filename must be provided together")
    task = store.task(task_id)
    if task is None:
        return text(404, "Task not found")
    owner = store.owner_of(task["project_id"])
    if call.caller.kind == "pat" and owner != call.caller.user_id:
        return text(403, "Forbidden: Task does not belong to user")
    base = call.server.url
    if storage_path:
        location = public_url(base, storage_path)
        thumb = body.get("thumbnail_storage_path")
        thumb_url = public_url(base, thumb) if thumb else None
    else:
        try:
            data = base64.b64decode(body["file_data"], validate=True)
            thumb_data = (
                base64.b64decode(body["first_frame_data"], validate=True)
                if body.get("first_frame_data")
                else None
            )
        except (binascii.Error, ValueError):
            return text(400, "Invalid base64 file_data")
        path = f"{owner}/tasks/{task_id}/{body['filename']}"
        put_object(store, path, data, mimetypes.guess_type(body["filename"])[0], upsert=True)
        location, thumb_url = public_url(base, path), None
        if thumb_data is not None:
            thumb_path = f"{owner}/tasks/{task_id}/thumbnails/{body['first_frame_filename']}"
            put_object(store, thumb_path, thumb_data, "image/jpeg", upsert=True)
            thumb_url = public_url(base, thumb_path)
    _record_completion(store, task, location, thumb_url)
    _complete_orchestrator(store, task)
    return Reply(
        200,
        {
            "success": True,
            "public_url": location,
            "thumbnail_url": thumb_url,
            "message": "Task completed and file uploaded successfully",
        },
    )


def _check_storage_path(store: Store, task_id: str, path: str, thumb: str | None) -> Reply | None:
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "tasks":
        if parts[2] != task_id:
            task = store.task(task_id)
            if task is None or "orchestrator" not in task["task_type"]:
                return text(
                    403, "storage_path does not match task_id. Files must be uploaded for the correct task."
                )
        if thumb is not None:
            tparts = thumb.split("/")
            if len(tparts) < 4 or tparts[1] != "tasks":
                return text(400, "Invalid thumbnail_storage_path format.")
        return None
    if len(parts) < 2:
        return text(400, "Invalid storage_path format.")
    return None


def _record_completion(store: Store, task: dict[str, Any], location: str, thumb_url: str | None) -> None:
    with store.tx() as db:
        params = dict(task["params"])
        if thumb_url:
            params["thumbnail_url"] = thumb_url
        kind = (
            "regenerated"
            if db.execute("SELECT 1 FROM generations WHERE task_id=?", (task["id"],)).fetchone()
            else "original"
        )
        db.execute(
            "INSERT INTO generations (task_id, location, thumbnail_url, kind) VALUES (?, ?, ?, ?)",
            (task["id"], location, thumb_url, kind),
        )
        db.execute(
            "UPDATE tasks SET status='Complete', output_location=?, generation_processed_at=?, generation_created=1,"
            " params=? WHERE id=? AND status='In Progress'",
            (location, now_text(), json.dumps(params), task["id"]),
        )


def _complete_orchestrator(store: Store, task: dict[str, Any]) -> None:
    """§5.3, travel segments: the orchestrator finishes with its last segment; a `join_final_stitch`
    completes its (join or edit) orchestrator at once with the stitch's output."""
    if task["task_type"] == "join_final_stitch":
        _complete_with_stitch(store, task)
        return
    if task["task_type"] != "travel_segment":
        return
    orchestrator_id, run_id = orchestrator_ref(task["params"]), run_id_of(task["params"])
    parent = store.task(orchestrator_id) if orchestrator_id else None
    if parent is None or parent["status"] == "Complete":
        return
    details = parent["params"].get("orchestrator_details") or {}
    expected = details.get("num_new_segments_to_generate")
    siblings = [
        t
        for t in store.tasks("task_type = 'travel_segment' AND project_id = ?", (task["project_id"],))
        if run_id_of(t["params"]) == run_id
    ]
    if expected is None or len(siblings) != expected:
        return
    statuses = [t["status"] for t in siblings]
    now = now_text()
    with store.tx() as db:
        if any(s in ("Failed", "Cancelled") for s in statuses):
            bad = sum(s in ("Failed", "Cancelled") for s in statuses)
            db.execute(
                "UPDATE tasks SET status='Failed', error_message=?, updated_at=? WHERE id=?",
                (f"{bad} of {len(siblings)} segments failed", now, parent["id"]),
            )
        elif all(s == "Complete" for s in statuses):
            independent = details.get("independent_segments", True)
            location = None if independent else siblings[-1]["output_location"]
            db.execute(
                "UPDATE tasks SET status='Complete', output_location=?, generation_processed_at=?, updated_at=?"
                " WHERE id=?",
                (location, now, now, parent["id"]),
            )


def _complete_with_stitch(store: Store, task: dict[str, Any]) -> None:
    orchestrator_id = orchestrator_ref(task["params"])
    parent = store.task(orchestrator_id) if orchestrator_id else None
    if parent is None or parent["status"] == "Complete":
        return
    location = (store.task(task["id"]) or {}).get("output_location")  # `task` predates completion
    now = now_text()
    with store.tx() as db:
        db.execute(
            "UPDATE tasks SET status='Complete', output_location=?, generation_processed_at=?, updated_at=?"
            " WHERE id=?",
            (location, now, now, parent["id"]),
        )


# --- generate-upload-url and the bucket (§3.3) ---------------------------------------------------


def generate_upload_url(call: Call) -> Reply:
    body, store = call.body, call.store
    task_id, filename, content_type = body.get("task_id"), body.get("filename"), body.get("content_type")
    if not task_id or not filename or not content_type:
        return text(400, "task_id, filename, and content_type required")
    task = store.task(task_id)
    if task is None:
        return text(404, "Task not found")
    owner = store.owner_of(task["project_id"])
    if call.caller.kind == "pat" and owner != call.caller.user_id:
        return text(403, "Forbidden: Task does not belong to user")
    path = f"{owner}/tasks/{task_id}/{filename}"
    if store.scalar("SELECT 1 FROM objects WHERE path=?", (path,)):
        return text(500, "Failed to create signed upload URL: The resource already exists")
    reply: dict[str, Any] = {
        "storage_path": path,
        "expires_at": now_text(),
        **_grant(call, path, "upload_url", "token"),
    }
    if body.get("generate_thumbnail_url"):
        thumb = (
            f"{owner}/tasks/{task_id}/thumbnails/thumb_{int(time.time() * 1000)}_{secrets.token_hex(3)}.jpg"
        )
        reply.update(_grant(call, thumb, "thumbnail_upload_url", "thumbnail_token"))
        reply["thumbnail_storage_path"] = thumb
    return Reply(200, reply)


def _grant(call: Call, path: str, url_key: str, token_key: str) -> dict[str, str]:
    token = secrets.token_urlsafe(24)
    call.server.signed[token] = path
    url = f"{call.server.url}/storage/v1/object/upload/sign/{BUCKET}/{path}?token={token}"
    return {url_key: url, token_key: token}


def put_object(store: Store, path: str, data: bytes, content_type: str | None, *, upsert: bool) -> bool:
    with store.tx() as db:
        if not upsert and db.execute("SELECT 1 FROM objects WHERE path=?", (path,)).fetchone():
            return False
        db.execute(
            "INSERT OR REPLACE INTO objects (path, data, content_type) VALUES (?, ?, ?)",
            (path, data, content_type),
        )
    return True


def signed_put(server: Any, path: str, token: str, data: bytes, content_type: str | None) -> Reply:
    if server.signed.get(token) != path:
        return Reply(400, {"statusCode": "403", "error": "Unauthorized", "message": "invalid signature"})
    if not put_object(server.store, path, data, content_type, upsert=False):
        return Reply(
            400, {"statusCode": "409", "error": "Duplicate", "message": "The resource already exists"}
        )
    return Reply(200, {"Key": f"{BUCKET}/{path}"})
