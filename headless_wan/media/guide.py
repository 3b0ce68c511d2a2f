"""VACE guide video and mask for one travel segment (travel.md §5.4).

The guide starts all grey (128) with a white mask (255 = generate); fixed frames (predecessor overlap,
start and end anchors) get their pixels and a black mask (0 = keep). Guides and masks stay in memory as
uint8 arrays and are never round-tripped through a lossy encoder: compression would shift the grey and
soften the mask's edges.

The layout (which frame is what) comes from `handlers.planning.GuideLayout`; this module only paints.
Everything here is RGB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from headless_wan.errors import MediaError
from headless_wan.media.video_io import iter_frames

GUIDE_GREY = 128
MASK_KEEP = 0
MASK_GENERATE = 255
# BT.709 luma weights: the same matrix the encoder tags outputs with.
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


class Layout(Protocol):
    """What `build_guide` needs from a `GuideLayout` (kept structural: media does not import handlers)."""

    num_frames: int
    overlap_frames: int
    start_anchor: bool
    end_anchor: bool


@dataclass(frozen=True, eq=False)
class Guide:
    frames: np.ndarray
    """uint8 RGB, (T, H, W, 3)."""
    mask: np.ndarray
    """uint8, (T, H, W), exactly 0 (keep) or 255 (generate)."""


@dataclass(frozen=True)
class OverlapAdjust:
    """Optional tweaks of the predecessor frames (all 0 = off, the app's values)."""

    strength_adjustment: float = 0.0
    desaturate: float = 0.0
    brightness: float = 0.0

    @property
    def is_noop(self) -> bool:
        return self.strength_adjustment == 0 and self.desaturate == 0 and self.brightness == 0


def fit_image(image: Image.Image, width: int, height: int) -> np.ndarray:
    """An anchor image as an RGB frame of exactly width x height (Lanczos, stretched like the predecessor)."""
    rgb = image.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), resample=Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def fit_frame_area(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A video frame resized with area interpolation (only when its size differs)."""
    if frame.shape[:2] == (height, width):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def adjust_overlap_frame(frame: np.ndarray, adjust: OverlapAdjust) -> np.ndarray:
    """Strength (fade toward grey), then desaturation (toward BT.709 luma), then brightness."""
    if adjust.is_noop:
        return frame
    out = frame.astype(np.float32)
    strength = float(np.clip(1.0 + adjust.strength_adjustment, 0.0, 1.0))
    out = GUIDE_GREY * (1.0 - strength) + out * strength
    if adjust.desaturate:
        luma = (out @ LUMA_WEIGHTS)[..., None]
        out = out * (1.0 - adjust.desaturate) + luma * adjust.desaturate
    if adjust.brightness:
        out = out * (1.0 + adjust.brightness)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def build_guide(
    layout: Layout,
    width: int,
    height: int,
    *,
    start: np.ndarray | None = None,
    end: np.ndarray | None = None,
    overlap: Sequence[np.ndarray] = (),
    adjust: OverlapAdjust = OverlapAdjust(),
) -> Guide:
    """Paint the guide and mask of one segment.

    `overlap` must hold exactly `layout.overlap_frames` predecessor frames (resized here with area
    interpolation if needed); `start`/`end` are anchor frames already at width x height (see `fit_image`),
    required when the layout uses them. Raises ValueError for inputs that do not match the layout.
    """
    if len(overlap) != layout.overlap_frames:
        raise ValueError(f"layout needs {layout.overlap_frames} overlap frames, got {len(overlap)}")
    frames = np.full((layout.num_frames, height, width, 3), GUIDE_GREY, dtype=np.uint8)
    mask = np.full((layout.num_frames, height, width), MASK_GENERATE, dtype=np.uint8)
    for index, frame in enumerate(overlap):
        frames[index] = adjust_overlap_frame(fit_frame_area(frame, width, height), adjust)
        mask[index] = MASK_KEEP
    if layout.start_anchor:
        _place(frames, mask, 0, start, width, height, "start")
    if layout.end_anchor:
        _place(frames, mask, layout.num_frames - 1, end, width, height, "end")
    return Guide(frames, mask)


def _place(
    frames: np.ndarray,
    mask: np.ndarray,
    index: int,
    image: np.ndarray | None,
    width: int,
    height: int,
    name: str,
) -> None:
    if image is None:
        raise ValueError(f"the layout needs a {name} anchor image")
    if image.shape != (height, width, 3):
        raise ValueError(f"{name} anchor is shaped {image.shape}, expected ({height}, {width}, 3)")
    frames[index] = image
    mask[index] = MASK_KEEP


@dataclass(frozen=True, eq=False)
class VideoTail:
    frames: list[np.ndarray]
    """The last frames, oldest first, at the requested size."""
    total_frames: int
    """Frames the whole video decoded to (counted, not read from metadata)."""


def read_tail(path: Path, count: int, width: int, height: int) -> VideoTail:
    """Decode a whole video, keeping only its last `count` frames (memory: `count` frames).

    Frames are decoded at their own size and resized with area interpolation. Raises MediaError when the
    video has fewer than `count` frames.
    """
    kept: deque[np.ndarray] = deque(maxlen=max(count, 0))
    total = 0
    for frame in iter_frames(path):
        total += 1
        if count:
            kept.append(frame)
    if total < count:
        raise MediaError(f"{Path(path).name} has {total} frames; the overlap needs its last {count}")
    return VideoTail([fit_frame_area(frame, width, height) for frame in kept], total)


def post_process(frame: np.ndarray, saturation: float, brightness: float) -> np.ndarray:
    """Segment post-processing (travel.md §7): chroma scaled around BT.709 luma by `saturation`, then
    `frame · (1 + brightness)`, each only when it is not a no-op; one rounding at the end."""
    change_saturation = saturation >= 0 and abs(saturation - 1.0) > 1e-6
    change_brightness = abs(brightness) > 1e-6
    if not change_saturation and not change_brightness:
        return frame
    out = frame.astype(np.float32)
    if change_saturation:
        luma = (out @ LUMA_WEIGHTS)[..., None]
        out = np.clip(luma + saturation * (out - luma), 0.0, 255.0)
    if change_brightness:
        out = out * (1.0 + brightness)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
