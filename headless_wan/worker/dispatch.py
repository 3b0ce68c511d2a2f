"""Task type → handler, and params validation before anything expensive runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from headless_wan.domain.payload_limits import PayloadLimits, PayloadTooLarge
from headless_wan.domain.tasks import Task
from headless_wan.errors import InvalidTaskParams, UnsupportedTaskType
from headless_wan.handlers.base import Handler

MAX_ERRORS_SHOWN = 5


class HandlerRegistry:
    """Handlers by task type. `limits` bound every claimed payload before its params model walks it
    (a queue may hold tasks that were never checked at submit: another producer wrote them)."""

    def __init__(self, handlers: Iterable[Handler] = (), *, limits: PayloadLimits | None = None) -> None:
        self._limits = limits or PayloadLimits()
        self._handlers: dict[str, Handler] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: Handler) -> None:
        if handler.task_type in self._handlers:
            raise ValueError(f"two handlers registered for task type {handler.task_type!r}")
        self._handlers[handler.task_type] = handler

    @property
    def task_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def resolve(self, task: Task) -> tuple[Handler, BaseModel]:
        """The handler for the task and its validated params; raises a terminal error otherwise."""
        handler = self._handlers.get(task.task_type)
        if handler is None:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise UnsupportedTaskType(f"Unknown task type {task.task_type!r}: this worker runs {known}.")
        if task.params_error is not None:
            raise InvalidTaskParams(f"Invalid {task.task_type} task: {task.params_error}.")
        try:
            self._limits.check_object(task.params, "params")
        except PayloadTooLarge as exc:
            raise InvalidTaskParams(f"Invalid {task.task_type} task: {exc}.") from None
        return handler, validate_params(handler.params_model, task.task_type, task.params)


def validate_params(model: type[BaseModel], task_type: str, params: Any) -> BaseModel:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise InvalidTaskParams(describe_validation_error(task_type, exc)) from None


def describe_validation_error(task_type: str, exc: ValidationError) -> str:
    """One line per problem, naming the field: short enough for a UI, precise enough to fix."""
    problems = []
    for error in exc.errors()[:MAX_ERRORS_SHOWN]:
        field = ".".join(str(part) for part in error["loc"]) or "params"
        problems.append(f"{field}: {error['msg']}")
    more = exc.error_count() - len(problems)
    suffix = f" (and {more} more)" if more > 0 else ""
    return f"Invalid params for {task_type}: " + "; ".join(problems) + suffix
