"""`travel_segment`: inputs → engine → post-processing → one encode (travel.md §5, §7).

By the model's family: an image-to-video model gets the pair's images as `image_start`/`image_end`
(independent segments; the end anchor is the next image); a VACE model gets a guide video and mask
(start/end images, or the predecessor's overlap frames when chained, adjusted by the
`*_subsequent_starting_*` fields). Steps, in call order: `prepare_job` (pure: numbers and names from the
payload), `gather_inputs` / `gather_anchors`, the engine (`prepare`, then `mark_started`, then `generate`),
`post_process`, one encode, the settings sidecar. Safe to re-run: inputs are fetched again into the task's
own workdir and the output name is fixed per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from headless_wan.domain.tasks import TaskResult
from headless_wan.domain.travel_params import TRAVEL_SEGMENT, TravelSegmentParams
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers import planning
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.segment_generation import (
    I2V,
    SegmentEngine,
    SegmentSettings,
    generate_segment,
    log_unsupported,
    model_for_mode,
    reject_unsupported,
    segment_request,
)
from headless_wan.handlers.travel_inputs import (
    TravelConfig,
    completed_dependency,
    fetch_queue_output,
    load_anchor,
)
from headless_wan.media.guide import Guide, OverlapAdjust, build_guide, read_tail

_IMAGES = "orchestrator_details.input_image_paths_resolved"


@dataclass(frozen=True)
class SegmentJob:
    """One segment's numbers and names, derived from the payload alone."""

    index: int
    family: str
    width: int
    height: int
    layout: planning.GuideLayout
    start_image: str | None
    end_image: str | None
    start_field: str
    end_field: str
    """Where the images came from, for messages (top-level URLs, or an older child's run copy)."""
    predecessor_frames: int | None
    """The predecessor's planned length (for a mismatch warning), when chained."""
    fps: int
    post_saturation: float
    post_brightness: float
    adjust: OverlapAdjust


def _anchor_sources(params: TravelSegmentParams) -> tuple[str | None, str | None, str, str]:
    """(start, end, start field, end field): the segment's own URLs, else an older child's run copy."""
    if params.start_image_url is not None:
        return params.start_image_url, params.end_image_url, "start_image_url", "end_image_url"
    images = params.orchestrator_details.input_image_paths_resolved
    index = params.segment_index
    fields = f"{_IMAGES}[{index}]", f"{_IMAGES}[{index + 1}]"
    if len(images) == 1:
        return images[0], None, *fields  # single-image journey: no end anchor
    if index + 1 >= len(images):
        raise InvalidTaskParams(
            f"{_IMAGES}: segment {index} needs images {index} and {index + 1}, got {len(images)}"
        )
    return images[index], images[index + 1], *fields


def _predecessor_length(params: TravelSegmentParams) -> int | None:
    if params.predecessor_frames_target is not None:
        return params.predecessor_frames_target
    details = params.orchestrator_details
    frames = details.segment_frames_expanded
    overlaps = details.frame_overlap_expanded
    if not isinstance(frames, list) or not isinstance(overlaps, list) or len(overlaps) != len(frames) - 1:
        return None
    if not 0 < params.segment_index < len(frames):
        return None
    return planning.segment_targets(frames, overlaps, chained=True)[params.segment_index - 1]


def prepare_job(params: TravelSegmentParams, family: str = "vace") -> SegmentJob:
    """Validate what needs no I/O. Raises InvalidTaskParams naming the field."""
    details = params.orchestrator_details
    reject_unsupported(
        use_svi=params.use_svi, structure_guidance=params.structure_guidance or details.structure_guidance
    )
    target = params.segment_frames_target
    if (target - 1) % 4:
        raise InvalidTaskParams(
            f"segment_frames_target: {target} is not of the form 4n+1 (the orchestrator plans it)"
        )
    width, height = planning.parse_resolution(params.parsed_resolution_wh)
    start, end, start_field, end_field = _anchor_sources(params)
    chained = details.runs_chained and params.frame_overlap_from_previous > 0
    if chained and family == I2V:
        raise InvalidTaskParams(
            f"model_name: chained travel continues a predecessor through a VACE guide; "
            f"{params.model_name or details.model_name} is an image-to-video model"
        )
    layout = planning.guide_layout(
        target, params.frame_overlap_from_previous, chained=chained, has_end_image=end is not None
    )
    first = params.segment_index == 0
    return SegmentJob(
        index=params.segment_index,
        family=family,
        width=width,
        height=height,
        layout=layout,
        start_image=start,
        end_image=end,
        start_field=start_field,
        end_field=end_field,
        predecessor_frames=_predecessor_length(params) if chained else None,
        fps=params.fps_helpers,
        post_saturation=1.0 if first else params.after_first_post_generation_saturation,
        post_brightness=0.0 if first else params.after_first_post_generation_brightness,
        adjust=OverlapAdjust(
            strength_adjustment=params.subsequent_starting_strength_adjustment,
            desaturate=params.desaturate_subsequent_starting_frames,
            brightness=params.adjust_brightness_subsequent_starting_frames,
        ),
    )


def segment_settings(params: TravelSegmentParams, job: SegmentJob, model: str) -> SegmentSettings:
    """The segment's generation settings: its prompt, seed, phase_config (the orchestrator already chose
    per-segment over run-wide) and every LoRA it names (additional_loras, lora_names/lora_multipliers)."""
    return SegmentSettings(
        model=model,
        prompt=params.base_prompt,
        negative_prompt=params.negative_prompt,
        width=job.width,
        height=job.height,
        num_frames=job.layout.num_frames,
        seed=params.seed_to_use,
        phase_config=params.phase_config,
        loras=tuple(params.loras()),
        fps=job.fps,
    )


class TravelSegmentHandler:
    """Generates one travel segment.

    Input: `TravelSegmentParams` (and, when chained, the predecessor's output through `ctx.lookup`).
    Output: `<task id>.mp4` with exactly `segment_frames_target` frames, plus a JPEG thumbnail. Raises
    InvalidTaskParams (payload), InputUnavailable (an image URL 404s), TransientError (predecessor not
    Complete yet, download timeouts), MediaError, and the engine's errors. Safe to re-run.
    """

    task_type: ClassVar[str] = TRAVEL_SEGMENT
    params_model: ClassVar[type[BaseModel]] = TravelSegmentParams

    def __init__(self, engine: SegmentEngine, config: TravelConfig) -> None:
        self.engine = engine
        self.config = config

    def run(self, ctx: TaskContext, params: TravelSegmentParams) -> TaskResult:
        log_unsupported(ctx, [ctx.task.params, ctx.task.params.get("orchestrator_details") or {}])
        details = params.orchestrator_details
        model = params.model_name or details.model_name
        runs = model_for_mode(self.engine, model, details.model_type)
        job = prepare_job(params, self.engine.family(runs))
        settings = segment_settings(params, job, runs)
        if job.family == I2V:
            start, end = self.gather_anchors(ctx, job)
            request = segment_request(settings, start=start, end=end)
        else:
            request = segment_request(settings, guide=self.gather_inputs(ctx, job))
        return generate_segment(
            self.engine, ctx, request, task_model=model, fps=job.fps,
            allow_local=self.config.allow_local_inputs, saturation=job.post_saturation,
            brightness=job.post_brightness, planned_frames=job.layout.num_frames,
        )  # fmt: skip

    def gather_anchors(self, ctx: TaskContext, job: SegmentJob) -> tuple[np.ndarray, np.ndarray | None]:
        """Image-to-video: the pair's start image and the next image as the end anchor."""
        ctx.progress.report("fetching_inputs", 0, 1)
        if job.start_image is None:
            raise InvalidTaskParams(f"{job.start_field}: an image-to-video segment needs a start image")
        start = self._anchor(ctx, job, job.start_image, job.start_field, "start_image")
        end = None
        if job.end_image is not None:
            end = self._anchor(ctx, job, job.end_image, job.end_field, "end_image")
        ctx.progress.report("fetching_inputs", 1, 1)
        return start, end

    def gather_inputs(self, ctx: TaskContext, job: SegmentJob) -> Guide:
        """Fetch anchors and the predecessor's tail; paint the guide and mask."""
        layout = job.layout
        ctx.progress.report("fetching_inputs", 0, 1)
        start = end = None
        if layout.start_anchor and job.start_image is not None:
            start = self._anchor(ctx, job, job.start_image, job.start_field, "start_image")
        if layout.end_anchor and job.end_image is not None:
            end = self._anchor(ctx, job, job.end_image, job.end_field, "end_image")
        overlap = self._predecessor_tail(ctx, job, ctx.workdir / "inputs") if layout.overlap_frames else []
        ctx.progress.report("fetching_inputs", 1, 1)
        return build_guide(
            layout, job.width, job.height, start=start, end=end, overlap=overlap, adjust=job.adjust
        )

    def _anchor(self, ctx: TaskContext, job: SegmentJob, source: str, field: str, name: str) -> np.ndarray:
        """One anchor image fetched into the task's inputs and fitted to the segment's size."""
        return load_anchor(
            source, ctx.workdir / "inputs", self.config, job.width, job.height, field=field, filename=name
        )

    def _predecessor_tail(self, ctx: TaskContext, job: SegmentJob, folder: Path) -> list[np.ndarray]:
        if not ctx.task.dependant_on:
            raise InvalidTaskParams(
                f"segment {job.index} continues a predecessor (overlap {job.layout.overlap_frames}) "
                "but the task has no dependency"
            )
        predecessor = completed_dependency(ctx, ctx.task.dependant_on[0], what="predecessor segment")
        path = fetch_queue_output(
            predecessor.output_location or "",
            folder,
            self.config,
            what="predecessor output",
            filename="predecessor.mp4",
        )
        tail = read_tail(path, job.layout.overlap_frames, job.width, job.height)
        if job.predecessor_frames is not None and tail.total_frames != job.predecessor_frames:
            ctx.log.warning(
                "predecessor decoded to %d frames, planned %d; using its last %d",
                tail.total_frames, job.predecessor_frames, job.layout.overlap_frames,
                extra={"action": "predecessor_length_mismatch"},
            )  # fmt: skip
        return tail.frames
