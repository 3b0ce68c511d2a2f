"""`join_clips_segment` (one bridge between two clips) and `join_final_stitch` (the joined video).

A segment reads only its context frames (clip A's end, clip B's start, through the run's conform
filters), generates the bridge and stores all of it (context + gap + context: a viewable transition).
The stitch streams each clip's kept span and each bridge's gap frames into one encode, checks the decoded
length against the orchestrator's plan, and muxes `audio_url` when the run has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import (
    JOIN_CLIPS_SEGMENT,
    JOIN_FINAL_STITCH,
    JoinSegmentParams,
    JoinStitchParams,
)
from headless_wan.domain.tasks import TaskResult
from headless_wan.errors import InvalidTaskParams, MediaError
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
from headless_wan.handlers.travel_inputs import completed_dependency, fetch_input, fetch_queue_output
from headless_wan.media.bridge import Piece, SourceSpan, assemble, bridge_guide, mux_audio
from headless_wan.media.fetch import safe_filename
from headless_wan.media.video_io import count_frames, write_thumbnail


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
        after = conform.span(clip_b, numbers.b_context_start, numbers.context_after)
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


class JoinFinalStitchHandler:
    """Input: `JoinStitchParams` (and each join's output through `ctx.lookup`). Output: the joined video
    of exactly `expected_frames` frames and its thumbnail. Raises TransientError while a join is not
    Complete, InputUnavailable, MediaError (a length other than the plan's)."""

    task_type: ClassVar[str] = JOIN_FINAL_STITCH
    params_model: ClassVar[type[BaseModel]] = JoinStitchParams

    def __init__(self, config: JoinConfig) -> None:
        self.config = config

    def run(self, ctx: TaskContext, params: JoinStitchParams) -> TaskResult:
        joins = len(params.clips) - 1
        if len(params.join_task_ids) != joins or len(params.gap_offsets) != joins:
            raise InvalidTaskParams(
                f"join_task_ids/gap_offsets: {len(params.clips)} clips need {joins} join(s), "
                f"got {len(params.join_task_ids)} and {len(params.gap_offsets)}"
            )
        folder = ctx.workdir / "inputs"
        conform = Conform(
            params.width, params.height, params.fps if params.conform_fps else None, params.fill
        )
        ctx.progress.report("fetching_inputs", 0, 1)
        bridges = []
        for index, task_id in enumerate(params.join_task_ids):
            task = completed_dependency(ctx, task_id, what=f"join {index}")
            bridges.append(
                fetch_queue_output(
                    task.output_location or "",
                    folder,
                    self.config.inputs,
                    what=f"join {index} output",
                    filename=f"join_{index}.mp4",
                )
            )
        pieces: list[Piece] = []
        fetched: dict[str, Path] = {}  # an edit's keepers all come from one source: fetch it once
        for index, clip in enumerate(params.clips):
            if clip.url not in fetched:
                fetched[clip.url], _ = fetch_video(
                    clip.url, folder, self.config, field=f"clips[{index}]", filename=f"clip_{index}.mp4"
                )
            pieces.append(conform.source(fetched[clip.url], clip.start, clip.end))
            if index < joins:
                offset, gap = params.gap_offsets[index]
                pieces.append(SourceSpan(bridges[index], offset, offset + gap))
        ctx.progress.report("fetching_inputs", 1, 1)
        output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="joined.mp4")
        ctx.progress.report("encoding", 0, params.expected_frames)
        assemble(pieces, output, params.width, params.height, params.fps)
        decoded = count_frames(output)
        if decoded != params.expected_frames:
            raise MediaError(
                f"joined video decodes to {decoded} frames, {params.expected_frames} were planned"
            )
        if params.audio_url:
            audio = fetch_input(
                params.audio_url, folder, self.config.inputs, field="audio_url", filename="audio"
            )
            if not mux_audio(output, audio) and not params.audio_optional:
                raise MediaError("audio_url: the file has no audio track")
        ctx.progress.report("encoding", decoded, decoded)
        thumbnail = write_thumbnail(output, ctx.workdir / f"{output.stem}_thumb.jpg")
        return TaskResult(output=output, thumbnail=thumbnail, metrics={"frames": float(decoded)})
