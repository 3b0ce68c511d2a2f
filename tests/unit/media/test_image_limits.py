"""Input images are refused by pixel count from their header, before any pixel is decoded."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from headless_wan.errors import MediaError
from headless_wan.media.images import load_image


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid PNG header for width x height with one tiny compressed row: a few hundred bytes on disk
    that would decode to width * height * 3 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" + b"\x00" * 3 * min(width, 1024))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def test_a_30000_by_30000_png_is_refused_without_decoding(tmp_path: Path) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 10_000
    with pytest.raises(MediaError, match=r"image bomb\.png is over the 50,000,000-pixel input limit"):
        load_image(bomb)


def test_an_image_over_the_configured_limit_is_refused_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 20, 30)).save(path)
    with pytest.raises(
        MediaError, match=r"photo\.png is 40x30 \(1,200 pixels\), over the 1,000-pixel input limit"
    ):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=1200).size == (40, 30)
