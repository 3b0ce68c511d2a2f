"""Bridge media on real FFmpeg: spans, the guide and mask, streaming assembly, audio carried over."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from headless_wan.errors import MediaError
from headless_wan.media.audio import has_audio, mux_audio
from headless_wan.media.bridge import (
    Generated,
    SourceSpan,
    assemble,
    bridge_guide,
    read_span,
)
from headless_wan.media.guide import GUIDE_GREY
from headless_wan.media.video_io import count_frames, encode_video, read_frames
from tests.fixtures.travel.support import coloured_frames


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, np.ndarray]:
    frames = coloured_frames(20, 32, 48, base=100)
    path = tmp_path / "source.mp4"
    encode_video(frames, path, 16)
    return path, read_frames(path)


def test_read_span_returns_exactly_the_span(source: tuple[Path, np.ndarray]) -> None:
    path, decoded = source
    span = read_span(path, 5, 4, 48, 32)
    assert len(span) == 4
    for got, want in zip(span, decoded[5:9], strict=True):
        assert np.array_equal(got, want)
    with pytest.raises(MediaError, match=r"frames \[18, 24\) were needed, only 20 decode"):
        read_span(path, 18, 6, 48, 32)


def test_bridge_guide_keeps_context_and_greys_the_gap(source: tuple[Path, np.ndarray]) -> None:
    _, decoded = source
    guide = bridge_guide(list(decoded[:3]), 5, list(decoded[10:12]), 48, 32, padding=2)
    assert guide.frames.shape == (12, 32, 48, 3)
    assert [int(m.max()) for m in guide.mask] == [0] * 3 + [255] * 5 + [0] * 2 + [255] * 2
    assert [int(m.min()) for m in guide.mask] == [0] * 3 + [255] * 5 + [0] * 2 + [255] * 2
    assert np.array_equal(guide.frames[1], decoded[1])
    assert np.array_equal(guide.frames[9], decoded[11])
    assert np.all(guide.frames[3:8] == GUIDE_GREY) and np.all(guide.frames[10:] == GUIDE_GREY)


def test_assemble_streams_spans_and_generated_frames(source: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, decoded = source
    gap = np.full((7, 32, 48, 3), 200, dtype=np.uint8)
    out = tmp_path / "joined.mp4"
    written = assemble([SourceSpan(path, 0, 8), Generated(gap), SourceSpan(path, 12, 20)], out, 48, 32, 16)
    assert written == count_frames(out) == 8 + 7 + 8
    result = read_frames(out)
    # one more CRF-18 encode of flat frames: within a few levels
    assert np.abs(result[3].astype(int) - decoded[3].astype(int)).max() <= 3
    assert np.abs(result[15].astype(int) - decoded[12].astype(int)).max() <= 3
    assert np.abs(result[10].astype(int) - 200).max() <= 3
    with pytest.raises(MediaError, match=r"frames \[15, 25\) were needed, only 20 decode"):
        assemble([SourceSpan(path, 15, 25)], tmp_path / "short.mp4", 48, 32, 16)


def test_audio_is_muxed_from_a_source_that_has_it(tmp_path: Path) -> None:
    with_audio = tmp_path / "with_audio.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=48x32:rate=16:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-shortest", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(with_audio)],
        check=True,
    )  # fmt: skip
    silent = tmp_path / "silent.mp4"
    encode_video(coloured_frames(16, 32, 48, base=7), silent, 16)
    assert has_audio(with_audio) and not has_audio(silent)
    assert mux_audio(silent, silent) is False
    assert mux_audio(silent, with_audio, offset_s=0.5) is True
    assert has_audio(silent)
    assert count_frames(silent) == 16  # the video stream was copied, not re-encoded or cut


def test_a_reversed_span_is_written_last_frame_first_in_chunks(tmp_path: Path) -> None:
    # 28 frames of distinct flat colours; [1, 27) backwards spans two 16-frame decode chunks.
    path = tmp_path / "long.mp4"
    encode_video(coloured_frames(28, 32, 48, base=60), path, 16)
    decoded = read_frames(path)
    out = tmp_path / "reversed.mp4"
    assert assemble([SourceSpan(path, 1, 27, reverse=True)], out, 48, 32, 16) == 26
    result = read_frames(out)
    errors = np.abs(result[:, None].astype(int) - decoded[None].astype(int)).mean(axis=(2, 3, 4))
    assert errors.argmin(axis=1).tolist() == list(range(26, 0, -1))  # each the nearest of the source's frames
    assert errors.min(axis=1).max() < 3
    with pytest.raises(MediaError, match=r"frames \[20, 35\) were needed, only 28 decode"):
        assemble([SourceSpan(path, 20, 35, reverse=True)], tmp_path / "short.mp4", 48, 32, 16)


def test_audio_spans_are_laid_end_to_end(tmp_path: Path) -> None:
    from headless_wan.media.audio import AudioSpan, mux_audio_spans
    from tests.integration.join.conftest import audio_samples, rms

    tone = tmp_path / "tone.mp4"
    encode_video(coloured_frames(16, 32, 48, base=1), tmp_path / "v.mp4", 16)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(tmp_path / "v.mp4"), "-f", "lavfi", "-i", "sine=duration=1",
         "-c:v", "copy", "-c:a", "aac", str(tone)],
        check=True,
    )  # fmt: skip
    video = tmp_path / "out.mp4"
    encode_video(coloured_frames(48, 32, 48, base=9), video, 16)  # 3 s
    silent = tmp_path / "silent.mp4"
    encode_video(coloured_frames(16, 32, 48, base=5), silent, 16)
    assert mux_audio_spans(video, [AudioSpan(silent, 0, 3)]) is False
    spans = [AudioSpan(tone, 0.5, 0.5), AudioSpan(None, 0, 1), AudioSpan(tone, 0.5, 1.5)]
    assert mux_audio_spans(video, spans) is True
    samples = audio_samples(video)
    assert abs(len(samples) / 48000 - 3.0) < 0.05 and count_frames(video) == 48
    # tone, silence, then the tone's last half second padded with silence to the span's 1.5 s
    assert rms(samples, 0.05, 0.45) > 0.05 and rms(samples, 0.55, 1.45) < 0.005
    assert rms(samples, 1.55, 1.95) > 0.05 and rms(samples, 2.1, 2.9) < 0.005
