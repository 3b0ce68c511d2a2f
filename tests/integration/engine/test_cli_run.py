"""`python -m headless_wan run examples/generate_video.json --model-override tiny` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from headless_wan.media import video_io

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "generate_video.json"


def test_run_vace_example_on_the_tiny_model(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "headless_wan", "run", str(EXAMPLE), "--model-override", "tiny",
         "--output-dir", str(tmp_path / "out"), "--log-level", "WARNING"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    output = Path(completed.stdout.strip().splitlines()[-1])
    assert output.suffix == ".mp4" and output.is_file()
    expected_frames = json.loads(EXAMPLE.read_text())["params"]["video_length"]
    assert video_io.count_frames(output) == expected_frames
    assert output.with_name(output.stem + "_thumb.jpg").is_file()


@pytest.mark.parametrize(
    ("example", "size"),
    [("z_image_turbo.json", (64, 48)), ("z_image_turbo_i2i.json", (128, 128))],
)
def test_run_image_examples_on_the_tiny_image_model(tmp_path: Path, example: str, size: tuple) -> None:
    from PIL import Image

    repo = EXAMPLE.parents[1]
    completed = subprocess.run(
        [sys.executable, "-m", "headless_wan", "run", str(repo / "examples" / example), "--model-override",
         "tiny", "--output-dir", str(tmp_path / "out"), "--log-level", "WARNING"],
        cwd=repo, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    output = Path(completed.stdout.strip().splitlines()[-1])
    with Image.open(output) as png:
        assert (png.format, png.size) == ("PNG", size)
    sidecar = json.loads(output.with_name(output.stem + ".settings.json").read_text())
    assert sidecar["preset"] == "tiny-zimage" and sidecar["task_type"] == example.removesuffix(".json")


@pytest.mark.parametrize(
    ("example", "size", "preset"),
    [("qwen_image_edit.json", (64, 64), "tiny-qwen-edit"), ("image_inpaint.json", (64, 64), "tiny-qwen-edit"),
     ("annotated_image_edit.json", (64, 64), "tiny-qwen-edit"), ("qwen_image_style.json", (128, 128), "tiny-qwen-edit")],
)  # fmt: skip
def test_run_edit_examples_on_the_tiny_edit_model(
    tmp_path: Path, example: str, size: tuple, preset: str
) -> None:
    from PIL import Image

    from headless_wan.handlers import edits

    from .qwen_fixtures import seed_lora_cache

    # The task LoRAs (hub URLs) are found in the LoRA cache, as after a first download.
    seed_lora_cache(tmp_path / "loras", (edits.INPAINT_LORA, edits.ANNOTATE_LORA, edits.STYLE_LORA))
    repo = EXAMPLE.parents[1]
    completed = subprocess.run(
        [sys.executable, "-m", "headless_wan", "run", str(repo / "examples" / example), "--model-override",
         "tiny", "--output-dir", str(tmp_path / "out"), "--log-level", "WARNING"],
        cwd=repo, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HW_LORA_CACHE_DIR": str(tmp_path / "loras")},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    output = Path(completed.stdout.strip().splitlines()[-1])
    with Image.open(output) as image:
        assert image.size == size and image.format == ("JPEG" if output.suffix == ".jpg" else "PNG")
    sidecar = json.loads(output.with_name(output.stem + ".settings.json").read_text())
    assert sidecar["preset"] == preset and sidecar["task_type"] == example.removesuffix(".json")
