"""Running an image family's pipeline: an `ImageRequest` on a loaded pipeline → one uint8 image.

The engine (`generate.py`) owns validation and the warm cache, which image and video families
share: one pipeline is resident at a time, so a Z-Image task after a Wan task releases the Wan
model first (and the other way round). This module is the call itself: the family picks the
pipeline view and conditioning, the step callback reports progress and raises on cancellation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from headless_wan.engine.callbacks import CancelCheck, ProgressFn, check_cancelled
from headless_wan.engine.config import EngineConfig
from headless_wan.engine.device import classify_device_error
from headless_wan.engine.image_request import ImageRequest, lora_weight
from headless_wan.engine.loading import LoadedPipeline
from headless_wan.engine.loras import (
    FetchFn,
    LoraSpec,
    WantedAdapter,
    adapter_name,
    normalise_source,
    redact,
    resolve_lora_file,
    set_adapter_weights,
    sync_adapters,
)
from headless_wan.engine.presets import Preset
from headless_wan.engine.profiles import adapter_editing
from headless_wan.errors import HeadlessWanError

MAX_SEQUENCE_LENGTH = 512


class _ImageStepCallback:
    """diffusers' `callback_on_step_end`: progress per step; raising aborts the call at once."""

    def __init__(self, total: int, on_progress: ProgressFn | None, cancel_check: CancelCheck | None) -> None:
        self.total = total
        self.steps_done = 0
        self._on_progress = on_progress
        self._cancel_check = cancel_check

    def __call__(self, pipe: Any, step: int, timestep: Any, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
        check_cancelled(self._cancel_check)
        self.steps_done += 1
        if self._on_progress is not None:
            self._on_progress("denoising", self.steps_done, self.total)
        return {}


def unique_loras(preset_loras: Sequence[Any], task_loras: Sequence[LoraSpec]) -> list[LoraSpec]:
    """The preset's LoRAs, then the task's; one entry per source (a later one re-weights an earlier
    one, so a task can re-weight or zero a preset LoRA, as for video)."""
    specs = [LoraSpec(item.source, item.multiplier) for item in preset_loras] + list(task_loras)
    return list({normalise_source(spec.source): spec for spec in specs}.values())


def lora_files(
    preset: Preset, request: ImageRequest, config: EngineConfig, fetch: FetchFn | None
) -> tuple[tuple[LoraSpec, Path], ...]:
    """Local files of the preset's and the task's LoRAs (URLs downloaded once into the cache)."""
    return tuple(
        (spec, resolve_lora_file(spec.source, config.lora_cache_dir, fetch=fetch,
                                 max_mb=config.lora_max_mb, timeout_s=config.lora_timeout_s))
        for spec in unique_loras(preset.loras, request.loras)
    )  # fmt: skip


def wanted_adapters(loras: Sequence[tuple[LoraSpec, Path]]) -> list[WantedAdapter]:
    # Image families have one denoiser: every adapter goes into `transformer`.
    return [
        WantedAdapter(adapter_name(spec.source), path, frozenset({"transformer"})) for spec, path in loras
    ]


def activate_loras(
    loaded: LoadedPipeline, loras: Sequence[tuple[LoraSpec, Path]], *, max_loaded: int
) -> None:
    """Load this task's adapters (the video path's bookkeeping; image pipelines are never compiled)
    and make exactly them active at their weights (none: LoRAs of earlier tasks off)."""
    pipe = loaded.pipe
    sync_adapters(
        pipe, loaded.adapters, wanted_adapters(loras),
        editing=lambda: adapter_editing(pipe, loaded.profile, loaded.compute_dtype), max_loaded=max_loaded,
    )  # fmt: skip
    weights = {adapter_name(spec.source): lora_weight(spec) for spec, _ in loras}
    set_adapter_weights(pipe, loaded.adapters, weights)


def run_image(
    loaded: LoadedPipeline,
    family: Any,
    request: ImageRequest,
    preset: Preset,
    *,
    on_progress: ProgressFn | None,
    cancel_check: CancelCheck | None,
    loras: Sequence[tuple[LoraSpec, Path]] = (),
) -> tuple[np.ndarray, dict[str, Any]]:
    """Generate; returns the (H, W, 3) uint8 image and the effective settings of the call."""
    import torch

    steps = preset.steps if request.steps is None else request.steps
    guidance = preset.guidance_scale if request.guidance_scale is None else request.guidance_scale
    pipe, kwargs = family.image_call(loaded.pipe, request, guidance)
    negative = preset.negative_prompt if request.negative_prompt is None else request.negative_prompt
    strength = kwargs.get("strength")
    # Image-to-image runs only the last `strength` share of the schedule (as diffusers does).
    denoised = max(int(steps * strength), 1) if strength is not None else steps
    callback = _ImageStepCallback(denoised, on_progress, cancel_check)
    check_cancelled(cancel_check)
    started = time.perf_counter()
    output = pipe(
        prompt=request.prompt,
        negative_prompt=negative or None,
        height=request.height,
        width=request.width,
        num_inference_steps=steps,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        output_type="np",
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=[],
        **kwargs,
    )
    call_s = time.perf_counter() - started
    image = (np.clip(output.images[0], 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if image.shape != (request.height, request.width, 3):
        raise HeadlessWanError(
            f"pipeline returned an image shaped {image.shape}, expected {(request.height, request.width, 3)}"
        )
    settings = {
        "model": request.model,
        "preset": preset.name,
        "family": preset.family,
        "pipeline_class": type(pipe).__name__,
        "weights": preset.weights,
        "device": loaded.spec.device,
        "dtype": loaded.spec.compute_dtype,
        "memory_profile": loaded.profile.name,
        "width": request.width,
        "height": request.height,
        "seed": request.seed,
        "prompt": request.prompt,
        "negative_prompt": negative,
        "steps": steps,
        "denoising_steps": callback.steps_done,
        "guidance_scale": guidance,
        "input_image": request.image is not None,
        "strength": strength,
        "loras": [{"source": redact(spec.source), "weight": lora_weight(spec)} for spec, _ in loras],
        "call_s": call_s,
    }
    return image, settings


def image_metrics(load_s: float, reused: bool, call_s: float, started: float) -> dict[str, float]:
    return {
        "load_s": load_s,
        "model_reused": float(reused),
        "denoise_s": float(call_s),
        "generate_s": time.perf_counter() - started,
    }


def translated_error(exc: Exception, request: ImageRequest, profile: str) -> Exception:
    """Device errors (out of memory, lost context) as the engine's errors; others unchanged."""
    if isinstance(exc, HeadlessWanError):
        return exc
    translated = classify_device_error(
        exc, width=request.width, height=request.height, num_frames=1, profile=profile
    )
    return translated or exc
