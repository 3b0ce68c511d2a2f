"""VACE bridge media: the guide/mask around a gap, streaming assembly, audio carried over.

A bridge guide is real context frames, a run of grey (128) frames, more real context frames, then
optional grey padding; the mask keeps (0) the context and generates (255) the rest. The numbers come from
`handlers.bridge_planning` (media does not import handlers); this module only reads, paints and writes.

Assembly streams: source spans are decoded frame by frame straight into one `VideoWriter` (the one encoder
policy), and only the generated gap is in memory (it is the engine's output anyway). Audio is muxed
afterwards (`media.audio`) with the video stream copied, so the video is encoded exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from headless_wan.errors import MediaError
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
    reverse: bool = False
    """Write the span last frame first (a looped clip played backwards)."""


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
            for frame in _span_frames(piece, width, height):
                writer.write(frame)
                written += 1
            if written != piece.end - piece.start:
                raise MediaError(
                    f"{piece.path.name}: frames [{piece.start}, {piece.end}) were needed, "
                    f"only {piece.start + written} decode"
                )
    return writer.frames_written


REVERSE_CHUNK_MIN = 16


def _span_frames(piece: SourceSpan, width: int, height: int) -> Iterator[np.ndarray]:
    """The span's frames in writing order. Backwards, the span is decoded in chunks from its end (each
    chunk a fresh decode stopping at the chunk's end), so memory holds one chunk, not the clip: at most
    an eighth of the span (and 16 frames), for about four times the decoding of a forward read."""
    if piece.end <= piece.start:
        return
    if not piece.reverse:
        frames = iter_frames(
            piece.path, width=width, height=height, max_frames=piece.end, fps=piece.fps, fill=piece.fill
        )
        yield from islice(frames, piece.start, None)
        return
    chunk = max(REVERSE_CHUNK_MIN, -(-(piece.end - piece.start) // 8))
    for top in range(piece.end, piece.start, -chunk):
        low = max(piece.start, top - chunk)
        frames = iter_frames(
            piece.path, width=width, height=height, max_frames=top, fps=piece.fps, fill=piece.fill
        )
        block = list(islice(frames, low, None))
        yield from reversed(block)
        if len(block) != top - low:
            return  # short file: assemble reports the missing frames
