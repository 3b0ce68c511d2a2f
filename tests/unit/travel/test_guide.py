"""Golden content of VACE guides and masks: which frames are overlap, anchors or grey; mask exactly 0/255."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headless_wan.handlers import planning
from headless_wan.media.guide import (
    GUIDE_GREY,
    OverlapAdjust,
    adjust_overlap_frame,
    build_guide,
    fit_image,
    post_process,
)

W, H = 32, 16
START = np.full((H, W, 3), (200, 10, 30), dtype=np.uint8)
END = np.full((H, W, 3), (5, 220, 90), dtype=np.uint8)


def predecessor(count: int, size: tuple[int, int] = (H, W)) -> list[np.ndarray]:
    return [np.full((*size, 3), (index * 10, 100, 255 - index), dtype=np.uint8) for index in range(count)]


def test_example_a_chained_segment_1() -> None:
    """travel.md §5.4: T = 89, o = 10: frames 0–9 predecessor (keep), 10–87 grey (generate), 88 end image."""
    layout = planning.guide_layout(89, 10, chained=True, has_end_image=True)
    tail = predecessor(10)
    guide = build_guide(layout, W, H, start=START, end=END, overlap=tail)
    assert guide.frames.shape == (89, H, W, 3) and guide.frames.dtype == np.uint8
    assert guide.mask.shape == (89, H, W) and guide.mask.dtype == np.uint8
    for index in range(10):
        np.testing.assert_array_equal(guide.frames[index], tail[index])
    assert np.all(guide.frames[10:88] == GUIDE_GREY)
    np.testing.assert_array_equal(guide.frames[88], END)
    assert np.all(guide.mask[:10] == 0)
    assert np.all(guide.mask[10:88] == 255)
    assert np.all(guide.mask[88] == 0)
    assert not np.any(np.all(guide.frames == START, axis=-1))  # a chained segment has no start anchor


@pytest.mark.parametrize("chained", [False, True])
def test_first_or_independent_segment_has_both_anchors(chained: bool) -> None:
    layout = planning.guide_layout(17, 0 if chained else 4, chained=chained, has_end_image=True)
    guide = build_guide(layout, W, H, start=START, end=END)
    np.testing.assert_array_equal(guide.frames[0], START)
    np.testing.assert_array_equal(guide.frames[16], END)
    assert np.all(guide.frames[1:16] == 128)
    assert set(np.unique(guide.mask)) == {0, 255}
    assert [int(m.max()) for m in guide.mask] == [0] + [255] * 15 + [0]


def test_single_image_journey_has_no_end_anchor() -> None:
    layout = planning.guide_layout(9, 0, chained=False, has_end_image=False)
    guide = build_guide(layout, W, H, start=START)
    np.testing.assert_array_equal(guide.frames[0], START)
    assert np.all(guide.frames[1:] == 128) and np.all(guide.mask[1:] == 255)


def test_predecessor_frames_of_another_size_are_resized() -> None:
    layout = planning.guide_layout(9, 2, chained=True, has_end_image=True)
    guide = build_guide(layout, W, H, end=END, overlap=predecessor(2, (H * 2, W * 2)))
    assert guide.frames.shape == (9, H, W, 3)
    np.testing.assert_array_equal(guide.frames[1], predecessor(2)[1])  # flat colour survives area resize


def test_mismatched_inputs_are_refused() -> None:
    layout = planning.guide_layout(9, 2, chained=True, has_end_image=True)
    with pytest.raises(ValueError, match="needs 2 overlap frames, got 1"):
        build_guide(layout, W, H, end=END, overlap=predecessor(1))
    with pytest.raises(ValueError, match="end anchor"):
        build_guide(layout, W, H, overlap=predecessor(2))
    with pytest.raises(ValueError, match="shaped"):
        build_guide(layout, W, H, end=END[:, :-1], overlap=predecessor(2))


def test_anchor_images_are_stretched_to_size_in_rgb() -> None:
    image = Image.new("RGB", (100, 30), (255, 0, 0))
    frame = fit_image(image, W, H)
    assert frame.shape == (H, W, 3)
    assert tuple(frame[5, 5]) == (255, 0, 0)  # RGB order, no BGR swap


def test_overlap_adjustments() -> None:
    frame = np.full((2, 2, 3), (200, 100, 50), dtype=np.uint8)
    assert adjust_overlap_frame(frame, OverlapAdjust()) is frame
    faded = adjust_overlap_frame(frame, OverlapAdjust(strength_adjustment=-0.5))
    assert tuple(faded[0, 0]) == (164, 114, 89)  # 128·0.5 + v·0.5
    grey = adjust_overlap_frame(frame, OverlapAdjust(desaturate=1.0))
    assert len(set(grey[0, 0].tolist())) == 1
    brighter = adjust_overlap_frame(frame, OverlapAdjust(brightness=0.1))
    assert tuple(brighter[0, 0]) == (220, 110, 55)


def test_post_processing() -> None:
    frame = np.full((2, 2, 3), (200, 100, 50), dtype=np.uint8)
    assert post_process(frame, 1.0, 0.0) is frame  # app defaults: no-op, no copy
    grey = post_process(frame, 0.0, 0.0)
    luma = round(0.2126 * 200 + 0.7152 * 100 + 0.0722 * 50)
    assert tuple(grey[0, 0]) == (luma, luma, luma)
    assert tuple(post_process(frame, 1.0, -0.5)[0, 0]) == (100, 50, 25)
