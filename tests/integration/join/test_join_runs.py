"""Join and edit runs end to end on real FFmpeg with the recording fake engine (fast; the tiny model's
runs are in test_join_tiny.py): per-join settings reach each generation, `loop_first_clip` plays the clip
forwards then backwards, the clips' own audio follows the output's timeline, and the joined output has
its settings sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.bridge_planning import JoinSpec, plan_chain, plan_portions
from headless_wan.handlers.join import JoinConfig, join_handlers
from headless_wan.handlers.travel_inputs import TravelConfig
from headless_wan.media.audio import has_audio
from headless_wan.media.ffmpeg import probe
from headless_wan.media.video_io import count_frames, read_frames
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import PROJECT, FakeEngine, claim_type, drain, run_claim
from tests.integration.join.conftest import add_sine, audio_samples, dominant_hz, psnr, rms

CONFIG = JoinConfig(inputs=TravelConfig(allow_local_inputs=True), max_join_clips=8)


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"), max_attempts=1)


def _join(clips: list[Path], **details: object) -> dict:
    body = {
        "clip_list": [{"url": str(path)} for path in clips], "run_id": "run-1", "context_frame_count": 4,
        "gap_frame_count": 9, "replace_mode": True, "prompt": "run prompt", "num_inference_steps": 2,
        "guidance_scale": 1.5, "seed": 5, "fps": 16, "model": "vace_run",
    }  # fmt: skip
    body.update(details)
    return {"orchestrator_details": body}


def _run(queue: InMemoryQueue, tmp_path: Path, engine: FakeEngine, task_type: str, payload: dict):
    task_id = queue.enqueue(NewTask(task_type, payload, project_id=PROJECT))
    drain(queue, join_handlers(engine, CONFIG), tmp_path / "work")
    task = queue.get(task_id)
    assert task is not None and task.status is TaskStatus.COMPLETE, task
    return task, queue.children(task_id)


def test_per_join_settings_reach_each_generation(queue: InMemoryQueue, tmp_path: Path, make_clip) -> None:
    clips = [make_clip(f"c{i}.mp4", 25, seed=i + 1) for i in range(3)]
    override = {
        "model": "vace_join0", "num_inference_steps": 7, "guidance_scale": 4.5, "seed": 9,
        "prompt": "first join", "resolution": [32, 48], "fps": 16, "loras": "ignored",
        "additional_loras": {"https://example.com/extra.safetensors": 0.5},
    }  # fmt: skip
    payload = _join(clips, per_join_settings=[override, {}], additional_loras={"run.safetensors": 1})
    engine = FakeEngine()
    orchestrator, children = _run(queue, tmp_path, engine, "join_clips_orchestrator", payload)

    first, second = children[0].params, children[1].params
    assert (first["model"], first["num_inference_steps"], first["guidance_scale"]) == ("vace_join0", 7, 4.5)
    assert (first["seed"], first["prompt"], first["width"], first["height"]) == (9, "first join", 32, 48)
    assert set(first["additional_loras"]) == {"run.safetensors", "https://example.com/extra.safetensors"}
    assert (second["model"], second["num_inference_steps"], second["guidance_scale"]) == ("vace_run", 2, 1.5)
    assert (second["width"], second["height"], second["prompt"]) == (64, 64, "run prompt")

    got = [(r.model, r.steps, r.guidance_scale, r.seed, r.width, r.height) for r in engine.requests]
    assert got == [("vace_join0", 7, 4.5, 9, 32, 48), ("vace_run", 2, 1.5, 5, 64, 64)]
    assert [len(r.loras) for r in engine.requests] == [2, 1]
    final = Path(orchestrator.output_location or "")
    assert count_frames(final) == 75 and probe(final).width == 64

    sidecar = json.loads((final.parent / f"{final.stem}.settings.json").read_text())
    assert sidecar["task_type"] == "join_final_stitch" and sidecar["num_frames"] == 75
    assert [j["model"] for j in sidecar["joins"]] == ["vace_join0", "vace_run"]
    assert sidecar["joins"][0]["loras"] == ["https://example.com/extra.safetensors", "run.safetensors"]
    assert [c["source"] for c in sidecar["clips"]] == ["c0.mp4", "c1.mp4", "c2.mp4"]
    assert sidecar["audio"] is None


@pytest.mark.parametrize(
    ("override", "error", "needle"),
    [
        ({"fps": 24}, InvalidTaskParams, r"per_join_settings\[1\]\.fps: 24 differs from the run's 16"),
        ({"resolution": [8, 64]}, InvalidTaskParams, r"per_join_settings\[1\]\.resolution: 8x64"),
    ],
)
def test_bad_per_join_settings_fail_before_any_child(
    queue: InMemoryQueue, tmp_path: Path, make_clip, override, error, needle
) -> None:
    clips = [make_clip(f"c{i}.mp4", 25, seed=i + 1) for i in range(3)]
    queue.enqueue(NewTask("join_clips_orchestrator", _join(clips, per_join_settings=[{}, override])))
    claim = claim_type(queue, "join_clips_orchestrator")
    handler = {h.task_type: h for h in join_handlers(FakeEngine(), CONFIG)}["join_clips_orchestrator"]
    with pytest.raises(error, match=needle):
        run_claim(queue, handler, claim, tmp_path / "work")
    assert queue.children(claim.id) == []


def test_a_non_vace_model_for_one_join_fails_before_any_download(
    queue: InMemoryQueue, tmp_path: Path
) -> None:
    missing = [tmp_path / "nowhere" / f"c{i}.mp4" for i in range(3)]  # a download would fail differently
    payload = _join(missing, per_join_settings=[{}, {"model": "wan_i2v"}])
    queue.enqueue(NewTask("join_clips_orchestrator", payload))
    claim = claim_type(queue, "join_clips_orchestrator")
    engine = FakeEngine(i2v_models=("wan_i2v",))
    handler = {h.task_type: h for h in join_handlers(engine, CONFIG)}["join_clips_orchestrator"]
    with pytest.raises(
        InvalidTaskParams, match=r"model: a bridge needs a VACE model; wan_i2v is a i2v model"
    ):
        run_claim(queue, handler, claim, tmp_path / "work")
    assert queue.children(claim.id) == []


def test_loop_first_clip_plays_the_clip_then_a_bridge_then_the_clip_backwards(
    queue: InMemoryQueue, tmp_path: Path, make_clip
) -> None:
    clip = make_clip("loop.mp4", 25, seed=3)
    engine = FakeEngine()
    payload = _join([clip, clip], loop_first_clip=True)
    orchestrator, children = _run(queue, tmp_path, engine, "join_clips_orchestrator", payload)
    assert [c.task_type for c in children] == ["join_clips_segment", "join_final_stitch"]
    assert children[0].params["ending_reversed"] is True
    assert [c["reversed"] for c in children[1].params["clips"]] == [False, True]

    plan = plan_chain([25, 25], [JoinSpec(4, 9, True)])
    bridge, (head, tail) = plan.bridges[0], plan.spans
    source = read_frames(clip)
    backwards = source[::-1]
    guide = engine.requests[0].guide
    after = guide[bridge.context_before + bridge.gap :]
    assert (
        psnr(after, backwards[bridge.b_context_start : bridge.b_context_start + bridge.context_after]) >= 35
    )
    final = Path(orchestrator.output_location or "")
    joined = read_frames(final)
    assert len(joined) == plan.output_frames == 50
    assert psnr(joined[: head.frames], source[head.start : head.end]) >= 35
    assert psnr(joined[-tail.frames :], backwards[tail.start : tail.end]) >= 35
    assert psnr(joined[-1:], source[:1]) >= 35  # ends on the first frame: it plays on repeat


def test_loop_first_clip_with_two_different_clips_is_refused(
    queue: InMemoryQueue, tmp_path: Path, make_clip
) -> None:
    clips = [make_clip("a.mp4", 25, seed=1), make_clip("b.mp4", 25, seed=2)]
    queue.enqueue(NewTask("join_clips_orchestrator", _join(clips, loop_first_clip=True)))
    claim = claim_type(queue, "join_clips_orchestrator")
    handler = {h.task_type: h for h in join_handlers(FakeEngine(), CONFIG)}["join_clips_orchestrator"]
    with pytest.raises(
        InvalidTaskParams, match=r"loop_first_clip loops one clip .* 2 clip\(s\) with 2 distinct"
    ):
        run_claim(queue, handler, claim, tmp_path / "work")


@pytest.mark.parametrize("replace_mode", [True, False])
def test_join_keeps_the_clips_audio_on_the_output_timeline(
    queue: InMemoryQueue, tmp_path: Path, make_clip, replace_mode: bool
) -> None:
    clips = [
        add_sine(make_clip(f"v{i}.mp4", 33, seed=i + 1), tmp_path / f"a{i}.mp4", 300 + 100 * i)
        for i in range(2)
    ]
    payload = _join(clips, replace_mode=replace_mode, gap_frame_count=16)
    orchestrator, _ = _run(queue, tmp_path, FakeEngine(), "join_clips_orchestrator", payload)
    final = Path(orchestrator.output_location or "")
    plan = plan_chain([33, 33], [JoinSpec(4, 16, replace_mode)])
    frames = count_frames(final)
    assert frames == plan.output_frames == (66 if replace_mode else 66 + plan.bridges[0].gap)
    samples = audio_samples(final)
    assert abs(len(samples) / 48000 - frames / 16) < 0.05  # the audio lasts exactly the video
    gap_start = plan.spans[0].frames / 16
    gap_end = gap_start + plan.bridges[0].gap / 16
    middle = rms(samples, gap_start + 0.05, gap_end - 0.05)
    # lavfi sine is at 1/8 scale (RMS 0.088). Replace mode: the gap replaced as many frames as it
    # has, so it keeps their audio; insert mode: silence.
    assert (middle > 0.05) if replace_mode else (middle < 0.005), middle
    before, after = (0.05, gap_start - 0.05), (gap_end + 0.05, frames / 16 - 0.1)
    assert rms(samples, *before) > 0.05 and rms(samples, *after) > 0.05
    # clip 0's tone (300 Hz) before the gap, clip 1's (400 Hz) after it
    assert abs(dominant_hz(samples, *before) - 300) < 15
    assert abs(dominant_hz(samples, *after) - 400) < 15
    sidecar = json.loads((final.parent / f"{final.stem}.settings.json").read_text())
    assert sidecar["audio"] == "clips"


def test_edit_with_a_longer_portion_keeps_the_audio_aligned(
    queue: InMemoryQueue, tmp_path: Path, make_clip
) -> None:
    source = add_sine(make_clip("v.mp4", 41, seed=4), tmp_path / "source.mp4")
    details = {
        "source_video_url": str(source), "run_id": "run-edit", "context_frame_count": 4,
        "portions_to_regenerate": [{"start_frame": 16, "end_frame": 20, "gap_frame_count": 12}],
    }  # fmt: skip
    orchestrator, _ = _run(
        queue, tmp_path, FakeEngine(), "edit_video_orchestrator", {"orchestrator_details": details}
    )
    (window,) = plan_portions(41, [(16, 20, 12)], 4)
    assert window.gap == 9  # 4 + 12 + 4 → 17 frames: the gap absorbs the 4n+1 rounding
    final = Path(orchestrator.output_location or "")
    frames = count_frames(final)
    assert frames == 41 - 4 + window.gap == 46
    samples = audio_samples(final)
    assert abs(len(samples) / 48000 - frames / 16) < 0.05
    gap_end = (16 + window.gap) / 16
    assert rms(samples, 1.0 + 0.05, gap_end - 0.05) < 0.005  # the new frames are silent
    assert rms(samples, 0.05, 1.0 - 0.05) > 0.05 and rms(samples, gap_end + 0.05, frames / 16 - 0.1) > 0.05
    assert has_audio(final)
