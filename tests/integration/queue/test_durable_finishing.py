"""Durable finishing with real worker processes on the Reigh test server (no leases: a result that
cannot be recorded would otherwise leave the task In Progress, and a restart would regenerate it)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.integration.reigh.conftest import Site
from tests.reigh_server import ReighServer

pytestmark = pytest.mark.slow


@pytest.fixture
def reigh(tmp_path: Path) -> Iterator[Site]:
    with ReighServer(tmp_path / "reigh") as server:
        site = Site(tmp_path, server)
        try:
            yield site
        finally:
            for worker in site.procs:
                if worker.proc.poll() is None:
                    worker.proc.kill()
                worker.proc.wait(timeout=30)


def runs(journal: Path, task_id: str) -> int:
    lines = journal.read_text().splitlines() if journal.exists() else []
    return sum(line.split()[0] == task_id for line in lines)


def test_a_completion_refused_past_the_budget_is_finished_after_a_restart_without_rerunning(
    reigh: Site,
) -> None:
    server, journal = reigh.server, reigh.root / "journal.txt"
    task_id = server.submit("echo", {"message": "kept", "journal": str(journal)})
    server.faults.fail("complete_task", times=100_000)
    first = reigh.start_worker(HW_FINISH_BUDGET_S="0.5")
    wait_for(lambda: '"finish_deferred"' in first.output(), what="the completion to run out of budget")
    assert server.task(task_id)["status"] == "In Progress" and server.generations(task_id) == 0
    first.signal(signal.SIGTERM)
    assert first.wait() == 0, first.output()
    assert list((reigh.root / "work").rglob("manifest.json")), "the outputs were not kept"

    server.faults.clear()
    second = reigh.start_worker("--drain")  # same WORKER_ID: recover() puts the task back
    assert second.wait() == 0, second.output()
    row = server.task(task_id)
    assert row["status"] == "Complete" and server.generations(task_id) == 1
    assert server.object(f"{server.user_id}/tasks/{task_id}/{task_id}.txt") == b"kept"
    assert runs(journal, task_id) == 1, "the handler ran again"
    assert '"task_from_manifest"' in second.output()


def test_a_deferred_completion_lands_once_the_queue_answers_again(reigh: Site) -> None:
    server, journal = reigh.server, reigh.root / "journal.txt"
    task_id = server.submit("echo", {"message": "later", "journal": str(journal)})
    server.faults.fail("complete_task", times=100_000)
    worker = reigh.start_worker(HW_FINISH_BUDGET_S="0.5")
    wait_for(lambda: '"finish_deferred"' in worker.output(), what="the completion to run out of budget")
    server.faults.clear()
    wait_for(lambda: server.task(task_id)["status"] == "Complete", what="the deferred completion")
    assert server.generations(task_id) == 1 and runs(journal, task_id) == 1
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
