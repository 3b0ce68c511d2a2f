"""Engine: request in, uint8 frames out, on a warm cached pipeline of the preset's family.

    engine = Engine(engine_config_from_settings(settings))   # cheap: no torch, no weights
    engine.prepare(request, fetch=fetch)                      # validate, fetch LoRAs, load/reuse
    result = engine.generate(request, on_progress=..., cancel_check=...)

`generate` runs `prepare` itself when needed; handlers call it first so that billing
(`mark_started`) starts after the model load. Errors: `InvalidTaskParams` (before any compute),
`ConfigError` (weights or profile unusable), `InputUnavailable` (LoRA download), `TaskCancelled`
(within one step), `EngineOOM` (memory freed, worker continues), `WorkerFatal` (CUDA context lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headless_wan.engine import imaging, planning
from headless_wan.engine.cache import PipelineCache
from headless_wan.engine.callbacks import CancelCheck, ProgressFn, StepCallback, check_cancelled
from headless_wan.engine.config import EngineConfig
from headless_wan.engine.device import FitnessReport, classify_device_error, device_fitness
from headless_wan.engine.families import get_family
from headless_wan.engine.image_request import ImageRequest, validate_image_request
from headless_wan.engine.loading import LoadedPipeline, free_device_memory, load_pipeline
from headless_wan.engine.lora_fusion import StepWeights, can_fuse, prepare_compiled
from headless_wan.engine.loras import FetchFn, LoraSpec, normalise_source, resolve_lora_file, sync_adapters
from headless_wan.engine.presets import Preset, PresetRegistry, load_presets
from headless_wan.engine.profiles import MemoryProfile, adapter_editing, get_profile
from headless_wan.engine.request import GenerationRequest, validate_request
from headless_wan.engine.spec import PipelineSpec, pipeline_spec, resolve_device
from headless_wan.engine.video_call import run_pipeline as _run_pipeline
from headless_wan.engine.video_call import warm_up
from headless_wan.errors import HeadlessWanError, InvalidTaskParams

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class GenerationResult:
    frames: np.ndarray
    """uint8 RGB, shape (num_frames, height, width, 3)."""
    settings: Mapping[str, Any]
    """Effective settings (for the output's JSON sidecar); URLs without their query strings."""
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Prepared:
    preset: Preset
    profile: MemoryProfile
    loaded: LoadedPipeline
    loras: tuple[tuple[LoraSpec, Path], ...]
    load_s: float
    reused: bool


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._registry: PresetRegistry | None = None
        self._device: str | None = None
        self._cache: PipelineCache[PipelineSpec, LoadedPipeline] = PipelineCache(free_device_memory)

    # -- presets -------------------------------------------------------------------------------
    @property
    def presets(self) -> PresetRegistry:
        if self._registry is None:
            self._registry = load_presets(self.config.presets_file)
        return self._registry

    def requested_model(self, model: str | None, *, task_type: str | None = None) -> str:
        """The model name a task asks for: its own, else its task type's default, else (with no
        name at all) the model override. Raises `InvalidTaskParams` when there is none."""
        name = model or (task_type and self.presets.default_model(task_type)) or self.config.model_override
        if not name:
            raise InvalidTaskParams("model: no model given and this task type has no default")
        return name

    def preset(self, model: str | None, *, task_type: str | None = None) -> Preset:
        """The preset a task runs on. The asked name is always resolved, so an unknown model fails
        even under `model_override`; the override then replaces it within the model's family
        (`PresetRegistry.with_override`). Unknown names raise `InvalidTaskParams`."""
        asked = self.presets.resolve(self.requested_model(model, task_type=task_type))
        override = self.config.model_override
        return self.presets.with_override(asked, override) if override else asked

    def model_in_family(self, model: str | None, family: str) -> str:
        """The name to run for `model` in `family`: itself, or its preset's counterpart there (travel
        in VACE mode names I2V schedules). Raises `InvalidTaskParams` when there is none."""
        name = self.requested_model(model)
        asked = self.presets.resolve(name)
        if asked.family == family:
            return name
        counterpart = asked.counterparts.get(family)
        if counterpart is None:
            raise InvalidTaskParams(
                f"model_type: {family!r} travel needs a {family} model; {name} is {asked.family} "
                f"and has no {family} counterpart"
            )
        return counterpart

    def family(self, model: str | None, *, task_type: str | None = None) -> str:
        """The pipeline family a task's model runs in (`vace`, `i2v`); a TOML lookup, no torch."""
        return self.preset(model, task_type=task_type).family

    def memory_profile(self, preset: Preset) -> MemoryProfile:
        return get_profile(self.config.memory_profile or preset.memory_profile)

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.config.device)
        return self._device

    @property
    def load_count(self) -> int:
        return self._cache.load_count

    # -- lifecycle -------------------------------------------------------------------------------
    def validate(self, request: GenerationRequest) -> Preset:
        """All checks that need no model: raises `InvalidTaskParams` naming the field."""
        asked = self.presets.resolve(self.requested_model(request.model))
        preset = self.preset(request.model)
        # An override swaps weights, not validation: the asked model's limits hold as well.
        validate_request(
            request,
            max_pixels=min(preset.max_pixels, asked.max_pixels),
            max_frames=min(preset.max_frames, asked.max_frames),
        )
        get_family(preset.family).check(request, asked)
        self.memory_profile(preset)  # an unknown profile name fails here, before any work
        planning.check_schedule(request, preset, self.lora_specs(request, preset))
        return preset

    def lora_specs(self, request: GenerationRequest, preset: Preset) -> list[LoraSpec]:
        """Preset LoRAs, then the task's, then its phase_config's; a later entry for the same
        source replaces an earlier one (a task can re-weight or zero a preset LoRA)."""
        specs = [LoraSpec(item.source, item.multiplier) for item in preset.loras]
        specs += list(request.loras)
        if request.phases is not None:
            specs += [LoraSpec(item.source, item.multiplier) for item in request.phases.loras]
        by_source = {normalise_source(spec.source): spec for spec in specs}
        return list(by_source.values())

    def fetch_loras(
        self, request: GenerationRequest, *, fetch: FetchFn | None = None
    ) -> list[tuple[LoraSpec, Path]]:
        """Local files of every LoRA the request needs (URLs downloaded once into the cache)."""
        preset = self.preset(request.model)
        cfg = self.config
        return [
            (spec, resolve_lora_file(spec.source, cfg.lora_cache_dir, fetch=fetch,
                                     max_mb=cfg.lora_max_mb, timeout_s=cfg.lora_timeout_s))
            for spec in self.lora_specs(request, preset)
        ]  # fmt: skip

    def prepare(
        self,
        request: GenerationRequest,
        *,
        fetch: FetchFn | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Prepared:
        """Validate, fetch LoRAs and make the request's pipeline resident (reused when warm)."""
        preset = self.validate(request)
        loras = tuple(self.fetch_loras(request, fetch=fetch))
        profile = self.memory_profile(preset)
        spec = pipeline_spec(
            preset,
            device=self.device,
            memory_profile=profile.name,
            attention_backend=self.config.attention_backend,
            local_files_only=self.config.local_files_only,
            compile=self.config.compile,
        )
        cold = self._cache.key != spec  # report loading only when there is something to load
        if cold:
            _report(on_progress, "loading_model", 0, 1)

        def load() -> LoadedPipeline:
            loaded = load_pipeline(
                spec, profile, lambda loaded: self._wanted(loaded, request, preset, loras),
                max_loaded=self.config.max_loaded_loras,
                compile_cache_dir=self.config.compile_cache_dir,
            )  # fmt: skip
            if spec.compile:
                # Compile now, at load, in the first task's adapter state (video_call.warm_up).
                task = planning.plan_task(loaded, request, preset, loras)
                self._activate_adapters(loaded, task)
                loaded.warmup_s = warm_up(loaded, request, preset, task)
            return loaded

        try:
            hit = self._cache.get(spec, load)
        except Exception as exc:
            raise _translated(exc, request, profile.name) from exc
        if cold:
            _report(on_progress, "loading_model", 1, 1)
        return Prepared(preset, profile, hit.value, loras, hit.load_s, hit.reused)

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressFn | None = None,
        cancel_check: CancelCheck | None = None,
        fetch: FetchFn | None = None,
    ) -> GenerationResult:
        started = time.perf_counter()
        check_cancelled(cancel_check)
        prepared = self.prepare(request, fetch=fetch, on_progress=on_progress)
        check_cancelled(cancel_check)
        loaded = prepared.loaded
        try:
            task = planning.plan_task(loaded, request, prepared.preset, prepared.loras)
            apply_step = self._activate_adapters(loaded, task)
            callback = StepCallback(
                task.plan, loaded.adapters, on_progress=on_progress, cancel_check=cancel_check,
                min_interval_s=self.config.progress_interval_s, apply_step=apply_step,
            )  # fmt: skip
            frames, call_s, peak_mb = _run_pipeline(loaded, request, prepared.preset, task, callback)
        except Exception as exc:
            _cleanup_after_failure(loaded)
            translated = _translated(exc, request, prepared.profile.name)
            if translated is exc:
                raise
            raise translated from exc
        denoise_s = sum(callback.step_durations_s)
        metrics = {
            "load_s": prepared.load_s,
            "model_reused": float(prepared.reused),
            "denoise_s": denoise_s,
            "step_mean_s": denoise_s / max(len(callback.step_durations_s), 1),
            "decode_s": max(call_s - denoise_s, 0.0),
            "generate_s": time.perf_counter() - started,
        }
        if peak_mb is not None:
            metrics["peak_vram_mb"] = peak_mb
        settings = planning.effective_settings(request, prepared, task, self.device)
        return GenerationResult(frames=frames, settings=settings, metrics=metrics)

    # -- images (image families: engine/imaging.py) -------------------------------------------
    def validate_image(self, request: ImageRequest) -> Preset:
        """All checks of an image request that need no model (raises `InvalidTaskParams`)."""
        asked = self.presets.resolve(self.requested_model(request.model))
        preset = self.preset(request.model)
        family = get_family(preset.family)
        if not hasattr(family, "image_call"):
            raise InvalidTaskParams(
                f"model: {asked.name} is a {asked.family} video model, not an image model"
            )
        limit, loras_ok = min(preset.max_pixels, asked.max_pixels), getattr(family, "supports_loras", False)
        validate_image_request(request, max_pixels=limit, loras_supported=loras_ok)
        family.check_image(request, asked)
        self.memory_profile(preset)
        return preset

    def prepare_image(
        self, request: ImageRequest, *, on_progress: ProgressFn | None = None, fetch: FetchFn | None = None
    ) -> Prepared:
        """Validate, fetch LoRAs and make the image model resident; the cache is the video models'
        own, so loading it releases a resident video pipeline (and the other way round)."""
        preset = self.validate_image(request)
        loras = imaging.lora_files(preset, request, self.config, fetch)
        profile = self.memory_profile(preset)
        spec = pipeline_spec(
            preset, device=self.device, memory_profile=profile.name,
            attention_backend=self.config.attention_backend, local_files_only=self.config.local_files_only,
        )  # fmt: skip
        cold = self._cache.key != spec
        if cold:
            _report(on_progress, "loading_model", 0, 1)

        def load() -> LoadedPipeline:
            return load_pipeline(spec, profile, lambda _: [], max_loaded=self.config.max_loaded_loras)

        try:
            hit = self._cache.get(spec, load)
        except Exception as exc:
            translated = imaging.translated_error(exc, request, profile.name)
            if translated is exc:
                raise
            raise translated from exc
        if cold:
            _report(on_progress, "loading_model", 1, 1)
        return Prepared(preset, profile, hit.value, loras, hit.load_s, hit.reused)

    def generate_image(
        self,
        request: ImageRequest,
        *,
        on_progress: ProgressFn | None = None,
        cancel_check: CancelCheck | None = None,
        fetch: FetchFn | None = None,
    ) -> GenerationResult:
        """One image; `frames` holds it as (1, height, width, 3) uint8."""
        started = time.perf_counter()
        prepared = self.prepare_image(request, on_progress=on_progress, fetch=fetch)
        loaded = prepared.loaded
        try:
            imaging.activate_loras(loaded, prepared.loras, max_loaded=self.config.max_loaded_loras)
            image, settings = imaging.run_image(
                loaded, get_family(prepared.preset.family), request, prepared.preset,
                on_progress=on_progress, cancel_check=cancel_check, loras=prepared.loras,
            )  # fmt: skip
        except Exception as exc:
            _cleanup_after_failure(loaded)
            translated = imaging.translated_error(exc, request, prepared.profile.name)
            if translated is exc:
                raise
            raise translated from exc
        metrics = imaging.image_metrics(prepared.load_s, prepared.reused, settings.pop("call_s"), started)
        return GenerationResult(frames=image[None], settings=settings, metrics=metrics)

    def close(self) -> None:
        """Release the resident pipeline and its memory."""
        self._cache.clear()

    def fitness(self, model: str | None = None) -> FitnessReport:
        """Device, free VRAM and whether the preset (default: `model_override` or the `vace`
        default) fits with its memory profile. Imports torch; call once at worker start."""
        preset = self.preset(model, task_type="vace")
        profile = self.memory_profile(preset)
        return device_fitness(
            self.device, preset=preset.name, profile=profile.name, needed_gb=preset.vram_gb.get(profile.name)
        )

    # -- internals -------------------------------------------------------------------------------
    def _wanted(
        self, loaded: LoadedPipeline, request: GenerationRequest, preset: Preset, loras: Sequence[Any]
    ) -> Any:
        return planning.plan_task(loaded, request, preset, loras).wanted

    def _activate_adapters(self, loaded: LoadedPipeline, task: planning.TaskPlan) -> StepWeights | None:
        """Load the task's adapters; on a compiled pipeline also fuse/activate them for the
        graph (engine/lora_fusion.py) and return its per-step weight setter (None: eager)."""
        pipe = loaded.pipe

        def sync(wanted: Sequence[Any]) -> None:
            sync_adapters(
                pipe, loaded.adapters, wanted,
                editing=lambda: adapter_editing(pipe, loaded.profile, loaded.compute_dtype),
                max_loaded=self.config.max_loaded_loras,
            )  # fmt: skip

        if not loaded.spec.compile:
            sync(task.wanted)
            return None
        return prepare_compiled(
            pipe, loaded.fusion, task.plan, task.wanted, can_fuse=can_fuse(loaded.profile), sync=sync
        )


def _report(on_progress: ProgressFn | None, stage: str, step: int, total: int) -> None:
    if on_progress is not None:
        on_progress(stage, step, total)


def _translated(exc: Exception, request: GenerationRequest, profile: str) -> Exception:
    if isinstance(exc, HeadlessWanError):
        return exc
    translated = classify_device_error(
        exc, width=request.width, height=request.height, num_frames=request.num_frames, profile=profile
    )
    return translated or exc


def _cleanup_after_failure(loaded: LoadedPipeline) -> None:
    """The pipeline frees offload hooks only on its normal path; after a raise we do it."""
    if loaded.profile.offloads:
        try:
            loaded.pipe.maybe_free_model_hooks()
        except Exception:  # cleanup must not hide the original error
            log.warning("maybe_free_model_hooks failed during cleanup", exc_info=True)
    free_device_memory()
