"""RGB frames as numpy arrays and PIL images.

A frame is a uint8 array of shape (H, W, 3) in RGB order everywhere in the program. Float frames (engine output)
are accepted in [0, 1] and converted once, here, by rounding: truncation would darken every frame by half a level.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from headless_wan.errors import MediaError
from headless_wan.media.files import atomic_path

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 95
DEFAULT_MAX_INPUT_PIXELS = 50_000_000
"""Input images larger than this are refused from their header (a 50 MP photo is 150 MB decoded)."""


def to_uint8_rgb(frame: np.ndarray) -> np.ndarray:
    """Return `frame` as a C-contiguous uint8 (H, W, 3) array.

    uint8 input is returned as is (no copy when already contiguous); floating point input is clipped to [0, 1],
    scaled to 0..255 and rounded. Raises ValueError for other shapes or dtypes.
    """
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        scaled = np.rint(np.clip(array, 0.0, 1.0) * 255.0)
        return np.ascontiguousarray(scaled.astype(np.uint8))
    raise ValueError(f"expected a uint8 or float frame, got dtype {array.dtype}")


def frame_to_pil(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(to_uint8_rgb(frame), mode="RGB")


def frames_to_pil(frames: Iterable[np.ndarray]) -> list[Image.Image]:
    """Convert frames to RGB PIL images (the form diffusers pipelines accept)."""
    return [frame_to_pil(frame) for frame in frames]


def pil_to_frame(image: Image.Image) -> np.ndarray:
    """An RGB PIL image (any mode is converted) as a uint8 (H, W, 3) array."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def save_image(frame: np.ndarray | Image.Image, path: Path) -> Path:
    """Write a frame as PNG or JPEG, chosen by the suffix of `path`, atomically. Returns `path`."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image suffix {path.suffix!r} (use .png, .jpg or .jpeg)")
    image = frame.convert("RGB") if isinstance(frame, Image.Image) else frame_to_pil(frame)
    options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **options)
    return path


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> Image.Image:
    """Open an image as RGB, honouring its EXIF orientation (phone photos are stored sideways).

    The size is read from the header and refused past `max_pixels` before any pixel is decoded: a small
    PNG can claim 30000x30000 and decode to gigabytes (a decompression bomb). The pixels are loaded
    before returning, so the file is closed. Alpha is dropped (not composited). Raises MediaError when
    the file is missing, not an image, or too large.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            _check_pixels(path, opened.size, max_pixels)
            upright = ImageOps.exif_transpose(opened)
            upright.load()
            return upright.convert("RGB")
    except Image.DecompressionBombError as exc:  # PIL's own, larger limit, hit while reading the header
        raise MediaError(
            f"image {path.name} is over the {max_pixels:,}-pixel input limit (HW_MAX_INPUT_PIXELS): {exc}"
        ) from None
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise MediaError(f"cannot read image {path.name}: {exc}") from None


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise MediaError(
            f"image {path.name} is {width}x{height} ({width * height:,} pixels), over the "
            f"{max_pixels:,}-pixel input limit (HW_MAX_INPUT_PIXELS)"
        )


MASK_THRESHOLD = 128
"""Mask pixels at or above this grey level mark the region to edit; below it, the region to keep."""
EDIT_GREEN = (0, 255, 0)


def binarised_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`mask` as a 0/255 greyscale image of exactly `size` (width, height).

    One rule for a mask of another size: it is stretched to the image's size (bilinear, aspect not
    kept: the app draws masks over the whole image, so a smaller or larger mask is the same picture
    at another scale), then thresholded at `MASK_THRESHOLD`. Raises MediaError when nothing is marked."""
    grey = mask.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    binary = grey.point(lambda level: 255 if level >= MASK_THRESHOLD else 0)
    if binary.getextrema()[1] == 0:
        raise MediaError(f"mask_url: the mask marks no pixel (none at or above grey level {MASK_THRESHOLD})")
    return binary


def green_composite(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The image with the mask's region painted pure green: how the Qwen edit model is shown the
    area to change (the predecessor's masked edits; the edit LoRAs were trained on this)."""
    rgb = image.convert("RGB")
    return Image.composite(Image.new("RGB", rgb.size, EDIT_GREEN), rgb, binarised_mask(mask, rgb.size))
