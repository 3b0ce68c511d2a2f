"""Storage protocol and deterministic keys (a re-run overwrites instead of duplicating)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Storage(Protocol):
    def put(self, local_path: Path, key: str) -> str:
        """Store the file under `key` (overwriting) and return where it can be found."""
        ...


def output_key(task_id: str, filename: str) -> str:
    """`tasks/<task_id>/<filename>` with both parts reduced to safe characters."""
    safe_id = _UNSAFE.sub("_", task_id).strip("._") or "task"
    safe_name = _UNSAFE.sub("_", Path(filename).name).lstrip(".") or "output"
    return f"tasks/{safe_id}/{safe_name}"


SIDECAR_SUFFIX = ".settings.json"


def publish_result(storage: Storage, task_id: str, output: Path | None, thumbnail: Path | None) -> str | None:
    """Store a task's output (and its thumbnail and `<stem>.settings.json` sidecar beside it, when
    the handler wrote them); returns the output's location."""
    if thumbnail is not None:
        storage.put(thumbnail, output_key(task_id, thumbnail.name))
    if output is None:
        return None
    sidecar = output.with_name(output.stem + SIDECAR_SUFFIX)
    if sidecar.is_file():
        storage.put(sidecar, output_key(task_id, sidecar.name))
    return storage.put(output, output_key(task_id, output.name))
