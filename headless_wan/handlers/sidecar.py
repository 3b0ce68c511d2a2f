"""The settings sidecar: `<output stem>.settings.json` next to every video or image output.

It records what a user needs to reproduce or report a result: the task, the model name as asked,
the preset it resolved to, pipeline class and family, seed, steps, resolution, frames, LoRAs with
their multipliers and the per-step phase plan, then the engine's full effective settings and the
timings. LoRA URLs are stored without their query strings (the engine redacts them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headless_wan.handlers.base import TaskContext


def sidecar_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.settings.json")


def write_sidecar(
    ctx: TaskContext,
    output: Path,
    result: Any,
    *,
    task_model: str | None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the sidecar of `output` (a generation `result` with `settings` and `metrics`)."""
    settings = dict(getattr(result, "settings", {}) or {})
    record = {
        "task_id": ctx.task.id,
        "task_type": ctx.task.task_type,
        "model": task_model,
        "preset": settings.get("preset"),
        "pipeline_class": settings.get("pipeline_class"),
        "family": settings.get("family"),
        "seed": settings.get("seed"),
        "steps": settings.get("steps"),
        "resolution": _resolution(settings),
        "num_frames": settings.get("num_frames"),
        "loras": settings.get("loras", []),
        "phase_plan": settings.get("phase_plan", []),
        "output": output.name,
        **dict(extra or {}),
        "settings": settings,
        "metrics": dict(getattr(result, "metrics", {}) or {}),
    }
    return write_record(output, record)


def write_record(output: Path, record: Mapping[str, Any]) -> Path:
    """Write `record` as the sidecar of `output` (outputs with no generation, e.g. a stitch)."""
    path = sidecar_path(output)
    path.write_text(json.dumps(dict(record), indent=2, default=str), encoding="utf-8")
    return path


def _resolution(settings: Mapping[str, Any]) -> str | None:
    width, height = settings.get("width"), settings.get("height")
    return f"{width}x{height}" if width and height else None
