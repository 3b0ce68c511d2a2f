"""`travel_stitch`: crossfade a chained run's completed segments into one video (travel.md §6).

Segments stream from disk through the crossfade into one encoder, so memory stays flat in the number
and length of segments. The full, contiguous set of segments 0..S−1 is required: a partial set is never
stitched (pitfall P7); the task is released to retry instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from headless_wan.domain.tasks import SegmentOutput, TaskResult
from headless_wan.domain.travel_params import TRAVEL_STITCH, TravelStitchParams
from headless_wan.errors import InvalidTaskParams, MediaError, TransientError
from headless_wan.handlers import planning
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.sidecar import write_record
from headless_wan.handlers.travel_inputs import TravelConfig, fetch_queue_output, require_lookup, shown
from headless_wan.media.crossfade import Stitcher
from headless_wan.media.fetch import safe_filename
from headless_wan.media.ffmpeg import probe
from headless_wan.media.video_io import VideoWriter, count_frames, iter_frames, write_thumbnail

_CANCEL_CHECK_EVERY = 16


def select_segments(rows: Sequence[SegmentOutput], count: int, run_id: str) -> list[SegmentOutput]:
    """Exactly one row per index 0..count−1 (the newest of duplicates); TransientError naming the missing ones."""
    by_index: dict[int, SegmentOutput] = {}
    for row in rows:
        if 0 <= row.segment_index < count:
            by_index[row.segment_index] = row
    missing = [index for index in range(count) if index not in by_index]
    if missing:
        raise TransientError(
            f"run {run_id}: {count - len(missing)} of {count} segments are complete; "
            f"waiting for segment(s) {', '.join(map(str, missing))}"
        )
    return [by_index[index] for index in range(count)]


class TravelStitchHandler:
    """Stitches a run's segments.

    Input: `TravelStitchParams` plus `ctx.lookup.completed_segments(run_id, project_id)`. Output:
    `<task id>.mp4` (Σ len − Σ overlaps frames, checked by decoding) and a JPEG thumbnail. Raises
    TransientError while segments are missing, InvalidTaskParams for inconsistent counts, MediaError
    when a segment cannot be decoded. Safe to re-run.
    """

    task_type: ClassVar[str] = TRAVEL_STITCH
    params_model: ClassVar[type[BaseModel]] = TravelStitchParams

    def __init__(self, config: TravelConfig) -> None:
        self.config = config

    def run(self, ctx: TaskContext, params: TravelStitchParams) -> TaskResult:
        count = params.num_total_segments_generated
        overlaps = params.overlaps()
        if len(overlaps) < count - 1:
            raise InvalidTaskParams(
                f"frame_overlap_settings_expanded: {count} segments need {count - 1} overlaps, got {len(overlaps)}"
            )
        overlaps = overlaps[: count - 1]
        if any(value < 0 for value in overlaps):
            raise InvalidTaskParams(
                f"frame_overlap_settings_expanded: overlaps must not be negative ({overlaps})"
            )
        project_id = params.project_id or ctx.task.project_id
        rows = require_lookup(ctx).completed_segments(params.orchestrator_run_id, project_id)
        segments = select_segments(rows, count, params.orchestrator_run_id)
        paths = self._fetch(ctx, segments)
        ctx.mark_started()
        planned = _planned_targets(params, overlaps)
        output = ctx.workdir / safe_filename(f"{ctx.task.id}.mp4", default="stitch.mp4")
        total = sum(planned) - sum(overlaps) if planned else 0
        stitcher = self._stitch(ctx, params, paths, overlaps, output, total)
        _log_differences(ctx, stitcher, planned)
        ctx.progress.report("encoding", 1, 1, "verifying")
        decoded = count_frames(output)
        if decoded != stitcher.expected_length:
            raise MediaError(
                f"stitched video decodes to {decoded} frames, expected {stitcher.expected_length} "
                f"(segments {stitcher.lengths}, overlaps used {[j.used for j in stitcher.joins]})"
            )
        if params.upscale_factor > 1:
            ctx.log.warning("upscale_factor %s ignored: upscaling is not supported", params.upscale_factor)
        thumbnail = write_thumbnail(output, ctx.workdir / f"{output.stem}_thumb.jpg")
        _write_sidecar(ctx, params, output, segments, stitcher, decoded)
        ctx.log.info(
            "stitched %d segment(s) into %d frames", count, decoded, extra={"action": "travel_stitched"}
        )
        return TaskResult(output=output, thumbnail=thumbnail, metrics={"frames": float(decoded)})

    def _fetch(self, ctx: TaskContext, segments: Sequence[SegmentOutput]) -> list[Path]:
        folder = ctx.workdir / "segments"
        paths = []
        for position, row in enumerate(segments):
            ctx.cancel.check()
            ctx.progress.report("fetching_inputs", position, len(segments), f"segment {row.segment_index}")
            paths.append(
                fetch_queue_output(
                    row.output_location,
                    folder,
                    self.config,
                    what=f"segment {row.segment_index}",
                    filename=f"segment_{row.segment_index:03d}.mp4",
                )
            )
        ctx.progress.report("fetching_inputs", len(segments), len(segments))
        return paths

    def _stitch(
        self,
        ctx: TaskContext,
        params: TravelStitchParams,
        paths: Sequence[Path],
        overlaps: Sequence[int],
        output: Path,
        planned_total: int,
    ) -> Stitcher:
        def on_frame(written: int) -> None:
            if written % _CANCEL_CHECK_EVERY == 0:
                ctx.cancel.check()
                ctx.progress.report("encoding", written, max(written, planned_total), "stitching")

        return stitch_videos(
            paths,
            overlaps,
            output,
            fps=params.fps_final_video,
            sharp_amount=params.crossfade_sharp_amt,
            keep_last_anchor=params.orchestrator_details.regenerate_anchors,
            on_frame=on_frame,
        )


def stitch_videos(
    paths: Sequence[Path],
    overlaps: Sequence[int],
    output: Path,
    *,
    fps: float,
    sharp_amount: float = 0.3,
    keep_last_anchor: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> Stitcher:
    """Crossfade video files into `output`, streaming (one decoder and one encoder open at a time).

    The first video's real size is the working size (not the payload's); the others are resized to it.
    Returns the `Stitcher` (real lengths and the overlaps used at each join).
    """
    info = probe(paths[0])
    width, height = info.width, info.height
    stitcher = Stitcher(overlaps, sharp_amount=sharp_amount, keep_last_anchor=keep_last_anchor)
    with VideoWriter(output, width, height, fps) as writer:
        for written, frame in enumerate(stitcher.frames(_decode_all(paths, width, height)), start=1):
            writer.write(frame)
            if on_frame is not None:
                on_frame(written)
    return stitcher


def _decode_all(paths: Sequence[Path], width: int, height: int) -> Iterator[Iterator[np.ndarray]]:
    for index, path in enumerate(paths):
        yield iter_frames(path) if index == 0 else iter_frames(path, width=width, height=height)


def _planned_targets(params: TravelStitchParams, overlaps: Sequence[int]) -> list[int] | None:
    """The segment lengths the orchestrator planned (for mismatch logs only; real counts win)."""
    raw = params.orchestrator_details.segment_frames_expanded
    frames = raw if isinstance(raw, list) else [raw] * params.num_total_segments_generated
    if len(frames) != params.num_total_segments_generated:
        return None
    try:
        return list(planning.segment_targets(frames, overlaps, chained=True))
    except (InvalidTaskParams, IndexError):
        return None


def _log_differences(ctx: TaskContext, stitcher: Stitcher, planned: Sequence[int] | None) -> None:
    if planned is not None and list(planned) != stitcher.lengths:
        ctx.log.warning(
            "segment lengths %s differ from the planned %s; stitching the real lengths",
            stitcher.lengths,
            list(planned),
            extra={"action": "stitch_length_mismatch"},
        )
    for join in stitcher.joins:
        if join.clamped:
            ctx.log.warning(
                "join %d: overlap %d clamped to %d by a short segment",
                join.index,
                join.requested,
                join.used,
                extra={"action": "stitch_overlap_clamped"},
            )


def _write_sidecar(
    ctx: TaskContext,
    params: TravelStitchParams,
    output: Path,
    segments: Sequence[SegmentOutput],
    stitcher: Stitcher,
    frames: int,
) -> None:
    """What the stitch joined: each segment (its id's output, length), the overlaps used, the fade."""
    info = probe(output)
    write_record(
        output,
        {
            "task_id": ctx.task.id,
            "task_type": ctx.task.task_type,
            "model": params.orchestrator_details.model_name,
            "resolution": f"{info.width}x{info.height}",
            "num_frames": frames,
            "fps": params.fps_final_video,
            "crossfade_sharp_amt": params.crossfade_sharp_amt,
            "segments": [
                {"segment_index": row.segment_index, "output": shown(row.output_location), "frames": length}
                for row, length in zip(segments, stitcher.lengths, strict=False)
            ],
            "overlaps_used": [join.used for join in stitcher.joins],
        },
    )
