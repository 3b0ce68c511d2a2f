"""ImageRequest: one still image to generate (text-to-image, or image-to-image with `image`).

Image families (`engine/families/zimage.py`) take this typed request instead of the video
`GenerationRequest`; it is validated in full before any model is loaded:

- width and height: multiples of 16 (the VAE's 8x times the transformer's 2x patch), at least 16,
  within the preset's pixel budget;
- `image` (image-to-image): a PIL image; `strength` in (0, 1] says how much of it is re-noised
  (1 = nothing of the input survives; 0 would run no step at all, so it is refused);
- seed, steps and guidance within range;
- `loras`: one plain weight each (no phase grammar: an image has one pass), on a family that loads
  LoRAs (`supports_loras`: Qwen, Qwen edit, Z-Image); elsewhere a LoRA fails by name rather than silently running without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headless_wan.engine.loras import LoraSpec
from headless_wan.engine.request import MAX_GUIDANCE, MAX_SEED, MAX_STEPS, _in_range, _is_int
from headless_wan.errors import InvalidTaskParams

SIZE_MULTIPLE = 16


@dataclass(frozen=True, eq=False)
class ImageRequest:
    """Frozen inputs of one image. `None` for steps / guidance / negative prompt means the
    preset's default; `strength` only with `image` (None = the family's default)."""

    model: str
    prompt: str
    width: int
    height: int
    seed: int = 12345
    negative_prompt: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    image: Any = None
    strength: float | None = None
    loras: tuple[LoraSpec, ...] = ()


def validate_image_request(request: ImageRequest, *, max_pixels: int, loras_supported: bool = False) -> None:
    """Raise `InvalidTaskParams` naming the field for the first broken rule."""
    for field, value in (("width", request.width), ("height", request.height)):
        if not _is_int(value) or value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            raise InvalidTaskParams(
                f"{field}: must be a multiple of {SIZE_MULTIPLE} and at least {SIZE_MULTIPLE} (got {value!r})"
            )
    if request.width * request.height > max_pixels:
        raise InvalidTaskParams(
            f"resolution: {request.width}x{request.height} exceeds this model's limit of {max_pixels} pixels"
        )
    if not isinstance(request.prompt, str):
        raise InvalidTaskParams("prompt: must be a string")
    if not _is_int(request.seed) or not 0 <= request.seed <= MAX_SEED:
        raise InvalidTaskParams(f"seed: must be an integer in [0, 2^63) (got {request.seed!r})")
    if request.steps is not None and (not _is_int(request.steps) or not 1 <= request.steps <= MAX_STEPS):
        raise InvalidTaskParams(f"steps: must be an integer in [1, {MAX_STEPS}] (got {request.steps!r})")
    scale = request.guidance_scale
    if scale is not None and not _in_range(scale, 0.0, MAX_GUIDANCE):
        raise InvalidTaskParams(f"guidance_scale: must be a number in [0, {MAX_GUIDANCE}] (got {scale!r})")
    _check_image_input(request)
    if request.loras and not loras_supported:
        raise InvalidTaskParams(
            f"loras: LoRAs are not supported on this image model ({len(request.loras)} given)"
        )
    for spec in request.loras:
        lora_weight(spec)


def lora_weight(spec: LoraSpec) -> float:
    """The one weight of an image LoRA (raises `InvalidTaskParams` naming the LoRA)."""
    try:
        weight = float(spec.multiplier)
    except (TypeError, ValueError):
        raise InvalidTaskParams(
            f"loras: {spec.source!r} has weight {spec.multiplier!r}; an image LoRA takes one number"
        ) from None
    if not -10.0 <= weight <= 10.0:
        raise InvalidTaskParams(f"loras: {spec.source!r} weight {weight} is outside [-10, 10]")
    return weight


def _check_image_input(request: ImageRequest) -> None:
    from PIL import Image

    if request.image is not None and not isinstance(request.image, Image.Image):
        raise InvalidTaskParams("image: must be a PIL image")
    strength = request.strength
    if strength is None:
        return
    if request.image is None:
        raise InvalidTaskParams("strength: only applies with an input image")
    if not _in_range(strength, 0.0, 1.0) or strength == 0:
        raise InvalidTaskParams(f"strength: must be a number in (0, 1] (got {strength!r})")
