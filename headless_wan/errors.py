"""Error taxonomy.

Handlers and the engine raise these; the worker alone decides what each means for the queue
(fail, release, drop or exit). A class docstring is the default, user-readable message.
"""

from __future__ import annotations


class HeadlessWanError(Exception):
    """Unexpected worker error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self)


class InvalidTaskParams(HeadlessWanError):
    """The task's parameters are invalid."""


class UnsupportedTaskType(HeadlessWanError):
    """This worker does not run tasks of this type."""


class InputUnavailable(HeadlessWanError):
    """An input file of the task could not be fetched."""


class TransientError(HeadlessWanError):
    """A temporary failure (network, service unavailable); the task can be retried."""


class UploadError(TransientError):
    """Uploading the task's output failed."""


class MediaError(HeadlessWanError):
    """FFmpeg failed to read or write a video."""


class EngineOOM(HeadlessWanError):
    """The GPU ran out of memory."""


class TaskCancelled(HeadlessWanError):
    """The task was cancelled."""

    def __init__(self, message: str | None = None, *, reason: str = "user_cancelled") -> None:
        super().__init__(message)
        self.reason = reason


class ClaimLost(HeadlessWanError):
    """The task is no longer held by this worker."""


class WorkerFatal(HeadlessWanError):
    """The worker cannot continue (device or setup failure) and must be replaced."""


class QueueUnavailable(TransientError):
    """The task queue could not be reached."""


class ConfigError(HeadlessWanError):
    """The worker is misconfigured."""


class ExecutorLost(HeadlessWanError):
    """The executor process running the task died, stalled or ran past its time limit.

    `kind` is `died`, `stalled` or `timed_out`. `repeated` is set when the same task already lost
    an executor once: it is failed rather than released again."""

    def __init__(self, message: str, *, kind: str, repeated: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.repeated = repeated
