"""`join_clips_segment`: one bridge between two clips (the joined video is `join_stitch`'s).

A segment reads only its context frames (clip A's end, clip B's start, through the run's conform
filters; B backwards for a loop), generates the bridge and stores all of it (context + gap + context: a
viewable transition) with its settings sidecar.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import JOIN_CLIPS_SEGMENT, JoinSegmentParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.bridge_generation import (
    Conform,
    JoinConfig,
    check_vace,
    fetch_video,
    generate_bridge,
)
from headless_wan.handlers.segment_generation import SegmentEngine, encode_segment
from headless_wan.handlers.sidecar import write_sidecar
from headless_wan.media.bridge import bridge_guide
from headless_wan.media.fetch import safe_filename


class JoinClipsSegmentHandler:
    """Input: `JoinSegmentParams`. Output: `<task id>.mp4` of exactly the bridge's 4n+1 frames, a
    thumbnail and the settings sidecar. Raises InputUnavailable (a clip cannot be fetched or decoded),
    MediaError (a clip shorter than the plan), the engine's errors. Safe to re-run."""

    task_type: ClassVar[str] = JOIN_CLIPS_SEGMENT
    params_model: ClassVar[type[BaseModel]] = JoinSegmentParams

    def __init__(self, engine: SegmentEngine, config: JoinConfig) -> None:
        self.engine = engine
        self.config = config

    def run(self, ctx: TaskContext, params: JoinSegmentParams) -> TaskResult:
        check_vace(self.engine, params.model)
        numbers = params.bridge
        folder = ctx.workdir / "inputs"
        conform = Conform(
            params.width, params.height, params.fps if params.conform_fps else None, params.fill
        )
        ctx.progress.report("fetching_inputs", 0, 1)
        clip_a, _ = fetch_video(
            params.starting_video_path,
            folder,
            self.config,
            field="starting_video_path",
            filename="clip_a.mp4",
        )
        clip_b, _ = fetch_video(
            params.ending_video_path, folder, self.config, field="ending_video_path", filename="clip_b.mp4"
        )
        before = conform.span(clip_a, numbers.a_context_start, numbers.context_before)
        after = conform.played_span(
            clip_b, numbers.b_context_start, numbers.context_after, reverse=params.ending_reversed
        )
        ctx.progress.report("fetching_inputs", 1, 1)
        guide = bridge_guide(before, numbers.gap, after, params.width, params.height, padding=numbers.padding)
        frames, result = generate_bridge(self.engine, ctx, params, guide, fetcher=self.config.fetcher)
        output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="join.mp4")
        thumbnail = encode_segment(ctx, frames, output, params.fps)
        write_sidecar(
            ctx, output, result, task_model=params.model,
            extra={"fps": params.fps, "join_index": params.join_index, "bridge": numbers.model_dump()},
        )  # fmt: skip
        return TaskResult(
            output=output, thumbnail=thumbnail, metrics=dict(getattr(result, "metrics", {}) or {})
        )
