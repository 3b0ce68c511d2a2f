"""Crossfade pixel values and stitched frame counts, streaming, for several overlap settings."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from headless_wan.errors import MediaError
from headless_wan.media.crossfade import Stitcher, blend_frame, crossfade, ease_weight, stitch_in_memory

H, W = 8, 12


def segment(tag: int, count: int) -> list[np.ndarray]:
    """Frames whose red channel is the segment tag and green the frame index: each frame is unique."""
    return [np.full((H, W, 3), (tag, index, 7), dtype=np.uint8) for index in range(count)]


def ids(frames: list[np.ndarray]) -> list[tuple[int, int]]:
    return [(int(f[0, 0, 0]), int(f[0, 0, 1])) for f in frames]


def test_ease_weights() -> None:
    assert [round(ease_weight(i, 4), 6) for i in range(4)] == [
        round((1 - math.cos(math.pi * t)) / 2, 6) for t in (0.25, 0.5, 0.75, 1.0)
    ]
    assert ease_weight(0, 1) == 1.0
    assert ease_weight(4, 5) == 1.0


def test_blend_of_flat_frames_is_the_weighted_mean() -> None:
    # Flat images are unchanged by the blur, so the unsharp mask cancels out exactly.
    a = np.full((H, W, 3), 200, dtype=np.uint8)
    b = np.full((H, W, 3), 100, dtype=np.uint8)
    out = crossfade([a] * 4, [b] * 4, 0.3)
    assert [int(frame[0, 0, 0]) for frame in out] == [185, 150, 115, 100]


def test_sharpening_follows_the_spec_formula() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    import cv2

    alpha = ease_weight(1, 3)
    base = (1 - alpha) * a.astype(np.float32) + alpha * b.astype(np.float32)
    amount = 0.3 * alpha
    expected = base * (1 + amount) - cv2.GaussianBlur(base, (0, 0), 3) * amount
    expected = np.clip(np.rint(expected), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(blend_frame(a, b, alpha, 0.3), expected)
    # The last blended frame is all B by weight, sharpened (not a plain copy of B).
    last = blend_frame(a, b, 1.0, 0.3)
    assert not np.array_equal(last, b)
    np.testing.assert_array_equal(blend_frame(a, b, 1.0, 0.0), b)


@pytest.mark.parametrize(
    ("lengths", "overlaps", "expected_joins"),
    [
        ([9, 9], [0], [0]),  # zero overlap: plain concatenation (pitfall P5)
        ([9, 13], [4], [4]),
        ([9, 13, 5], [3, 5], [3, 5]),  # odd overlaps
        ([9, 5, 9], [8, 8], [5, 5]),  # oversized: clamped by the short middle segment
        ([9, 9], [9], [9]),  # the whole segment overlaps
        ([5, 5, 5], [5, 5], [5, 5]),  # windows touching from both sides of one segment
        ([9, 9, 9, 9], [0, 2, 0], [0, 2, 0]),  # mixed zero and non-zero joins
    ],
)
def test_stitched_length_and_frame_order(
    lengths: list[int], overlaps: list[int], expected_joins: list[int]
) -> None:
    segments = [segment(tag, count) for tag, count in enumerate(lengths, start=1)]
    stitcher = Stitcher(overlaps, sharp_amount=0.0)
    out = list(stitcher.frames(segments))
    assert [join.used for join in stitcher.joins] == expected_joins
    assert stitcher.lengths == lengths
    assert len(out) == sum(lengths) - sum(expected_joins) == stitcher.expected_length == stitcher.emitted
    reference = batch_stitch(segments, expected_joins)
    assert ids(out) == ids(reference)
    for got, want in zip(out, reference, strict=True):
        np.testing.assert_array_equal(got, want)


def batch_stitch(segments: list[list[np.ndarray]], joins: list[int]) -> list[np.ndarray]:
    """The spec's assembly (travel.md §6.2 step 6), holding everything in memory, as a reference."""
    out = list(segments[0])
    for k, n in enumerate(joins):
        if n == 0:
            out.extend(segments[k + 1])  # `out[:-0]` would be empty: the P5 slicing trap
            continue
        blended = crossfade(segments[k][-n:], segments[k + 1][:n], 0.0)
        out = out[:-n] + blended + list(segments[k + 1][n:])
    return out


def test_zero_overlap_is_plain_concatenation() -> None:
    out = stitch_in_memory([segment(1, 3), segment(2, 4)], [0])
    assert ids(out) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (2, 3)]


def test_overlap_frames_are_replaced_not_duplicated() -> None:
    out = stitch_in_memory([segment(10, 6), segment(30, 6)], [2], sharp_amount=0.0)
    got = ids(out)
    assert len(got) == 10
    assert got[:4] == [(10, i) for i in range(4)]
    assert got[-4:] == [(30, i) for i in range(2, 6)]
    # join frames: α = 0.5 then 1.0 between seg A frames 4,5 and seg B frames 0,1
    assert got[4] == (20, 2) and got[5] == (30, 1)


def test_regenerate_anchors_keeps_the_last_head_frame_unblended() -> None:
    a = segment(10, 4)
    b = segment(30, 4)
    out = crossfade(a[-3:], b[:3], 0.3, keep_last_anchor=True)
    np.testing.assert_array_equal(out[-1], b[2])
    assert int(out[0][0, 0, 0]) == 20  # first of two blended steps: α = 0.5


def test_stitching_streams_with_bounded_buffers() -> None:
    """Consume frames one by one while counting how many source frames were pulled: the stitcher
    never runs more than one overlap window ahead of its output."""
    pulled = 0

    def source(tag: int, count: int) -> Iterator[np.ndarray]:
        nonlocal pulled
        for frame in segment(tag, count):
            pulled += 1
            yield frame

    stitcher = Stitcher([4, 4, 4], sharp_amount=0.3)
    emitted = 0
    for _ in stitcher.frames(source(tag, 200) for tag in range(4)):
        emitted += 1
        discarded = sum(j.used for j in stitcher.joins)  # tails replaced by blends
        assert pulled - emitted - discarded <= 4 + 4  # held-back output + head window
    assert emitted == 800 - 12


def test_empty_segment_and_wrong_segment_count_fail() -> None:
    with pytest.raises(MediaError, match="segment 1 has no frames"):
        stitch_in_memory([segment(1, 3), []], [0])
    with pytest.raises(ValueError, match="expected 3 segments, got 2"):
        stitch_in_memory([segment(1, 3), segment(2, 3)], [1, 1])
    with pytest.raises(ValueError, match="more segments"):
        stitch_in_memory([segment(1, 3), segment(2, 3)], [])
