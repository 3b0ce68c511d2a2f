"""Finishing a task on Reigh exactly once (`reigh-contract.md` B2, B3, H5, §3.3).

`complete_task` is not idempotent: every call that gets through creates a generation, and it answers
200 even for a task that is no longer In Progress. So it is sent once; after an ambiguous failure
(timeout, dropped connection, 5xx) the task's status decides: Complete → done, In Progress → send
again, anything else → `ClaimLost`. What was uploaded and whether a call may have landed are kept
per task across `complete()` calls, because the worker retries those on TransientError.

2026-04: when the server cannot create the generation it marks the task Failed itself and answers a
5xx JSON envelope; the status check then finds Failed and the task is dropped (ClaimLost, with the
server's reason), never failed again nor completed a second time. A success carries `follow_up`; a
`degraded` one (placement, billing or orchestrator follow-ups failed server-side) is still a
completed task and is logged as a warning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from headless_wan.domain.tasks import ClaimedTask, Task, TaskResult, TaskStatus
from headless_wan.errors import ClaimLost, InvalidTaskParams, UploadError
from headless_wan.queue import semantics
from headless_wan.queue.reigh import convert
from headless_wan.queue.reigh import wire as w
from headless_wan.queue.reigh.contract import Contract, ContractState
from headless_wan.queue.reigh.options import ReighOptions
from headless_wan.queue.reigh.transport import (
    ReighHTTPError,
    ReighServerError,
    ReighTransport,
    ReighUnavailable,
)
from headless_wan.queue.reigh.uploads import CompletionBody, Uploader, storage_path_of

TaskOutput = Callable[[str], "w.TaskOutputResponse | None"]
logger = logging.getLogger(__name__)


@dataclass
class Pending:
    """Per-task completion state."""

    body: CompletionBody | None = None
    uploads: int = 0
    maybe_sent: bool = False  # a complete_task call may have been applied without us hearing it
    server_error: str = ""  # the last 5xx answer's text: the reason when the server failed the task


class Completer:
    def __init__(
        self,
        transport: ReighTransport,
        options: ReighOptions,
        contract: ContractState,
        task_output: TaskOutput,
        forget: Callable[[str], None],
    ) -> None:
        self._transport = transport
        self._options = options
        self._contract = contract
        self._uploader = Uploader(transport, options)
        self._task_output = task_output
        self._forget = forget
        self._pause = threading.Event()  # never set: an interruptible wait between tries

    def complete(
        self, claim: ClaimedTask, result: TaskResult, state: Pending, require_held: Callable[[], object]
    ) -> Task:
        if state.maybe_sent:  # an earlier call may have completed it; find out before repeating
            done = self._settle_uncertain(claim, state)
            if done is not None:
                return done
        else:
            require_held()  # B3: never upload or complete a task that is not ours any more
        if state.body is None:
            state.body = self._prepare(claim, result, state)
        return self._send(claim, state)

    def _prepare(self, claim: ClaimedTask, result: TaskResult, state: Pending) -> CompletionBody:
        if result.output is None:
            path = storage_path_of(result.message or "", self._options.base_url)
            if path is None:
                raise InvalidTaskParams(
                    "Reigh completes a task only with an output file; the handler returned none."
                )
            return w.CompleteStored(task_id=claim.id, storage_path=path)
        fresh = state.uploads > 0  # an earlier upload of this task may have landed: new name
        state.uploads += 1
        return self._uploader.prepare(claim.id, result.output, result.thumbnail, fresh_name=fresh)

    def _send(self, claim: ClaimedTask, state: Pending) -> Task:
        assert state.body is not None
        last: Exception | None = None
        for attempt in range(max(1, self._options.complete_attempts)):
            if attempt:
                self._pause.wait(
                    min(self._options.retry_backoff_s * 2**attempt, self._options.retry_backoff_max_s)
                )
            state.maybe_sent = True
            try:
                reply = self._transport.call(w.Fn.COMPLETE, state.body.body(), retry=False)
            except (ReighUnavailable, ReighServerError) as exc:
                last = exc
                state.server_error = exc.detail if isinstance(exc, ReighServerError) else ""
                done = self._settle_uncertain(claim, state)
                if done is not None:
                    return done
                continue
            except ReighHTTPError:
                state.maybe_sent = False  # a 4xx is decided before anything is created
                raise
            data = w.CompleteResponse.model_validate(reply.json() or {})
            self._note_follow_up(claim, data.follow_up)
            return self._completed(claim, data.public_url)
        raise UploadError(f"Reigh did not accept the completion of task {claim.id}: {last}")

    def _settle_uncertain(self, claim: ClaimedTask, state: Pending) -> Task | None:
        """After an ambiguous complete_task: Complete → done; In Progress → may retry; else lost."""
        out = self._task_output(claim.id)  # a transient failure here propagates; the state stays uncertain
        status = convert.status_of(out.status) if out else None
        if out is not None and status is TaskStatus.COMPLETE:
            return self._completed(claim, out.output_location)
        if status is not TaskStatus.IN_PROGRESS:
            self._forget(claim.id)
            why = f"; the server said: {state.server_error}" if state.server_error else ""
            raise ClaimLost(
                f"Task {claim.id} is no longer In Progress (it is {status.value if status else 'missing'}){why}."
            )
        state.maybe_sent = False
        return None

    def _note_follow_up(self, claim: ClaimedTask, follow_up: w.FollowUp | None) -> None:
        if follow_up is None:
            return
        self._contract.learn(Contract.V2026_04, "complete_task answered with follow_up")
        if follow_up.status != "ok":
            logger.warning(
                "task %s completed, but the server's follow-ups were %s: %s",
                claim.id,
                follow_up.status,
                "; ".join(f"{i.step}: {i.code}: {i.message}" for i in follow_up.issues) or "no details",
                extra={"action": "completion_degraded", "task_id": claim.id},
            )

    def _completed(self, claim: ClaimedTask, url: str | None) -> Task:
        self._forget(claim.id)
        now = semantics.utc_now()
        return replace(
            claim.task,
            status=TaskStatus.COMPLETE,
            output_location=url,
            updated_at=now,
            generation_processed_at=now,
        )
