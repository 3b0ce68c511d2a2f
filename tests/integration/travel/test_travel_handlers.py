"""Segment and stitch handlers on real files: images over loopback HTTP, real mp4 segments, a fake engine.

The whole chained flow runs through `InMemoryQueue` (orchestrator → segments → stitch) and the decoded
frame count of the final video is checked against the plan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, TaskStatus
from headless_wan.errors import InputUnavailable, InvalidTaskParams, TransientError
from headless_wan.handlers import planning
from headless_wan.handlers.travel import TravelConfig, travel_handlers
from headless_wan.handlers.travel_stitch import TravelStitchHandler, select_segments
from headless_wan.media.video_io import count_frames, encode_video, read_frames
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import (
    PROJECT,
    RUN_ID,
    FakeEngine,
    claim_type,
    coloured_frames,
    drain,
    enqueue_orchestrator,
    generated_colour,
    make_context,
    orchestrator_payload,
    run_claim,
)
from tests.integration.travel.conftest import COLOURS, ImageServer

CONFIG = TravelConfig(allow_local_inputs=False, download_max_mb=5, download_timeout_s=10)


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"), max_attempts=5)


def close(actual: np.ndarray, colour: tuple[int, int, int], tol: int = 8) -> bool:
    # Decoded flat colours drift a few levels through yuv420p at CRF 18; 8 still tells colours apart.
    return bool(np.all(np.abs(actual.reshape(-1, 3).mean(axis=0) - np.array(colour)) <= tol))


def test_chained_three_image_travel(queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer) -> None:
    engine = FakeEngine()
    handlers = travel_handlers(engine, CONFIG)
    images = [image_server.url(f"img{i}.png") for i in range(3)]
    payload = orchestrator_payload(images, segment_frames_expanded=[17, 21], frame_overlap_expanded=[6, 6])
    orchestrator_id = enqueue_orchestrator(queue, payload)
    drain(queue, handlers, tmp_path / "work")

    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.COMPLETE, orchestrator
    children = queue.children(orchestrator_id)
    assert all(c.status is TaskStatus.COMPLETE for c in children)
    stitch = children[-1]
    assert orchestrator.output_location == stitch.output_location  # the stitch is the final child

    plan = planning.plan_travel([17, 21], [6], chained=True)
    assert list(plan.targets) == [17, 25]
    final = Path(orchestrator.output_location or "")
    assert count_frames(final) == plan.stitched_length == 36
    assert (final.parent / f"{final.stem}_thumb.jpg").is_file()

    first, second = engine.requests
    assert (first.num_frames, second.num_frames) == (17, 25)
    assert (first.width, first.height) == (64, 64) and first.prompt == "prompt 0"
    # Segment 1's guide starts with segment 0's last 6 decoded frames (mask 0), ends on image 2.
    assert [int(m.max()) for m in second.mask] == [0] * 6 + [255] * 18 + [0]
    seg0 = read_frames(Path(children[0].output_location or ""))
    for index in range(6):
        assert np.abs(second.guide[index].astype(int) - seg0[11 + index].astype(int)).max() <= 2
    assert close(second.guide[24], COLOURS[2], tol=1)
    assert close(first.guide[0], COLOURS[0], tol=1) and close(first.guide[16], COLOURS[1], tol=1)
    video = read_frames(final)
    assert close(video[0], COLOURS[0]) and close(video[-1], COLOURS[2])
    assert close(video[5], generated_colour(5))


def test_independent_run_completes_without_stitch(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    engine = FakeEngine()
    images = [image_server.url(f"img{i}.png") for i in range(3)]
    payload = orchestrator_payload(images, model_type="i2v", segment_frames_expanded=[9, 13])
    orchestrator_id = enqueue_orchestrator(queue, payload)
    drain(queue, travel_handlers(engine, CONFIG), tmp_path / "work")
    children = queue.children(orchestrator_id)
    assert [c.task_type for c in children] == ["travel_segment"] * 2
    assert [count_frames(Path(c.output_location or "")) for c in children] == [9, 13]
    # independent: segment i starts on image i and ends on image i+1 (pitfall P10)
    assert close(engine.requests[1].guide[0], COLOURS[1], tol=1)
    assert close(engine.requests[1].guide[-1], COLOURS[2], tol=1)
    assert queue.get(orchestrator_id).status is TaskStatus.COMPLETE  # type: ignore[union-attr]


def test_unreachable_image_fails_the_segment_clearly(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    images = [image_server.url("img0.png"), image_server.url("missing.png")]
    enqueue_orchestrator(queue, orchestrator_payload(images))
    handlers = travel_handlers(FakeEngine(), CONFIG)
    run_claim(queue, handlers[0], claim_type(queue, "travel_orchestrator"), tmp_path)
    with pytest.raises(InputUnavailable, match=r"end_image_url: .*missing.png returned HTTP 404"):
        run_claim(queue, handlers[1], claim_type(queue, "travel_segment"), tmp_path)


def test_local_image_refused_unless_allowed(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    local = str(image_server.root / "img0.png")
    handlers = travel_handlers(FakeEngine(), TravelConfig(allow_local_inputs=True))
    enqueue_orchestrator(queue, orchestrator_payload([local, image_server.url("img1.png")]))
    run_claim(queue, handlers[0], claim_type(queue, "travel_orchestrator"), tmp_path)
    claim = claim_type(queue, "travel_segment")
    strict = travel_handlers(FakeEngine(), CONFIG)[1]
    with pytest.raises(InvalidTaskParams, match=r"start_image_url: local file paths are not accepted"):
        run_claim(queue, strict, claim, tmp_path)
    run_claim(queue, handlers[1], claim, tmp_path / "again")  # same task, local inputs allowed
    assert queue.get(claim.id).status is TaskStatus.COMPLETE  # type: ignore[union-attr]


def test_segment_waits_for_an_incomplete_predecessor(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    images = [image_server.url(f"img{i}.png") for i in range(3)]
    orchestrator_id = enqueue_orchestrator(queue, orchestrator_payload(images))
    handlers = travel_handlers(FakeEngine(), CONFIG)
    run_claim(queue, handlers[0], claim_type(queue, "travel_orchestrator"), tmp_path)
    seg0, seg1, _ = queue.children(orchestrator_id)
    # Run segment 1 while segment 0 is still Queued, as a backend racing its dependency gate might.
    racing = ClaimedTask(seg1, "token")
    ctx = make_context(queue, racing, tmp_path / "race")
    params = handlers[1].params_model.model_validate(seg1.params)
    with pytest.raises(TransientError, match=rf"predecessor segment {seg0.id} is Queued, not Complete yet"):
        handlers[1].run(ctx, params)


# --- stitch on real mp4 segments -------------------------------------------------------------------


class StubLookup:
    def __init__(self, rows: list[SegmentOutput]) -> None:
        self.rows = rows

    def get(self, task_id: str) -> None:
        return None

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        assert run_id == RUN_ID
        return self.rows


def encode_segments(folder: Path, lengths: list[int], size: tuple[int, int] = (32, 48)) -> list[Path]:
    paths = []
    for index, length in enumerate(lengths):
        path = folder / f"seg{index}.mp4"
        encode_video(coloured_frames(length, *size, base=40 + 60 * index), path, 16)
        paths.append(path)
    return paths


def stitch_params(count: int, overlaps: list[int], frames: list[int]) -> dict[str, object]:
    details = orchestrator_payload(["u"] * (count + 1), segment_frames_expanded=frames)[
        "orchestrator_details"
    ]
    details["frame_overlap_expanded"] = overlaps
    return {
        "orchestrator_task_id_ref": "orch-1",
        "orchestrator_run_id": RUN_ID,
        "project_id": PROJECT,
        "parent_generation_id": "gen",
        "orchestrator_details": details,
        "num_total_segments_generated": count,
        "frame_overlap_settings_expanded": overlaps,
        "crossfade_sharp_amt": 0.3,
        "parsed_resolution_wh": "48x32",
        "fps_final_video": 16,
    }


def run_stitch(tmp_path: Path, rows: list[SegmentOutput], params: dict[str, object]) -> Path:
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"))
    queue.enqueue(NewTask("travel_stitch", params, project_id=PROJECT))
    claim = claim_type(queue, "travel_stitch")
    handler = TravelStitchHandler(CONFIG)
    ctx = make_context(queue, claim, tmp_path / "stitch")
    ctx = type(ctx)(**{**ctx.__dict__, "lookup": StubLookup(rows)})
    result = handler.run(ctx, handler.params_model.model_validate(params))
    assert result.output is not None and result.thumbnail is not None and result.thumbnail.is_file()
    return result.output


@pytest.mark.parametrize(
    ("lengths", "overlaps", "expected"),
    [([17, 21], [4], 34), ([9, 9, 9], [0, 0], 27), ([17, 13, 9], [5, 9], 25)],
)
def test_stitch_reads_real_segments(
    tmp_path: Path, lengths: list[int], overlaps: list[int], expected: int
) -> None:
    paths = encode_segments(tmp_path, lengths)
    rows = [SegmentOutput(i, str(p)) for i, p in reversed(list(enumerate(paths)))]  # order must not matter
    output = run_stitch(tmp_path, rows, stitch_params(len(lengths), overlaps, lengths))
    frames = read_frames(output)
    assert len(frames) == expected
    assert frames.shape[1:] == (32, 48, 3)
    assert close(frames[0], (40, 0, 215))
    last_base = 40 + 60 * (len(lengths) - 1)
    assert close(frames[-1], (last_base, ((lengths[-1] - 1) * 9) % 256, 255 - last_base))


def test_stitch_resizes_segments_to_the_first_ones_size(tmp_path: Path) -> None:
    first = encode_segments(tmp_path / "a", [9])[0]
    second = encode_segments(tmp_path / "b", [9, 9], size=(64, 96))[1]
    output = run_stitch(
        tmp_path, [SegmentOutput(0, str(first)), SegmentOutput(1, str(second))], stitch_params(2, [2], [9, 9])
    )
    assert read_frames(output).shape == (16, 32, 48, 3)


def test_stitch_never_stitches_a_partial_set(tmp_path: Path) -> None:
    paths = encode_segments(tmp_path, [9, 9])
    rows = [SegmentOutput(0, str(paths[0])), SegmentOutput(2, str(paths[1]))]
    with pytest.raises(TransientError, match=r"2 of 3 segments are complete; waiting for segment\(s\) 1$"):
        run_stitch(tmp_path, rows, stitch_params(3, [2, 2], [9, 9, 9]))


def test_select_segments_takes_the_newest_duplicate() -> None:
    rows = [SegmentOutput(0, "a"), SegmentOutput(1, "b"), SegmentOutput(1, "b2")]
    assert [r.output_location for r in select_segments(rows, 2, "run")] == ["a", "b2"]
