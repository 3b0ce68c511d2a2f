"""What a pipeline family is: the one place the engine differs between model kinds.

A preset names its `family` (`configs/presets.toml`); the engine looks the family up here and
asks it for four things, so adding a model kind means adding one module next to this one and one
line in `families/__init__.py`, never an if/else in the generation path:

- `pipeline_class`: the diffusers class its checkpoints load into (recorded in every sidecar);
- `check(request, preset)`: family-specific request rules, before any compute: inputs the family
  needs, and inputs only another family understands (rejected by name, never silently dropped);
- `call_kwargs(request)`: the request's conditioning inputs as that pipeline's call arguments;
- `build_tiny(name, ...)` / `from_pretrained(...)`: how weights become a pipeline.

Image families (`zimage`, `qwen`, `qwen_edit`, `qwen_edit_plus`) also have `vae_class` (the
diffusers VAE class of their checkpoints), `check_image(request, preset)`, `image_call(pipe,
request, guidance)` (the pipeline view to call and its arguments) for an `ImageRequest`, and
`supports_loras` (LoRAs into their `transformer`); their `check` refuses every video request by
name. The engine tells them apart by `image_call` (`Engine.validate_image`).

Families import torch and diffusers inside their methods only (the engine package stays cheap).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from headless_wan.engine.presets import Preset
    from headless_wan.engine.request import GenerationRequest


VACE_INPUTS = ("video_guide", "video_mask", "image_refs", "conditioning_scale")
ANCHOR_INPUTS = ("image_start", "image_end")


def first_present(request: GenerationRequest, fields: tuple[str, ...]) -> str | None:
    """The first of `fields` (named as the task names them) that `request` carries, else None.

    Families use it to refuse, by name, an input only another family understands.
    """
    carried = {
        "video_guide": request.guide is not None,
        "video_mask": request.mask is not None,
        "image_refs": bool(request.reference_images),
        "conditioning_scale": request.conditioning_scale is not None,
        "image_start": request.start_image is not None,
        "image_end": request.end_image is not None,
    }
    return next((field for field in fields if carried[field]), None)


class Family(Protocol):
    name: str
    pipeline_class: str
    builtins: Mapping[str, bool]
    """Names of the tiny offline models (`builtin:<name>`) → whether they have two experts."""

    def check(self, request: GenerationRequest, preset: Preset) -> None:
        """Raise `InvalidTaskParams` naming the field for an input this family cannot use."""
        ...

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """Conditioning arguments of the pipeline call (everything but prompt, size and schedule)."""
        ...

    def build_tiny(self, name: str, *, boundary_ratio: float | None) -> Any:
        """The tiny random-weight pipeline `builtin:<name>` (float32, CPU)."""
        ...

    def from_pretrained(self, weights: str, *, vae: Any, dtype: Any, local_files_only: bool) -> Any:
        """The pipeline of a hub id or local folder, with `vae` already loaded in float32."""
        ...
