"""Shared steps of the VACE bridge handlers (join segment, inpaint): configuration, conforming inputs,
one bridge generation on the engine, and sizing its frames for assembly."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from headless_wan.domain.join_params import BridgeGeneration
from headless_wan.engine import GenerationRequest, LoraSpec, parse_phase_config
from headless_wan.errors import HeadlessWanError, InputUnavailable, InvalidTaskParams, MediaError
from headless_wan.handlers import planning
from headless_wan.handlers.base import TaskContext
from headless_wan.handlers.segment_generation import SegmentEngine, run_engine
from headless_wan.handlers.travel_inputs import TravelConfig, fetch_input
from headless_wan.media.bridge import SourceSpan, read_span
from headless_wan.media.fetch import fetch
from headless_wan.media.ffmpeg import VideoInfo, probe
from headless_wan.media.guide import Guide
from headless_wan.media.video_io import iter_frames

VACE = "vace"


@dataclass(frozen=True)
class JoinConfig:
    """Input rules (the travel ones: download caps, local inputs, trusted queue outputs) plus the cap on
    clips per join (`HW_MAX_JOIN_CLIPS`)."""

    inputs: TravelConfig = field(default_factory=TravelConfig)
    max_join_clips: int = 32

    @property
    def fetcher(self) -> Any:
        return functools.partial(fetch, allow_local=self.inputs.allow_local_inputs)


@dataclass(frozen=True)
class Conform:
    """How every clip of a run is read: the output size (centre-cropped to it) and, when set, the fps.
    Planner and children read through the same filters, so the frame counts they see agree."""

    width: int
    height: int
    fps: float | None
    fill: bool = True

    def count(self, path: Path) -> int:
        """Frames the clip has once conformed (decoded, not read from metadata)."""
        frames = iter_frames(path, width=self.width, height=self.height, fps=self.fps, fill=self.fill)
        return sum(1 for _ in frames)

    def span(self, path: Path, start: int, count: int) -> list[np.ndarray]:
        return read_span(path, start, count, self.width, self.height, fps=self.fps, fill=self.fill)

    def source(self, path: Path, start: int, end: int) -> SourceSpan:
        return SourceSpan(path, start, end, fps=self.fps, fill=self.fill)

    def played_span(self, path: Path, start: int, count: int, *, reverse: bool) -> list[np.ndarray]:
        """`span`, with `start` counted in the clip as played (backwards when `reverse`)."""
        if not reverse:
            return self.span(path, start, count)
        length = self.count(path)
        return self.span(path, length - start - count, count)[::-1]

    def played_source(self, path: Path, start: int, end: int, *, reverse: bool) -> SourceSpan:
        """`source`, with `[start, end)` counted in the clip as played (backwards when `reverse`)."""
        if not reverse:
            return self.source(path, start, end)
        length = self.count(path)
        return SourceSpan(path, length - end, length - start, fps=self.fps, fill=self.fill, reverse=True)


def fetch_video(
    source: str, folder: Path, config: JoinConfig, *, field: str, filename: str
) -> tuple[Path, VideoInfo]:
    """Download (or copy, when allowed) a video and probe it; an undecodable file names the field."""
    path = fetch_input(source, folder, config.inputs, field=field, filename=filename)
    try:
        return path, probe(path)
    except HeadlessWanError as exc:
        raise InputUnavailable(f"{field}: not a readable video: {exc}") from None


def bridge_size(requested: tuple[int, int] | None, info: VideoInfo, field: str) -> tuple[int, int]:
    """The generation size: the requested one or the source's, snapped down to multiples of 16."""
    width, height = requested if requested is not None else (info.width, info.height)
    if width < planning.RESOLUTION_STEP or height < planning.RESOLUTION_STEP:
        raise InvalidTaskParams(f"{field}: {width}x{height} is smaller than 16x16")
    return planning.snap_resolution(width, height)


def check_vace(engine: SegmentEngine, model: str) -> None:
    family = engine.family(model)
    if family != VACE:
        raise InvalidTaskParams(f"model: a bridge needs a VACE model; {model} is a {family} model")


def generate_bridge(
    engine: SegmentEngine,
    ctx: TaskContext,
    gen: BridgeGeneration,
    guide: Guide,
    *,
    fetcher: Any,
    seed: int | None = None,
    prompt: str | None = None,
) -> tuple[np.ndarray, Any]:
    """One VACE generation over the guide; returns (frames, engine result). The frame count must be the
    guide's (the plan's), else MediaError."""
    total, height, width = guide.frames.shape[:3]
    request = GenerationRequest(
        model=gen.model,
        prompt=(prompt if prompt is not None else gen.prompt).strip() or " ",
        negative_prompt=gen.negative_prompt.strip() or None,
        width=width,
        height=height,
        num_frames=total,
        seed=_concrete_seed(seed if seed is not None else gen.seed),
        steps=gen.num_inference_steps if gen.phase_config is None else None,
        guidance_scale=gen.guidance_scale if gen.phase_config is None else None,
        phases=parse_phase_config(gen.phase_config) if gen.phase_config else None,
        loras=tuple(LoraSpec(source, multiplier) for source, multiplier in gen.loras()),
        guide=guide.frames,
        mask=guide.mask,
    )
    engine.validate(request)
    result = run_engine(engine, ctx, request, fetcher, gen.model)
    if result.frames.shape[0] != total:
        raise MediaError(f"the engine returned {result.frames.shape[0]} frames, the bridge plans {total}")
    return result.frames, result


def _concrete_seed(seed: int) -> int:
    """-1 (the app's default) means random, as for `generate_video`; the sidecar records the one used."""
    return seed if seed >= 0 else random.SystemRandom().randrange(2**31)


def resize_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Generated frames at the assembly size (area when shrinking, cubic when growing)."""
    if frames.shape[1:3] == (height, width):
        return frames
    shrink = width * height < frames.shape[1] * frames.shape[2]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(frame, (width, height), interpolation=interpolation) for frame in frames])
