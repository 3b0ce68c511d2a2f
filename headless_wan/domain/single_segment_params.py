"""Wire model of `individual_travel_segment`: the app's "regenerate this one segment" task (travel.md §8.1;
the app's `individualTravelSegment` resolver). The other travel payloads are in `travel_params.py`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from headless_wan.domain.travel_params import DEFAULT_FPS, lora_pairs


class IndividualSegmentOverrides(BaseModel):
    """`individual_segment_params`: what the user set for this one segment; wins over the top level."""

    model_config = ConfigDict(extra="allow")

    input_image_paths_resolved: list[str] | None = None
    start_image_url: str | None = None
    end_image_url: str | None = None
    base_prompt: str | None = None
    enhanced_prompt: str | None = None
    negative_prompt: str | None = None
    num_frames: int | None = Field(None, ge=1)
    seed_to_use: int | None = None
    additional_loras: dict[str, float] | None = None
    phase_config: dict[str, Any] | None = None


class IndividualTravelSegmentParams(BaseModel):
    """`individual_travel_segment`: regenerate one pair as its own task (travel.md §8.1; the app's
    `individualTravelSegment` resolver). No orchestrator links; `child_generation_id` is read by the
    backend (the result becomes a variant of that generation)."""

    model_config = ConfigDict(extra="allow")

    model_name: str | None = None
    model_type: str | None = None
    base_prompt: str = ""
    enhanced_prompt: str | None = None
    negative_prompt: str = ""
    num_frames: int = Field(49, ge=1)
    parsed_resolution_wh: str
    seed_to_use: int = 789
    fps_helpers: int = Field(DEFAULT_FPS, gt=0)
    flow_shift: float | None = Field(None, gt=0, le=100)
    sample_solver: str | None = None
    phase_config: dict[str, Any] | None = None
    additional_loras: dict[str, float] = Field(default_factory=dict)
    lora_names: list[str] = Field(default_factory=list)
    lora_multipliers: list[Any] = Field(default_factory=list)
    input_image_paths_resolved: list[str] = Field(default_factory=list)
    segment_index: int = 0
    parent_generation_id: str | None = None
    child_generation_id: str | None = None
    structure_guidance: dict[str, Any] | None = None
    use_svi: bool = False
    individual_segment_params: IndividualSegmentOverrides = Field(default_factory=IndividualSegmentOverrides)
    orchestrator_details: dict[str, Any] = Field(default_factory=dict)

    def images(self) -> list[str]:
        """[start, end] (or [start]): the overrides' list, else their URLs, else the top level's."""
        own = self.individual_segment_params
        if own.input_image_paths_resolved:
            return list(own.input_image_paths_resolved)
        if own.start_image_url:
            return [own.start_image_url, *([own.end_image_url] if own.end_image_url else [])]
        return list(self.input_image_paths_resolved)

    def model(self) -> str | None:
        return self.model_name or self.orchestrator_details.get("model_name")

    def prompt(self) -> str:
        own = self.individual_segment_params
        for text in (own.enhanced_prompt, own.base_prompt, self.enhanced_prompt, self.base_prompt):
            if text and text.strip():
                return text.strip()
        return ""

    def negative(self) -> str:
        own = self.individual_segment_params.negative_prompt
        return (own if own is not None else self.negative_prompt).strip()

    def frames(self) -> int:
        return self.individual_segment_params.num_frames or self.num_frames

    def seed(self) -> int:
        own = self.individual_segment_params.seed_to_use
        return self.seed_to_use if own is None else own

    def phases(self) -> dict[str, Any] | None:
        """individual_segment_params.phase_config > phase_config > the inherited details' (engine.md §12.1)."""
        own = self.individual_segment_params.phase_config
        return own or self.phase_config or self.orchestrator_details.get("phase_config") or None

    def loras(self) -> list[tuple[str, str]]:
        own = self.individual_segment_params.additional_loras
        additional = own if own is not None else self.additional_loras
        return lora_pairs(additional, self.lora_names, self.lora_multipliers)
