"""`ReighQueue`: the queue protocol over Reigh's edge functions (`reigh-contract.md`).

Reigh has no leases and no fencing, so this client compensates (contract §6):
- B1/B7: after each claim (service role) the row is read back; a task whose `worker_id` is not
  ours is dropped silently. Every later write first checks that the task is still In Progress and
  still ours; otherwise `ClaimLost`.
- B2/B3/H5: `complete_task` is not idempotent and answers 200 even for a task that is no longer In
  Progress, so it is called once, after a status check; an ambiguous failure is resolved with
  `get-task-output` before any retry.
- B4: cancellation is visible only by polling; `heartbeat()` does that.
- B8: a worker's row must exist before it claims: the first claim of a worker id sends a heartbeat.
- B9: Reigh never counts attempts; a release writes `attempts + 1` and fails at the cap.

Both generations of the edge functions are spoken (`contract.py`): creates go through `creation.py`,
status writes (and what a refusal means) through `status.py`; the rest of the wire is common.

`open()` does not register the worker (the `submit`/`tasks` commands use this class too and must not
create worker rows); the worker's heartbeat thread and the first claim do.

PAT mode (a user's personal access token) is best effort, for local use: no heartbeat, no model
affinity, no claim verification, no recovery, no task listing (Reigh allows none of these to a PAT).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from headless_wan.domain.tasks import ClaimedTask, NewTask, SegmentOutput, Task, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat, WorkerStatus
from headless_wan.errors import ClaimLost, ConfigError
from headless_wan.queue.reigh import convert
from headless_wan.queue.reigh import wire as w
from headless_wan.queue.reigh.completion import Completer, Pending
from headless_wan.queue.reigh.contract import Contract, shared_state
from headless_wan.queue.reigh.convert import Predecessor, PredecessorOutputs
from headless_wan.queue.reigh.creation import TaskCreator
from headless_wan.queue.reigh.options import ReighOptions
from headless_wan.queue.reigh.status import StatusWriter
from headless_wan.queue.reigh.transport import (
    ReighHTTPError,
    ReighServerError,
    ReighTransport,
    ReighUnavailable,
)

logger = logging.getLogger(__name__)

IN_PROGRESS = TaskStatus.IN_PROGRESS.value


@dataclass
class _State:
    registered: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # task ids this process claimed (for lost-claim adoption)
    completions: dict[str, Pending] = field(default_factory=dict)
    claim_uncertain: bool = False
    pat_noted: set[str] = field(default_factory=set)


class ReighQueue:
    def __init__(self, options: ReighOptions) -> None:
        self._options = options
        self._transport = ReighTransport(options)
        self._state = _State()
        self._contract = shared_state(
            options.base_url, options.token.get_secret_value(), Contract(options.contract)
        )
        self._creator = TaskCreator(self._transport, self._contract)
        self._status = StatusWriter(self._transport, options, self._contract, self._forget)
        self._completer = Completer(self._transport, options, self._contract, self._task_output, self._forget)

    def __repr__(self) -> str:
        return f"ReighQueue({self._transport!r})"

    @property
    def service_role(self) -> bool:
        return self._options.service_role

    # --- lifecycle and worker ------------------------------------------------------------------

    def open(self) -> None:
        self._transport.open()

    def close(self) -> None:
        self._transport.close()

    @property
    def contract(self) -> Contract | None:
        """The edge-function generation in use; None while `auto` has not learnt it yet."""
        return self._contract.current

    def worker_alive(self, beat: WorkerBeat) -> None:
        if not self._service_only("heartbeats"):
            return
        if beat.status is WorkerStatus.CRASHED and not self._contract.is_2026_04():
            self._crashed_beat(beat)
        else:
            self._transport.rpc(w.HEARTBEAT_RPC, convert.heartbeat_body(beat).body())
        self._state.registered.add(beat.worker_id)

    def _crashed_beat(self, beat: WorkerBeat) -> None:
        """2026-01 knows no `crashed` (its workers table refuses it): `error` there. Undecided,
        `crashed` is tried first, since a 2026-04 server requeues what the dead worker held."""
        if not self._contract.is_2026_01():
            try:
                self._transport.rpc(w.HEARTBEAT_RPC, convert.heartbeat_body(beat).body())
                return
            except ReighHTTPError as exc:
                if exc.status != 400:
                    raise
        self._transport.rpc(w.HEARTBEAT_RPC, convert.heartbeat_body(beat, status=w.STATUS_ERROR).body())

    def set_model(self, worker_id: str, model: str) -> None:
        if not self._service_only("model affinity"):
            return
        body = w.WorkerModelRequest(worker_id=worker_id, current_model=model.strip())
        self._transport.call(w.Fn.WORKER_MODEL, body.body())

    def recover(self, worker_id: str) -> list[str]:
        """Release what this worker id still holds from before a restart. A held orchestrator that
        already has children is waiting for them (its children finish it) and stays."""
        if not self._service_only("recovery of tasks held before a restart"):
            return []
        released = []
        for task in self._held_by(worker_id):
            if self.children(task.id):
                continue
            self._status.requeue(task.id, task.attempts, f"worker {worker_id} restarted while running it")
            released.append(task.id)
        return released

    # --- producer side -------------------------------------------------------------------------

    def enqueue(self, task: NewTask) -> str:
        return self._creator.create(task)

    def cancel(self, task_id: str) -> bool:
        raise ConfigError(
            "Reigh tasks are cancelled from the Reigh app (it sets the task Cancelled); a worker "
            "cannot cancel them. A running worker notices the cancellation and stops the task."
        )

    # --- claiming ------------------------------------------------------------------------------

    def claim(self, worker_id: str, task_types: Collection[str] | None = None) -> ClaimedTask | None:
        if self._state.claim_uncertain:
            adopted = self._adopt_lost_claim(worker_id)
            if adopted is not None:
                return adopted
        self._ensure_registered(worker_id)
        body = w.ClaimRequest(
            worker_id=worker_id if self.service_role else None,
            same_model_only=True if self._options.same_model_only else None,
            max_task_wait_minutes=self._options.max_task_wait_minutes,
        )
        try:
            reply = self._transport.call(w.Fn.CLAIM, body.body(), retry=False)
        except (ReighUnavailable, ReighServerError):
            # The server may have claimed a task for us without our hearing the answer.
            self._state.claim_uncertain = self.service_role
            raise
        if reply.status == 204 or not reply.text.strip():
            return None
        data = w.ClaimResponse.model_validate(reply.json())
        params, params_error = convert.split_params(data.params, data.task_id)
        task = Task(
            id=data.task_id,
            task_type=data.task_type,
            params=params,
            status=TaskStatus.IN_PROGRESS,
            project_id=data.project_id,
            worker_id=worker_id if self.service_role else None,
            parent_id=convert.parent_of(params),
            params_error=params_error,
        )
        if not self.service_role:
            return self._accept(self._with_dependencies(task), task_types)
        verified = self._verify_claim(task, worker_id)
        return self._accept(verified, task_types) if verified else None

    def _verify_claim(self, task: Task, worker_id: str) -> Task | None:
        """B1: the claim does not lock, so two workers can both be handed one task. The row read
        back also gives what the claim answer lacks (dependencies, attempts)."""
        try:
            rows = w.TASK_ROWS.validate_python(self._transport.select(w.query_task(task.id)))
        except ReighUnavailable:
            self._state.claim_uncertain = True  # adopt it on the next claim if it is ours
            raise
        row = rows[0] if rows else None
        if row is None or row.worker_id != worker_id or row.status != IN_PROGRESS:
            logger.info(
                "task %s was claimed by another worker too; dropping it",
                task.id,
                extra={"action": "claim_lost", "task_id": task.id},
            )
            return None
        return replace(task, dependant_on=convert.dependencies(row.dependant_on), attempts=row.attempts or 0)

    def _with_dependencies(self, task: Task) -> Task:
        """PAT mode: the claim answer lacks `dependant_on`; get-task-output has it."""
        out = self._task_output(task.id)
        return replace(task, dependant_on=convert.dependencies(out.dependant_on)) if out else task

    def _accept(self, task: Task, task_types: Collection[str] | None) -> ClaimedTask | None:
        if task_types is not None and task.task_type not in task_types:
            # Reigh's claim cannot filter by type: hand it back untouched (attempts unchanged).
            self._post_status(
                w.UpdateStatusRequest(task_id=task.id, status="Queued", clear_worker=True), task.id
            )
            return None
        self._state.seen.add(task.id)
        return ClaimedTask(task, claim_token=uuid.uuid4().hex)

    def _adopt_lost_claim(self, worker_id: str) -> ClaimedTask | None:
        """§3.13: a task claimed for us whose answer was lost is In Progress under our id."""
        held = [t for t in self._held_by(worker_id) if t.id not in self._state.seen]
        self._state.claim_uncertain = False
        for task in held:
            if self.children(task.id):  # a waiting orchestrator from an earlier run
                continue
            logger.warning(
                "adopting task %s whose claim answer was lost",
                task.id,
                extra={"action": "claim_adopted", "task_id": task.id},
            )
            self._state.seen.add(task.id)
            return ClaimedTask(task, claim_token=uuid.uuid4().hex)
        return None

    def _ensure_registered(self, worker_id: str) -> None:
        if self.service_role and worker_id not in self._state.registered:
            self.worker_alive(WorkerBeat(worker_id=worker_id, status=WorkerStatus.ACTIVE))

    # --- the held task -------------------------------------------------------------------------

    def heartbeat(self, claim: ClaimedTask) -> TaskStatus | None:
        """IN_PROGRESS while the task is ours; None once it was cancelled, finished or taken."""
        out = self._task_output(claim.id)
        if out is None or convert.status_of(out.status) is not TaskStatus.IN_PROGRESS:
            return None
        if self.service_role:
            row = self._owner_row(claim.id)
            if row is None or row.worker_id != claim.task.worker_id:
                return None
        return TaskStatus.IN_PROGRESS

    def mark_started(self, claim: ClaimedTask) -> None:
        # Writing In Progress to a Complete task is allowed by Reigh, hence the check first (B12).
        self._require_held(claim)
        self._post_status(
            w.UpdateStatusRequest(task_id=claim.id, status=IN_PROGRESS, reset_generation_started_at=True),
            claim.id,
        )

    def mark_waiting(self, claim: ClaimedTask, message: str) -> None:
        """The task stays In Progress under this worker; its children finish it. 2026-01 also
        records the message; 2026-04 refuses any In Progress → In Progress write (409), so there,
        and while the generation is unknown, nothing is written."""
        self._require_held(claim)
        if self._contract.is_2026_01():
            self._post_status(
                w.UpdateStatusRequest(task_id=claim.id, status=IN_PROGRESS, output_location=message),
                claim.id,
            )
        self._state.completions.pop(claim.id, None)

    def fail(self, claim: ClaimedTask, message: str) -> None:
        self._require_held(claim)
        self._post_status(
            w.UpdateStatusRequest(
                task_id=claim.id,
                status=TaskStatus.FAILED.value,
                error_details=message,
                output_location=message,
            ),
            claim.id,
        )
        self._forget(claim.id)
        if "orchestrator" in claim.task_type:
            self._status.fail_children(claim.id, self.children(claim.id))

    def release(self, claim: ClaimedTask, reason: str) -> None:
        attempts = self._require_held(claim)
        self._status.requeue(claim.id, attempts, reason)
        self._forget(claim.id)

    def complete(self, claim: ClaimedTask, result: TaskResult) -> Task:
        state = self._state.completions.setdefault(claim.id, Pending())
        return self._completer.complete(claim, result, state, lambda: self._require_held(claim))

    # --- reads ---------------------------------------------------------------------------------

    def check_access(self) -> str:
        """One cheap authenticated read that creates nothing (no worker row): a PostgREST read of
        one task id with the service-role key, `get-task-output` of the nil uuid with a PAT."""
        if self.service_role:
            self._transport.select({"select": "id", "limit": "1"})
            return "service-role key accepted (PostgREST read)"
        self._task_output("00000000-0000-0000-0000-000000000000")
        return "personal access token accepted (get-task-output)"

    def get(self, task_id: str) -> Task | None:
        if self.service_role:
            rows = w.TASK_ROWS.validate_python(self._transport.select(w.query_task(task_id)))
            return convert.task_from_row(rows[0]) if rows else None
        out = self._task_output(task_id)
        return convert.task_from_output(task_id, out) if out else None

    def list_tasks(self, status: TaskStatus | None = None, limit: int = 100) -> list[Task]:
        if not self.service_role:
            raise ConfigError(
                "Listing tasks on Reigh needs the service-role key (SUPABASE_SERVICE_ROLE_KEY); "
                "with a personal access token use the Reigh app."
            )
        query = w.query_recent(limit, status.value if status else None)
        return [convert.task_from_row(r) for r in w.TASK_ROWS.validate_python(self._transport.select(query))]

    def children(self, parent_id: str) -> list[Task]:
        reply = self._transport.call(w.Fn.CHILDREN, w.ChildrenRequest(orchestrator_task_id=parent_id).body())
        return [convert.task_from_child(row) for row in w.ChildrenResponse.model_validate(reply.json()).tasks]

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        reply = self._transport.call(
            w.Fn.SEGMENTS, w.SegmentsRequest(run_id=run_id, project_id=project_id).body()
        )
        return convert.segments(w.SEGMENT_ROWS.validate_python(reply.json() or []))

    def predecessor_outputs(self, task_id: str) -> PredecessorOutputs:
        reply = self._transport.call(w.Fn.PREDECESSOR, w.TaskIdRequest(task_id=task_id).body())
        data = w.PredecessorResponse.model_validate(reply.json())
        rows = tuple(Predecessor(p.predecessor_id, p.status, p.output_location) for p in data.predecessors)
        all_complete = data.all_complete if data.all_complete is not None else not rows
        return PredecessorOutputs(bool(all_complete), rows)

    # --- internals: status ---------------------------------------------------------------------

    def _service_only(self, what: str) -> bool:
        if self.service_role:
            return True
        if what not in self._state.pat_noted:
            self._state.pat_noted.add(what)
            logger.warning(
                "Reigh PAT mode: %s are not available with a personal access token (best effort, local use)",
                what,
                extra={"action": "reigh_pat_limit"},
            )
        return False

    def _task_output(self, task_id: str) -> w.TaskOutputResponse | None:
        reply = self._transport.call(w.Fn.TASK_OUTPUT, w.TaskIdRequest(task_id=task_id).body(), accept=(404,))
        return None if reply.status == 404 else w.TaskOutputResponse.model_validate(reply.json())

    def _owner_row(self, task_id: str) -> w.TaskRow | None:
        rows = w.TASK_ROWS.validate_python(self._transport.select(w.query_task(task_id, w.OWNER_COLUMNS)))
        return rows[0] if rows else None

    def _held_by(self, worker_id: str) -> list[Task]:
        data = self._transport.select(w.query_held_by(worker_id, IN_PROGRESS))
        return [convert.task_from_row(r) for r in w.TASK_ROWS.validate_python(data)]

    def _require_held(self, claim: ClaimedTask) -> int:
        """Raise ClaimLost unless the task is In Progress (and, service role, ours). Returns the
        task's attempt count."""
        if self.service_role:
            row = self._owner_row(claim.id)
            status, owner = (row.status, row.worker_id) if row else ("missing", None)
            if status == IN_PROGRESS and owner == claim.task.worker_id:
                return (row.attempts if row else 0) or 0
        else:
            out = self._task_output(claim.id)
            status = out.status if out else "missing"
            if status == IN_PROGRESS:
                return claim.task.attempts
        self._forget(claim.id)
        raise ClaimLost(f"Task {claim.id} is no longer held by this worker (it is {status}).")

    def _post_status(self, body: w.UpdateStatusRequest, task_id: str) -> None:
        self._status.post(body, task_id)

    def _forget(self, task_id: str) -> None:
        self._state.completions.pop(task_id, None)
        self._state.seen.discard(task_id)
