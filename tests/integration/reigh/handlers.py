"""Extra fixture handlers for Reigh tests (no GPU): a "video" with a thumbnail, and lookups of
other tasks' outputs through the worker's queue lookups.

Registered with HW_HANDLER_PLUGINS='[..., "tests.integration.reigh.handlers:reigh_handlers"]'.
"""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from headless_wan.domain.tasks import NewTask, TaskResult
from headless_wan.errors import TransientError
from headless_wan.handlers.base import TaskContext

JPEG_STUB = b"\xff\xd8\xff\xe0" + b"thumbnail" * 10 + b"\xff\xd9"


class VideoParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    size_bytes: int = 1024
    model: str | None = None


class FakeVideoHandler:
    """Writes `size_bytes` of pseudo-video plus a first-frame JPEG, like a generation handler."""

    task_type: ClassVar[str] = "fake_video"
    params_model: ClassVar[type[BaseModel]] = VideoParams

    def run(self, ctx: TaskContext, params: VideoParams) -> TaskResult:
        ctx.mark_started(params.model)
        out = ctx.workdir / f"{ctx.task.id}.mp4"
        block = (ctx.task.id.encode() * 64)[:4096]
        with out.open("wb") as handle:
            for _ in range(params.size_bytes // len(block)):
                handle.write(block)
            handle.write(block[: params.size_bytes % len(block)])
        thumb = ctx.workdir / "first_frame.jpg"
        thumb.write_bytes(JPEG_STUB)
        return TaskResult(output=out, thumbnail=thumb)


class LookupParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    orchestrator_run_id: str | None = None


class LookupHandler:
    """Reads its predecessors' outputs and its run's completed segments, as a stitch task does,
    and returns them as a JSON file."""

    task_type: ClassVar[str] = "lookup"
    params_model: ClassVar[type[BaseModel]] = LookupParams

    def run(self, ctx: TaskContext, params: LookupParams) -> TaskResult:
        assert ctx.lookup is not None
        predecessors = []
        for dep in ctx.task.dependant_on:
            task = ctx.lookup.get(dep)
            if task is None or task.output_location is None:
                raise TransientError(f"predecessor {dep} not visible yet")
            predecessors.append({"id": dep, "status": task.status.value, "output": task.output_location})
        segments = []
        if params.orchestrator_run_id:
            segments = [
                {"index": s.segment_index, "output": s.output_location}
                for s in ctx.lookup.completed_segments(params.orchestrator_run_id, ctx.task.project_id)
            ]
        out = ctx.workdir / "lookup.json"
        out.write_text(json.dumps({"predecessors": predecessors, "segments": segments}))
        return TaskResult(output=out)


class SpawnVideosParams(BaseModel):
    count: int = 2


class SpawnVideosHandler:
    """The fixture `spawn` orchestrator, but with children that accept Reigh's link keys: on Reigh
    every child carries `orchestrator_task_id_ref` in its params, which the `echo` fixture's strict
    params model rejects."""

    task_type: ClassVar[str] = "spawn_videos"
    params_model: ClassVar[type[BaseModel]] = SpawnVideosParams

    def run(self, ctx: TaskContext, params: SpawnVideosParams) -> TaskResult:
        existing = {child.params.get("slot"): child.id for child in ctx.children.existing()}
        previous: str | None = None
        children = []
        for slot in range(params.count):
            child_id = existing.get(slot)
            if child_id is None:
                deps = (previous,) if previous else ()
                child = NewTask("fake_video", {"slot": slot, "size_bytes": 100}, dependant_on=deps)
                children.append(child)
                child_id = child.id
            previous = child_id
        ctx.children.enqueue(children)
        return TaskResult(message=f"Enqueued {len(children)} child task(s)", waiting=True)


def reigh_handlers() -> list[object]:
    return [FakeVideoHandler(), LookupHandler(), SpawnVideosHandler()]
