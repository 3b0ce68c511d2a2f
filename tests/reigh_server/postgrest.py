"""PostgREST reads of `tasks` (`GET /rest/v1/tasks?col=eq.value&select=...&order=...&limit=...`), test-only.

Only what the worker uses: `eq.` filters, `select`, `order=<col>.<asc|desc>` and `limit`.
"""

from __future__ import annotations

from typing import Any

from tests.reigh_server.functions import Reply
from tests.reigh_server.store import Store

COLUMNS = (
    "id",
    "task_type",
    "params",
    "status",
    "dependant_on",
    "project_id",
    "worker_id",
    "output_location",
    "error_message",
    "attempts",
    "created_at",
    "updated_at",
    "generation_started_at",
    "generation_processed_at",
    "generation_created",
)


def select_tasks(store: Store, query: dict[str, str]) -> Reply:
    where, args = [], []
    for key, value in query.items():
        if key in ("select", "order", "limit"):
            continue
        if key not in COLUMNS or not value.startswith("eq."):
            return Reply(400, {"code": "PGRST100", "message": f"unsupported filter {key}={value}"})
        where.append(f"{key} = ?")
        args.append(value[3:])
    order = "seq ASC"
    if "order" in query:
        column, _, direction = query["order"].partition(".")
        if column not in COLUMNS or direction not in ("asc", "desc"):
            return Reply(400, {"code": "PGRST100", "message": "bad order"})
        order = f"{column} {direction.upper()}, seq {direction.upper()}"
    columns = [c for c in (query.get("select") or "*").split(",") if c]
    if columns != ["*"] and any(c not in COLUMNS for c in columns):
        return Reply(400, {"code": "42703", "message": "column does not exist"})
    rows = store.tasks(" AND ".join(where) or "1=1", tuple(args), order)
    if "limit" in query:
        rows = rows[: int(query["limit"])]
    return Reply(200, [_pick(row, columns) for row in rows])


def _pick(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    if columns == ["*"]:
        return {c: row[c] for c in COLUMNS}
    return {c: row[c] for c in columns}
