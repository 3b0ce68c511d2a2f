"""The shipped travel example through `python -m headless_wan run`, as a task file copied from the app
carries it: without `project_id`. `run` and the embedded queue must still run it (a project is only
Reigh's requirement). Tiny model, real FFmpeg; the stitched length is the planned one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from headless_wan.handlers import planning
from headless_wan.media.video_io import count_frames
from tests.integration.queue.conftest import REPO, Site

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "travel_3_images.json"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headless_wan", *args, "--model-override", "tiny"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_run_a_travel_task_file_without_project_id(tmp_path: Path) -> None:
    task = json.loads(EXAMPLE.read_text())
    task.pop("project_id", None)
    task["params"].pop("project_id", None)
    task["params"]["orchestrator_details"].pop("project_id", None)
    task_file = tmp_path / "travel.json"
    task_file.write_text(json.dumps(task))
    done = _cli(Site(tmp_path).env(), "run", str(task_file))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "project_id" not in done.stderr
    output = Path(done.stdout.strip().splitlines()[-1])
    assert output.is_file() and tmp_path in output.parents  # HW_OUTPUT_DIR, not the working directory
    details = task["params"]["orchestrator_details"]
    plan = planning.plan_travel(
        details["segment_frames_expanded"], details["frame_overlap_expanded"][:1], chained=True
    )
    assert count_frames(output) == plan.stitched_length
