"""Typed params of the VACE bridge task types (join clips, inpaint frames); their wire keys live here.

Payload shapes: reigh-app `create-task/resolvers/joinClips.ts` (`orchestrator_details` of a
`join_clips_orchestrator`) and the predecessor's `inpaint_frames`. The children's params are this worker's
own (`JoinSegmentParams`, `JoinStitchParams`) plus the link fields Reigh reads (`RunLinks`, `join_index`,
`is_first_join`, `is_last_join`, `full_orchestrator_payload`).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

JOIN_CLIPS_ORCHESTRATOR = "join_clips_orchestrator"
JOIN_CLIPS_SEGMENT = "join_clips_segment"
JOIN_FINAL_STITCH = "join_final_stitch"
INPAINT_FRAMES = "inpaint_frames"
EDIT_VIDEO_ORCHESTRATOR = "edit_video_orchestrator"

DEFAULT_JOIN_MODEL = "wan_2_2_vace_lightning_baseline_2_2_2"
DEFAULT_FPS = 16

_FROZEN = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class BridgeGeneration(BaseModel):
    """What every bridge generation reads (prompt, model, schedule, LoRAs)."""

    model_config = _FROZEN

    model: str = Field(DEFAULT_JOIN_MODEL, validation_alias=AliasChoices("model", "model_name"))
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = Field(-1, ge=-1)
    num_inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    phase_config: dict[str, Any] | None = None
    additional_loras: dict[str, Any] = Field(default_factory=dict)

    def loras(self) -> tuple[tuple[str, str], ...]:
        return tuple((source, str(strength)) for source, strength in self.additional_loras.items())


def _size_pair(value: Any) -> Any:
    """`[w, h]` (the app) or "WxH" (the worker's own children)."""
    if isinstance(value, str) and "x" in value.lower():
        width, height = value.lower().split("x", 1)
        return (int(width), int(height))
    return value


class Sized(BaseModel):
    """An optional `resolution`, as the app sends it (`[w, h]`) or "WxH"."""

    model_config = _FROZEN

    resolution: tuple[int, int] | None = None

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, value: Any) -> Any:
        return _size_pair(value)


class RunLinks(BaseModel):
    """The fields Reigh reads on a child to find its run (every join/edit child carries them)."""

    model_config = _FROZEN

    orchestrator_task_id_ref: str | None = None
    orchestrator_run_id: str | None = None
    run_id: str | None = None
    project_id: str | None = None
    parent_generation_id: str | None = None
    shot_id: str | None = None


class ClipRef(BaseModel):
    model_config = _FROZEN

    url: str = Field(min_length=1)
    name: str | None = None


class JoinOverride(Sized):
    """One entry of `per_join_settings`; every field optional (unset: the run's value). These are the
    keys the app's resolver (`buildJoinOverrideRecord`) can carry; its `priority` is the queue's, not ours."""

    prompt: str | None = None
    negative_prompt: str | None = None
    gap_frame_count: int | None = None
    context_frame_count: int | None = None
    replace_mode: bool | None = None
    seed: int | None = Field(None, ge=-1)
    additional_loras: dict[str, Any] | None = None
    model: str | None = Field(None, validation_alias=AliasChoices("model", "model_name"))
    num_inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    fps: int | None = Field(None, ge=1, le=120)


class JoinDetails(BridgeGeneration, Sized):
    """`orchestrator_details` of a `join_clips_orchestrator`."""

    clip_list: tuple[ClipRef, ...] = ()
    run_id: str | None = None
    orchestrator_task_id: str | None = None
    context_frame_count: int = 8
    gap_frame_count: int = 53
    replace_mode: bool = True
    per_join_settings: tuple[JoinOverride, ...] = ()
    fps: int | None = Field(None, ge=1, le=120)
    use_input_video_resolution: bool = False
    use_input_video_fps: bool = False
    audio_url: str | None = None
    loop_first_clip: bool = False
    """The app's "Loop first clip": clip_list[0], a bridge, then clip_list[0] reversed."""
    parent_generation_id: str | None = None
    shot_id: str | None = None


class JoinOrchestratorParams(BaseModel):
    model_config = _FROZEN

    orchestrator_details: JoinDetails
    parent_generation_id: str | None = None
    project_id: str | None = None


class BridgeNumbers(BaseModel):
    """One join as the orchestrator planned it (children never re-plan; see handlers.bridge_planning)."""

    model_config = _FROZEN

    a_context_start: int = Field(ge=0)
    """Index in the conformed clip A of the guide's first frame."""
    context_before: int = Field(ge=0)
    """0 only for an edit portion at the video's start (likewise `context_after` at its end)."""
    gap: int = Field(ge=1)
    context_after: int = Field(ge=0)
    b_context_start: int = Field(ge=0)
    """Index in clip B (as played: reversed when `ending_reversed`) of the guide's first frame after the gap."""
    padding: int = Field(0, ge=0)
    """Grey frames generated after the context and discarded (an edit whose contexts cannot absorb 4n+1)."""


class JoinSegmentParams(BridgeGeneration, RunLinks):
    """`join_clips_segment`: one bridge between two clips."""

    join_index: int = Field(ge=0)
    is_first_join: bool = False
    is_last_join: bool = False
    starting_video_path: str = Field(min_length=1)
    ending_video_path: str = Field(min_length=1)
    ending_reversed: bool = False
    """Clip B is played backwards (`loop_first_clip`)."""
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    fps: float = Field(gt=0, le=120)
    conform_fps: bool = True
    """Resample the clips to `fps` (False: `use_input_video_fps`, frames are read as they are)."""
    fill: bool = True
    """Centre-crop clips to the size's aspect ratio (False: an edit's own source, only resized)."""
    bridge: BridgeNumbers
    full_orchestrator_payload: dict[str, Any] = Field(default_factory=dict)
    """The orchestrator's details as the app sent them (Reigh's completion reads the run from here)."""


class StitchClip(BaseModel):
    model_config = _FROZEN

    url: str = Field(min_length=1)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    """`[start, end)` of the clip as played (reversed first when `reversed`)."""
    reversed: bool = False


class JoinStitchParams(RunLinks):
    """`join_final_stitch`: the clips' kept spans and the joins' generated gaps, in order."""

    clips: tuple[StitchClip, ...]
    join_task_ids: tuple[str, ...]
    gap_offsets: tuple[tuple[int, int], ...]
    """Per join: (first gap frame in the join's output, gap length)."""
    replaced: tuple[tuple[int, int], ...] = ()
    """Per join: (frames the gap took from clip A's end, from clip B's start); the clips' own audio
    is kept under a gap that replaced exactly its length (handlers.bridge_audio)."""
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    fps: float = Field(gt=0, le=120)
    conform_fps: bool = True
    fill: bool = True
    expected_frames: int = Field(ge=1)
    audio_url: str | None = None
    """Muxed over the whole output; unset: the clips' own audio (when they have any)."""
    audio_optional: bool = False
    """True: `audio_url` may have no audio track (children queued before `replaced` existed)."""


class PortionParam(BaseModel):
    """One entry of `portions_to_regenerate` (`end_frame` exclusive, as the app computes it)."""

    model_config = _FROZEN

    start_frame: int
    end_frame: int
    gap_frame_count: int | None = None
    """New frames in the portion's place (the app's per-portion value); unset: the portion's length."""
    prompt: str | None = None


class EditDetails(BridgeGeneration, Sized):
    """`orchestrator_details` of an `edit_video_orchestrator` (the app's video edit payload)."""

    source_video_url: str = Field(min_length=1)
    portions_to_regenerate: tuple[PortionParam, ...] = ()
    context_frame_count: int = 8
    run_id: str | None = None
    parent_generation_id: str | None = None
    shot_id: str | None = None


class EditOrchestratorParams(BaseModel):
    model_config = _FROZEN

    orchestrator_details: EditDetails
    parent_generation_id: str | None = None
    project_id: str | None = None


class InpaintFramesParams(BridgeGeneration, Sized):
    """`inpaint_frames`: regenerate `[inpaint_start_frame, inpaint_end_frame)` of one video."""

    video_path: str = Field(
        min_length=1, validation_alias=AliasChoices("video_path", "video_url", "source_video_url")
    )
    inpaint_start_frame: int
    inpaint_end_frame: int
    context_frame_count: int = 8


def join_index_of(params: dict[str, Any]) -> int | None:
    """A child's `join_index`, for idempotent re-runs (None when absent or not a number)."""
    value = params.get("join_index")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
