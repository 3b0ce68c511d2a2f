"""The video pipeline call, and the compile warm-up that runs it briefly at load.

Warm-up (HW_COMPILE): `torch.compile` compiles a block the first time it runs with a new guard
state (input shapes, dtypes, the LoRA layers' active adapters). Left to the first task, that is
seconds to minutes of its denoising, and it lands on a step the progress and the step-time
metrics report. So the engine warms a compiled pipeline at load: the first task's own call
(same family inputs, prompt encoding, dtypes and adapter state, so the same guards) with one
denoising step per expert and no VAE decode. Tasks at the same shape then never compile; a new
shape (another resolution, frame count or VACE reference-image count) compiles once, and after
a second shape dynamo marks the changing dimensions dynamic.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from headless_wan.engine import planning
from headless_wan.engine.callbacks import StepCallback
from headless_wan.engine.families import get_family
from headless_wan.engine.loading import LoadedPipeline, cached_timesteps
from headless_wan.engine.phases import boundary_ratio_between
from headless_wan.engine.presets import Preset
from headless_wan.engine.request import GenerationRequest
from headless_wan.errors import HeadlessWanError

log = logging.getLogger(__name__)
MAX_SEQUENCE_LENGTH = 512  # T5 tokens; longer prompts are truncated by the pipeline


def _call_kwargs(
    loaded: LoadedPipeline, request: GenerationRequest, preset: Preset, task: planning.TaskPlan
) -> dict[str, Any]:
    pipe = loaded.pipe
    kwargs = get_family(loaded.spec.family).call_kwargs(request)
    kwargs.update(planning.prompt_kwargs(pipe, request, preset, task.plan, MAX_SEQUENCE_LENGTH))
    if task.plan.guidance_scale_2 is not None:
        kwargs["guidance_scale_2"] = task.plan.guidance_scale_2
    return kwargs


def run_pipeline(
    loaded: LoadedPipeline,
    request: GenerationRequest,
    preset: Preset,
    task: planning.TaskPlan,
    callback: StepCallback,
) -> tuple[np.ndarray, float, float | None]:
    import torch

    pipe = loaded.pipe
    if loaded.spec.two_experts:
        pipe.register_to_config(boundary_ratio=task.boundary_ratio)
    kwargs = _call_kwargs(loaded, request, preset, task)
    on_cuda = loaded.spec.device_type == "cuda"
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    callback.start(pipe)
    started = time.perf_counter()
    output = pipe(
        height=request.height,
        width=request.width,
        num_frames=request.num_frames,
        num_inference_steps=len(task.plan.steps),
        guidance_scale=task.plan.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        output_type="np",
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=[],
        **kwargs,
    )
    call_s = time.perf_counter() - started
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if on_cuda else None
    frames = (np.clip(output.frames[0], 0.0, 1.0) * 255.0).round().astype(np.uint8)
    expected = (request.num_frames, request.height, request.width, 3)
    if frames.shape != expected:
        raise HeadlessWanError(f"pipeline returned frames shaped {frames.shape}, expected {expected}")
    return frames, call_s, peak_mb


def warm_up(
    loaded: LoadedPipeline, request: GenerationRequest, preset: Preset, task: planning.TaskPlan
) -> float:
    """One denoising step per expert at the task's shape, latents out (no decode); returns seconds.

    The caller has already put the adapters in the task's state (engine/lora_fusion.py), so the
    compiled blocks see the guards the task will present."""
    import torch

    pipe = loaded.pipe
    steps = 2 if loaded.spec.two_experts else 1
    if loaded.spec.two_experts:
        # Step 1 on the high-noise expert, step 2 on the low-noise one.
        timesteps = cached_timesteps(loaded, task.solver, task.flow_shift, steps)
        num_train = int(pipe.scheduler.config.num_train_timesteps)
        pipe.register_to_config(boundary_ratio=boundary_ratio_between(timesteps, 1, num_train))
    kwargs = _call_kwargs(loaded, request, preset, task)
    started = time.perf_counter()
    pipe(
        height=request.height,
        width=request.width,
        num_frames=request.num_frames,
        num_inference_steps=steps,
        guidance_scale=task.plan.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        output_type="latent",
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        **kwargs,
    )
    if loaded.spec.device_type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    log.info(
        "compile warm-up at %dx%dx%d: %.1f s",
        request.width,
        request.height,
        request.num_frames,
        elapsed,
        extra={"action": "compile_warmup"},
    )
    return elapsed
