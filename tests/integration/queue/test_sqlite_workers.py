"""Real worker processes on one SQLite file: races, crashes, signals and bad input."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from tests.helpers import wait_for
from tests.integration.queue.conftest import Site

pytestmark = pytest.mark.slow


def test_two_worker_processes_claim_each_task_exactly_once(site: Site) -> None:
    journal = site.root / "journal.txt"
    ids = [site.submit("echo", {"message": f"m{i}", "journal": str(journal)}) for i in range(60)]
    workers = [site.start_worker("--drain", WORKER_ID=f"racer-{n}") for n in range(2)]
    for worker in workers:
        assert worker.wait(120) == 0, worker.output()
    ran = Counter(line.split()[0] for line in journal.read_text().splitlines())
    assert set(ran) == set(ids)
    assert max(ran.values()) == 1, f"ran twice: {[t for t, n in ran.items() if n > 1]}"
    rows = [site.get(task_id) for task_id in ids]
    assert all(row.status is TaskStatus.COMPLETE and row.attempts == 0 for row in rows)
    assert {row.worker_id for row in rows} <= {"racer-0", "racer-1"}


def test_killed_workers_task_is_requeued_after_its_lease_and_completed_by_another(site: Site) -> None:
    started, release = site.root / "started", site.root / "release"
    task_id = site.submit("wait", {"started_file": str(started), "until_file": str(release)})
    lease = {"HW_LEASE_S": "1.0", "HW_HEARTBEAT_INTERVAL_S": "0.2"}
    doomed = site.start_worker(WORKER_ID="doomed", **lease)
    wait_for(started.exists, what="first worker to start the task")
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    assert site.get(task_id).status is TaskStatus.IN_PROGRESS  # nobody released it
    release.touch()
    rescuer = site.start_worker(WORKER_ID="rescuer", **lease)
    done = wait_for(
        lambda: (row := site.get(task_id)).status is TaskStatus.COMPLETE and row,
        timeout_s=60,
        what="completion",
    )
    assert done.worker_id == "rescuer" and done.attempts == 1
    assert "doomed stopped sending heartbeats" in (done.error_message or "")
    rescuer.signal(signal.SIGTERM)
    assert rescuer.wait() == 0, rescuer.output()


@pytest.mark.parametrize("ignore_cancel", [False, True], ids=["cooperative", "stuck-in-native-code"])
def test_sigterm_past_the_grace_period_releases_the_task(site: Site, ignore_cancel: bool) -> None:
    started = site.root / "started"
    task_id = site.submit("wait", {"started_file": str(started), "ignore_cancel": ignore_cancel})
    worker = site.start_worker(HW_SHUTDOWN_GRACE_S="0.2", HW_CANCEL_TIMEOUT_S="0.5")
    wait_for(started.exists, what="task start")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    row = site.get(task_id)
    assert row.status is TaskStatus.QUEUED and row.attempts == 1 and row.worker_id is None
    assert "worker shut down" in (row.error_message or "")


def test_sigterm_within_the_grace_period_lets_the_task_finish(site: Site) -> None:
    started, release = site.root / "started", site.root / "release"
    task_id = site.submit("wait", {"started_file": str(started), "until_file": str(release)})
    queued = site.submit("echo", {"message": "left for the next worker"})
    worker = site.start_worker(HW_SHUTDOWN_GRACE_S="60")
    wait_for(started.exists, what="task start")
    worker.signal(signal.SIGTERM)
    wait_for(lambda: "stop requested" in worker.output(), what="the worker to take the signal")
    release.touch()
    assert worker.wait() == 0, worker.output()
    assert site.get(task_id).status is TaskStatus.COMPLETE
    assert site.get(queued).status is TaskStatus.QUEUED


def test_malformed_and_unknown_tasks_fail_and_the_worker_serves_the_next(site: Site) -> None:
    bad_json = site.submit("echo", {"message": "placeholder"})
    with sqlite3.connect(site.db) as db:  # another tool wrote a broken row
        db.execute("UPDATE tasks SET params = '{\"message\": ' WHERE id = ?", (bad_json,))
    unknown = site.submit("upscale_4k", {"factor": 4})
    crashing = site.submit("boom", {})
    good = site.submit("echo", {"message": "fine"})
    result = site.cli("worker", "--drain")
    assert result.returncode == 0, result.stderr
    assert site.get(bad_json).status is TaskStatus.FAILED
    assert (site.get(bad_json).error_message or "").startswith(
        "Invalid echo task: task params are not valid JSON"
    )
    assert (site.get(unknown).error_message or "").startswith("Unknown task type 'upscale_4k'")
    assert site.get(crashing).error_message == "Internal error in the boom handler: RuntimeError: kaboom"
    assert site.get(good).status is TaskStatus.COMPLETE
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = [entry for entry in logs if entry.get("action") == "task_fail"]
    assert {entry["task_id"] for entry in failed} == {bad_json, unknown, crashing}
    assert all(entry["task_type"] for entry in failed)


def test_dependencies_gate_claims_across_processes(site: Site) -> None:
    q = site.queue()
    first = NewTask("echo", {"message": "first"})
    second = NewTask("echo", {"message": "second"}, dependant_on=(first.id,))
    q.enqueue(second)  # older, but blocked until `first` is Complete
    q.enqueue(first)
    q.close()
    assert site.cli("worker", "--drain").returncode == 0
    a, b = site.get(first.id), site.get(second.id)
    assert a.status is b.status is TaskStatus.COMPLETE
    assert a.generation_processed_at <= b.generation_started_at  # type: ignore[operator]


def test_restarted_worker_releases_what_it_held_before_the_crash(site: Site) -> None:
    started, release = site.root / "started", site.root / "release"
    task_id = site.submit("wait", {"started_file": str(started), "until_file": str(release)})
    first = site.start_worker(WORKER_ID="box-1", HW_LEASE_S="3600")  # a lease that would outlive the test
    wait_for(started.exists, what="task start")
    first.signal(signal.SIGKILL)
    first.wait()
    release.touch()
    result = site.cli("worker", "--drain", WORKER_ID="box-1", HW_LEASE_S="3600")
    assert result.returncode == 0, result.stderr
    row = site.get(task_id)
    assert row.status is TaskStatus.COMPLETE and row.attempts == 1
    assert "box-1 restarted while running it" in (row.error_message or "")
    with sqlite3.connect(site.db) as db:
        status, current = db.execute("SELECT status, current_task FROM workers WHERE id = 'box-1'").fetchone()
    assert (status, current) == ("inactive", None)
