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
