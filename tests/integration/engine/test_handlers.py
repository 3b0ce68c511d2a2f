"""The generation handlers end to end on the tiny model: real inputs, real ffmpeg, real files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headless_wan.domain.params import ImageParams, VaceParams
from headless_wan.domain.tasks import Task
from headless_wan.errors import InvalidTaskParams, TaskCancelled
from headless_wan.handlers.base import CancelToken, TaskContext
from headless_wan.handlers.generate import binarise_mask, generation_handlers
from headless_wan.media import video_io

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self, cancel: CancelToken | None = None, cancel_at_step: int | None = None) -> None:
        self.events: list[tuple] = []
        self.started: list[str | None] = []
        self._cancel, self._cancel_at = cancel, cancel_at_step

    def report(self, stage: str, step: int, total: int, message: str = "") -> None:
        self.events.append((stage, step, total))
        if self._cancel and stage == "denoising" and step == self._cancel_at:
            self._cancel.cancel("user_cancelled")

    def mark_started(self, model: str | None = None) -> None:
        self.events.append(("mark_started", 0, 0))
        self.started.append(model)


def context(tmp_path: Path, task: Task, recorder: Recorder, cancel: CancelToken) -> TaskContext:
    workdir = tmp_path / "work" / task.id
    workdir.mkdir(parents=True)
    return TaskContext(
        task=task, workdir=workdir, cancel=cancel, progress=recorder, children=None,  # type: ignore[arg-type]
        mark_started=recorder.mark_started, log=logging.LoggerAdapter(logging.getLogger("test")),
    )  # fmt: skip


@pytest.fixture
def handlers(make_engine):
    engine = make_engine(model_override="tiny", allow_local_inputs=True)
    return {handler.task_type: handler for handler in generation_handlers(engine)}


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    frames = np.full((17, 36, 60, 3), 90, np.uint8)
    frames[:, 10:20, 10:30] = 250
    guide = tmp_path / "guide.mp4"
    video_io.encode_video(frames, guide, 16)
    masks = np.full((17, 36, 60, 3), 255, np.uint8)
    masks[0] = 0
    mask = tmp_path / "mask.mp4"
    video_io.encode_video(masks, mask, 16)
    ref = tmp_path / "ref.png"
    Image.new("RGB", (24, 40), (200, 30, 30)).save(ref)
    return {"video_guide": str(guide), "video_mask": str(mask), "image_refs": [str(ref)]}


def test_vace_task_writes_a_decodable_mp4_thumbnail_and_sidecar(handlers, inputs, tmp_path: Path) -> None:
    payload = {"prompt": "a cat", "model": "vace_14B", "resolution": "40x36", "video_length": 17,
               "num_inference_steps": 2, "seed": 4, **inputs}  # fmt: skip
    task = Task(id="task-1", task_type="vace", params=payload)
    recorder, cancel = Recorder(), CancelToken()
    handler = handlers["vace"]
    result = handler.run(context(tmp_path, task, recorder, cancel), VaceParams.model_validate(payload))
    assert result.output is not None and result.output.name == "task-1.mp4"
    assert video_io.count_frames(result.output) == 17
    first = video_io.read_frames(result.output)[0]
    assert first.shape == (32, 32, 3)  # 40x36 floored to multiples of 16
    assert result.thumbnail is not None and result.thumbnail.name == "task-1_thumb.jpg"
    assert Image.open(result.thumbnail).format == "JPEG"
    sidecar = json.loads((result.output.parent / "task-1.settings.json").read_text())
    assert (sidecar["task_id"], sidecar["task_type"], sidecar["model"]) == ("task-1", "vace", "vace_14B")
    assert (sidecar["preset"], sidecar["family"], sidecar["pipeline_class"]) == (
        "tiny",
        "vace",
        "WanVACEPipeline",
    )
    assert (sidecar["seed"], sidecar["steps"], sidecar["resolution"], sidecar["num_frames"]) == (
        4,
        2,
        "32x32",
        17,
    )
    assert [step["step"] for step in sidecar["phase_plan"]] == [1, 2]
    assert sidecar["settings"]["video_mask"] and sidecar["fps"] == 16
    stages = [e[0] for e in recorder.events]
    assert stages.index("loading_model") < stages.index("mark_started") < stages.index("denoising")
    assert stages[-2:] == ["encoding", "encoding"] and recorder.started == ["vace_14B"]
    assert result.metrics["encode_s"] > 0


def test_cancel_during_denoising_leaves_no_output(handlers, tmp_path: Path) -> None:
    payload = {"prompt": "a cat", "resolution": "32x32", "video_length": 17, "num_inference_steps": 4}
    task = Task(id="task-2", task_type="generate_video", params=payload)
    cancel = CancelToken()
    recorder = Recorder(cancel, cancel_at_step=1)
    ctx = context(tmp_path, task, recorder, cancel)
    with pytest.raises(TaskCancelled):
        handlers["generate_video"].run(ctx, VaceParams.model_validate(payload))
    assert not list(ctx.workdir.glob("*.mp4")) and not list(ctx.workdir.glob("*.json"))
    assert [e for e in recorder.events if e[0] == "denoising"] == [("denoising", 1, 4)]


def test_image_task_writes_one_png(handlers, tmp_path: Path) -> None:
    payload = {"prompt": "a red bird", "resolution": "48x32", "steps": 2}
    for task_type in ("image-generation", "wan_2_2_t2i"):
        task = Task(id=f"img-{task_type}", task_type=task_type, params=payload)
        result = handlers[task_type].run(
            context(tmp_path, task, Recorder(), CancelToken()), ImageParams.model_validate(payload)
        )
        assert result.output is not None and result.output.suffix == ".png"
        assert Image.open(result.output).size == (48, 32) and result.thumbnail is None


def test_bad_frame_count_fails_before_any_download(handlers, tmp_path: Path) -> None:
    payload = {
        "prompt": "x",
        "resolution": "32x32",
        "video_length": 16,
        "video_guide": "https://invalid.test/g.mp4",
    }
    task = Task(id="task-3", task_type="vace", params=payload)
    with pytest.raises(InvalidTaskParams, match="num_frames"):
        handlers["vace"].run(
            context(tmp_path, task, Recorder(), CancelToken()), VaceParams.model_validate(payload)
        )


def test_queue_workers_refuse_local_paths(make_engine, tmp_path: Path) -> None:
    engine = make_engine(model_override="tiny", allow_local_inputs=False)
    handler = next(h for h in generation_handlers(engine) if h.task_type == "vace")
    payload = {"prompt": "x", "resolution": "32x32", "video_length": 17, "loras": [{"path": "/etc/passwd"}]}
    task = Task(id="task-4", task_type="vace", params=payload)
    with pytest.raises(InvalidTaskParams, match="not an http"):
        handler.run(context(tmp_path, task, Recorder(), CancelToken()), VaceParams.model_validate(payload))


def test_mask_videos_are_binarised() -> None:
    decoded = np.array([[[[3, 3, 3], [252, 250, 251], [127, 127, 127], [129, 128, 130]]]], np.uint8)
    assert binarise_mask(decoded).tolist() == [[[0, 255, 0, 255]]]


def test_generate_video_on_an_i2v_model_takes_start_and_end_images(handlers, tmp_path: Path) -> None:
    start, end = tmp_path / "start.png", tmp_path / "end.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(start)
    Image.new("RGB", (40, 40), (30, 30, 200)).save(end)
    payload = {"prompt": "a cat", "model": "wan_2_2_i2v_lightning_baseline_2_2_2", "resolution": "32x32",
               "video_length": 9, "num_inference_steps": 2, "image_start": str(start), "image_end": str(end)}  # fmt: skip
    task = Task(id="task-i2v", task_type="generate_video", params=payload)
    recorder, cancel = Recorder(), CancelToken()
    result = handlers["generate_video"].run(
        context(tmp_path, task, recorder, cancel), VaceParams.model_validate(payload)
    )
    assert result.output is not None and video_io.count_frames(result.output) == 9
    sidecar = json.loads(result.output.with_name("task-i2v.settings.json").read_text())
    assert (sidecar["preset"], sidecar["family"]) == ("tiny-i2v", "i2v")
    assert sidecar["pipeline_class"] == "WanImageToVideoPipeline" and sidecar["settings"]["image_end"]
    assert recorder.started == ["wan_2_2_i2v_lightning_baseline_2_2_2"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "image_start: wan2.2-i2v-lightning-3-3 is an image-to-video model and needs a start image"),
        ({"video_guide": "guide.mp4", "image_start": "s.png"}, "video_guide: "),
        ({"control_net_weight": 0.5, "image_start": "s.png"}, "conditioning_scale: "),
    ],
)
def test_i2v_inputs_are_checked_before_any_download(handlers, tmp_path: Path, changes, message) -> None:
    payload = {"prompt": "a cat", "model": "wan_2_2_i2v_lightning_baseline_3_3", "resolution": "32x32",
               "video_length": 9, **changes}  # fmt: skip
    task = Task(id="task-bad", task_type="generate_video", params=payload)
    recorder, cancel = Recorder(), CancelToken()
    with pytest.raises(InvalidTaskParams, match=message):
        handlers["generate_video"].run(
            context(tmp_path, task, recorder, cancel), VaceParams.model_validate(payload)
        )
    assert recorder.started == []


def test_wan_t2i_with_the_apps_optimised_t2i_runs_on_the_t2v_family(handlers, tmp_path: Path) -> None:
    payload = {"model": "optimised-t2i", "prompt": "a red bird", "resolution": "48x32", "steps": 2, "seed": 3}
    task = Task(id="t2i", task_type="wan_2_2_t2i", params=payload)
    result = handlers["wan_2_2_t2i"].run(
        context(tmp_path, task, Recorder(), CancelToken()), ImageParams.model_validate(payload)
    )
    assert Image.open(result.output).size == (48, 32)
    sidecar = json.loads(result.output.with_name("t2i.settings.json").read_text())
    assert (sidecar["preset"], sidecar["pipeline_class"]) == ("tiny-t2v", "WanPipeline")
