"""The `zimage` family: Z-Image (Turbo) on `ZImagePipeline`, and `ZImageImg2ImgPipeline` over the
same loaded components for image-to-image (one resident model serves both task types).

It is an image family: it takes an `ImageRequest` (`engine/image_request.py`), never a video
`GenerationRequest` (a video task naming a Z-Image model fails by name before any compute).
Image-to-image input is fitted to exactly width x height by the engine's one sizing rule (centre
crop to the aspect ratio, then Lanczos) so the pipeline never resizes it on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from headless_wan.engine.request import fit_frames
from headless_wan.errors import InvalidTaskParams

if TYPE_CHECKING:
    from headless_wan.engine.image_request import ImageRequest
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest

DEFAULT_STRENGTH = 0.6
"""The app's default for z_image_turbo_i2i."""


class ZImageFamily:
    name = "zimage"
    pipeline_class = "ZImagePipeline"
    vae_class = "AutoencoderKL"
    supports_loras = True  # into the transformer, which the img2img view shares
    builtins: Mapping[str, bool] = {"tiny-zimage": False}

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        raise InvalidTaskParams(
            f"model: {preset.name} is an image model (Z-Image); use an image task type such as z_image_turbo"
        )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        raise InvalidTaskParams("model: a Z-Image model cannot generate video")

    def check_image(self, request: ImageRequest, preset: Preset) -> None:
        """Nothing beyond the generic image rules: Z-Image takes a prompt and optionally one image."""

    def image_call(self, pipe: Any, request: ImageRequest, guidance: float) -> tuple[Any, dict[str, Any]]:
        """The pipeline to call for `request` and its conditioning arguments (with the guidance)."""
        if request.image is None:
            return pipe, {"guidance_scale": guidance}
        from diffusers import ZImageImg2ImgPipeline

        img2img = ZImageImg2ImgPipeline(**pipe.components)
        img2img.set_progress_bar_config(disable=True)
        strength = DEFAULT_STRENGTH if request.strength is None else request.strength
        return img2img, {
            "image": fitted_image(request.image, request.width, request.height),
            "strength": strength,
        }

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        from headless_wan.engine import tiny_image

        return tiny_image.build_zimage_pipeline(seed=0)

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        from diffusers import ZImagePipeline

        return ZImagePipeline.from_pretrained(
            weights, vae=vae, dtype=dtype, local_files_only=local_files_only
        )


def fitted_image(image: Any, width: int, height: int) -> Any:
    import numpy as np

    frame = np.asarray(image.convert("RGB"))
    return fit_frames(frame[None], width, height, is_mask=False)[0]


ZIMAGE_FAMILY = ZImageFamily()
