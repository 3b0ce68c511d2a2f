"""Travel frame arithmetic: the spec's vectors (travel.md §3.2–3.5) and property-based invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers import planning

QUANTISATION = [
    # f, segment quantisation, target re-quantisation (travel.md §3.2)
    (1, 1, 1),
    (4, 5, 1),
    (16, 17, 13),
    (17, 17, 17),
    (33, 33, 33),
    (80, 81, 77),
    (81, 81, 81),
    (82, 81, 81),
    (83, 81, 81),
    (84, 85, 81),
    (85, 85, 85),
]


@pytest.mark.parametrize(("frames", "segment", "target"), QUANTISATION)
def test_quantisation_table(frames: int, segment: int, target: int) -> None:
    assert planning.quantise_segment_frames(frames) == segment
    assert planning.requantise_target(frames) == target


VECTORS = [
    # frames, overlaps, f', o', T independent, T chained, stitched (chained)
    ([81, 81], [10], [81, 81], [10], [81, 81], [81, 89], 160),  # example A
    ([80, 45, 22], [15, 60], [81, 45, 21], [14, 21], [81, 45, 21], [81, 57, 41], 144),  # example B
    ([81, 81], [0], [81, 81], [0], [81, 81], [81, 81], 162),
    ([33, 17], [40], [33, 17], [17], [33, 17], [33, 33], 49),
    ([61, 61, 61], [10, 10], [61, 61, 61], [10, 10], [61, 61, 61], [61, 69, 69], 179),
    ([4, 82, 100], [3, 7], [5, 81, 101], [2, 6], [5, 81, 101], [5, 81, 105], 183),
]


@pytest.mark.parametrize(("frames", "overlaps", "fq", "oq", "t_ind", "t_chain", "stitched"), VECTORS)
def test_spec_vectors(
    frames: list[int],
    overlaps: list[int],
    fq: list[int],
    oq: list[int],
    t_ind: list[int],
    t_chain: list[int],
    stitched: int,
) -> None:
    independent = planning.plan_travel(frames, overlaps, chained=False)
    chained = planning.plan_travel(frames, overlaps, chained=True)
    assert list(independent.segment_frames) == fq == list(chained.segment_frames)
    assert list(independent.overlaps) == oq == list(chained.overlaps)
    assert list(independent.targets) == t_ind
    assert list(chained.targets) == t_chain
    assert chained.stitched_length == stitched


def test_example_a_timeline_differs_from_the_stitched_length() -> None:
    plan = planning.plan_travel([81, 81], [10], chained=True)
    assert plan.timeline_length == 152
    assert plan.stitched_length == 160
    assert [plan.new_frames(i) for i in range(2)] == [81, 79]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("902x508", (896, 496)), ("853x480", (848, 480)), ("1920x1080", (1920, 1072)), ("64X64", (64, 64))],
)
def test_resolution_snaps_down_to_16(text: str, expected: tuple[int, int]) -> None:
    assert planning.parse_resolution(text) == expected


@pytest.mark.parametrize("text", ["", "902", "axb", "10x10", "-64x64"])
def test_bad_resolution_names_the_field(text: str) -> None:
    with pytest.raises(InvalidTaskParams, match="parsed_resolution_wh"):
        planning.parse_resolution(text)


@pytest.mark.parametrize(
    ("frames", "overlaps", "message"),
    [
        ([0, 17], [4], r"segment_frames_expanded\[0\]: must be at least 1 frame, got 0"),
        ([17, -3], [4], r"segment_frames_expanded\[1\]: must be at least 1 frame"),
        ([17, 3], [4], r"segment_frames_expanded\[1\]: 3 frame\(s\) quantise to 1 .*at least 5"),
        ([17, 17], [-2], r"frame_overlap_expanded\[0\]: must not be negative"),
        ([17, 17], [4, 4], r"frame_overlap_expanded: 2 segments need 1 overlap value\(s\), got 2"),
        ([], [], r"at least one segment"),
    ],
)
def test_invalid_plans_fail_with_clear_messages(frames: list[int], overlaps: list[int], message: str) -> None:
    with pytest.raises(InvalidTaskParams, match=message):
        planning.plan_travel(frames, overlaps, chained=True)


def test_expand_per_segment() -> None:
    assert planning.expand_per_segment(7, 3, "f") == [7, 7, 7]
    assert planning.expand_per_segment([7], 3, "f") == [7, 7, 7]
    assert planning.expand_per_segment([1, 2, 3], 2, "f", allow_extra=1) == [1, 2]
    with pytest.raises(InvalidTaskParams, match=r"f: expected 3 entries \(one per segment\), got 2"):
        planning.expand_per_segment([1, 2], 3, "f")
    with pytest.raises(InvalidTaskParams, match="expected 2 to 3 entries"):
        planning.expand_per_segment([1, 2, 3, 4], 2, "f", allow_extra=1)


def test_guide_layouts() -> None:
    chained = planning.guide_layout(89, 10, chained=True, has_end_image=True)
    assert chained.kinds() == ["overlap"] * 10 + ["grey"] * 78 + ["end"]
    first = planning.guide_layout(81, 0, chained=True, has_end_image=True)
    assert first.kinds() == ["start"] + ["grey"] * 79 + ["end"]
    independent = planning.guide_layout(81, 10, chained=False, has_end_image=True)
    assert independent.kinds() == first.kinds()
    single = planning.guide_layout(17, 0, chained=False, has_end_image=False)
    assert single.kinds() == ["start"] + ["grey"] * 16
    with pytest.raises(InvalidTaskParams, match="frame_overlap_from_previous"):
        planning.guide_layout(17, 17, chained=True, has_end_image=True)


def test_stitch_overlaps_clamp_to_real_lengths() -> None:
    assert planning.stitch_overlaps([10, 21, 0], [81, 5, 41, 9]) == [5, 5, 0]


# --- properties --------------------------------------------------------------------------------

segment_lists = st.lists(st.integers(min_value=4, max_value=200), min_size=1, max_size=8)


@st.composite
def travel_inputs(draw: st.DrawFn) -> tuple[list[int], list[int], bool]:
    frames = draw(segment_lists)
    overlaps = draw(st.lists(st.integers(0, 250), min_size=len(frames) - 1, max_size=len(frames) - 1))
    return frames, overlaps, draw(st.booleans())


@given(st.integers(min_value=1, max_value=10_000))
def test_segment_quantisation_is_4n_plus_1_within_two_frames(frames: int) -> None:
    value = planning.quantise_segment_frames(frames)
    assert (value - 1) % 4 == 0
    assert abs(value - frames) <= 3 and value >= 1
    assert planning.quantise_segment_frames(value) == value  # idempotent


@given(st.integers(min_value=1, max_value=10_000))
def test_target_requantisation_rounds_down(frames: int) -> None:
    value = planning.requantise_target(frames)
    assert (value - 1) % 4 == 0
    assert frames - 3 <= value <= frames


@given(travel_inputs())
def test_plan_invariants(inputs: tuple[list[int], list[int], bool]) -> None:
    frames, overlaps, chained = inputs
    plan = planning.plan_travel(frames, overlaps, chained=chained)
    count = len(frames)
    assert plan.num_segments == count and len(plan.overlaps) == count - 1
    for index, overlap in enumerate(plan.overlaps):
        assert 0 <= overlap <= min(plan.segment_frames[index], plan.segment_frames[index + 1])
        assert overlap % 2 == 0 or overlap in (plan.segment_frames[index], plan.segment_frames[index + 1])
        assert overlap <= plan.targets[index]
        if chained:
            assert overlap < plan.targets[index + 1]  # at least one new frame per segment
    for index, target in enumerate(plan.targets):
        assert (target - 1) % 4 == 0 and target >= planning.MIN_SEGMENT_FRAMES
        assert target >= plan.segment_frames[index]
        if not chained:
            assert target == plan.segment_frames[index]
    assert plan.stitched_length == sum(plan.new_frames(i) for i in range(count))
    assert plan.stitched_length >= max(plan.targets)


@given(travel_inputs())
def test_children_can_rebuild_targets_without_requantising(inputs: tuple[list[int], list[int], bool]) -> None:
    frames, overlaps, chained = inputs
    plan = planning.plan_travel(frames, overlaps, chained=chained)
    rebuilt = planning.plan_from_quantised(plan.segment_frames, plan.overlaps, chained=chained)
    assert rebuilt == plan
