"""Running ffmpeg and ffprobe: argument lists built by ffmpeg-python, bounded waits, stderr kept for errors.

Every failure surfaces as `MediaError` whose message ends with the last relevant stderr lines, so a failed task
explains itself without anyone re-running FFmpeg by hand. Commands are argument lists (never a shell), and input
files are opened with a `file`-only protocol whitelist: a downloaded "video" that is really an HLS or concat
playlist must not make FFmpeg fetch other URLs or read other local files.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import ffmpeg

from headless_wan.errors import MediaError

STDERR_TAIL_LINES = 6
_MAX_ERROR_CHARS = 1500
# Errors only: warnings about timestamps and the like would push the real cause out of the tail.
_GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error")
INPUT_PROTOCOLS = "file"


@dataclass(frozen=True)
class FFmpegTools:
    """Where the binaries live; the defaults resolve through PATH."""

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"


DEFAULT_TOOLS = FFmpegTools()


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file. Width and height are as displayed (rotation applied), like decoding."""

    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str


def fps_arg(fps: float) -> str:
    """The frame rate as an exact rational ("16/1", "2997/100"), so FFmpeg does no float rounding of its own."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def local_arg(path: Path) -> str:
    """Absolute, so a name starting with '-' or containing 'proto:' is never read as an option or protocol."""
    return os.fspath(Path(path).absolute())


def compile_args(stream: Any, tools: FFmpegTools = DEFAULT_TOOLS) -> list[str]:
    """The full ffmpeg argument list for an ffmpeg-python output stream (overwrites outputs)."""
    return list(stream.global_args(*_GLOBAL_ARGS).compile(cmd=tools.ffmpeg, overwrite_output=True))


def stderr_tail(stderr: bytes | str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last non-empty stderr lines joined with ' | ', bounded in length."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    tail = " | ".join(kept[-lines:])
    return tail[-_MAX_ERROR_CHARS:]


def failure(what: str, returncode: int | None, stderr: bytes | str) -> MediaError:
    """A MediaError naming the operation, how the process ended and its last stderr lines."""
    if returncode is None:
        how = "did not finish"
    elif returncode < 0:
        how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    tail = stderr_tail(stderr)
    return MediaError(f"{what}: ffmpeg {how}" + (f": {tail}" if tail else " (no error output)"))


def run(args: list[str], *, what: str, timeout_s: float) -> bytes:
    """Run a command to completion and return its stdout; MediaError on failure, timeout or missing binary."""
    try:
        done = subprocess.run(
            args, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise MediaError(f"{what}: executable not found: {args[0]}") from None
    except subprocess.TimeoutExpired as exc:
        raise MediaError(
            f"{what}: timed out after {timeout_s:g} s: {stderr_tail(exc.stderr or b'')}"
        ) from None
    if done.returncode != 0:
        raise failure(what, done.returncode, done.stderr)
    return done.stdout


class FFmpegProcess:
    """A running ffmpeg fed through stdin or read through stdout.

    stderr goes to a temporary file rather than a pipe: nobody reads a pipe while frames stream, and a full
    pipe would block FFmpeg forever.
    """

    def __init__(self, popen: subprocess.Popen[bytes], stderr_file: IO[bytes], what: str) -> None:
        self._popen = popen
        self._stderr = stderr_file
        self.what = what

    @classmethod
    def start(cls, args: list[str], *, what: str, stdin: bool = False, stdout: bool = False) -> FFmpegProcess:
        stderr_file = tempfile.TemporaryFile()
        try:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=stderr_file,
            )
        except FileNotFoundError:
            stderr_file.close()
            raise MediaError(f"{what}: executable not found: {args[0]}") from None
        except BaseException:
            stderr_file.close()
            raise
        return cls(popen, stderr_file, what)

    @property
    def stdin(self) -> IO[bytes]:
        assert self._popen.stdin is not None
        return self._popen.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self._popen.stdout is not None
        return self._popen.stdout

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def error(self, detail: str | None = None) -> MediaError:
        """A MediaError for this process (its exit state and stderr), optionally with a leading detail."""
        what = f"{self.what}: {detail}" if detail else self.what
        return failure(what, self._popen.poll(), self.stderr_text())

    def finish(self, timeout_s: float) -> None:
        """Close stdin, wait for a clean exit; MediaError on timeout or a non-zero status."""
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg already exited; its status and stderr say why
        try:
            self._popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise MediaError(f"{self.what}: timed out after {timeout_s:g} s") from None
        if self._popen.returncode != 0:
            raise self.error()

    def kill(self) -> None:
        """Stop the process if it still runs, reap it and release its pipes; safe to call more than once."""
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()
        for pipe in (self._popen.stdin, self._popen.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass  # closing flushes buffered input to a process that is gone
        if not self._stderr.closed:
            self._stderr.close()


def _ffprobe_json(path: Path, extra: list[str], *, what: str, tools: FFmpegTools, timeout_s: float) -> Any:
    args = [
        tools.ffprobe,
        "-v",
        "error",
        "-protocol_whitelist",
        INPUT_PROTOCOLS,
        "-select_streams",
        "v:0",
        *extra,
        "-of",
        "json",
        local_arg(path),
    ]
    out = run(args, what=what, timeout_s=timeout_s)
    streams = json.loads(out or b"{}").get("streams") or []
    if not streams:
        raise MediaError(f"{what}: no video stream in {Path(path).name}")
    return streams[0]


def _parse_rate(text: str | None) -> float:
    try:
        rate = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(rate)


def _rotation(stream: dict[str, Any]) -> int:
    """Display rotation in degrees; phone videos carry it as side data (or an old 'rotate' tag)."""
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"]))
    return int(float((stream.get("tags") or {}).get("rotate", 0)))


def probe(path: Path, *, tools: FFmpegTools = DEFAULT_TOOLS, timeout_s: float = 30.0) -> VideoInfo:
    """Describe the first video stream of `path` via `ffprobe -show_streams` (JSON).

    fps is the average frame rate, falling back to the nominal one. Raises MediaError for unreadable files or
    files without video.
    """
    stream = _ffprobe_json(
        path, ["-show_streams"], what=f"probing {Path(path).name}", tools=tools, timeout_s=timeout_s
    )
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError(f"probing {Path(path).name}: video stream has no frame size")
    if _rotation(stream) % 180 != 0:
        width, height = height, width
    fps = _parse_rate(stream.get("avg_frame_rate")) or _parse_rate(stream.get("r_frame_rate"))
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        codec=str(stream.get("codec_name") or ""),
        pix_fmt=str(stream.get("pix_fmt") or ""),
    )


def count_frames(path: Path, *, tools: FFmpegTools = DEFAULT_TOOLS, timeout_s: float = 300.0) -> int:
    """The exact number of video frames, counted by decoding (`ffprobe -count_frames`).

    Container metadata (and OpenCV's CAP_PROP_FRAME_COUNT) can disagree with what actually decodes.
    """
    what = f"counting frames of {Path(path).name}"
    stream = _ffprobe_json(
        path,
        ["-count_frames", "-show_entries", "stream=nb_read_frames"],
        what=what,
        tools=tools,
        timeout_s=timeout_s,
    )
    try:
        return int(stream["nb_read_frames"])
    except (KeyError, TypeError, ValueError):
        raise MediaError(f"{what}: ffprobe reported no frame count") from None


def make_input(path: Path, **kwargs: Any) -> Any:
    """An ffmpeg-python input for a local file, restricted to the file protocol."""
    return ffmpeg.input(local_arg(path), protocol_whitelist=INPUT_PROTOCOLS, **kwargs)
