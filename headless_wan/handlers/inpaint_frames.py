"""`inpaint_frames`: regenerate a window of one video with VACE; everything else is the source's frames.

Steps: fetch and decode-count the source; plan the window (`bridge_planning.plan_window`: bad windows
fail here, before any generation); read only the context frames at the generation size; one VACE bridge;
assemble source frames `[0, start)`, the generated window, source frames `[end, N)` at the source's own
size and fps through one encode; check the decoded length is the source's; carry the source's audio.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import INPAINT_FRAMES, InpaintFramesParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.errors import MediaError
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.bridge_generation import (
    JoinConfig,
    bridge_size,
    check_vace,
    fetch_video,
    generate_bridge,
    resize_frames,
)
from headless_wan.handlers.bridge_planning import plan_window
from headless_wan.handlers.segment_generation import SegmentEngine
from headless_wan.handlers.sidecar import write_sidecar
from headless_wan.media.audio import mux_audio
from headless_wan.media.bridge import Generated, SourceSpan, assemble, bridge_guide, read_span
from headless_wan.media.fetch import safe_filename
from headless_wan.media.video_io import count_frames, write_thumbnail


class InpaintFramesHandler:
    """Input: `InpaintFramesParams`. Output: `<task id>.mp4` with exactly the source's frame count, a
    thumbnail and the settings sidecar. Raises InvalidTaskParams (a window outside the video, a non-VACE
    model), InputUnavailable (the video cannot be fetched or decoded), MediaError. Safe to re-run."""

    task_type: ClassVar[str] = INPAINT_FRAMES
    params_model: ClassVar[type[BaseModel]] = InpaintFramesParams

    def __init__(self, engine: SegmentEngine, config: JoinConfig) -> None:
        self.engine = engine
        self.config = config

    def run(self, ctx: TaskContext, params: InpaintFramesParams) -> TaskResult:
        check_vace(self.engine, params.model)
        ctx.progress.report("fetching_inputs", 0, 1)
        source, info = fetch_video(
            params.video_path, ctx.workdir / "inputs", self.config, field="video_path", filename="source.mp4"
        )
        total = count_frames(source)
        plan = plan_window(
            total, params.inpaint_start_frame, params.inpaint_end_frame, params.context_frame_count
        )
        width, height = bridge_size(params.resolution, info, "resolution")
        context = read_span(
            source, plan.guide_start, plan.context_before + plan.gap + plan.context_after, width, height
        )
        before = context[: plan.context_before]
        after = context[plan.context_before + plan.gap :]
        ctx.progress.report("fetching_inputs", 1, 1)
        guide = bridge_guide(before, plan.gap, after, width, height, padding=plan.padding)
        ctx.log.info(
            "inpaint [%d, %d) of %d frames: context %d + %d, padding %d, %d frames at %dx%d",
            plan.start, plan.end, total, plan.context_before, plan.context_after, plan.padding, plan.total,
            width, height, extra={"action": "inpaint_planned"},
        )  # fmt: skip
        frames, result = generate_bridge(self.engine, ctx, params, guide, fetcher=self.config.fetcher)
        window = resize_frames(
            frames[plan.context_before : plan.context_before + plan.gap], info.width, info.height
        )
        output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="inpaint.mp4")
        ctx.progress.report("encoding", 0, total)
        pieces = [SourceSpan(source, 0, plan.start), Generated(window), SourceSpan(source, plan.end, total)]
        assemble(pieces, output, info.width, info.height, info.fps)
        decoded = count_frames(output)
        if decoded != total:
            raise MediaError(f"inpainted video decodes to {decoded} frames, the source has {total}")
        mux_audio(output, source)  # the window replaces frames one for one: the timeline is the source's
        ctx.progress.report("encoding", total, total)
        thumbnail = write_thumbnail(output, ctx.workdir / f"{output.stem}_thumb.jpg")
        write_sidecar(ctx, output, result, task_model=params.model, extra={"fps": info.fps, "frames": total})
        return TaskResult(
            output=output, thumbnail=thumbnail, metrics=dict(getattr(result, "metrics", {}) or {})
        )
