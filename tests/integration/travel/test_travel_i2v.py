"""Travel on image-to-video models: independent segments with image_start/image_end, per-segment phase
configs and LoRAs, the unsupported-field log, and the app's two single-segment task types.

The fake engine (tests/fixtures/travel/support.py) records requests; the `run` tests use the real
tiny I2V model through `python -m headless_wan run`."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.travel import TravelConfig, travel_handlers
from headless_wan.media.video_io import count_frames, read_frames
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import (
    PROJECT,
    FakeEngine,
    claim_type,
    drain,
    enqueue_orchestrator,
    orchestrator_payload,
    run_claim,
)
from tests.integration.queue.conftest import REPO, Site
from tests.integration.travel.conftest import COLOURS, ImageServer

pytestmark = pytest.mark.slow

CONFIG = TravelConfig(allow_local_inputs=False, download_max_mb=5, download_timeout_s=10)
I2V = "wan_2_2_i2v_lightning_baseline_2_2_2"
LORA_A = "https://example.com/a.safetensors"
LORA_B = "https://example.com/b.safetensors"


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"), max_attempts=5)


def phase(steps: list[int]) -> dict:
    return {"steps_per_phase": steps, "phases": [{"guidance_scale": 1.0} for _ in steps]}


def test_i2v_segments_take_their_pair_as_start_and_end_images(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(i2v_models=(I2V,))
    images = [image_server.url(f"img{i}.png") for i in range(3)]
    payload = orchestrator_payload(
        images, model_name=I2V, model_type="i2v", chain_segments=False, independent_segments=True,
        segment_frames_expanded=[9, 13], phase_config=phase([3, 3]),
        phase_configs_expanded=[None, phase([2, 2, 2])],
        loras_per_segment_expanded=[None, [{"path": LORA_B, "strength": 0.7}]],
        additional_loras={LORA_A: 0.5}, lora_names=["https://example.com/named.safetensors"],
        lora_multipliers=["0.3"], cfg_star_switch=1, steps=20,
    )  # fmt: skip
    enqueue_orchestrator(queue, payload)
    with caplog.at_level(logging.WARNING):
        drain(queue, travel_handlers(engine, CONFIG), tmp_path / "work")
    first, second = engine.requests
    for index, request in enumerate((first, second)):
        assert request.guide is None and request.mask is None
        assert np.array_equal(request.start_image[0, 0], COLOURS[index])  # image i ...
        assert np.array_equal(request.end_image[0, 0], COLOURS[index + 1])  # ... to image i + 1
        assert request.model == I2V
    assert [r.num_frames for r in engine.requests] == [9, 13]
    assert first.phases.steps_per_phase == (3, 3) and second.phases.steps_per_phase == (2, 2, 2)
    named = ("https://example.com/named.safetensors", "0.3")
    assert [(lora.source, lora.multiplier) for lora in first.loras] == [(LORA_A, "0.5"), named]
    assert [(lora.source, lora.multiplier) for lora in second.loras] == [(LORA_B, "0.7"), named]
    warnings = [r.getMessage() for r in caplog.records if "unsupported travel fields" in r.getMessage()]
    assert warnings and all(
        w == "ignoring unsupported travel fields: cfg_star_switch, steps" for w in warnings
    )
    assert len(warnings) == 3  # once per task: the orchestrator and each segment


def test_vace_mode_travel_runs_the_vace_form_of_the_apps_i2v_model_name(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    # The app names its schedules with the I2V names in VACE mode too (model_type "vace").
    engine = FakeEngine(i2v_models=(I2V,), vace_forms={I2V: "wan2.2-vace-lightning-2-2-2"})
    payload = orchestrator_payload([image_server.url(f"img{i}.png") for i in range(3)], model_name=I2V)
    orchestrator_id = enqueue_orchestrator(queue, payload)
    drain(queue, travel_handlers(engine, CONFIG), tmp_path / "work")
    assert [c.task_type for c in queue.children(orchestrator_id)] == ["travel_segment"] * 2 + [
        "travel_stitch"
    ]
    assert [r.model for r in engine.requests] == ["wan2.2-vace-lightning-2-2-2"] * 2
    assert all(r.guide is not None and r.start_image is None for r in engine.requests)


def test_vace_mode_travel_on_a_model_without_a_vace_form_is_refused_before_any_child(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    engine = FakeEngine(i2v_models=("i2v",))
    payload = orchestrator_payload([image_server.url(f"img{i}.png") for i in range(3)], model_name="i2v")
    orchestrator_id = enqueue_orchestrator(queue, payload)
    handler = travel_handlers(engine, CONFIG)[0]
    with pytest.raises(InvalidTaskParams, match="model_type: 'vace' travel needs a vace model"):
        run_claim(queue, handler, claim_type(queue, "travel_orchestrator"), tmp_path / "work")
    assert queue.children(orchestrator_id) == []


def individual_payload(start: str, end: str | None, **own: object) -> dict:
    """Shaped like the app's individualTravelSegment resolver output (the fields the worker reads)."""
    images = [start, end] if end else [start]
    details = {"generation_source": "individual_segment", "model_name": I2V, "parsed_resolution_wh": "64x64"}
    return {
        "model_name": I2V, "base_prompt": "top level prompt", "negative_prompt": "", "num_frames": 49,
        "parsed_resolution_wh": "64x64", "seed_to_use": 11, "segment_index": 1, "lora_names": [],
        "lora_multipliers": [], "additional_loras": {}, "input_image_paths_resolved": images,
        "child_generation_id": "child-gen-1", "parent_generation_id": "parent-gen-1", "fps_helpers": 16,
        "cfg_zero_step": -1, "cfg_star_switch": 0, "orchestrator_details": details,
        "individual_segment_params": {"input_image_paths_resolved": images, "start_image_url": start,
                                      **({"end_image_url": end} if end else {}), "num_frames": 17,
                                      "base_prompt": "own prompt", "seed_to_use": 5, **own},
    }  # fmt: skip


def test_individual_segment_overrides_win_and_feed_the_i2v_request(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    engine = FakeEngine(i2v_models=(I2V,))
    payload = individual_payload(
        image_server.url("img2.png"), image_server.url("img3.png"),
        phase_config=phase([3, 3]), additional_loras={LORA_A: 1.1},
    )  # fmt: skip
    task_id = queue.enqueue(NewTask("individual_travel_segment", payload, project_id=PROJECT))
    drain(queue, travel_handlers(engine, CONFIG), tmp_path / "work")
    (request,) = engine.requests
    assert (request.prompt, request.seed, request.num_frames) == ("own prompt", 5, 17)
    assert np.array_equal(request.start_image[0, 0], COLOURS[2])
    assert np.array_equal(request.end_image[0, 0], COLOURS[3])
    assert request.phases.steps_per_phase == (3, 3)
    assert [(lora.source, lora.multiplier) for lora in request.loras] == [(LORA_A, "1.1")]
    output = Path(queue.get(task_id).output_location or "")  # type: ignore[union-attr]
    assert count_frames(output) == 17
    sidecar = json.loads(output.with_name(f"{output.stem}.settings.json").read_text())
    assert sidecar["task_type"] == "individual_travel_segment" and sidecar["model"] == I2V


def test_individual_segment_on_a_vace_model_paints_its_guide(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    engine = FakeEngine()
    payload = individual_payload(image_server.url("img0.png"), image_server.url("img1.png"))
    payload["model_name"] = "tiny"
    queue.enqueue(NewTask("individual_travel_segment", payload, project_id=PROJECT))
    drain(queue, travel_handlers(engine, CONFIG), tmp_path / "work")
    (request,) = engine.requests
    assert request.start_image is None and request.guide.shape[0] == 17
    assert np.array_equal(request.guide[0, 0, 0], COLOURS[0]) and np.array_equal(
        request.guide[-1, 0, 0], COLOURS[1]
    )
    assert (request.mask[0] == 0).all() and (request.mask[1:-1] == 255).all()


def test_individual_segment_without_a_start_image_fails_naming_the_field(
    queue: InMemoryQueue, tmp_path: Path
) -> None:
    payload = individual_payload("", None)
    payload["input_image_paths_resolved"] = []
    payload["individual_segment_params"].update(input_image_paths_resolved=[], start_image_url=None)
    queue.enqueue(NewTask("individual_travel_segment", payload, project_id=PROJECT))
    handler = travel_handlers(FakeEngine(i2v_models=(I2V,)), CONFIG)[3]
    with pytest.raises(InvalidTaskParams, match=r"individual_segment_params\.start_image_url: a start image"):
        run_claim(queue, handler, claim_type(queue, "individual_travel_segment"), tmp_path / "work")


def local_images() -> list[str]:
    return [str(REPO / "examples" / "images" / f"travel_{i}.png") for i in range(3)]


def test_single_segment_tasks_run_on_the_tiny_i2v_model_and_bad_ones_fail_naming_the_field(
    tmp_path: Path,
) -> None:
    """The individual segment, turbo mode and two refused individual segments, drained by one worker
    process (one interpreter start-up with torch for all four; the tasks are independent)."""
    start, end = local_images()[:2]
    turbo_payload = orchestrator_payload(
        local_images()[:2], model_name=I2V, model_type="i2v", chain_segments=False,
        independent_segments=True, segment_frames_expanded=[13], orchestrator_task_id="sm_travel_readable",
    )  # fmt: skip
    too_long = individual_payload(start, end, num_frames=85)
    unknown = individual_payload(start, end)
    unknown["model_name"] = "no_such_model_xyz"
    site = Site(tmp_path)
    queue = site.queue()
    try:
        ids = {
            name: queue.enqueue(NewTask(task_type, payload, project_id="local-project"))
            for name, task_type, payload in (
                ("individual", "individual_travel_segment", individual_payload(start, end)),
                ("turbo", "wan_2_2_i2v", turbo_payload),
                ("too_long", "individual_travel_segment", too_long),
                ("unknown", "individual_travel_segment", unknown),
            )
        }
    finally:
        queue.close()

    worker = site.start_worker("--drain", HW_MODEL_OVERRIDE="tiny")
    assert worker.wait(timeout_s=300) == 0, worker.output()[-3000:]

    rows = {name: site.get(task_id) for name, task_id in ids.items()}
    for name in ("individual", "turbo"):
        assert rows[name].status is TaskStatus.COMPLETE, (name, rows[name].error_message)
    output = Path(rows["individual"].output_location or "")
    assert count_frames(output) == 17 and read_frames(output).shape == (17, 64, 64, 3)
    sidecar = json.loads(output.with_name(f"{output.stem}.settings.json").read_text())
    assert (sidecar["family"], sidecar["preset"], sidecar["pipeline_class"]) == (
        "i2v", "tiny-i2v", "WanImageToVideoPipeline",
    )  # fmt: skip
    assert sidecar["seed"] == 5 and sidecar["num_frames"] == 17

    turbo = Path(rows["turbo"].output_location or "")
    assert sorted(turbo.parent.glob("*.mp4")) == [turbo] and count_frames(turbo) == 13  # one generation
    queue = site.queue()
    try:
        assert queue.children(ids["turbo"]) == []  # completed as a standalone generation, no children
    finally:
        queue.close()
    sidecar = json.loads(turbo.with_name(f"{turbo.stem}.settings.json").read_text())
    assert (sidecar["task_type"], sidecar["family"], sidecar["model"]) == ("wan_2_2_i2v", "i2v", I2V)

    for name, message in (
        ("too_long", "num_frames: 85 exceeds this model's limit of 81"),
        ("unknown", "model: unknown model 'no_such_model_xyz' \\(known: "),
    ):
        assert rows[name].status is TaskStatus.FAILED, name
        assert re.search(message, rows[name].error_message or ""), (name, rows[name].error_message)


def test_chained_vace_segments_adjust_the_predecessor_frames_as_asked(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    engine = FakeEngine()
    images = [image_server.url(f"img{i}.png") for i in range(3)]
    payload = orchestrator_payload(images, desaturate_subsequent_starting_frames=1.0)
    enqueue_orchestrator(queue, payload)
    drain(queue, travel_handlers(engine, CONFIG), tmp_path / "work")
    first, second = engine.requests
    overlap = second.guide[:4].astype(int)  # fully desaturated: every pixel grey
    assert (overlap.max(axis=-1) - overlap.min(axis=-1) <= 1).all()
    assert (first.guide[0].astype(int).max(axis=-1) - first.guide[0].astype(int).min(axis=-1)).max() > 100


def test_individual_segment_frames_are_checked_against_the_model_before_any_download(
    queue: InMemoryQueue, tmp_path: Path, image_server: ImageServer
) -> None:
    from headless_wan.engine import Engine, EngineConfig

    missing = image_server.url("missing.png")  # a 404: fetching it first would fail differently
    payload = individual_payload(missing, missing, num_frames=85)
    queue.enqueue(NewTask("individual_travel_segment", payload, project_id=PROJECT))
    engine = Engine(EngineConfig(device="cpu", model_override="tiny"))
    handler = travel_handlers(engine, CONFIG)[3]
    with pytest.raises(InvalidTaskParams, match=r"^num_frames: 85 exceeds this model's limit of 81"):
        run_claim(queue, handler, claim_type(queue, "individual_travel_segment"), tmp_path / "work")
    assert not (tmp_path / "work").exists() or not list((tmp_path / "work").rglob("*.png"))
