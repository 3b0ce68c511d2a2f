"""Durable finishing on a fleet (PostgreSQL queue, S3 outputs): while the bucket refuses writes the
finished output stays on disk, and the task completes without running its handler again, either
in the same worker once storage is back or after a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.queue.postgres import PostgresQueue
from tests.helpers import wait_for
from tests.integration.queue.conftest import WorkerProcess, spawn_worker
from tests.postgres_support import TEST_DSN, fresh_schema
from tests.s3_support import S3Server, s3_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Site:
    """A fresh schema and an S3 server; worker processes named fleet-box-1."""

    root: Path
    schema: str
    s3: S3Server
    bucket: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
        env.update(
            PYTHONPATH=str(REPO),
            WORKER_ID="fleet-box-1",
            HW_QUEUE="postgres",
            DATABASE_URL=TEST_DSN,
            HW_PG_SCHEMA=self.schema,
            HW_WORK_DIR=str(self.root / "work"),
            HW_HANDLER_PLUGINS=json.dumps(["tests.fixtures.handlers:all_handlers"]),
            HW_STARTUP_CHECK="false",
            HW_FINISH_BUDGET_S="0.5",
            HW_LEASE_S="300",  # the restart path below must not depend on a lease running out
            HW_POLL_MIN_S="0.05",
            HW_POLL_MAX_S="0.2",
            HW_LOG_FORMAT="json",
            **self.s3.env(self.bucket, prefix="fleet/"),
        )
        return env

    def worker(self, *args: str, index: int = 0) -> WorkerProcess:
        return spawn_worker(self.root, index, self.env(), args)

    def queue(self) -> PostgresQueue:
        queue = PostgresQueue(TEST_DSN, schema=self.schema)
        queue.open()
        return queue


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with fresh_schema("hw_finish") as schema, s3_server() as s3:
        site = Site(tmp_path, schema, s3, f"hw-later-{tmp_path.name[-8:].lower().replace('_', '-')}")
        migrated = subprocess.run(
            [sys.executable, "-m", "headless_wan", "migrate"], env=site.env(), capture_output=True, text=True
        )
        assert migrated.returncode == 0, migrated.stderr
        s3.client().create_bucket(Bucket=site.bucket)  # the worker's start-up check wants it
        yield site


def runs(journal: Path, task_id: str) -> int:
    lines = journal.read_text().splitlines() if journal.exists() else []
    return sum(line.split()[0] == task_id for line in lines)


def start_then_lose_the_bucket(site: Site, index: int = 0) -> WorkerProcess:
    """A worker that passed its start-up checks, then an output store that refuses every upload."""
    worker = site.worker(index=index)
    wait_for(lambda: '"worker_started"' in worker.output(), what=f"the worker to start\n{worker.output()}")
    site.s3.client().delete_bucket(Bucket=site.bucket)
    return worker


def submit(site: Site, journal: Path) -> str:
    queue = site.queue()
    try:
        return queue.enqueue(NewTask("echo", {"message": "kept", "journal": str(journal)}))
    finally:
        queue.close()


def status(site: Site, task_id: str) -> TaskStatus:
    queue = site.queue()
    try:
        task = queue.get(task_id)
    finally:
        queue.close()
    assert task is not None
    return task.status


def test_the_same_worker_completes_once_the_bucket_takes_writes(site: Site) -> None:
    journal = site.root / "journal.txt"
    worker = start_then_lose_the_bucket(site)
    task_id = submit(site, journal)
    try:
        wait_for(lambda: '"finish_deferred"' in worker.output(), what=f"a deferred finish\n{worker.output()}")
        assert status(site, task_id) is TaskStatus.IN_PROGRESS
        site.s3.client().create_bucket(Bucket=site.bucket)
        wait_for(lambda: status(site, task_id) is TaskStatus.COMPLETE, what=f"completion\n{worker.output()}")
        assert site.s3.keys(site.bucket) == [f"fleet/tasks/{task_id}/{task_id}.txt"]
        assert runs(journal, task_id) == 1
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.output()
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()


def test_a_restarted_worker_finishes_from_the_manifest_without_rerunning(site: Site) -> None:
    journal = site.root / "journal.txt"
    first = start_then_lose_the_bucket(site)
    task_id = submit(site, journal)
    try:
        wait_for(lambda: '"finish_deferred"' in first.output(), what=f"a deferred finish\n{first.output()}")
    finally:
        first.signal(signal.SIGKILL)  # the box goes down with the finished output on its disk
        first.wait()
    site.s3.client().create_bucket(Bucket=site.bucket)
    second = site.worker("--drain", index=1)  # same WORKER_ID: recover() puts the task back
    assert second.wait() == 0, second.output()
    assert status(site, task_id) is TaskStatus.COMPLETE
    assert runs(journal, task_id) == 1, "the handler ran again"
    assert '"task_from_manifest"' in second.output()
