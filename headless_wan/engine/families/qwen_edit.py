"""The Qwen image edit families: `qwen_edit` (Qwen-Image-Edit on `QwenImageEditPipeline`) and
`qwen_edit_plus` (Qwen-Image-Edit-2509 / -2511 on `QwenImageEditPlusPipeline`).

Image families (they take an `ImageRequest`) that need an input image: the pipeline conditions on
it twice, through the Qwen2.5-VL encoder (with the prompt) and as VAE latents, each resized by the
pipeline itself to its own budget, so the input is passed as it is and only the output size comes
from the request. There is no strength: an edit always runs the whole schedule. CFG is true CFG
(`true_cfg_scale`) as for Qwen-Image. LoRAs load into the transformer (`engine/loras.py`).

The processor is the PIL one (`engine/qwen_processor.py`): torchvision is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from headless_wan.errors import InvalidTaskParams

if TYPE_CHECKING:
    from headless_wan.engine.image_request import ImageRequest
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest


class QwenEditFamily:
    vae_class = "AutoencoderKLQwenImage"
    supports_loras = True

    def __init__(self, name: str, pipeline_class: str, builtin: str, *, plus: bool) -> None:
        self.name = name
        self.pipeline_class = pipeline_class
        self.builtins: Mapping[str, bool] = {builtin: False}
        self._plus = plus

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        raise InvalidTaskParams(
            f"model: {preset.name} is an image edit model (Qwen-Image-Edit); use qwen_image_edit"
        )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        raise InvalidTaskParams("model: a Qwen-Image-Edit model cannot generate video")

    def check_image(self, request: ImageRequest, preset: Preset) -> None:
        if request.image is None:
            raise InvalidTaskParams(f"image: {preset.name} edits an input image and none was given")
        if request.strength is not None:
            raise InvalidTaskParams(
                f"strength: {preset.name} edits always run the whole schedule; strength does not apply"
            )

    def image_call(self, pipe: Any, request: ImageRequest, guidance: float) -> tuple[Any, dict[str, Any]]:
        # guidance_scale is for guidance-distilled checkpoints only (these are not): None, no warning.
        return pipe, {
            "image": request.image.convert("RGB"),
            "true_cfg_scale": guidance,
            "guidance_scale": None,
        }

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        from headless_wan.engine import tiny_image

        return tiny_image.build_qwen_edit_pipeline(seed=0, plus=self._plus)

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        import diffusers

        from headless_wan.engine.qwen_processor import load_processor

        cls = getattr(diffusers, self.pipeline_class)
        processor = load_processor(weights, local_files_only=local_files_only)
        return cls.from_pretrained(
            weights, vae=vae, processor=processor, dtype=dtype, local_files_only=local_files_only
        )


QWEN_EDIT_FAMILY = QwenEditFamily("qwen_edit", "QwenImageEditPipeline", "tiny-qwen-edit", plus=False)
QWEN_EDIT_PLUS_FAMILY = QwenEditFamily(
    "qwen_edit_plus", "QwenImageEditPlusPipeline", "tiny-qwen-edit-plus", plus=True
)
