"""Bridge planning tables: insert, replace, rebalance, chains, inpaint/edit windows, bad input."""

from __future__ import annotations

import itertools

import pytest

from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.bridge_planning import (
    JoinSpec,
    plan_bridge,
    plan_chain,
    plan_portions,
    plan_window,
    quantise_bridge,
    split_gap,
)


@pytest.mark.parametrize(
    ("before", "gap", "after", "expected"),
    [
        (8, 53, 8, (53, 69)),  # already 4n+1
        (8, 50, 8, (49, 65)),  # 66 → 65: the gap gives one frame
        (8, 52, 8, (49, 65)),  # 68 → 65
        (1, 2, 1, (3, 5)),  # 4 → 1 would erase the gap: round up to 5
        (1, 1, 1, (3, 5)),
    ],
)
def test_quantise_bridge_gap_absorbs_rounding(before, gap, after, expected):
    assert quantise_bridge(before, gap, after) == expected


# (len_a, len_b, context, gap) → (before, gap', after, trim_a, trim_b, output)
INSERT_TABLE = [
    ((30, 30, 8, 53), (8, 53, 8, 0, 0, 113)),
    ((30, 30, 8, 50), (8, 49, 8, 0, 0, 109)),
    ((5, 30, 8, 53), (5, 52, 8, 0, 0, 87)),  # a short clip gives what it has
    ((2, 2, 8, 3), (2, 1, 2, 0, 0, 5)),  # 7 → 5: the gap keeps one frame
]


@pytest.mark.parametrize(("args", "expected"), INSERT_TABLE)
def test_insert_mode_table(args, expected):
    plan = plan_bridge(*args, replace_mode=False)
    got = (plan.context_before, plan.gap, plan.context_after, plan.trim_a, plan.trim_b, plan.output_frames)
    assert got == expected
    assert plan.total % 4 == 1
    assert plan.output_frames == args[0] + args[1] + plan.gap


REPLACE_TABLE = [
    ((100, 100, 8, 53), (8, 53, 8, 26, 27, 200)),
    ((100, 100, 8, 50), (8, 49, 8, 24, 25, 200)),
    # rebalance: A has 10 frames, keeps one as context, B gives the rest
    ((10, 100, 8, 53), (1, 52, 8, 9, 43, 110)),
    ((100, 10, 8, 53), (8, 52, 1, 43, 9, 110)),
]


@pytest.mark.parametrize(("args", "expected"), REPLACE_TABLE)
def test_replace_mode_table(args, expected):
    plan = plan_bridge(*args, replace_mode=True)
    got = (plan.context_before, plan.gap, plan.context_after, plan.trim_a, plan.trim_b, plan.output_frames)
    assert got == expected
    assert plan.total % 4 == 1
    assert plan.trim_a + plan.trim_b == plan.gap
    assert plan.output_frames == args[0] + args[1]


def test_replace_guide_indices_are_next_to_the_removed_frames():
    plan = plan_bridge(100, 100, 8, 53, replace_mode=True)
    assert plan.a_context_start == 100 - 26 - 8
    assert plan.b_context_start == 27


def test_split_gap_moves_excess_to_the_longer_clip():
    assert split_gap(20, 100, 100) == (10, 10)
    assert split_gap(21, 100, 100) == (10, 11)
    assert split_gap(21, 4, 100) == (3, 18)
    assert split_gap(21, 100, 4) == (18, 3)


def test_impossible_replace_names_the_numbers():
    with pytest.raises(InvalidTaskParams) as caught:
        plan_bridge(10, 10, 8, 53, replace_mode=True, field="per_join_settings[0].")
    message = caught.value.message
    assert message.startswith("per_join_settings[0].gap_frame_count")
    assert "53" in message and "10" in message and "18" in message


@pytest.mark.parametrize(
    ("len_a", "len_b", "context", "gap", "needle"),
    [
        (0, 30, 8, 53, "clip A: a clip needs at least 2 frames"),
        (30, 1, 8, 53, "clip B: a clip needs at least 2 frames to be joined, it has 1"),
        (30, 30, 0, 53, "context_frame_count: must be at least 1, got 0"),
        (30, 30, 8, 0, "gap_frame_count: must be at least 1, got 0"),
    ],
)
def test_bad_join_input(len_a, len_b, context, gap, needle):
    with pytest.raises(InvalidTaskParams, match=needle):
        plan_bridge(len_a, len_b, context, gap, replace_mode=False)


def test_every_plan_is_4n_plus_1_and_inside_its_clips():
    for len_a, len_b, context, gap, replace in itertools.product(
        (2, 3, 7, 17, 81), (2, 5, 33, 81), (1, 4, 8, 15), (1, 2, 3, 6, 23, 53), (False, True)
    ):
        try:
            plan = plan_bridge(len_a, len_b, context, gap, replace_mode=replace)
        except InvalidTaskParams:
            assert replace, (len_a, len_b, context, gap)
            continue
        case = (len_a, len_b, context, gap, replace)
        assert plan.total % 4 == 1, case
        assert plan.gap >= 1, case
        assert 1 <= plan.context_before <= context and 1 <= plan.context_after <= context, case
        assert plan.a_context_start >= 0 and plan.b_context_start + plan.context_after <= len_b, case
        assert abs(plan.gap - gap) <= 3, case
        expected = len_a + len_b if replace else len_a + len_b + plan.gap
        assert plan.output_frames == expected, case


def test_chain_of_three_in_insert_mode():
    spec = JoinSpec(context_frame_count=8, gap_frame_count=53, replace_mode=False)
    plan = plan_chain([40, 40, 40], [spec, spec])
    assert [bridge.gap for bridge in plan.bridges] == [53, 53]
    assert [(s.start, s.end) for s in plan.spans] == [(0, 40), (0, 40), (0, 40)]
    assert plan.output_frames == 40 * 3 + 53 * 2


def test_chain_of_three_in_replace_mode_keeps_the_length():
    spec = JoinSpec(context_frame_count=8, gap_frame_count=53, replace_mode=True)
    plan = plan_chain([100, 100, 100], [spec, spec])
    assert [(s.start, s.end) for s in plan.spans] == [(0, 74), (27, 74), (27, 100)]
    assert plan.output_frames == 300
    # join 1's A context lies in clip 1's back half, after join 0's B context
    assert plan.bridge_a_offset(1) == 100 - 26 - 8
    assert plan.bridge_a_offset(1) >= plan.bridges[0].b_context_start + plan.bridges[0].context_after


def test_chain_per_join_settings_differ():
    joins = [JoinSpec(8, 53, True), JoinSpec(4, 13, False)]
    plan = plan_chain([100, 100, 100], joins)
    assert plan.bridges[1].gap == 13 and plan.bridges[1].context_before == 4
    assert plan.output_frames == 300 + 13


@pytest.mark.parametrize(
    ("lengths", "joins", "needle"),
    [
        ([40], 0, "clip_list: at least two clips"),
        ([40, 40], 2, "per_join_settings: 2 clips make 1 joins, got 2"),
        ([40, 1, 40], 2, r"clip_list\[1\]: a clip needs at least 2 frames to be joined, it has 1"),
        ([40, 0, 40], 2, r"clip_list\[1\]"),
        ([20, 20, 20], 2, r"join 0 \(clip_list\[0\] → clip_list\[1\]\): gap_frame_count"),
    ],
)
def test_bad_chains(lengths, joins, needle):
    with pytest.raises(InvalidTaskParams, match=needle):
        plan_chain(lengths, [JoinSpec(8, 53, True)] * joins)


WINDOW_TABLE = [
    # (frames, start, end, context) → (before, after, padding, total)
    ((100, 40, 60, 8), (8, 5, 0, 33)),
    ((30, 20, 30, 8), (7, 0, 0, 17)),  # window at the end: only context before
    ((12, 1, 12, 8), (1, 0, 1, 13)),  # contexts cannot absorb: one padding frame
    ((100, 0, 10, 8), (0, 7, 0, 17)),
]


@pytest.mark.parametrize(("args", "expected"), WINDOW_TABLE)
def test_window_table(args, expected):
    plan = plan_window(*args)
    assert (plan.context_before, plan.context_after, plan.padding, plan.total) == expected
    assert plan.total % 4 == 1
    assert plan.gap == args[2] - args[1]
    assert plan.output_frames == args[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((100, 60, 60, 8), r"window \[60, 60\) must be non-empty"),
        ((100, 90, 101, 8), r"inside the video's 100 frames"),
        ((100, -1, 10, 8), r"\[-1, 10\)"),
        ((100, 0, 100, 8), "covers the whole video"),
        ((1, 0, 1, 8), "video: needs at least 2 frames, has 1"),
    ],
)
def test_bad_windows(args, needle):
    with pytest.raises(InvalidTaskParams, match=needle):
        plan_window(*args)


def test_portions_contexts_stop_at_neighbouring_portions():
    first, second = plan_portions(100, [(25, 40, None), (10, 20, None)], 8)
    assert (first.start, first.end, first.context_before, first.context_after) == (10, 20, 8, 3)
    assert (second.start, second.end, second.context_before, second.context_after) == (25, 40, 5, 5)
    assert first.end + first.context_after <= second.guide_start + second.context_before
    assert first.total % 4 == 1 and second.total % 4 == 1


@pytest.mark.parametrize(
    ("portions", "needle"),
    [
        ([], "at least one portion"),
        ([(10, 30, None), (20, 40, None)], r"portions \[10, 30\) and \[20, 40\) overlap"),
        ([(90, 120, None)], r"portion \[90, 120\) must be non-empty and inside the video's 100 frames"),
    ],
)
def test_bad_portions(portions, needle):
    with pytest.raises(InvalidTaskParams, match=needle):
        plan_portions(100, portions, 8)


def test_portion_with_its_own_gap_count_replaces_the_window_by_that_many_frames():
    (plan,) = plan_portions(100, [(40, 50, 23)], 8)
    # 8 + 23 + 8 = 39 → 37: the gap absorbs the rounding, the contexts stay
    assert (plan.context_before, plan.gap, plan.context_after, plan.padding) == (8, 21, 8, 0)
    assert plan.total % 4 == 1
    assert plan.output_frames == 100 - 10 + 21
    with pytest.raises(
        InvalidTaskParams, match=r"portions_to_regenerate\[0\].gap_frame_count: must be at least 1"
    ):
        plan_portions(100, [(40, 50, 0)], 8)
