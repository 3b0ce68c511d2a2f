"""One travel-style segment generation, shared by `travel_segment`, `individual_travel_segment` and
`wan_2_2_i2v`: the request per family, the engine calls in billing order, one encode, the sidecar.

Family is the model's (`Engine.family`): an image-to-video model gets the pair's images as
`start_image` / `end_image`; a VACE model gets them painted into a guide video with its mask.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from headless_wan.domain.tasks import TaskResult
from headless_wan.domain.travel_params import unsupported_fields
from headless_wan.engine import GenerationRequest, LoraSpec, parse_phase_config
from headless_wan.errors import InvalidTaskParams, MediaError
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.sidecar import write_sidecar
from headless_wan.media.fetch import fetch, safe_filename
from headless_wan.media.guide import Guide, post_process
from headless_wan.media.video_io import VideoWriter, count_frames, write_thumbnail

I2V = "i2v"


class SegmentEngine(Protocol):
    """The part of `headless_wan.engine.Engine` a segment uses."""

    def family(self, model: str | None) -> str: ...

    def model_in_family(self, model: str | None, family: str) -> str: ...

    def validate(self, request: GenerationRequest) -> Any: ...

    def prepare(self, request: GenerationRequest, *, fetch: Any = None, on_progress: Any = None) -> Any: ...

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_progress: Any = None,
        cancel_check: Any = None,
        fetch: Any = None,
    ) -> Any: ...


@dataclass(frozen=True)
class SegmentSettings:
    """What one segment generates, whatever payload it came from."""

    model: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_frames: int
    seed: int
    phase_config: dict[str, Any] | None
    loras: tuple[tuple[str, str], ...]
    fps: int
    flow_shift: float | None = None
    solver: str | None = None


def model_for_mode(engine: SegmentEngine, model: str, model_type: str | None) -> str:
    """The model a travel-style task runs: in VACE mode (`model_type: "vace"`) the VACE counterpart
    of an I2V name (the app names its Lightning schedules with the I2V names in both modes)."""
    return engine.model_in_family(model, "vace") if model_type == "vace" else model


def segment_request(
    settings: SegmentSettings,
    *,
    guide: Guide | None = None,
    start: np.ndarray | None = None,
    end: np.ndarray | None = None,
) -> GenerationRequest:
    """A VACE request (`guide`) or an image-to-video one (`start`, optional `end`)."""
    return GenerationRequest(
        model=settings.model,
        prompt=settings.prompt.strip() or " ",
        negative_prompt=settings.negative_prompt.strip() or None,
        width=settings.width,
        height=settings.height,
        num_frames=settings.num_frames,
        seed=settings.seed,
        flow_shift=settings.flow_shift,
        solver=settings.solver,
        phases=parse_phase_config(settings.phase_config) if settings.phase_config else None,
        loras=tuple(LoraSpec(source, multiplier) for source, multiplier in settings.loras),
        guide=guide.frames if guide is not None else None,
        mask=guide.mask if guide is not None else None,
        start_image=start,
        end_image=end,
    )


def run_engine(
    engine: SegmentEngine, ctx: TaskContext, request: GenerationRequest, fetch: Any, task_model: str
) -> Any:
    """Load, then report the model name as the task asked for it (billing starts here), then generate."""
    engine.prepare(request, fetch=fetch, on_progress=ctx.progress.report)
    ctx.mark_started(task_model)
    result = engine.generate(
        request, on_progress=ctx.progress.report, cancel_check=ctx.cancel.check, fetch=fetch
    )
    ctx.cancel.check()
    return result


def generate_segment(
    engine: SegmentEngine,
    ctx: TaskContext,
    request: GenerationRequest,
    *,
    task_model: str,
    fps: int,
    allow_local: bool,
    saturation: float = 1.0,
    brightness: float = 0.0,
    planned_frames: int | None = None,
) -> TaskResult:
    """The engine run, one encode to `<task id>.mp4` (with thumbnail), then the sidecar: every segment
    task's tail. With `planned_frames`, the engine must have returned exactly that many frames (a chained
    travel's overlap arithmetic depends on it)."""
    fetcher = functools.partial(fetch, allow_local=allow_local)
    result = run_engine(engine, ctx, request, fetcher, task_model)
    if planned_frames is not None and result.frames.shape[0] != planned_frames:
        raise MediaError(
            f"the engine returned {result.frames.shape[0]} frames, {planned_frames} were planned"
        )
    output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="segment.mp4")
    thumbnail = encode_segment(ctx, result.frames, output, fps, saturation=saturation, brightness=brightness)
    metrics = finish(ctx, output, result, task_model, fps)
    return TaskResult(output=output, thumbnail=thumbnail, metrics=metrics)


def reject_unsupported(*, use_svi: bool, structure_guidance: dict[str, Any] | None) -> None:
    """What a segment payload may ask for that this worker cannot do: refused by name."""
    if (structure_guidance or {}).get("videos"):
        raise InvalidTaskParams("structure_guidance: not supported by this worker yet")
    if use_svi:
        raise InvalidTaskParams("use_svi: SVI travel is not supported by this worker")


def encode_segment(
    ctx: TaskContext,
    frames: np.ndarray,
    output: Path,
    fps: int,
    *,
    saturation: float = 1.0,
    brightness: float = 0.0,
) -> Path:
    """Post-process and encode once; the file must decode to exactly the generated frame count.
    Returns the first-frame JPEG thumbnail."""
    expected = frames.shape[0]
    ctx.progress.report("encoding", 0, expected)
    height, width = frames.shape[1:3]
    with VideoWriter(output, width, height, fps) as writer:
        for frame in frames:
            writer.write(post_process(frame, saturation, brightness))
    decoded = count_frames(output)
    if decoded != expected:
        raise MediaError(f"segment video decodes to {decoded} frames, {expected} were planned")
    ctx.progress.report("encoding", expected, expected)
    return write_thumbnail(output, ctx.workdir / f"{output.stem}_thumb.jpg")


def finish(ctx: TaskContext, output: Path, result: Any, model: str, fps: int) -> dict[str, float]:
    """Write the settings sidecar; returns the metrics for the task result."""
    write_sidecar(ctx, output, result, task_model=model, extra={"fps": fps})
    return dict(getattr(result, "metrics", {}) or {})


def log_unsupported(ctx: TaskContext, payloads: Sequence[dict[str, Any]]) -> None:
    """Once per task: the unsupported payload fields it sets (travel_params.UNSUPPORTED_FIELDS)."""
    names = unsupported_fields(*payloads)
    if names:
        ctx.log.warning(
            "ignoring unsupported travel fields: %s", ", ".join(names), extra={"action": "unsupported_fields"}
        )
