"""Typed params of the Qwen image edit task types; the only place their wire keys are spelled.

The app's payloads (reigh-app `create-task/resolvers/magicEdit.ts`, `maskedEdit.ts`,
`imageGeneration.ts`): `qwen_image_edit` sends `image` (the source URL), `prompt`, `seed`,
`output_format` ("jpeg" by default), `qwen_edit_model`, `resolution` and `loras` `[{url, strength}]`;
`image_inpaint` / `annotated_image_edit` send `image_url`, `mask_url`, `prompt`, `loras` and maybe
`qwen_edit_model`; `qwen_image_style` (text-to-image with a reference) sends `style_reference_image`,
`subject_reference_image`, `style_reference_strength`, `subject_strength`, `subject_description`,
`in_this_scene`, `scene_reference_strength`, `additional_loras` and `steps`. The predecessor's
`lightning_lora_strength_phase_1` (one pass here: phase 2 does not apply) is read as the Lightning
LoRA's weight. Unknown keys are ignored.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from headless_wan.domain.image_params import ImageTaskParams

EDIT_MODELS = ("qwen-edit", "qwen-edit-2509", "qwen-edit-2511")
"""The names the app sends as `qwen_edit_model` (each an alias in configs/presets.toml)."""


class EditParams(ImageTaskParams):
    """`qwen_image_edit`: an input image edited as the prompt says."""

    image: str = Field(validation_alias=AliasChoices("image", "image_url"), min_length=1)
    qwen_edit_model: str = "qwen-edit"

    @field_validator("qwen_edit_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in EDIT_MODELS:
            raise ValueError(
                f"qwen_edit_model: unknown edit model {value!r} (known: {', '.join(EDIT_MODELS)})"
            )
        return value


class MaskedEditParams(EditParams):
    """`image_inpaint`, `annotated_image_edit`: an image and a mask (white = the region to change)."""

    mask_url: str = Field(min_length=1)


class StyleParams(ImageTaskParams):
    """`qwen_image_style`: text-to-image guided by a style / subject reference image."""

    style_reference_image: str | None = None
    subject_reference_image: str | None = None
    style_reference_strength: float = Field(0.0, ge=0.0, le=2.0)
    subject_strength: float = Field(0.0, ge=0.0, le=2.0)
    scene_reference_strength: float = Field(0.0, ge=0.0, le=2.0)
    subject_description: str = ""
    in_this_scene: bool = False

    @property
    def reference(self) -> str | None:
        """The one image the edit model conditions on (the predecessor's choice: style first)."""
        return self.style_reference_image or self.subject_reference_image
