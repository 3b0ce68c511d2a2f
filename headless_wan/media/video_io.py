"""Encode RGB frames to video and decode video to RGB frames through FFmpeg pipes.

Frames stream through stdin/stdout as raw rgb24, one at a time, so a long video is never held in memory by this
module. Every output uses the single `ENCODER` policy (H.264, yuv420p, CRF 18, BT.709 limited range): the RGB to
YUV conversion uses the same matrix the stream is tagged with, otherwise players shift the colours.

Odd sizes: yuv420p needs even width and height, so an odd dimension gets one extra column (right) or row (bottom)
that repeats the edge pixels. A 65x63 input therefore encodes and decodes as 66x64; even sizes are untouched.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import ffmpeg
import numpy as np

from headless_wan.errors import MediaError
from headless_wan.media.ffmpeg import (
    DEFAULT_TOOLS,
    FFmpegProcess,
    FFmpegTools,
    compile_args,
    count_frames,
    fps_arg,
    make_input,
    probe,
)
from headless_wan.media.files import temp_sibling
from headless_wan.media.images import (
    frame_to_pil,
    frames_to_pil,
    load_image,
    pil_to_frame,
    save_image,
    to_uint8_rgb,
)

__all__ = [
    "ENCODER",
    "EncoderConfig",
    "VideoWriter",
    "count_frames",
    "encode_video",
    "even_size",
    "frame_to_pil",
    "frames_to_pil",
    "iter_frames",
    "load_image",
    "pil_to_frame",
    "read_frames",
    "save_image",
    "to_uint8_rgb",
    "write_thumbnail",
]

_FASTSTART_SUFFIXES = {".mp4", ".m4v", ".mov"}


@dataclass(frozen=True)
class EncoderConfig:
    """How every video the worker produces is encoded.

    `color_matrix` is both the RGB to YUV conversion matrix and the stream tag; keep them one field so they
    cannot drift apart. `faststart` moves the MP4 index to the front so browsers can start playback early.
    """

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    preset: str = "medium"
    color_matrix: str = "bt709"
    color_primaries: str = "bt709"
    color_trc: str = "bt709"
    color_range: str = "tv"
    faststart: bool = True


ENCODER = EncoderConfig()


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size a width x height input is encoded at (odd dimensions grow by one)."""
    return width + width % 2, height + height % 2


def _encode_args(
    tmp: Path, width: int, height: int, fps: float, encoder: EncoderConfig, tools: FFmpegTools
) -> list[str]:
    stream = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps_arg(fps)
    )
    padded_w, padded_h = even_size(width, height)
    if (padded_w, padded_h) != (width, height):
        stream = stream.filter("pad", padded_w, padded_h, 0, 0).filter(
            "fillborders", right=padded_w - width, bottom=padded_h - height, mode="smear"
        )
    stream = stream.filter("scale", out_color_matrix=encoder.color_matrix, out_range=encoder.color_range)
    stream = stream.filter("format", encoder.pix_fmt)
    options: dict[str, Any] = {
        "vcodec": encoder.codec,
        "pix_fmt": encoder.pix_fmt,
        "crf": encoder.crf,
        "preset": encoder.preset,
        "colorspace": encoder.color_matrix,
        "color_primaries": encoder.color_primaries,
        "color_trc": encoder.color_trc,
        "color_range": encoder.color_range,
    }
    if encoder.faststart and tmp.suffix.lower() in _FASTSTART_SUFFIXES:
        options["movflags"] = "+faststart"
    return compile_args(stream.output(str(tmp.absolute()), **options), tools)


class VideoWriter:
    """Stream RGB frames into a video file.

    Use as a context manager: FFmpeg starts on enter; `write()` sends one (H, W, 3) frame at a time. A clean
    exit waits for FFmpeg (at most `timeout_s`), checks its status and renames the finished file into place;
    an exception inside the block kills FFmpeg and deletes the partial file, so `path` either holds a complete
    video or is left as it was. Raises MediaError for FFmpeg failures and for a video with no frames.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        encoder: EncoderConfig = ENCODER,
        timeout_s: float = 300.0,
        *,
        tools: FFmpegTools = DEFAULT_TOOLS,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        fps_arg(fps)
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.encoder = encoder
        self.timeout_s = timeout_s
        self.tools = tools
        self._tmp: Path | None = None
        self._proc: FFmpegProcess | None = None
        self._frames = 0

    @property
    def frames_written(self) -> int:
        return self._frames

    def __enter__(self) -> VideoWriter:
        if self._proc is not None:
            raise RuntimeError("VideoWriter is already open")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_sibling(self.path.absolute())
        args = _encode_args(self._tmp, self.width, self.height, self.fps, self.encoder, self.tools)
        self._proc = FFmpegProcess.start(args, what=f"encoding {self.path.name}", stdin=True)
        self._frames = 0
        return self

    def write(self, frame: np.ndarray) -> None:
        """Send one RGB frame (uint8, or float in [0, 1]) of the writer's size."""
        if self._proc is None:
            raise RuntimeError("VideoWriter.write() outside its `with` block")
        data = to_uint8_rgb(frame)
        if data.shape != (self.height, self.width, 3):
            raise ValueError(f"frame shape {data.shape} does not match ({self.height}, {self.width}, 3)")
        try:
            self._proc.stdin.write(data.data)
        except (BrokenPipeError, ConnectionResetError):
            raise self._exit_error(self._proc) from None
        self._frames += 1

    def _exit_error(self, proc: FFmpegProcess) -> MediaError:
        """Why ffmpeg stopped reading frames: its exit status and stderr once it has ended."""
        try:
            proc.finish(min(self.timeout_s, 30.0))
        except MediaError as exc:
            return exc
        return MediaError(f"encoding {self.path.name}: ffmpeg stopped reading after {self._frames} frames")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, tmp = self._proc, self._tmp
        self._proc = self._tmp = None
        if proc is None or tmp is None:
            return
        try:
            if exc_type is None:
                self._finish(proc)
                tmp.replace(self.path)
        finally:
            proc.kill()
            tmp.unlink(missing_ok=True)

    def _finish(self, proc: FFmpegProcess) -> None:
        if self._frames == 0:
            raise MediaError(f"encoding {self.path.name}: no frames were written")
        proc.finish(self.timeout_s)


def encode_video(
    frames: Iterable[np.ndarray],
    path: Path,
    fps: float,
    *,
    encoder: EncoderConfig = ENCODER,
    timeout_s: float = 300.0,
    tools: FFmpegTools = DEFAULT_TOOLS,
) -> int:
    """Encode frames (an iterable, or an (F, H, W, 3) array) to `path`; returns the number of frames written.

    The size comes from the first frame; every frame must match it. Frames are consumed lazily, so a
    generator keeps memory flat. Raises MediaError when there are no frames or FFmpeg fails.
    """
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise MediaError(f"encoding {Path(path).name}: no frames to encode")
    first = to_uint8_rgb(first)
    height, width = first.shape[:2]
    with VideoWriter(path, width, height, fps, encoder, timeout_s, tools=tools) as writer:
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return writer.frames_written


def _read_exact(stream: IO[bytes], buffer: bytearray, stall_s: float, what: str) -> int:
    """Fill `buffer` from a pipe (reads may return short); returns the bytes read, < len only at EOF.

    Reads the file descriptor directly (never through a read buffer, which `select` cannot see) and
    waits at most `stall_s` for each chunk: an FFmpeg that stops producing output must not hold the
    task forever. MediaError when it does."""
    view = memoryview(buffer)
    fd = stream.fileno()
    filled = 0
    while filled < len(buffer):
        readable, _, _ = select.select([fd], [], [], stall_s)
        if not readable:
            raise MediaError(f"{what}: no output from ffmpeg for {stall_s:g} s")
        chunk = os.read(fd, len(buffer) - filled)
        if not chunk:
            break
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return filled


def _decode_args(
    path: Path,
    width: int,
    height: int,
    max_frames: int | None,
    tools: FFmpegTools,
    fps: float | None = None,
    fill: bool = False,
) -> list[str]:
    # An explicit scale pins the output size even if the stream changes resolution midway, so every frame
    # is exactly width*height*3 bytes; the colour matrix comes from the stream's own tags.
    stream = make_input(path)["v:0"]
    if fps is not None:
        # FFmpeg's fps filter drops/duplicates frames by timestamp: the same input always gives the same
        # frames, so a planner that counted them and a child that reads them agree.
        stream = stream.filter("fps", fps=fps_arg(fps))
    if fill:
        # Centre crop to the target's aspect ratio before scaling, so nothing is stretched.
        stream = stream.filter(
            "crop", f"min(iw,ih*{width}/{height})", f"min(ih,iw*{height}/{width})", "(iw-ow)/2", "(ih-oh)/2"
        )
    stream = stream.filter("scale", width, height, flags="bicubic")
    options: dict[str, Any] = {"format": "rawvideo", "pix_fmt": "rgb24"}
    if max_frames is not None:
        options["frames:v"] = max_frames
    return compile_args(stream.output("pipe:", **options), tools)


def _stream_frames(
    path: Path, args: list[str], width: int, height: int, timeout_s: float
) -> Iterator[np.ndarray]:
    proc = FFmpegProcess.start(args, what=f"decoding {path.name}", stdout=True)
    frame_bytes = width * height * 3
    try:
        while True:
            buffer = bytearray(frame_bytes)
            got = _read_exact(proc.stdout, buffer, timeout_s, f"decoding {path.name}")
            if got == 0:
                break
            if got < frame_bytes:
                proc.finish(timeout_s)
                raise MediaError(f"decoding {path.name}: truncated frame ({got} of {frame_bytes} bytes)")
            yield np.frombuffer(buffer, dtype=np.uint8).reshape(height, width, 3)
        proc.finish(timeout_s)
    finally:
        # Also runs when the consumer stops early (generator closed): ffmpeg must not outlive the iterator.
        proc.kill()


def iter_frames(
    path: Path,
    *,
    width: int | None = None,
    height: int | None = None,
    max_frames: int | None = None,
    timeout_s: float = 300.0,
    tools: FFmpegTools = DEFAULT_TOOLS,
    fps: float | None = None,
    fill: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the video's frames as uint8 RGB (H, W, 3) arrays, one at a time.

    Pass both `width` and `height` to resize every frame to exactly that size (`fill`: centre-cropped to
    that aspect ratio first). `fps` resamples to that frame rate first. `max_frames` stops decoding
    early. The file is probed now (MediaError for unreadable input); FFmpeg starts on the first `next()` and is
    killed if the consumer stops early. `timeout_s` bounds each wait for output and for FFmpeg's exit.
    """
    if (width is None) != (height is None):
        raise ValueError("pass both width and height to resize, or neither")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    path = Path(path)
    if width is None or height is None:
        info = probe(path, tools=tools)
        width, height = info.width, info.height
    elif width <= 0 or height <= 0:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    args = _decode_args(path, width, height, max_frames, tools, fps, fill)
    return _stream_frames(path, args, width, height, timeout_s)


def read_frames(
    path: Path,
    *,
    width: int | None = None,
    height: int | None = None,
    max_frames: int | None = None,
    tools: FFmpegTools = DEFAULT_TOOLS,
) -> np.ndarray:
    """All frames as one (F, H, W, 3) uint8 array. For short videos only; prefer `iter_frames` otherwise."""
    frames = list(iter_frames(path, width=width, height=height, max_frames=max_frames, tools=tools))
    if not frames:
        raise MediaError(f"decoding {Path(path).name}: the video has no frames")
    return np.stack(frames)


def write_thumbnail(
    video_path: Path, out_path: Path, *, max_side: int | None = None, tools: FFmpegTools = DEFAULT_TOOLS
) -> Path:
    """Save the first frame of a video as an image (JPEG for .jpg/.jpeg), atomically. Returns `out_path`.

    The frame goes through the same RGB decode as everything else, so colours match the video. `max_side`
    optionally shrinks it (aspect kept).
    """
    first = next(iter_frames(video_path, max_frames=1, tools=tools), None)
    if first is None:
        raise MediaError(f"thumbnail of {Path(video_path).name}: the video has no frames")
    image = frame_to_pil(first)
    if max_side is not None:
        image.thumbnail((max_side, max_side))
    return save_image(image, out_path)
