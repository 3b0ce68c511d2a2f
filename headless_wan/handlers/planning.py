"""Travel frame arithmetic (travel.md §3): the one place lengths are computed.

Every other travel component (orchestrator, guide builder, segment, stitch) takes its numbers from a
`TravelPlan` or a `GuideLayout`; none of them rounds or re-quantises on its own (pitfall P1).

Rules, exactly as specified:
- segment frames: `f' = (f // 4) * 4 + 1` (80 → 81, 82 → 81); the planner rejects f' < 5;
- overlaps: even, then capped by both neighbours (the cap can make them odd);
- targets: chained runs add the incoming overlap, then round *down* to 4n+1 (91 → 89);
- resolution: snapped down to multiples of 16;
- stitched length `L = Σ T − Σ o'`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from headless_wan.errors import InvalidTaskParams

MIN_SEGMENT_FRAMES = 5
"""Shorter segments crashed the predecessor's engine; 1–4 requested frames quantise below this."""
RESOLUTION_STEP = 16

_RESOLUTION = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def quantise_segment_frames(frames: int) -> int:
    """4n+1, rounding up by one for multiples of 4 (80 → 81) and down otherwise (83 → 81)."""
    return (frames // 4) * 4 + 1


def requantise_target(frames: int) -> int:
    """A target that is not 4n+1 rounds *down* to 4n+1 (91 → 89; differs from segment quantisation)."""
    if (frames - 1) % 4 == 0:
        return frames
    return ((frames - 1) // 4) * 4 + 1


def quantise_overlap(overlap: int, frames_before: int, frames_after: int) -> int:
    """Even, then capped by both quantised neighbours; never negative."""
    return max(0, min((overlap // 2) * 2, min(frames_before, frames_after)))


def snap_resolution(width: int, height: int) -> tuple[int, int]:
    """Snap down to multiples of 16 (902x508 → 896x496)."""
    return (width // RESOLUTION_STEP) * RESOLUTION_STEP, (height // RESOLUTION_STEP) * RESOLUTION_STEP


def parse_resolution(text: str, field: str = "parsed_resolution_wh") -> tuple[int, int]:
    """ "WxH" → the snapped (W', H'); InvalidTaskParams naming `field` when unusable."""
    match = _RESOLUTION.match(str(text))
    if match is None:
        raise InvalidTaskParams(f"{field}: expected 'WIDTHxHEIGHT' such as '896x496', got {text!r}")
    width, height = snap_resolution(int(match.group(1)), int(match.group(2)))
    if width < RESOLUTION_STEP or height < RESOLUTION_STEP:
        raise InvalidTaskParams(f"{field}: {text!r} is smaller than {RESOLUTION_STEP}x{RESOLUTION_STEP}")
    return width, height


def format_resolution(width: int, height: int) -> str:
    return f"{width}x{height}"


@dataclass(frozen=True)
class TravelPlan:
    """Quantised lengths of one travel run. `overlaps[i]` joins segment i and i+1."""

    segment_frames: tuple[int, ...]
    """f': quantised requested frames per segment."""
    overlaps: tuple[int, ...]
    """o': S−1 quantised overlaps."""
    targets: tuple[int, ...]
    """T: frames each segment actually generates."""
    chained: bool

    @property
    def num_segments(self) -> int:
        return len(self.segment_frames)

    @property
    def stitched_length(self) -> int:
        """Frames of the stitched video: Σ T − Σ o' (= Σ new frames)."""
        return sum(self.targets) - sum(self.overlaps)

    @property
    def timeline_length(self) -> int:
        """The predecessor's logged length, Σ f' − Σ o'; equals `stitched_length` only when T == f'."""
        return sum(self.segment_frames) - sum(self.overlaps)

    def overlap_from_previous(self, index: int) -> int:
        return self.overlaps[index - 1] if index > 0 else 0

    def overlap_with_next(self, index: int) -> int:
        return self.overlaps[index] if index < len(self.overlaps) else 0

    def new_frames(self, index: int) -> int:
        """Frames segment `index` adds to the stitched video."""
        return self.targets[index] - self.overlap_from_previous(index)


def segment_targets(
    segment_frames: Sequence[int], overlaps: Sequence[int], *, chained: bool
) -> tuple[int, ...]:
    """T from already quantised f' and o' (children call this; they never re-quantise)."""
    targets = [segment_frames[0]]
    for index in range(1, len(segment_frames)):
        incoming = overlaps[index - 1]
        extended = segment_frames[index] + incoming if chained and incoming > 0 else segment_frames[index]
        targets.append(requantise_target(extended))
    return tuple(targets)


def plan_travel(segment_frames: Sequence[int], overlaps: Sequence[int], *, chained: bool) -> TravelPlan:
    """Quantise requested per-segment frames (length S) and overlaps (length S−1) into a plan.

    Raises InvalidTaskParams naming the array for a non-positive or too-short segment, a negative
    overlap, or lengths that do not match.
    """
    count = len(segment_frames)
    if count < 1:
        raise InvalidTaskParams("segment_frames_expanded: at least one segment is needed")
    if len(overlaps) != count - 1:
        raise InvalidTaskParams(
            f"frame_overlap_expanded: {count} segments need {count - 1} overlap value(s), got {len(overlaps)}"
        )
    quantised = []
    for index, frames in enumerate(segment_frames):
        if frames < 1:
            raise InvalidTaskParams(
                f"segment_frames_expanded[{index}]: must be at least 1 frame, got {frames}"
            )
        value = quantise_segment_frames(frames)
        if value < MIN_SEGMENT_FRAMES:
            raise InvalidTaskParams(
                f"segment_frames_expanded[{index}]: {frames} frame(s) quantise to {value} (4n+1); "
                f"at least {MIN_SEGMENT_FRAMES} are needed"
            )
        quantised.append(value)
    for index, overlap in enumerate(overlaps):
        if overlap < 0:
            raise InvalidTaskParams(f"frame_overlap_expanded[{index}]: must not be negative, got {overlap}")
    quantised_overlaps = tuple(
        quantise_overlap(overlap, quantised[index], quantised[index + 1])
        for index, overlap in enumerate(overlaps)
    )
    return plan_from_quantised(quantised, quantised_overlaps, chained=chained)


def plan_from_quantised(
    segment_frames: Sequence[int], overlaps: Sequence[int], *, chained: bool
) -> TravelPlan:
    """A plan from values the orchestrator already quantised (as written into child payloads)."""
    if len(overlaps) != len(segment_frames) - 1:
        raise InvalidTaskParams(
            f"frame_overlap_expanded: {len(segment_frames)} segments need {len(segment_frames) - 1} "
            f"overlap value(s), got {len(overlaps)}"
        )
    targets = segment_targets(segment_frames, overlaps, chained=chained)
    plan = TravelPlan(tuple(segment_frames), tuple(overlaps), targets, chained)
    _check_plan(plan)
    return plan


def _check_plan(plan: TravelPlan) -> None:
    # The quantisation rules guarantee these; a failure here means an input bypassed them.
    for index, overlap in enumerate(plan.overlaps):
        if overlap > plan.targets[index] or (plan.chained and overlap >= plan.targets[index + 1]):
            raise InvalidTaskParams(
                f"frame_overlap_expanded[{index}]: overlap {overlap} leaves no new frames between segments "
                f"of {plan.targets[index]} and {plan.targets[index + 1]} frames"
            )


def expand_per_segment(values: object, count: int, field: str, *, allow_extra: int = 0) -> list[object]:
    """A per-segment array: a scalar or one-element list is repeated; otherwise exactly `count` entries
    (or `count + allow_extra`, of which the first `count` are used). Anything else names `field`."""
    if not isinstance(values, (list, tuple)):
        return [values] * count
    if len(values) == 1 and count != 1:
        return list(values) * count
    if count <= len(values) <= count + allow_extra:
        return list(values[:count])
    expected = f"{count}" if not allow_extra else f"{count} to {count + allow_extra}"
    raise InvalidTaskParams(f"{field}: expected {expected} entries (one per segment), got {len(values)}")


@dataclass(frozen=True)
class GuideLayout:
    """Which frames of a segment's VACE guide are fixed (mask 0) and which are generated (mask 255).

    Frames `0 .. overlap_frames−1` come from the predecessor's tail; frame 0 is the start anchor when
    there is no overlap; the last frame is the end anchor unless the journey has a single image.
    """

    num_frames: int
    overlap_frames: int = 0
    start_anchor: bool = True
    end_anchor: bool = True

    def kinds(self) -> list[str]:
        """One of "overlap", "start", "end", "grey" per frame (for tests and logs)."""
        out = ["grey"] * self.num_frames
        for index in range(self.overlap_frames):
            out[index] = "overlap"
        if self.start_anchor:
            out[0] = "start"
        if self.end_anchor:
            out[-1] = "end"
        return out


def guide_layout(
    target_frames: int, overlap_from_previous: int, *, chained: bool, has_end_image: bool
) -> GuideLayout:
    """The layout of one segment's guide.

    A chained segment with an incoming overlap conditions on the predecessor's last frames instead of a
    start image. A chained segment with zero overlap has nothing to continue from, so it takes the start
    image like an independent one (it is the frame the predecessor ended on).
    """
    if target_frames < 1:
        raise InvalidTaskParams(f"segment_frames_target: must be at least 1, got {target_frames}")
    overlap = overlap_from_previous if chained else 0
    if overlap >= target_frames:
        raise InvalidTaskParams(
            f"frame_overlap_from_previous: {overlap} leaves no frame to generate in a {target_frames}-frame segment"
        )
    return GuideLayout(
        num_frames=target_frames,
        overlap_frames=overlap,
        start_anchor=overlap == 0,
        end_anchor=has_end_image and target_frames > 1,
    )


def stitch_overlaps(requested: Sequence[int], lengths: Sequence[int]) -> list[int]:
    """Per join k: min(o'[k], len[k], len[k+1]) (real decoded lengths may differ from the plan)."""
    return [min(overlap, lengths[k], lengths[k + 1]) for k, overlap in enumerate(requested)]
