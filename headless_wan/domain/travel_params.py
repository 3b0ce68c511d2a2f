"""Wire models of the travel tasks: `travel_orchestrator`, `travel_segment`, `travel_stitch`, and the
app's turbo mode `wan_2_2_i2v` (the orchestrator's payload); `individual_travel_segment` is in
`single_segment_params.py`.

With that module, the only place travel payload keys are spelled (travel.md §2, §5.1, §6.1;
reigh-contract.md §7).
Unknown keys are kept (`extra="allow"`): the app sends UI fields we must pass through untouched in the
children's `orchestrator_details` copies (the stitch's is whole; a segment's holds the run's scalars).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

DEFAULT_SEED = 12345
DEFAULT_FPS = 16
DEFAULT_SHARP_AMOUNT = 0.3
UPSCALE_SEED_OFFSET = 5000

TRAVEL_ORCHESTRATOR = "travel_orchestrator"
TRAVEL_SEGMENT = "travel_segment"
TRAVEL_STITCH = "travel_stitch"
INDIVIDUAL_TRAVEL_SEGMENT = "individual_travel_segment"
WAN_2_2_I2V = "wan_2_2_i2v"

# Payload fields that would change the output but this worker does not implement. Each one present
# with a value other than its no-op default is logged once per task ("unsupported_fields"); every
# other field is either used or is app metadata (ids, UI state) that does not affect generation.
UNSUPPORTED_FIELDS: Mapping[str, Any] = {
    "cfg_star_switch": 0,  # CFG-Zero* guidance
    "cfg_zero_step": -1,
    "regenerate_anchors": False,
    "upscale_factor": 0.0,  # upscaling after the stitch
    "upscale_model_name": None,
    "steps": None,  # the schedule comes from phase_config, else the model preset
    "num_inference_steps": None,
    "guidance_scale": None,
    "motion_settings_expanded": None,
    "travel_guidance": None,  # structure-video guidance (flow, canny, depth, uni3c, ...)
    "continuation_config": None,  # only the VACE guide overlap strategy is implemented (below)
}
_IMPLEMENTED_CONTINUATION = "guide_overlap_masked"


def unsupported_fields(*payloads: Mapping[str, Any]) -> list[str]:
    """Names of `UNSUPPORTED_FIELDS` that any payload sets to a non-default value (sorted, once)."""
    found = {
        name
        for payload in payloads
        for name, default in UNSUPPORTED_FIELDS.items()
        if name in payload
        and payload[name] not in (default, None, [], {})
        and not _implemented(name, payload)
    }
    return sorted(found)


def _implemented(name: str, payload: Mapping[str, Any]) -> bool:
    """Chained VACE runs continue through the guide's overlap frames: that strategy is implemented."""
    if name != "continuation_config":
        return False
    config = payload[name]
    return isinstance(config, Mapping) and config.get("strategy") == _IMPLEMENTED_CONTINUATION


def lora_pairs(
    additional: Mapping[str, float | str], names: list[str], multipliers: list[Any]
) -> list[tuple[str, str]]:
    """Every LoRA a travel payload names, as (source, multiplier), in payload order; a later entry
    for the same source replaces an earlier one. `lora_multipliers` is either aligned with
    `lora_names` (WGP) or a list of `{"url", "multiplier"}` objects (the app's individual segments)."""
    items = [(str(source), str(strength)) for source, strength in additional.items()]
    for index, name in enumerate(names):
        value = multipliers[index] if index < len(multipliers) else "1.0"
        items.append(
            (name, str(value.get("multiplier", "1.0")) if isinstance(value, Mapping) else str(value))
        )
    for value in multipliers[len(names) :]:
        if isinstance(value, Mapping) and (value.get("url") or value.get("path")):
            items.append((str(value.get("url") or value.get("path")), str(value.get("multiplier", "1.0"))))
    return list(dict(items).items())


def segment_index_of(params: Mapping[str, Any]) -> int | None:
    """A child's `segment_index` when it is a JSON integer (the backend drops anything else)."""
    index = params.get("segment_index")
    return index if isinstance(index, int) and not isinstance(index, bool) else None


class LoraEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: str
    strength: float = 1.0


def item_at(values: Any, index: int) -> Any:
    """`values[index]` when `values` is a list long enough, else None (the app's `extractFromArray`)."""
    return values[index] if isinstance(values, list) and 0 <= index < len(values) else None


class RunDetails(BaseModel):
    """The `orchestrator_details` a travel child carries: what the children read from it.

    Segments get the run's scalar fields only (`OrchestratorDetails.segment_copy`): their own images,
    prompt and lengths travel at their top level, so a segment's size does not grow with the run. Older
    children (and the predecessor worker's) carry the whole payload; the list fields here read those.
    """

    model_config = ConfigDict(extra="allow")

    orchestrator_task_id: str | None = None
    run_id: str
    model_name: str = "base_tester_model"
    model_type: str = "i2v"
    input_image_paths_resolved: list[str] = Field(default_factory=list)
    segment_frames_expanded: list[int] | int | None = None
    frame_overlap_expanded: list[int] | int = 0
    independent_segments: bool = True
    chain_segments: bool | None = None
    regenerate_anchors: bool = False
    structure_guidance: dict[str, Any] | None = None

    @field_validator("run_id", mode="before")
    @classmethod
    def _run_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def chained(self) -> bool:
        """`chain_segments` if present, else `not independent_segments` (travel.md §1.1)."""
        if self.chain_segments is not None:
            return self.chain_segments
        return not self.independent_segments

    @property
    def runs_chained(self) -> bool:
        """Segments depend on each other only in VACE runs: i2v runs are independent whatever
        `chain_segments` says (the predecessor lengthened their targets anyway; we do not)."""
        return self.model_type == "vace" and self.chained


class OrchestratorDetails(RunDetails):
    """`orchestrator_details` (travel.md §2.2). Fields the worker reads are typed; the rest pass through."""

    input_image_generation_ids: list[str | None] | None = None
    pair_shot_generation_ids: list[str | None] | None = None
    shot_id: str | None = None
    num_new_segments_to_generate: int | None = None
    parent_generation_id: str | None = None
    segment_frames_expanded: list[int] | int  # required here, optional in a child's copy
    base_prompts_expanded: list[str | None] | str | None = None
    negative_prompts_expanded: list[str | None] | str | None = None
    enhanced_prompts_expanded: list[str | None] | None = None
    phase_configs_expanded: list[dict[str, Any] | None] | None = None
    loras_per_segment_expanded: list[list[LoraEntry] | None] | None = None
    base_prompt: str = ""
    negative_prompt: str = ""
    text_before_prompts: str = ""
    text_after_prompts: str = ""
    parsed_resolution_wh: str
    seed_base: int = 789
    phase_config: dict[str, Any] | None = None
    additional_loras: dict[str, float] = Field(default_factory=dict)
    lora_names: list[str] = Field(default_factory=list)
    lora_multipliers: list[Any] = Field(default_factory=list)
    fps_helpers: int = Field(DEFAULT_FPS, gt=0)
    use_svi: bool = False
    after_first_post_generation_saturation: float = 1.0
    after_first_post_generation_brightness: float = 0.0
    subsequent_starting_strength_adjustment: float = 0.0
    desaturate_subsequent_starting_frames: float = 0.0
    adjust_brightness_subsequent_starting_frames: float = 0.0
    """Chained VACE runs: how the predecessor's overlap frames are adjusted in the next guide."""
    crossfade_sharp_amt: float = DEFAULT_SHARP_AMOUNT
    upscale_factor: float = 0.0
    upscale_model_name: str | None = None
    continue_from_video_resolved_path: str | None = None

    @property
    def needs_stitch(self) -> bool:
        """A stitch child exists iff the run is SVI or a chained VACE run."""
        return self.use_svi or self.runs_chained

    def child_copy(
        self, orchestrator_task_id: str, segment_frames: list[int], overlaps: list[int]
    ) -> dict[str, Any]:
        """The stitch's whole copy: the DB id as `orchestrator_task_id`, the quantised arrays and the
        normalised chain flag written back; everything else as the app sent it."""
        updated = self.model_copy(
            update={
                "orchestrator_task_id": orchestrator_task_id,
                "segment_frames_expanded": segment_frames,
                "frame_overlap_expanded": overlaps,
                "chain_segments": self.runs_chained,
            }
        )
        return updated.model_dump(mode="json", exclude_unset=True)

    def segment_copy(self, orchestrator_task_id: str) -> dict[str, Any]:
        """What a segment carries: the run's scalar fields as the app sent them (shot_id, run_id,
        model_name, motion_mode, ... which the app reads from a child's copy), never a list or object.
        Every per-segment array is indexed by segment, so a full copy per segment is O(N²) for a run;
        the segment's own values travel at its top level instead (`TravelSegmentParams`)."""
        full = self.model_copy(
            update={"orchestrator_task_id": orchestrator_task_id, "chain_segments": self.runs_chained}
        ).model_dump(mode="json", exclude_unset=True)
        return {key: value for key, value in full.items() if not isinstance(value, (list, dict))}


class TravelOrchestratorParams(BaseModel):
    """`travel_orchestrator` params (travel.md §2.1)."""

    model_config = ConfigDict(extra="allow")

    orchestrator_details: OrchestratorDetails
    parent_generation_id: str | None = None
    project_id: str | None = None
    tool_type: str | None = None
    generation_name: str | None = None


class ChildLinks(BaseModel):
    """Keys the backend reads on every travel child (reigh-contract.md §7.1)."""

    model_config = ConfigDict(extra="allow")

    orchestrator_task_id_ref: str
    orchestrator_run_id: str
    project_id: str | None = None
    parent_generation_id: str | None = None
    orchestrator_details: RunDetails


class SegmentAppIds(BaseModel):
    """`individual_segment_params` of a travel segment: the slot's image generation ids, where the
    app's stale-segment check (`demote_orphaned_video_variants`) reads them."""

    start_image_generation_id: str | None = None
    end_image_generation_id: str | None = None


class TravelSegmentParams(ChildLinks):
    """`travel_segment` params as the orchestrator writes them (travel.md §5.1)."""

    APP_FIELDS: ClassVar[tuple[str, ...]] = (
        "prompt",
        "enhanced_prompt",
        "num_frames",
        "frame_overlap",
        "start_image_generation_id",
        "end_image_generation_id",
        "pair_shot_generation_id",
        "shot_id",
        "individual_segment_params",
    )
    """Written for the app (its completion and gallery read them from a segment), never read here;
    left out when empty."""

    segment_index: StrictInt = Field(ge=0)
    is_first_segment: bool
    is_last_segment: bool
    base_prompt: str = ""
    negative_prompt: str = ""
    segment_frames_target: int = Field(ge=1)
    frame_overlap_from_previous: int = Field(0, ge=0)
    frame_overlap_with_next: int = Field(0, ge=0)
    parsed_resolution_wh: str
    model_name: str | None = None
    seed_to_use: int = DEFAULT_SEED
    fps_helpers: int = Field(DEFAULT_FPS, gt=0)
    cfg_star_switch: int = 0
    cfg_zero_step: int = -1
    subsequent_starting_strength_adjustment: float = 0.0
    desaturate_subsequent_starting_frames: float = 0.0
    adjust_brightness_subsequent_starting_frames: float = 0.0
    after_first_post_generation_saturation: float = 1.0
    after_first_post_generation_brightness: float = 0.0
    structure_guidance: dict[str, Any] | None = None
    phase_config: dict[str, Any] | None = None
    lora_names: list[str] = Field(default_factory=list)
    lora_multipliers: list[Any] = Field(default_factory=list)
    additional_loras: dict[str, float] = Field(default_factory=dict)
    use_svi: bool = False
    start_image_url: str | None = None
    """The pair's images. Absent in older children: then `orchestrator_details.input_image_paths_resolved`."""
    end_image_url: str | None = None
    predecessor_frames_target: int | None = Field(None, ge=1)
    """Chained runs: the frames the predecessor was planned to produce (a mismatch is logged)."""
    # The app's view of the segment (APP_FIELDS): what its normaliser used to pick out of the arrays.
    prompt: str | None = None
    enhanced_prompt: str | None = None
    num_frames: int | None = None
    frame_overlap: int | None = None
    start_image_generation_id: str | None = None
    end_image_generation_id: str | None = None
    pair_shot_generation_id: str | None = None
    shot_id: str | None = None
    individual_segment_params: SegmentAppIds | None = None

    def loras(self) -> list[tuple[str, str]]:
        return lora_pairs(self.additional_loras, self.lora_names, self.lora_multipliers)

    def wire(self) -> dict[str, Any]:
        """The params as stored: every field, less the app's fields that are empty."""
        empty = {name for name in self.APP_FIELDS if getattr(self, name) is None}
        wire = self.model_dump(mode="json", exclude=empty)
        # The run copy exactly as given (`segment_copy`), not padded with this model's defaults.
        wire["orchestrator_details"] = self.orchestrator_details.model_dump(mode="json", exclude_unset=True)
        return wire


class TravelStitchParams(ChildLinks):
    """`travel_stitch` params as the orchestrator writes them (travel.md §6.1)."""

    num_total_segments_generated: int = Field(ge=1)
    frame_overlap_settings_expanded: list[int] | None = None
    crossfade_sharp_amt: float = Field(DEFAULT_SHARP_AMOUNT, ge=0)
    parsed_resolution_wh: str
    fps_final_video: int = Field(DEFAULT_FPS, gt=0)
    use_svi: bool = False
    upscale_factor: float = 0.0
    upscale_model_name: str | None = None
    seed_for_upscale: int | None = None

    def overlaps(self) -> list[int]:
        """The quantised overlaps: this task's own array, else the orchestrator copy's."""
        if self.frame_overlap_settings_expanded is not None:
            return list(self.frame_overlap_settings_expanded)
        raw = self.orchestrator_details.frame_overlap_expanded
        return list(raw) if isinstance(raw, list) else [raw] * (self.num_total_segments_generated - 1)
