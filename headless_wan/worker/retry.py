"""The one place that decides what an exception means for the task."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from headless_wan.errors import (
    ClaimLost,
    HeadlessWanError,
    TaskCancelled,
    TransientError,
    WorkerFatal,
)

MAX_MESSAGE_CHARS = 500


class Action(Enum):
    FAIL = "fail"  # terminal: Failed with a readable message
    RELEASE = "release"  # back to Queued (attempts + 1); another try may succeed
    DROP = "drop"  # the task is not ours any more (cancelled by the user, claim lost): touch nothing
    FATAL = "fatal"  # release, then the worker exits non-zero so the platform replaces it


@dataclass(frozen=True)
class Decision:
    action: Action
    message: str


def decide(exc: BaseException, task_type: str) -> Decision:
    if isinstance(exc, TaskCancelled):
        if exc.reason == "shutdown":
            return Decision(Action.RELEASE, "worker shut down before the task finished")
        return Decision(Action.DROP, str(exc))
    if isinstance(exc, ClaimLost):
        return Decision(Action.DROP, str(exc))
    if isinstance(exc, WorkerFatal):
        return Decision(Action.FATAL, _short(str(exc)))
    if isinstance(exc, TransientError):
        return Decision(Action.RELEASE, _short(str(exc)))
    if isinstance(exc, HeadlessWanError):
        return Decision(Action.FAIL, _short(str(exc)))
    # A bug or an unforeseen library error: the message stays short; the traceback goes to the log.
    return Decision(
        Action.FAIL, _short(f"Internal error in the {task_type} handler: {type(exc).__name__}: {exc}")
    )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
