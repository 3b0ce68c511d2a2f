"""Chaos: worker processes on one PostgreSQL queue and one S3 bucket, SIGKILLed and restarted at
random (seeded) while they work through a few hundred tasks. Nothing may be lost, stuck, run twice
at the same time or stored twice.

Every run of a task appends `start` and `end` lines (task, pid, claim token, wall-clock ns) to a
journal. A run ends at its `end` line, or, when its worker was killed first, at the moment the
test killed that pid. Runs of one task must not overlap in time.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.queue.postgres import PostgresQueue
from tests.helpers import wait_for
from tests.postgres_support import TEST_DSN, fresh_schema
from tests.s3_support import S3Server, s3_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
TASKS = 200
WORKERS = 4
KILLS = 10
SEED = 20260601
PREFIX = "chaos"


@dataclass
class Fleet:
    root: Path
    schema: str
    s3: S3Server
    bucket: str
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_of: dict[int, Path] = field(default_factory=dict)
    killed_at: dict[int, int] = field(default_factory=dict)  # pid → time_ns of the SIGKILL
    started: int = 0
    kills: int = 0

    @property
    def journal(self) -> Path:
        return self.root / "journal.txt"

    def env(self, worker_id: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
        env.update(
            PYTHONPATH=str(REPO),
            WORKER_ID=worker_id,
            HW_QUEUE="postgres",
            DATABASE_URL=TEST_DSN,
            HW_PG_SCHEMA=self.schema,
            HW_WORK_DIR=str(self.root / "work" / worker_id),
            HW_HANDLER_PLUGINS=json.dumps(["tests.fixtures.handlers:fleet_handlers"]),
            HW_STARTUP_CHECK="false",
            HW_TASK_TYPES=json.dumps(["journal"]),
            # A lease of 1.5 s renewed every 0.2 s: dead workers' tasks come back quickly, while a
            # live worker on this busy 2-core box keeps a wide margin before its lease could lapse.
            HW_LEASE_S="1.5",
            HW_HEARTBEAT_INTERVAL_S="0.2",
            HW_MAX_ATTEMPTS="20",
            HW_POLL_MIN_S="0.05",
            HW_POLL_MAX_S="1.0",
            HW_LOG_FORMAT="json",
            **self.s3.env(self.bucket, prefix=PREFIX),
        )
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "headless_wan", *args],
            env=self.env("cli"),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start_worker(self) -> int:
        worker_id = f"chaos-{self.started}"
        self.started += 1
        log_path = self.root / f"{worker_id}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "headless_wan", "worker"],
                env=self.env(worker_id),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[proc.pid] = proc
        self.log_of[proc.pid] = log_path
        return proc.pid

    def all_started(self) -> bool:
        """Every live worker has its signal handlers in place (it logs worker_started after that)."""
        return all('"worker_started"' in self.log_of[pid].read_text() for pid in self.procs)

    def kill(self, pid: int) -> None:
        """SIGKILL a worker. Its executor process (which runs the handler and writes the journal)
        dies with it; runs of either pid end at this moment."""
        executors = _children(pid)
        self.kills += 1
        self.killed_at[pid] = time.time_ns()
        self.procs[pid].send_signal(signal.SIGKILL)
        self.procs.pop(pid).wait(timeout=30)
        for child in executors:
            wait_for(lambda child=child: not _running(child), timeout_s=30, what=f"executor {child} to die")
            self.killed_at[child] = self.killed_at[pid]

    def records(self) -> list[list[str]]:
        if not self.journal.exists():
            return []
        return [line.split() for line in self.journal.read_text().splitlines() if line]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.root.glob("chaos-*.log"))
        )


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with fresh_schema("hw_chaos") as schema, s3_server() as s3:
        bucket = s3.new_bucket()
        fleet = Fleet(tmp_path, schema, s3, bucket)
        try:
            yield fleet
        finally:
            for proc in fleet.procs.values():
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=30)


def test_killed_and_restarted_workers_lose_nothing(fleet: Fleet) -> None:
    migrated = fleet.cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied 001_initial" in migrated.stdout
    queue = PostgresQueue(TEST_DSN, schema=fleet.schema)
    queue.open()
    ids = [
        queue.enqueue(
            NewTask("journal", {"message": f"m{n}", "journal": str(fleet.journal), "hold_s": 0.01 * (n % 5)})
        )
        for n in range(TASKS)
    ]
    for _ in range(WORKERS):
        fleet.start_worker()

    rng = random.Random(SEED)
    for point in sorted(rng.sample(range(10, TASKS - 20), KILLS)):
        wait_for(
            lambda point=point: sum(r[0] == "start" for r in fleet.records()) >= point,
            timeout_s=60,
            what=f"{point} task starts\n{fleet.logs()}",
        )
        fleet.kill(rng.choice(sorted(fleet.procs)))
        fleet.start_worker()

    def statuses() -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for task in queue.list_tasks(limit=TASKS + 10):
            counts[task.status.value] += 1
        return dict(counts)

    wait_for(lambda: statuses() == {"Complete": TASKS}, timeout_s=60, what=f"all Complete\n{fleet.logs()}")
    rows = {task_id: queue.get(task_id) for task_id in ids}
    queue.close()
    wait_for(fleet.all_started, timeout_s=30, what="the last restarted workers to finish starting")
    for proc in fleet.procs.values():
        proc.send_signal(signal.SIGTERM)
    for pid, proc in list(fleet.procs.items()):
        assert proc.wait(timeout=30) == 0, fleet.logs()
        fleet.procs.pop(pid)

    _assert_runs_never_overlapped(fleet, set(ids))
    _assert_one_object_per_task(fleet, rows)


def _assert_runs_never_overlapped(fleet: Fleet, ids: set[str]) -> None:
    runs: dict[tuple[str, str], list[int | None]] = {}  # (task, token) → [start, end]
    pids: dict[tuple[str, str], int] = {}
    for kind, task_id, pid, token, at in fleet.records():
        key = (task_id, token)
        if kind == "start":
            assert key not in runs, f"claim token reused for {task_id}"
            runs[key], pids[key] = [int(at), None], int(pid)
        else:
            runs[key][1] = int(at)
    assert {task for task, _ in runs} == ids
    by_task: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key, (start, end) in runs.items():
        if end is None:  # the run never finished: its worker must have been killed, and that ended it
            assert pids[key] in fleet.killed_at, f"run {key} never ended, yet its worker was not killed"
            end = fleet.killed_at[pids[key]]
        by_task[key[0]].append((start, end))  # type: ignore[arg-type]
    reruns = 0
    for task_id, intervals in by_task.items():
        intervals.sort()
        reruns += len(intervals) - 1
        for (_, end), (next_start, _) in itertools.pairwise(intervals):
            assert next_start > end, f"task {task_id} ran twice at the same time: {intervals}"
    assert fleet.killed_at, "the test killed nobody"
    print(f"chaos: {fleet.kills} workers killed, {reruns} task runs repeated")


def _assert_one_object_per_task(fleet: Fleet, rows: dict[str, object]) -> None:
    keys = fleet.s3.keys(fleet.bucket)
    expected = {f"{PREFIX}/tasks/{task_id}/{task_id}.txt" for task_id in rows}
    assert len(keys) == len(set(keys)) and set(keys) == expected
    client = fleet.s3.client()
    for task_id, row in rows.items():
        assert row.status is TaskStatus.COMPLETE  # type: ignore[attr-defined]
        key = f"{PREFIX}/tasks/{task_id}/{task_id}.txt"
        assert f"/{key}" in (row.output_location or "")  # type: ignore[attr-defined]
        body = client.get_object(Bucket=fleet.bucket, Key=key)["Body"].read().decode()
        assert body == row.params["message"]  # type: ignore[attr-defined]
