"""The `qwen` family: Qwen-Image text-to-image on `QwenImagePipeline` (Qwen2.5-VL text encoder,
`AutoencoderKLQwenImage`, `QwenImageTransformer2DModel`).

An image family (takes an `ImageRequest`). Its CFG is "true" CFG (`true_cfg_scale`, a second pass
with the negative prompt, so only when there is one); the request's `guidance_scale` means that. LoRAs
go into its `transformer`. Text-to-image only: the edit pipelines are `qwen_edit.py`, and a request
with an input image fails by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from headless_wan.errors import InvalidTaskParams

if TYPE_CHECKING:
    from headless_wan.engine.image_request import ImageRequest
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest


class QwenImageFamily:
    name = "qwen"
    pipeline_class = "QwenImagePipeline"
    vae_class = "AutoencoderKLQwenImage"
    supports_loras = True
    builtins: Mapping[str, bool] = {"tiny-qwen-image": False}

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        raise InvalidTaskParams(
            f"model: {preset.name} is an image model (Qwen-Image); use an image task type such as qwen_image"
        )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        raise InvalidTaskParams("model: a Qwen-Image model cannot generate video")

    def check_image(self, request: ImageRequest, preset: Preset) -> None:
        if request.image is not None:
            raise InvalidTaskParams(
                f"image: {preset.name} is a text-to-image model; use qwen_image_edit to edit an image"
            )

    def image_call(self, pipe: Any, request: ImageRequest, guidance: float) -> tuple[Any, dict[str, Any]]:
        # The checkpoints are not guidance-distilled: `guidance_scale` would only warn; CFG is true_cfg_scale.
        return pipe, {"true_cfg_scale": guidance, "guidance_scale": None}

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        from headless_wan.engine import tiny_image

        return tiny_image.build_qwen_image_pipeline(seed=0)

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        from diffusers import QwenImagePipeline

        return QwenImagePipeline.from_pretrained(
            weights, vae=vae, dtype=dtype, local_files_only=local_files_only
        )


QWEN_IMAGE_FAMILY = QwenImageFamily()
