"""Fixtures for the bridge tasks: a tiny VACE engine on the CPU, distinct test clips, PSNR."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from headless_wan.engine import Engine, EngineConfig
from headless_wan.media.video_io import encode_video

SIZE = 64


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One engine per module: the tiny pipeline is built once and stays resident, as in the worker."""
    loras = tmp_path_factory.mktemp("loras")
    engine = Engine(
        EngineConfig(device="cpu", model_override="tiny", lora_cache_dir=loras, progress_interval_s=0.0)
    )
    yield engine
    engine.close()


def textured_frames(count: int, seed: int, width: int = SIZE, height: int = SIZE) -> np.ndarray:
    """Smooth moving gradients (compress well, so one CRF-18 encode stays far above 35 dB), distinct per
    clip and per frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        phase = index * 0.15 + seed
        frames[index, ..., 0] = 128 + 100 * np.sin(x / 9.0 + phase)
        frames[index, ..., 1] = 128 + 100 * np.cos(y / 11.0 - phase)
        frames[index, ..., 2] = (40 * seed + 3 * index) % 256
    return frames


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    def make(
        name: str, count: int, seed: int, fps: float = 16, width: int = SIZE, height: int = SIZE
    ) -> Path:
        path = tmp_path / "clips" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        encode_video(textured_frames(count, seed, width, height), path, fps)
        return path

    return make


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def add_sine(video: Path, out: Path, frequency: int = 440) -> Path:
    """`video` with a full-length sine audio track (the lavfi `sine` source), video stream copied."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-f", "lavfi", "-i",
         f"sine=frequency={frequency}:sample_rate=48000:duration=60", "-map", "0:v", "-map", "1:a",
         "-c:v", "copy", "-c:a", "aac", "-shortest", str(out)],
        check=True,
    )  # fmt: skip
    return out


def audio_samples(path: Path) -> np.ndarray:
    """The file's first audio track decoded to mono float32 at 48 kHz."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "48000",
         "-f", "f32le", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.float32)


def rms(samples: np.ndarray, start_s: float, end_s: float) -> float:
    window = samples[int(start_s * 48000) : int(end_s * 48000)]
    return float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) if len(window) else 0.0


def dominant_hz(samples: np.ndarray, start_s: float, end_s: float) -> float:
    """The strongest frequency in the window (to tell which clip's sine is playing)."""
    window = samples[int(start_s * 48000) : int(end_s * 48000)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    return float(np.fft.rfftfreq(len(window), 1 / 48000)[int(np.argmax(spectrum))])
