"""Per-task planning on a loaded pipeline: scheduler, phase schedule, expert switch, adapters,
prompt inputs, and the effective-settings record.

Where the schedule comes from (first match): the task's phase_config; the preset's phases when the
task overrides neither steps nor guidance; else `steps` with one CFG per expert, the experts split
where the preset's `boundary_ratio` falls on this run's timesteps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headless_wan.engine.loading import LoadedPipeline, cached_timesteps, use_scheduler
from headless_wan.engine.loras import EXPERT_COMPONENTS, LoraSpec, WantedAdapter, adapter_name, redact
from headless_wan.engine.phases import (
    DenoisePlan,
    Schedule,
    boundary_ratio_between,
    build_plan,
    schedule_by_expert,
    schedule_from_phases,
    switch_step_for_boundary,
)
from headless_wan.engine.presets import Preset
from headless_wan.engine.request import GenerationRequest

if TYPE_CHECKING:
    from headless_wan.engine.generate import Prepared

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskPlan:
    solver: str
    flow_shift: float
    schedule: Schedule
    plan: DenoisePlan
    timesteps: tuple[float, ...]
    boundary_ratio: float | None
    adapters: tuple[tuple[LoraSpec, str], ...]
    wanted: tuple[WantedAdapter, ...]


def solver_and_shift(request: GenerationRequest, preset: Preset) -> tuple[str, float]:
    phases = request.phases
    solver = (phases.solver if phases else None) or request.solver or preset.solver
    shift = (phases.flow_shift if phases else None) or request.flow_shift or preset.flow_shift
    return solver, float(shift)


def schedule_for(
    request: GenerationRequest, preset: Preset, timesteps_for: Callable[[int], Sequence[float]] | None
) -> Schedule | None:
    """The phase schedule; None when it needs timesteps and `timesteps_for` is not given."""
    two = preset.two_experts
    if request.phases is not None:
        p = request.phases
        return schedule_from_phases(p.steps_per_phase, p.guidance_per_phase, p.model_switch_phase, two)
    overridden = any(v is not None for v in (request.steps, request.guidance_scale, request.guidance_scale_2))
    if preset.phases is not None and not overridden:
        p = preset.phases
        switch = p.model_switch_phase or (1 if len(p.steps_per_phase) == 2 else 2)
        return schedule_from_phases(p.steps_per_phase, p.guidance_per_phase, switch, two)
    steps = request.steps or preset.steps
    g1 = preset.guidance_scale if request.guidance_scale is None else request.guidance_scale
    if not two:
        return schedule_by_expert(steps, g1, None, None)
    g2 = request.guidance_scale_2
    if g2 is None:
        g2 = preset.guidance_scale_2 if preset.guidance_scale_2 is not None else g1
    if timesteps_for is None:
        return None
    switch = switch_step_for_boundary(timesteps_for(steps), preset.boundary_ratio or 0.875, 1000)
    return schedule_by_expert(steps, g1, g2, switch)


def check_schedule(request: GenerationRequest, preset: Preset, loras: Sequence[LoraSpec]) -> None:
    """Validate phases, CFG and multipliers before loading whenever no timesteps are needed."""
    schedule = schedule_for(request, preset, None)
    if schedule is not None:
        build_plan(schedule, [(s.source, s.multiplier) for s in loras], two_experts=preset.two_experts)


def plan_task(
    loaded: LoadedPipeline, request: GenerationRequest, preset: Preset, loras: Sequence[tuple[LoraSpec, Path]]
) -> TaskPlan:
    solver, shift = solver_and_shift(request, preset)
    scheduler = use_scheduler(loaded, solver, shift)
    num_train = int(scheduler.config.num_train_timesteps)
    schedule = schedule_for(request, preset, lambda steps: cached_timesteps(loaded, solver, shift, steps))
    assert schedule is not None  # timesteps were available
    named = [(spec, adapter_name(spec.source)) for spec, _ in loras]
    plan = build_plan(
        schedule, [(name, spec.multiplier) for spec, name in named], two_experts=preset.two_experts
    )
    timesteps = cached_timesteps(loaded, solver, shift, schedule.steps)
    boundary = None
    if preset.two_experts and plan.switch_step is not None:
        boundary = boundary_ratio_between(timesteps, plan.switch_step, num_train)
    elif preset.two_experts:
        boundary = boundary_ratio_between(timesteps, len(timesteps), num_train)
    wanted = []
    for index, ((_, path), (_, name)) in enumerate(zip(loras, named, strict=True)):
        components = frozenset(EXPERT_COMPONENTS[e] for e in plan.experts_using(index))
        if components:  # a LoRA at weight 0 throughout is not even loaded
            wanted.append(WantedAdapter(name, path, components))
    return TaskPlan(solver, shift, schedule, plan, timesteps, boundary, tuple(named), tuple(wanted))


def prompt_kwargs(
    pipe: Any, request: GenerationRequest, preset: Preset, plan: DenoisePlan, max_tokens: int
) -> dict[str, Any]:
    negative = preset.negative_prompt if request.negative_prompt is None else request.negative_prompt
    _warn_if_truncated(pipe.tokenizer, request.prompt, max_tokens)
    if not plan.needs_negative_embeds:
        return {"prompt": request.prompt, "negative_prompt": negative}
    # CFG turns on after a CFG-free first step: encode both prompts now (the pipeline would skip
    # the negative one because the call starts with CFG off).
    positive, negative_embeds = pipe.encode_prompt(
        prompt=request.prompt,
        negative_prompt=negative,
        do_classifier_free_guidance=True,
        num_videos_per_prompt=1,
        max_sequence_length=max_tokens,
        device=pipe._execution_device,
    )
    return {"prompt": None, "prompt_embeds": positive, "negative_prompt_embeds": negative_embeds}


def _warn_if_truncated(tokenizer: Any, prompt: str, max_tokens: int) -> None:
    count = len(tokenizer(prompt, add_special_tokens=True).input_ids)
    if count > max_tokens:
        log.warning("prompt has %d tokens; the text encoder keeps the first %d", count, max_tokens)


def effective_settings(
    request: GenerationRequest, prepared: Prepared, task: TaskPlan, device: str
) -> dict[str, Any]:
    preset, spec = prepared.preset, prepared.loaded.spec
    schedule, plan = task.schedule, task.plan
    return {
        "model": request.model,
        "preset": preset.name,
        "family": preset.family,
        "pipeline_class": type(prepared.loaded.pipe).__name__,
        "weights": preset.weights,
        "device": device,
        "dtype": spec.compute_dtype,
        "memory_profile": prepared.profile.name,
        "attention_backend": prepared.loaded.attention_backend,
        "width": request.width,
        "height": request.height,
        "num_frames": request.num_frames,
        "seed": request.seed,
        "prompt": request.prompt,
        "negative_prompt": preset.negative_prompt
        if request.negative_prompt is None
        else request.negative_prompt,
        "solver": task.solver,
        "flow_shift": task.flow_shift,
        "steps": schedule.steps,
        "steps_per_phase": list(schedule.steps_per_phase),
        "guidance_per_phase": list(schedule.guidance_per_phase),
        "expert_per_phase": list(schedule.expert_per_phase),
        "expert_switch_step": plan.switch_step,
        "boundary_ratio": task.boundary_ratio,
        "timesteps": [round(t, 3) for t in task.timesteps],
        "conditioning_scale": _conditioning_scale(request, preset),
        "loras": [
            {"source": redact(spec_.source), "adapter": name, "multiplier": spec_.multiplier}
            for spec_, name in task.adapters
        ],
        "phase_plan": phase_plan(plan),
        "video_guide": request.guide is not None,
        "video_mask": request.mask is not None,
        "reference_images": len(request.reference_images),
        "image_start": request.start_image is not None,
        "image_end": request.end_image is not None,
    }


def phase_plan(plan: DenoisePlan) -> list[dict[str, Any]]:
    """Per denoising step (1-based): the expert, whether CFG runs and each LoRA's weight."""
    return [
        {
            "step": index + 1,
            "expert": "high_noise" if step.expert == 0 else "low_noise",
            "guidance": step.guidance,
            "lora_weights": dict(zip(plan.lora_names, step.lora_weights, strict=True)),
        }
        for index, step in enumerate(plan.steps)
    ]


def _conditioning_scale(request: GenerationRequest, preset: Preset) -> float | None:
    """The VACE conditioning scale the call used (1.0 unless set); None for other families."""
    if preset.family != "vace":
        return None
    return 1.0 if request.conditioning_scale is None else request.conditioning_scale
