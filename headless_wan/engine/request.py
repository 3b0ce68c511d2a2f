"""GenerationRequest: one video (or one image) to generate, checked before any compute.

The pipeline rounds, warns or silently shrinks where we need errors (engine.md §3), so every rule
is enforced here and the pipeline never gets a chance to "fix" a request:

- width and height: multiples of 16, at least 16, within the preset's pixel budget;
- num_frames: 4n + 1 (1 for a single image), within the preset's limit;
- guide video: exactly num_frames RGB frames; mask: needs the guide, exactly num_frames frames of
  the guide's size with values strictly 0 (keep) or 255 (generate);
- reference images: PIL images (at most 4);
- seed, steps, guidance, conditioning scale within range; LoRA multipliers parse for the schedule;
- family rules (which inputs a model kind needs or cannot use): `engine/families/*`.

Sizing rule (the only one): a guide or mask frame whose size differs from width x height is
centre-cropped to the target aspect ratio and then resized to exactly width x height (Lanczos for
the guide, nearest for the mask so it stays strictly 0/255). `fit_frames` implements it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from headless_wan.engine.loras import LoraSpec
from headless_wan.engine.phases import PhaseConfig
from headless_wan.errors import InvalidTaskParams

MAX_REFERENCE_IMAGES = 4
MAX_STEPS = 200
MAX_GUIDANCE = 30.0
MAX_SEED = 2**63 - 1


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """Frozen inputs of one generation. Arrays are uint8: guide (F, H, W, 3), mask (F, H, W).

    `None` for steps / guidance / flow_shift / solver / negative_prompt means the preset's default;
    `phases` (a parsed phase_config) replaces steps and guidance when given. `model` is the name
    the task asked for (a preset name or a Reigh alias); the engine resolves it.
    Family inputs: VACE takes guide / mask / reference_images / conditioning_scale (None = 1.0);
    image-to-video takes start_image and optionally end_image (PIL images or uint8 (H, W, 3)).
    """

    model: str
    prompt: str
    width: int
    height: int
    num_frames: int
    seed: int = 12345
    negative_prompt: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    guidance_scale_2: float | None = None
    flow_shift: float | None = None
    solver: str | None = None
    phases: PhaseConfig | None = None
    loras: tuple[LoraSpec, ...] = ()
    guide: np.ndarray | None = None
    mask: np.ndarray | None = None
    reference_images: tuple[Any, ...] = ()
    conditioning_scale: float | None = None
    start_image: Any = None
    end_image: Any = None


def validate_request(request: GenerationRequest, *, max_pixels: int, max_frames: int) -> None:
    """Raise `InvalidTaskParams` naming the field for the first broken rule."""
    _check_size(request, max_pixels)
    _check_frames(request.num_frames, max_frames)
    _check_numbers(request)
    _check_guide_and_mask(request)
    _check_references(request.reference_images)
    _check_loras(request.loras)
    if not isinstance(request.prompt, str):
        raise InvalidTaskParams("prompt: must be a string")


def _check_size(request: GenerationRequest, max_pixels: int) -> None:
    for field, value in (("width", request.width), ("height", request.height)):
        if not _is_int(value) or value < 16 or value % 16:
            raise InvalidTaskParams(f"{field}: must be a multiple of 16 and at least 16 (got {value!r})")
    if request.width * request.height > max_pixels:
        raise InvalidTaskParams(
            f"resolution: {request.width}x{request.height} exceeds this model's limit of {max_pixels} pixels"
        )


def _check_frames(num_frames: Any, max_frames: int) -> None:
    if not _is_int(num_frames) or num_frames < 1 or (num_frames - 1) % 4:
        raise InvalidTaskParams(f"num_frames: must be of the form 4n+1 (1, 5, ..., 81; got {num_frames!r})")
    if num_frames > max_frames:
        raise InvalidTaskParams(f"num_frames: {num_frames} exceeds this model's limit of {max_frames}")


def _check_numbers(request: GenerationRequest) -> None:
    if not _is_int(request.seed) or not 0 <= request.seed <= MAX_SEED:
        raise InvalidTaskParams(f"seed: must be an integer in [0, 2^63) (got {request.seed!r})")
    if request.steps is not None and (not _is_int(request.steps) or not 1 <= request.steps <= MAX_STEPS):
        raise InvalidTaskParams(f"steps: must be an integer in [1, {MAX_STEPS}] (got {request.steps!r})")
    for field in ("guidance_scale", "guidance_scale_2"):
        value = getattr(request, field)
        if value is not None and not _in_range(value, 0.0, MAX_GUIDANCE):
            raise InvalidTaskParams(f"{field}: must be a number in [0, {MAX_GUIDANCE}] (got {value!r})")
    if request.flow_shift is not None and not _in_range(request.flow_shift, 1e-3, 100.0):
        raise InvalidTaskParams(f"flow_shift: must be a number in (0, 100] (got {request.flow_shift!r})")
    if request.solver is not None and request.solver not in ("unipc", "euler"):
        raise InvalidTaskParams(f"sample_solver: {request.solver!r} is not supported (unipc, euler)")
    scale = request.conditioning_scale
    if scale is not None and not _in_range(scale, 0.0, 10.0):
        raise InvalidTaskParams(
            f"conditioning_scale: must be a number in [0, 10] (got {request.conditioning_scale!r})"
        )


def _check_guide_and_mask(request: GenerationRequest) -> None:
    guide, mask = request.guide, request.mask
    if guide is not None:
        if (
            not isinstance(guide, np.ndarray)
            or guide.dtype != np.uint8
            or guide.ndim != 4
            or guide.shape[3] != 3
        ):
            raise InvalidTaskParams("video_guide: must be uint8 RGB frames shaped (frames, height, width, 3)")
        if guide.shape[0] != request.num_frames:
            raise InvalidTaskParams(
                f"video_guide: has {guide.shape[0]} frames; exactly num_frames={request.num_frames} are needed"
            )
    if mask is None:
        return
    if guide is None:
        raise InvalidTaskParams("video_mask: a mask needs a video_guide")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 3:
        raise InvalidTaskParams("video_mask: must be uint8 frames shaped (frames, height, width)")
    if mask.shape[0] != request.num_frames:
        raise InvalidTaskParams(
            f"video_mask: has {mask.shape[0]} frames; exactly num_frames={request.num_frames} are needed"
        )
    if mask.shape[1:] != guide.shape[1:3]:
        raise InvalidTaskParams(
            f"video_mask: frames are {mask.shape[2]}x{mask.shape[1]} but the guide's are "
            f"{guide.shape[2]}x{guide.shape[1]}"
        )
    if np.any((mask != 0) & (mask != 255)):
        raise InvalidTaskParams("video_mask: values must be exactly 0 (keep) or 255 (generate)")


def _check_references(images: Sequence[Any]) -> None:
    from PIL import Image

    if len(images) > MAX_REFERENCE_IMAGES:
        raise InvalidTaskParams(f"image_refs: at most {MAX_REFERENCE_IMAGES} reference images")
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise InvalidTaskParams(f"image_refs[{index}]: must be a PIL image")


def _check_loras(loras: Sequence[LoraSpec]) -> None:
    seen: set[str] = set()
    for index, lora in enumerate(loras):
        if not isinstance(lora, LoraSpec) or not lora.source.strip():
            raise InvalidTaskParams(f"loras[{index}]: needs a source (URL or path)")
        if lora.source in seen:
            raise InvalidTaskParams(f"loras[{index}]: {lora.source!r} is listed twice")
        seen.add(lora.source)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _in_range(value: Any, low: float, high: float) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def fit_frames(frames: np.ndarray, width: int, height: int, *, is_mask: bool) -> list[Any]:
    """Frames as PIL images of exactly width x height (centre crop to aspect, then resize)."""
    from PIL import Image

    resample = Image.Resampling.NEAREST if is_mask else Image.Resampling.LANCZOS
    box = _centre_crop_box(frames.shape[2], frames.shape[1], width, height)
    out = []
    for frame in frames:
        image = Image.fromarray(np.ascontiguousarray(frame))  # (H, W) -> "L", (H, W, 3) -> "RGB"
        if image.size != (width, height):
            image = image.resize((width, height), resample=resample, box=box)
        out.append(image)
    return out


def _centre_crop_box(src_w: int, src_h: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The largest centred source box with the target's aspect ratio."""
    target = width / height
    if src_w / src_h > target:
        crop_w = src_h * target
        left = (src_w - crop_w) / 2
        return (left, 0.0, left + crop_w, float(src_h))
    crop_h = src_w / target
    top = (src_h - crop_h) / 2
    return (0.0, top, float(src_w), top + crop_h)
