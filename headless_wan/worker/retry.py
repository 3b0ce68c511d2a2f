"""The one place that decides what an exception means for the task."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from headless_wan.errors import (
    ClaimLost,
    ExecutorLost,
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
    STOP = "stop"  # SystemExit / KeyboardInterrupt: release, then the worker stops (not a task failure)


@dataclass(frozen=True)
class Decision:
    action: Action
    message: str


def decide(exc: BaseException, task_type: str) -> Decision:
    if not isinstance(exc, Exception):
        return Decision(Action.STOP, f"worker stopped ({type(exc).__name__}) before the task finished")
    if isinstance(exc, ExecutorLost):
        # A crash or a hang may be the box's (memory pressure, a flaky driver): one more try. A task
        # that loses an executor twice, or runs past its time limit, would do it again.
        if exc.kind == "timed_out" or exc.repeated:
            return Decision(Action.FAIL, _short(str(exc)))
        return Decision(Action.RELEASE, _short(f"{exc}; released to run once more"))
    if isinstance(exc, MemoryError):  # host RAM (RLIMIT_AS, cgroup); GPU memory is EngineOOM
        return Decision(Action.FAIL, f"The {task_type} handler ran out of host memory (MemoryError)")
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
    # (`type_name`: the class name of an error raised in the executor process.)
    name = getattr(exc, "type_name", None) or type(exc).__name__
    return Decision(Action.FAIL, _short(f"Internal error in the {task_type} handler: {name}: {exc}"))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
