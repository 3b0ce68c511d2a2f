"""`join_clips_orchestrator`: plan every join of a clip list, then enqueue one `join_clips_segment` per
join and a `join_final_stitch` (created up front, depending on all joins: reigh-contract §8 H6).

Everything that can be wrong with the input fails here, before any generation: too many clips
(`HW_MAX_JOIN_CLIPS`), clips that cannot be fetched or decoded, clips too short for their joins
(`bridge_planning.plan_chain`), a non-VACE model, a bad `phase_config`. The orchestrator decodes each clip
once through the same conform filters (fps, centre crop, size) the children use, so its counts are theirs.
Safe to re-run: existing children are found by (task type, join index) and only missing ones are created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import (
    DEFAULT_FPS,
    JOIN_CLIPS_ORCHESTRATOR,
    JOIN_CLIPS_SEGMENT,
    JOIN_FINAL_STITCH,
    BridgeNumbers,
    JoinDetails,
    JoinOrchestratorParams,
    JoinSegmentParams,
    JoinStitchParams,
    StitchClip,
    join_index_of,
)
from headless_wan.domain.tasks import NewTask, Task, TaskResult
from headless_wan.engine import parse_phase_config
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.bridge_generation import Conform, JoinConfig, bridge_size, check_vace, fetch_video
from headless_wan.handlers.bridge_planning import ChainPlan, JoinSpec, plan_chain
from headless_wan.handlers.segment_generation import SegmentEngine

_DETAILS = "orchestrator_details"


def join_specs(details: JoinDetails, joins: int) -> list[JoinSpec]:
    """Each join's counts: its `per_join_settings` entry over the run's values."""
    if len(details.per_join_settings) > joins:
        raise InvalidTaskParams(
            f"per_join_settings: {len(details.per_join_settings)} entries for {joins} join(s)"
        )
    specs = []
    for index in range(joins):
        override = details.per_join_settings[index] if index < len(details.per_join_settings) else None

        def pick(name: str, override: Any = override) -> Any:
            value = getattr(override, name, None) if override is not None else None
            return value if value is not None else getattr(details, name)

        specs.append(JoinSpec(pick("context_frame_count"), pick("gap_frame_count"), pick("replace_mode")))
    return specs


@dataclass(frozen=True)
class JoinRun:
    """A planned run: the chain and how its clips are read."""

    plan: ChainPlan
    conform: Conform
    output_fps: float


def plan_join_run(
    ctx: TaskContext, details: JoinDetails, config: JoinConfig, engine: SegmentEngine
) -> JoinRun:
    clips = details.clip_list
    if len(clips) < 2:
        raise InvalidTaskParams(f"clip_list: at least two clips are needed to join, got {len(clips)}")
    if len(clips) > config.max_join_clips:
        raise InvalidTaskParams(
            f"clip_list: {len(clips)} clips, this worker joins at most {config.max_join_clips} (HW_MAX_JOIN_CLIPS)"
        )
    check_vace(engine, details.model)
    if details.phase_config:
        parse_phase_config(details.phase_config)
    specs = join_specs(details, len(clips) - 1)
    fetched = [
        fetch_video(
            clip.url,
            ctx.workdir / "inputs",
            config,
            field=f"clip_list[{index}]",
            filename=f"clip_{index}.mp4",
        )
        for index, clip in enumerate(clips)
    ]
    first = fetched[0][1]
    requested = None if details.use_input_video_resolution else details.resolution
    width, height = bridge_size(requested, first, "resolution")
    if details.use_input_video_fps:
        conform, fps = Conform(width, height, None), first.fps
    else:
        fps = float(details.fps or DEFAULT_FPS)
        conform = Conform(width, height, fps)
    lengths = [conform.count(path) for path, _ in fetched]
    return JoinRun(plan_chain(lengths, specs), conform, fps)


def _links(ctx: TaskContext, params: JoinOrchestratorParams, project_id: str | None) -> dict[str, Any]:
    details = params.orchestrator_details
    return {
        "orchestrator_task_id_ref": ctx.task.id,
        "orchestrator_run_id": details.run_id,
        "run_id": details.run_id,
        "project_id": project_id,
        "parent_generation_id": params.parent_generation_id or details.parent_generation_id,
        "shot_id": details.shot_id,
    }


def segment_params(
    ctx: TaskContext, params: JoinOrchestratorParams, run: JoinRun, join: int, project_id: str | None
) -> dict[str, Any]:
    details = params.orchestrator_details
    override = details.per_join_settings[join] if join < len(details.per_join_settings) else None
    bridge = run.plan.bridges[join]
    numbers = BridgeNumbers(
        a_context_start=run.plan.bridge_a_offset(join),
        context_before=bridge.context_before,
        gap=bridge.gap,
        context_after=bridge.context_after,
        b_context_start=bridge.b_context_start,
    )
    loras = dict(details.additional_loras)
    loras.update((override.additional_loras or {}) if override else {})
    child = JoinSegmentParams(
        model=details.model,
        prompt=override.prompt if override and override.prompt is not None else details.prompt,
        negative_prompt=(
            override.negative_prompt
            if override and override.negative_prompt is not None
            else details.negative_prompt
        ),
        seed=override.seed if override and override.seed is not None else details.seed,
        num_inference_steps=details.num_inference_steps,
        guidance_scale=details.guidance_scale,
        phase_config=details.phase_config,
        additional_loras=loras,
        join_index=join,
        is_first_join=join == 0,
        is_last_join=join == len(run.plan.bridges) - 1,
        starting_video_path=details.clip_list[join].url,
        ending_video_path=details.clip_list[join + 1].url,
        width=run.conform.width,
        height=run.conform.height,
        fps=run.output_fps,
        conform_fps=run.conform.fps is not None,
        bridge=numbers,
        full_orchestrator_payload=dict(ctx.task.params.get(_DETAILS) or {}),
        **_links(ctx, params, project_id),
    )
    return child.model_dump(mode="json")


def stitch_params(
    ctx: TaskContext,
    params: JoinOrchestratorParams,
    run: JoinRun,
    join_ids: Sequence[str],
    project_id: str | None,
) -> dict[str, Any]:
    details = params.orchestrator_details
    plan = run.plan
    child = JoinStitchParams(
        clips=tuple(
            StitchClip(url=details.clip_list[span.index].url, start=span.start, end=span.end)
            for span in plan.spans
        ),
        join_task_ids=tuple(join_ids),
        gap_offsets=tuple((bridge.context_before, bridge.gap) for bridge in plan.bridges),
        width=run.conform.width,
        height=run.conform.height,
        fps=run.output_fps,
        conform_fps=run.conform.fps is not None,
        expected_frames=plan.output_frames,
        audio_url=details.audio_url,
        **_links(ctx, params, project_id),
    )
    return child.model_dump(mode="json")


def _slot(task: Task) -> tuple[str, int | None] | None:
    index = join_index_of(task.params)
    if task.task_type == JOIN_CLIPS_SEGMENT and index is not None:
        return (JOIN_CLIPS_SEGMENT, index)
    if task.task_type == JOIN_FINAL_STITCH:
        return (JOIN_FINAL_STITCH, None)
    return None


def existing_slots(children: Sequence[Task]) -> dict[tuple[str, int | None], str]:
    """(task type, join index) → id of the first existing child in that slot (re-runs create the rest)."""
    found: dict[tuple[str, int | None], str] = {}
    for task in children:
        key = _slot(task)
        if key is not None:
            found.setdefault(key, task.id)
    return found


class JoinClipsOrchestratorHandler:
    """Input: `JoinOrchestratorParams`. Output: no file; `TaskResult(waiting=True)`; the final stitch's
    output completes the run. Raises InvalidTaskParams / InputUnavailable before any child exists."""

    task_type: ClassVar[str] = JOIN_CLIPS_ORCHESTRATOR
    params_model: ClassVar[type[BaseModel]] = JoinOrchestratorParams

    def __init__(self, engine: SegmentEngine, config: JoinConfig) -> None:
        self.engine = engine
        self.config = config

    def run(self, ctx: TaskContext, params: JoinOrchestratorParams) -> TaskResult:
        project_id = ctx.task.project_id or params.project_id or None
        details = params.orchestrator_details
        if details.loop_first_clip:
            ctx.log.warning(
                "loop_first_clip is not supported; ignored", extra={"action": "unsupported_fields"}
            )
        ctx.progress.report("orchestrating", 0, 1, "planning")
        run = plan_join_run(ctx, details, self.config, self.engine)
        new = self.children(ctx, params, run, project_id)
        ctx.cancel.check()
        if new:
            ctx.children.enqueue(new)
        ctx.log.info(
            "join run %s: %d clip(s) of %s frames, gaps %s, output %d frames; %d new child task(s)",
            details.run_id, len(run.plan.clip_lengths), list(run.plan.clip_lengths),
            [bridge.gap for bridge in run.plan.bridges], run.plan.output_frames, len(new),
            extra={"action": "join_planned"},
        )  # fmt: skip
        ctx.progress.report("orchestrating", 1, 1, "children enqueued")
        return TaskResult(message=f"Enqueued {len(new)} join task(s) for run {details.run_id}", waiting=True)

    def children(
        self, ctx: TaskContext, params: JoinOrchestratorParams, run: JoinRun, project_id: str | None
    ) -> list[NewTask]:
        existing = existing_slots(ctx.children.existing())
        new: list[NewTask] = []
        join_ids: list[str] = []
        for join in range(len(run.plan.bridges)):
            key = (JOIN_CLIPS_SEGMENT, join)
            if key not in existing:
                depends = (join_ids[-1],) if join_ids else ()
                task = NewTask(
                    JOIN_CLIPS_SEGMENT, segment_params(ctx, params, run, join, project_id),
                    dependant_on=depends, project_id=project_id,
                )  # fmt: skip
                existing[key] = task.id
                new.append(task)
            join_ids.append(existing[key])
        if (JOIN_FINAL_STITCH, None) not in existing:
            body = stitch_params(ctx, params, run, join_ids, project_id)
            new.append(NewTask(JOIN_FINAL_STITCH, body, dependant_on=tuple(join_ids), project_id=project_id))
        return new
