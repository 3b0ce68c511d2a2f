"""The app-made `travel_stitch` (crossfade join: `clip_urls`, no orchestrator fields) on real FFmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.travel import TravelConfig, travel_handlers
from headless_wan.media.audio import has_audio
from headless_wan.media.video_io import count_frames, read_frames
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import FakeEngine, claim_type, drain, run_claim
from tests.integration.join.conftest import psnr

CONFIG = TravelConfig(allow_local_inputs=True)


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"), max_attempts=3)


def _stitch_handler():
    return {h.task_type: h for h in travel_handlers(FakeEngine(), CONFIG)}["travel_stitch"]


def test_app_crossfade_join_stitches_the_clips_with_their_overlaps(queue, tmp_path: Path, make_clip) -> None:
    clips = [make_clip(f"c{i}.mp4", 20, seed=i + 1) for i in range(3)]
    audio = tmp_path / "audio.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=1",
            "-c:a",
            "aac",
            str(audio),
        ],
        check=True,
    )
    params = {
        "clip_urls": [str(path) for path in clips], "frame_overlap_settings_expanded": [4, 6],
        "audio_url": str(audio), "parent_generation_id": "gen-1", "shot_id": "shot-1",
        "full_orchestrator_payload": {"run_id": "r1"}, "tool_type": "join-clips",
    }  # fmt: skip
    task_id = queue.enqueue(NewTask("travel_stitch", params, project_id="p1"))
    drain(queue, [_stitch_handler()], tmp_path / "work")
    task = queue.get(task_id)
    assert task is not None and task.status is TaskStatus.COMPLETE, task
    output = Path(task.output_location or "")
    assert count_frames(output) == 60 - 4 - 6
    assert has_audio(output)  # one second of audio padded to the video's length
    got, first = read_frames(output), read_frames(clips[0])
    assert psnr(got[:16], first[:16]) >= 35  # before the first crossfade: clip 0 as it was


@pytest.mark.parametrize(
    ("overlaps", "needle"),
    [
        ([4], r"frame_overlap_settings_expanded: 3 clips need 2 overlap\(s\), got 1"),
        ([4, 0], "overlaps must be positive"),
        ([4, 25], r"frame_overlap_settings_expanded\[1\]: 25 frames do not fit between clips of 20 and 20"),
    ],
)
def test_bad_crossfade_join_fails_naming_the_field(
    queue, tmp_path: Path, make_clip, overlaps, needle
) -> None:
    clips = [str(make_clip(f"c{i}.mp4", 20, seed=i + 1)) for i in range(3)]
    queue.enqueue(NewTask("travel_stitch", {"clip_urls": clips, "frame_overlap_settings_expanded": overlaps}))
    claim = claim_type(queue, "travel_stitch")
    with pytest.raises(InvalidTaskParams, match=needle):
        run_claim(queue, _stitch_handler(), claim, tmp_path / "work")


def test_a_clip_that_cannot_be_fetched_is_named(queue, tmp_path: Path, make_clip) -> None:
    from headless_wan.errors import InputUnavailable

    clips = [str(make_clip("c0.mp4", 20, seed=1)), str(tmp_path / "missing.mp4")]
    queue.enqueue(NewTask("travel_stitch", {"clip_urls": clips, "frame_overlap_settings_expanded": [4]}))
    claim = claim_type(queue, "travel_stitch")
    with pytest.raises((InputUnavailable, InvalidTaskParams), match=r"clip_urls\[1\]"):
        run_claim(queue, _stitch_handler(), claim, tmp_path / "work")
