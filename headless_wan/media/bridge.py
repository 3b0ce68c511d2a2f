"""VACE bridge media: the guide/mask around a gap, streaming assembly, audio carried over.

A bridge guide is real context frames, a run of grey (128) frames, more real context frames, then
optional grey padding; the mask keeps (0) the context and generates (255) the rest. The numbers come from
`handlers.bridge_planning` (media does not import handlers); this module only reads, paints and writes.

Assembly streams: source spans are decoded frame by frame straight into one `VideoWriter` (the one encoder
policy), and only the generated gap is in memory (it is the engine's output anyway). Audio is muxed
afterwards by stream copy, so the video is encoded exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from headless_wan.errors import MediaError
from headless_wan.media.ffmpeg import DEFAULT_TOOLS, FFmpegTools, count_frames, local_arg, probe, run
from headless_wan.media.files import temp_sibling
from headless_wan.media.guide import GUIDE_GREY, MASK_GENERATE, MASK_KEEP, Guide
from headless_wan.media.video_io import VideoWriter, iter_frames


def read_span(
    path: Path,
    start: int,
    count: int,
    width: int,
    height: int,
    *,
    fps: float | None = None,
    fill: bool = False,
) -> list[np.ndarray]:
    """Frames `[start, start + count)` of a video at width x height (optionally resampled to `fps` and
    centre-cropped to fill, see `iter_frames`); decoding stops after the span."""
    if count <= 0:
        return []
    decoded = iter_frames(path, width=width, height=height, max_frames=start + count, fps=fps, fill=fill)
    frames = list(islice(decoded, start, None))
    if len(frames) != count:
        raise MediaError(
            f"{Path(path).name}: frames [{start}, {start + count}) were needed, only {start + len(frames)} decode"
        )
    return frames


def bridge_guide(
    before: Sequence[np.ndarray],
    gap: int,
    after: Sequence[np.ndarray],
    width: int,
    height: int,
    *,
    padding: int = 0,
) -> Guide:
    """Context before, `gap` grey frames, context after, `padding` grey frames; mask keeps the contexts."""
    total = len(before) + gap + len(after) + padding
    frames = np.full((total, height, width, 3), GUIDE_GREY, dtype=np.uint8)
    mask = np.full((total, height, width), MASK_GENERATE, dtype=np.uint8)
    for index, frame in enumerate(before):
        frames[index] = _sized(frame, width, height)
        mask[index] = MASK_KEEP
    offset = len(before) + gap
    for index, frame in enumerate(after):
        frames[offset + index] = _sized(frame, width, height)
        mask[offset + index] = MASK_KEEP
    return Guide(frames, mask)


def _sized(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape != (height, width, 3):
        raise ValueError(f"context frame is shaped {frame.shape}, expected ({height}, {width}, 3)")
    return frame


@dataclass(frozen=True)
class SourceSpan:
    """Frames `[start, end)` of a local video, copied into the assembly."""

    path: Path
    start: int
    end: int
    fps: float | None = None
    """Resample to this rate before counting frames (None: the file's own frames)."""
    fill: bool = False
    """Centre-crop to the output's aspect ratio before scaling."""


@dataclass(frozen=True, eq=False)
class Generated:
    """Frames the engine made (the gap), already at the output size."""

    frames: np.ndarray


Piece = SourceSpan | Generated


def assemble(pieces: Sequence[Piece], output: Path, width: int, height: int, fps: float) -> int:
    """Encode the pieces in order into `output` (one encode); returns the frames written.

    Raises MediaError when a source span has fewer frames than asked for.
    """
    with VideoWriter(output, width, height, fps) as writer:
        for piece in pieces:
            if isinstance(piece, Generated):
                for frame in piece.frames:
                    writer.write(frame)
                continue
            written = 0
            if piece.end > piece.start:
                frames = iter_frames(
                    piece.path,
                    width=width,
                    height=height,
                    max_frames=piece.end,
                    fps=piece.fps,
                    fill=piece.fill,
                )
                for frame in islice(frames, piece.start, None):
                    writer.write(frame)
                    written += 1
            if written != piece.end - piece.start:
                raise MediaError(
                    f"{piece.path.name}: frames [{piece.start}, {piece.end}) were needed, "
                    f"only {piece.start + written} decode"
                )
    return writer.frames_written


def has_audio(path: Path, *, tools: FFmpegTools = DEFAULT_TOOLS, timeout_s: float = 30.0) -> bool:
    """Whether the file has an audio stream (ffprobe)."""
    args = [
        tools.ffprobe, "-v", "error", "-protocol_whitelist", "file", "-select_streams", "a",
        "-show_entries", "stream=index", "-of", "json", local_arg(path),
    ]  # fmt: skip
    out = run(args, what=f"probing audio of {Path(path).name}", timeout_s=timeout_s)
    return bool(json.loads(out or b"{}").get("streams"))


def mux_audio(
    video: Path,
    audio_source: Path,
    *,
    offset_s: float = 0.0,
    tools: FFmpegTools = DEFAULT_TOOLS,
    timeout_s: float = 300.0,
) -> bool:
    """Put `audio_source`'s first audio track (from `offset_s`) under `video`, in place: the video stream
    is copied, the audio encoded to AAC, padded with silence or cut to exactly the video's duration (the
    video is never shortened: the frame count is checked after). Returns False (video untouched) when
    the source has no audio."""
    if not has_audio(audio_source, tools=tools):
        return False
    frames = count_frames(video, tools=tools)
    duration = frames / probe(video, tools=tools).fps
    tmp = temp_sibling(video)
    args = [
        tools.ffmpeg, "-v", "error", "-y", "-protocol_whitelist", "file",
        "-i", local_arg(video), "-ss", f"{max(offset_s, 0.0):.6f}", "-i", local_arg(audio_source),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-af", "apad", "-c:a", "aac",
        "-t", f"{duration:.6f}", "-movflags", "+faststart", local_arg(tmp),
    ]  # fmt: skip
    try:
        run(args, what=f"muxing audio into {video.name}", timeout_s=timeout_s)
        muxed = count_frames(tmp, tools=tools)
        if muxed != frames:
            raise MediaError(f"muxing audio into {video.name}: {muxed} frames came out of {frames}")
        tmp.replace(video)
    finally:
        tmp.unlink(missing_ok=True)
    return True
