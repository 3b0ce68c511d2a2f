"""Plain generation task types on top of the engine.

- `vace`, `generate_video`: prompt (+ optional guide video, mask and reference images by URL for a
  VACE model, or `image_start` / `image_end` for an image-to-video model) → `<task_id>.mp4`, a
  first-frame `<task_id>_thumb.jpg` and a `<task_id>.settings.json` sidecar (`handlers/sidecar.py`).
- `wan_2_2_t2i`, `image-generation`: the same engine with one frame → `<task_id>.png` + sidecar.

Input rules: `resolution` is floored to multiples of 16 (as WGP does); the frame count is never
rounded (a non-4n+1 count fails). Guide and mask are decoded at their own size; the engine crops
and resizes them to the target with its one rule. Mask videos are lossy, so their pixels are
binarised here (≥ 128 → 255 generate, else 0 keep) before the engine's strict 0/255 check.

Re-running is safe: outputs have deterministic names in the task's workdir and are overwritten.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from headless_wan.domain.params import GenerationParams, ImageParams, VaceParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.engine import Engine, GenerationRequest, LoraSpec, parse_phase_config
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.base import Handler, TaskContext
from headless_wan.handlers.sidecar import write_sidecar
from headless_wan.media import fetch as media_fetch
from headless_wan.media import video_io


class _GenerationHandler:
    """Shared steps: build the request, fetch inputs, load (then `mark_started`), generate."""

    task_type: ClassVar[str]
    params_model: ClassVar[type[GenerationParams]]

    def __init__(self, engine: Engine, *, allow_local_inputs: bool | None = None) -> None:
        self._engine = engine
        config = engine.config
        self._allow_local = config.allow_local_inputs if allow_local_inputs is None else allow_local_inputs
        self._max_mb = config.input_max_mb
        self._timeout_s = config.input_timeout_s

    def _request(
        self, ctx: TaskContext, params: GenerationParams, num_frames: int, **extra: Any
    ) -> GenerationRequest:
        model = self._engine.requested_model(params.model, task_type=self.task_type)
        width, height = (value // 16 * 16 for value in params.size())
        seed = params.seed if params.seed >= 0 else random.SystemRandom().randrange(2**31)
        loras = []
        for source, multiplier in params.lora_list():
            if not self._allow_local and not source.startswith(("http://", "https://")):
                raise InvalidTaskParams(f"loras: {source!r} is not an http(s) URL")
            loras.append(LoraSpec(source, multiplier))
        return GenerationRequest(
            model=model,
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            width=width,
            height=height,
            num_frames=num_frames,
            seed=seed,
            steps=params.steps,
            guidance_scale=params.guidance_scale,
            guidance_scale_2=params.guidance_scale_2,
            flow_shift=params.flow_shift,
            solver=params.sample_solver,
            phases=parse_phase_config(params.phase_config) if params.phase_config is not None else None,
            loras=tuple(loras),
            **extra,
        )

    def _fetch(self, source: str, dest_dir: Path) -> Path:
        return media_fetch.fetch(
            source, dest_dir, max_mb=self._max_mb, timeout_s=self._timeout_s, allow_local=self._allow_local
        )

    def _generate(self, ctx: TaskContext, request: GenerationRequest, task_model: str | None) -> Any:
        self._engine.fetch_loras(request, fetch=media_fetch.fetch)  # before billing starts
        ctx.progress.report("fetching_inputs", 1, 1)
        ctx.cancel.check()
        self._engine.prepare(request, fetch=media_fetch.fetch, on_progress=ctx.progress.report)
        # The queue records the model the task asked for, verbatim (Reigh's current_model).
        ctx.mark_started(task_model or request.model)
        ctx.cancel.check()
        result = self._engine.generate(
            request, on_progress=ctx.progress.report, cancel_check=ctx.cancel.check, fetch=media_fetch.fetch
        )
        ctx.cancel.check()
        return result


class VaceHandler(_GenerationHandler):
    """`vace`: prompt (+ guide / mask / reference images) → mp4 + JPEG thumbnail + sidecar.

    Raises InvalidTaskParams (bad sizes, frames, model, inputs), InputUnavailable / TransientError
    (downloads), TaskCancelled, EngineOOM, WorkerFatal, MediaError. Safe to re-run."""

    task_type: ClassVar[str] = "vace"
    params_model: ClassVar[type[GenerationParams]] = VaceParams

    def run(self, ctx: TaskContext, params: VaceParams) -> TaskResult:
        started = time.perf_counter()
        self._check_before_downloads(ctx, params)
        ctx.progress.report("fetching_inputs", 0, 1)
        guide, mask, refs = self._inputs(ctx, params)
        start, end = self._anchors(ctx, params)
        request = self._request(
            ctx, params, params.frames, conditioning_scale=params.conditioning_scale,
            guide=guide, mask=mask, reference_images=refs, start_image=start, end_image=end,
        )  # fmt: skip
        result = self._generate(ctx, request, params.model)
        fps = params.fps or self._engine.preset(request.model).fps
        ctx.progress.report("encoding", 0, 1)
        encode_started = time.perf_counter()
        output = ctx.workdir / f"{_stem(ctx)}.mp4"
        video_io.encode_video(result.frames, output, fps)
        thumbnail = video_io.write_thumbnail(output, ctx.workdir / f"{_stem(ctx)}_thumb.jpg")
        encode_s = time.perf_counter() - encode_started
        ctx.progress.report("encoding", 1, 1)
        metrics = {**result.metrics, "encode_s": encode_s, "task_s": time.perf_counter() - started}
        write_sidecar(ctx, output, result, task_model=request.model, extra={"fps": fps, "timings": metrics})
        return TaskResult(output=output, thumbnail=thumbnail, metrics=metrics)

    def _check_before_downloads(self, ctx: TaskContext, params: VaceParams) -> None:
        """Size, frames, model, schedule and family inputs: fail before any download. Inputs stand
        in as placeholders of the right kind (their content is checked once fetched)."""
        from PIL import Image

        placeholder = Image.new("RGB", (16, 16))
        bare = self._request(
            ctx, params, params.frames, conditioning_scale=params.conditioning_scale,
            reference_images=tuple(placeholder for _ in params.image_refs),
            start_image=placeholder if params.image_start else None,
            end_image=placeholder if params.image_end else None,
        )  # fmt: skip
        self._engine.validate(bare)
        if (params.video_guide or params.video_mask) and self._engine.family(bare.model) != "vace":
            field = "video_guide" if params.video_guide else "video_mask"
            raise InvalidTaskParams(f"{field}: {bare.model} is not a VACE model; {field} is a VACE input")

    def _anchors(self, ctx: TaskContext, params: VaceParams) -> tuple[Any, Any]:
        inputs_dir = ctx.workdir / "inputs"
        max_pixels = self._engine.config.input_max_pixels
        images = []
        for source in (params.image_start, params.image_end):
            images.append(
                video_io.load_image(self._fetch(source, inputs_dir), max_pixels) if source else None
            )
            ctx.cancel.check()
        return images[0], images[1]

    def _inputs(self, ctx: TaskContext, params: VaceParams) -> tuple[Any, Any, tuple[Any, ...]]:
        inputs_dir = ctx.workdir / "inputs"
        guide = mask = None
        if params.video_guide:
            guide = video_io.read_frames(self._fetch(params.video_guide, inputs_dir))
            ctx.cancel.check()
        if params.video_mask:
            mask = binarise_mask(video_io.read_frames(self._fetch(params.video_mask, inputs_dir)))
            ctx.cancel.check()
        max_pixels = self._engine.config.input_max_pixels
        refs = tuple(
            video_io.load_image(self._fetch(url, inputs_dir), max_pixels) for url in params.image_refs
        )
        return guide, mask, refs


class GenerateVideoHandler(VaceHandler):
    task_type: ClassVar[str] = "generate_video"


class ImageHandler(_GenerationHandler):
    """`image-generation`: one frame → PNG + sidecar (no thumbnail: the image is its own).
    Same errors as `VaceHandler`. Safe to re-run."""

    task_type: ClassVar[str] = "image-generation"
    params_model: ClassVar[type[GenerationParams]] = ImageParams

    def run(self, ctx: TaskContext, params: ImageParams) -> TaskResult:
        started = time.perf_counter()
        request = self._request(ctx, params, 1)
        self._engine.validate(request)
        ctx.progress.report("fetching_inputs", 0, 1)
        result = self._generate(ctx, request, params.model)
        ctx.progress.report("encoding", 0, 1)
        output = video_io.save_image(result.frames[0], ctx.workdir / f"{_stem(ctx)}.png")
        ctx.progress.report("encoding", 1, 1)
        metrics = {**result.metrics, "task_s": time.perf_counter() - started}
        write_sidecar(ctx, output, result, task_model=request.model, extra={"timings": metrics})
        return TaskResult(output=output, metrics=metrics)


class WanT2IHandler(ImageHandler):
    task_type: ClassVar[str] = "wan_2_2_t2i"


def binarise_mask(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) decoded mask video → (F, H, W) of exactly 0 (keep) / 255 (generate)."""
    luma = frames.mean(axis=3) if frames.ndim == 4 else frames
    return np.where(luma >= 128, 255, 0).astype(np.uint8)


def _stem(ctx: TaskContext) -> str:
    return media_fetch.safe_filename(ctx.task.id, default="task")


def generation_handlers(engine: Engine, *, allow_local_inputs: bool | None = None) -> list[Handler]:
    """One handler per task type, all sharing `engine` (and so its warm pipeline).

    `allow_local_inputs` (default: the engine config's) lets payloads name local files (guide,
    mask, references, LoRAs): for `run task.json` and tests; never for shared queues."""
    classes = (VaceHandler, GenerateVideoHandler, ImageHandler, WanT2IHandler)
    return [cls(engine, allow_local_inputs=allow_local_inputs) for cls in classes]
