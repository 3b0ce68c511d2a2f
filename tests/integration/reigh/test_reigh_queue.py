"""ReighQueue against the Reigh test server over real loopback HTTP: wire fields, uploads, the
server's quirks (B1-B9 of the contract) and outages."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskResult, TaskStatus
from headless_wan.domain.workers import LogEntry, WorkerBeat, WorkerStatus
from headless_wan.errors import ClaimLost, ConfigError, QueueUnavailable, TransientError
from headless_wan.queue.reigh import ReighQueue
from headless_wan.queue.reigh.contract import Contract
from headless_wan.queue.semantics import utc_now
from tests.integration.reigh.conftest import client
from tests.reigh_server import ReighServer

THUMB = b"\xff\xd8\xff\xe0jpeg\xff\xd9"


def _files(tmp_path: Path, size: int, name: str = "out.mp4") -> TaskResult:
    out, thumb = tmp_path / name, tmp_path / "thumb.jpg"
    out.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    thumb.write_bytes(THUMB)
    return TaskResult(output=out, thumbnail=thumb)


def test_empty_queue_answers_204_after_the_worker_row_exists(server: ReighServer, queue: ReighQueue) -> None:
    assert queue.claim("w1") is None
    assert server.endpoints() == ["heartbeat", "claim-next-task"]  # B8: the row first
    beat = server.calls("heartbeat")[0]
    assert set(beat) == {
        "worker_id_param",
        "vram_total_mb_param",
        "vram_used_mb_param",
        "logs_param",
        "current_task_id_param",
        "status_param",
    }
    assert beat["status_param"] == "active" and beat["current_task_id_param"] is None
    assert server.calls("claim-next-task") == [{"worker_id": "w1", "run_type": "gpu"}]
    assert server.store.worker("w1")["status"] == "active"  # type: ignore[index]
    assert queue.claim("w1") is None
    assert server.endpoints().count("heartbeat") == 1  # registered once


def test_heartbeat_ships_vram_and_at_most_100_logs(server: ReighServer, queue: ReighQueue) -> None:
    logs = tuple(LogEntry(utc_now(), "WARN" if i % 2 else "INFO", f"line {i}", None) for i in range(130))
    queue.worker_alive(WorkerBeat("w1", WorkerStatus.ACTIVE, "t-1", 24000, 1234, logs))
    body = server.calls("heartbeat")[0]
    assert (body["vram_total_mb_param"], body["vram_used_mb_param"]) == (24000, 1234)
    assert len(body["logs_param"]) == 100 and body["logs_param"][-1]["message"] == "line 129"
    assert {e["level"] for e in body["logs_param"]} == {"INFO", "WARNING"}
    assert all(e["task_id"] == "t-1" for e in body["logs_param"])
    queue.set_model("w1", "wan_2_2_i2v_lightning_baseline_2_2_2")
    assert server.calls("update-worker-model") == [
        {"worker_id": "w1", "current_model": "wan_2_2_i2v_lightning_baseline_2_2_2"}
    ]


def test_small_output_completes_inline_with_its_thumbnail(
    server: ReighServer, queue: ReighQueue, tmp_path: Path
) -> None:
    task_id = server.submit("fake_video", {"prompt": "a cat"})
    claim = queue.claim("w1")
    assert claim is not None and claim.id == task_id and claim.task.params == {"prompt": "a cat"}
    queue.mark_started(claim)
    assert server.calls("update-task-status")[-1] == {
        "task_id": task_id,
        "status": "In Progress",
        "reset_generation_started_at": True,
    }
    done = queue.complete(claim, _files(tmp_path, 5000))
    body = server.calls("complete_task")[0]
    assert set(body) == {"task_id", "file_data", "filename", "first_frame_data", "first_frame_filename"}
    assert body["filename"] == "out.mp4" and body["first_frame_filename"] == f"thumb_{task_id[:8]}.jpg"
    assert base64.b64decode(body["first_frame_data"]) == THUMB
    path = f"{server.user_id}/tasks/{task_id}/out.mp4"
    assert server.object(path) == (tmp_path / "out.mp4").read_bytes()
    assert server.object(f"{server.user_id}/tasks/{task_id}/thumbnails/thumb_{task_id[:8]}.jpg") == THUMB
    row = server.task(task_id)
    assert row["status"] == "Complete" and row["output_location"].endswith(path)
    assert done.status is TaskStatus.COMPLETE and done.output_location == row["output_location"]
    assert server.generations(task_id) == 1


def test_large_output_goes_by_signed_put_streamed_from_disk(server: ReighServer, tmp_path: Path) -> None:
    queue = client(server, base64_max_bytes=64 * 1024)
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    result = _files(tmp_path, 300_000, name="Ünïcode clip (1).mp4")
    queue.complete(claim, result)  # type: ignore[arg-type]
    grant = server.calls("generate-upload-url")[0]
    assert grant == {  # the name is sanitised
        "task_id": task_id,
        "filename": "Unicode_clip_1_.mp4",
        "content_type": "video/mp4",
        "generate_thumbnail_url": True,
    }
    body = server.calls("complete_task")[0]
    assert set(body) == {"task_id", "storage_path", "thumbnail_storage_path"}
    assert body["storage_path"] == f"{server.user_id}/tasks/{task_id}/{grant['filename']}"
    assert body["thumbnail_storage_path"].startswith(f"{server.user_id}/tasks/{task_id}/thumbnails/thumb_")
    assert server.object(body["storage_path"]) == (tmp_path / result.output.name).read_bytes()  # type: ignore[union-attr]
    assert server.object(body["thumbnail_storage_path"]) == THUMB
    puts = [r for r in server.requests if r.endpoint == "upload"]
    assert [p.headers["Content-Type"] for p in puts] == ["video/mp4", "image/jpeg"]
    assert server.generations(task_id) == 1 and server.task(task_id)["status"] == "Complete"


def test_a_double_claimed_task_is_dropped_by_the_second_worker(server: ReighServer) -> None:
    task_id = server.submit("echo", {"message": "hi"})
    first, second = client(server, worker_id="w1"), client(server, worker_id="w2")
    assert first.claim("w1").id == task_id  # type: ignore[union-attr]
    server.double_claim_next()
    assert second.claim("w2") is None  # B1: handed the task, but the row says w1
    assert server.task(task_id)["worker_id"] == "w1"
    assert server.calls("update-task-status") == []  # dropped silently: no fail, no release


def test_fail_sends_error_details_and_output_location(server: ReighServer, queue: ReighQueue) -> None:
    task_id = server.submit("reject", {})
    queue.fail(queue.claim("w1"), "image_urls[1]: the image could not be decoded")  # type: ignore[arg-type]
    assert server.calls("update-task-status")[-1] == {
        "task_id": task_id,
        "status": "Failed",
        "error_details": "image_urls[1]: the image could not be decoded",
        "output_location": "image_urls[1]: the image could not be decoded",
    }
    row = server.task(task_id)
    assert row["status"] == "Failed" and row["error_message"].startswith("image_urls[1]")


def test_a_cancelled_task_is_never_touched_again(
    server: ReighServer, queue: ReighQueue, tmp_path: Path
) -> None:
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    assert queue.heartbeat(claim) is TaskStatus.IN_PROGRESS  # type: ignore[arg-type]
    server.cancel(task_id)
    assert queue.heartbeat(claim) is None  # type: ignore[arg-type]
    assert queue.get(task_id).status is TaskStatus.CANCELLED  # type: ignore[union-attr]
    writes = len(server.calls("update-task-status"))
    for action in (
        lambda: queue.complete(claim, _files(tmp_path, 100)),  # type: ignore[arg-type]
        lambda: queue.fail(claim, "x"),  # type: ignore[arg-type]
        lambda: queue.release(claim, "x"),  # type: ignore[arg-type]
        lambda: queue.mark_started(claim),  # type: ignore[arg-type]
    ):
        with pytest.raises(ClaimLost):
            action()
    assert len(server.calls("update-task-status")) == writes and server.calls("complete_task") == []
    assert server.generations(task_id) == 0 and server.task(task_id)["status"] == "Cancelled"


def test_release_writes_attempts_and_fails_at_the_cap(server: ReighServer, queue: ReighQueue) -> None:
    task_id = server.submit("echo", {"message": "hi"})
    for attempt in (1, 2):
        queue.release(queue.claim("w1"), "worker shut down")  # type: ignore[arg-type]
        body = server.calls("update-task-status")[-1]
        assert body["status"] == "Queued" and body["clear_worker"] is True and body["attempts"] == attempt
        row = server.task(task_id)
        assert row["status"] == "Queued" and row["worker_id"] is None and row["attempts"] == attempt
    queue.release(queue.claim("w1"), "worker shut down")  # type: ignore[arg-type]
    row = server.task(task_id)
    assert row["status"] == "Failed" and row["attempts"] == 3 and "Gave up after 3" in row["error_message"]


def test_children_are_created_with_client_ids_and_exact_fields(
    server: ReighServer, queue: ReighQueue, contract: str
) -> None:
    parent_id = server.submit("spawn", {"count": 2})
    parent = queue.claim("w1")
    first = NewTask("echo", {"message": "a"}, project_id=server.project_id, parent_id=parent_id)
    second = NewTask(
        "echo", {"message": "b"}, project_id=server.project_id, dependant_on=(first.id,), parent_id=parent_id
    )
    server.faults.drop("create-task")  # created, answer lost: the retry meets a duplicate
    assert [queue.enqueue(first), queue.enqueue(second)] == [first.id, second.id]
    bodies = server.calls("create-task")
    if contract == "2026-04":
        assert bodies[-1] == {
            "family": "echo",
            "project_id": server.project_id,
            "input": {
                "message": "b",
                "orchestrator_task_id_ref": parent_id,
                "task_id": second.id,
                "dependant_on": [first.id],
            },
            "idempotency_key": f"headless_wan:create:{second.id}",
        }
        assert len(bodies) == 3 and "dependant_on" not in bodies[0]["input"]  # one retry, no refusal
    else:  # auto: the 2026-04 body is refused once, then every create is in the 2026-01 form
        assert "family" in bodies[0] and all("family" not in b for b in bodies[-2:])
        assert bodies[-1] == {
            "task_id": second.id,
            "task_type": "echo",
            "project_id": server.project_id,
            "params": {"message": "b", "orchestrator_task_id_ref": parent_id},
            "dependant_on": [first.id],
        }
        assert "dependant_on" not in bodies[-2]
    assert queue.contract is Contract(contract)
    children = queue.children(parent_id)
    assert [c.id for c in children] == [first.id, second.id]  # exactly one each
    assert children[1].params == {"message": "b", "orchestrator_task_id_ref": parent_id}
    assert server.task(second.id)["dependant_on"] == [first.id]
    writes = len(server.calls("update-task-status"))
    queue.mark_waiting(parent, "Enqueued 2 child task(s)")  # type: ignore[arg-type]
    assert server.task(parent_id)["status"] == "In Progress"
    if contract == "2026-04":  # In Progress → In Progress is refused there: nothing is written
        assert len(server.calls("update-task-status")) == writes
        assert server.task(parent_id)["output_location"] is None
    else:
        assert server.task(parent_id)["output_location"] == "Enqueued 2 child task(s)"
    with pytest.raises(Exception, match="project_id"):
        queue.enqueue(NewTask("echo", {}))


def test_predecessor_and_completed_segment_lookups(
    server: ReighServer, queue: ReighQueue, tmp_path: Path
) -> None:
    seg = [
        server.submit("travel_segment", {"orchestrator_run_id": "run-1", "segment_index": i}) for i in (1, 0)
    ]
    server.submit("travel_segment", {"orchestrator_run_id": "run-1", "segment_index": "2"})
    stitch = server.submit("lookup", {}, dependant_on=seg)
    before = queue.predecessor_outputs(stitch)
    assert not before.all_complete and {p.status for p in before.predecessors} == {"Queued"}
    for n in range(3):
        queue.complete(queue.claim("w1"), _files(tmp_path, 100, name=f"s{n}.mp4"))  # type: ignore[arg-type]
    after = queue.predecessor_outputs(stitch)
    assert after.all_complete and all(p.output_location for p in after.predecessors)
    rows = queue.completed_segments("run-1")
    assert [r.segment_index for r in rows] == [0, 1]
    assert rows[0].output_location == server.task(seg[1])["output_location"]
    assert queue.get(seg[0]).output_location == server.task(seg[0])["output_location"]  # type: ignore[union-attr]


def test_travel_orchestrator_is_completed_by_the_server(
    server: ReighServer, queue: ReighQueue, tmp_path: Path
) -> None:
    orch = server.submit("travel_orchestrator", {"orchestrator_details": {"run_id": "r9"}})
    claim = queue.claim("w1")
    details = {"run_id": "r9", "num_new_segments_to_generate": 2, "orchestrator_task_id": orch}
    for i in range(2):
        queue.enqueue(
            NewTask(
                "travel_segment",
                {"orchestrator_details": details, "orchestrator_run_id": "r9", "segment_index": i},
                project_id=server.project_id,
                parent_id=orch,
            )
        )
    with server.store.tx() as db:  # the app's orchestrator row carries the expected count
        db.execute(
            "UPDATE tasks SET params=? WHERE id=?",
            ('{"orchestrator_details": {"run_id": "r9", "num_new_segments_to_generate": 2}}', orch),
        )
    queue.mark_waiting(claim, "Successfully enqueued 2 new segment tasks for run r9")  # type: ignore[arg-type]
    for n in range(2):
        queue.complete(queue.claim("w1"), _files(tmp_path, 100, name=f"s{n}.mp4"))  # type: ignore[arg-type]
    assert server.task(orch)["status"] == "Complete"
    assert queue.recover("w1") == []


def test_recover_releases_held_tasks_but_not_waiting_parents(server: ReighServer, queue: ReighQueue) -> None:
    mine = server.submit("echo", {"message": "x"})
    parent = server.submit("spawn", {})
    queue.claim("me")
    waiting = queue.claim("me")
    queue.enqueue(NewTask("echo", {"message": "c"}, project_id=server.project_id, parent_id=parent))
    queue.mark_waiting(waiting, "waiting")  # type: ignore[arg-type]
    fresh = client(server, worker_id="me")  # a restarted process
    assert fresh.recover("me") == [mine]
    row = server.task(mine)
    assert row["status"] == "Queued" and row["attempts"] == 1 and "me restarted" in row["error_message"]
    assert server.task(parent)["status"] == "In Progress"


def test_pat_mode_is_best_effort(server: ReighServer, tmp_path: Path) -> None:
    queue = client(server, pat=True)
    task_id = server.submit("echo", {"message": "hi"})
    queue.worker_alive(WorkerBeat("w1", WorkerStatus.ACTIVE))
    queue.set_model("w1", "m")
    claim = queue.claim("w1")
    assert claim is not None and claim.id == task_id
    assert server.endpoints() == [
        "claim-next-task",
        "get-task-output",
    ]  # no heartbeat, model call or PostgREST
    assert server.calls("claim-next-task") == [{"run_type": "gpu"}]
    queue.complete(claim, _files(tmp_path, 100))
    assert server.task(task_id)["status"] == "Complete" and server.generations(task_id) == 1
    with pytest.raises(ConfigError, match="service-role key"):
        queue.list_tasks()
    with pytest.raises(ConfigError):
        queue.cancel(task_id)


def test_bad_credentials_are_a_config_error_without_the_secret(server: ReighServer) -> None:
    queue = client(server)
    real, server.service_key = server.service_key, "the-servers-real-key"  # the client's key is now wrong
    with pytest.raises(ConfigError) as caught:
        queue.claim("w1")
    assert real not in str(caught.value) and "the-servers-real-key" not in str(caught.value)
    assert "401" in str(caught.value) or "403" in str(caught.value)


# --- outages -------------------------------------------------------------------------------------


def test_claim_outage_then_recovery(server: ReighServer, queue: ReighQueue) -> None:
    task_id = server.submit("echo", {"message": "hi"})
    server.faults.fail("claim-next-task", times=1)
    with pytest.raises(QueueUnavailable):
        queue.claim("w1")
    assert queue.claim("w1").id == task_id  # type: ignore[union-attr]


def test_a_claim_whose_answer_was_lost_is_adopted(server: ReighServer, queue: ReighQueue) -> None:
    task_id = server.submit("echo", {"message": "hi"})
    other = server.submit("echo", {"message": "later"})
    server.faults.drop("claim-next-task")
    with pytest.raises(QueueUnavailable):
        queue.claim("w1")
    assert server.task(task_id)["status"] == "In Progress"  # the server did claim it
    assert queue.claim("w1").id == task_id  # type: ignore[union-attr]
    assert server.task(other)["status"] == "Queued"


@pytest.mark.parametrize("fault", ["drop", "fail", "hang"])
def test_completion_outage_completes_exactly_once(server: ReighServer, tmp_path: Path, fault: str) -> None:
    queue = client(server, timeouts={"complete_task": 0.5})
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    if fault == "drop":
        server.faults.drop("complete_task")  # applied; the answer is lost
    elif fault == "fail":
        server.faults.fail("complete_task", times=2)  # not applied; retried after a status check
    else:
        server.faults.hang("complete_task", seconds=1.5)  # applied after the client gave up
    done = queue.complete(claim, _files(tmp_path, 1000))  # type: ignore[arg-type]
    assert done.status is TaskStatus.COMPLETE
    if fault == "hang":
        from tests.helpers import wait_for

        wait_for(lambda: server.generations(task_id) >= 1, what="the hung completion to land")
    assert server.generations(task_id) == 1
    assert server.task(task_id)["status"] == "Complete"


@pytest.mark.parametrize("fault", ["fail", "drop"])
def test_upload_outage_retries_without_duplicates(server: ReighServer, tmp_path: Path, fault: str) -> None:
    queue = client(server, base64_max_bytes=1024)
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    getattr(server.faults, fault)("upload", **({"times": 2} if fault == "fail" else {}))
    queue.complete(claim, _files(tmp_path, 50_000))  # type: ignore[arg-type]
    stored = server.calls("complete_task")[0]["storage_path"]
    assert server.object(stored) == (tmp_path / "out.mp4").read_bytes()
    assert server.generations(task_id) == 1 and server.task(task_id)["status"] == "Complete"


def test_upload_failure_past_retries_uses_a_fresh_name_next_time(server: ReighServer, tmp_path: Path) -> None:
    queue = client(server, base64_max_bytes=1024)
    task_id = server.submit("fake_video", {})
    claim = queue.claim("w1")
    server.faults.drop("upload", times=3)  # the first upload lands, every answer is lost
    with pytest.raises(TransientError):  # UploadError is transient: the worker retries complete()
        queue.complete(claim, _files(tmp_path, 50_000))  # type: ignore[arg-type]
    queue.complete(claim, _files(tmp_path, 50_000))  # type: ignore[arg-type]
    names = [c["filename"] for c in server.calls("generate-upload-url")]
    assert names[0] == "out.mp4" and names[1] != "out.mp4" and names[1].endswith(".mp4")
    assert server.generations(task_id) == 1


def test_secrets_stay_out_of_logs_errors_and_reprs(
    server: ReighServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    queue = client(server, base64_max_bytes=1024, retry_attempts=2)
    server.submit("fake_video", {})
    claim = queue.claim("w1")
    server.faults.fail("upload", times=10, status=503)
    with pytest.raises(Exception) as caught:
        queue.complete(claim, _files(tmp_path, 50_000))  # type: ignore[arg-type]
    tokens = list(server.signed)
    shown = "\n".join([caplog.text, str(caught.value), repr(caught.value), repr(queue)])
    assert tokens and server.service_key not in shown
    assert not [t for t in tokens if t in shown]
