"""The app-made `travel_stitch` (Reigh's crossfade join): fetch `clip_urls` and crossfade them with the
existing streaming stitcher (`travel_stitch.stitch_videos`), `audio_url` muxed on the result.

Clips are checked before stitching: each must decode to at least two frames, and each overlap must fit
the clips on both sides (no silent clamping of what the user asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from headless_wan.domain.stitch_params import AppStitchParams
from headless_wan.domain.tasks import TaskResult
from headless_wan.errors import HeadlessWanError, InputUnavailable, InvalidTaskParams, MediaError
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.travel_inputs import TravelConfig, fetch_input
from headless_wan.media.audio import mux_audio
from headless_wan.media.fetch import safe_filename
from headless_wan.media.ffmpeg import probe
from headless_wan.media.video_io import count_frames, write_thumbnail

if TYPE_CHECKING:
    from pathlib import Path


def _fetch_clips(
    ctx: TaskContext, params: AppStitchParams, config: TravelConfig
) -> tuple[list[Path], list[int]]:
    paths, lengths = [], []
    for index, url in enumerate(params.clip_urls):
        ctx.cancel.check()
        ctx.progress.report("fetching_inputs", index, len(params.clip_urls))
        field = f"clip_urls[{index}]"
        path = fetch_input(url, ctx.workdir / "clips", config, field=field, filename=f"clip_{index:03d}.mp4")
        try:
            frames = count_frames(path)
        except HeadlessWanError as exc:
            raise InputUnavailable(f"{field}: not a readable video: {exc}") from None
        if frames < 2:
            raise InvalidTaskParams(
                f"{field}: a clip needs at least 2 frames to be stitched, it has {frames}"
            )
        paths.append(path)
        lengths.append(frames)
    return paths, lengths


def run_app_stitch(ctx: TaskContext, params: AppStitchParams, config: TravelConfig) -> TaskResult:
    from headless_wan.handlers.travel_stitch import stitch_videos

    paths, lengths = _fetch_clips(ctx, params, config)
    overlaps = list(params.frame_overlap_settings_expanded)
    for index, overlap in enumerate(overlaps):
        if overlap >= lengths[index] or overlap >= lengths[index + 1]:
            raise InvalidTaskParams(
                f"frame_overlap_settings_expanded[{index}]: {overlap} frames do not fit between clips of "
                f"{lengths[index]} and {lengths[index + 1]} frames"
            )
    ctx.mark_started()
    fps = params.fps_final_video or probe(paths[0]).fps
    output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="stitch.mp4")
    stitcher = stitch_videos(paths, overlaps, output, fps=fps, sharp_amount=params.crossfade_sharp_amt)
    decoded = count_frames(output)
    expected = sum(lengths) - sum(overlaps)
    if decoded != expected or stitcher.expected_length != expected:
        raise MediaError(f"stitched video decodes to {decoded} frames, expected {expected}")
    if params.audio_url:
        audio = fetch_input(
            params.audio_url, ctx.workdir / "clips", config, field="audio_url", filename="audio"
        )
        if not mux_audio(output, audio):
            raise MediaError("audio_url: the file has no audio track")
    thumbnail = write_thumbnail(output, ctx.workdir / f"{output.stem}_thumb.jpg")
    ctx.log.info("stitched %d clip(s) into %d frames", len(paths), decoded, extra={"action": "app_stitched"})
    return TaskResult(output=output, thumbnail=thumbnail, metrics={"frames": float(decoded)})
