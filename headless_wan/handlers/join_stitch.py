"""`join_final_stitch`: the joined (or edited) video.

Streams each clip's kept span (backwards for a loop's second clip) and each bridge's gap frames into one
encode, checks the decoded length against the orchestrator's plan, then lays the audio under it:
`audio_url` when the run has one, else the clips' own audio (`bridge_audio`). Writes the settings
sidecar: what was joined, and each join's generation settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import JOIN_FINAL_STITCH, JoinStitchParams
from headless_wan.domain.tasks import Task, TaskResult
from headless_wan.errors import InvalidTaskParams, MediaError
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.bridge_audio import stitch_audio
from headless_wan.handlers.bridge_generation import Conform, JoinConfig, fetch_video
from headless_wan.handlers.sidecar import write_record
from headless_wan.handlers.travel_inputs import completed_dependency, fetch_input, fetch_queue_output, shown
from headless_wan.media.audio import mux_audio, mux_audio_spans
from headless_wan.media.bridge import Piece, SourceSpan, assemble
from headless_wan.media.fetch import safe_filename
from headless_wan.media.video_io import count_frames, write_thumbnail

_GENERATION_KEYS = ("model", "prompt", "negative_prompt", "seed", "num_inference_steps", "guidance_scale")


class JoinFinalStitchHandler:
    """Input: `JoinStitchParams` (and each join's output through `ctx.lookup`). Output: the joined video
    of exactly `expected_frames` frames, its thumbnail and sidecar. Raises TransientError while a join is not
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
        bridges, join_tasks = [], []
        for index, task_id in enumerate(params.join_task_ids):
            task = completed_dependency(ctx, task_id, what=f"join {index}")
            join_tasks.append(task)
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
        fetched: dict[str, tuple[Path, float]] = {}  # an edit's keepers all come from one source: fetch once
        for index, clip in enumerate(params.clips):
            if clip.url not in fetched:
                path, info = fetch_video(
                    clip.url, folder, self.config, field=f"clips[{index}]", filename=f"clip_{index}.mp4"
                )
                fetched[clip.url] = (path, params.fps if params.conform_fps else info.fps)
            path = fetched[clip.url][0]
            pieces.append(conform.played_source(path, clip.start, clip.end, reverse=clip.reversed))
            if index < joins:
                offset, gap = params.gap_offsets[index]
                # fill: a join generated at its own `resolution` is centre-cropped to the run's.
                pieces.append(SourceSpan(bridges[index], offset, offset + gap, fill=params.fill))
        ctx.progress.report("fetching_inputs", 1, 1)
        output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="joined.mp4")
        ctx.progress.report("encoding", 0, params.expected_frames)
        assemble(pieces, output, params.width, params.height, params.fps)
        decoded = count_frames(output)
        if decoded != params.expected_frames:
            raise MediaError(
                f"joined video decodes to {decoded} frames, {params.expected_frames} were planned"
            )
        audio = self._audio(params, output, folder, [fetched[clip.url] for clip in params.clips])
        ctx.progress.report("encoding", decoded, decoded)
        thumbnail = write_thumbnail(output, ctx.workdir / f"{output.stem}_thumb.jpg")
        write_record(output, stitch_record(ctx, params, join_tasks, decoded, audio))
        return TaskResult(output=output, thumbnail=thumbnail, metrics={"frames": float(decoded)})

    def _audio(
        self, params: JoinStitchParams, output: Path, folder: Path, clips: list[tuple[Path, float]]
    ) -> str | None:
        """`audio_url` over the whole output, else the clips' own audio (`bridge_audio`), if any.
        Returns where the audio came from ("audio_url", "clips") or None."""
        if not params.audio_url:
            spans = stitch_audio(params, [path for path, _ in clips], [fps for _, fps in clips])
            return "clips" if mux_audio_spans(output, spans) else None
        audio = fetch_input(params.audio_url, folder, self.config.inputs, field="audio_url", filename="audio")
        if mux_audio(output, audio):
            return "audio_url"
        if not params.audio_optional:
            raise MediaError("audio_url: the file has no audio track")
        return None


def stitch_record(
    ctx: TaskContext, params: JoinStitchParams, joins: list[Task], frames: int, audio: str | None
) -> dict[str, Any]:
    """The joined video's sidecar: its clips' spans, each join's generation settings, the audio's source."""
    return {
        "task_id": ctx.task.id,
        "task_type": ctx.task.task_type,
        "run_id": params.run_id,
        "resolution": f"{params.width}x{params.height}",
        "num_frames": frames,
        "fps": params.fps,
        "clips": [
            {"source": shown(clip.url), "start": clip.start, "end": clip.end, "reversed": clip.reversed}
            for clip in params.clips
        ],
        "joins": [
            {
                "task_id": task.id,
                "gap_frames": gap,
                **{key: task.params.get(key) for key in _GENERATION_KEYS},
                "loras": sorted(shown(source) for source in (task.params.get("additional_loras") or {})),
            }
            for task, (_, gap) in zip(joins, params.gap_offsets, strict=True)
        ],
        "audio": audio,
    }
