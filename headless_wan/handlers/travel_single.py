"""The app's single-segment tasks: `individual_travel_segment` (regenerate one pair) and `wan_2_2_i2v`
(travel "turbo mode": the travel payload, completed as one generation over its first pair).

Both run one independent segment on the model's family (`segment_generation`): an image-to-video
model gets `image_start`/`image_end`; a VACE model gets them as guide frames 0 and T−1 with a black
mask there. No post-processing (travel.md §7). Output: `<task id>.mp4`, a JPEG thumbnail and the
settings sidecar. Safe to re-run: inputs are fetched again into the task's workdir.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from headless_wan.domain.single_segment_params import IndividualTravelSegmentParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.domain.travel_params import (
    INDIVIDUAL_TRAVEL_SEGMENT,
    WAN_2_2_I2V,
    TravelOrchestratorParams,
    lora_pairs,
)
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
from headless_wan.handlers.travel_inputs import TravelConfig, load_anchor
from headless_wan.handlers.travel_orchestrator import FamilyCheck, ModelCheck, PhaseCheck, plan_run
from headless_wan.media.guide import build_guide

_OWN = "individual_segment_params"


def generate_pair(
    engine: SegmentEngine,
    config: TravelConfig,
    ctx: TaskContext,
    settings: SegmentSettings,
    images: Sequence[str],
    fields: Sequence[str],
    model_type: str | None,
) -> TaskResult:
    """One independent segment from `images[0]` (to `images[1]` when given); `fields` name the images.
    `settings.model` is the name as asked (reported and recorded); the mode may run its counterpart."""
    asked = settings.model
    settings = replace(settings, model=model_for_mode(engine, asked, model_type))
    family = engine.family(settings.model)  # an unknown model fails here, before any download
    # Frames, size, schedule and family rules too: placeholder anchors stand in for the images.
    blank = np.zeros((settings.height, settings.width, 3), np.uint8)
    engine.validate(_pair_request(family, settings, blank, blank if len(images) > 1 else None))
    folder = ctx.workdir / "inputs"
    ctx.progress.report("fetching_inputs", 0, 1)
    anchors = [
        load_anchor(source, folder, config, settings.width, settings.height, field=field, filename=name)
        for source, field, name in zip(images[:2], fields, ("start_image", "end_image"), strict=False)
    ]
    ctx.progress.report("fetching_inputs", 1, 1)
    request = _pair_request(family, settings, anchors[0], anchors[1] if len(anchors) > 1 else None)
    return generate_segment(
        engine, ctx, request, task_model=asked, fps=settings.fps, allow_local=config.allow_local_inputs
    )


def _pair_request(family: str, settings: SegmentSettings, start: np.ndarray, end: np.ndarray | None) -> Any:
    """Image-to-video: the anchors as first and last frame. VACE: painted into guide frames 0 and T−1."""
    if family == I2V:
        return segment_request(settings, start=start, end=end)
    layout = planning.guide_layout(settings.num_frames, 0, chained=False, has_end_image=end is not None)
    return segment_request(
        settings, guide=build_guide(layout, settings.width, settings.height, start=start, end=end)
    )


class IndividualTravelSegmentHandler:
    """Regenerates one travel pair (`individual_segment_params` win over the top-level fields).

    Raises InvalidTaskParams (no start image, bad resolution, unknown model, frames over the model's
    limit), InputUnavailable (an image URL 404s) and the engine's errors. Safe to re-run."""

    task_type: ClassVar[str] = INDIVIDUAL_TRAVEL_SEGMENT
    params_model: ClassVar[type[BaseModel]] = IndividualTravelSegmentParams

    def __init__(self, engine: SegmentEngine, config: TravelConfig) -> None:
        self.engine = engine
        self.config = config

    def run(self, ctx: TaskContext, params: IndividualTravelSegmentParams) -> TaskResult:
        log_unsupported(ctx, [ctx.task.params])
        reject_unsupported(use_svi=params.use_svi, structure_guidance=params.structure_guidance)
        images = params.images()
        if not images or not images[0].strip():
            raise InvalidTaskParams(f"{_OWN}.start_image_url: a start image is required")
        width, height = planning.parse_resolution(params.parsed_resolution_wh)
        phases = params.phases()
        settings = SegmentSettings(
            model=params.model() or "",
            prompt=params.prompt(),
            negative_prompt=params.negative(),
            width=width,
            height=height,
            # The app sends 4n+1 counts; anything else is quantised by the travel rule (80 → 81).
            num_frames=planning.quantise_segment_frames(params.frames()),
            seed=params.seed(),
            phase_config=phases,
            loras=tuple(params.loras()),
            fps=params.fps_helpers,
            flow_shift=None if phases else params.flow_shift,
            solver=None if phases else params.sample_solver,
        )
        if not settings.model:
            raise InvalidTaskParams("model_name: missing (and orchestrator_details.model_name too)")
        fields = (f"{_OWN}.start_image_url", f"{_OWN}.end_image_url")
        model_type = params.model_type or params.orchestrator_details.get("model_type")
        return generate_pair(self.engine, self.config, ctx, settings, images, fields, model_type)


class WanI2VHandler:
    """`wan_2_2_i2v`, the app's turbo mode: a travel payload generated as one segment over its first
    pair (travel.md §8.2), completed as a standalone generation. Validated like an orchestrator."""

    task_type: ClassVar[str] = WAN_2_2_I2V
    params_model: ClassVar[type[BaseModel]] = TravelOrchestratorParams

    def __init__(
        self,
        engine: SegmentEngine,
        config: TravelConfig,
        *,
        model_check: ModelCheck | None = None,
        phase_check: PhaseCheck | None = None,
        family_check: FamilyCheck | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.model_check = model_check
        self.phase_check = phase_check
        self.family_check = family_check

    def run(self, ctx: TaskContext, params: TravelOrchestratorParams) -> TaskResult:
        details = params.orchestrator_details
        log_unsupported(ctx, [ctx.task.params, ctx.task.params.get("orchestrator_details") or {}])
        run = plan_run(
            params, self.config, model_check=self.model_check, phase_check=self.phase_check,
            family_check=self.family_check,
        )  # fmt: skip
        if len(run.images) > 2:
            ctx.log.warning(
                "turbo mode generates the first pair only (%d images given)", len(run.images),
                extra={"action": "turbo_first_pair"},
            )  # fmt: skip
        settings = SegmentSettings(
            model=details.model_name,
            prompt=run.prompts[0],
            negative_prompt=run.negative_prompts[0],
            width=run.width,
            height=run.height,
            num_frames=run.plan.targets[0],
            seed=details.seed_base,
            phase_config=run.phase_configs[0],
            loras=tuple(lora_pairs(run.loras[0], details.lora_names, details.lora_multipliers)),
            fps=details.fps_helpers,
        )
        images = "orchestrator_details.input_image_paths_resolved"
        fields = (f"{images}[0]", f"{images}[1]")
        return generate_pair(
            self.engine, self.config, ctx, settings, run.images[:2], fields, details.model_type
        )


def single_segment_handlers(engine: Any, config: TravelConfig, *, phase_check: PhaseCheck) -> list[Any]:
    return [
        IndividualTravelSegmentHandler(engine, config),
        WanI2VHandler(
            engine,
            config,
            model_check=engine.preset,
            phase_check=phase_check,
            family_check=engine.model_in_family,
        ),
    ]
