"""Typed params of the image task types (Z-Image, Qwen-Image); the only place their wire keys are spelled.

The app's payloads (reigh-app `create-task/resolvers/imageGeneration.ts`, `zImageTurboI2I.ts`):
text-to-image sends `model` ("z-image"), `prompt`, `resolution` "WxH", `seed`, `steps`,
`negative_prompt`, `additional_loras`; image-to-image sends `image_url`, `prompt`, `strength`,
`num_inference_steps`, `output_format`, `seed` and `loras` `[{path, scale}]`. Unknown keys are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

_RESOLUTION = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")
OUTPUT_FORMATS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg"}


class ImageTaskParams(BaseModel):
    """`z_image_turbo`: one image from a prompt."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    model: str | None = Field(None, validation_alias=AliasChoices("model", "model_name"))
    prompt: str = Field(" ", validation_alias=AliasChoices("prompt", "enhanced_prompt", "base_prompt"))
    negative_prompt: str | None = None
    resolution: str | None = Field(None, validation_alias=AliasChoices("resolution", "image_size"))
    """"WxH"; "auto" (image-to-image) means the input's aspect ratio at the model's pixel budget."""
    seed: int = Field(12345, ge=-1, validation_alias=AliasChoices("seed", "seed_to_use"))
    """-1 picks a random seed (recorded in the output's sidecar)."""
    steps: int | None = Field(None, validation_alias=AliasChoices("num_inference_steps", "steps"))
    guidance_scale: float | None = None
    output_format: str = "png"
    loras: tuple[Any, ...] = ()
    additional_loras: dict[str, Any] = Field(default_factory=dict)
    lightning_lora_strength: float | None = Field(
        None, validation_alias=AliasChoices("lightning_lora_strength", "lightning_lora_strength_phase_1")
    )
    """The model's Lightning LoRA weight (the predecessor's `_phase_1`; one pass here, so `_phase_2` does
    not apply); refused on a model without one."""

    @field_validator("output_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value.lower() not in OUTPUT_FORMATS:
            raise ValueError(f"output_format: {value!r} is not supported ({', '.join(OUTPUT_FORMATS)})")
        return value.lower()

    @field_validator("resolution")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() != "auto" and not _RESOLUTION.match(value):
            raise ValueError(f"resolution: expected 'WIDTHxHEIGHT' or 'auto', got {value!r}")
        return value

    def size(self) -> tuple[int, int] | None:
        """(width, height) as asked, or None for "auto" / not given."""
        match = _RESOLUTION.match(self.resolution or "")
        return (int(match.group(1)), int(match.group(2))) if match else None

    def lora_weights(self) -> list[tuple[str, Any]]:
        """Every LoRA the task names with its weight: `loras` entries `{path|url, scale|strength}`
        (1.0 when absent), then `additional_loras` `{source: weight}`. Weights are checked by the engine."""
        pairs = [(_lora_source(item), _lora_weight(item)) for item in self.loras]
        return [*pairs, *self.additional_loras.items()]

    @property
    def suffix(self) -> str:
        return OUTPUT_FORMATS[self.output_format]


class ImageToImageParams(ImageTaskParams):
    """`z_image_turbo_i2i`: an input image (URL) re-generated from a prompt."""

    image: str = Field(validation_alias=AliasChoices("image", "image_url"), min_length=1)
    strength: float | None = Field(None, validation_alias=AliasChoices("strength", "denoising_strength"))
    """0 < strength <= 1 (checked by the engine, naming the field); None = the family's default."""


def _lora_weight(item: Any) -> Any:
    if isinstance(item, dict):
        for key in ("strength", "scale", "multiplier", "weight"):
            if item.get(key) is not None:
                return item[key]
    return 1.0


def _lora_source(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("path") or item.get("url") or item.get("name") or "")
    return str(item)
