"""What differs between the two generations of Reigh's edge functions (2026-01, 2026-04), through
ReighQueue over loopback HTTP: contract detection, refused transitions, idempotent creates, the
crashed heartbeat, server-side completion failures, and a 5xx on every call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskResult, TaskStatus
from headless_wan.domain.workers import WorkerBeat, WorkerStatus
from headless_wan.errors import ClaimLost, ConfigError, HeadlessWanError
from headless_wan.queue.reigh import DEFAULT_TIMEOUTS, ReighQueue
from headless_wan.queue.reigh.contract import Contract
from tests.integration.reigh.conftest import client
from tests.reigh_server import ReighServer


def _output(tmp_path: Path, name: str = "out.mp4") -> TaskResult:
    out = tmp_path / name
    out.write_bytes(b"video bytes" * 50)
    return TaskResult(output=out)


def _set_status(server: ReighServer, task_id: str, status: str) -> Callable[[], None]:
    """What another party does (the app, the server's cron): moves the task without the worker."""

    def act() -> None:
        with server.store.tx() as db:
            db.execute("UPDATE tasks SET status=? WHERE id=?", (status, task_id))

    return act


# --- detection -----------------------------------------------------------------------------------


def test_auto_learns_the_generation_from_the_first_create(
    server: ReighServer, queue: ReighQueue, contract: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="headless_wan.queue.reigh.contract")
    assert queue.contract is None
    child = NewTask("echo", {"message": "x"}, project_id=server.project_id)
    queue.enqueue(child)
    assert queue.contract is Contract(contract)
    assert f"speaks the {contract} edge-function contract" in caplog.text
    twin = client(server)  # another client of the same server in this process (the heartbeat's)
    assert twin.contract is Contract(contract)
    assert server.task(child.id)["task_type"] == "echo" and server.task(child.id)["params"]["message"] == "x"
    refusals = [r for r in server.requests if r.endpoint == "create-task"]
    assert len(refusals) == (1 if contract == "2026-04" else 2)  # 2026-01: one refused 2026-04 body


def test_a_completion_answer_with_follow_up_means_2026_04(
    server: ReighServer, queue: ReighQueue, contract: str, tmp_path: Path
) -> None:
    server.submit("fake_video", {})
    queue.complete(queue.claim("w1"), _output(tmp_path))  # type: ignore[arg-type]
    assert queue.contract is (Contract.V2026_04 if contract == "2026-04" else None)


@pytest.mark.parametrize(("speaks", "forced"), [("2026-01", "2026-04"), ("2026-04", "2026-01")])
def test_a_forced_contract_that_does_not_match_the_server_is_a_config_error(
    tmp_path: Path, speaks: str, forced: str
) -> None:
    with ReighServer(tmp_path / "reigh", contract=speaks) as server:
        queue = client(server, contract=forced)
        with pytest.raises(ConfigError, match=f"HW_REIGH_CONTRACT={forced}.*set HW_REIGH_CONTRACT={speaks}"):
            queue.enqueue(NewTask("echo", {}, project_id=server.project_id))
        assert [t["id"] for t in server.store.tasks()] == []


def test_a_forced_contract_sends_only_its_own_form(server: ReighServer, contract: str) -> None:
    queue = client(server, contract=contract)
    assert queue.contract is Contract(contract)
    queue.enqueue(NewTask("echo", {"message": "y"}, project_id=server.project_id))
    (body,) = server.calls("create-task")
    assert ("family" in body) is (contract == "2026-04")


# --- refused transitions are lost claims ---------------------------------------------------------


@pytest.mark.parametrize("moved_to", ["Cancelled", "Complete", "Failed"])
def test_a_task_moved_by_someone_else_mid_write_is_a_lost_claim(
    server: ReighServer, queue: ReighQueue, contract: str, moved_to: str
) -> None:
    if contract == "2026-01" and moved_to == "Failed":
        pytest.skip("2026-01 lets Failed be overwritten (contract B12); 2026-04 refuses it")
    task_id = server.submit("echo", {"message": "hi"})
    claim = queue.claim("w1")
    server.faults.before("update-task-status", _set_status(server, task_id, moved_to))
    with pytest.raises(ClaimLost):
        queue.fail(claim, "bad input")  # type: ignore[arg-type]
    row = server.task(task_id)
    assert row["status"] == moved_to and row["error_message"] is None
    if contract == "2026-04":
        assert queue.contract is Contract.V2026_04  # the 409 told


def test_mark_started_is_the_one_in_progress_rewrite_2026_04_allows(
    server: ReighServer, queue: ReighQueue, contract: str
) -> None:
    task_id = server.submit("echo", {"message": "hi"})
    claim = queue.claim("w1")
    before = server.task(task_id)["generation_started_at"]
    queue.mark_started(claim)  # type: ignore[arg-type]
    assert server.task(task_id)["generation_started_at"] > before
    assert server.task(task_id)["status"] == "In Progress"


def test_an_orchestrator_waiting_for_its_children_writes_no_in_progress(
    server: ReighServer, queue: ReighQueue, contract: str
) -> None:
    parent = server.submit("spawn", {})
    claim = queue.claim("w1")
    queue.enqueue(NewTask("echo", {"message": "c"}, project_id=server.project_id, parent_id=parent))
    queue.mark_waiting(claim, "Enqueued 1 child task(s)")  # type: ignore[arg-type]
    writes = [b for b in server.calls("update-task-status") if b["task_id"] == parent]
    assert writes == ([] if contract == "2026-04" else [writes[0]])
    assert server.task(parent)["status"] == "In Progress" and server.task(parent)["worker_id"] == "w1"


# --- creates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_a_create_whose_answer_was_lost_makes_exactly_one_child(
    server: ReighServer, contract: str, fault: str
) -> None:
    queue = client(server, contract=contract, timeouts={"create-task": 0.5})
    child = NewTask("echo", {"message": "once"}, project_id=server.project_id)
    if fault == "drop":
        server.faults.drop("create-task")
    else:
        server.faults.hang("create-task", seconds=1.0)  # applied after the client gave up
    assert queue.enqueue(child) == child.id
    from tests.helpers import wait_for

    wait_for(lambda: len(server.calls("create-task")) >= 2, what="the retried create")
    assert [t["id"] for t in server.store.tasks()] == [child.id]


def test_an_unknown_family_is_refused_with_the_servers_reason(app_server: ReighServer) -> None:
    server = app_server  # 2026-01 does not check task types (contract §3.5)
    server.task_types.discard("echo")
    queue = client(server)
    with pytest.raises(HeadlessWanError) as refused:
        queue.enqueue(NewTask("echo", {}, project_id=server.project_id))
    assert (
        str(refused.value) == "Reigh create-task answered HTTP 400: Unknown task family (unknown_task_family)"
    )


# --- the heartbeat -------------------------------------------------------------------------------


def test_a_crashed_heartbeat_gives_back_what_the_worker_held(
    server: ReighServer, queue: ReighQueue, contract: str
) -> None:
    held = server.submit("echo", {"message": "a"})
    assert queue.claim("w1").id == held  # type: ignore[union-attr]
    queue.worker_alive(WorkerBeat("w1", WorkerStatus.CRASHED))
    sent = [b["status_param"] for b in server.calls("heartbeat")]
    worker = server.store.worker("w1")
    assert worker is not None
    if contract == "2026-04":
        assert sent[-1] == "crashed" and worker["status"] == "crashed"
        row = server.task(held)
        assert row["status"] == "Queued" and row["worker_id"] is None and row["attempts"] == 1
    else:  # no `crashed` there: `error`, and the restart's recover() gives the task back
        assert sent[-2:] == ["crashed", "error"] and worker["status"] == "error"
        assert server.task(held)["status"] == "In Progress"


# --- completion ----------------------------------------------------------------------------------


def test_a_completion_the_server_fails_is_dropped_not_retried(
    app_server: ReighServer, tmp_path: Path
) -> None:
    server, queue = app_server, client(app_server)  # 2026-01 never fails a task from complete_task
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    server.fail_generation_next("shot_generations insert failed")
    with pytest.raises(ClaimLost, match="shot_generations insert failed"):
        queue.complete(claim, _output(tmp_path))  # type: ignore[arg-type]
    row = server.task(task_id)
    assert row["status"] == "Failed" and "Generation creation failed" in row["error_message"]
    assert len(server.calls("complete_task")) == 1 and server.generations(task_id) == 0
    assert [b for b in server.calls("update-task-status") if b.get("status") == "Failed"] == []


# --- a 5xx on every call -------------------------------------------------------------------------


def _calls(server: ReighServer, queue: ReighQueue, tmp_path: Path) -> dict[str, Callable[[], object]]:
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    assert claim is not None
    big = tmp_path / "big.mp4"
    big.write_bytes(b"v" * 4096)
    return {
        "update-task-status": lambda: queue.mark_started(claim),
        "create-task": lambda: queue.enqueue(NewTask("echo", {}, project_id=server.project_id)),
        "get-task-output": lambda: queue.heartbeat(claim),
        "tasks": lambda: queue.get(task_id),
        "heartbeat": lambda: queue.worker_alive(WorkerBeat("w1", WorkerStatus.ACTIVE)),
        "get-orchestrator-children": lambda: queue.children(task_id),
        "get-predecessor-output": lambda: queue.predecessor_outputs(task_id),
        "get-completed-segments": lambda: queue.completed_segments("run-x"),
        "update-worker-model": lambda: queue.set_model("w1", "wan_2_2_vace_14b"),
        "generate-upload-url": lambda: queue.complete(claim, TaskResult(output=big)),
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        "update-task-status",
        "create-task",
        "get-task-output",
        "tasks",
        "heartbeat",
        "get-orchestrator-children",
        "get-predecessor-output",
        "get-completed-segments",
        "update-worker-model",
        "generate-upload-url",
    ],
)
@pytest.mark.parametrize("fault", ["503", "timeout"])
def test_a_passing_outage_on_any_call_is_retried(
    server: ReighServer, tmp_path: Path, endpoint: str, fault: str
) -> None:
    timeouts = {name: 0.3 for name in DEFAULT_TIMEOUTS} if fault == "timeout" else {}
    queue = client(server, base64_max_bytes=1024, timeouts=timeouts)
    action = _calls(server, queue, tmp_path)[endpoint]
    if fault == "503":
        server.faults.fail(endpoint, times=1, status=503)
    else:  # held past the client's timeout and never applied
        server.faults.hang(endpoint, seconds=1.0, apply=False)
    action()
    kind = "fail" if fault == "503" else "hang"
    assert server.faults.pending(endpoint) == 0 and (endpoint, kind) in server.faults.fired
    if endpoint == "generate-upload-url":
        assert queue.get(server.last_claimed or "").status is TaskStatus.COMPLETE  # type: ignore[union-attr]


# --- settings ------------------------------------------------------------------------------------


def test_the_contract_and_wait_settings_reach_the_wire(server: ReighServer, contract: str) -> None:
    from pydantic import SecretStr

    from headless_wan.config import Settings
    from headless_wan.wiring import build_reigh_queue

    settings = Settings(
        queue="reigh",
        supabase_url=server.url,
        supabase_service_role_key=SecretStr(server.service_key),
        reigh_contract=contract,  # type: ignore[arg-type]
        reigh_same_model_only=True,
        reigh_max_task_wait_minutes=10,
    )
    queue = build_reigh_queue(settings)
    assert queue.contract is Contract(contract)  # type: ignore[attr-defined]
    queue.open()
    assert queue.claim("w1") is None
    assert server.calls("claim-next-task") == [
        {"worker_id": "w1", "run_type": "gpu", "same_model_only": True, "max_task_wait_minutes": 10}
    ]


def test_a_failed_orchestrator_takes_its_children_without_a_refused_write(
    server: ReighServer, queue: ReighQueue, contract: str
) -> None:
    orchestrator = server.submit("travel_orchestrator", {"orchestrator_details": {"run_id": "r1"}})
    claim = queue.claim("w1")
    children = [
        NewTask("echo", {"message": str(i)}, project_id=server.project_id, parent_id=orchestrator)
        for i in range(2)
    ]
    for child in children:
        queue.enqueue(child)
    queue.fail(claim, "orchestrator_details.segment_frames_expanded: expected 2 entries")  # type: ignore[arg-type]
    assert server.task(orchestrator)["status"] == "Failed"
    for child in children:
        row = server.task(child.id)
        assert row["status"] == "Failed" and row["error_message"].startswith(
            "Cascaded failed from related task"
        )
    errors = server.client_errors()
    assert errors == ([] if contract == "2026-04" else [("create-task", 400)])  # 2026-01: auto's one probe
