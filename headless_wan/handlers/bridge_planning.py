"""VACE bridge frame arithmetic: the one place join, edit and inpaint lengths are computed.

A bridge is one VACE generation whose guide is real context frames around a grey gap and whose mask keeps
the context and generates the gap. VACE needs 4n+1 frames, so every plan quantises
`context_before + gap + context_after` and says exactly how many frames the finished video has; the
handlers decode their output and compare (no component re-rounds on its own).

Assembly is a hard cut, not a crossfade: the finished video uses the *source's* frames up to the gap, the
generated frames of the gap only, then the source's frames again. The context frames steer the generation
but their regenerated copies are dropped, so frames outside a regenerated span come through unchanged
(up to one encode). This deviates from travel.md §10's crossfade of the context frames on purpose: the
edit and inpaint tasks promise untouched frames outside the portions.

Join (two clips A and B, `context_frame_count` C, `gap_frame_count` G):
- insert mode: nothing is trimmed; the contexts are A's last and B's first frames; the gap is new frames
  between them. Output `len A + len B + g`.
- replace mode: the gap's frames are taken from the clip boundaries (half from A's end, the rest from B's
  start; moved to the other clip when one is short, each clip keeping at least one frame); the contexts
  are the frames next to the removed ones. Output `len A + len B` (the gap replaces exactly what it took).
- quantisation: `total = ((C_b + G + C_a − 1) // 4) * 4 + 1` and the gap absorbs the rounding,
  `g = G − (desired − total)`; when that would leave no gap, it rounds up instead (`g + 4`).

Inpaint / edit (a window `[start, end)` of one video): the window's length is fixed (the output keeps the
source's length), so the *contexts* absorb the rounding (the one after the window first); when they
cannot, the bridge is generated longer and the surplus frames past the window's context are discarded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from headless_wan.errors import InvalidTaskParams

MIN_CLIP_FRAMES = 2
"""A clip gives a bridge at least one context frame and one frame of its own; one frame cannot be joined."""


def quantise_bridge(context_before: int, gap: int, context_after: int) -> tuple[int, int]:
    """(gap, total) for a bridge whose gap absorbs the 4n+1 rounding; the gap stays at least 1."""
    desired = context_before + gap + context_after
    total = ((desired - 1) // 4) * 4 + 1
    absorbed = gap - (desired - total)
    if absorbed < 1:
        # Rounding down would erase the gap; round up instead (the gap grows by 4 − shift).
        total += 4
        absorbed += 4
    return absorbed, total


@dataclass(frozen=True)
class BridgePlan:
    """One join of clip A (before) and clip B (after), as frame counts."""

    len_a: int
    len_b: int
    context_before: int
    """Frames of A in the guide, kept by the mask."""
    gap: int
    """Grey, generated frames in the guide (after quantisation)."""
    context_after: int
    """Frames of B in the guide, kept by the mask."""
    trim_a: int
    """Frames removed from A's end (replace mode), regenerated as part of the gap."""
    trim_b: int
    """Frames removed from B's start (replace mode)."""
    replace_mode: bool
    requested_gap: int

    @property
    def total(self) -> int:
        """Frames VACE generates: always 4n+1."""
        return self.context_before + self.gap + self.context_after

    @property
    def a_context_start(self) -> int:
        """Index in A of the guide's first context frame."""
        return self.len_a - self.trim_a - self.context_before

    @property
    def b_context_start(self) -> int:
        """Index in B of the guide's first context frame after the gap."""
        return self.trim_b

    @property
    def output_frames(self) -> int:
        """Frames of A kept + the generated gap + frames of B kept."""
        return (self.len_a - self.trim_a) + self.gap + (self.len_b - self.trim_b)


def _check_counts(context_frame_count: int, gap_frame_count: int, field: str) -> None:
    if context_frame_count < 1:
        raise InvalidTaskParams(f"{field}context_frame_count: must be at least 1, got {context_frame_count}")
    if gap_frame_count < 1:
        raise InvalidTaskParams(f"{field}gap_frame_count: must be at least 1, got {gap_frame_count}")


def _check_clip(length: int, name: str) -> None:
    if length < MIN_CLIP_FRAMES:
        raise InvalidTaskParams(
            f"{name}: a clip needs at least {MIN_CLIP_FRAMES} frames to be joined, it has {length}"
        )


def split_gap(gap: int, len_a: int, len_b: int) -> tuple[int, int]:
    """Frames taken from A's end and B's start for a replace-mode gap: half each (A the smaller half),
    the excess moved to the other clip when one is short; each clip keeps at least one frame."""
    room_a, room_b = len_a - 1, len_b - 1
    if gap > room_a + room_b:
        raise InvalidTaskParams(
            f"gap_frame_count: replacing {gap} frames needs clips longer than {len_a} and {len_b} frames "
            f"(at most {room_a + room_b} can be replaced while each clip keeps one frame)"
        )
    take_a = min(gap // 2, room_a)
    take_b = gap - take_a
    if take_b > room_b:
        take_a += take_b - room_b
        take_b = room_b
    return take_a, take_b


def plan_bridge(
    len_a: int,
    len_b: int,
    context_frame_count: int,
    gap_frame_count: int,
    *,
    replace_mode: bool,
    field: str = "",
    clip_names: tuple[str, str] = ("clip A", "clip B"),
) -> BridgePlan:
    """Plan one join. `field` prefixes error messages (e.g. `per_join_settings[1].`)."""
    _check_counts(context_frame_count, gap_frame_count, field)
    _check_clip(len_a, clip_names[0])
    _check_clip(len_b, clip_names[1])
    if not replace_mode:
        before, after = min(context_frame_count, len_a), min(context_frame_count, len_b)
        gap, _total = quantise_bridge(before, gap_frame_count, after)
        return BridgePlan(len_a, len_b, before, gap, after, 0, 0, False, gap_frame_count)
    try:
        # Contexts are sized against the requested gap's trims; the quantised gap is never larger
        # (except the round-up case, checked below), so its trims leave at least that much room.
        take_a, take_b = split_gap(gap_frame_count, len_a, len_b)
        before = min(context_frame_count, len_a - take_a)
        after = min(context_frame_count, len_b - take_b)
        gap, _total = quantise_bridge(before, gap_frame_count, after)
        take_a, take_b = split_gap(gap, len_a, len_b)
    except InvalidTaskParams as error:
        raise InvalidTaskParams(f"{field}{error.message}") from None
    if before > len_a - take_a or after > len_b - take_b:
        raise InvalidTaskParams(
            f"{field}gap_frame_count: {gap_frame_count} replaced frames (rounded to {gap} for VACE's 4n+1) "
            f"leave too little context in clips of {len_a} and {len_b} frames"
        )
    return BridgePlan(len_a, len_b, before, gap, after, take_a, take_b, True, gap_frame_count)


@dataclass(frozen=True)
class JoinSpec:
    """What one join asks for (the orchestrator's value, or its per-join override)."""

    context_frame_count: int
    gap_frame_count: int
    replace_mode: bool


@dataclass(frozen=True)
class ClipSpan:
    """The frames `[start, end)` of clip `index` that appear in the joined video."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class ChainPlan:
    """N clips joined by N−1 bridges: output = span 0, gap 0, span 1, gap 1, ..., span N−1."""

    clip_lengths: tuple[int, ...]
    bridges: tuple[BridgePlan, ...]
    spans: tuple[ClipSpan, ...]

    @property
    def output_frames(self) -> int:
        return sum(span.frames for span in self.spans) + sum(bridge.gap for bridge in self.bridges)

    def bridge_a_offset(self, join: int) -> int:
        """Index in clip `join` where bridge `join`'s guide starts (its context before)."""
        return self.clip_lengths[join] - self.bridges[join].len_a + self.bridges[join].a_context_start


def _share(length: int, index: int, count: int) -> tuple[int, int]:
    """Frames of clip `index` a join may use as (B of the join before, A of the join after). An inner clip
    serves two joins, so each gets one half and their trims and contexts can never overlap."""
    if index == 0:
        return 0, length
    if index == count - 1:
        return length, 0
    return length // 2, length - length // 2


def plan_chain(clip_lengths: Sequence[int], joins: Sequence[JoinSpec]) -> ChainPlan:
    """Plan every join of a clip list at once (before any generation), with the exact output length."""
    count = len(clip_lengths)
    if count < 2:
        raise InvalidTaskParams(f"clip_list: at least two clips are needed to join, got {count}")
    if len(joins) != count - 1:
        raise InvalidTaskParams(f"per_join_settings: {count} clips make {count - 1} joins, got {len(joins)}")
    for index, length in enumerate(clip_lengths):
        _check_clip(length, f"clip_list[{index}]")
    bridges = []
    for join, spec in enumerate(joins):
        _, usable_a = _share(clip_lengths[join], join, count)
        usable_b, _ = _share(clip_lengths[join + 1], join + 1, count)
        bridges.append(
            plan_bridge(
                usable_a,
                usable_b,
                spec.context_frame_count,
                spec.gap_frame_count,
                replace_mode=spec.replace_mode,
                field=f"join {join} (clip_list[{join}] → clip_list[{join + 1}]): ",
                clip_names=(
                    f"clip_list[{join}] (its share for join {join})",
                    f"clip_list[{join + 1}] (its share)",
                ),
            )
        )
    spans = []
    for index, length in enumerate(clip_lengths):
        start = bridges[index - 1].trim_b if index > 0 else 0
        end = length - (bridges[index].trim_a if index < count - 1 else 0)
        spans.append(ClipSpan(index, start, end))
    return ChainPlan(tuple(clip_lengths), tuple(bridges), tuple(spans))


@dataclass(frozen=True)
class WindowPlan:
    """Replace frames `[start, end)` of one video by `gap` generated frames, from the context around them."""

    source_frames: int
    start: int
    end: int
    context_before: int
    gap: int
    """Generated frames that take the window's place (its own length for inpaint)."""
    context_after: int
    padding: int
    """Extra generated frames after the context (discarded) when the contexts cannot absorb the rounding."""

    @property
    def total(self) -> int:
        return self.context_before + self.gap + self.context_after + self.padding

    @property
    def guide_start(self) -> int:
        """Index in the source of the guide's first frame."""
        return self.start - self.context_before

    @property
    def output_frames(self) -> int:
        """The source's length with the window replaced by the gap."""
        return self.source_frames - (self.end - self.start) + self.gap


def _fit_window(start: int, end: int, before: int, after: int) -> tuple[int, int, int]:
    """Contexts (and padding) making `before + gap + after (+ padding)` 4n+1 with the gap unchanged."""
    surplus = (before + (end - start) + after - 1) % 4
    shrink_after = min(surplus, after - 1) if after > 0 else 0
    after -= shrink_after
    surplus -= shrink_after
    shrink_before = min(surplus, before - 1) if before > 0 else 0
    before -= shrink_before
    surplus -= shrink_before
    padding = (4 - surplus) % 4
    return before, after, padding


def plan_window(
    source_frames: int,
    start: int,
    end: int,
    context_frame_count: int,
    *,
    limits: tuple[int, int] | None = None,
    names: tuple[str, str, str] = ("inpaint_start_frame", "inpaint_end_frame", "gap_frame_count"),
    gap_frame_count: int | None = None,
) -> WindowPlan:
    """Plan one regenerated window. `limits` bounds the contexts (edit: the neighbouring portions).
    With `gap_frame_count` the window is replaced by that many new frames (the gap absorbing the 4n+1
    rounding, as in a join); without, by exactly its own length (the contexts absorb it)."""
    low, high = limits if limits is not None else (0, source_frames)
    if source_frames < MIN_CLIP_FRAMES:
        raise InvalidTaskParams(f"video: needs at least {MIN_CLIP_FRAMES} frames, has {source_frames}")
    if context_frame_count < 0:
        raise InvalidTaskParams(f"context_frame_count: must not be negative, got {context_frame_count}")
    if not 0 <= start < end <= source_frames:
        raise InvalidTaskParams(
            f"{names[0]}/{names[1]}: the window [{start}, {end}) must be non-empty and inside the video's "
            f"{source_frames} frames (0 ≤ start < end ≤ {source_frames})"
        )
    if start == 0 and end == source_frames:
        raise InvalidTaskParams(
            f"{names[0]}/{names[1]}: the window [{start}, {end}) covers the whole video; "
            "at least one frame must stay as context"
        )
    before = min(context_frame_count, start - low)
    after = min(context_frame_count, high - end)
    if gap_frame_count is not None:
        if gap_frame_count < 1:
            raise InvalidTaskParams(f"{names[2]}: must be at least 1, got {gap_frame_count}")
        gap, _total = quantise_bridge(before, gap_frame_count, after)
        return WindowPlan(source_frames, start, end, before, gap, after, 0)
    before, after, padding = _fit_window(start, end, before, after)
    return WindowPlan(source_frames, start, end, before, end - start, after, padding)


def plan_portions(
    source_frames: int, portions: Sequence[tuple[int, int, int | None]], context_frame_count: int
) -> tuple[WindowPlan, ...]:
    """Windows for an edit, from (start, end, gap_frame_count or None) portions: sorted, non-overlapping,
    inside the video; no context crosses into another portion (a context frame must be a kept frame)."""
    if not portions:
        raise InvalidTaskParams("portions_to_regenerate: at least one portion is needed")
    ordered = sorted(portions, key=lambda portion: (portion[0], portion[1]))
    for index, (start, end, _gap) in enumerate(ordered):
        if not 0 <= start < end <= source_frames:
            raise InvalidTaskParams(
                f"portions_to_regenerate: portion [{start}, {end}) must be non-empty and inside the video's "
                f"{source_frames} frames"
            )
        if index > 0 and start < ordered[index - 1][1]:
            raise InvalidTaskParams(
                f"portions_to_regenerate: portions [{ordered[index - 1][0]}, {ordered[index - 1][1]}) and "
                f"[{start}, {end}) overlap"
            )
    plans = []
    for index, (start, end, gap) in enumerate(ordered):
        low = ordered[index - 1][1] if index > 0 else 0
        high = ordered[index + 1][0] if index + 1 < len(ordered) else source_frames
        field = f"portions_to_regenerate[{index}]"
        names = (f"{field}.start_frame", f"{field}.end_frame", f"{field}.gap_frame_count")
        plans.append(
            plan_window(
                source_frames,
                start,
                end,
                context_frame_count,
                limits=(low, high),
                names=names,
                gap_frame_count=gap,
            )
        )
    return tuple(plans)
