"""`join_clips_orchestrator`: plan every join of a clip list, then enqueue one `join_clips_segment` per
join and a `join_final_stitch` (created up front, depending on all joins: reigh-contract §8 H6).

Everything that can be wrong with the input fails here, before any generation: too many clips
(`HW_MAX_JOIN_CLIPS`), clips that cannot be fetched or decoded, clips too short for their joins
(`bridge_planning.plan_chain`), a non-VACE model (the run's or a join's), a bad `phase_config`, a
per-join fps other than the run's. The orchestrator decodes each clip once through the same conform
filters (fps, centre crop, size) the children use, so its counts are theirs. Safe to re-run: existing
children are found by (task type, join index) and only missing ones are created.

`loop_first_clip` (the app sends its one clip twice): the run is clip_list[0], a bridge, then the same
clip played backwards, as the predecessor worker did (it reversed the first clip into the second slot);
the app shows the second slot as the first clip's last frame, which is where the reversed clip starts.
The output ends on the clip's first frame, so it plays on repeat without a cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from headless_wan.domain.join_params import (
    DEFAULT_FPS,
    JOIN_CLIPS_ORCHESTRATOR,
    JOIN_CLIPS_SEGMENT,
    JOIN_FINAL_STITCH,
    BridgeGeneration,
    BridgeNumbers,
    EditOrchestratorParams,
    JoinDetails,
    JoinOrchestratorParams,
    JoinOverride,
    JoinSegmentParams,
    JoinStitchParams,
    StitchClip,
    join_index_of,
)
from headless_wan.domain.tasks import NewTask, Task, TaskResult
from headless_wan.engine import parse_phase_config
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers import planning
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.bridge_generation import Conform, JoinConfig, bridge_size, check_vace, fetch_video
from headless_wan.handlers.bridge_planning import ChainPlan, JoinSpec, plan_chain
from headless_wan.handlers.segment_generation import SegmentEngine

_DETAILS = "orchestrator_details"


@dataclass(frozen=True)
class PlayedClip:
    """One clip of the chain as it is played: its URL and whether backwards (`loop_first_clip`)."""

    url: str
    reversed: bool = False


def played_clips(details: JoinDetails) -> tuple[PlayedClip, ...]:
    """The chain's clips: `clip_list`, or for a loop its first clip forwards then backwards."""
    urls = [clip.url for clip in details.clip_list]
    if not details.loop_first_clip:
        return tuple(PlayedClip(url) for url in urls)
    if not urls or len(urls) > 2 or len(set(urls)) != 1:
        raise InvalidTaskParams(
            f"clip_list: loop_first_clip loops one clip (sent once, or twice as the app does), got "
            f"{len(urls)} clip(s) with {len(set(urls))} distinct URL(s)"
        )
    return (PlayedClip(urls[0]), PlayedClip(urls[0], reversed=True))


def _override(details: JoinDetails, join: int) -> JoinOverride | None:
    settings = details.per_join_settings
    return settings[join] if join < len(settings) else None


def _pick(details: BaseModel, override: JoinOverride | None, name: str) -> Any:
    value = getattr(override, name, None) if override is not None else None
    return value if value is not None else getattr(details, name)


def join_specs(details: JoinDetails, joins: int) -> list[JoinSpec]:
    """Each join's counts: its `per_join_settings` entry over the run's values."""
    if len(details.per_join_settings) > joins:
        raise InvalidTaskParams(
            f"per_join_settings: {len(details.per_join_settings)} entries for {joins} join(s)"
        )
    names = ("context_frame_count", "gap_frame_count", "replace_mode")
    return [
        JoinSpec(*(_pick(details, _override(details, join), name) for name in names)) for join in range(joins)
    ]


def join_generation(details: JoinDetails, join: int) -> dict[str, Any]:
    """One join's generation settings: its `per_join_settings` entry over the run's (LoRAs merged)."""
    override = _override(details, join)
    generation = {name: _pick(details, override, name) for name in BridgeGeneration.model_fields}
    generation["additional_loras"] = {
        **details.additional_loras,
        **((override.additional_loras or {}) if override is not None else {}),
    }
    return generation


def join_size(details: JoinDetails, join: int, run_size: tuple[int, int]) -> tuple[int, int]:
    """A join's generation size: its own `resolution` (snapped to 16) or the run's."""
    override = _override(details, join)
    if override is None or override.resolution is None:
        return run_size
    width, height = override.resolution
    if width < planning.RESOLUTION_STEP or height < planning.RESOLUTION_STEP:
        raise InvalidTaskParams(
            f"per_join_settings[{join}].resolution: {width}x{height} is smaller than 16x16"
        )
    return planning.snap_resolution(width, height)


def _check_models(details: JoinDetails, engine: SegmentEngine, joins: int) -> None:
    """The run's model and every join's own are VACE models (checked before any download)."""
    check_vace(engine, details.model)
    for join in range(joins):
        override = _override(details, join)
        if override is not None and override.model is not None:
            check_vace(engine, override.model)


def _check_fps(details: JoinDetails, joins: int, fps: float) -> None:
    # One output has one frame rate and the plan counts every clip at it.
    for join in range(joins):
        override = _override(details, join)
        if override is not None and override.fps is not None and float(override.fps) != fps:
            raise InvalidTaskParams(
                f"per_join_settings[{join}].fps: {override.fps} differs from the run's {fps:g}; "
                "a joined video has one frame rate"
            )


@dataclass(frozen=True)
class JoinRun:
    """A planned run: the played clips, the chain and how its clips are read."""

    clips: tuple[PlayedClip, ...]
    plan: ChainPlan
    conform: Conform
    output_fps: float


def plan_join_run(
    ctx: TaskContext, details: JoinDetails, config: JoinConfig, engine: SegmentEngine
) -> JoinRun:
    clips = played_clips(details)
    if len(clips) < 2:
        raise InvalidTaskParams(f"clip_list: at least two clips are needed to join, got {len(clips)}")
    if len(clips) > config.max_join_clips:
        raise InvalidTaskParams(
            f"clip_list: {len(clips)} clips, this worker joins at most {config.max_join_clips} (HW_MAX_JOIN_CLIPS)"
        )
    specs = join_specs(details, len(clips) - 1)
    _check_models(details, engine, len(specs))
    if details.phase_config:
        parse_phase_config(details.phase_config)
    fetched = [
        fetch_video(
            clip.url,
            ctx.workdir / "inputs",
            config,
            field=f"clip_list[{index}]",
            filename=f"clip_{index}.mp4",
        )
        for index, clip in enumerate(clips[:1] if details.loop_first_clip else clips)
    ]
    first = fetched[0][1]
    requested = None if details.use_input_video_resolution else details.resolution
    width, height = bridge_size(requested, first, "resolution")
    if details.use_input_video_fps:
        conform, fps = Conform(width, height, None), first.fps
    else:
        fps = float(details.fps or DEFAULT_FPS)
        conform = Conform(width, height, fps)
    _check_fps(details, len(specs), fps)
    lengths = [conform.count(path) for path, _ in fetched]
    if details.loop_first_clip:
        lengths *= 2  # the reversed clip has the clip's frames
    return JoinRun(clips, plan_chain(lengths, specs), conform, fps)


def run_links(
    ctx: TaskContext, params: JoinOrchestratorParams | EditOrchestratorParams, project_id: str | None
) -> dict[str, Any]:
    """The `RunLinks` fields of every child of this orchestrator."""
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
    bridge = run.plan.bridges[join]
    numbers = BridgeNumbers(
        a_context_start=run.plan.bridge_a_offset(join),
        context_before=bridge.context_before,
        gap=bridge.gap,
        context_after=bridge.context_after,
        b_context_start=bridge.b_context_start,
    )
    width, height = join_size(details, join, (run.conform.width, run.conform.height))
    child = JoinSegmentParams(
        **join_generation(details, join),
        join_index=join,
        is_first_join=join == 0,
        is_last_join=join == len(run.plan.bridges) - 1,
        starting_video_path=run.clips[join].url,
        ending_video_path=run.clips[join + 1].url,
        ending_reversed=run.clips[join + 1].reversed,
        width=width,
        height=height,
        fps=run.output_fps,
        conform_fps=run.conform.fps is not None,
        bridge=numbers,
        full_orchestrator_payload=dict(ctx.task.params.get(_DETAILS) or {}),
        **run_links(ctx, params, project_id),
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
    clips = tuple(
        StitchClip(
            url=run.clips[span.index].url,
            start=span.start,
            end=span.end,
            reversed=run.clips[span.index].reversed,
        )
        for span in plan.spans
    )
    child = JoinStitchParams(
        clips=clips,
        join_task_ids=tuple(join_ids),
        gap_offsets=tuple((bridge.context_before, bridge.gap) for bridge in plan.bridges),
        replaced=tuple((bridge.trim_a, bridge.trim_b) for bridge in plan.bridges),
        width=run.conform.width,
        height=run.conform.height,
        fps=run.output_fps,
        conform_fps=run.conform.fps is not None,
        expected_frames=plan.output_frames,
        audio_url=details.audio_url,
        **run_links(ctx, params, project_id),
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


def chain_children(
    existing: Sequence[Task],
    joins: int,
    segment: Callable[[int], dict[str, Any]],
    stitch: Callable[[list[str]], dict[str, Any]],
    project_id: str | None,
) -> list[NewTask]:
    """The missing children of a join chain: `join_clips_segment` i depends on segment i-1, the
    `join_final_stitch` on all of them. `segment(i)` / `stitch(join_ids)` build the params."""
    slots = existing_slots(existing)
    new: list[NewTask] = []
    join_ids: list[str] = []
    for join in range(joins):
        key = (JOIN_CLIPS_SEGMENT, join)
        if key not in slots:
            depends = (join_ids[-1],) if join_ids else ()
            task = NewTask(JOIN_CLIPS_SEGMENT, segment(join), dependant_on=depends, project_id=project_id)
            slots[key] = task.id
            new.append(task)
        join_ids.append(slots[key])
    if (JOIN_FINAL_STITCH, None) not in slots:
        body = stitch(join_ids)
        new.append(NewTask(JOIN_FINAL_STITCH, body, dependant_on=tuple(join_ids), project_id=project_id))
    return new


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
        ctx.progress.report("orchestrating", 0, 1, "planning")
        run = plan_join_run(ctx, details, self.config, self.engine)
        new = chain_children(
            ctx.children.existing(),
            len(run.plan.bridges),
            lambda join: segment_params(ctx, params, run, join, project_id),
            lambda join_ids: stitch_params(ctx, params, run, join_ids, project_id),
            project_id,
        )
        ctx.cancel.check()
        if new:
            ctx.children.enqueue(new)
        ctx.log.info(
            "join run %s: %d clip(s) of %s frames%s, gaps %s, output %d frames; %d new child task(s)",
            details.run_id, len(run.plan.clip_lengths), list(run.plan.clip_lengths),
            " (looped)" if details.loop_first_clip else "", [bridge.gap for bridge in run.plan.bridges],
            run.plan.output_frames, len(new), extra={"action": "join_planned"},
        )  # fmt: skip
        ctx.progress.report("orchestrating", 1, 1, "children enqueued")
        return TaskResult(message=f"Enqueued {len(new)} join task(s) for run {details.run_id}", waiting=True)
