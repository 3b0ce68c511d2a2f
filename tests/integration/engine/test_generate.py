"""Engine.generate on the tiny model: output, progress, determinism, cancel, cache, failures."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import headless_wan.engine.generate as engine_generate
from headless_wan.errors import ConfigError, EngineOOM, InvalidTaskParams, TaskCancelled, WorkerFatal

from .conftest import FRAMES, SIZE, tiny_request

pytestmark = pytest.mark.slow


def test_frames_shape_and_progress_events(make_engine) -> None:
    engine = make_engine()
    events: list[tuple] = []
    result = engine.generate(tiny_request(steps=3), on_progress=lambda *e: events.append(e))
    assert result.frames.shape == (FRAMES, SIZE, SIZE, 3) and result.frames.dtype == np.uint8
    assert events == [
        ("loading_model", 0, 1), ("loading_model", 1, 1),
        ("denoising", 1, 3), ("denoising", 2, 3), ("denoising", 3, 3), ("decoding", 0, 1),
    ]  # fmt: skip
    assert result.settings["steps"] == 3 and result.settings["preset"] == "tiny"
    assert result.metrics["model_reused"] == 0.0 and result.metrics["load_s"] > 0


def test_progress_is_throttled(make_engine) -> None:
    engine = make_engine(progress_interval_s=3600.0)
    events: list[tuple] = []
    engine.generate(tiny_request(steps=3), on_progress=lambda *e: events.append(e))
    assert [e for e in events if e[0] == "denoising"] == [("denoising", 1, 3), ("denoising", 3, 3)]


def test_same_seed_same_frames_other_seed_other_frames(make_engine) -> None:
    engine = make_engine()
    first = engine.generate(tiny_request(seed=11)).frames
    again = engine.generate(tiny_request(seed=11)).frames
    other = engine.generate(tiny_request(seed=12)).frames
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_guide_mask_and_reference_of_other_sizes_are_fitted(make_engine) -> None:
    engine = make_engine()
    guide = np.full((FRAMES, 40, 72, 3), 128, np.uint8)
    mask = np.full((FRAMES, 40, 72), 255, np.uint8)
    mask[0] = 0
    reference = Image.new("RGB", (20, 48), (200, 30, 30))
    result = engine.generate(tiny_request(guide=guide, mask=mask, reference_images=(reference,)))
    assert result.frames.shape == (FRAMES, SIZE, SIZE, 3)
    assert result.settings["video_guide"] and result.settings["reference_images"] == 1


def test_cancel_mid_run_raises_and_the_engine_stays_usable(make_engine) -> None:
    engine = make_engine()
    steps_done: list[int] = []

    def progress(stage: str, step: int, total: int) -> None:
        if stage == "denoising":
            steps_done.append(step)

    with pytest.raises(TaskCancelled):
        engine.generate(
            tiny_request(steps=4), on_progress=progress, cancel_check=lambda: len(steps_done) >= 1
        )
    assert steps_done == [1]  # stopped within the step after the cancel
    assert engine.generate(tiny_request()).frames.shape[0] == FRAMES


def test_cancel_before_start_loads_nothing(make_engine) -> None:
    engine = make_engine()
    with pytest.raises(TaskCancelled):
        engine.generate(tiny_request(), cancel_check=lambda: True)
    assert engine.load_count == 0


def test_same_preset_reuses_and_switching_releases(make_engine) -> None:
    engine = make_engine()
    engine.generate(tiny_request())
    second = engine.generate(tiny_request(seed=5))
    assert engine.load_count == 1 and second.metrics["model_reused"] == 1.0 and second.metrics["load_s"] == 0
    old = weakref.ref(engine._cache.current.pipe)
    engine.generate(tiny_request(model="tiny-2experts"))
    gc.collect()
    assert engine.load_count == 2 and old() is None


def test_presets_sharing_weights_share_the_pipeline(make_engine, tmp_path: Path) -> None:
    presets = tmp_path / "presets.toml"
    presets.write_text(
        '[presets.a]\nweights = "builtin:tiny"\ndtype = "float32"\nsteps = 2\nmax_pixels = 4096\n'
        '[presets.b]\nweights = "builtin:tiny"\ndtype = "float32"\nsteps = 3\nsolver = "euler"\nmax_pixels = 4096\n'
    )
    engine = make_engine(presets_file=presets)
    engine.generate(tiny_request(model="a", steps=None))
    result = engine.generate(tiny_request(model="b", steps=None))
    assert engine.load_count == 1 and result.settings["steps"] == 3 and result.settings["solver"] == "euler"


def test_local_checkpoint_folder_loads_through_from_pretrained(make_engine, tmp_path: Path) -> None:
    from headless_wan.engine import tiny

    tiny.build_pipeline(seed=0).save_pretrained(tmp_path / "ckpt")
    presets = tmp_path / "presets.toml"
    presets.write_text(
        f'[presets.local]\nweights = "{tmp_path / "ckpt"}"\ndtype = "float32"\nmax_pixels = 4096\n'
        '[presets.tiny]\nweights = "builtin:tiny"\ndtype = "float32"\nmax_pixels = 4096\n'
    )
    engine = make_engine(presets_file=presets)
    from_folder = engine.generate(tiny_request(model="local")).frames
    builtin = engine.generate(tiny_request(model="tiny")).frames
    assert np.array_equal(from_folder, builtin)


def test_failed_load_leaves_the_cache_empty_and_usable(make_engine, tmp_path: Path) -> None:
    presets = tmp_path / "presets.toml"
    presets.write_text(
        f'[presets.missing]\nweights = "{tmp_path / "nowhere"}"\nmax_pixels = 4096\n'
        '[presets.tiny]\nweights = "builtin:tiny"\ndtype = "float32"\nmax_pixels = 4096\n'
    )
    engine = make_engine(presets_file=presets)
    engine.generate(tiny_request())
    with pytest.raises(ConfigError, match="cannot load model weights"):
        engine.generate(tiny_request(model="missing"))
    assert engine._cache.current is None
    assert engine.generate(tiny_request()).frames.shape[0] == FRAMES


def test_unknown_model_fails_before_loading(make_engine) -> None:
    engine = make_engine()
    with pytest.raises(InvalidTaskParams, match="model: unknown model 'vace_99B'"):
        engine.generate(tiny_request(model="vace_99B"))
    with pytest.raises(InvalidTaskParams, match="num_frames"):
        engine.generate(tiny_request(num_frames=16))
    assert engine.load_count == 0


@pytest.mark.parametrize(
    ("raised", "expected", "text"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 1 GiB"), EngineOOM, "32x32, 17 frames"),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), WorkerFatal, "unrecoverable"),
    ],
)
def test_device_failures_are_translated(make_engine, monkeypatch, raised, expected, text) -> None:
    engine = make_engine()
    engine.generate(tiny_request())

    def failing(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(engine_generate, "_run_pipeline", failing)
    with pytest.raises(expected, match=text):
        engine.generate(tiny_request())
    monkeypatch.undo()
    assert engine.generate(tiny_request()).frames.shape[0] == FRAMES  # the worker carries on


def test_fitness_report_on_cpu(make_engine) -> None:
    report = make_engine().fitness("tiny")
    assert (report.device, report.preset, report.memory_profile, report.fits) == (
        "cpu",
        "tiny",
        "resident",
        True,
    )
    offload = make_engine(memory_profile="model_offload").fitness("tiny")
    assert not offload.fits and "needs a CUDA device" in offload.problems[0]
