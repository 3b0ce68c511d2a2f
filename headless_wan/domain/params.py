"""Typed params of the generation task types; the only place their wire keys are spelled.

Reigh/WGP payloads name the same thing several ways (`video_length` / `num_frames`, `model` /
`model_name`, `control_net_weight` / `conditioning_scale`, ...); each field lists the names it
accepts, first match wins. Unknown keys are ignored (payloads carry many UI-only fields).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

_RESOLUTION = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")


def _names(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class LoraParam(BaseModel):
    """One LoRA: `{"url"|"path"|"name": ..., "multiplier"|"strength": ...}`."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    source: str = Field(validation_alias=_names("source", "url", "path", "name"), min_length=1)
    multiplier: str = Field("1.0", validation_alias=_names("multiplier", "strength", "weight"))

    @field_validator("multiplier", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> str:
        return str(value)


class GenerationParams(BaseModel):
    """Fields every generation task type shares."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    model: str | None = Field(None, validation_alias=_names("model", "model_name"))
    prompt: str = Field(" ", validation_alias=_names("prompt", "enhanced_prompt", "base_prompt"))
    negative_prompt: str | None = None
    resolution: str | None = Field(None, validation_alias=_names("resolution", "parsed_resolution_wh"))
    width: int | None = Field(None, ge=16)
    height: int | None = Field(None, ge=16)
    seed: int = Field(12345, ge=-1, validation_alias=_names("seed", "seed_to_use"))
    """-1 picks a random seed (recorded in the output's sidecar)."""
    steps: int | None = Field(None, ge=1, le=200, validation_alias=_names("num_inference_steps", "steps"))
    guidance_scale: float | None = Field(None, ge=0, le=30)
    guidance_scale_2: float | None = Field(
        None, ge=0, le=30, validation_alias=_names("guidance2_scale", "guidance_scale_2")
    )
    flow_shift: float | None = Field(None, gt=0, le=100)
    sample_solver: str | None = None
    phase_config: dict[str, Any] | None = None
    loras: tuple[LoraParam, ...] = ()
    additional_loras: dict[str, Any] = Field(default_factory=dict)
    activated_loras: tuple[str, ...] = Field((), validation_alias=_names("activated_loras", "lora_names"))
    loras_multipliers: tuple[str, ...] = Field(
        (), validation_alias=_names("loras_multipliers", "lora_multipliers")
    )

    @field_validator("activated_loras", "loras_multipliers", mode="before")
    @classmethod
    def _split_words(cls, value: Any) -> Any:
        # WGP writes these as one space-separated string ("|" separates accelerator LoRAs).
        if isinstance(value, str):
            return tuple(value.replace("|", " ").split())
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        return value

    @model_validator(mode="after")
    def _check(self) -> GenerationParams:
        self.size()  # resolution must parse
        if len(self.loras_multipliers) > len(self.activated_loras):
            raise ValueError("loras_multipliers: more multipliers than activated_loras")
        return self

    def size(self) -> tuple[int, int]:
        """(width, height) as requested (`resolution` "WxH" wins over width/height)."""
        if self.resolution is not None:
            match = _RESOLUTION.match(self.resolution)
            if not match:
                raise ValueError(f"resolution: expected 'WIDTHxHEIGHT', got {self.resolution!r}")
            return int(match.group(1)), int(match.group(2))
        if self.width is None or self.height is None:
            raise ValueError("resolution: give 'resolution' (e.g. '832x480') or both width and height")
        return self.width, self.height

    def lora_list(self) -> list[tuple[str, str]]:
        """Every LoRA the task names, as (source, multiplier), in payload order."""
        items = [(lora.source, lora.multiplier) for lora in self.loras]
        items += [(source, str(strength)) for source, strength in self.additional_loras.items()]
        for index, source in enumerate(self.activated_loras):
            multiplier = self.loras_multipliers[index] if index < len(self.loras_multipliers) else "1.0"
            items.append((source, multiplier))
        return items


class VaceParams(GenerationParams):
    """`vace` / `generate_video`: a video from a prompt, optionally guided (guide video, mask,
    reference images, given as URLs)."""

    frames: int = Field(81, ge=1, validation_alias=_names("video_length", "num_frames", "frames"))
    video_guide: str | None = Field(
        None, validation_alias=_names("video_guide", "video_guide_url", "guide_video_url")
    )
    video_mask: str | None = Field(
        None, validation_alias=_names("video_mask", "video_mask_url", "mask_video_url")
    )
    image_refs: tuple[str, ...] = Field(
        (),
        validation_alias=_names("image_refs", "image_refs_urls", "reference_images", "reference_image_urls"),
    )
    conditioning_scale: float | None = Field(
        None, ge=0, le=10, validation_alias=_names("conditioning_scale", "control_net_weight")
    )
    """VACE only (None = 1.0); an image-to-video model rejects it."""
    image_start: str | None = Field(None, validation_alias=_names("image_start", "image_start_url"))
    """Image-to-video models: the first frame (URL)."""
    image_end: str | None = Field(None, validation_alias=_names("image_end", "image_end_url"))
    """Image-to-video models: the last frame (URL)."""
    fps: int | None = Field(None, ge=1, le=120, validation_alias=_names("fps", "fps_helpers"))

    @field_validator("image_refs", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _mask_needs_guide(self) -> VaceParams:
        if self.video_mask and not self.video_guide:
            raise ValueError("video_mask: a mask needs a video_guide")
        return self


class ImageParams(GenerationParams):
    """`wan_2_2_t2i` / `image-generation`: one frame, saved as PNG."""
