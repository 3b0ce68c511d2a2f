"""Status writes through `update-task-status`, and what a refusal means (`contract.py`).

A refusal because somebody else moved the task (the app cancelled it, the server completed or failed
it, another worker requeued it) is a lost claim, never a task failure: the worker drops the task and
writes nothing more. 2026-01 says so with 404 or a 400 "Cannot update ..." guard; 2026-04 with a 409
naming the task's current status. A 409 while the task is still In Progress refused *our* transition
(a worker bug, not a lost claim) and surfaces as the HTTP error it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from headless_wan.domain.tasks import Task, TaskStatus
from headless_wan.errors import ClaimLost
from headless_wan.queue import semantics
from headless_wan.queue.reigh import convert
from headless_wan.queue.reigh import wire as w
from headless_wan.queue.reigh.contract import Contract, ContractState
from headless_wan.queue.reigh.options import ReighOptions
from headless_wan.queue.reigh.transport import ReighHTTPError, ReighTransport

IN_PROGRESS = TaskStatus.IN_PROGRESS.value


class StatusWriter:
    def __init__(
        self,
        transport: ReighTransport,
        options: ReighOptions,
        contract: ContractState,
        forget: Callable[[str], None],
    ) -> None:
        self._transport = transport
        self._options = options
        self._contract = contract
        self._forget = forget

    def post(self, body: w.UpdateStatusRequest, task_id: str) -> None:
        try:
            self._transport.call(w.Fn.UPDATE_STATUS, body.body())
        except ReighHTTPError as exc:
            lost = self._lost_claim(exc)
            if lost is None:
                raise
            self._forget(task_id)
            raise ClaimLost(f"Task {task_id} is not ours to update any more: {lost}") from None

    def _lost_claim(self, exc: ReighHTTPError) -> str | None:
        """The refusal's reason when it means "the task moved on without us", else None."""
        if exc.status == 404:
            return exc.detail or "not found"
        if exc.status == 400 and "Cannot update" in exc.detail:  # 2026-01's guard
            return exc.detail
        if exc.status != 409:
            return None
        self._contract.learn(Contract.V2026_04, "update-task-status refused a transition with 409")
        guard = _guard(exc.detail)
        if guard is None or guard.current_status == IN_PROGRESS:
            return None
        return guard.message or f"it is {guard.current_status}"

    def requeue(self, task_id: str, attempts: int, cause: str) -> None:
        outcome = semantics.requeue_outcome(attempts, self._options.max_attempts, cause)
        self.post(convert.requeue_request(task_id, outcome), task_id)

    def fail_children(self, parent_id: str, children: list[Task]) -> None:
        """Reigh's own cascade cannot find children from a failed orchestrator (§5.4)."""
        for child in children:
            if child.status.is_terminal:
                continue
            body = w.UpdateStatusRequest(
                task_id=child.id,
                status=TaskStatus.FAILED.value,
                error_details=f"Cascaded failed from related task {parent_id}",
            )
            try:
                self.post(body, child.id)
            except ClaimLost:
                continue


_CURRENT = re.compile(r'"current_status"\s*:\s*"([^"]+)"')


def _guard(detail: str) -> w.StatusGuard | None:
    """The 409 body. The transport keeps a scrubbed excerpt of at most 300 characters, which holds
    this small JSON whole; should it ever be cut, the current status is still found in it."""
    try:
        return w.StatusGuard.model_validate(json.loads(detail))
    except ValueError:
        found = _CURRENT.search(detail)
        return w.StatusGuard(current_status=found.group(1), message=detail) if found else None
