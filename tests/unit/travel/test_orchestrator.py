"""travel_orchestrator: child payloads field by field, dependencies, idempotent re-runs, bad payloads."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from headless_wan.domain.tasks import NewTask, Task, TaskStatus
from headless_wan.engine import parse_phase_config
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.travel_inputs import TravelConfig
from headless_wan.handlers.travel_orchestrator import TravelOrchestratorHandler
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from tests.fixtures.travel.support import (
    PARENT_GEN,
    PROJECT,
    RUN_ID,
    claim_type,
    enqueue_orchestrator,
    make_context,
    orchestrator_payload,
    run_claim,
)

IMAGES = ["https://img.example/a.png", "https://img.example/b.png", "https://img.example/c.png"]
CONFIG = TravelConfig(allow_local_inputs=False, download_max_mb=10, download_timeout_s=5)


def known_models(name: str) -> None:
    if name not in ("tiny", "wan_2_2_vace_lightning_baseline_2_2_2"):
        raise InvalidTaskParams(f"model: unknown model {name!r}")


HANDLER = TravelOrchestratorHandler(CONFIG, model_check=known_models, phase_check=parse_phase_config)


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"))


def orchestrate(
    queue: InMemoryQueue, tmp_path: Path, payload: dict[str, Any], **kw: Any
) -> tuple[str, list[Task]]:
    orchestrator_id = enqueue_orchestrator(queue, payload, **kw)
    run_claim(queue, HANDLER, claim_type(queue, "travel_orchestrator"), tmp_path / "work")
    return orchestrator_id, queue.children(orchestrator_id)


def test_chained_run_children_field_by_field(queue: InMemoryQueue, tmp_path: Path) -> None:
    payload = orchestrator_payload(
        IMAGES,
        segment_frames_expanded=[80, 45],
        frame_overlap_expanded=[15, 15],  # S entries, as the app sends: only the first counts
        parsed_resolution_wh="902x508",
        text_before_prompts="cinematic",
        enhanced_prompts_expanded=["", "enhanced one"],
        negative_prompt="ugly",
        negative_prompts_expanded=["", "bad"],
    )
    orchestrator_id, children = orchestrate(queue, tmp_path, payload)
    assert [c.task_type for c in children] == ["travel_segment", "travel_segment", "travel_stitch"]
    seg0, seg1, stitch = children
    assert seg0.dependant_on == () and seg1.dependant_on == (seg0.id,) and stitch.dependant_on == (seg1.id,)
    assert {c.project_id for c in children} == {PROJECT}
    assert {c.parent_id for c in children} == {orchestrator_id}

    for index, child in enumerate((seg0, seg1)):
        p = child.params
        assert p["orchestrator_task_id_ref"] == orchestrator_id
        assert p["orchestrator_details"]["orchestrator_task_id"] == orchestrator_id
        assert p["orchestrator_run_id"] == RUN_ID
        assert p["project_id"] == PROJECT
        assert p["parent_generation_id"] == PARENT_GEN
        assert type(p["segment_index"]) is int and p["segment_index"] == index
        assert p["is_first_segment"] is (index == 0) and p["is_last_segment"] is (index == 1)
        assert p["parsed_resolution_wh"] == "896x496"
        assert p["model_name"] == "tiny" and p["seed_to_use"] == 789 and p["fps_helpers"] == 16
        assert p["cfg_star_switch"] == 0 and p["cfg_zero_step"] == -1
        assert p["subsequent_starting_strength_adjustment"] == 0
        assert p["desaturate_subsequent_starting_frames"] == 0
        assert p["adjust_brightness_subsequent_starting_frames"] == 0
        assert p["after_first_post_generation_saturation"] == 1
        assert p["after_first_post_generation_brightness"] == 0
        assert p["use_svi"] is False and p["structure_guidance"] is None
        details = p["orchestrator_details"]  # the run's scalars only: no per-segment arrays
        assert not any(isinstance(value, (list, dict)) for value in details.values())
        assert details["shot_id"] == "shot-1" and details["motion_mode"] == "basic"  # passed through
        assert details["num_new_segments_to_generate"] == 2 and details["independent_segments"] is False
        assert details["chain_segments"] is True and details["model_type"] == "vace"
    assert seg0.params["segment_frames_target"] == 81 and seg1.params["segment_frames_target"] == 57
    assert (seg0.params["frame_overlap_from_previous"], seg0.params["frame_overlap_with_next"]) == (0, 14)
    assert (seg1.params["frame_overlap_from_previous"], seg1.params["frame_overlap_with_next"]) == (14, 0)
    assert seg0.params["base_prompt"] == "cinematic prompt 0"
    assert seg1.params["base_prompt"] == "cinematic enhanced one"
    assert (seg0.params["negative_prompt"], seg1.params["negative_prompt"]) == ("ugly", "bad")

    s = stitch.params
    assert s["orchestrator_task_id_ref"] == orchestrator_id and s["orchestrator_run_id"] == RUN_ID
    assert s["project_id"] == PROJECT and s["parent_generation_id"] == PARENT_GEN
    assert s["orchestrator_details"]["orchestrator_task_id"] == orchestrator_id
    assert s["num_total_segments_generated"] == 2
    assert s["frame_overlap_settings_expanded"] == [14]
    assert s["crossfade_sharp_amt"] == 0.3 and s["parsed_resolution_wh"] == "896x496"
    assert s["fps_final_video"] == 16 and s["use_svi"] is False
    assert s["upscale_factor"] == 0.0 and s["seed_for_upscale"] == 789 + 5000
    assert "segment_index" not in s

    orchestrator = queue.get(orchestrator_id)
    assert orchestrator is not None and orchestrator.status is TaskStatus.IN_PROGRESS
    assert orchestrator.output_location == f"Successfully enqueued 3 new segment tasks for run {RUN_ID}"


def test_the_payload_keeps_no_local_paths(queue: InMemoryQueue, tmp_path: Path) -> None:
    _, children = orchestrate(queue, tmp_path, orchestrator_payload(IMAGES))
    text = repr([c.params for c in children])
    assert str(tmp_path) not in text and "/tmp" not in text


@pytest.mark.parametrize("mode", ["i2v", "independent"])
def test_independent_runs_have_no_dependencies_and_no_stitch(
    queue: InMemoryQueue, tmp_path: Path, mode: str
) -> None:
    overrides = (
        {"model_type": "i2v", "chain_segments": True}
        if mode == "i2v"
        else {"chain_segments": None, "independent_segments": True}
    )
    overrides["segment_frames_expanded"] = [81, 81]
    overrides["frame_overlap_expanded"] = 10
    _, children = orchestrate(queue, tmp_path, orchestrator_payload(IMAGES, **overrides))
    assert [c.task_type for c in children] == ["travel_segment", "travel_segment"]
    assert all(c.dependant_on == () for c in children)
    assert [c.params["segment_frames_target"] for c in children] == [81, 81]  # no chained lengthening
    assert all(c.params["orchestrator_details"]["chain_segments"] is False for c in children)


def test_single_image_journey(queue: InMemoryQueue, tmp_path: Path) -> None:
    _, children = orchestrate(
        queue,
        tmp_path,
        orchestrator_payload(IMAGES[:1], segment_frames_expanded=[33], frame_overlap_expanded=[]),
    )
    assert [c.task_type for c in children] == ["travel_segment", "travel_stitch"]
    assert children[0].params["is_first_segment"] and children[0].params["is_last_segment"]
    assert children[1].params["frame_overlap_settings_expanded"] == []


def test_per_pair_overrides(queue: InMemoryQueue, tmp_path: Path) -> None:
    phase = {"steps_per_phase": [2, 2], "phases": [{"guidance_scale": 3.0}, {"guidance_scale": 1.0}]}
    override = {"steps_per_phase": [3, 3]}
    payload = orchestrator_payload(
        IMAGES,
        phase_config=phase,
        phase_configs_expanded=[None, override],
        additional_loras={"https://l.example/base.safetensors": 0.5},
        loras_per_segment_expanded=[None, [{"path": "https://l.example/pair.safetensors", "strength": 0.8}]],
    )
    _, children = orchestrate(queue, tmp_path, payload)
    assert children[0].params["phase_config"] == phase and children[1].params["phase_config"] == override
    assert children[0].params["additional_loras"] == {"https://l.example/base.safetensors": 0.5}
    assert children[1].params["additional_loras"] == {"https://l.example/pair.safetensors": 0.8}


class CrashingChildren:
    """Enqueues the first `keep` children, then fails: an orchestrator that died mid-way."""

    def __init__(self, inner: Any, keep: int) -> None:
        self.inner = inner
        self.keep = keep

    def enqueue(self, children: Sequence[NewTask]) -> list[str]:
        ids = self.inner.enqueue(children[: self.keep])
        raise RuntimeError(f"worker died after {len(ids)} children")

    def existing(self) -> list[Task]:
        return self.inner.existing()


def test_rerun_after_a_crash_fills_in_only_the_missing_children(queue: InMemoryQueue, tmp_path: Path) -> None:
    orchestrator_id = enqueue_orchestrator(queue, orchestrator_payload(IMAGES))
    claim = claim_type(queue, "travel_orchestrator")
    params = HANDLER.params_model.model_validate(claim.task.params)
    ctx = make_context(queue, claim, tmp_path / "w1")
    crashing = type(ctx)(**{**ctx.__dict__, "children": CrashingChildren(ctx.children, keep=1)})
    with pytest.raises(RuntimeError):
        HANDLER.run(crashing, params)
    first = queue.children(orchestrator_id)
    assert [c.task_type for c in first] == ["travel_segment"]
    queue.release(claim, "worker died")

    run_claim(queue, HANDLER, claim_type(queue, "travel_orchestrator"), tmp_path / "w2")
    children = queue.children(orchestrator_id)
    assert [c.task_type for c in children] == ["travel_segment", "travel_segment", "travel_stitch"]
    assert children[0].id == first[0].id
    assert children[1].dependant_on == (first[0].id,)  # the existing id is reused in the chain
    assert children[2].dependant_on == (children[1].id,)
    assert queue.get(orchestrator_id).output_location.startswith("Successfully enqueued 2 new segment tasks")  # type: ignore[union-attr]


def test_running_twice_creates_no_duplicates(queue: InMemoryQueue, tmp_path: Path) -> None:
    orchestrator_id = enqueue_orchestrator(queue, orchestrator_payload(IMAGES))
    claim = claim_type(queue, "travel_orchestrator")
    params = HANDLER.params_model.model_validate(claim.task.params)
    first = HANDLER.run(make_context(queue, claim, tmp_path / "a"), params)
    second = HANDLER.run(make_context(queue, claim, tmp_path / "b"), params)
    assert first.message == f"Successfully enqueued 3 new segment tasks for run {RUN_ID}"
    assert second.message == f"Successfully enqueued 0 new segment tasks for run {RUN_ID}"
    assert second.waiting
    assert len(queue.children(orchestrator_id)) == 3


def _with(details: dict[str, Any]) -> dict[str, Any]:
    payload = orchestrator_payload(IMAGES)
    payload["orchestrator_details"].update(details)
    return payload


BAD_PAYLOADS = [
    ({"input_image_paths_resolved": []}, r"input_image_paths_resolved: need at least 1 image, got 0"),
    ({"segment_frames_expanded": [17, 0]}, r"segment_frames_expanded\[1\]: must be at least 1 frame, got 0"),
    ({"segment_frames_expanded": [17, 17, 17]}, r"segment_frames_expanded: expected 2 entries"),
    ({"frame_overlap_expanded": [4, 4, 4, 4]}, r"frame_overlap_expanded: expected 1 to 2 entries"),
    ({"base_prompts_expanded": ["a", "b", "c"]}, r"base_prompts_expanded: expected 2 entries"),
    ({"num_new_segments_to_generate": 5}, r"num_new_segments_to_generate: says 5, but 3 image\(s\) make 2"),
    ({"parsed_resolution_wh": "wide"}, r"orchestrator_details.parsed_resolution_wh: expected 'WIDTHxHEIGHT'"),
    ({"use_svi": True}, r"use_svi: SVI travel is not supported"),
    ({"structure_guidance": {"target": "uni3c", "videos": [{"path": "x"}]}}, r"'uni3c' is not supported"),
    ({"input_image_paths_resolved": ["/etc/passwd", "b", "c"]}, r"\[0\]: local file paths are not accepted"),
    ({"input_image_paths_resolved": ["https://x/a.png", " ", "https://x/c.png"]}, r"\[1\]: empty image URL"),
    ({"model_name": "no_such_model"}, r"model: unknown model 'no_such_model'"),
    ({"phase_config": {"steps_per_phase": [2, 2, 2, 2]}}, r"phase_config.steps_per_phase: 2 or 3 phases"),
]


@pytest.mark.parametrize(("details", "message"), BAD_PAYLOADS)
def test_bad_payloads_fail_before_any_child_exists(
    queue: InMemoryQueue, tmp_path: Path, details: dict[str, Any], message: str
) -> None:
    orchestrator_id = enqueue_orchestrator(queue, _with(details))
    with pytest.raises(InvalidTaskParams, match=message):
        run_claim(queue, HANDLER, claim_type(queue, "travel_orchestrator"), tmp_path)
    assert queue.children(orchestrator_id) == []


def test_an_orchestrator_without_project_id_still_makes_its_children(
    queue: InMemoryQueue, tmp_path: Path
) -> None:
    """A project is Reigh's requirement only (its create-task refuses a child without one); a task
    file copied from the app has none, and the embedded queues and `run` need none."""
    orchestrator_id = enqueue_orchestrator(queue, orchestrator_payload(IMAGES), project_id=None)
    result = run_claim(queue, HANDLER, claim_type(queue, "travel_orchestrator"), tmp_path)
    children = queue.children(orchestrator_id)
    assert result.waiting and [c.task_type for c in children] == [
        "travel_segment",
        "travel_segment",
        "travel_stitch",
    ]
    assert all(c.project_id is None and c.params["project_id"] is None for c in children)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("orchestrator_details"), r"orchestrator_details: Field required"),
        (lambda p: p["orchestrator_details"].pop("run_id"), r"orchestrator_details.run_id: Field required"),
        (
            lambda p: p["orchestrator_details"].update(segment_frames_expanded="many"),
            r"segment_frames_expanded",
        ),
    ],
)
def test_schema_errors_name_the_field(
    queue: InMemoryQueue, tmp_path: Path, mutate: Any, message: str
) -> None:
    payload = copy.deepcopy(orchestrator_payload(IMAGES))
    mutate(payload)
    enqueue_orchestrator(queue, payload)
    with pytest.raises(InvalidTaskParams, match=message):
        run_claim(queue, HANDLER, claim_type(queue, "travel_orchestrator"), tmp_path)


def test_local_paths_are_accepted_when_allowed(queue: InMemoryQueue, tmp_path: Path) -> None:
    handler = TravelOrchestratorHandler(TravelConfig(allow_local_inputs=True))
    orchestrator_id = enqueue_orchestrator(queue, orchestrator_payload(["a.png", "b.png"]))
    run_claim(queue, handler, claim_type(queue, "travel_orchestrator"), tmp_path)
    assert len(queue.children(orchestrator_id)) == 2
