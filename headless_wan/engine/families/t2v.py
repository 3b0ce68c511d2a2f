"""The `t2v` family: `WanPipeline` (Wan2.2 T2V A14B, two experts): text only. It is what the app's
`optimised-t2i` model runs on (one frame, as `wan_2_2_t2i`), as the predecessor ran it: the T2V A14B
checkpoints with its accelerator LoRAs (`configs/presets.toml`). Any conditioning input (guide video,
mask, reference or anchor images) belongs to another family and is rejected by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from headless_wan.engine.families.base import ANCHOR_INPUTS, VACE_INPUTS, first_present
from headless_wan.errors import InvalidTaskParams

if TYPE_CHECKING:
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest


class T2VFamily:
    name = "t2v"
    pipeline_class = "WanPipeline"
    builtins: Mapping[str, bool] = {"tiny-t2v": True}

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        field = first_present(request, VACE_INPUTS + ANCHOR_INPUTS)
        if field is not None:
            raise InvalidTaskParams(
                f"{field}: {preset.name} is a text-to-video model and takes no {field} "
                "(use a VACE or image-to-video model)"
            )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        return {}

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        from headless_wan.engine import tiny

        return tiny.build_pipeline(
            seed=0, family="t2v", two_experts=True, boundary_ratio=boundary_ratio or 0.875
        )

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        from diffusers import WanPipeline

        return WanPipeline.from_pretrained(weights, vae=vae, dtype=dtype, local_files_only=local_files_only)


T2V_FAMILY = T2VFamily()
