"""Error classification, params validation messages and progress throttling."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, Field

from headless_wan.errors import (
    ClaimLost,
    EngineOOM,
    ExecutorLost,
    InputUnavailable,
    InvalidTaskParams,
    QueueUnavailable,
    TaskCancelled,
    UploadError,
    WorkerFatal,
)
from headless_wan.worker.dispatch import validate_params
from headless_wan.worker.executor.messages import RemoteError
from headless_wan.worker.progress import ProgressReporter
from headless_wan.worker.retry import MAX_MESSAGE_CHARS, Action, decide


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (InvalidTaskParams("bad"), Action.FAIL),
        (InputUnavailable("404"), Action.FAIL),
        (EngineOOM("oom"), Action.FAIL),
        (UploadError("503"), Action.RELEASE),
        (QueueUnavailable("down"), Action.RELEASE),
        (TaskCancelled(reason="shutdown"), Action.RELEASE),
        (TaskCancelled(reason="user_cancelled"), Action.DROP),
        (TaskCancelled(reason="lost_claim"), Action.DROP),
        (ClaimLost(), Action.DROP),
        (WorkerFatal("GPU has fallen off the bus"), Action.FATAL),
        (ZeroDivisionError("division by zero"), Action.FAIL),
        (ExecutorLost("died", kind="died"), Action.RELEASE),
        (ExecutorLost("stalled", kind="stalled"), Action.RELEASE),
        (ExecutorLost("died again", kind="died", repeated=True), Action.FAIL),
        (ExecutorLost("too long", kind="timed_out"), Action.FAIL),
        (MemoryError(), Action.FAIL),
        (SystemExit(3), Action.STOP),
        (KeyboardInterrupt(), Action.STOP),
    ],
)
def test_each_error_class_maps_to_one_action(exc: BaseException, action: Action) -> None:
    assert decide(exc, "vace").action is action


def test_unexpected_errors_get_a_short_readable_message() -> None:
    decision = decide(KeyError("x" * 2000), "vace")
    assert decision.message.startswith("Internal error in the vace handler: KeyError:")
    assert len(decision.message) <= MAX_MESSAGE_CHARS and "\n" not in decision.message


class Params(BaseModel):
    prompt: str
    frames: int = Field(gt=0)


def test_validation_errors_name_the_fields() -> None:
    with pytest.raises(InvalidTaskParams) as info:
        validate_params(Params, "vace", {"frames": 0})
    assert str(info.value) == (
        "Invalid params for vace: prompt: Field required; frames: Input should be greater than 0"
    )


def test_progress_is_throttled_but_keeps_stage_boundaries() -> None:
    now = [0.0]
    reporter = ProgressReporter(logging.LoggerAdapter(logging.getLogger("t"), {}), 2.0, clock=lambda: now[0])
    for step in range(1, 11):
        reporter.report("denoising", step, 10)
        now[0] += 0.5
    reporter.report("encoding", 1, 1)
    logged = [(e.stage, e.step) for e in reporter.logged]
    assert logged == [
        ("denoising", 1),
        ("denoising", 5),
        ("denoising", 9),
        ("denoising", 10),
        ("encoding", 1),
    ]
    assert reporter.latest is not None and reporter.latest.seq == 11
    reporter.close()
    reporter.report("encoding", 1, 1)
    assert reporter.latest.seq == 11  # nothing after the final status


def test_messages_for_errors_from_the_executor_name_their_original_class() -> None:
    remote = decide(RemoteError("CudaLaunchError", "bad kernel"), "vace")
    assert remote.message == "Internal error in the vace handler: CudaLaunchError: bad kernel"
    first = decide(ExecutorLost("Executor process died (killed by signal SIGSEGV)", kind="died"), "vace")
    assert first.message == "Executor process died (killed by signal SIGSEGV); released to run once more"
    assert decide(MemoryError(), "vace").message == "The vace handler ran out of host memory (MemoryError)"
