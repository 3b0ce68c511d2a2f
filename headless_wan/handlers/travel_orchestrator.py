"""`travel_orchestrator`: validate, plan, and enqueue the segment (and stitch) children. No GPU work.

Safe to re-run: the children that already exist are found through `ctx.children.existing()`, grouped by
(task_type, segment_index), and only missing slots are created, with the existing ids reused in
`dependant_on` (reigh-contract.md §7.3). The task then waits; the queue settles it from its children.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from headless_wan.domain.tasks import NewTask, Task, TaskResult
from headless_wan.domain.travel_params import (
    TRAVEL_ORCHESTRATOR,
    TRAVEL_SEGMENT,
    TRAVEL_STITCH,
    UPSCALE_SEED_OFFSET,
    OrchestratorDetails,
    SegmentAppIds,
    TravelOrchestratorParams,
    TravelSegmentParams,
    TravelStitchParams,
    item_at,
    segment_index_of,
)
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers import planning
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.segment_generation import log_unsupported
from headless_wan.handlers.travel_inputs import TravelConfig, is_url

ModelCheck = Callable[[str], object]
"""Raises InvalidTaskParams for an unknown model name (the engine's preset lookup; no torch)."""
PhaseCheck = Callable[[dict[str, Any]], object]
"""Raises InvalidTaskParams for a phase_config that does not parse."""
FamilyCheck = Callable[[str, str], object]
"""(model, family): raises InvalidTaskParams when the model has no form in that family."""

_DETAILS = "orchestrator_details"


@dataclass(frozen=True)
class RunPlan:
    """Everything the children are built from, validated."""

    plan: planning.TravelPlan
    width: int
    height: int
    images: tuple[str, ...]
    prompts: tuple[str, ...]
    negative_prompts: tuple[str, ...]
    phase_configs: tuple[dict[str, Any] | None, ...]
    loras: tuple[dict[str, float], ...]


@dataclass(frozen=True)
class ChildSlot:
    """One child the run needs. `depends_on` names the slot it waits for."""

    task_type: str
    segment_index: int | None
    params: dict[str, Any]
    depends_on: tuple[str, int | None] | None = None

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.task_type, self.segment_index)


def _check_supported(details: OrchestratorDetails) -> None:
    if details.use_svi:
        raise InvalidTaskParams(f"{_DETAILS}.use_svi: SVI travel is not supported by this worker")
    if details.continue_from_video_resolved_path:
        raise InvalidTaskParams(
            f"{_DETAILS}.continue_from_video_resolved_path: continuing from a video is not supported yet"
        )
    guidance = details.structure_guidance or {}
    if guidance.get("videos"):
        target = guidance.get("target", "vace")
        raise InvalidTaskParams(
            f"{_DETAILS}.structure_guidance: target {target!r} is not supported by this worker yet"
        )


def _check_images(images: Sequence[str], config: TravelConfig) -> None:
    if not images:
        raise InvalidTaskParams(f"{_DETAILS}.input_image_paths_resolved: need at least 1 image, got 0")
    if len(images) - 1 > config.max_segments:
        raise InvalidTaskParams(
            f"{_DETAILS}.input_image_paths_resolved: {len(images)} images make {len(images) - 1} segments, "
            f"over the limit of {config.max_segments} segments per travel run (HW_MAX_TRAVEL_SEGMENTS)"
        )
    for index, source in enumerate(images):
        field = f"{_DETAILS}.input_image_paths_resolved[{index}]"
        if not isinstance(source, str) or not source.strip():
            raise InvalidTaskParams(f"{field}: empty image URL")
        if not is_url(source) and not config.allow_local_inputs:
            raise InvalidTaskParams(f"{field}: local file paths are not accepted; pass an http(s) URL")


def _check_frames(plan: planning.TravelPlan, config: TravelConfig) -> None:
    # Independent segments are separate results; a chained run's output is its stitched video.
    total = plan.stitched_length if plan.chained else sum(plan.targets)
    if total > config.max_frames:
        raise InvalidTaskParams(
            f"{_DETAILS}.segment_frames_expanded: the run would produce {total} frames, over the limit of "
            f"{config.max_frames} frames per task (HW_MAX_TASK_FRAMES)"
        )


def _texts(values: Any, count: int, field: str) -> list[str]:
    if values is None:
        return [""] * count
    return [value or "" for value in planning.expand_per_segment(values, count, field)]  # type: ignore[misc]


def _optional_list(values: list[Any] | None, count: int, field: str) -> list[Any]:
    if values is None:
        return [None] * count
    return planning.expand_per_segment(values, count, field)


def _prompt(details: OrchestratorDetails, enhanced: str, base: str) -> str:
    core = enhanced.strip() or base.strip() or details.base_prompt.strip()
    return " ".join(
        part
        for part in (details.text_before_prompts.strip(), core, details.text_after_prompts.strip())
        if part
    )


def _overlaps(details: OrchestratorDetails, count: int) -> list[int]:
    if count == 1:
        return []
    # The app expands every per-segment array to S entries; only the first S−1 overlaps matter.
    values = planning.expand_per_segment(
        details.frame_overlap_expanded, count - 1, f"{_DETAILS}.frame_overlap_expanded", allow_extra=1
    )
    return [int(value) for value in values]  # type: ignore[call-overload]


def plan_run(
    params: TravelOrchestratorParams,
    config: TravelConfig,
    *,
    model_check: ModelCheck | None = None,
    phase_check: PhaseCheck | None = None,
    family_check: FamilyCheck | None = None,
) -> RunPlan:
    """Validate the payload (no side effects) and plan the run. Raises InvalidTaskParams naming the field."""
    details = params.orchestrator_details
    _check_supported(details)
    _check_images(details.input_image_paths_resolved, config)
    count = max(1, len(details.input_image_paths_resolved) - 1)
    expected = details.num_new_segments_to_generate
    if expected is not None and expected != count:
        raise InvalidTaskParams(
            f"{_DETAILS}.num_new_segments_to_generate: says {expected}, but "
            f"{len(details.input_image_paths_resolved)} image(s) make {count} segment(s)"
        )
    frames = planning.expand_per_segment(
        details.segment_frames_expanded, count, f"{_DETAILS}.segment_frames_expanded"
    )
    plan = planning.plan_travel(
        [int(f) for f in frames], _overlaps(details, count), chained=details.runs_chained
    )  # type: ignore[call-overload]
    _check_frames(plan, config)
    width, height = planning.parse_resolution(
        details.parsed_resolution_wh, f"{_DETAILS}.parsed_resolution_wh"
    )
    base = _texts(details.base_prompts_expanded, count, f"{_DETAILS}.base_prompts_expanded")
    enhanced = _texts(details.enhanced_prompts_expanded, count, f"{_DETAILS}.enhanced_prompts_expanded")
    negatives = _texts(details.negative_prompts_expanded, count, f"{_DETAILS}.negative_prompts_expanded")
    phases = _optional_list(details.phase_configs_expanded, count, f"{_DETAILS}.phase_configs_expanded")
    lora_lists = _optional_list(
        details.loras_per_segment_expanded, count, f"{_DETAILS}.loras_per_segment_expanded"
    )
    phase_configs = tuple(override if override is not None else details.phase_config for override in phases)
    if model_check is not None:
        model_check(details.model_name)
    if family_check is not None and details.model_type == "vace":
        family_check(details.model_name, "vace")  # VACE mode runs the model's VACE form
    if phase_check is not None:
        for config_value in {id(c): c for c in phase_configs if c is not None}.values():
            phase_check(config_value)
    return RunPlan(
        plan=plan,
        width=width,
        height=height,
        images=tuple(details.input_image_paths_resolved),
        prompts=tuple(_prompt(details, enhanced[i], base[i]) for i in range(count)),
        negative_prompts=tuple(negatives[i].strip() or details.negative_prompt for i in range(count)),
        phase_configs=phase_configs,
        loras=tuple(
            {entry.path: entry.strength for entry in lora_list}
            if lora_list is not None
            else dict(details.additional_loras)
            for lora_list in lora_lists
        ),
    )


def child_slots(
    orchestrator_id: str, project_id: str | None, params: TravelOrchestratorParams, run: RunPlan
) -> list[ChildSlot]:
    """The children of a run, in creation order (segments, then the stitch if the run has one)."""
    details = params.orchestrator_details
    plan = run.plan
    links = {
        "orchestrator_task_id_ref": orchestrator_id,
        "orchestrator_run_id": details.run_id,
        "project_id": project_id,
        "parent_generation_id": params.parent_generation_id or details.parent_generation_id,
    }
    resolution = planning.format_resolution(run.width, run.height)
    segment_details = details.segment_copy(orchestrator_id)
    slots = []
    for index in range(plan.num_segments):
        segment = TravelSegmentParams(
            **links,
            orchestrator_details=segment_details,
            **_segment_inputs(run, index),
            **_app_view(details, plan, index),
            segment_index=index,
            is_first_segment=index == 0,
            is_last_segment=index == plan.num_segments - 1,
            base_prompt=run.prompts[index],
            negative_prompt=run.negative_prompts[index],
            segment_frames_target=plan.targets[index],
            frame_overlap_from_previous=plan.overlap_from_previous(index),
            frame_overlap_with_next=plan.overlap_with_next(index),
            parsed_resolution_wh=resolution,
            model_name=details.model_name,
            seed_to_use=details.seed_base,  # same seed for every segment, like the predecessor (P8)
            fps_helpers=details.fps_helpers,
            after_first_post_generation_saturation=details.after_first_post_generation_saturation,
            after_first_post_generation_brightness=details.after_first_post_generation_brightness,
            subsequent_starting_strength_adjustment=details.subsequent_starting_strength_adjustment,
            desaturate_subsequent_starting_frames=details.desaturate_subsequent_starting_frames,
            adjust_brightness_subsequent_starting_frames=details.adjust_brightness_subsequent_starting_frames,
            phase_config=run.phase_configs[index],
            lora_names=details.lora_names,
            lora_multipliers=details.lora_multipliers,
            additional_loras=run.loras[index],
        )
        previous = (TRAVEL_SEGMENT, index - 1) if plan.chained and index > 0 else None
        slots.append(ChildSlot(TRAVEL_SEGMENT, index, segment.wire(), previous))
    if details.needs_stitch:
        # One stitch per run, so its full copy is O(N): the app makes the stitch's params the final
        # video's and reads the run's arrays from there (placeholders, "apply settings").
        stitch = TravelStitchParams(
            **links,
            orchestrator_details=details.child_copy(
                orchestrator_id, list(plan.segment_frames), list(plan.overlaps)
            ),
            num_total_segments_generated=plan.num_segments,
            frame_overlap_settings_expanded=list(plan.overlaps),
            crossfade_sharp_amt=details.crossfade_sharp_amt,
            parsed_resolution_wh=resolution,
            fps_final_video=details.fps_helpers,
            use_svi=details.use_svi,
            upscale_factor=details.upscale_factor,
            upscale_model_name=details.upscale_model_name,
            seed_for_upscale=details.seed_base + UPSCALE_SEED_OFFSET,
        )
        slots.append(
            ChildSlot(
                TRAVEL_STITCH, None, stitch.model_dump(mode="json"), (TRAVEL_SEGMENT, plan.num_segments - 1)
            )
        )
    return slots


def _segment_inputs(run: RunPlan, index: int) -> dict[str, Any]:
    """The segment's own images (the next image is its end anchor) and, when chained, its
    predecessor's planned length: what it would otherwise look up in a copy of the whole run."""
    images = run.images
    chained_from = run.plan.targets[index - 1] if run.plan.chained and index > 0 else None
    return {
        "start_image_url": images[index],
        "end_image_url": images[index + 1] if index + 1 < len(images) else None,
        "predecessor_frames_target": chained_from,
    }


def _app_view(details: OrchestratorDetails, plan: planning.TravelPlan, index: int) -> dict[str, Any]:
    """The values the app's completion used to pick out of the run's arrays at this segment's index
    (prompt, lengths, image and slot ids), so the generation it records is unchanged without them."""
    start_id = item_at(details.input_image_generation_ids, index)
    end_id = item_at(details.input_image_generation_ids, index + 1)
    return {
        "prompt": item_at(details.base_prompts_expanded, index),
        "enhanced_prompt": item_at(details.enhanced_prompts_expanded, index) or None,
        "num_frames": plan.segment_frames[index],
        "frame_overlap": item_at(list(plan.overlaps), index),
        "start_image_generation_id": start_id,
        "end_image_generation_id": end_id,
        "pair_shot_generation_id": item_at(details.pair_shot_generation_ids, index),
        "shot_id": details.shot_id,
        "individual_segment_params": (
            SegmentAppIds(start_image_generation_id=start_id, end_image_generation_id=end_id)
            if start_id or end_id
            else None
        ),
    }


def _slot_key(task: Task) -> tuple[str, int | None] | None:
    index = segment_index_of(task.params)
    if task.task_type == TRAVEL_SEGMENT and index is not None:
        return (TRAVEL_SEGMENT, index)
    if task.task_type == TRAVEL_STITCH:
        return (TRAVEL_STITCH, None)
    return None


def existing_ids(children: Sequence[Task]) -> dict[tuple[str, int | None], str]:
    """Slot → id of the oldest existing child in it (later duplicates are ignored, never used)."""
    ordered = sorted(
        enumerate(children), key=lambda item: (item[1].created_at is None, item[1].created_at or 0, item[0])
    )
    found: dict[tuple[str, int | None], str] = {}
    for _, task in ordered:
        key = _slot_key(task)
        if key is not None and key not in found:
            found[key] = task.id
    return found


def missing_children(
    slots: Sequence[ChildSlot], existing: dict[tuple[str, int | None], str], project_id: str | None
) -> list[NewTask]:
    """New tasks for the slots without a child; dependencies point at existing or new ids."""
    ids = dict(existing)
    new: list[NewTask] = []
    for slot in slots:
        if slot.key in ids:
            continue
        depends = (ids[slot.depends_on],) if slot.depends_on is not None else ()
        task = NewTask(slot.task_type, slot.params, dependant_on=depends, project_id=project_id)
        ids[slot.key] = task.id
        new.append(task)
    return new


class TravelOrchestratorHandler:
    """Plans a travel run and enqueues its children.

    Input: `TravelOrchestratorParams`. Output: no file; `TaskResult(waiting=True)` with the message
    "Successfully enqueued N new segment tasks for run <run_id>". Raises InvalidTaskParams (before any
    child is created) for an unusable payload. Safe to re-run: creates only missing children.
    """

    task_type: ClassVar[str] = TRAVEL_ORCHESTRATOR
    params_model: ClassVar[type[BaseModel]] = TravelOrchestratorParams

    def __init__(
        self,
        config: TravelConfig,
        *,
        model_check: ModelCheck | None = None,
        phase_check: PhaseCheck | None = None,
        family_check: FamilyCheck | None = None,
    ) -> None:
        self.config = config
        self.model_check = model_check
        self.phase_check = phase_check
        self.family_check = family_check

    def run(self, ctx: TaskContext, params: TravelOrchestratorParams) -> TaskResult:
        # A project is Reigh's requirement (its create-task refuses children without one, and says
        # so); the embedded and PostgreSQL queues and `run` need none, and the app's params carry none.
        project_id = ctx.task.project_id or params.project_id or None
        ctx.progress.report("orchestrating", 0, 1, "planning")
        log_unsupported(ctx, [ctx.task.params, ctx.task.params.get(_DETAILS) or {}])
        run = plan_run(
            params, self.config, model_check=self.model_check, phase_check=self.phase_check,
            family_check=self.family_check,
        )  # fmt: skip
        slots = child_slots(ctx.task.id, project_id, params, run)
        new = missing_children(slots, existing_ids(ctx.children.existing()), project_id)
        ctx.cancel.check()
        if new:
            ctx.children.enqueue(new)
        plan = run.plan
        run_id = params.orchestrator_details.run_id
        ctx.log.info(
            "travel run %s: %d segment(s), targets %s, overlaps %s, stitched length %d; %d new child task(s)",
            run_id, plan.num_segments, list(plan.targets), list(plan.overlaps), plan.stitched_length, len(new),
            extra={"action": "travel_planned"},
        )  # fmt: skip
        ctx.progress.report("orchestrating", 1, 1, "children enqueued")
        return TaskResult(
            message=f"Successfully enqueued {len(new)} new segment tasks for run {run_id}", waiting=True
        )
