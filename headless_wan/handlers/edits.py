"""The Qwen image edit task types (`engine/families/qwen_edit.py`), as the predecessor ran them.

- `qwen_image_edit`: `image` + prompt → `<task_id>.jpg` (the app asks for jpeg) + sidecar, on the
  model `qwen_edit_model` names (`qwen-edit`, `qwen-edit-2509`, `qwen-edit-2511`).
- `image_inpaint`, `annotated_image_edit`: `image_url` + `mask_url`: the mask's region is painted
  green over the image (`media/images.green_composite`: a mask of another size is stretched to the
  image, then thresholded at grey 128) and the composite is edited, with the predecessor's task LoRA
  (inpainting / annotation) added to the task's own.
- `qwen_image_style`: text-to-image guided by a reference: the reference is the edit model's input,
  the prompt gets the predecessor's prefix ("In the style of this image, ...") and the style /
  subject / scene strengths weight the predecessor's style, subject and scene LoRAs (0 = left out).

Output size: `resolution` if given, else the input image's size (style: 1024x1024); then scaled down,
aspect kept, to 1200 px on the long side (the predecessor's cap) and to the model's pixel budget,
sides floored to multiples of 16. `lightning_lora_strength` (or `_phase_1`) re-weights the model's
Lightning LoRA (a preset LoRA whose file name says Lightning; qwen-image-edit has one).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from headless_wan.domain.edit_params import EditParams, MaskedEditParams, StyleParams
from headless_wan.domain.image_params import ImageTaskParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.engine.image_request import SIZE_MULTIPLE
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.images import TextToImageHandler, fit_pixel_budget
from headless_wan.media import fetch as media_fetch
from headless_wan.media import images as media_images
from headless_wan.media import video_io

EDIT_MAX_SIDE = 1200
_HF = "https://huggingface.co"
INPAINT_LORA = f"{_HF}/ostris/qwen_image_edit_inpainting/resolve/main/qwen_image_edit_inpainting.safetensors"
ANNOTATE_LORA = (
    f"{_HF}/peteromallet/random_junk/resolve/main/in_scene_pure_squares_flipped_450_lr_000006700.safetensors"
)
STYLE_LORA = (
    f"{_HF}/peteromallet/ad_motion_loras/resolve/main/style_transfer_qwen_edit_2_000011250.safetensors"
)
SUBJECT_LORA = f"{_HF}/peteromallet/mystery_models/resolve/main/in_subject_qwen_edit_2_000006750.safetensors"
SCENE_LORA = f"{_HF}/peteromallet/random_junk/resolve/main/in_scene_different_object_000010500.safetensors"


def edit_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """`size` scaled down (never up) to `EDIT_MAX_SIDE` on its long side and into `max_pixels`."""
    width, height = size
    scale = min(1.0, EDIT_MAX_SIDE / max(width, height, 1))
    width, height = max(int(width * scale), 1), max(int(height * scale), 1)
    if width * height > max_pixels:
        width, height = fit_pixel_budget((width, height), max_pixels)
    return width, height


class QwenImageEditHandler(TextToImageHandler):
    """`qwen_image_edit`. Raises InvalidTaskParams (size, model, LoRAs), InputUnavailable, MediaError
    (unreadable or huge image), TaskCancelled, EngineOOM. Safe to re-run."""

    task_type: ClassVar[str] = "qwen_image_edit"
    params_model: ClassVar[type[ImageTaskParams]] = EditParams
    lightning_default: ClassVar[float | None] = 0.85  # the predecessor's, per task type
    task_loras: ClassVar[tuple[str, ...]] = ()

    def _model_name(self, params: Any) -> str | None:
        return params.qwen_edit_model

    def _extra_loras(self, params: Any) -> list[tuple[str, float]]:
        return [(source, 1.0) for source in self.task_loras]

    def run(self, ctx: TaskContext, params: Any) -> TaskResult:
        from PIL import Image

        started = time.perf_counter()
        placeholder = Image.new("RGB", (SIZE_MULTIPLE, SIZE_MULTIPLE))
        self._engine.validate_image(self._request(params, self._asked_size(params), image=placeholder))
        source = self._source_image(ctx, params)
        size = edit_size(params.size() or self._default_size(source), self._pixel_budget(params))
        request = self._request(params, size, image=source)
        self._engine.validate_image(request)
        return self._generate(ctx, params, request, started)

    def _asked_size(self, params: Any) -> tuple[int, int]:
        return edit_size(params.size() or (SIZE_MULTIPLE, SIZE_MULTIPLE), self._pixel_budget(params))

    def _default_size(self, source: Any) -> tuple[int, int]:
        return source.size

    def _source_image(self, ctx: TaskContext, params: Any) -> Any:
        return self._fetch_image(ctx, params.image, "image")

    def _fetch_image(self, ctx: TaskContext, url: str, name: str) -> Any:
        ctx.progress.report("fetching_inputs", 0, 1, name)
        config = self._engine.config
        path = media_fetch.fetch(
            url, ctx.workdir / "inputs", max_mb=config.input_max_mb, timeout_s=config.input_timeout_s,
            allow_local=self._allow_local, filename=f"{name}{_suffix(url)}",
        )  # fmt: skip
        image = video_io.load_image(path, config.input_max_pixels)
        ctx.progress.report("fetching_inputs", 1, 1, name)
        return image


class ImageInpaintHandler(QwenImageEditHandler):
    """`image_inpaint`: the mask's region repainted from the prompt (green composite + inpainting LoRA)."""

    task_type: ClassVar[str] = "image_inpaint"
    params_model: ClassVar[type[ImageTaskParams]] = MaskedEditParams
    lightning_default: ClassVar[float | None] = 0.75
    task_loras: ClassVar[tuple[str, ...]] = (INPAINT_LORA,)

    def _source_image(self, ctx: TaskContext, params: Any) -> Any:
        image = self._fetch_image(ctx, params.image, "image")
        mask = self._fetch_image(ctx, params.mask_url, "mask")
        return media_images.green_composite(image, mask)


class AnnotatedImageEditHandler(ImageInpaintHandler):
    """`annotated_image_edit`: green annotations over the image tell the model where to act."""

    task_type: ClassVar[str] = "annotated_image_edit"
    task_loras: ClassVar[tuple[str, ...]] = (ANNOTATE_LORA,)


class QwenImageStyleHandler(QwenImageEditHandler):
    """`qwen_image_style`: a new image from the prompt in the style / with the subject of a reference."""

    task_type: ClassVar[str] = "qwen_image_style"
    params_model: ClassVar[type[ImageTaskParams]] = StyleParams

    def _model_name(self, params: Any) -> str | None:
        # The app sends model "qwen-image" (the text-to-image name); the predecessor ran the edit model.
        return "qwen-edit"

    def _extra_loras(self, params: Any) -> list[tuple[str, float]]:
        weighted = ((STYLE_LORA, params.style_reference_strength), (SUBJECT_LORA, params.subject_strength),
                    (SCENE_LORA, params.scene_reference_strength))  # fmt: skip
        return [(source, weight) for source, weight in weighted if weight > 0]

    def _prompt(self, params: Any) -> str:
        parts = ["In the style of this image,"] if params.style_reference_strength > 0 else []
        if params.subject_strength > 0 and params.subject_description:
            verb = "make" if parts else "Make"
            where = " in this scene" if params.in_this_scene else ""
            parts.append(f"{verb} an image of this {params.subject_description}{where}:")
        return " ".join([*parts, params.prompt]) if parts else params.prompt

    def _default_size(self, source: Any) -> tuple[int, int]:
        return (1024, 1024)

    def _source_image(self, ctx: TaskContext, params: Any) -> Any:
        if not params.reference:
            raise InvalidTaskParams("style_reference_image: qwen_image_style needs a reference image")
        return self._fetch_image(ctx, params.reference, "reference")


def _suffix(url: str) -> str:
    # Image and mask get distinct names (both URLs may end in "image.png"); the format is read from the header.
    return Path(media_fetch.safe_filename(url, default="input.png")).suffix[:8] or ".png"


EDIT_HANDLERS = (QwenImageEditHandler, ImageInpaintHandler, AnnotatedImageEditHandler, QwenImageStyleHandler)
