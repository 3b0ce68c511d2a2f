"""Every request rule, checked before any compute (no torch)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from headless_wan.engine import GenerationRequest, LoraSpec, fit_frames
from headless_wan.engine.request import validate_request
from headless_wan.errors import InvalidTaskParams

BASE = GenerationRequest(model="tiny", prompt="a cat", width=64, height=32, num_frames=17)


def check(request: GenerationRequest) -> None:
    validate_request(request, max_pixels=64 * 64, max_frames=81)


def guide(frames: int = 17, h: int = 32, w: int = 64) -> np.ndarray:
    return np.zeros((frames, h, w, 3), np.uint8)


def test_a_plain_request_is_valid() -> None:
    check(BASE)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"width": 72 - 1}, "width"),
        ({"width": 56}, "width"),
        ({"height": 0}, "height"),
        ({"width": 8}, "width"),
        ({"width": 128, "height": 64}, "resolution"),
        ({"num_frames": 16}, "num_frames"),
        ({"num_frames": 0}, "num_frames"),
        ({"num_frames": 85}, "num_frames"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"steps": 0}, "steps"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"guidance_scale_2": float("nan")}, "guidance_scale_2"),
        ({"flow_shift": 0.0}, "flow_shift"),
        ({"solver": "dpm++"}, "sample_solver"),
        ({"conditioning_scale": 11.0}, "conditioning_scale"),
        ({"prompt": None}, "prompt"),
    ],
)
def test_each_rule_names_its_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidTaskParams, match=f"^{field}"):
        check(replace(BASE, **changes))


def test_frames_must_be_4n_plus_1_and_one_frame_is_an_image() -> None:
    for frames in (1, 5, 17, 81):
        check(replace(BASE, num_frames=frames))


def test_guide_must_have_exactly_num_frames() -> None:
    with pytest.raises(InvalidTaskParams, match="video_guide: has 16 frames"):
        check(replace(BASE, guide=guide(16)))
    with pytest.raises(InvalidTaskParams, match="video_guide: has 18 frames"):
        check(replace(BASE, guide=guide(18)))


def test_guide_must_be_uint8_rgb() -> None:
    with pytest.raises(InvalidTaskParams, match="video_guide: must be uint8"):
        check(replace(BASE, guide=guide().astype(np.float32)))
    with pytest.raises(InvalidTaskParams, match="video_guide: must be uint8"):
        check(replace(BASE, guide=np.zeros((17, 32, 64), np.uint8)))


def test_guide_of_another_size_is_accepted_and_fitted_later() -> None:
    check(replace(BASE, guide=guide(h=50, w=90)))


def test_mask_rules() -> None:
    mask = np.full((17, 32, 64), 255, np.uint8)
    check(replace(BASE, guide=guide(), mask=mask))
    with pytest.raises(InvalidTaskParams, match="video_mask: a mask needs a video_guide"):
        check(replace(BASE, mask=mask))
    with pytest.raises(InvalidTaskParams, match="video_mask: has 13 frames"):
        check(replace(BASE, guide=guide(), mask=mask[:13]))
    with pytest.raises(InvalidTaskParams, match="video_mask: frames are 32x32"):
        check(replace(BASE, guide=guide(), mask=mask[:, :, :32]))
    soft = mask.copy()
    soft[3, 0, 0] = 128
    with pytest.raises(InvalidTaskParams, match="video_mask: values must be exactly 0"):
        check(replace(BASE, guide=guide(), mask=soft))


def test_reference_images_must_be_pil_and_few() -> None:
    check(replace(BASE, reference_images=(Image.new("RGB", (10, 20)),)))
    with pytest.raises(InvalidTaskParams, match=r"image_refs\[0\]: must be a PIL image"):
        check(replace(BASE, reference_images=(np.zeros((4, 4, 3), np.uint8),)))
    with pytest.raises(InvalidTaskParams, match="image_refs: at most 4"):
        check(replace(BASE, reference_images=tuple(Image.new("RGB", (4, 4)) for _ in range(5))))


def test_loras_need_a_source_and_no_duplicates() -> None:
    with pytest.raises(InvalidTaskParams, match=r"loras\[0\]: needs a source"):
        check(replace(BASE, loras=(LoraSpec(" "),)))
    with pytest.raises(InvalidTaskParams, match=r"loras\[1\]: 'a' is listed twice"):
        check(replace(BASE, loras=(LoraSpec("a"), LoraSpec("a"))))


def test_fit_frames_centre_crops_then_resizes_to_exactly_the_target() -> None:
    # 40 wide x 20 high source, left half black, right half white; target 16x16 square:
    # the centre crop keeps columns 10..30, so the result is half black, half white.
    frames = np.zeros((2, 20, 40, 3), np.uint8)
    frames[:, :, 20:] = 255
    fitted = fit_frames(frames, 16, 16, is_mask=False)
    assert [im.size for im in fitted] == [(16, 16), (16, 16)]
    row = np.asarray(fitted[0])[8, :, 0]
    assert row[:6].max() < 30 and row[-6:].min() > 225


def test_fit_frames_keeps_masks_binary() -> None:
    mask = np.zeros((1, 30, 50), np.uint8)
    mask[:, :, 25:] = 255
    fitted = np.asarray(fit_frames(mask, 32, 16, is_mask=True)[0])
    assert fitted.shape == (16, 32)
    assert set(np.unique(fitted)) == {0, 255}


def test_fit_frames_leaves_exact_sizes_untouched() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (1, 16, 32, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(fit_frames(frames, 32, 16, is_mask=False)[0]), frames[0])
