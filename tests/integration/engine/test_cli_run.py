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
