"""Real worker processes (`python -m headless_wan worker --queue reigh`) against the Reigh test server."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from headless_wan.domain.tasks import TaskResult
from tests.helpers import wait_for
from tests.integration.reigh.conftest import Site, assert_no_client_errors, client, creates

pytestmark = pytest.mark.slow

WORKER = "gpu-20260101_000000-test0001"


def _assert_no_secrets(site: Site, *extra: str) -> None:
    shown = site.all_output() + "".join(extra)
    assert site.server.service_key not in shown
    leaked = [token for token in site.server.signed if token in shown]
    assert not leaked, "a signed upload token appeared in the logs"


def test_lifecycle_complete_fail_upload_and_model(site: Site) -> None:
    server = site.server
    echo = server.submit("echo", {"message": "hi", "model": "wan_2_2_vace_14b"})
    reject = server.submit("reject", {})
    video = server.submit("fake_video", {"size_bytes": 40_000})
    worker = site.start_worker("--drain", HW_REIGH_BASE64_MAX_MB="0.01")
    assert worker.wait() == 0, worker.output()

    endpoints = server.endpoints()
    assert endpoints[0] == "heartbeat" and endpoints.index("heartbeat") < endpoints.index("claim-next-task")
    assert all(body == {"worker_id": WORKER, "run_type": "gpu"} for body in server.calls("claim-next-task"))
    assert server.calls("update-worker-model") == [{"worker_id": WORKER, "current_model": "wan_2_2_vace_14b"}]
    assert {"task_id": echo, "status": "In Progress", "reset_generation_started_at": True} in server.calls(
        "update-task-status"
    )

    row = server.task(echo)
    assert row["status"] == "Complete" and server.generations(echo) == 1
    assert server.object(f"{server.user_id}/tasks/{echo}/{echo}.txt") == b"hi"

    row = server.task(reject)
    assert row["status"] == "Failed" and "could not be decoded" in row["error_message"]
    assert row["output_location"] == row["error_message"] and server.generations(reject) == 0

    body = next(c for c in server.calls("complete_task") if c["task_id"] == video)
    assert body["storage_path"] == f"{server.user_id}/tasks/{video}/{video}.mp4"
    assert body["thumbnail_storage_path"].startswith(f"{server.user_id}/tasks/{video}/thumbnails/")
    assert len(server.object(body["storage_path"]) or b"") == 40_000
    assert server.task(video)["status"] == "Complete" and server.generations(video) == 1

    assert server.calls("heartbeat")[-1]["status_param"] == "inactive"
    assert server.store.worker(WORKER)["status"] == "inactive"  # type: ignore[index]
    assert sorted(c["task_id"] for c in server.calls("complete_task")) == sorted([echo, video])
    assert_no_client_errors(server)
    _assert_no_secrets(site)


def test_heartbeats_during_a_long_task_then_user_cancel(site: Site) -> None:
    server, started = site.server, site.root / "started"
    task_id = server.submit("wait", {"started_file": str(started), "max_s": 60})
    worker = site.start_worker()
    wait_for(started.exists, what="task start")
    wait_for(
        lambda: sum(b["current_task_id_param"] == task_id for b in server.calls("heartbeat")) >= 3,
        what="heartbeats naming the running task",
    )
    polls = [b for b in server.calls("get-task-output") if b == {"task_id": task_id}]
    assert polls, "the running task's status is polled"
    writes_before = len(server.calls("update-task-status"))
    server.cancel(task_id)
    wait_for(lambda: '"task_drop"' in worker.output(), what="the worker to abandon the task")
    follow_up = server.submit("echo", {"message": "next"})
    wait_for(lambda: server.task(follow_up)["status"] == "Complete", what="the next task")
    assert server.task(task_id)["status"] == "Cancelled" and server.generations(task_id) == 0
    assert all(c["task_id"] != task_id for c in server.calls("complete_task"))
    assert all(c["task_id"] != task_id for c in server.calls("update-task-status")[writes_before:])
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    _assert_no_secrets(site)


def test_sigterm_releases_the_running_task(site: Site) -> None:
    server, started = site.server, site.root / "started"
    task_id = server.submit("wait", {"started_file": str(started)})
    worker = site.start_worker(HW_SHUTDOWN_GRACE_S="0.2", HW_CANCEL_TIMEOUT_S="5")
    wait_for(started.exists, what="task start")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    row = server.task(task_id)
    assert row["status"] == "Queued" and row["attempts"] == 1 and row["worker_id"] is None
    assert "worker shut down" in row["error_message"]
    release = server.calls("update-task-status")[-1]
    assert release["status"] == "Queued" and release["clear_worker"] is True and release["attempts"] == 1


def test_a_crashed_worker_recovers_its_task_on_restart(site: Site) -> None:
    server, started, finish = site.server, site.root / "started", site.root / "finish"
    task_id = server.submit("wait", {"started_file": str(started), "until_file": str(finish)})
    doomed = site.start_worker()
    wait_for(started.exists, what="task start")
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    assert server.task(task_id)["status"] == "In Progress"  # nobody released it
    finish.touch()
    restarted = site.start_worker("--drain")  # same WORKER_ID
    assert restarted.wait() == 0, restarted.output()
    row = server.task(task_id)
    assert row["status"] == "Complete" and row["attempts"] == 1 and server.generations(task_id) == 1
    assert "restarted while running it" in (row["error_message"] or "")


def test_outages_during_claim_upload_and_completion(site: Site) -> None:
    server = site.server
    task_id = server.submit("fake_video", {"size_bytes": 30_000})
    server.faults.fail("claim-next-task", times=2)
    server.faults.fail("upload", times=2)
    server.faults.drop("complete_task")  # completed, but the worker never hears it
    worker = site.start_worker("--drain", HW_REIGH_BASE64_MAX_MB="0.01")
    assert worker.wait() == 0, worker.output()
    assert server.faults.pending("complete_task") == 0 and server.faults.pending("upload") == 0
    row = server.task(task_id)
    assert row["status"] == "Complete" and server.generations(task_id) == 1
    assert len(server.calls("complete_task")) == 1  # resolved by a status check, not a resend
    _assert_no_secrets(site)


def test_orchestrator_children_and_lookups_over_http(site: Site, tmp_path: Path) -> None:
    server = site.server
    parent = server.submit("spawn_videos", {"count": 2})
    worker = site.start_worker("--drain")
    assert worker.wait() == 0, worker.output()
    created = creates(server)
    assert [c["params"] for c in created] == [
        {"slot": 0, "size_bytes": 100, "orchestrator_task_id_ref": parent},
        {"slot": 1, "size_bytes": 100, "orchestrator_task_id_ref": parent},
    ]
    assert all(c["project_id"] == server.project_id and c["task_type"] == "fake_video" for c in created)
    assert "dependant_on" not in created[0] and created[1]["dependant_on"] == [created[0]["task_id"]]
    assert [server.task(c["task_id"])["status"] for c in created] == ["Complete", "Complete"]
    row = server.task(parent)  # Reigh completes only travel orchestrators by itself
    waiting_message = None if server.contract == "2026-04" else "Enqueued 2 child task(s)"
    assert row["status"] == "In Progress" and row["output_location"] == waiting_message

    # A stitch-like task reads its predecessor and its run's segments through the worker's lookups.
    segments = [
        server.submit("travel_segment", {"orchestrator_run_id": "run-7", "segment_index": i}) for i in (0, 1)
    ]
    helper = client(server, worker_id="helper")
    for n in range(2):
        out = tmp_path / f"seg{n}.mp4"
        out.write_bytes(b"segment %d" % n)
        helper.complete(helper.claim("helper"), TaskResult(output=out))  # type: ignore[arg-type]
    stitch = server.submit("lookup", {"orchestrator_run_id": "run-7"}, dependant_on=[segments[1]])
    worker = site.start_worker("--drain")
    assert worker.wait() == 0, worker.output()
    row = server.task(stitch)
    assert row["status"] == "Complete", row
    found = json.loads(server.object(f"{server.user_id}/tasks/{stitch}/lookup.json") or b"{}")
    assert [p["id"] for p in found["predecessors"]] == [segments[1]]
    assert found["predecessors"][0]["output"] == server.task(segments[1])["output_location"]
    assert [s["index"] for s in found["segments"]] == [0, 1]
    assert_no_client_errors(server)


def test_a_worker_fatal_error_sends_crashed_and_gives_back_what_it_held(site: Site) -> None:
    server = site.server
    task_id = server.submit("fatal", {})
    worker = site.start_worker("--drain")
    assert worker.wait() == 70, worker.output()
    row = server.task(task_id)
    assert row["status"] == "Queued" and row["attempts"] == 1 and row["worker_id"] is None
    last = server.calls("heartbeat")[-1]["status_param"]
    assert last == ("crashed" if server.contract == "2026-04" else "error")
    assert server.store.worker(WORKER)["status"] == last  # type: ignore[index]


def test_a_lost_create_answer_makes_no_second_child(site: Site) -> None:
    server = site.server
    parent = server.submit("spawn_videos", {"count": 2})
    server.faults.drop("create-task", times=2)  # both children are created; neither answer arrives
    worker = site.start_worker("--drain")
    assert worker.wait() == 0, worker.output()
    children = [t for t in server.store.tasks() if t["params"].get("orchestrator_task_id_ref") == parent]
    assert len(children) == 2 and all(c["status"] == "Complete" for c in children)
    assert all(server.generations(c["id"]) == 1 for c in children)
    assert server.task(parent)["status"] == "In Progress"  # waiting; only travel is completed by Reigh
    assert_no_client_errors(server)
