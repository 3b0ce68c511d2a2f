"""Join clips and inpaint frames end to end on the tiny VACE model, real FFmpeg, the in-memory queue:
exact decoded frame counts, and the kept frames are the source's (PSNR ≥ 35 dB after one encode)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.handlers.bridge_planning import JoinSpec, plan_chain, plan_window
from headless_wan.handlers.join import JoinConfig, join_handlers
from headless_wan.handlers.travel_inputs import TravelConfig
from headless_wan.media.video_io import count_frames, read_frames
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import PROJECT, claim_type, drain, make_context, run_claim
from tests.integration.join.conftest import psnr

pytestmark = pytest.mark.slow

CONFIG = JoinConfig(inputs=TravelConfig(allow_local_inputs=True), max_join_clips=8)
SIZE = 32
"""Frames of these runs (32x32: 2x2 latent tokens, the smallest the tiny model takes; kept-frame PSNR
does not depend on the size)."""


@pytest.fixture
def make_clip(make_clip: Callable[..., Path]) -> Callable[..., Path]:
    return functools.partial(make_clip, width=SIZE, height=SIZE)


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"), max_attempts=3)


def join_payload(clips: list[Path], **details: object) -> dict:
    body = {
        "clip_list": [{"url": str(path)} for path in clips],
        "run_id": "run-join-1",
        "context_frame_count": 4,
        "gap_frame_count": 9,
        "replace_mode": True,
        "prompt": "a smooth transition",
        "num_inference_steps": 1,
        "seed": 5,
        "fps": 16,
    }
    body.update(details)
    return {"orchestrator_details": body, "parent_generation_id": "gen-parent"}


def test_join_three_clips_replace_mode_exact_length_and_kept_frames(
    queue: InMemoryQueue, tmp_path: Path, tiny_engine, make_clip
) -> None:
    clips = [make_clip(f"clip{i}.mp4", 25, seed=i + 1) for i in range(3)]
    orchestrator_id = queue.enqueue(
        NewTask("join_clips_orchestrator", join_payload(clips), project_id=PROJECT)
    )
    drain(queue, join_handlers(tiny_engine, CONFIG), tmp_path / "work")

    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.COMPLETE, orchestrator
    children = queue.children(orchestrator_id)
    assert [c.task_type for c in children] == ["join_clips_segment"] * 2 + ["join_final_stitch"]
    assert [c.params["join_index"] for c in children[:2]] == [0, 1]
    assert [c.params["is_last_join"] for c in children[:2]] == [False, True]
    assert children[1].dependant_on == (children[0].id,)
    assert set(children[2].dependant_on) == {children[0].id, children[1].id}
    assert children[0].params["orchestrator_task_id_ref"] == orchestrator_id
    assert children[0].params["run_id"] == "run-join-1"
    assert children[0].params["full_orchestrator_payload"]["clip_list"][0]["url"] == str(clips[0])

    plan = plan_chain([25, 25, 25], [JoinSpec(4, 9, True)] * 2)
    assert plan.output_frames == 75
    assert [count_frames(Path(c.output_location or "")) for c in children[:2]] == [17, 17]
    final = Path(orchestrator.output_location or "")
    assert final == Path(children[2].output_location or "")
    assert count_frames(final) == 75
    joined = read_frames(final)
    sources = [read_frames(path) for path in clips]
    cursor = 0
    for index, span in enumerate(plan.spans):
        kept = joined[cursor : cursor + span.frames]
        assert psnr(kept, sources[index][span.start : span.end]) >= 35, index
        cursor += span.frames + (plan.bridges[index].gap if index < 2 else 0)
    assert cursor == 75


def test_join_insert_mode_with_fps_conversion_and_crop(
    queue: InMemoryQueue, tmp_path: Path, tiny_engine, make_clip
) -> None:
    # 32 fps clips resampled to 16 fps; the second clip is wider and gets centre-cropped to 32x32.
    clips = [make_clip("a.mp4", 30, seed=1, fps=32), make_clip("b.mp4", 30, seed=2, fps=32, width=48)]
    payload = join_payload(clips, replace_mode=False, gap_frame_count=6)
    orchestrator_id = queue.enqueue(NewTask("join_clips_orchestrator", payload, project_id=PROJECT))
    drain(queue, join_handlers(tiny_engine, CONFIG), tmp_path / "work")
    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.COMPLETE, orchestrator
    plan = plan_chain([15, 15], [JoinSpec(4, 6, False)])
    assert plan.bridges[0].gap == 5  # 4 + 6 + 4 = 14 → 13
    final = Path(orchestrator.output_location or "")
    assert count_frames(final) == plan.output_frames == 35
    assert read_frames(final).shape[1:3] == (SIZE, SIZE)


def test_loop_first_clip_on_the_tiny_model(
    queue: InMemoryQueue, tmp_path: Path, tiny_engine, make_clip
) -> None:
    # The app's loop payload: its one clip twice and loop_first_clip.
    clip = make_clip("loop.mp4", 13, seed=6)
    payload = join_payload([clip, clip], loop_first_clip=True, context_frame_count=2, gap_frame_count=5)
    orchestrator_id = queue.enqueue(NewTask("join_clips_orchestrator", payload, project_id=PROJECT))
    drain(queue, join_handlers(tiny_engine, CONFIG), tmp_path / "work")
    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.COMPLETE, orchestrator
    plan = plan_chain([13, 13], [JoinSpec(2, 5, True)])
    (head, tail), bridge = plan.spans, plan.bridges[0]
    assert (plan.output_frames, bridge.total) == (26, 9)
    joined, source = read_frames(Path(orchestrator.output_location or "")), read_frames(clip)
    assert len(joined) == 26
    assert psnr(joined[: head.frames], source[head.start : head.end]) >= 35
    assert psnr(joined[-tail.frames :], source[::-1][tail.start : tail.end]) >= 35
    assert psnr(joined[head.frames : head.frames + bridge.gap], source[-bridge.gap :]) < 30  # generated


def test_inpaint_keeps_the_length_and_the_frames_outside_the_window(
    queue: InMemoryQueue, tmp_path: Path, tiny_engine, make_clip
) -> None:
    source = make_clip("source.mp4", 33, seed=3)
    params = {
        "video_path": str(source), "inpaint_start_frame": 10, "inpaint_end_frame": 20,
        "context_frame_count": 4, "prompt": "fix it", "num_inference_steps": 1, "seed": 1,
    }  # fmt: skip
    task_id = queue.enqueue(NewTask("inpaint_frames", params, project_id=PROJECT))
    drain(queue, join_handlers(tiny_engine, CONFIG), tmp_path / "work")
    task = queue.get(task_id)
    assert task is not None and task.status is TaskStatus.COMPLETE, task
    plan = plan_window(33, 10, 20, 4)
    assert (plan.context_before, plan.context_after, plan.total) == (4, 3, 17)
    output = Path(task.output_location or "")
    assert count_frames(output) == 33
    got, want = read_frames(output), read_frames(source)
    assert psnr(got[:10], want[:10]) >= 35 and psnr(got[20:], want[20:]) >= 35
    assert psnr(got[10:20], want[10:20]) < 30  # the window really was regenerated
    assert (output.parent / f"{output.stem}.settings.json").is_file()


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (
            {"inpaint_start_frame": 30, "inpaint_end_frame": 40},
            r"window \[30, 40\) must be non-empty and inside",
        ),
        ({"inpaint_start_frame": 12, "inpaint_end_frame": 12}, r"window \[12, 12\)"),
    ],
)
def test_inpaint_window_outside_the_video_fails_before_generation(
    queue: InMemoryQueue, tmp_path: Path, make_clip, params, needle
) -> None:
    source = make_clip("short.mp4", 33, seed=2)
    engine = _NoEngine()
    task_id = queue.enqueue(NewTask("inpaint_frames", {"video_path": str(source), **params}))
    from headless_wan.errors import InvalidTaskParams

    claim = claim_type(queue, "inpaint_frames")
    handler = {h.task_type: h for h in join_handlers(engine, CONFIG)}["inpaint_frames"]
    with pytest.raises(InvalidTaskParams, match=needle):
        run_claim(queue, handler, claim, tmp_path / "work")
    assert engine.generated == 0 and task_id == claim.id


class _NoEngine:
    """Counts generations; a bad window must fail before any."""

    generated = 0

    def family(self, model: str | None) -> str:
        return "vace"

    def validate(self, request: object) -> None:
        pass

    def prepare(self, request: object, **_: object) -> None:
        pass

    def generate(self, request: object, **_: object) -> object:
        self.generated += 1
        raise AssertionError("no generation expected")


def test_clips_that_cannot_be_decoded_or_are_too_short_fail_before_any_child(
    queue: InMemoryQueue, tmp_path: Path, make_clip
) -> None:
    from headless_wan.errors import InputUnavailable, InvalidTaskParams

    handler = {h.task_type: h for h in join_handlers(_NoEngine(), CONFIG)}["join_clips_orchestrator"]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    good = make_clip("good.mp4", 25, seed=1)
    one = make_clip("one.mp4", 1, seed=2)
    cases = [
        ([good, broken], InputUnavailable, r"clip_list\[1\]: not a readable video"),
        (
            [good, one],
            InvalidTaskParams,
            r"clip_list\[1\]: a clip needs at least 2 frames to be joined, it has 1",
        ),
        ([good, good, good], InvalidTaskParams, r"join 0 .*gap_frame_count: replacing 53 frames"),
        (
            [good] * 9,
            InvalidTaskParams,
            r"clip_list: 9 clips, this worker joins at most 8 \(HW_MAX_JOIN_CLIPS\)",
        ),
    ]
    for clips, error, needle in cases:
        payload = join_payload(clips, gap_frame_count=53)
        queue.enqueue(NewTask("join_clips_orchestrator", payload, project_id=PROJECT))
        claim = claim_type(queue, "join_clips_orchestrator")
        with pytest.raises(error, match=needle):
            run_claim(queue, handler, claim, tmp_path / "work")
        assert queue.children(claim.id) == []
        queue.fail(claim, "expected")


def test_edit_video_regenerates_only_the_portions_and_keeps_the_audio(
    queue: InMemoryQueue, tmp_path: Path, tiny_engine, make_clip
) -> None:
    import subprocess

    from headless_wan.handlers.bridge_planning import plan_portions
    from headless_wan.media.audio import has_audio

    silent = make_clip("silent.mp4", 41, seed=4)
    source = tmp_path / "source_with_audio.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(silent), "-f", "lavfi", "-i", "sine=frequency=330:duration=3",
         "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(source)],
        check=True,
    )  # fmt: skip
    details = {
        "source_video_url": str(source), "run_id": "run-edit-1", "context_frame_count": 4, "seed": 2,
        "num_inference_steps": 1, "prompt": "edit",
        "portions_to_regenerate": [
            {"start_frame": 25, "end_frame": 30, "gap_frame_count": 9, "prompt": "second"},
            {"start_frame": 5, "end_frame": 12},
        ],
    }  # fmt: skip
    orchestrator_id = queue.enqueue(
        NewTask("edit_video_orchestrator", {"orchestrator_details": details}, project_id=PROJECT)
    )
    drain(queue, join_handlers(tiny_engine, CONFIG), tmp_path / "work")
    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.COMPLETE, orchestrator
    children = queue.children(orchestrator_id)
    assert [c.task_type for c in children] == ["join_clips_segment"] * 2 + ["join_final_stitch"]
    assert [c.params["prompt"] for c in children[:2]] == ["edit", "second"]

    first, second = plan_portions(41, [(5, 12, None), (25, 30, 9)], 4)
    assert (first.gap, first.total, second.gap, second.total) == (7, 13, 9, 17)
    output = Path(orchestrator.output_location or "")
    assert count_frames(output) == 41 - 7 + 7 - 5 + 9 == 45
    got, want = read_frames(output), read_frames(source)
    assert psnr(got[:5], want[:5]) >= 35
    assert psnr(got[12:25], want[12:25]) >= 35
    assert psnr(got[34:], want[30:]) >= 35
    assert psnr(got[5:12], want[5:12]) < 30
    assert has_audio(output)


def test_edit_with_overlapping_portions_fails_before_any_child(
    queue: InMemoryQueue, tmp_path: Path, make_clip
) -> None:
    from headless_wan.errors import InvalidTaskParams

    source = make_clip("source.mp4", 30, seed=1)
    handler = {h.task_type: h for h in join_handlers(_NoEngine(), CONFIG)}["edit_video_orchestrator"]
    cases = [
        (
            [{"start_frame": 5, "end_frame": 15}, {"start_frame": 10, "end_frame": 20}],
            r"\[5, 15\) and \[10, 20\) overlap",
        ),
        (
            [{"start_frame": 25, "end_frame": 40}],
            r"portion \[25, 40\) must be non-empty and inside the video's 30 frames",
        ),
    ]
    for portions, needle in cases:
        details = {"source_video_url": str(source), "portions_to_regenerate": portions}
        queue.enqueue(NewTask("edit_video_orchestrator", {"orchestrator_details": details}))
        claim = claim_type(queue, "edit_video_orchestrator")
        with pytest.raises(InvalidTaskParams, match=needle):
            run_claim(queue, handler, claim, tmp_path / "work")
        assert queue.children(claim.id) == []
        queue.fail(claim, "expected")


def test_join_orchestrator_rerun_creates_only_missing_children(
    queue: InMemoryQueue, tmp_path: Path, make_clip
) -> None:

    clips = [make_clip(f"r{i}.mp4", 25, seed=i) for i in range(3)]
    handler = {h.task_type: h for h in join_handlers(_NoEngine(), CONFIG)}["join_clips_orchestrator"]
    orchestrator_id = queue.enqueue(
        NewTask("join_clips_orchestrator", join_payload(clips), project_id=PROJECT)
    )
    claim = claim_type(queue, "join_clips_orchestrator")
    params = handler.params_model.model_validate(claim.task.params)
    first = handler.run(make_context(queue, claim, tmp_path / "w1"), params)
    second = handler.run(make_context(queue, claim, tmp_path / "w2"), params)
    assert first.waiting and second.waiting
    assert second.message == "Enqueued 0 join task(s) for run run-join-1"
    children = queue.children(orchestrator_id)
    assert [c.task_type for c in children] == ["join_clips_segment"] * 2 + ["join_final_stitch"]
