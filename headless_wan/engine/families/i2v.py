"""The `i2v` family: `WanImageToVideoPipeline` (Wan2.2 I2V A14B with two experts, Wan2.1 I2V and
FLF2V): a start image (`image`) and optionally an end image (`last_image`) conditioning the first
and last frames through the latent channels. It has no guide video, mask, reference images or
conditioning scale: a request carrying one is rejected by name before any compute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from headless_wan.engine.families.base import VACE_INPUTS, first_present
from headless_wan.engine.request import fit_frames
from headless_wan.errors import InvalidTaskParams

if TYPE_CHECKING:
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest

MIN_FRAMES = 5
"""With both anchors the pipeline fills num_frames - 2 frames between them: at least one latent step."""


class I2VFamily:
    name = "i2v"
    pipeline_class = "WanImageToVideoPipeline"
    builtins: Mapping[str, bool] = {"tiny-i2v": True, "tiny-i2v-1expert": False}

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        if request.start_image is None:
            raise InvalidTaskParams(
                f"image_start: {preset.name} is an image-to-video model and needs a start image"
            )
        for field, value in (("image_start", request.start_image), ("image_end", request.end_image)):
            if value is not None:
                _check_image(field, value)
        if request.num_frames < MIN_FRAMES:
            raise InvalidTaskParams(
                f"num_frames: an image-to-video model needs at least {MIN_FRAMES} frames "
                f"(got {request.num_frames})"
            )
        field = first_present(request, VACE_INPUTS)
        if field is not None:
            raise InvalidTaskParams(
                f"{field}: {preset.name} is an image-to-video model; {field} is a VACE input "
                "(use image_start / image_end, or a VACE model)"
            )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"image": _fitted(request.start_image, request.width, request.height)}
        if request.end_image is not None:
            kwargs["last_image"] = _fitted(request.end_image, request.width, request.height)
        return kwargs

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        from headless_wan.engine import tiny

        return tiny.build_pipeline(
            seed=0, family="i2v", two_experts=self.builtins[name], boundary_ratio=boundary_ratio or 0.9
        )

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        from diffusers import WanImageToVideoPipeline

        return WanImageToVideoPipeline.from_pretrained(
            weights, vae=vae, dtype=dtype, local_files_only=local_files_only
        )


def _check_image(field: str, value: Any) -> None:
    from PIL import Image

    if isinstance(value, Image.Image):
        return
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3:
        return
    raise InvalidTaskParams(f"{field}: must be a PIL image or a uint8 RGB frame shaped (height, width, 3)")


def _fitted(image: Any, width: int, height: int) -> Any:
    """An anchor as a PIL image of exactly width x height, by the engine's one sizing rule (centre
    crop to the aspect ratio, then Lanczos), so the pipeline never resizes it on its own."""
    frame = np.asarray(image.convert("RGB")) if not isinstance(image, np.ndarray) else image
    return fit_frames(frame[None], width, height, is_mask=False)[0]


I2V_FAMILY = I2VFamily()
