"""Creating tasks (an orchestrator's children, `submit`) through `create-task`, in either generation.

- 2026-01: `{task_id, task_type, project_id, params, dependant_on}` (`reigh-contract.md` §3.5).
- 2026-04: `{family, project_id, input, idempotency_key}`; the passthrough resolver makes `family`
  the task type, `input` the params, `input.task_id` the id and `input.dependant_on` the
  dependencies. The idempotency key is derived from the client-generated id, so a create whose
  answer was lost and is sent again returns the child already made instead of a second one.

Either way the id is generated client-side, and a duplicate-key answer means an earlier (possibly
retried) call already created the task, which is left as it is.
"""

from __future__ import annotations

from typing import Any

from headless_wan.domain.tasks import NewTask
from headless_wan.errors import ConfigError, InvalidTaskParams
from headless_wan.queue.reigh import wire as w
from headless_wan.queue.reigh.contract import Contract, ContractState
from headless_wan.queue.reigh.transport import ReighHTTPError, ReighServerError, ReighTransport

IDEMPOTENCY_PREFIX = "headless_wan:create:"


def idempotency_key(task_id: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{task_id}"


class TaskCreator:
    def __init__(self, transport: ReighTransport, contract: ContractState) -> None:
        self._transport = transport
        self._contract = contract

    def create(self, task: NewTask) -> str:
        if not task.project_id:
            raise InvalidTaskParams("Reigh's create-task needs a project_id for every task.")
        params = dict(task.params)
        if task.parent_id:  # Reigh links children through params, not a column (§7.1)
            params.setdefault(w.ORCHESTRATOR_REF_KEY, task.parent_id)
        if self._contract.is_2026_01():
            self._legacy(task, params)
        else:
            self._family(task, params)
        return task.id

    def _family(self, task: NewTask, params: dict[str, Any]) -> None:
        payload = dict(params)
        payload[w.INPUT_TASK_ID_KEY] = task.id
        if task.dependant_on:
            payload[w.INPUT_DEPENDANT_ON_KEY] = list(task.dependant_on)
        body = w.CreateFamilyRequest(
            family=task.task_type,
            project_id=str(task.project_id),
            input=payload,
            idempotency_key=idempotency_key(task.id),
        )
        try:
            self._send(body.body())
        except ReighHTTPError as exc:
            refused_as_legacy = exc.status == 400 and w.LEGACY_CREATE_REFUSAL in exc.detail
            if refused_as_legacy and self._contract.configured is Contract.V2026_04:
                raise ConfigError(
                    "HW_REIGH_CONTRACT=2026-04, but this Reigh server speaks the 2026-01 contract "
                    f"(create-task answered: {exc.detail}); set HW_REIGH_CONTRACT=2026-01 or auto."
                ) from None
            if not refused_as_legacy:
                raise
            self._contract.learn(Contract.V2026_01, "create-task refused the family/input body")
            self._legacy(task, params)
            return
        self._contract.learn(Contract.V2026_04, "create-task accepted the family/input body")

    def _legacy(self, task: NewTask, params: dict[str, Any]) -> None:
        body = w.CreateTaskRequest(
            task_id=task.id,
            task_type=task.task_type,
            project_id=str(task.project_id),
            params=params,
            dependant_on=list(task.dependant_on) or None,
        )
        try:
            self._send(body.body())
        except ReighHTTPError as exc:
            if exc.status == 400 and w.FAMILY_REQUIRED in exc.detail:
                raise ConfigError(
                    "HW_REIGH_CONTRACT=2026-01, but this Reigh server speaks the 2026-04 contract "
                    f"(create-task answered: {w.FAMILY_REQUIRED}); set HW_REIGH_CONTRACT=2026-04 or auto."
                ) from None
            raise

    def _send(self, body: dict[str, Any]) -> None:
        try:
            self._transport.call(w.Fn.CREATE_TASK, body)
        except ReighServerError as exc:
            if not any(marker in exc.detail.lower() for marker in w.DUPLICATE_KEY_MARKERS):
                raise
