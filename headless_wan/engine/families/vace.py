"""The `vace` family: `WanVACEPipeline` (Wan2.1 VACE, Wan2.2 VACE-Fun): prompt plus an optional
guide video, mask and reference images; anchor images reach it painted into the guide."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from headless_wan.engine.families.base import ANCHOR_INPUTS, first_present
from headless_wan.engine.request import fit_frames
from headless_wan.errors import InvalidTaskParams

if TYPE_CHECKING:
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest

DEFAULT_CONDITIONING_SCALE = 1.0


class VaceFamily:
    name = "vace"
    pipeline_class = "WanVACEPipeline"
    builtins: Mapping[str, bool] = {"tiny": False, "tiny-2experts": True}

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        field = first_present(request, ANCHOR_INPUTS)
        if field is not None:
            raise InvalidTaskParams(
                f"{field}: {preset.name} is a VACE model; it takes anchor images painted into "
                "video_guide (with a black video_mask on those frames), not as image_start/image_end"
            )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """Guide and mask as PIL lists of exactly H x W (the only input form the pipeline handles
        without crashing or rescaling, engine.md §4); references as PIL."""
        scale = request.conditioning_scale
        kwargs: dict[str, Any] = {
            "conditioning_scale": DEFAULT_CONDITIONING_SCALE if scale is None else scale
        }
        if request.guide is not None:
            kwargs["video"] = fit_frames(request.guide, request.width, request.height, is_mask=False)
        if request.mask is not None:
            kwargs["mask"] = fit_frames(request.mask, request.width, request.height, is_mask=True)
        if request.reference_images:
            kwargs["reference_images"] = [image.convert("RGB") for image in request.reference_images]
        return kwargs

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        from headless_wan.engine import tiny

        return tiny.build_pipeline(
            seed=0, two_experts=self.builtins[name], boundary_ratio=boundary_ratio or 0.875
        )

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        from diffusers import WanVACEPipeline

        return WanVACEPipeline.from_pretrained(
            weights, vae=vae, dtype=dtype, local_files_only=local_files_only
        )


VACE_FAMILY = VaceFamily()
