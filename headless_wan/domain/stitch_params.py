"""`travel_stitch` params in either shape: the worker's own (a travel orchestrator's child, read from the
run) or the app's crossfade join (reigh-app `create-task/resolvers/crossfadeJoin.ts`: `clip_urls` and
`frame_overlap_settings_expanded`, no orchestrator fields). The shape is chosen by those keys, so each
kind's validation messages name its own fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, model_validator

from headless_wan.domain.travel_params import DEFAULT_SHARP_AMOUNT, TravelStitchParams

APP_STITCH = "app"
WORKER_STITCH = "worker"


class AppStitchParams(BaseModel):
    """The app's crossfade join: stitch these clips with these overlaps (one per boundary, > 0)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    clip_urls: tuple[str, ...] = Field(min_length=2)
    frame_overlap_settings_expanded: tuple[int, ...]
    audio_url: str | None = None
    crossfade_sharp_amt: float = Field(DEFAULT_SHARP_AMOUNT, ge=0)
    fps_final_video: float | None = Field(None, gt=0, le=120)
    """Unset (the app sends none): the first clip's own frame rate."""
    parent_generation_id: str | None = None
    shot_id: str | None = None

    @model_validator(mode="after")
    def _one_overlap_per_boundary(self) -> AppStitchParams:
        clips, overlaps = len(self.clip_urls), self.frame_overlap_settings_expanded
        if len(overlaps) != clips - 1:
            raise ValueError(
                f"frame_overlap_settings_expanded: {clips} clips need {clips - 1} overlap(s), got {len(overlaps)}"
            )
        if any(value <= 0 for value in overlaps):
            raise ValueError(
                f"frame_overlap_settings_expanded: overlaps must be positive, got {list(overlaps)}"
            )
        if any(not url.strip() for url in self.clip_urls):
            raise ValueError("clip_urls: every clip needs a URL")
        return self


def _shape(value: Any) -> str:
    if isinstance(value, dict) and "clip_urls" in value and "orchestrator_task_id_ref" not in value:
        return APP_STITCH
    if isinstance(value, AppStitchParams):
        return APP_STITCH
    return WORKER_STITCH


class StitchTaskParams(
    RootModel[
        Annotated[
            Annotated[TravelStitchParams, Tag(WORKER_STITCH)] | Annotated[AppStitchParams, Tag(APP_STITCH)],
            Discriminator(_shape),
        ]
    ]
):
    """What a `travel_stitch` task validates to; `.root` is the payload of its kind."""
