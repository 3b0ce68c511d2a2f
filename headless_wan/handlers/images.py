"""Image task types on the image families (`engine/families/zimage.py`, `qwen.py`); the Qwen edit
task types subclass these in `handlers/edits.py` (hooks: `_model_name`, `_loras`, `_prompt`).

- `z_image_turbo`: prompt → `<task_id>.png` (or `.jpg` with `output_format: "jpeg"`) + sidecar.
- `z_image_turbo_i2i`: input image (`image` / `image_url`) + prompt + `strength` → the same.
- `qwen_image`, `qwen_image_2512`: Qwen-Image text-to-image → the same.

Sizes: text-to-image takes `resolution` "WxH" (default 1024x1024), scaled down to the model's pixel
budget when larger (aspect kept, as the predecessor capped them), floored to multiples of 16. Image-to-image keeps the
input's aspect ratio at the model's pixel budget (`max_pixels` of the preset: about 1 MP for
Z-Image Turbo), each side floored to a multiple of 16; an explicit `resolution` wins. The input is
refused past `input_max_pixels` from its header, before decoding. Everything that needs no model
(size, strength, model name, LoRA weights) is checked before the input is downloaded. LoRAs:
`loras` `[{path|url, strength|scale}]` and `additional_loras` `{source: weight}`; `lightning_lora_strength` (or `_phase_1`) re-weights the model's
Lightning LoRA (a preset LoRA whose file name says Lightning) and is ignored, with a log line, on a model
without one.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any, ClassVar

from headless_wan.domain.image_params import ImageTaskParams, ImageToImageParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.engine import Engine, LoraSpec
from headless_wan.engine.image_request import SIZE_MULTIPLE, ImageRequest
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.base import Handler, TaskContext
from headless_wan.handlers.sidecar import write_sidecar
from headless_wan.media import fetch as media_fetch
from headless_wan.media import video_io

DEFAULT_RESOLUTION = (1024, 1024)
_log = logging.getLogger(__name__)


class TextToImageHandler:
    """`z_image_turbo`. Raises InvalidTaskParams (size, model, strength, LoRAs), InputUnavailable
    (downloads), TaskCancelled, EngineOOM, MediaError. Safe to re-run (deterministic file names)."""

    task_type: ClassVar[str] = "z_image_turbo"
    params_model: ClassVar[type[ImageTaskParams]] = ImageTaskParams

    def __init__(self, engine: Engine, *, allow_local_inputs: bool | None = None) -> None:
        self._engine = engine
        config = engine.config
        self._allow_local = config.allow_local_inputs if allow_local_inputs is None else allow_local_inputs

    def run(self, ctx: TaskContext, params: ImageTaskParams) -> TaskResult:
        started = time.perf_counter()
        size = params.size() or DEFAULT_RESOLUTION
        budget = self._pixel_budget(params)
        if size[0] * size[1] > budget:  # as the predecessor did: scale down to the model's cap, aspect kept
            size = fit_pixel_budget(size, budget)
        request = self._request(params, size)
        self._engine.validate_image(request)
        return self._generate(ctx, params, request, started)

    def _model_name(self, params: ImageTaskParams) -> str | None:
        """The model the task asks for (edit task types read `qwen_edit_model` instead)."""
        return params.model

    lightning_default: ClassVar[float | None] = None
    """This task type's weight for the model's Lightning LoRA; None keeps the preset's multiplier."""

    def _loras(self, params: ImageTaskParams) -> tuple[LoraSpec, ...]:
        own = [*self._lightning(params), *self._extra_loras(params)]
        pairs = [*own, *params.lora_weights()]  # the task's own entries win (same source re-weights)
        return tuple(LoraSpec(source, str(weight)) for source, weight in pairs)

    def _lightning(self, params: ImageTaskParams) -> list[tuple[str, float]]:
        """The model's Lightning LoRA (a preset LoRA whose file name says Lightning) re-weighted by
        `lightning_lora_strength` or this task type's default; nothing when neither applies."""
        preset = self._engine.preset(self._model_name(params), task_type=self.task_type)
        sources = [lora.source for lora in preset.loras if "lightning" in lora.source.lower()]
        if params.lightning_lora_strength is not None and not sources:
            # The app sends its hires-fix strengths whatever the model (Z-Image, the Edit Plus releases):
            # refusing would fail tasks the predecessor ran.
            _log.info(
                "ignoring lightning_lora_strength: %s runs without a Lightning LoRA", preset.name,
                extra={"action": "unsupported_fields"},
            )  # fmt: skip
        asked = params.lightning_lora_strength
        weight = self.lightning_default if asked is None else asked
        return [] if weight is None else [(source, weight) for source in sources]

    def _extra_loras(self, params: ImageTaskParams) -> list[tuple[str, float]]:
        """LoRAs this task type always adds (the edit types' task LoRAs)."""
        return []

    def _prompt(self, params: ImageTaskParams) -> str:
        return params.prompt

    def _request(self, params: ImageTaskParams, size: tuple[int, int], **extra: Any) -> ImageRequest:
        width, height = (max(value // SIZE_MULTIPLE * SIZE_MULTIPLE, SIZE_MULTIPLE) for value in size)
        seed = params.seed if params.seed >= 0 else random.SystemRandom().randrange(2**31)
        return ImageRequest(
            model=self._engine.requested_model(self._model_name(params), task_type=self.task_type),
            prompt=self._prompt(params),
            negative_prompt=params.negative_prompt,
            width=width,
            height=height,
            seed=seed,
            steps=params.steps,
            guidance_scale=params.guidance_scale,
            loras=self._loras(params),
            **extra,
        )

    def _pixel_budget(self, params: ImageTaskParams) -> int:
        model = self._engine.requested_model(self._model_name(params), task_type=self.task_type)
        return min(self._engine.preset(model).max_pixels, self._engine.presets.resolve(model).max_pixels)

    def _generate(
        self, ctx: TaskContext, params: ImageTaskParams, request: ImageRequest, started: float
    ) -> TaskResult:
        ctx.cancel.check()
        fetch = media_fetch.fetch  # LoRA URLs (local LoRA paths are read by the engine)
        self._engine.prepare_image(request, on_progress=ctx.progress.report, fetch=fetch)
        ctx.mark_started(self._model_name(params) or request.model)  # billing starts after the load
        ctx.cancel.check()
        result = self._engine.generate_image(
            request, on_progress=ctx.progress.report, cancel_check=ctx.cancel.check, fetch=fetch
        )
        ctx.cancel.check()
        ctx.progress.report("encoding", 0, 1)
        stem = media_fetch.safe_filename(ctx.task.id, default="task")
        output = video_io.save_image(result.frames[0], ctx.workdir / f"{stem}{params.suffix}")
        ctx.progress.report("encoding", 1, 1)
        metrics = {**result.metrics, "task_s": time.perf_counter() - started}
        write_sidecar(ctx, output, result, task_model=request.model, extra={"timings": metrics})
        return TaskResult(output=output, metrics=metrics)


class ImageToImageHandler(TextToImageHandler):
    """`z_image_turbo_i2i`: same errors as `TextToImageHandler`, plus unreadable or huge inputs."""

    task_type: ClassVar[str] = "z_image_turbo_i2i"
    params_model: ClassVar[type[ImageTaskParams]] = ImageToImageParams

    def run(self, ctx: TaskContext, params: ImageToImageParams) -> TaskResult:  # type: ignore[override]
        from PIL import Image

        started = time.perf_counter()
        placeholder = Image.new("RGB", (SIZE_MULTIPLE, SIZE_MULTIPLE))
        size = params.size() or (SIZE_MULTIPLE, SIZE_MULTIPLE)
        self._engine.validate_image(self._request(params, size, image=placeholder, strength=params.strength))
        ctx.progress.report("fetching_inputs", 0, 1)
        config = self._engine.config
        path = media_fetch.fetch(
            params.image, ctx.workdir / "inputs", max_mb=config.input_max_mb,
            timeout_s=config.input_timeout_s, allow_local=self._allow_local,
        )  # fmt: skip
        image = video_io.load_image(path, config.input_max_pixels)
        ctx.progress.report("fetching_inputs", 1, 1)
        size = params.size() or fit_pixel_budget(image.size, self._pixel_budget(params))
        request = self._request(params, size, image=image, strength=params.strength)
        self._engine.validate_image(request)
        return self._generate(ctx, params, request, started)


class QwenImageHandler(TextToImageHandler):
    """`qwen_image`: Qwen-Image text-to-image (same inputs and errors as `z_image_turbo`)."""

    task_type: ClassVar[str] = "qwen_image"


class QwenImage2512Handler(TextToImageHandler):
    task_type: ClassVar[str] = "qwen_image_2512"


def fit_pixel_budget(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """`size`'s aspect ratio scaled (up or down) to at most `max_pixels`, sides multiples of 16."""
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidTaskParams(f"image: has no pixels ({width}x{height})")
    scale = math.sqrt(max_pixels / (width * height))
    out_w, out_h = (
        max(int(v * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE, SIZE_MULTIPLE) for v in (width, height)
    )
    # A very thin input has its short side raised to one block; shrink the long side to stay in budget.
    longest = max_pixels // SIZE_MULTIPLE // SIZE_MULTIPLE * SIZE_MULTIPLE
    if out_w * out_h > max_pixels:
        out_w, out_h = (longest, SIZE_MULTIPLE) if out_w > out_h else (SIZE_MULTIPLE, longest)
    return out_w, out_h


def image_handlers(engine: Engine, *, allow_local_inputs: bool | None = None) -> list[Handler]:
    """The image task types, sharing `engine` (and so the one warm pipeline) with the video ones."""
    from headless_wan.handlers.edits import EDIT_HANDLERS

    classes = (
        TextToImageHandler,
        ImageToImageHandler,
        QwenImageHandler,
        QwenImage2512Handler,
        *EDIT_HANDLERS,
    )
    return [cls(engine, allow_local_inputs=allow_local_inputs) for cls in classes]
