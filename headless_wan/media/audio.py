"""Audio under a finished video: probe for a track, mux one file's audio, or lay out spans of several.

The video stream is always copied (never re-encoded) and the audio is encoded to AAC, padded or cut to
exactly the video's duration; the frame count is checked after muxing, so audio can never shorten or
lengthen a video.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from headless_wan.errors import MediaError
from headless_wan.media.ffmpeg import DEFAULT_TOOLS, FFmpegTools, count_frames, local_arg, probe, run
from headless_wan.media.files import temp_sibling

AUDIO_RATE = 48000
"""Every span is resampled to this (stereo) so spans of different sources concatenate."""


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
    """Put `audio_source`'s first audio track (from `offset_s`) under `video`, in place. Returns False
    (video untouched) when the source has no audio."""
    if not has_audio(audio_source, tools=tools):
        return False
    inputs = ["-ss", f"{max(offset_s, 0.0):.6f}", "-i", local_arg(audio_source)]
    _mux(video, inputs, ["-map", "1:a:0", "-af", "apad"], tools=tools, timeout_s=timeout_s)
    return True


@dataclass(frozen=True)
class AudioSpan:
    """`duration_s` seconds of `path`'s first audio track from `start_s`; silence when `path` is None
    (or when the file has no audio)."""

    path: Path | None
    start_s: float
    duration_s: float


def mux_audio_spans(
    video: Path,
    spans: Sequence[AudioSpan],
    *,
    tools: FFmpegTools = DEFAULT_TOOLS,
    timeout_s: float = 300.0,
) -> bool:
    """Lay the spans end to end under `video`, in place (each exactly its duration: cut, or padded with
    silence when its source's audio ends early). Returns False (video untouched) when no span's file
    has audio."""
    audible = {path for path in {s.path for s in spans} if path is not None and has_audio(path, tools=tools)}
    if not audible:
        return False
    inputs: list[str] = []
    chains: list[str] = []
    fmt = f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"
    for index, span in enumerate(s for s in spans if s.duration_s > 0):
        duration = f"{span.duration_s:.6f}"
        if span.path in audible:
            inputs += ["-i", local_arg(span.path)]
            source = f"[{len(inputs) // 2}:a:0]atrim=start={max(span.start_s, 0.0):.6f}:duration={duration}"
            chains.append(f"{source},asetpts=PTS-STARTPTS,{fmt},apad=whole_dur={duration}[a{index}]")
        else:
            chains.append(f"aevalsrc=0:c=stereo:s={AUDIO_RATE}:d={duration},{fmt}[a{index}]")
    labels = "".join(f"[a{index}]" for index in range(len(chains)))
    graph = ";".join([*chains, f"{labels}concat=n={len(chains)}:v=0:a=1,apad[audio]"])
    _mux(video, inputs, ["-filter_complex", graph, "-map", "[audio]"], tools=tools, timeout_s=timeout_s)
    return True


def _mux(video: Path, inputs: list[str], audio: list[str], *, tools: FFmpegTools, timeout_s: float) -> None:
    frames = count_frames(video, tools=tools)
    duration = frames / probe(video, tools=tools).fps
    tmp = temp_sibling(video)
    args = [
        tools.ffmpeg, "-v", "error", "-y", "-protocol_whitelist", "file", "-i", local_arg(video), *inputs,
        "-map", "0:v:0", *audio, "-c:v", "copy", "-c:a", "aac",
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
