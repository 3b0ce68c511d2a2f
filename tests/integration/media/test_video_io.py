"""Real ffmpeg round trips: frame counts, sizes, colours, cleanup and error reporting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headless_wan.errors import MediaError
from headless_wan.media.ffmpeg import FFmpegTools, count_frames, probe
from headless_wan.media.video_io import (
    ENCODER,
    EncoderConfig,
    VideoWriter,
    encode_video,
    even_size,
    iter_frames,
    load_image,
    read_frames,
    save_image,
    write_thumbnail,
)

FPS = 16.0
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def gray_ramp(count: int, width: int, height: int) -> list[np.ndarray]:
    """Frame i is flat gray level 7*i, so decoded order, drops and duplicates are all visible."""
    return [np.full((height, width, 3), (7 * i) % 256, dtype=np.uint8) for i in range(count)]


def solid(color: tuple[int, int, int], width: int = 64, height: int = 48) -> np.ndarray:
    return np.broadcast_to(np.array(color, dtype=np.uint8), (height, width, 3)).copy()


def centre_mean(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).mean(axis=0)


def ffmpeg_children() -> list[int]:
    """Child processes of this test process that are ffmpeg/ffprobe, zombies included."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == me and name in ("ffmpeg", "ffprobe"):
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def clip17(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clip17.mp4"
    frames = gray_ramp(17, 64, 48)
    frames[0] = solid(RED)
    frames[1] = solid(BLUE)
    assert encode_video(frames, path, FPS) == 17
    return path


@pytest.mark.parametrize("count", [1, 2, 17, 33])
@pytest.mark.parametrize(("width", "height"), [(64, 48), (65, 63)])
def test_round_trip_keeps_every_frame_in_order(tmp_path: Path, count: int, width: int, height: int) -> None:
    path = tmp_path / "out.mp4"
    assert encode_video(gray_ramp(count, width, height), path, FPS) == count

    out_w, out_h = even_size(width, height)
    info = probe(path)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (out_w, out_h, "h264", "yuv420p")
    assert info.fps == pytest.approx(FPS)
    assert count_frames(path) == count
    decoded = read_frames(path)
    assert decoded.shape == (count, out_h, out_w, 3)
    assert decoded.dtype == np.uint8
    levels = decoded.reshape(count, -1).mean(axis=1)
    np.testing.assert_allclose(levels, [(7 * i) % 256 for i in range(count)], atol=2.5)


def test_odd_size_padding_repeats_the_edge(tmp_path: Path) -> None:
    frame = solid((40, 40, 40), 65, 63)
    frame[:, -1] = (200, 200, 200)
    frame[-1, :] = (200, 200, 200)
    path = tmp_path / "odd.mp4"
    encode_video([frame], path, FPS)

    (decoded,) = read_frames(path)
    assert decoded.shape == (64, 66, 3)
    # Padding is a copy of the last column/row, not black.
    assert decoded[20:40, 65].mean() > 150
    assert decoded[63, 20:40].mean() > 150


def test_colours_survive_without_channel_swap_or_matrix_shift(tmp_path: Path) -> None:
    colours = [RED, GREEN, BLUE, (200, 100, 50), (128, 128, 128)]
    path = tmp_path / "colours.mp4"
    encode_video([solid(c) for c in colours], path, FPS)

    decoded = read_frames(path)
    for frame, colour in zip(decoded, colours, strict=True):
        np.testing.assert_allclose(centre_mean(frame), colour, atol=4)
    assert probe(path).pix_fmt == ENCODER.pix_fmt


def test_float_frames_are_rounded_and_clipped(tmp_path: Path) -> None:
    frame = np.full((48, 64, 3), 0.5, dtype=np.float32)
    frame[:, :32] = 2.0  # out of range: clipped to white
    path = tmp_path / "float.mp4"
    encode_video([frame], path, FPS)

    (decoded,) = read_frames(path)
    assert decoded[:, 4:28].mean() == pytest.approx(255, abs=2)
    assert decoded[:, 36:60].mean() == pytest.approx(128, abs=2)


def test_writer_renames_into_place_only_when_done(tmp_path: Path) -> None:
    path = tmp_path / "atomic.mp4"
    with VideoWriter(path, 64, 48, FPS) as writer:
        for frame in gray_ramp(5, 64, 48):
            writer.write(frame)
        assert not path.exists()
        assert writer.frames_written == 5
    assert path.exists()
    assert os.listdir(tmp_path) == ["atomic.mp4"]
    assert count_frames(path) == 5


def test_writer_error_kills_ffmpeg_and_removes_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, 64, 48, FPS) as writer:
        # 60 frames (550 kB) overflow the pipe buffers, so writing returns only after ffmpeg has consumed
        # most of them, which means it has already opened its (partial) output file.
        for frame in gray_ramp(60, 64, 48):
            writer.write(frame)
        assert [name.startswith(".broken.") for name in os.listdir(tmp_path)] == [True]
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    assert ffmpeg_children() == []


def test_writer_removes_finished_temp_file_when_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "taken.mp4"
    target.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(OSError), VideoWriter(target, 64, 48, FPS) as writer:
        writer.write(solid(RED))
    assert os.listdir(tmp_path) == ["taken.mp4"]
    assert target.is_dir()


def test_writer_rejects_frame_of_wrong_size_and_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match"), VideoWriter(tmp_path / "x.mp4", 64, 48, FPS) as w:
        w.write(solid(RED, 32, 32))
    assert os.listdir(tmp_path) == []


def test_ffmpeg_failure_reports_its_stderr(tmp_path: Path) -> None:
    bad = EncoderConfig(codec="no_such_codec")
    with pytest.raises(MediaError, match="no_such_codec") as info:
        encode_video(gray_ramp(40, 64, 48), tmp_path / "x.mp4", FPS, encoder=bad)
    assert "encoding x.mp4" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_no_frames_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no frames"):
        encode_video([], tmp_path / "empty.mp4", FPS)
    with pytest.raises(MediaError, match="no frames"), VideoWriter(tmp_path / "empty.mp4", 64, 48, FPS):
        pass
    assert os.listdir(tmp_path) == []


def test_iter_frames_stopped_early_leaves_no_process(clip17: Path) -> None:
    frames = iter_frames(clip17)
    first = next(frames)
    np.testing.assert_allclose(centre_mean(first), RED, atol=4)
    assert len(ffmpeg_children()) == 1
    frames.close()
    assert ffmpeg_children() == []


def test_iter_frames_resizes_and_limits(clip17: Path) -> None:
    frames = list(iter_frames(clip17, width=32, height=20, max_frames=3))
    assert [f.shape for f in frames] == [(20, 32, 3)] * 3
    np.testing.assert_allclose(centre_mean(frames[1]), BLUE, atol=6)
    with pytest.raises(ValueError, match="both width and height"):
        iter_frames(clip17, width=32)


def test_rotated_video_decodes_upright_at_probed_size(tmp_path: Path) -> None:
    frame = solid((0, 0, 0))
    frame[:, :8] = RED  # a red strip on the left edge
    plain, rotated = tmp_path / "plain.mp4", tmp_path / "rotated.mp4"
    encode_video([frame], plain, FPS)
    tag = ["-metadata:s:v:0", "rotate=90"]  # how phones mark portrait video (display matrix)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy", *tag, str(rotated)], check=True)
    info = probe(rotated)
    if (info.width, info.height) == (64, 48):
        pytest.skip("this ffmpeg does not write the rotate tag")

    assert (info.width, info.height) == (48, 64)
    (decoded,) = read_frames(rotated)
    red_rows = (decoded[..., 0] > 128).all(axis=1)
    assert decoded.shape == (64, 48, 3)
    assert red_rows.sum() == 8  # the strip became full-width rows: rotated, not squashed


def test_count_frames_matches_decoding(clip17: Path) -> None:
    assert count_frames(clip17) == 17 == sum(1 for _ in iter_frames(clip17))


def test_corrupt_input_raises_media_error_with_stderr(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video" * 100)
    for call in (probe, count_frames, read_frames):
        with pytest.raises(MediaError, match="Invalid data found when processing input"):
            call(corrupt)
    with pytest.raises(MediaError, match="No such file"):
        probe(tmp_path / "missing.mp4")


def test_configured_binary_paths_are_used(tmp_path: Path, clip17: Path) -> None:
    missing = FFmpegTools(ffmpeg=str(tmp_path / "no-ffmpeg"), ffprobe=str(tmp_path / "no-ffprobe"))
    with pytest.raises(MediaError, match=r"executable not found: .*no-ffprobe"):
        count_frames(clip17, tools=missing)
    with pytest.raises(MediaError, match=r"executable not found: .*no-ffmpeg"):
        encode_video([solid(RED)], tmp_path / "x.mp4", FPS, tools=missing)


def test_ffprobe_timeout_is_a_media_error(clip17: Path) -> None:
    with pytest.raises(MediaError, match="timed out"):
        count_frames(clip17, timeout_s=0.0001)


def test_thumbnail_is_a_jpeg_of_the_first_frame(tmp_path: Path, clip17: Path) -> None:
    out = write_thumbnail(clip17, tmp_path / "thumb.jpg")
    assert out == tmp_path / "thumb.jpg"
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(out) as image:
        assert image.format == "JPEG"
        assert image.size == (64, 48)
        np.testing.assert_allclose(centre_mean(np.asarray(image.convert("RGB"))), RED, atol=6)
    assert sorted(os.listdir(tmp_path)) == ["thumb.jpg"]


def test_images_round_trip(tmp_path: Path) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    png = save_image(frame, tmp_path / "a.png")
    np.testing.assert_array_equal(np.asarray(load_image(png)), frame)
    jpg = save_image(solid(GREEN, 40, 30), tmp_path / "a.jpeg")
    loaded = load_image(jpg)
    assert loaded.mode == "RGB"
    np.testing.assert_allclose(centre_mean(np.asarray(loaded)), GREEN, atol=3)
    with pytest.raises(ValueError, match="unsupported image suffix"):
        save_image(frame, tmp_path / "a.gif")


def test_load_image_converts_to_rgb_and_reports_bad_files(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 6), (10, 20, 30, 128)).save(tmp_path / "rgba.png")
    Image.new("L", (8, 6), 77).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "rgba.png").getpixel((0, 0)) == (10, 20, 30)
    assert load_image(tmp_path / "gray.png").getpixel((0, 0)) == (77, 77, 77)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(MediaError, match=r"bad\.png"):
        load_image(tmp_path / "bad.png")


def test_a_decoder_that_produces_nothing_fails_after_the_read_deadline(tmp_path: Path) -> None:
    fifo = tmp_path / "never-written.mkv"
    os.mkfifo(fifo)  # ffmpeg blocks opening it: a hung input, like a stalled network mount
    frames = iter_frames(fifo, width=16, height=16, timeout_s=0.5)
    with pytest.raises(MediaError, match=r"decoding never-written.mkv: no output from ffmpeg for 0\.5 s"):
        next(frames)
    assert ffmpeg_children() == []
