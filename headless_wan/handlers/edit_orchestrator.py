"""`edit_video_orchestrator`: regenerate `portions_to_regenerate` of one video through the join chain.

The frames outside the portions are the keeper clips; each portion becomes one `join_clips_segment`
whose clip A and clip B are the same source (context before the portion, context after it), and the
`join_final_stitch` streams keeper, gap, keeper, ... at the source's own size and fps, keeping its audio.
Portions are checked (inside the video, non-empty, not overlapping) before any child exists
(`bridge_planning.plan_portions`). Safe to re-run: only missing children are created.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import (
    EDIT_VIDEO_ORCHESTRATOR,
    BridgeNumbers,
    EditOrchestratorParams,
    JoinSegmentParams,
    JoinStitchParams,
    StitchClip,
)
from headless_wan.domain.tasks import TaskResult
from headless_wan.engine import parse_phase_config
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.bridge_generation import JoinConfig, bridge_size, check_vace, fetch_video
from headless_wan.handlers.bridge_planning import WindowPlan, plan_portions
from headless_wan.handlers.join_orchestrator import chain_children, run_links
from headless_wan.handlers.segment_generation import SegmentEngine
from headless_wan.media.video_io import count_frames

_DETAILS = "orchestrator_details"


class EditVideoOrchestratorHandler:
    """Input: `EditOrchestratorParams`. Output: no file; `TaskResult(waiting=True)`; the final stitch's
    output (the edited video) completes the run. Raises InvalidTaskParams / InputUnavailable first."""

    task_type: ClassVar[str] = EDIT_VIDEO_ORCHESTRATOR
    params_model: ClassVar[type[BaseModel]] = EditOrchestratorParams

    def __init__(self, engine: SegmentEngine, config: JoinConfig) -> None:
        self.engine = engine
        self.config = config

    def run(self, ctx: TaskContext, params: EditOrchestratorParams) -> TaskResult:
        project_id = ctx.task.project_id or params.project_id or None
        details = params.orchestrator_details
        check_vace(self.engine, details.model)
        if details.phase_config:
            parse_phase_config(details.phase_config)
        ctx.progress.report("orchestrating", 0, 1, "planning")
        source, info = fetch_video(
            details.source_video_url, ctx.workdir / "inputs", self.config,
            field="source_video_url", filename="source.mp4",
        )  # fmt: skip
        total = count_frames(source)
        portions = [(p.start_frame, p.end_frame, p.gap_frame_count) for p in details.portions_to_regenerate]
        windows = plan_portions(total, portions, details.context_frame_count)
        width, height = bridge_size(details.resolution, info, "resolution")
        prompts = {
            (p.start_frame, p.end_frame): p.prompt
            for p in details.portions_to_regenerate
            if p.prompt is not None
        }
        new = chain_children(
            ctx.children.existing(),
            len(windows),
            lambda index: self._segment(
                ctx, params, windows[index], index, len(windows), (width, height), info.fps,
                prompts.get((windows[index].start, windows[index].end), details.prompt),
            ),
            lambda join_ids: self._stitch(ctx, params, windows, join_ids, (info.width, info.height), info.fps),
            project_id,
        )  # fmt: skip
        ctx.cancel.check()
        if new:
            ctx.children.enqueue(new)
        expected = total + sum(w.gap - (w.end - w.start) for w in windows)
        ctx.log.info(
            "edit run %s: %d portion(s) of a %d-frame video, output %d frames; %d new child task(s)",
            details.run_id, len(windows), total, expected, len(new), extra={"action": "edit_planned"},
        )  # fmt: skip
        ctx.progress.report("orchestrating", 1, 1, "children enqueued")
        return TaskResult(message=f"Enqueued {len(new)} edit task(s) for run {details.run_id}", waiting=True)

    def _segment(
        self,
        ctx: TaskContext,
        params: EditOrchestratorParams,
        window: WindowPlan,
        index: int,
        count: int,
        size: tuple[int, int],
        fps: float,
        prompt: str,
    ) -> dict[str, Any]:
        details = params.orchestrator_details
        numbers = BridgeNumbers(
            a_context_start=window.start - window.context_before,
            context_before=window.context_before,
            gap=window.gap,
            context_after=window.context_after,
            b_context_start=window.end,
            padding=window.padding,
        )
        child = JoinSegmentParams(
            model=details.model, prompt=prompt, negative_prompt=details.negative_prompt, seed=details.seed,
            num_inference_steps=details.num_inference_steps, guidance_scale=details.guidance_scale,
            phase_config=details.phase_config, additional_loras=dict(details.additional_loras),
            join_index=index, is_first_join=index == 0, is_last_join=index == count - 1,
            starting_video_path=details.source_video_url, ending_video_path=details.source_video_url,
            width=size[0], height=size[1], fps=fps, conform_fps=False, fill=False, bridge=numbers,
            full_orchestrator_payload=dict(ctx.task.params.get(_DETAILS) or {}),
            **run_links(ctx, params, ctx.task.project_id or params.project_id or None),
        )  # fmt: skip
        return child.model_dump(mode="json")

    def _stitch(
        self,
        ctx: TaskContext,
        params: EditOrchestratorParams,
        windows: tuple[WindowPlan, ...],
        join_ids: list[str],
        size: tuple[int, int],
        fps: float,
    ) -> dict[str, Any]:
        details = params.orchestrator_details
        url = details.source_video_url
        bounds = [0, *[edge for w in windows for edge in (w.start, w.end)], windows[0].source_frames]
        keepers = [StitchClip(url=url, start=bounds[i], end=bounds[i + 1]) for i in range(0, len(bounds), 2)]
        child = JoinStitchParams(
            clips=tuple(keepers),
            join_task_ids=tuple(join_ids),
            gap_offsets=tuple((w.context_before, w.gap) for w in windows),
            replaced=tuple((w.end - w.start, 0) for w in windows),
            width=size[0], height=size[1], fps=fps, conform_fps=False, fill=False,
            expected_frames=sum(k.end - k.start for k in keepers) + sum(w.gap for w in windows),
            **run_links(ctx, params, ctx.task.project_id or params.project_id or None),
        )  # fmt: skip
        return child.model_dump(mode="json")
