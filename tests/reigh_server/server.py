"""A Reigh-compatible HTTP server on loopback for tests: edge functions, the heartbeat RPC, PostgREST
task reads and a storage bucket, over a real SQLite store (test-only; see `reigh-contract.md`).

`contract` picks the generation: "2026-01" (`banodoco/Reigh`, the contract document) or "2026-04"
(`banodoco/reigh-app` HEAD; its differences are in `app_2026_04.py`).

    with ReighServer(tmp_path, contract="2026-04") as server:
        task_id = server.submit("echo", {"message": "hi"})
        ...  # point SUPABASE_URL at server.url, SUPABASE_SERVICE_ROLE_KEY at server.service_key
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.reigh_server import app_2026_04, completion, workers
from tests.reigh_server import functions as fn
from tests.reigh_server.faults import Faults
from tests.reigh_server.postgrest import select_tasks
from tests.reigh_server.store import Store, now_text

FUNCTIONS = {
    "claim-next-task": fn.claim_next_task,
    "update-task-status": fn.update_task_status,
    "create-task": fn.create_task,
    "get-task-output": fn.get_task_output,
    "get-predecessor-output": fn.get_predecessor_output,
    "get-orchestrator-children": fn.get_orchestrator_children,
    "get-completed-segments": fn.get_completed_segments,
    "update-worker-model": workers.update_worker_model,
    "generate-upload-url": completion.generate_upload_url,
}
FUNCTIONS_2026_04 = {
    **FUNCTIONS,
    "create-task": app_2026_04.create_task,
    "update-task-status": app_2026_04.update_task_status,
}
CONTRACTS = ("2026-01", "2026-04")
HEARTBEAT_RPC = "func_worker_heartbeat_with_logs"
SIGNED_PREFIX = f"/storage/v1/object/upload/sign/{completion.BUCKET}/"
PUBLIC_PREFIX = f"/storage/v1/object/public/{completion.BUCKET}/"


@dataclass(frozen=True)
class Recorded:
    method: str
    endpoint: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class ReighServer:
    def __init__(self, root: Path, *, service_key: str | None = None, contract: str = "2026-01") -> None:
        if contract not in CONTRACTS:
            raise ValueError(f"contract must be one of {CONTRACTS}, got {contract!r}")
        self.contract = contract
        self.functions = FUNCTIONS_2026_04 if contract == "2026-04" else FUNCTIONS
        self.task_types: set[str] = set(app_2026_04.DEFAULT_TASK_TYPES)  # 2026-04's active task_types
        self._generation_failures: list[str] = []
        root.mkdir(parents=True, exist_ok=True)
        self.store = Store(root / "reigh.sqlite3")
        self.service_key = service_key or f"service-{secrets.token_hex(16)}"
        self.pat = secrets.token_hex(16)  # 32 characters, like Reigh's PATs
        self.user_id = str(uuid.uuid4())
        self.project_id = str(uuid.uuid4())
        with self.store.tx() as db:
            db.execute("INSERT INTO projects (id, user_id) VALUES (?, ?)", (self.project_id, self.user_id))
            db.execute("INSERT INTO user_api_tokens (token, user_id) VALUES (?, ?)", (self.pat, self.user_id))
        self.faults = Faults()
        self.signed: dict[str, str] = {}  # upload token → storage path
        self.api_task_types: set[str] = set()
        self.requests: list[Recorded] = []
        self.answers: list[tuple[str, int]] = []  # (endpoint, HTTP status) of every reply sent
        self.last_claimed: str | None = None
        self._double_claims = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="reigh-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReighServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.faults.release_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self.store.close()

    def __enter__(self) -> ReighServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the app (browser) does -------------------------------------------------------

    def submit(
        self,
        task_type: str,
        params: dict[str, Any],
        *,
        task_id: str | None = None,
        dependant_on: list[str] | None = None,
        project_id: str | None = None,
    ) -> str:
        task_id = task_id or str(uuid.uuid4())
        now = now_text()
        self.task_types.add(task_type)  # the app only creates tasks of types it knows
        with self.store.tx() as db:
            db.execute(
                "INSERT INTO tasks (id, task_type, params, dependant_on, project_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    task_type,
                    json.dumps(params),
                    json.dumps(dependant_on) if dependant_on else None,
                    project_id or self.project_id,
                    now,
                    now,
                ),
            )
        return task_id

    def cancel(self, task_id: str) -> None:
        """The browser writes Cancelled directly; for an orchestrator it cancels only Queued children."""
        now = now_text()
        with self.store.tx() as db:
            db.execute("UPDATE tasks SET status='Cancelled', updated_at=? WHERE id=?", (now, task_id))
            for row in db.execute("SELECT id, params FROM tasks WHERE status='Queued'").fetchall():
                if json.loads(row["params"]).get("orchestrator_task_id_ref") == task_id:
                    db.execute(
                        "UPDATE tasks SET status='Cancelled', updated_at=? WHERE id=?", (now, row["id"])
                    )

    def add_project(self, project_id: str) -> None:
        with self.store.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO projects (id, user_id) VALUES (?, ?)", (project_id, self.user_id)
            )

    def put(self, path: str, data: bytes, content_type: str) -> None:
        """Put a file in the bucket (as the app's own uploads do)."""
        completion.put_object(self.store, path, data, content_type, upsert=True)

    def public_url(self, path: str) -> str:
        return completion.public_url(self.url, path)

    def object_at(self, url: str) -> bytes:
        prefix = self.url + PUBLIC_PREFIX
        assert url.startswith(prefix), url
        data = self.object(unquote(url[len(prefix) :]))
        assert data is not None, url
        return data

    def double_claim_next(self, times: int = 1) -> None:
        """§8 H1: the next claims hand out the last claimed task again, which stays with its first claimer."""
        with self._lock:
            self._double_claims += times

    def fail_generation_next(self, message: str = "generation insert failed") -> None:
        """2026-04: the next complete_task cannot create the generation: the server marks the task
        Failed and answers a 500 envelope."""
        with self._lock:
            self._generation_failures.append(message)

    def take_generation_failure(self) -> str | None:
        with self._lock:
            return self._generation_failures.pop(0) if self._generation_failures else None

    def take_double_claim(self) -> dict[str, Any] | None:
        with self._lock:
            if self._double_claims <= 0 or self.last_claimed is None:
                return None
            self._double_claims -= 1
        return self.store.task(self.last_claimed)

    # --- what tests look at ----------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any]:
        row = self.store.task(task_id)
        assert row is not None, f"no task {task_id}"
        return row

    def generations(self, task_id: str) -> int:
        return int(self.store.scalar("SELECT COUNT(*) FROM generations WHERE task_id=?", (task_id,)))

    def object(self, path: str) -> bytes | None:
        return self.store.scalar("SELECT data FROM objects WHERE path=?", (path,))

    def object_paths(self) -> list[str]:
        return [r["path"] for r in self.store.rows("SELECT path FROM objects ORDER BY path")]

    def calls(self, endpoint: str) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests if r.endpoint == endpoint]

    def endpoints(self) -> list[str]:
        with self._lock:
            return [r.endpoint for r in self.requests]

    def record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def answered(self, endpoint: str, status: int) -> None:
        with self._lock:
            self.answers.append((endpoint, status))

    def client_errors(self) -> list[tuple[str, int]]:
        """The 4xx answers sent so far (the worker's mistakes, or auto-detection's one probe)."""
        with self._lock:
            return [(e, s) for e, s in self.answers if 400 <= s < 500]

    def caller(self, headers: Any) -> fn.Caller | fn.Reply:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return fn.text(401, "Missing or invalid Authorization header")
        token = auth[len("Bearer ") :]
        if token == self.service_key:
            return fn.Caller("service")
        user = self.store.scalar("SELECT user_id FROM user_api_tokens WHERE token=?", (token,))
        return fn.Caller("pat", user) if user else fn.text(403, "Invalid or expired token")

    def postgrest_allowed(self, headers: Any) -> bool:
        return (
            headers.get("apikey") == self.service_key
            and headers.get("Authorization") == f"Bearer {self.service_key}"
        )


def _handler_for(server: ReighServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        reigh = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    reigh: ReighServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        raw = self._read_body()
        endpoint, work = _route(
            self.reigh, method, parts.path, dict(parse_qsl(parts.query)), raw, self.headers
        )
        fault = self.reigh.faults.take(endpoint)
        if fault is not None and fault.kind == "before" and fault.action is not None:
            fault.action()
        if fault is not None and fault.kind == "fail":
            self._answer(fn.text(fault.status, "Service temporarily unavailable"), endpoint)
            return
        if fault is not None and fault.kind == "hang":
            self.reigh.faults.wait(fault.seconds)
            if not fault.apply:
                self.close_connection = True
                return
        reply = work()
        if fault is not None and fault.kind == "drop":
            self.close_connection = True  # applied, but the client never hears back
            return
        self._answer(reply, endpoint)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, reply: fn.Reply, endpoint: str = "unknown") -> None:
        self.reigh.answered(endpoint, reply.status)
        payload = reply.payload()
        try:
            self.send_response(reply.status)
            if payload or reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            self.close_connection = True


def _route(
    server: ReighServer, method: str, path: str, query: dict[str, str], raw: bytes, headers: Any
) -> Any:
    """(endpoint name for faults, a function producing the reply)."""
    if path.startswith("/functions/v1/"):
        name = path[len("/functions/v1/") :]
        return name, lambda: _edge_function(server, method, name, raw, headers)
    if path == f"/rest/v1/rpc/{HEARTBEAT_RPC}" and method == "POST":
        return "heartbeat", lambda: _rpc(server, raw, headers)
    if path == "/rest/v1/tasks" and method == "GET":
        return "tasks", lambda: _postgrest(server, query, headers)
    if path.startswith(SIGNED_PREFIX) and method == "PUT":
        target = unquote(path[len(SIGNED_PREFIX) :])
        server.record(Recorded("PUT", "upload", {"path": target, "bytes": len(raw)}, dict(headers)))
        return "upload", lambda: completion.signed_put(
            server, target, query.get("token", ""), raw, headers.get("Content-Type")
        )
    if path.startswith(PUBLIC_PREFIX) and method == "GET":
        data = server.object(unquote(path[len(PUBLIC_PREFIX) :]))
        return (
            "public",
            lambda: fn.Reply(200, data, "application/octet-stream") if data else fn.text(404, "Not found"),
        )
    return "unknown", lambda: fn.text(404, "Not found")


def _edge_function(server: ReighServer, method: str, name: str, raw: bytes, headers: Any) -> fn.Reply:
    body = _json_object(raw)
    server.record(Recorded(method, name, body, dict(headers)))
    if name != "complete_task" and name not in server.functions:
        return fn.text(404, f"Function {name} not found")
    if method != "POST":
        return fn.text(405, "Method not allowed")
    caller = server.caller(headers)
    if isinstance(caller, fn.Reply):
        return caller
    call = fn.Call(server.store, caller, body, server)
    if name == "complete_task":
        complete = app_2026_04.complete_task if server.contract == "2026-04" else completion.complete_task
        return complete(call, headers.get("Content-Type") or "")
    return server.functions[name](call)


def _rpc(server: ReighServer, raw: bytes, headers: Any) -> fn.Reply:
    body = _json_object(raw)
    server.record(Recorded("POST", "heartbeat", body, dict(headers)))
    if not server.postgrest_allowed(headers):
        return fn.Reply(401, {"code": "42501", "message": "permission denied for function"})
    beat = app_2026_04.heartbeat_rpc if server.contract == "2026-04" else workers.heartbeat_rpc
    return beat(fn.Call(server.store, fn.Caller("service"), body, server))


def _postgrest(server: ReighServer, query: dict[str, str], headers: Any) -> fn.Reply:
    server.record(Recorded("GET", "tasks", query, dict(headers)))
    if not server.postgrest_allowed(headers):
        return fn.Reply(401, {"code": "42501", "message": "permission denied for table tasks"})
    return select_tasks(server.store, query)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
